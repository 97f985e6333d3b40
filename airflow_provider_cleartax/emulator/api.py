"""Routes and business logic of the ClearTax KSA emulator: the 13 endpoints of the API contract."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import re
import secrets
import time
import uuid as uuid_module
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from airflow_provider_cleartax.emulator import documents, rules
from airflow_provider_cleartax.emulator.config import API_PREFIX, EmulatorConfig
from airflow_provider_cleartax.emulator.store import ActivityRecord, DeviceRecord, InvoiceRecord, Store

log = logging.getLogger(__name__)

#: Saudi Arabia has no daylight saving: UTC+3 all year.
KSA_TZ = timezone(timedelta(hours=3))
AUTH_FAILED = {"ErrorCode": "100401", "ErrorMessage": "Authentication Failed", "ErrorSource": "CLEARTAX"}
#: PIH of a device's first invoice, the constant ZATCA prescribes (base64 of the hex SHA-256 of "0").
FIRST_PIH = "NWZlY2ViNjZmZmM4NmYzOGQ5NTI3ODZjNmQ2OTZjNzljMmRiYzIzOWRkNGU5MWI0NjcyOWQ3M2EyN2ZiNTdlOQ=="
DUPLICATE_CODE = "DUPLICATE_SUBMISSION"
BULK_LIMIT = 500
EGS_SERIAL_PATTERN = re.compile(r"^1-[a-zA-Z0-9]+\|2-[a-zA-Z0-9]+\|3-[a-zA-Z0-9]+$")
OTP_PATTERN = re.compile(r"^\d{6}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_TEMPLATES = frozenset({"INVOICE_GENERATED", "INVOICE_PAYMENT_REMINDER"})
PDF_RESPONSE_TYPES = frozenset({"PDF_FILE", "PDF_BASE64"})
GENERATION_METHODS = frozenset({"ONLINE", "OFFLINE"})
#: Uploads are read whole; this bounds one multipart field (PDFs sent as base64 text included).
MAX_PART_SIZE = 32 * 1024 * 1024
#: Invoices whose rendered answers and PDFs stay cached.
RENDER_CACHE_SIZE = 2048

_Handler = Callable[[Request, "_Caller"], Awaitable[Response]]


class _ApiError(Exception):
    """An answer other than 200, raised from deep inside a handler."""

    def __init__(self, *, status: int, errors: list[dict[str, Any]] | None = None, body: Any = None) -> None:
        """Describe the answer.

        :param status: HTTP status.
        :param errors: the ``ErrorList`` entries.
        :param body: a whole body that replaces the ``ErrorList`` rendering.
        """
        super().__init__(status)
        self.status = status
        self.errors = errors or []
        self.body = body

    def response(self, *, array: bool) -> Response:
        if self.body is not None:
            return JSONResponse(self.body, status_code=self.status)
        return JSONResponse(self.errors if array else {"ErrorList": self.errors}, status_code=self.status)


@dataclass(frozen=True)
class _Caller:
    """Who is calling: the checked headers of one request (the token itself is not kept)."""

    vat: str
    lang: str
    branch: str | None
    allowed_vats: frozenset[str]


@dataclass(frozen=True)
class _Identity:
    """Identity of one invoice: seller VAT, number, type code and issue date."""

    vat: str
    number: str
    type_code: str
    issue_date: str | None

    @property
    def unique_id(self) -> str:
        year = self.issue_date[:4] if self.issue_date else ""
        return f"{self.vat}_{self.number}_{self.type_code}_{year}"


class Emulator:
    """Business core of the ClearTax KSA emulator: routes, rules and state behind them.

    :param config: emulator settings.
    :param clock: source of epoch seconds; tests pass a fake one to move time without sleeping.
    """

    def __init__(self, config: EmulatorConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._store = Store(path=config.state_path, devices=config.devices, now=clock())
        # Rendered Get-invoice answers and PDFs of recently read invoices: uniqueId -> (record, renderings).
        # Holding the record lets a replaced record (rejection fixed, reset) invalidate its renderings.
        self._renderings: OrderedDict[str, tuple[InvoiceRecord, dict[str, bytes]]] = OrderedDict()

    # ------------------------------------------------------------------------------------------------
    # Public interface
    # ------------------------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Return the routes of all 13 endpoints, each named after its entry in ``config.ENDPOINTS``."""
        return [
            self._route("generate", "POST", "/v2/einvoices/generate", self._generate),
            self._route("generate_async", "POST", "/v2/einvoices/generate/async", self._generate_async),
            self._route(
                "generate_with_file", "POST", "/v2/einvoices/generate-with-file", self._generate_with_file
            ),
            self._route(
                "generate_with_file_offline",
                "POST",
                "/v2/einvoices/generate-with-file-offline",
                self._generate_offline,
            ),
            self._route("get_invoice", "GET", "/v2/einvoices/data", self._get_invoice),
            self._route("get_bulk", "POST", "/v3/einvoices/get-bulk", self._get_bulk),
            self._route("print_pdf", "GET", "/v2/einvoices/print", self._print_pdf, array_errors=True),
            self._route(
                "embedded_pdf", "POST", "/v2/einvoices/embeddedpdf", self._embedded_pdf, array_errors=True
            ),
            self._route("email", "POST", "/v1/emails", self._email),
            self._route(
                "register_device", "POST", "/onboarding/register-device", self._register_device, admin=True
            ),
            self._route("generate_csr", "POST", "/onboarding/generate-csr", self._generate_csr, admin=True),
            self._route(
                "generate_csid", "POST", "/onboarding/generate-csid", self._generate_csid, admin=True
            ),
            self._route(
                "pcsid_status",
                "GET",
                "/onboarding/{activity_id}/pcsid-status",
                self._pcsid_status,
                admin=True,
            ),
        ]

    def submission_counts(self) -> dict[str, int]:
        """Return, per invoice ``uniqueId``, how many generate-type requests reached business logic."""
        return self._store.submission_counts()

    def invoice_statuses(self) -> dict[str, str]:
        """Return the current ``InvoiceStatus`` of every stored invoice, by ``uniqueId``."""
        now = self._clock()
        return {record.unique_id: record.effective_status(now) for record in self._store.invoices()}

    def sent_emails(self) -> list[dict[str, Any]]:
        """Return the emails sent through the email endpoint, oldest first."""
        return self._store.emails()

    def reset(self) -> None:
        """Forget all invoices, devices, activities and emails, back to the configured start state."""
        self._store.reset(now=self._clock())
        self._renderings.clear()

    def close(self) -> None:
        """Release the state file, if any."""
        self._store.close()

    # ------------------------------------------------------------------------------------------------
    # Request plumbing
    # ------------------------------------------------------------------------------------------------

    def _route(
        self,
        name: str,
        method: str,
        path: str,
        handler: _Handler,
        *,
        admin: bool = False,
        array_errors: bool = False,
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                caller = self._authorize(request, admin=admin)
                return await handler(request, caller)
            except _ApiError as exc:
                return exc.response(array=array_errors)

        return Route(API_PREFIX + path, endpoint, methods=[method], name=name)

    def _authorize(self, request: Request, *, admin: bool) -> _Caller:
        headers = request.headers
        token = headers.get("x-cleartax-auth-token")
        tokens = self.config.tokens
        if not token or token not in tokens:
            raise _ApiError(status=401, body=AUTH_FAILED)
        lang = _language(headers.get("accept-language"))
        vat = headers.get("vat")
        if vat is None or not rules.validate_vat(vat):
            raise _ApiError(status=400, errors=[rules.error("vat_header", path="vat", lang=lang)])
        allowed = frozenset(tokens[token] or self.config.vats).intersection(self.config.vats)
        if vat not in allowed:
            raise _ApiError(
                status=403,
                errors=[rules.error("forbidden_vat", path="vat", lang=lang, code="100403", vat=vat)],
            )
        if admin and self.config.admin_tokens is not None and token not in self.config.admin_tokens:
            raise _ApiError(status=403, errors=[rules.error("forbidden_admin", lang=lang, code="100403")])
        return _Caller(vat=vat, lang=lang, branch=headers.get("branch"), allowed_vats=allowed)

    async def _json_object(self, request: Request, caller: _Caller) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _ApiError(status=400, errors=[rules.error("body_json", lang=caller.lang)])
        return body

    def _expect_type(self, body: Mapping[str, Any], key: str, kind: type, caller: _Caller) -> None:
        value = body.get(key)
        if value is not None and not isinstance(value, kind):
            name = {dict: "an object", str: "a string", list: "an array"}[kind]
            raise _ApiError(
                status=400,
                errors=[rules.error("body_type", path=key, lang=caller.lang, field=key, kind=name)],
            )

    async def _upload(self, request: Request, caller: _Caller) -> tuple[str, bytes]:
        device_id = request.headers.get("device-id")
        if not device_id:
            raise _ApiError(
                status=400,
                errors=[rules.error("mandatory", path="device-id", lang=caller.lang, field="device-id")],
            )
        data = await self._multipart_file(request, caller, "file")
        if data is None:
            raise _ApiError(status=400, errors=[rules.error("file_missing", path="file", lang=caller.lang)])
        return device_id, data

    async def _multipart_file(self, request: Request, caller: _Caller, name: str) -> bytes | None:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return None
        async with request.form(max_part_size=MAX_PART_SIZE) as form:
            value = form.get(name)
            if isinstance(value, UploadFile):
                return await value.read()
            if isinstance(value, str) and value:
                return value.encode()
        return None

    def _today(self, now: float) -> date:
        return datetime.fromtimestamp(now, KSA_TZ).date()

    # ------------------------------------------------------------------------------------------------
    # 1-3: generate (ClearTax owns the ICV/PIH chain)
    # ------------------------------------------------------------------------------------------------

    async def _generate(self, request: Request, caller: _Caller) -> Response:
        device_id, einvoice = await self._generate_body(request, caller)
        return JSONResponse(self._process(caller, device_id=device_id, einvoice=einvoice, asynchronous=False))

    async def _generate_async(self, request: Request, caller: _Caller) -> Response:
        device_id, einvoice = await self._generate_body(request, caller)
        return JSONResponse(self._process(caller, device_id=device_id, einvoice=einvoice, asynchronous=True))

    async def _generate_body(self, request: Request, caller: _Caller) -> tuple[Any, dict[str, Any] | None]:
        body = await self._json_object(request, caller)
        self._expect_type(body, "DeviceId", str, caller)
        self._expect_type(body, "EInvoice", dict, caller)
        self._expect_type(body, "CustomFields", dict, caller)
        return body.get("DeviceId"), body.get("EInvoice")

    async def _generate_with_file(self, request: Request, caller: _Caller) -> Response:
        device_id, xml = await self._upload(request, caller)
        einvoice = self._parse_xml(xml, caller)
        return JSONResponse(self._process(caller, device_id=device_id, einvoice=einvoice, asynchronous=False))

    def _parse_xml(self, xml: bytes, caller: _Caller) -> dict[str, Any]:
        try:
            return documents.parse_invoice_xml(xml)
        except documents.InvalidXmlError as exc:
            raise _ApiError(
                status=400, errors=[rules.error("xml_invalid", path="file", lang=caller.lang, reason=exc)]
            ) from None

    def _process(
        self, caller: _Caller, *, device_id: str | None, einvoice: dict[str, Any] | None, asynchronous: bool
    ) -> dict[str, Any]:
        now = self._clock()
        identity = _identity_of(einvoice, caller.vat)
        with self._store.transaction():
            errors: list[dict[str, Any]] = []
            reused = False
            if identity is not None:
                self._store.count_submission(identity.unique_id)
                existing = self._store.invoice(identity.unique_id)
                if existing is not None and existing.succeeded:
                    if existing.issue_date == identity.issue_date:
                        return self._duplicate_body(existing, caller, now)
                    errors.append(_number_reused(existing, caller))
                    reused = True
            errors += self._device_errors(device_id, caller, now, path="DeviceId")
            if einvoice is None:
                errors.append(rules.error("mandatory", path="EInvoice", lang=caller.lang, field="EInvoice"))
            else:
                if asynchronous and rules.is_simplified(einvoice) is False:
                    errors.append(
                        rules.error(
                            "async_simplified_only", path="EInvoice.InvoiceTypeCode.name", lang=caller.lang
                        )
                    )
                errors += rules.validate_einvoice(
                    einvoice, vat=caller.vat, today=self._today(now), lang=caller.lang
                )
            if errors:
                record = self._rejection(identity, einvoice, device_id, caller, now, errors, method="ONLINE")
                # Stored so Get invoice shows it, yet the identity stays open for the fixed invoice; a
                # rejection for a number another invoice owns must not replace that invoice.
                if identity is not None and not reused:
                    self._store.put_invoice(record)
                return self._invoice_body(record, caller.lang, now)
            assert einvoice is not None and identity is not None and device_id is not None
            record = self._clear(identity, einvoice, device_id, caller, now, asynchronous=asynchronous)
        log.debug("Generated invoice %s with status %s", record.unique_id, record.invoice_status)
        return self._invoice_body(record, caller.lang, now)

    def _clear(
        self,
        identity: _Identity,
        einvoice: dict[str, Any],
        device_id: str,
        caller: _Caller,
        now: float,
        *,
        asynchronous: bool,
    ) -> InvoiceRecord:
        device = self._store.device(device_id)
        assert device is not None
        icv = device.icv + 1
        pih = device.last_hash or FIRST_PIH
        invoice_uuid = str(einvoice.get("UUID") or uuid_module.uuid4())
        # The hash leaves the QR reference out, so the QR (which carries the hash) is filled in afterwards.
        draft = documents.build_invoice_xml(einvoice, uuid=invoice_uuid, icv=icv, pih=pih)
        digest = documents.invoice_hash(draft)
        qr = self._qr(einvoice, caller.vat, digest)
        xml = documents.build_invoice_xml(einvoice, uuid=invoice_uuid, icv=icv, pih=pih, qr=qr)
        device.icv, device.last_hash = icv, digest
        self._store.put_device(device)
        simplified = bool(rules.is_simplified(einvoice))
        status = "REPORTED" if simplified else "CLEARED"
        if asynchronous:
            status = "PENDING"
        record = InvoiceRecord(
            unique_id=identity.unique_id,
            vat=identity.vat,
            number=identity.number,
            type_code=identity.type_code,
            type_name=rules.type_name(einvoice),
            issue_date=identity.issue_date or "",
            issue_time=einvoice.get("IssueTime"),
            method="ONLINE",
            status="GENERATED",
            invoice_status=status,
            generated_at=now,
            device_id=device_id,
            uuid=invoice_uuid,
            icv=icv,
            pih=pih,
            invoice_hash=digest,
            qr_code=qr,
            seller_vat=_seller_vat(einvoice),
            buyer_vat=_buyer_vat(einvoice),
            report_due=now + self.config.async_report_delay if asynchronous else None,
            einvoice=einvoice,
            branch=caller.branch,
            xml=xml,
        )
        self._store.put_invoice(record)
        return record

    def _rejection(
        self,
        identity: _Identity | None,
        einvoice: dict[str, Any] | None,
        device_id: str | None,
        caller: _Caller,
        now: float,
        errors: list[dict[str, Any]],
        *,
        method: str,
        warnings: list[dict[str, Any]] | None = None,
    ) -> InvoiceRecord:
        einvoice = einvoice or {}
        simplified = rules.is_simplified(einvoice)
        return InvoiceRecord(
            unique_id=identity.unique_id if identity else "",
            vat=caller.vat,
            number=identity.number if identity else rules.invoice_number(einvoice) or "",
            type_code=identity.type_code if identity else rules.type_code(einvoice) or "",
            type_name=rules.type_name(einvoice),
            issue_date=(identity.issue_date or "")
            if identity
            else (_str_or_none(einvoice.get("IssueDate")) or ""),
            issue_time=_str_or_none(einvoice.get("IssueTime")),
            method=method,
            status="NOT_GENERATED",
            invoice_status="NOT_REPORTED" if simplified else "NOT_CLEARED",
            generated_at=now,
            device_id=device_id if isinstance(device_id, str) else None,
            uuid=_str_or_none(einvoice.get("UUID")),
            seller_vat=_seller_vat(einvoice),
            buyer_vat=_buyer_vat(einvoice),
            errors=errors,
            warnings=warnings or [],
            einvoice=einvoice or None,
            branch=caller.branch,
        )

    def _device_errors(
        self, device_id: Any, caller: _Caller, now: float, *, path: str
    ) -> list[dict[str, Any]]:
        if not device_id:
            return [rules.error("mandatory", path=path, lang=caller.lang, field=path)]
        device = self._store.device(device_id)
        if device is None or device.vat != caller.vat:
            return [
                rules.error("device_unknown", path=path, lang=caller.lang, device=device_id, vat=caller.vat)
            ]
        if not self._device_ready(device, now):
            return [rules.error("device_not_ready", path=path, lang=caller.lang, device=device_id)]
        return []

    def _device_ready(self, device: DeviceRecord, now: float) -> bool:
        if not device.csid_generated:
            return False
        if device.activity_id is None:
            return True
        activity = self._store.activity(device.activity_id)
        return activity is not None and activity.status(now) == "SUCCEEDED"

    def _qr(self, einvoice: dict[str, Any], vat: str, digest: str) -> str:
        seller_name = rules.text(
            rules.dig(einvoice, "AccountingSupplierParty", "Party", "PartyLegalEntity", "RegistrationName")
        ) or self.config.vats.get(vat, "")
        totals = einvoice.get("LegalMonetaryTotal")
        total_with_vat = rules.amount(rules.dig(totals, "TaxInclusiveAmount"))
        tax_totals = rules.as_list(einvoice.get("TaxTotal"))
        vat_total = rules.amount(rules.dig(tax_totals[0], "TaxAmount")) if tax_totals else None
        return documents.qr_tlv(
            seller_name=seller_name,
            vat_number=vat,
            timestamp=f"{einvoice.get('IssueDate')}T{einvoice.get('IssueTime')}",
            total_with_vat=f"{total_with_vat or 0:.2f}",
            vat_total=f"{vat_total or 0:.2f}",
            invoice_hash=digest,
        )

    def _duplicate_body(self, record: InvoiceRecord, caller: _Caller, now: float) -> dict[str, Any]:
        body = self._invoice_body(record, caller.lang, now)
        body["WarningList"] = [*body["WarningList"], _duplicate_warning(caller.lang)]
        return body

    def _invoice_body(self, record: InvoiceRecord, lang: str, now: float) -> dict[str, Any]:
        status = record.effective_status(now)
        generated = datetime.fromtimestamp(record.generated_at, KSA_TZ)
        if not record.succeeded:
            message_key = "rejected"
        else:
            message_key = "pending" if status == "PENDING" else "generated"
        return {
            "DeviceId": record.device_id,
            "Status": record.status,
            "QrCodeStatus": record.status,
            "InvoiceStatus": status,
            "UUID": record.uuid,
            "ICV": record.icv,
            "PIH": record.pih,
            "InvoiceHash": record.invoice_hash,
            "QRCode": record.qr_code,
            "RawQRCode": record.qr_code,
            "InvoiceXml": base64.b64encode(record.xml).decode() if record.xml else None,
            "IssueDate": record.issue_date or None,
            "IssueTime": record.issue_time,
            "GeneratedDate": generated.date().isoformat(),
            "GeneratedTime": generated.strftime("%H:%M:%S"),
            "SellerVatNumber": record.seller_vat,
            "BuyerVatNumber": record.buyer_vat,
            "ErrorList": list(record.errors),
            "WarningList": list(record.warnings),
            "Message": rules.message(message_key, lang),
        }

    def _invoice_bytes(self, record: InvoiceRecord, lang: str, now: float) -> bytes:
        """Return the Get-invoice answer of ``record`` as JSON bytes, cached: it is by far the most read."""
        return self._rendered(
            record,
            f"json:{record.effective_status(now)}:{lang}",
            lambda: json.dumps(self._invoice_body(record, lang, now), ensure_ascii=False).encode(),
        )

    def _rendered(self, record: InvoiceRecord, key: str, render: Callable[[], bytes]) -> bytes:
        entry = self._renderings.get(record.unique_id)
        if entry is None or entry[0] is not record:
            entry = (record, {})
            self._renderings[record.unique_id] = entry
            if len(self._renderings) > RENDER_CACHE_SIZE:
                self._renderings.popitem(last=False)
        else:
            self._renderings.move_to_end(record.unique_id)
        rendering = entry[1].get(key)
        if rendering is None:
            rendering = entry[1][key] = render()
        return rendering

    # ------------------------------------------------------------------------------------------------
    # 4: client-signed XML (the client owns the ICV/PIH chain; answers in ZATCA's shape)
    # ------------------------------------------------------------------------------------------------

    async def _generate_offline(self, request: Request, caller: _Caller) -> Response:
        device_id, xml = await self._upload(request, caller)
        einvoice = self._parse_xml(xml, caller)
        now = self._clock()
        identity = _identity_of(einvoice, caller.vat)
        with self._store.transaction():
            errors: list[dict[str, Any]] = []
            reused = False
            if identity is not None:
                self._store.count_submission(identity.unique_id)
                existing = self._store.invoice(identity.unique_id)
                if existing is not None and existing.succeeded:
                    if existing.issue_date == identity.issue_date:
                        return JSONResponse(_offline_duplicate(existing, caller.lang))
                    errors.append(_number_reused(existing, caller))
                    reused = True
            errors += self._device_errors(device_id, caller, now, path="device-id")
            errors += rules.validate_einvoice(
                einvoice, vat=caller.vat, today=self._today(now), lang=caller.lang
            )
            icv = _int_or_none(einvoice.get("ICV"))
            pih = rules.text(einvoice.get("PIH"))
            if icv is None:
                errors.append(
                    rules.error(
                        "icv_missing",
                        path="ICV",
                        lang=caller.lang,
                        code=rules.CODE_ZATCA,
                        source=rules.SOURCE_ZATCA,
                    )
                )
            if pih is None:
                errors.append(
                    rules.error(
                        "pih_missing",
                        path="PIH",
                        lang=caller.lang,
                        code=rules.CODE_ZATCA,
                        source=rules.SOURCE_ZATCA,
                    )
                )
            if errors:
                record = self._rejection(identity, einvoice, device_id, caller, now, errors, method="OFFLINE")
                record.validation = _zatca_answer(record, lang=caller.lang)
                if identity is not None and not reused:
                    self._store.put_invoice(record)
                return JSONResponse(record.validation)
            assert identity is not None and icv is not None
            record = self._accept_offline(identity, einvoice, xml, device_id, caller, now, icv=icv, pih=pih)
        return JSONResponse(record.validation)

    def _accept_offline(
        self,
        identity: _Identity,
        einvoice: dict[str, Any],
        xml: bytes,
        device_id: str,
        caller: _Caller,
        now: float,
        *,
        icv: int,
        pih: str | None,
    ) -> InvoiceRecord:
        device = self._store.device(device_id)
        assert device is not None
        warnings: list[dict[str, Any]] = []
        zatca = {"lang": caller.lang, "code": rules.CODE_ZATCA, "source": rules.SOURCE_ZATCA}
        if icv <= device.icv:
            warnings.append(rules.error("icv_order", path="ICV", icv=icv, last=device.icv, **zatca))
        if pih != (device.last_hash or FIRST_PIH):
            warnings.append(rules.error("pih_chain", path="PIH", **zatca))
        digest = documents.invoice_hash(xml)
        device.icv, device.last_hash = max(icv, device.icv), digest
        self._store.put_device(device)
        simplified = bool(rules.is_simplified(einvoice))
        status = "REPORTED" if simplified else "CLEARED"
        if warnings:
            status = "ACCEPTED_WITH_WARNING"
        record = InvoiceRecord(
            unique_id=identity.unique_id,
            vat=identity.vat,
            number=identity.number,
            type_code=identity.type_code,
            type_name=rules.type_name(einvoice),
            issue_date=identity.issue_date or "",
            issue_time=_str_or_none(einvoice.get("IssueTime")),
            method="OFFLINE",
            status="GENERATED",
            invoice_status=status,
            generated_at=now,
            device_id=device_id,
            uuid=_str_or_none(einvoice.get("UUID")),
            icv=icv,
            pih=pih,
            invoice_hash=digest,
            qr_code=self._qr(einvoice, caller.vat, digest),
            seller_vat=_seller_vat(einvoice),
            buyer_vat=_buyer_vat(einvoice),
            warnings=warnings,
            einvoice=einvoice,
            branch=caller.branch,
            xml=xml,
        )
        record.validation = _zatca_answer(record, lang=caller.lang)
        self._store.put_invoice(record)
        return record

    # ------------------------------------------------------------------------------------------------
    # 5-6: look invoices up
    # ------------------------------------------------------------------------------------------------

    async def _get_invoice(self, request: Request, caller: _Caller) -> Response:
        identity, unique_id = self._query_identity(request.query_params, caller)
        record = self._find(unique_id, identity)
        if record is None:
            raise _ApiError(status=404, errors=[_not_found(caller.lang)])
        return Response(
            self._invoice_bytes(record, caller.lang, self._clock()), media_type="application/json"
        )

    def _query_identity(
        self, params: Mapping[str, str], caller: _Caller, *, alternatives: bool = False
    ) -> tuple[_Identity | None, str]:
        """Read an invoice identity from query parameters: ``uniqueId`` or number, type, date and VAT."""
        unique_id = params.get("uniqueId")
        if unique_id and not alternatives:
            vat = unique_id.split("_", 1)[0]
            if rules.validate_vat(vat) and vat not in caller.allowed_vats:
                raise _ApiError(
                    status=403,
                    errors=[rules.error("forbidden_vat", lang=caller.lang, code="100403", vat=vat)],
                )
            return None, unique_id
        names = {
            "number": ("invoiceNumber", "documentNumber"),
            "type": ("invoiceType", "documentType"),
            "date": ("issueDate", "documentDate"),
            "vat": ("vat", "taxpayerId"),
        }
        values = {
            key: next((params[n] for n in options if params.get(n)), None) for key, options in names.items()
        }
        identity, errors = _identity_from_values(
            number=values["number"],
            document_type=values["type"],
            issue_date=values["date"],
            vat=values["vat"] or caller.vat,
            lang=caller.lang,
            names={key: options[0] for key, options in names.items()},
        )
        if identity is None:
            raise _ApiError(status=400, errors=errors)
        if identity.vat not in caller.allowed_vats:
            raise _ApiError(
                status=403,
                errors=[rules.error("forbidden_vat", lang=caller.lang, code="100403", vat=identity.vat)],
            )
        return identity, identity.unique_id

    def _find(self, unique_id: str, identity: _Identity | None) -> InvoiceRecord | None:
        record = self._store.invoice(unique_id)
        if record is None or (identity is not None and record.issue_date != identity.issue_date):
            return None
        return record

    async def _get_bulk(self, request: Request, caller: _Caller) -> Response:
        body = await self._json_object(request, caller)
        self._expect_type(body, "Invoices", list, caller)
        items = body.get("Invoices") or []
        if not 1 <= len(items) <= BULK_LIMIT:
            raise _ApiError(
                status=400,
                errors=[rules.error("bulk_size", path="Invoices", lang=caller.lang, limit=BULK_LIMIT)],
            )
        method = body.get("methodOfGeneration")
        if method is not None and method not in GENERATION_METHODS:
            raise _ApiError(
                status=400,
                errors=[
                    rules.error(
                        "format",
                        path="methodOfGeneration",
                        lang=caller.lang,
                        field="methodOfGeneration",
                        format="ONLINE|OFFLINE",
                    )
                ],
            )
        now = self._clock()
        return JSONResponse({"Invoices": [self._bulk_item(item, method, caller, now) for item in items]})

    def _bulk_item(self, item: Any, method: str | None, caller: _Caller, now: float) -> dict[str, Any]:
        item = item if isinstance(item, dict) else {}
        unique_id = item.get("uniqueId")
        errors: list[dict[str, Any]] = []
        if isinstance(unique_id, str) and unique_id:
            identity = _identity_from_unique_id(unique_id)
            vat, dated = unique_id.split("_", 1)[0], None
        else:
            identity, errors = _identity_from_values(
                number=item.get("invoiceNumber"),
                document_type=item.get("invoiceType"),
                issue_date=item.get("issueDate"),
                vat=item.get("vat") or caller.vat,
                lang=caller.lang,
            )
            unique_id = identity.unique_id if identity else None
            vat, dated = (identity.vat, identity) if identity else (None, None)
        record = self._find(unique_id, dated) if unique_id and vat in caller.allowed_vats else None
        if record is None or (method is not None and record.method != method):
            return {
                "invoiceNumber": item.get("invoiceNumber") or (identity.number if identity else None),
                "uniqueId": unique_id,
                "invoiceType": item.get("invoiceType")
                or (rules.TYPE_CODES[identity.type_code] if identity else None),
                "issueDate": item.get("issueDate"),
                "einvoiceStatus": None,
                "ErrorList": errors or [_not_found(caller.lang)],
            }
        return {
            "invoiceNumber": record.number,
            "uniqueId": record.unique_id,
            "invoiceType": rules.TYPE_CODES[record.type_code],
            "issueDate": record.issue_date,
            "einvoiceStatus": record.effective_status(now),
            "ErrorList": list(record.errors),
        }

    # ------------------------------------------------------------------------------------------------
    # 7-9: PDFs and email
    # ------------------------------------------------------------------------------------------------

    def _generated_invoice(self, params: Mapping[str, str], caller: _Caller) -> InvoiceRecord:
        identity, unique_id = self._query_identity(params, caller, alternatives=True)
        record = self._find(unique_id, identity)
        if record is None:
            raise _ApiError(status=404, errors=[_not_found(caller.lang)])
        if not record.succeeded or record.xml is None:
            raise _ApiError(
                status=400,
                errors=[
                    rules.error(
                        "not_generated", lang=caller.lang, number=record.number, status=record.invoice_status
                    )
                ],
            )
        return record

    async def _print_pdf(self, request: Request, caller: _Caller) -> Response:
        record = self._generated_invoice(request.query_params, caller)
        xml = record.xml
        assert xml is not None
        pdf = self._rendered(
            record,
            "pdf",
            lambda: documents.build_invoice_pdf(
                invoice=record.einvoice or {}, xml=xml, xml_filename=_xml_filename(record)
            ),
        )
        return Response(pdf, media_type="application/pdf", headers=_pdf_disposition(record))

    async def _embedded_pdf(self, request: Request, caller: _Caller) -> Response:
        params = request.query_params
        response_type = params.get("pdfTypeResponse") or "PDF_FILE"
        if response_type not in PDF_RESPONSE_TYPES:
            raise _ApiError(
                status=400,
                errors=[
                    rules.error(
                        "format",
                        path="pdfTypeResponse",
                        lang=caller.lang,
                        field="pdfTypeResponse",
                        format="PDF_FILE|PDF_BASE64",
                    )
                ],
            )
        record = self._generated_invoice(params, caller)
        pdf = await self._uploaded_pdf(request, caller)
        assert record.xml is not None
        try:
            merged = documents.embed_xml_in_pdf(pdf, xml=record.xml, xml_filename=_xml_filename(record))
        except documents.InvalidPdfError as exc:
            raise _ApiError(
                status=400, errors=[rules.error("pdf_invalid", path="file", lang=caller.lang, reason=exc)]
            ) from None
        if response_type == "PDF_BASE64":
            return Response(base64.b64encode(merged), media_type="text/plain")
        return Response(merged, media_type="application/pdf", headers=_pdf_disposition(record))

    async def _uploaded_pdf(self, request: Request, caller: _Caller) -> bytes:
        content_type = request.headers.get("content-type", "")
        encoded: Any = None
        if content_type.startswith("multipart/form-data"):
            pdf = await self._multipart_file(request, caller, "file")
            if pdf is not None:
                return pdf
            encoded = await self._multipart_file(request, caller, "base64EncodedPdfFile")
        elif content_type.startswith("application/json"):
            encoded = (await self._json_object(request, caller)).get("base64EncodedPdfFile")
        if isinstance(encoded, (str, bytes)) and encoded:
            try:
                return base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise _ApiError(
                    status=400,
                    errors=[
                        rules.error(
                            "invalid",
                            path="base64EncodedPdfFile",
                            lang=caller.lang,
                            field="base64EncodedPdfFile",
                        )
                    ],
                ) from None
        raise _ApiError(status=400, errors=[rules.error("file_missing", path="file", lang=caller.lang)])

    async def _email(self, request: Request, caller: _Caller) -> Response:
        body = await self._json_object(request, caller)
        lang = caller.lang
        errors: list[dict[str, Any]] = []
        attachments = body.get("Attachments")
        details = rules.dig(attachments, "documentDetails")
        identities: list[tuple[int, _Identity]] = []
        if not isinstance(details, list) or not details:
            errors.append(
                rules.error(
                    "mandatory",
                    path="Attachments.documentDetails",
                    lang=lang,
                    field="Attachments.documentDetails",
                )
            )
        else:
            for index, detail in enumerate(details):
                identity, detail_errors = _identity_from_values(
                    number=rules.dig(detail, "InvoiceNumber"),
                    document_type=rules.dig(detail, "InvoiceType"),
                    issue_date=rules.dig(detail, "IssueDate"),
                    vat=rules.dig(detail, "Vat") or caller.vat,
                    lang=lang,
                    names={
                        "number": "InvoiceNumber",
                        "type": "InvoiceType",
                        "date": "IssueDate",
                        "vat": "Vat",
                    },
                    prefix=f"Attachments.documentDetails[{index}].",
                )
                errors += detail_errors
                if identity is not None:
                    identities.append((index, identity))
        preview = body.get("PreviewDetails")
        template = rules.dig(preview, "Template") or rules.dig(preview, "EmailTemplate")
        template_type = rules.dig(template, "Type")
        if template_type not in EMAIL_TEMPLATES:
            errors.append(
                rules.error(
                    "format",
                    path="PreviewDetails.Template.Type",
                    lang=lang,
                    field="PreviewDetails.Template.Type",
                    format="|".join(sorted(EMAIL_TEMPLATES)),
                )
            )
        recipients: dict[str, list[str]] = {"TO": [], "CC": []}
        parties = rules.dig(preview, "CounterParties") or rules.dig(preview, "CounterPartyDetails")
        for party_index, party in enumerate(rules.as_list(parties)):
            contacts = rules.dig(party, "Contacts") or rules.dig(party, "ContactDetails")
            for contact_index, contact in enumerate(rules.as_list(contacts)):
                path = f"PreviewDetails.CounterParties[{party_index}].Contacts[{contact_index}]"
                address = rules.dig(contact, "Email")
                kind = rules.dig(contact, "EmailRecipientType") or "TO"
                if not isinstance(address, str) or not EMAIL_PATTERN.match(address):
                    errors.append(
                        rules.error("email_invalid", path=f"{path}.Email", lang=lang, value=address)
                    )
                elif kind not in recipients:
                    errors.append(
                        rules.error(
                            "format",
                            path=f"{path}.EmailRecipientType",
                            lang=lang,
                            field="EmailRecipientType",
                            format="TO|CC",
                        )
                    )
                else:
                    recipients[kind].append(address)
        if not recipients["TO"] and not errors:
            errors.append(
                rules.error(
                    "mandatory",
                    path="PreviewDetails.CounterParties",
                    lang=lang,
                    field="PreviewDetails.CounterParties[].Contacts[] (TO)",
                )
            )
        if errors:
            raise _ApiError(status=400, errors=errors)
        missing = [
            _not_found(lang, path=f"Attachments.documentDetails[{index}]")
            for index, identity in identities
            if not self._sent_document_exists(identity, caller)
        ]
        if missing:
            raise _ApiError(status=404, errors=missing)
        email_id = uuid_module.uuid4().hex
        self._store.add_email(
            {
                "EmailId": email_id,
                "SentAt": _iso_utc(self._clock()),
                "Vat": caller.vat,
                "Template": template_type,
                "To": recipients["TO"],
                "Cc": recipients["CC"],
                "Documents": [identity.unique_id for _, identity in identities],
                "PrintTemplateId": rules.dig(attachments, "printTemplateId"),
                "DocumentType": rules.dig(attachments, "documentType"),
            }
        )
        return JSONResponse({"EmailId": email_id, "Status": "SENT", "ErrorList": []})

    def _sent_document_exists(self, identity: _Identity, caller: _Caller) -> bool:
        if identity.vat not in caller.allowed_vats:
            return False
        record = self._find(identity.unique_id, identity)
        return record is not None and record.succeeded

    # ------------------------------------------------------------------------------------------------
    # 10-13: onboarding
    # ------------------------------------------------------------------------------------------------

    async def _register_device(self, request: Request, caller: _Caller) -> Response:
        return await self._onboard(request, caller, with_otp=True)

    async def _generate_csr(self, request: Request, caller: _Caller) -> Response:
        return await self._onboard(request, caller, with_otp=False)

    async def _onboard(self, request: Request, caller: _Caller, *, with_otp: bool) -> Response:
        body = await self._json_object(request, caller)
        self._expect_type(body, "DeviceDetails", dict, caller)
        self._expect_type(body, "OrganizationDetails", dict, caller)
        errors = self._otp_errors(body, caller) if with_otp else []
        serial = rules.dig(body, "DeviceDetails", "EgsSerialNumber")
        if not isinstance(serial, str) or not EGS_SERIAL_PATTERN.match(serial):
            errors.append(rules.error("egs_serial", path="DeviceDetails.EgsSerialNumber", lang=caller.lang))
        if not isinstance(body.get("OrganizationDetails"), dict):
            errors.append(
                rules.error(
                    "mandatory", path="OrganizationDetails", lang=caller.lang, field="OrganizationDetails"
                )
            )
        if errors:
            raise _ApiError(status=400, body={"DeviceId": None, "Status": "FAILED", "ErrorList": errors})
        assert isinstance(serial, str)
        with self._store.transaction():
            existing = self._store.device_by_serial(caller.vat, serial)
            if existing is not None:
                warning = rules.error(
                    "device_exists", path="DeviceDetails.EgsSerialNumber", lang=caller.lang, serial=serial
                )
                return JSONResponse(
                    {"DeviceId": existing.device_id, "Status": "GENERATED", "ErrorList": [warning]}
                )
            device = DeviceRecord(
                device_id=str(uuid_module.uuid4()),
                vat=caller.vat,
                created_at=self._clock(),
                egs_serial=serial,
                csid_generated=False,
                details={
                    "DeviceDetails": body["DeviceDetails"],
                    "OrganizationDetails": body["OrganizationDetails"],
                },
            )
            answer: dict[str, Any] = {"DeviceId": device.device_id, "Status": "GENERATED", "ErrorList": []}
            if with_otp:
                # Registering with an OTP also requests the production CSID, like generate-csid.
                answer["PcsidGenerationActivityId"] = self._start_pcsid_activity(device)
            self._store.put_device(device)
        log.info("Registered device %s for VAT %s", device.device_id, caller.vat)
        return JSONResponse(answer)

    def _start_pcsid_activity(self, device: DeviceRecord) -> str:
        """Start the device's PCSID activity; the device may generate once it has SUCCEEDED."""
        now = self._clock()
        activity = ActivityRecord(
            activity_id=secrets.token_hex(12),
            device_id=device.device_id,
            vat=device.vat,
            created_at=now,
            due_at=now + self.config.pcsid_delay,
            fails=self.config.pcsid_fail,
        )
        device.csid_generated, device.activity_id = True, activity.activity_id
        self._store.put_activity(activity)
        return activity.activity_id

    def _otp_errors(self, body: Mapping[str, Any], caller: _Caller) -> list[dict[str, Any]]:
        otp = body.get("Otp")
        otp = str(otp) if isinstance(otp, (str, int)) and not isinstance(otp, bool) else None
        if (
            otp is None
            or not OTP_PATTERN.match(otp)
            or (self.config.otps is not None and otp not in self.config.otps)
        ):
            return [rules.error("otp", path="Otp", lang=caller.lang)]
        return []

    async def _generate_csid(self, request: Request, caller: _Caller) -> Response:
        body = await self._json_object(request, caller)
        self._expect_type(body, "DeviceId", str, caller)
        device_id = body.get("DeviceId")
        failed = {"DeviceId": device_id, "Status": "FAILED", "PcsidGenerationActivityId": None}
        errors = self._otp_errors(body, caller)
        if not device_id:
            errors.append(rules.error("mandatory", path="DeviceId", lang=caller.lang, field="DeviceId"))
        if errors:
            raise _ApiError(status=400, body={**failed, "ErrorList": errors})
        with self._store.transaction():
            device = self._store.device(device_id)
            if device is None or device.vat != caller.vat:
                not_found = rules.error(
                    "device_not_found",
                    path="DeviceId",
                    lang=caller.lang,
                    code=rules.CODE_NOT_FOUND,
                    device=device_id,
                )
                raise _ApiError(status=404, body={**failed, "ErrorList": [not_found]})
            if device.csid_generated:
                raise _ApiError(
                    status=400,
                    body={
                        **failed,
                        "ErrorList": [rules.error("csid_generated", path="DeviceId", lang=caller.lang)],
                    },
                )
            activity_id = self._start_pcsid_activity(device)
            self._store.put_device(device)
        return JSONResponse(
            {
                "DeviceId": device.device_id,
                "Status": "GENERATED",
                "PcsidGenerationActivityId": activity_id,
                "ErrorList": [],
            }
        )

    async def _pcsid_status(self, request: Request, caller: _Caller) -> Response:
        activity_id = request.path_params["activity_id"]
        activity = self._store.activity(activity_id)
        if activity is None or activity.vat != caller.vat:
            not_found = rules.error(
                "activity_not_found", lang=caller.lang, code=rules.CODE_NOT_FOUND, activity=activity_id
            )
            raise _ApiError(status=404, errors=[not_found])
        now = self._clock()
        status = activity.status(now)
        done = status != "IN_PROGRESS"
        errors = (
            [rules.error("pcsid_failed", lang=caller.lang, code=rules.CODE_ZATCA, source=rules.SOURCE_ZATCA)]
            if status == "FAILED"
            else []
        )
        body = {
            "ActivityType": "ZATCA_COMPLIANCE_INVOICE",
            "Status": status,
            "CreatedAt": _iso_utc(activity.created_at),
            "UpdatedAt": _iso_utc(activity.due_at if done else activity.created_at),
            "CompletedAt": _iso_utc(activity.due_at) if done else None,
            "ErrorList": errors,
        }
        return JSONResponse(body, status_code=500 if status == "FAILED" else 200)


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------


def _language(value: str | None) -> str:
    return "ar" if value and value.strip().lower().startswith("ar") else "en"


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seller_vat(einvoice: dict[str, Any]) -> str | None:
    return rules.text(rules.dig(einvoice, "AccountingSupplierParty", "Party", "PartyTaxScheme", "CompanyID"))


def _buyer_vat(einvoice: dict[str, Any]) -> str | None:
    return rules.text(rules.dig(einvoice, "AccountingCustomerParty", "Party", "PartyTaxScheme", "CompanyID"))


def _identity_of(einvoice: dict[str, Any] | None, vat: str) -> _Identity | None:
    """Return the identity of an E-Invoice, ``None`` when number, type or issue date is unusable."""
    if einvoice is None:
        return None
    number = rules.invoice_number(einvoice)
    code = rules.type_code(einvoice)
    issue_date = rules.parse_date(einvoice.get("IssueDate"))
    if number is None or code is None or issue_date is None:
        return None
    return _Identity(vat=vat, number=number, type_code=code, issue_date=issue_date.isoformat())


def _identity_from_unique_id(unique_id: str) -> _Identity | None:
    """Split ``<vat>_<number>_<type code>_<year>``; the number itself may contain underscores."""
    parts = unique_id.split("_")
    if len(parts) < 4 or parts[-2] not in rules.TYPE_CODES:
        return None
    return _Identity(vat=parts[0], number="_".join(parts[1:-2]), type_code=parts[-2], issue_date=None)


def _identity_from_values(
    *,
    number: Any,
    document_type: Any,
    issue_date: Any,
    vat: Any,
    lang: str,
    names: Mapping[str, str] | None = None,
    prefix: str = "",
) -> tuple[_Identity | None, list[dict[str, Any]]]:
    """Check the four parts of an invoice identity sent as separate values."""
    names = names or {"number": "invoiceNumber", "type": "invoiceType", "date": "issueDate", "vat": "vat"}
    errors = []
    if not isinstance(number, str) or not number:
        errors.append(
            rules.error("mandatory", path=prefix + names["number"], lang=lang, field=names["number"])
        )
    code = rules.DOCUMENT_TYPES.get(document_type) if isinstance(document_type, str) else None
    if code is None and document_type in rules.TYPE_CODES:
        code = document_type
    if code is None:
        errors.append(
            rules.error(
                "format",
                path=prefix + names["type"],
                lang=lang,
                field=names["type"],
                format="INV|CRN|DBN|RECEIPT",
            )
        )
    parsed_date = rules.parse_date(issue_date)
    if parsed_date is None:
        errors.append(
            rules.error(
                "format", path=prefix + names["date"], lang=lang, field=names["date"], format="YYYY-MM-DD"
            )
        )
    if not rules.validate_vat(vat):
        errors.append(
            rules.error(
                "format", path=prefix + names["vat"], lang=lang, field=names["vat"], format="3xxxxxxxxxxxxx3"
            )
        )
    if errors:
        return None, errors
    assert code is not None and parsed_date is not None
    return _Identity(vat=vat, number=number, type_code=code, issue_date=parsed_date.isoformat()), []


def _not_found(lang: str, *, path: str | None = None) -> dict[str, Any]:
    return rules.error("not_found", path=path, lang=lang, code=rules.CODE_NOT_FOUND)


def _number_reused(existing: InvoiceRecord, caller: _Caller) -> dict[str, Any]:
    return rules.error(
        "number_reused",
        path="EInvoice.ID",
        lang=caller.lang,
        number=existing.number,
        type=existing.type_code,
        date=existing.issue_date,
    )


def _duplicate_warning(lang: str) -> dict[str, Any]:
    return {
        "ErrorCode": DUPLICATE_CODE,
        "ErrorMessage": rules.message("duplicate", lang),
        "ErrorSource": rules.SOURCE_CLEARTAX,
        "Path": None,
    }


_RULE_ID = re.compile(r"^\[([A-Z0-9-]+)\]\s*")


def _zatca_message(entry: dict[str, Any], kind: str) -> dict[str, Any]:
    match = _RULE_ID.match(entry["ErrorMessage"])
    code = match.group(1) if match else entry["ErrorCode"]
    category = (
        "KSA" if code.startswith(("BR-KSA", "KSA")) else ("EN" if code.startswith("BR-") else "CLEARTAX")
    )
    return {
        "type": kind,
        "code": code,
        "category": category,
        "message": entry["ErrorMessage"],
        "status": kind,
    }


def _zatca_answer(record: InvoiceRecord, *, lang: str) -> dict[str, Any]:
    """Return the ZATCA-shaped answer of an offline (client-signed) submission."""
    info = [
        {
            "type": "INFO",
            "code": "XSD_ZATCA_VALID",
            "category": "XSD validation",
            "message": rules.message("xsd_valid", lang),
            "status": "PASS",
        }
    ]
    errors = [_zatca_message(entry, "ERROR") for entry in record.errors]
    warnings = [_zatca_message(entry, "WARNING") for entry in record.warnings]
    status = "ERROR" if errors else ("WARNING" if warnings else "PASS")
    standard = record.type_name is not None and record.type_name.startswith("01")
    cleared = base64.b64encode(record.xml).decode() if standard and record.succeeded and record.xml else None
    return {
        "validationResults": {
            "infoMessages": info,
            "warningMessages": warnings,
            "errorMessages": errors,
            "status": status,
        },
        "clearedInvoice": cleared,
        "clearanceStatus": record.invoice_status,
    }


def _offline_duplicate(record: InvoiceRecord, lang: str) -> dict[str, Any]:
    answer = copy.deepcopy(record.validation) if record.validation else _zatca_answer(record, lang=lang)
    results = answer["validationResults"]
    results["warningMessages"].append(_zatca_message(_duplicate_warning(lang), "WARNING"))
    results["status"] = "WARNING"
    return answer


def _xml_filename(record: InvoiceRecord) -> str:
    """Return the ZATCA-style XML file name ``<VAT>_<YYYYMMDD>T<HHMMSS>_<number>.xml``."""
    stamp = record.issue_date.replace("-", "") + "T" + (record.issue_time or "000000").replace(":", "")
    number = re.sub(r"[^A-Za-z0-9-]", "-", record.number)
    return f"{record.vat}_{stamp}_{number}.xml"


def _pdf_disposition(record: InvoiceRecord) -> dict[str, str]:
    return {"Content-Disposition": f'inline; filename="{_xml_filename(record)[:-4]}.pdf"'}
