"""The 13 endpoints of ClearTax's KSA e-invoicing API, one function each.

Each function describes its exchange(s) with ClearTax and returns an :data:`Operation`, which the
hook runs with its sync or async client. The numbers in the docstrings are the endpoint numbers of
the API contract; the emulator's routes carry the same names.
"""

from __future__ import annotations

import collections
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow_provider_cleartax.client.pipeline import Call, Operation, Reply, Sleep, execute
from airflow_provider_cleartax.client.results import (
    BulkStatusItem,
    BulkStatusResult,
    CsidResult,
    DeviceResult,
    EmailResult,
    InvoiceResult,
    PcsidStatus,
    PdfDownload,
    SignedXmlResult,
)
from airflow_provider_cleartax.client.settings import ClientSettings

#: ClearTax's query-side document types, by UBL invoice type code.
DOCUMENT_TYPES = {"388": "INV", "381": "CRN", "383": "DBN", "386": "RECEIPT"}
BULK_MAX_IDENTITIES = 500
BULK_CALLS_PER_MINUTE = 10
DEFAULT_PRINT_TEMPLATE = "39"


@dataclass(frozen=True)
class Session:
    """What every operation needs besides its arguments: settings and where to log."""

    settings: ClientSettings
    logger: Any = None

    def run(self, call: Call[Any]) -> Operation[Any]:
        """Return the pipeline operation performing ``call``."""
        return execute(call, self.settings, logger=self.logger)


@dataclass(frozen=True)
class InvoiceKey:
    """The identity ClearTax files an invoice under: seller VAT, number, type and issue date."""

    invoice_number: str
    invoice_type: str
    issue_date: str
    vat: str

    @property
    def unique_id(self) -> str:
        """``<vat>_<invoice number>_<type code>_<issue year>``."""
        code = next((c for c, name in DOCUMENT_TYPES.items() if name == self.invoice_type), self.invoice_type)
        return f"{self.vat}_{self.invoice_number}_{code}_{self.issue_date[:4]}"

    def query(self) -> dict[str, str]:
        """Query parameters naming this invoice on the Get invoice and print endpoints."""
        return {
            "invoiceNumber": self.invoice_number,
            "invoiceType": self.invoice_type,
            "issueDate": self.issue_date,
            "vat": self.vat,
        }


def document_type(value: str | int) -> str:
    """Normalise ``388``/``INV`` style invoice types to ClearTax's query-side names."""
    text = str(value).strip().upper()
    return DOCUMENT_TYPES.get(text, text)


