"""Operators for ClearTax's KSA e-invoicing API: one per endpoint a DAG needs.

Operators stay thin: they read their (templated) arguments, call :class:`ClearTaxHook`, and
return small XCom values (identities, statuses, UUIDs, ICV, paths), never XML or PDF bytes.
Everything heavy is imported inside ``execute`` so DAG files that import them parse fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_cleartax.links.cleartax import (
    DEVICE_URL_XCOM_KEY,
    INVOICE_URL_XCOM_KEY,
    ClearTaxDeviceLink,
    ClearTaxInvoiceLink,
)

try:
    from airflow.sdk import BaseOperator
except ImportError:  # pragma: no cover - Airflow < 3.1 layouts
    from airflow.models.baseoperator import BaseOperator  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_cleartax.client.api import InvoiceKey
    from airflow_provider_cleartax.client.results import InvoiceResult
    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook


#: The onboarding summary, kept across a deferral.
PENDING_DEVICE_XCOM_KEY = "cleartax_device"


def _default_deferrable() -> bool:
    from airflow.configuration import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


def _load_json_object(value: Any, *, field: str, task_id: str) -> dict[str, Any]:
    """Accept a mapping, or a JSON text of one (what a template renders to)."""
    from airflow_provider_cleartax.exceptions import ClearTaxConfigError

    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (str, bytes)):
        try:
            loaded = json.loads(value, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as error:
            raise ClearTaxConfigError(f"task {task_id!r}: {field} is not valid JSON ({error})") from None
        if isinstance(loaded, dict):
            return loaded
    raise ClearTaxConfigError(f"task {task_id!r}: {field} must be a JSON object, got {type(value).__name__}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _read_document(value: Any, *, marker: bytes) -> bytes:
    """Return a document given inline (bytes, or text starting with ``marker``) or by path/URL."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        if value.lstrip().encode()[: len(marker)] == marker:
            return value.encode("utf-8")
        from airflow.sdk import ObjectStoragePath

        value = ObjectStoragePath(value)
    return value.read_bytes()


def _as_path(value: Any) -> Any:
    """Keep ObjectStoragePath / Path objects; turn text into an ObjectStoragePath (local or fsspec URL)."""
    if isinstance(value, str):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(value)
    return value


class ClearTaxBaseOperator(BaseOperator):
    """Base of the ClearTax operators: connection, VAT and branch, and the hook.

    :param cleartax_conn_id: Airflow connection of type ``cleartax``.
    :param vat: seller VAT overriding the connection's (templated).
    :param branch: branch overriding the connection's (templated).
    :param hook_params: further :class:`ClearTaxHook` arguments (timeouts, retries).
    """

    template_fields: Sequence[str] = ("vat", "branch")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        cleartax_conn_id: str = "cleartax_default",
        vat: str | None = None,
        branch: str | None = None,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cleartax_conn_id = cleartax_conn_id
        self.vat = vat
        self.branch = branch
        self.hook_params = hook_params or {}

    @cached_property
    def hook(self) -> ClearTaxHook:
        """The hook, built on first use."""
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        return ClearTaxHook(
            cleartax_conn_id=self.cleartax_conn_id, vat=self.vat, branch=self.branch, **self.hook_params
        )

    def _invoice_key(self, invoice_number: str, invoice_type: str, issue_date: str) -> InvoiceKey:
        from airflow_provider_cleartax.client.api import InvoiceKey, document_type

        return InvoiceKey(
            invoice_number, document_type(invoice_type), issue_date, self.hook.settings.vat or ""
        )

    def _push_invoice_link(self, context: Context, key: InvoiceKey) -> None:
        context["ti"].xcom_push(key=INVOICE_URL_XCOM_KEY, value=self.hook.settings.invoice_url(key.unique_id))

    @staticmethod
    def _summary(key: InvoiceKey, result: InvoiceResult) -> dict[str, Any]:
        return {
            "unique_id": key.unique_id,
            "invoice_number": key.invoice_number,
            "invoice_type": key.invoice_type,
            "issue_date": key.issue_date,
            **result.summary(),
        }