def _bilingual(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return value.get("en") or value.get("ar")
    return None if value is None else str(value)


def key_of_invoice(invoice: Mapping[str, Any], vat: str | None) -> InvoiceKey | None:
    """Derive an E-Invoice's identity, or ``None`` when the invoice lacks one of its parts."""
    number = _bilingual(invoice.get("ID"))
    type_code = invoice.get("InvoiceTypeCode")
    code = type_code.get("value") if isinstance(type_code, Mapping) else type_code
    issue_date = invoice.get("IssueDate")
    if not (number and code and issue_date and vat):
        return None
    return InvoiceKey(str(number), document_type(code), str(issue_date), vat)


_UBL_CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"


def key_of_xml(xml: bytes, vat: str | None) -> InvoiceKey | None:
    """Derive a UBL invoice's identity from its XML, or ``None`` when it cannot be read."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    number = root.findtext(f"{_UBL_CBC}ID")
    code = root.findtext(f"{_UBL_CBC}InvoiceTypeCode")
    issue_date = root.findtext(f"{_UBL_CBC}IssueDate")
    if not (number and code and issue_date and vat):
        return None
    return InvoiceKey(number.strip(), document_type(code), issue_date.strip(), vat)


# --------------------------------------------------------------------------------------------
# Parsers and rejection checks
# --------------------------------------------------------------------------------------------


def _json_object(reply: Reply) -> dict[str, Any]:
    data = reply.json()
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _parse_invoice(reply: Reply) -> InvoiceResult:
    return InvoiceResult.model_validate(_json_object(reply))


def _invoice_rejection(result: InvoiceResult) -> str | None:
    if not result.is_rejected:
        return None
    status = result.invoice_status or result.status or "rejected"
    return f"invoice {status}"


def _signed_xml_rejection(result: SignedXmlResult) -> str | None:
    if not result.is_rejected:
        return None
    return f"ZATCA validation {result.validation_results.status or 'failed'}"


def _device_rejection(result: DeviceResult) -> str | None:
    # A repeated registration answers the existing DeviceId with an error entry that is really a warning.
    if result.device_id and result.status != "FAILED":
        return None
    return f"device onboarding {result.status or 'failed'}"


def _pcsid_failed(reply: Reply) -> PcsidStatus | None:
    # A FAILED PCSID activity comes back as HTTP 500: a final answer, not a server fault.
    if reply.status != 500:
        return None
    try:
        status = PcsidStatus.model_validate(_json_object(reply))
    except ValueError:
        return None
    return status if status.status == "FAILED" else None


def _pdf_download(destination: Any) -> Any:
    def parse(reply: Reply) -> PdfDownload:
        return PdfDownload(
            path=str(destination), size=reply.streamed or 0, content_type=reply.headers.get("content-type")
        )

    return parse


def _file_part(content: bytes | str, filename: str, content_type: str) -> dict[str, Any]:
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    return {"file": (filename, data, content_type)}


# --------------------------------------------------------------------------------------------
# The endpoints
# --------------------------------------------------------------------------------------------


def _generate(
    session: Session,
    *,
    endpoint: str,
    path: str,
    invoice: Mapping[str, Any],
    device_id: str | None,
    custom_fields: Mapping[str, Any] | None,
    vat: str | None,
    branch: str | None,
) -> Operation[InvoiceResult]:
    settings = session.settings
    body: dict[str, Any] = {"DeviceId": device_id or settings.device_id, "EInvoice": dict(invoice)}
    if custom_fields:
        body["CustomFields"] = dict(custom_fields)
    key = key_of_invoice(invoice, vat or settings.vat)
    return session.run(
        Call(
            endpoint=endpoint,
            method="POST",
            path=path,
            json=body,
            parse=_parse_invoice,
            vat=vat,
            branch=branch,
            slow=True,
            idempotent=False,
            recover=(lambda: _lookup_call(key, branch)) if key else None,
            check=_invoice_rejection,
        )
    )


def _lookup_call(key: InvoiceKey, branch: str | None) -> Call[InvoiceResult | None]:
    return Call(
        endpoint="get_invoice",
        method="GET",
        path="/v2/einvoices/data",
        params=key.query(),
        parse=_parse_invoice,
        vat=key.vat,
        branch=branch,
        none_on_404=True,
    )


def generate_invoice(
    session: Session,
    invoice: Mapping[str, Any],
    *,
    device_id: str | None = None,
    custom_fields: Mapping[str, Any] | None = None,
    vat: str | None = None,
    branch: str | None = None,
) -> Operation[InvoiceResult]:
    """Generate an e-invoice and clear (standard) or report (simplified) it with ZATCA (endpoint 1).

    After a timeout, a cut connection or a 5xx the invoice is looked up by its identity first
    and sent again only when ClearTax does not have it.

    :param invoice: the E-Invoice object (ClearTax's JSON model of a UBL invoice).
    :param device_id: EGS device id; defaults to the connection's ``device_id``.
    :param custom_fields: ClearTax ``CustomFields``.
    :param vat: seller VAT for the ``vat`` header; defaults to the connection's.
    :param branch: branch header; defaults to the connection's.
    :raises ClearTaxInvoiceRejectedError: the invoice was refused; ``.result`` has the answer.
    """
    return _generate(
        session,
        endpoint="generate",
        path="/v2/einvoices/generate",
        invoice=invoice,
        device_id=device_id,
        custom_fields=custom_fields,
        vat=vat,
        branch=branch,
    )


def generate_invoice_async(
    session: Session,
    invoice: Mapping[str, Any],
    *,
    device_id: str | None = None,
    custom_fields: Mapping[str, Any] | None = None,
    vat: str | None = None,
    branch: str | None = None,
) -> Operation[InvoiceResult]:
    """Submit a simplified (B2C) invoice for asynchronous reporting; answers PENDING (endpoint 2).

    Poll :func:`get_invoice` or :func:`get_bulk_status` until the status is final. Parameters as
    for :func:`generate_invoice`.
    """
    return _generate(
        session,
        endpoint="generate_async",
        path="/v2/einvoices/generate/async",
        invoice=invoice,
        device_id=device_id,
        custom_fields=custom_fields,
        vat=vat,
        branch=branch,
    )


def generate_invoice_from_xml(
    session: Session,
    xml: bytes | str,
    *,
    device_id: str | None = None,
    filename: str = "invoice.xml",
    vat: str | None = None,
    branch: str | None = None,
) -> Operation[InvoiceResult]:
    """Generate an e-invoice from unsigned UBL 2.1 XML; ClearTax signs it (endpoint 3).

    :param xml: the UBL invoice document.
    :param device_id: EGS device id (``device-id`` header); defaults to the connection's.
    :param filename: file name of the multipart upload.
    :param vat: seller VAT; defaults to the connection's.
    :param branch: branch header; defaults to the connection's.
    """
    settings = session.settings
    content = xml.encode("utf-8") if isinstance(xml, str) else xml
    key = key_of_xml(content, vat or settings.vat)
    return session.run(
        Call(
            endpoint="generate_with_file",
            method="POST",
            path="/v2/einvoices/generate-with-file",
            files=_file_part(content, filename, "application/xml"),
            headers={"device-id": device_id or settings.device_id or ""},
            parse=_parse_invoice,
            vat=vat,
            branch=branch,
            slow=True,
            idempotent=False,
            recover=(lambda: _lookup_call(key, branch)) if key else None,
            check=_invoice_rejection,
        )
    )


def send_signed_xml(
    session: Session,
    xml: bytes | str,
    *,
    device_id: str | None = None,
    filename: str = "invoice.xml",
    vat: str | None = None,
    branch: str | None = None,
) -> Operation[SignedXmlResult]:
    """Send an invoice the client signed itself to ZATCA through ClearTax (endpoint 4).

    The client owns the ICV/PIH chain here, so an attempt with an unknown outcome is never
    repeated: the error says so and the caller decides.

    :param xml: the signed UBL invoice document.
    :param device_id: EGS device id (``device-id`` header); defaults to the connection's.
    :param filename: file name of the multipart upload.
    :param vat: seller VAT; defaults to the connection's.
    :param branch: branch header; defaults to the connection's.
    :raises ClearTaxInvoiceRejectedError: ZATCA's validation status is ERROR.
    """
    settings = session.settings
    return session.run(
        Call(
            endpoint="generate_with_file_offline",
            method="POST",
            path="/v2/einvoices/generate-with-file-offline",
            files=_file_part(xml, filename, "application/xml"),
            headers={"device-id": device_id or settings.device_id or ""},
            parse=lambda reply: SignedXmlResult.model_validate(_json_object(reply)),
            vat=vat,
            branch=branch,
            slow=True,
            idempotent=False,
            check=_signed_xml_rejection,
        )
    )


def get_invoice(
    session: Session,
    *,
    unique_id: str | None = None,
    invoice_number: str | None = None,
    invoice_type: str | None = None,
    issue_date: str | None = None,
    vat: str | None = None,
    branch: str | None = None,
) -> Operation[InvoiceResult]:
    """Fetch a generated invoice by ``unique_id`` or by number, type and issue date (endpoint 5).

    :param unique_id: ``<vat>_<number>_<type code>_<year>``.
    :param invoice_number: invoice number (may contain ``/``).
    :param invoice_type: ``INV``, ``CRN``, ``DBN``, ``RECEIPT`` or the type code (``388``...).
    :param issue_date: ``YYYY-MM-DD``.
    :param vat: seller VAT; defaults to the connection's.
    :param branch: branch header; defaults to the connection's.
    :raises ClearTaxNotFoundError: ClearTax has no such invoice.
    """
    if unique_id:
        params: dict[str, Any] = {"uniqueId": unique_id}
    elif invoice_number and invoice_type and issue_date:
        params = InvoiceKey(
            invoice_number, document_type(invoice_type), issue_date, vat or session.settings.vat or ""
        ).query()
    else:
        raise ValueError("get_invoice needs unique_id, or invoice_number, invoice_type and issue_date")
    return session.run(
        Call(
            endpoint="get_invoice",
            method="GET",
            path="/v2/einvoices/data",
            params=params,
            parse=_parse_invoice,
            vat=vat,
            branch=branch,
        )
    )


def _bulk_entry(identity: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(identity, str):
        return {"uniqueId": identity}
    entry = dict(identity)
    if "invoiceType" in entry:
        entry["invoiceType"] = document_type(entry["invoiceType"])
    return entry


def get_bulk_status(
    session: Session,
    identities: Iterable[str | Mapping[str, Any]],
    *,
    method_of_generation: str | None = None,
    vat: str | None = None,
    branch: str | None = None,
    calls_per_minute: int = BULK_CALLS_PER_MINUTE,
) -> Operation[list[BulkStatusItem]]:
    """Fetch the status of many invoices, 500 per call, within the endpoint's rate limit (endpoint 6).

    :param identities: unique ids, or mappings of ``invoiceNumber``, ``invoiceType``,
        ``issueDate`` and ``vat``; the answer keeps their order (unknown ones have status ``None``).
    :param method_of_generation: ``ONLINE`` or ``OFFLINE``.
    :param vat: seller VAT; defaults to the connection's.
    :param branch: branch header; defaults to the connection's.
    :param calls_per_minute: pace of the calls when more than 500 identities are asked for.
    """
    entries = [_bulk_entry(identity) for identity in identities]
    items: list[BulkStatusItem] = []
    sent: collections.deque[float] = collections.deque(maxlen=calls_per_minute)
    for start in range(0, len(entries), BULK_MAX_IDENTITIES):
        if len(sent) == calls_per_minute:
            wait = sent[0] + 60.0 - time.monotonic()
            if wait > 0:
                yield Sleep(wait)
        sent.append(time.monotonic())
        body: dict[str, Any] = {"Invoices": entries[start : start + BULK_MAX_IDENTITIES]}
        if method_of_generation:
            body["methodOfGeneration"] = method_of_generation
        result = yield from session.run(
            Call(
                endpoint="get_bulk",
                method="POST",
                path="/v3/einvoices/get-bulk",
                json=body,
                parse=lambda reply: BulkStatusResult.model_validate(_json_object(reply)),
                vat=vat,
                branch=branch,
            )
        )
        items.extend(result.invoices)
    return items


def download_invoice_pdf(
    session: Session,
    destination: Any,
    *,
    invoice_number: str,
    invoice_type: str,
    issue_date: str,
    template_id: str = DEFAULT_PRINT_TEMPLATE,
    vat: str | None = None,
    branch: str | None = None,
) -> Operation[PdfDownload]:
    """Stream the invoice's PDF/A-3 (with its XML inside) to a file, never whole in memory (endpoint 7).

    :param destination: local path, :class:`pathlib.Path` or ObjectStoragePath to write.
    :param invoice_number: invoice number.
    :param invoice_type: ``INV``, ``CRN``, ``DBN`` or the type code.
    :param issue_date: ``YYYY-MM-DD``.
    :param template_id: ClearTax print template.
    :param vat: seller VAT; defaults to the connection's.
    :param branch: branch header; defaults to the connection's.
    """
    key = InvoiceKey(
        invoice_number, document_type(invoice_type), issue_date, vat or session.settings.vat or ""
    )
    return session.run(
        Call(
            endpoint="print_pdf",
            method="GET",
            path="/v2/einvoices/print",
            params={**key.query(), "templateId": template_id},
            parse=_pdf_download(destination),
            vat=vat,
            branch=branch,
            sink=destination,
        )
    )


def embed_xml_in_pdf(
    session: Session,
    pdf: bytes,
    destination: Any,
    *,
    invoice_number: str,
    invoice_type: str,
    issue_date: str,
    filename: str = "invoice.pdf",
    vat: str | None = None,
    branch: str | None = None,
) -> Operation[PdfDownload]:
    """Embed the invoice's XML into your own PDF, making it PDF/A-3, and stream it out (endpoint 8).

    :param pdf: your PDF rendering of the invoice.
    :param destination: local path, :class:`pathlib.Path` or ObjectStoragePath to write.
    :param invoice_number: invoice number.
    :param invoice_type: ``INV``, ``CRN``, ``DBN`` or the type code.
    :param issue_date: ``YYYY-MM-DD``.
    :param filename: file name of the multipart upload.
    :param vat: seller VAT; defaults to the connection's.
    :param branch: branch header; defaults to the connection's.
    """
    key = InvoiceKey(
        invoice_number, document_type(invoice_type), issue_date, vat or session.settings.vat or ""
    )
    return session.run(
        Call(
            endpoint="embedded_pdf",
            method="POST",
            path="/v2/einvoices/embeddedpdf",
            params={**key.query(), "pdfTypeResponse": "PDF_FILE"},
            files=_file_part(pdf, filename, "application/pdf"),
            parse=_pdf_download(destination),
            vat=vat,
            branch=branch,
            sink=destination,
        )
    )


def email_invoice(
    session: Session,
    *,
    invoice_number: str,
    invoice_type: str,
    issue_date: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    template: str = "INVOICE_GENERATED",
    print_template_id: str = DEFAULT_PRINT_TEMPLATE,
    vat: str | None = None,
    branch: str | None = None,
) -> Operation[EmailResult]:
    """Email the invoice's PDF to the buyer (endpoint 9).

    An attempt with an unknown outcome is not repeated, so nobody gets the mail twice.

    :param invoice_number: invoice number.
    :param invoice_type: ``INV``, ``CRN``, ``DBN`` or the type code.
    :param issue_date: ``YYYY-MM-DD``.
    :param to: recipient addresses.
    :param cc: copy addresses.
    :param template: ``INVOICE_GENERATED`` or ``INVOICE_PAYMENT_REMINDER``.
    :param print_template_id: ClearTax print template of the attached PDF.
    :param vat: seller VAT; defaults to the connection's.
    :param branch: branch header; defaults to the connection's.
    """
    if not to:
        raise ValueError("email_invoice needs at least one recipient")
    seller_vat = vat or session.settings.vat
    contacts = [{"Email": address, "EmailRecipientType": "TO"} for address in to]
    contacts += [{"Email": address, "EmailRecipientType": "CC"} for address in cc]
    body = {
        "Attachments": {
            "documentDetails": [
                {
                    "InvoiceNumber": invoice_number,
                    "IssueDate": issue_date,
                    "InvoiceType": document_type(invoice_type),
                    "Vat": seller_vat,
                }
            ],
            "printTemplateId": print_template_id,
            "documentType": "EINVOICE",
        },
        "PreviewDetails": {"Template": {"Type": template}, "CounterParties": [{"Contacts": contacts}]},
    }
    return session.run(
        Call(
            endpoint="email",
            method="POST",
            path="/v1/emails",
            json=body,
            parse=lambda reply: EmailResult.model_validate(_json_object(reply) if reply.body.strip() else {}),
            vat=vat,
            branch=branch,
            idempotent=False,
        )
    )


def register_device(
    session: Session,
    *,
    device_details: Mapping[str, Any],
    organization_details: Mapping[str, Any],
    otp: str,
    vat: str | None = None,
) -> Operation[DeviceResult]:
    """Register an EGS device and request its CSID and PCSID (endpoint 10).

    Registering the same (VAT, ``EgsSerialNumber``) again answers the existing device id.

    :param device_details: ClearTax ``DeviceDetails`` (``EgsSerialNumber``, ...).
    :param organization_details: ClearTax ``OrganizationDetails``.
    :param otp: the 6-digit ZATCA OTP (valid one hour).
    :param vat: seller VAT; defaults to the connection's.
    """
    return session.run(
        Call(
            endpoint="register_device",
            method="POST",
            path="/onboarding/register-device",
            json={
                "DeviceDetails": dict(device_details),
                "OrganizationDetails": dict(organization_details),
                "Otp": otp,
            },
            parse=lambda reply: DeviceResult.model_validate(_json_object(reply)),
            vat=vat,
            slow=True,
            check=_device_rejection,
        )
    )


def generate_csr(
    session: Session,
    *,
    device_details: Mapping[str, Any],
    organization_details: Mapping[str, Any],
    vat: str | None = None,
) -> Operation[DeviceResult]:
    """Create a device id and its CSR (legacy onboarding, step 1; endpoint 11).

    :param device_details: ClearTax ``DeviceDetails``.
    :param organization_details: ClearTax ``OrganizationDetails``.
    :param vat: seller VAT; defaults to the connection's.
    """
    return session.run(
        Call(
            endpoint="generate_csr",
            method="POST",
            path="/onboarding/generate-csr",
            json={"DeviceDetails": dict(device_details), "OrganizationDetails": dict(organization_details)},
            parse=lambda reply: DeviceResult.model_validate(_json_object(reply)),
            vat=vat,
            check=_device_rejection,
        )
    )


def generate_csid(
    session: Session, *, device_id: str, otp: str, vat: str | None = None
) -> Operation[CsidResult]:
    """Request the device's CSID and start its PCSID activity (legacy onboarding, step 2; endpoint 12).

    :param device_id: the device id from :func:`generate_csr`.
    :param otp: the 6-digit ZATCA OTP.
    :param vat: seller VAT; defaults to the connection's.
    """
    return session.run(
        Call(
            endpoint="generate_csid",
            method="POST",
            path="/onboarding/generate-csid",
            json={"DeviceId": device_id, "Otp": otp},
            parse=lambda reply: CsidResult.model_validate(_json_object(reply)),
            vat=vat,
            slow=True,
            idempotent=False,
            check=_device_rejection,
        )
    )


def get_pcsid_status(session: Session, activity_id: str, *, vat: str | None = None) -> Operation[PcsidStatus]:
    """Fetch the state of a PCSID generation activity; FAILED is an answer, not an error (endpoint 13).

    :param activity_id: ``PcsidGenerationActivityId`` (24 hex characters).
    :param vat: seller VAT; defaults to the connection's.
    """
    return session.run(
        Call(
            endpoint="pcsid_status",
            method="GET",
            path=f"/onboarding/{quote(activity_id, safe='')}/pcsid-status",
            parse=lambda reply: PcsidStatus.model_validate(_json_object(reply)),
            vat=vat,
            terminal_error=_pcsid_failed,
        )
    )