class _InvoiceWaitMixin:
    """Wait for invoices to reach a final status: deferred to the triggerer, or by polling."""

    poll_interval: float
    deferrable: bool
    execution_timeout: timedelta | None
    cleartax_conn_id: str
    hook_params: dict[str, Any]
    hook: ClearTaxHook

    def _wait_for_invoice(self, context: Context, key: InvoiceKey, result: InvoiceResult) -> dict[str, Any]:
        if result.is_terminal:  # never defer for an answer already in hand
            return _final_invoice_summary(key, result)
        deadline = time.time() + self.execution_timeout.total_seconds() if self.execution_timeout else None
        if self.deferrable:
            from airflow_provider_cleartax.triggers.cleartax import ClearTaxInvoiceStatusTrigger

            self.defer(  # type: ignore[attr-defined]
                trigger=ClearTaxInvoiceStatusTrigger(
                    cleartax_conn_id=self.cleartax_conn_id,
                    invoices=[key.unique_id],
                    poll_interval=self.poll_interval,
                    deadline=deadline,
                    hook_params={"vat": key.vat, **self.hook_params},
                ),
                method_name="execute_complete",
            )
        while not result.is_terminal:
            if deadline is not None and time.time() > deadline:
                break
            time.sleep(self.poll_interval)
            result = self.hook.get_invoice(unique_id=key.unique_id)
        return _final_invoice_summary(key, result)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Finish after the trigger fired: raise for failures, else return the final summary."""
        from airflow_provider_cleartax.triggers.cleartax import raise_for_event

        raise_for_event(event, conn_id=self.cleartax_conn_id)
        # Deferral kwargs do not survive every runner (dag.test drops them): re-derive the invoice.
        key = self._pending_invoice_key()
        return _final_invoice_summary(key, self.hook.get_invoice(unique_id=key.unique_id))

    def _pending_invoice_key(self) -> InvoiceKey:
        raise NotImplementedError


def _final_invoice_summary(key: InvoiceKey, result: InvoiceResult) -> dict[str, Any]:
    from airflow_provider_cleartax.exceptions import ClearTaxInvoiceRejectedError, ClearTaxTimeoutError

    if result.is_rejected:
        raise ClearTaxInvoiceRejectedError(
            f"invoice {key.invoice_number} {result.invoice_status}",
            result=result,
            errors=[e.to_api() for e in result.error_list],
            endpoint="get_invoice",
        )
    if not result.is_terminal:
        raise ClearTaxTimeoutError(
            f"invoice {key.invoice_number} still {result.invoice_status}", endpoint="get_invoice"
        )
    return ClearTaxBaseOperator._summary(key, result)


class ClearTaxGenerateInvoiceOperator(ClearTaxBaseOperator):
    """Generate an e-invoice and have ZATCA clear (standard) or report (simplified) it.

    The invoice is checked against ClearTax's rules first and is not sent when it breaks one. A
    retried task looks the invoice up before sending it again, so it is never generated twice.
    Returns a small summary: identity, status, UUID, ICV.

    :param invoice: the E-Invoice object, or its JSON text (templated).
    :param device_id: EGS device id; defaults to the connection's (templated).
    :param custom_fields: ClearTax ``CustomFields`` (templated).
    :param validate_only: run the client-side checks and send nothing (a dry run).
    :param validate: run the client-side checks before sending.
    """

    template_fields: Sequence[str] = (
        *ClearTaxBaseOperator.template_fields,
        "invoice",
        "device_id",
        "custom_fields",
    )
    template_fields_renderers = {"invoice": "json", "custom_fields": "json"}
    operator_extra_links = (ClearTaxInvoiceLink(),)
    endpoint = "generate"

    def __init__(
        self,
        *,
        invoice: dict[str, Any] | str,
        device_id: str | None = None,
        custom_fields: dict[str, Any] | None = None,
        validate_only: bool = False,
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.invoice = invoice
        self.device_id = device_id
        self.custom_fields = custom_fields
        self.validate_only = validate_only
        self.validate = validate

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_cleartax.client.api import key_of_invoice
        from airflow_provider_cleartax.exceptions import ClearTaxInvoiceInvalidError, ClearTaxNotFoundError
        from airflow_provider_cleartax.invoices import invoice_number_of, validate_invoice

        invoice = _load_json_object(self.invoice, field="invoice", task_id=self.task_id)
        if self.validate or self.validate_only:
            problems = validate_invoice(invoice)
            if problems:
                raise ClearTaxInvoiceInvalidError(
                    f"invoice {invoice_number_of(invoice) or '(no number)'} breaks {len(problems)} rule(s); "
                    "nothing was sent",
                    endpoint=self.endpoint,
                    errors=[
                        {"ErrorCode": p.code, "ErrorMessage": p.message, "Path": p.path} for p in problems
                    ],
                )
        key = key_of_invoice(invoice, self.hook.settings.vat)
        if key is None:
            raise ClearTaxInvoiceInvalidError(
                "the invoice has no number, type or issue date", endpoint=self.endpoint
            )
        self._push_invoice_link(context, key)
        if self.validate_only:
            self.log.info(
                "Invoice %s passes the client-side checks; nothing sent (validate_only)", key.invoice_number
            )
            return {"valid": True, "unique_id": key.unique_id, "invoice_number": key.invoice_number}
        if context["ti"].try_number > 1:
            # An earlier try may have been cut off after ClearTax generated the invoice.
            try:
                existing = self.hook.get_invoice(**_document_args(key))
            except ClearTaxNotFoundError:
                existing = None
            if existing is not None and not existing.is_rejected:
                self.log.info(
                    "Invoice %s was generated by an earlier try; not sending it again", key.unique_id
                )
                return self._finish(context, key, existing)
        result = self._generate(invoice)
        self.log.info(
            "Invoice %s: %s (UUID %s, ICV %s)", key.unique_id, result.invoice_status, result.uuid, result.icv
        )
        return self._finish(context, key, result)

    def _generate(self, invoice: dict[str, Any]) -> InvoiceResult:
        return self.hook.generate_invoice(invoice, device_id=self.device_id, custom_fields=self.custom_fields)

    def _finish(self, context: Context, key: InvoiceKey, result: InvoiceResult) -> dict[str, Any]:
        return self._summary(key, result)


class ClearTaxGenerateInvoiceAsyncOperator(_InvoiceWaitMixin, ClearTaxGenerateInvoiceOperator):
    """Submit a simplified (B2C) invoice for asynchronous reporting, optionally waiting until reported.

    Takes the parameters of :class:`ClearTaxGenerateInvoiceOperator`, and:

    :param wait_for_completion: wait until ZATCA has reported (or refused) the invoice.
    :param poll_interval: seconds between status checks while waiting.
    :param deferrable: wait in the triggerer instead of holding a worker slot.
    """

    endpoint = "generate_async"

    def __init__(
        self,
        *,
        wait_for_completion: bool = False,
        poll_interval: float = 30.0,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.deferrable = _default_deferrable() if deferrable is None else deferrable

    def _pending_invoice_key(self) -> InvoiceKey:
        from airflow_provider_cleartax.client.api import key_of_invoice

        invoice = _load_json_object(self.invoice, field="invoice", task_id=self.task_id)
        key = key_of_invoice(invoice, self.hook.settings.vat)
        assert key is not None  # checked before the invoice was sent
        return key

    def _generate(self, invoice: dict[str, Any]) -> InvoiceResult:
        return self.hook.generate_invoice_async(
            invoice, device_id=self.device_id, custom_fields=self.custom_fields
        )

    def _finish(self, context: Context, key: InvoiceKey, result: InvoiceResult) -> dict[str, Any]:
        if not self.wait_for_completion:
            return self._summary(key, result)
        return self._wait_for_invoice(context, key, result)


class _XmlUploadOperator(ClearTaxBaseOperator):
    """Shared arguments of the two XML upload operators.

    :param xml: the UBL document: XML text, a local path, or an ObjectStoragePath / fsspec URL (templated).
    :param device_id: EGS device id; defaults to the connection's (templated).
    :param filename: file name of the upload.
    """

    template_fields: Sequence[str] = (*ClearTaxBaseOperator.template_fields, "xml", "device_id")
    operator_extra_links = (ClearTaxInvoiceLink(),)

    def __init__(
        self, *, xml: Any, device_id: str | None = None, filename: str = "invoice.xml", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.xml = xml
        self.device_id = device_id
        self.filename = filename

    def _document(self, context: Context) -> bytes:
        from airflow_provider_cleartax.client.api import key_of_xml

        document = _read_document(self.xml, marker=b"<")
        key = key_of_xml(document, self.hook.settings.vat)
        if key is not None:
            self._push_invoice_link(context, key)
        return document


class ClearTaxGenerateInvoiceFromXmlOperator(_XmlUploadOperator):
    """Generate an e-invoice from unsigned UBL 2.1 XML; ClearTax signs, hashes and submits it."""

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_cleartax.client.api import key_of_xml

        document = self._document(context)
        result = self.hook.generate_invoice_from_xml(
            document, device_id=self.device_id, filename=self.filename
        )
        key = key_of_xml(document, self.hook.settings.vat)
        summary = result.summary()
        if key is not None:
            summary = self._summary(key, result)
        self.log.info("XML invoice: %s (UUID %s, ICV %s)", result.invoice_status, result.uuid, result.icv)
        return summary


class ClearTaxSendSignedXmlOperator(_XmlUploadOperator):
    """Send an invoice you signed yourself (you keep the ICV/PIH chain) to ZATCA through ClearTax."""

    def execute(self, context: Context) -> dict[str, Any]:
        result = self.hook.send_signed_xml(
            self._document(context), device_id=self.device_id, filename=self.filename
        )
        validation = result.validation_results
        self.log.info("Signed XML: validation %s, clearance %s", validation.status, result.clearance_status)
        return {
            "validation_status": validation.status,
            "clearance_status": result.clearance_status,
            "reporting_status": result.reporting_status,
            "warnings": [m.to_api() for m in validation.warning_messages],
        }


class _InvoiceReferenceOperator(ClearTaxBaseOperator):
    """Shared arguments of the operators that act on one generated invoice.

    :param invoice_number: invoice number (templated).
    :param invoice_type: ``INV``, ``CRN``, ``DBN``, ``RECEIPT`` or the type code (templated).
    :param issue_date: ``YYYY-MM-DD`` (templated).
    """

    template_fields: Sequence[str] = (
        *ClearTaxBaseOperator.template_fields,
        "invoice_number",
        "invoice_type",
        "issue_date",
    )
    operator_extra_links = (ClearTaxInvoiceLink(),)

    def __init__(
        self, *, invoice_number: str, invoice_type: str = "INV", issue_date: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.invoice_number = invoice_number
        self.invoice_type = invoice_type
        self.issue_date = issue_date

    def _key(self, context: Context) -> InvoiceKey:
        key = self._invoice_key(self.invoice_number, self.invoice_type, self.issue_date)
        self._push_invoice_link(context, key)
        return key


class ClearTaxGetInvoiceOperator(_InvoiceReferenceOperator):
    """Fetch a generated invoice's status and chain fields (no XML in XCom)."""

    def execute(self, context: Context) -> dict[str, Any]:
        key = self._key(context)
        return self._summary(key, self.hook.get_invoice(**_document_args(key)))


class ClearTaxDownloadInvoicePdfOperator(_InvoiceReferenceOperator):
    """Stream the invoice's PDF/A-3 (XML embedded) to a local path or any ObjectStoragePath.

    :param destination: local path, ObjectStoragePath or fsspec URL such as ``s3://bucket/x.pdf`` (templated).
    :param template_id: ClearTax print template.
    """

    template_fields: Sequence[str] = (*_InvoiceReferenceOperator.template_fields, "destination")

    def __init__(self, *, destination: Any, template_id: str = "39", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.template_id = template_id

    def execute(self, context: Context) -> dict[str, Any]:
        key = self._key(context)
        download = self.hook.download_invoice_pdf(
            _as_path(self.destination), template_id=self.template_id, **_document_args(key)
        )
        self.log.info("Wrote %s bytes of PDF to %s", download.size, download.path)
        return {"unique_id": key.unique_id, "path": download.path, "size": download.size}


class ClearTaxEmbedPdfOperator(_InvoiceReferenceOperator):
    """Embed the invoice's XML into your own PDF rendering (making it PDF/A-3) and store the result.

    :param pdf: your PDF: a local path, ObjectStoragePath or fsspec URL (templated).
    :param destination: where to write the PDF/A-3 (templated).
    """

    template_fields: Sequence[str] = (*_InvoiceReferenceOperator.template_fields, "pdf", "destination")

    def __init__(self, *, pdf: Any, destination: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pdf = pdf
        self.destination = destination

    def execute(self, context: Context) -> dict[str, Any]:
        key = self._key(context)
        document = _read_document(self.pdf, marker=b"%PDF")
        download = self.hook.embed_xml_in_pdf(document, _as_path(self.destination), **_document_args(key))
        return {"unique_id": key.unique_id, "path": download.path, "size": download.size}


class ClearTaxEmailInvoiceOperator(_InvoiceReferenceOperator):
    """Email the invoice's PDF to the buyer through ClearTax.

    :param to: recipient address or addresses (templated).
    :param cc: copy addresses (templated).
    :param template: ``INVOICE_GENERATED`` or ``INVOICE_PAYMENT_REMINDER``.
    """

    template_fields: Sequence[str] = (*_InvoiceReferenceOperator.template_fields, "to", "cc")

    def __init__(
        self,
        *,
        to: str | list[str],
        cc: str | list[str] | None = None,
        template: str = "INVOICE_GENERATED",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.cc = cc
        self.template = template

    def execute(self, context: Context) -> dict[str, Any]:
        key = self._key(context)
        to = [self.to] if isinstance(self.to, str) else list(self.to)
        cc = [self.cc] if isinstance(self.cc, str) else list(self.cc or [])
        self.hook.email_invoice(to=to, cc=cc, template=self.template, **_document_args(key))
        self.log.info("Emailed invoice %s to %s recipient(s)", key.unique_id, len(to) + len(cc))
        return {"unique_id": key.unique_id, "recipients": len(to) + len(cc)}


def _document_args(key: InvoiceKey) -> dict[str, str]:
    return {
        "invoice_number": key.invoice_number,
        "invoice_type": key.invoice_type,
        "issue_date": key.issue_date,
        "vat": key.vat,
    }


class ClearTaxRegisterDeviceOperator(ClearTaxBaseOperator):
    """Register (onboard) an EGS device with its ZATCA OTP, and wait until its PCSID is issued.

    :param device_details: ClearTax ``DeviceDetails`` (``EgsSerialNumber``...) (templated).
    :param organization_details: ClearTax ``OrganizationDetails`` (templated).
    :param otp: the 6-digit ZATCA OTP, e.g. ``"{{ params.otp }}"`` (templated).
    :param wait_for_pcsid: wait until the PCSID activity has finished.
    :param poll_interval: seconds between status checks while waiting.
    :param deferrable: wait in the triggerer instead of holding a worker slot.
    """

    template_fields: Sequence[str] = (
        *ClearTaxBaseOperator.template_fields,
        "device_details",
        "organization_details",
        "otp",
    )
    template_fields_renderers = {"device_details": "json", "organization_details": "json"}
    operator_extra_links = (ClearTaxDeviceLink(),)

    def __init__(
        self,
        *,
        device_details: dict[str, Any] | str,
        organization_details: dict[str, Any] | str,
        otp: str,
        wait_for_pcsid: bool = True,
        poll_interval: float = 10.0,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.device_details = device_details
        self.organization_details = organization_details
        self.otp = otp
        self.wait_for_pcsid = wait_for_pcsid
        self.poll_interval = poll_interval
        self.deferrable = _default_deferrable() if deferrable is None else deferrable

    def execute(self, context: Context) -> dict[str, Any]:
        result = self.hook.register_device(
            device_details=_load_json_object(
                self.device_details, field="device_details", task_id=self.task_id
            ),
            organization_details=_load_json_object(
                self.organization_details, field="organization_details", task_id=self.task_id
            ),
            otp=str(self.otp).strip(),
        )
        device_id = result.device_id or ""
        context["ti"].xcom_push(key=DEVICE_URL_XCOM_KEY, value=self.hook.settings.device_url(device_id))
        activity_id = (result.model_extra or {}).get("PcsidGenerationActivityId")
        self.log.info("Registered device %s (PCSID activity %s)", device_id, activity_id)
        summary = {"device_id": device_id, "status": result.status, "pcsid_activity_id": activity_id}
        if not (self.wait_for_pcsid and activity_id):
            return summary
        status = self.hook.get_pcsid_status(activity_id)
        deadline = time.time() + self.execution_timeout.total_seconds() if self.execution_timeout else None
        if not status.is_terminal and self.deferrable:
            from airflow_provider_cleartax.triggers.cleartax import ClearTaxPcsidStatusTrigger

            context["ti"].xcom_push(key=PENDING_DEVICE_XCOM_KEY, value=summary)
            self.defer(
                trigger=ClearTaxPcsidStatusTrigger(
                    cleartax_conn_id=self.cleartax_conn_id,
                    activity_id=activity_id,
                    poll_interval=self.poll_interval,
                    deadline=deadline,
                    hook_params={"vat": self.hook.settings.vat, **self.hook_params},
                ),
                method_name="execute_complete",
            )
        while not status.is_terminal and (deadline is None or time.time() < deadline):
            time.sleep(self.poll_interval)
            status = self.hook.get_pcsid_status(activity_id)
        from airflow_provider_cleartax.exceptions import ClearTaxTimeoutError
        from airflow_provider_cleartax.triggers.cleartax import pcsid_failure

        if status.status == "FAILED":
            raise pcsid_failure(activity_id, status.status, [e.to_api() for e in status.error_list])
        if not status.is_terminal:
            raise ClearTaxTimeoutError(
                f"PCSID activity {activity_id} still {status.status}", endpoint="pcsid_status"
            )
        return {**summary, "pcsid_status": status.status}

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Finish after the trigger fired: raise for a failed activity, else return the summary."""
        from airflow_provider_cleartax.triggers.cleartax import raise_for_event

        raise_for_event(event, conn_id=self.cleartax_conn_id)
        # Deferral kwargs do not survive every runner (dag.test drops them): the XCom does.
        return {
            **context["ti"].xcom_pull(task_ids=self.task_id, key=PENDING_DEVICE_XCOM_KEY),
            "pcsid_status": event["pcsid_status"],
        }
