"""Validation rules of the E-Invoice object, reported as ClearTax ``ErrorList`` entries with a ``Path``.

Every check reads the JSON model of a ZATCA UBL 2.1 invoice defensively: whatever shape a client
sends, validation answers with error entries and never raises.
"""

from __future__ import annotations

import re
import uuid as uuid_module
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Any

#: ``ErrorCode`` of input errors ClearTax finds itself.
CODE_INPUT = "6002"
#: ``ErrorCode`` of a resource that does not exist.
CODE_NOT_FOUND = "6003"
#: ``ErrorCode`` of a ZATCA business-rule violation.
CODE_ZATCA = "8001"

SOURCE_CLEARTAX = "CLEARTAX"
SOURCE_ZATCA = "ZATCA"

#: Query-side document types and the UBL ``InvoiceTypeCode.value`` behind each.
DOCUMENT_TYPES: dict[str, str] = {"INV": "388", "CRN": "381", "DBN": "383", "RECEIPT": "386"}
TYPE_CODES: dict[str, str] = {code: name for name, code in DOCUMENT_TYPES.items()}
NOTE_TYPE_CODES = frozenset({"381", "383"})

EXEMPTION_CODES = frozenset(
    {
        "VATEX-SA-29",
        "VATEX-SA-29-7",
        "VATEX-SA-30",
        "VATEX-SA-32",
        "VATEX-SA-33",
        "VATEX-SA-34-1",
        "VATEX-SA-34-2",
        "VATEX-SA-34-3",
        "VATEX-SA-34-4",
        "VATEX-SA-34-5",
        "VATEX-SA-35",
        "VATEX-SA-36",
        "VATEX-SA-EDU",
        "VATEX-SA-HEA",
        "VATEX-SA-MLTRY",
        "VATEX-SA-OOS",
    }
)

VAT_PATTERN = re.compile(r"^3\d{13}3$")
TYPE_NAME_PATTERN = re.compile(r"^0[12][01]{5}$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_PATTERN = re.compile(r"^\d{2}:\d{2}:\d{2}$")
POSTAL_CODE_PATTERN = re.compile(r"^\d{5}$")
#: Rounding slack accepted when totals are compared (amounts carry two decimals).
TOLERANCE = Decimal("0.01")

#: Message catalogue: key -> (English, Arabic). Arabic falls back to English when missing.
MESSAGES: dict[str, tuple[str, str | None]] = {
    "mandatory": ("{field} is mandatory.", "الحقل {field} إلزامي."),
    "invalid": ("{field} has an invalid value.", "قيمة الحقل {field} غير صالحة."),
    "format": ("{field} must match the format {format}.", "يجب أن يطابق الحقل {field} الصيغة {format}."),
    "profile": ("ProfileID must be reporting:1.0.", "يجب أن تكون قيمة ProfileID هي reporting:1.0."),
    "seller_vat_mismatch": (
        "Seller VAT number {found} does not match the vat header {vat}.",
        "الرقم الضريبي للبائع {found} لا يطابق ترويسة vat ذات القيمة {vat}.",
    ),
    "lines_missing": (
        "[BR-16] An invoice must have at least one invoice line.",
        "[BR-16] يجب أن تحتوي الفاتورة على بند واحد على الأقل.",
    ),
    "seller_street": (
        "[BR-KSA-09] Seller address must contain the street name.",
        "[BR-KSA-09] يجب أن يحتوي عنوان البائع على اسم الشارع.",
    ),
    "buyer_missing": (
        "Buyer details (AccountingCustomerParty) are mandatory for standard invoices.",
        "بيانات المشتري (AccountingCustomerParty) إلزامية في الفواتير الضريبية القياسية.",
    ),
    "buyer_building": (
        "[BR-KSA-63] Buyer building number is mandatory when the buyer country is SA.",
        "[BR-KSA-63] رقم مبنى المشتري إلزامي عندما تكون دولة المشتري SA.",
    ),
    "buyer_postal": (
        "[BR-KSA-67] Buyer postal code must have 5 digits when the buyer country is SA.",
        "[BR-KSA-67] يجب أن يتكون الرمز البريدي للمشتري من 5 أرقام عندما تكون دولة المشتري SA.",
    ),
    "buyer_country": (
        "Buyer country must be SA unless the invoice is an export invoice.",
        "يجب أن تكون دولة المشتري SA ما لم تكن الفاتورة فاتورة تصدير.",
    ),
    "buyer_vat_missing": (
        "[BR-KSA-81] Standard invoices must contain the buyer VAT number or group VAT number.",
        "[BR-KSA-81] يجب أن تحتوي الفواتير الضريبية القياسية على الرقم الضريبي للمشتري"
        " أو الرقم الضريبي للمجموعة.",
    ),
    "buyer_vat_format": (
        "[BR-KSA-44] Buyer VAT number must have 15 digits, starting and ending with 3.",
        "[BR-KSA-44] يجب أن يتكون الرقم الضريبي للمشتري من 15 رقمًا يبدأ وينتهي بالرقم 3.",
    ),
    "billing_reference": (
        "[BR-KSA-56] Credit and debit notes must reference the original invoice in BillingReference.",
        "[BR-KSA-56] يجب أن تشير إشعارات الدائن والمدين إلى الفاتورة الأصلية في BillingReference.",
    ),
    "note_reason": (
        "[BR-KSA-17] Credit and debit notes must state their reason in PaymentMeans InstructionNote.",
        "[BR-KSA-17] يجب أن تذكر إشعارات الدائن والمدين سبب إصدارها في InstructionNote.",
    ),
    "supply_end_without_start": (
        "[BR-KSA-35] A supply end date requires a supply date.",
        "[BR-KSA-35] يتطلب تاريخ انتهاء التوريد وجود تاريخ التوريد.",
    ),
    "supply_dates": (
        "[BR-KSA-36] Supply date {start} must not be after supply end date {end}.",
        "[BR-KSA-36] يجب ألا يكون تاريخ التوريد {start} بعد تاريخ انتهاء التوريد {end}.",
    ),
    "issue_date_future": (
        "[BR-KSA-04] Issue date {date} must not be in the future.",
        "[BR-KSA-04] يجب ألا يكون تاريخ الإصدار {date} في المستقبل.",
    ),
    "tax_currency": (
        "[BR-KSA-68] Tax currency code must be SAR.",
        "[BR-KSA-68] يجب أن يكون رمز عملة الضريبة SAR.",
    ),
    "line_sum": (
        "[BR-CO-10] Sum of invoice line net amounts ({lines}) must equal LineExtensionAmount ({total}).",
        "[BR-CO-10] يجب أن يساوي مجموع صافي مبالغ البنود ({lines}) قيمة LineExtensionAmount ({total}).",
    ),
    "tax_sum": (
        "[BR-CO-14] Total VAT amount ({total}) must equal the sum of VAT subtotals ({subtotals}).",
        "[BR-CO-14] يجب أن يساوي إجمالي ضريبة القيمة المضافة ({total})"
        " مجموع المبالغ الفرعية للضريبة ({subtotals}).",
    ),
    "inclusive_sum": (
        "[BR-CO-15] Total with VAT ({inclusive}) must equal total without VAT ({exclusive})"
        " plus VAT ({tax}).",
        "[BR-CO-15] يجب أن يساوي الإجمالي شاملًا الضريبة ({inclusive})"
        " الإجمالي دون الضريبة ({exclusive}) مضافًا إليه الضريبة ({tax}).",
    ),
    "exemption_code": (
        "[BR-KSA-69] VAT category {category} requires a TaxExemptionReasonCode from the VATEX-SA list.",
        "[BR-KSA-69] فئة الضريبة {category} تتطلب رمز سبب إعفاء من قائمة VATEX-SA.",
    ),
    "exemption_reason": (
        "[BR-KSA-69] VAT category {category} requires a TaxExemptionReason text.",
        "[BR-KSA-69] فئة الضريبة {category} تتطلب نص سبب الإعفاء TaxExemptionReason.",
    ),
    "device_unknown": (
        "Device {device} is not registered for VAT {vat}.",
        "الجهاز {device} غير مسجل للرقم الضريبي {vat}.",
    ),
    "device_not_ready": (
        "Device {device} has no production CSID yet.",
        "لا يملك الجهاز {device} شهادة تشفير إنتاجية بعد.",
    ),
    "async_simplified_only": (
        "Async generation accepts only simplified invoices and their notes (InvoiceTypeCode name 02...).",
        "يقبل الإنشاء غير المتزامن الفواتير المبسطة وإشعاراتها فقط (InvoiceTypeCode name 02...).",
    ),
    "number_reused": (
        "Invoice number {number} of type {type} was already used for an invoice issued on {date}.",
        "رقم الفاتورة {number} من النوع {type} مستخدم بالفعل لفاتورة صادرة بتاريخ {date}.",
    ),
    "duplicate": (
        "This invoice was already generated; the stored result is returned unchanged.",
        "تم إنشاء هذه الفاتورة سابقًا؛ تمت إعادة النتيجة المخزنة دون تغيير.",
    ),
    "generated": ("E-Invoice generated successfully.", "تم إنشاء الفاتورة الإلكترونية بنجاح."),
    "pending": (
        "E-Invoice generated; reporting to ZATCA is pending.",
        "تم إنشاء الفاتورة الإلكترونية؛ الإبلاغ إلى هيئة الزكاة والضريبة والجمارك قيد الانتظار.",
    ),
    "rejected": ("E-Invoice validation failed.", "فشل التحقق من الفاتورة الإلكترونية."),
    "not_found": ("Invoice not found.", "الفاتورة غير موجودة."),
    "not_generated": (
        "Invoice {number} has no generated e-invoice (status {status}).",
        "الفاتورة {number} ليس لها فاتورة إلكترونية منشأة (الحالة {status}).",
    ),
    "vat_header": (
        "Header vat is mandatory: a 15-digit VAT number that starts and ends with 3.",
        "الترويسة vat إلزامية: رقم ضريبي من 15 رقمًا يبدأ وينتهي بالرقم 3.",
    ),
    "forbidden_vat": (
        "The user has no rights on VAT {vat}.",
        "لا يملك المستخدم صلاحيات على الرقم الضريبي {vat}.",
    ),
    "forbidden_admin": (
        "Only admin users may onboard devices.",
        "يقتصر تسجيل الأجهزة على المستخدمين المسؤولين.",
    ),
    "body_json": ("Request body must be a JSON object.", "يجب أن يكون متن الطلب كائن JSON."),
    "body_type": ("{field} must be {kind}.", "يجب أن يكون الحقل {field} من النوع {kind}."),
    "file_missing": ("Multipart field file is mandatory.", "الحقل file في الطلب متعدد الأجزاء إلزامي."),
    "xml_invalid": ("Uploaded XML is invalid: {reason}", "ملف XML المرفوع غير صالح: {reason}"),
    "pdf_invalid": ("Uploaded PDF is invalid: {reason}", "ملف PDF المرفوع غير صالح: {reason}"),
    "bulk_size": (
        "Invoices must hold between 1 and {limit} identities.",
        "يجب أن تحتوي Invoices على ما بين 1 و{limit} من المعرفات.",
    ),
    "email_invalid": ("{value} is not a valid email address.", "{value} ليس عنوان بريد إلكتروني صالحًا."),
    "otp": ("Otp must be a valid 6-digit ZATCA OTP.", "يجب أن يكون Otp رمز تحقق صالحًا من 6 أرقام."),
    "egs_serial": (
        "EgsSerialNumber must match 1-<text>|2-<text>|3-<text>.",
        "يجب أن يطابق EgsSerialNumber الصيغة 1-<text>|2-<text>|3-<text>.",
    ),
    "device_exists": (
        "Device with EgsSerialNumber {serial} is already registered; its DeviceId is returned.",
        "الجهاز ذو الرقم التسلسلي {serial} مسجل مسبقًا؛ تمت إعادة معرف الجهاز.",
    ),
    "csid_generated": (
        "Production CSID already generated for device",
        "تم إنشاء شهادة التشفير الإنتاجية لهذا الجهاز مسبقًا",
    ),
    "device_not_found": ("Device {device} not found.", "الجهاز {device} غير موجود."),
    "activity_not_found": ("Activity {activity} not found.", "النشاط {activity} غير موجود."),
    "pcsid_failed": (
        "ZATCA rejected the production CSID request.",
        "رفضت هيئة الزكاة والضريبة والجمارك طلب شهادة التشفير الإنتاجية.",
    ),
    "icv_missing": (
        "[KSA-16] The signed XML must carry the invoice counter (ICV).",
        "[KSA-16] يجب أن يحمل ملف XML الموقع عداد الفاتورة (ICV).",
    ),
    "pih_missing": (
        "[KSA-13] The signed XML must carry the previous invoice hash (PIH).",
        "[KSA-13] يجب أن يحمل ملف XML الموقع تجزئة الفاتورة السابقة (PIH).",
    ),
    "icv_order": (
        "[KSA-16] Invoice counter {icv} does not follow the last counter {last} of the device.",
        "[KSA-16] عداد الفاتورة {icv} لا يلي آخر عداد للجهاز {last}.",
    ),
    "pih_chain": (
        "[KSA-13] PIH does not match the hash of the previous invoice of the device.",
        "[KSA-13] قيمة PIH لا تطابق تجزئة الفاتورة السابقة للجهاز.",
    ),
    "xsd_valid": (
        "Complied with UBL 2.1 standards in line with ZATCA specifications",
        "متوافق مع معايير UBL 2.1 وفق مواصفات هيئة الزكاة والضريبة والجمارك",
    ),
}


def message(key: str, lang: str = "en", **values: Any) -> str:
    """Return the catalogue message ``key`` in ``lang``, falling back to English.

    :param key: catalogue key.
    :param lang: ``en`` or ``ar``.
    :param values: values substituted into the message.
    """
    english, arabic = MESSAGES[key]
    template = arabic if lang == "ar" and arabic else english
    return template.format(**values)


def error(
    key: str,
    *,
    path: str | None = None,
    lang: str = "en",
    code: str = CODE_INPUT,
    source: str = SOURCE_CLEARTAX,
    **values: Any,
) -> dict[str, Any]:
    """Build one ``ErrorList`` entry.

    :param key: catalogue key of the message.
    :param path: dotted path of the offending field, ``None`` when it concerns the whole request.
    :param lang: language of the message.
    :param code: ClearTax ``ErrorCode``.
    :param source: ``CLEARTAX`` or ``ZATCA``.
    :param values: values substituted into the message.
    """
    return {
        "ErrorCode": code,
        "ErrorMessage": message(key, lang, **values),
        "ErrorSource": source,
        "Path": path,
    }


def dig(value: Any, *keys: str | int) -> Any:
    """Walk nested dicts and lists, returning ``None`` as soon as a step does not exist.

    :param value: the structure to walk.
    :param keys: dict keys and list indexes, in order.
    """
    for key in keys:
        if isinstance(key, int):
            if not isinstance(value, list) or not -len(value) <= key < len(value):
                return None
            value = value[key]
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            return None
    return value


def text(value: Any) -> str | None:
    """Return the text of a plain or bilingual (``{en, ar}``) value, ``None`` when empty.

    :param value: a string, number, or ``{"en": ..., "ar": ...}`` dict.
    """
    if isinstance(value, dict):
        value = value.get("en") or value.get("ar") or value.get("value")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def amount(value: Any) -> Decimal | None:
    """Return the decimal value of an amount (``{currencyID, value}`` or a bare number).

    :param value: the amount as sent.
    """
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def as_list(value: Any) -> list[Any]:
    """Return ``value`` as a list: lists as they are, a lone object wrapped, nothing as empty.

    :param value: a list, a single object or ``None``.
    """
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_date(value: Any) -> date | None:
    """Return the date of a ``YYYY-MM-DD`` string, ``None`` when it is not one.

    :param value: the value as sent.
    """
    if not isinstance(value, str) or not DATE_PATTERN.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_time(value: Any) -> time | None:
    """Return the time of a ``HH:mm:ss`` string, ``None`` when it is not one.

    :param value: the value as sent.
    """
    if not isinstance(value, str) or not TIME_PATTERN.match(value):
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        return None


def invoice_number(einvoice: dict[str, Any]) -> str | None:
    """Return the invoice number (``ID``) of an E-Invoice.

    :param einvoice: the E-Invoice object.
    """
    return text(einvoice.get("ID"))


def type_code(einvoice: dict[str, Any]) -> str | None:
    """Return ``InvoiceTypeCode.value`` (``388``, ``381``, ``383`` or ``386``) or ``None``.

    :param einvoice: the E-Invoice object.
    """
    value = text(dig(einvoice, "InvoiceTypeCode", "value"))
    return value if value in TYPE_CODES else None


def type_name(einvoice: dict[str, Any]) -> str | None:
    """Return ``InvoiceTypeCode.name`` when it is a valid 7-digit transaction code.

    :param einvoice: the E-Invoice object.
    """
    value = dig(einvoice, "InvoiceTypeCode", "name")
    return value if isinstance(value, str) and TYPE_NAME_PATTERN.match(value) else None


def is_simplified(einvoice: dict[str, Any]) -> bool | None:
    """Tell whether the invoice is simplified (B2C), ``None`` when its type name is invalid.

    :param einvoice: the E-Invoice object.
    """
    name = type_name(einvoice)
    return None if name is None else name.startswith("02")


def validate_vat(value: Any) -> bool:
    """Tell whether ``value`` is a 15-digit VAT number that starts and ends with 3.

    :param value: the value as sent.
    """
    return isinstance(value, str) and bool(VAT_PATTERN.match(value))


class _Checker:
    """Collect the errors of one E-Invoice; keeps language and root path in one place."""

    def __init__(self, *, lang: str, root: str) -> None:
        self.lang = lang
        self.root = root
        self.errors: list[dict[str, Any]] = []

    def path(self, *parts: str | int) -> str:
        rendered = self.root
        for part in parts:
            rendered += f"[{part}]" if isinstance(part, int) else f".{part}"
        return rendered

    def input(self, key: str, *parts: str | int, **values: Any) -> None:
        self.errors.append(error(key, path=self.path(*parts), lang=self.lang, **values))

    def zatca(self, key: str, *parts: str | int, **values: Any) -> None:
        self.errors.append(
            error(key, path=self.path(*parts), lang=self.lang, code=CODE_ZATCA, source=SOURCE_ZATCA, **values)
        )

    def mandatory(self, *parts: str | int) -> None:
        self.input("mandatory", *parts, field=self.path(*parts))


def validate_einvoice(
    einvoice: dict[str, Any], *, vat: str, today: date, lang: str = "en", root: str = "EInvoice"
) -> list[dict[str, Any]]:
    """Check an E-Invoice against the mandatory fields and business rules ClearTax enforces.

    :param einvoice: the E-Invoice object (JSON model of a UBL 2.1 invoice).
    :param vat: the seller VAT of the request (``vat`` header).
    :param today: the current date in Saudi Arabia, for the no-future-date rule.
    :param lang: language of the messages, ``en`` or ``ar``.
    :param root: path prefix of every reported ``Path``.
    """
    check = _Checker(lang=lang, root=root)
    _check_header(check, einvoice, today)
    _check_seller(check, einvoice, vat)
    _check_buyer(check, einvoice)
    _check_notes(check, einvoice)
    _check_delivery(check, einvoice)
    _check_lines(check, einvoice)
    _check_totals(check, einvoice)
    return check.errors


def _check_header(check: _Checker, einvoice: dict[str, Any], today: date) -> None:
    if einvoice.get("ProfileID") != "reporting:1.0":
        check.input("profile", "ProfileID")
    if invoice_number(einvoice) is None:
        check.mandatory("ID")
    if einvoice.get("UUID") is not None:
        try:
            uuid_module.UUID(str(einvoice["UUID"]))
        except ValueError:
            check.input("invalid", "UUID", field=check.path("UUID"))
    if not isinstance(einvoice.get("InvoiceTypeCode"), dict):
        check.mandatory("InvoiceTypeCode")
    else:
        if type_name(einvoice) is None:
            check.input(
                "format",
                "InvoiceTypeCode",
                "name",
                field=check.path("InvoiceTypeCode", "name"),
                format="01xxxxx|02xxxxx (x = 0|1)",
            )
        if type_code(einvoice) is None:
            check.input(
                "format",
                "InvoiceTypeCode",
                "value",
                field=check.path("InvoiceTypeCode", "value"),
                format="388|381|383|386",
            )
    issue_date = parse_date(einvoice.get("IssueDate"))
    if issue_date is None:
        check.input("format", "IssueDate", field=check.path("IssueDate"), format="YYYY-MM-DD")
    elif issue_date > today:
        check.zatca("issue_date_future", "IssueDate", date=issue_date.isoformat())
    if parse_time(einvoice.get("IssueTime")) is None:
        check.input("format", "IssueTime", field=check.path("IssueTime"), format="HH:mm:ss")
    document_currency = einvoice.get("DocumentCurrencyCode")
    if document_currency is not None and not (
        isinstance(document_currency, str) and re.fullmatch(r"[A-Z]{3}", document_currency)
    ):
        check.input(
            "format", "DocumentCurrencyCode", field=check.path("DocumentCurrencyCode"), format="ISO 4217"
        )
    tax_currency = einvoice.get("TaxCurrencyCode")
    if tax_currency is not None and tax_currency != "SAR":
        check.zatca("tax_currency", "TaxCurrencyCode")


def _check_seller(check: _Checker, einvoice: dict[str, Any], vat: str) -> None:
    party = dig(einvoice, "AccountingSupplierParty", "Party")
    if not isinstance(party, dict):
        check.mandatory("AccountingSupplierParty", "Party")
        return
    if text(dig(party, "PostalAddress", "StreetName")) is None:
        check.zatca("seller_street", "AccountingSupplierParty", "Party", "PostalAddress", "StreetName")
    company_id = text(dig(party, "PartyTaxScheme", "CompanyID"))
    path = ("AccountingSupplierParty", "Party", "PartyTaxScheme", "CompanyID")
    if company_id is None:
        check.mandatory(*path)
    elif company_id != vat:
        check.input("seller_vat_mismatch", *path, found=company_id, vat=vat)


def _check_buyer(check: _Checker, einvoice: dict[str, Any]) -> None:
    name = type_name(einvoice)
    standard = name is not None and name.startswith("01")
    export = name is not None and name[4] == "1"
    party = dig(einvoice, "AccountingCustomerParty", "Party")
    if not isinstance(party, dict):
        if standard:
            check.zatca("buyer_missing", "AccountingCustomerParty", "Party")
        return
    base = ("AccountingCustomerParty", "Party")
    country = text(dig(party, "PostalAddress", "Country", "IdentificationCode"))
    if country == "SA":
        if text(dig(party, "PostalAddress", "BuildingNumber")) is None:
            check.zatca("buyer_building", *base, "PostalAddress", "BuildingNumber")
        postal = text(dig(party, "PostalAddress", "PostalZone"))
        if postal is None or not POSTAL_CODE_PATTERN.match(postal):
            check.zatca("buyer_postal", *base, "PostalAddress", "PostalZone")
    elif country is not None and not export:
        check.zatca("buyer_country", *base, "PostalAddress", "Country", "IdentificationCode")
    company_id = text(dig(party, "PartyTaxScheme", "CompanyID"))
    if company_id is None:
        if standard and not export:
            check.zatca("buyer_vat_missing", *base, "PartyTaxScheme", "CompanyID")
    elif not export and not validate_vat(company_id):
        check.zatca("buyer_vat_format", *base, "PartyTaxScheme", "CompanyID")


def _check_notes(check: _Checker, einvoice: dict[str, Any]) -> None:
    if type_code(einvoice) not in NOTE_TYPE_CODES:
        return
    references = [
        text(dig(reference, "InvoiceDocumentReference", "ID"))
        for reference in as_list(einvoice.get("BillingReference"))
    ]
    if not any(references):
        check.zatca("billing_reference", "BillingReference")
    reasons = [text(dig(means, "InstructionNote")) for means in as_list(einvoice.get("PaymentMeans"))]
    if not any(reasons):
        check.zatca("note_reason", "PaymentMeans")


def _check_delivery(check: _Checker, einvoice: dict[str, Any]) -> None:
    for index, delivery in enumerate(as_list(einvoice.get("Delivery"))):
        start = parse_date(dig(delivery, "ActualDeliveryDate"))
        end = parse_date(dig(delivery, "LatestDeliveryDate"))
        if end is not None and start is None:
            check.zatca("supply_end_without_start", "Delivery", index, "ActualDeliveryDate")
        elif start is not None and end is not None and start > end:
            check.zatca("supply_dates", "Delivery", index, "ActualDeliveryDate", start=start, end=end)


def _check_lines(check: _Checker, einvoice: dict[str, Any]) -> None:
    lines = as_list(einvoice.get("InvoiceLine"))
    if not lines:
        check.zatca("lines_missing", "InvoiceLine")
    for index, line in enumerate(lines):
        if amount(dig(line, "LineExtensionAmount")) is None:
            check.mandatory("InvoiceLine", index, "LineExtensionAmount")
        category = dig(line, "Item", "ClassifiedTaxCategory")
        category_id = text(dig(category, "ID"))
        if category_id is None:
            check.mandatory("InvoiceLine", index, "Item", "ClassifiedTaxCategory", "ID")
        elif category_id in {"Z", "E", "O"}:
            base = ("InvoiceLine", index, "Item", "ClassifiedTaxCategory")
            if text(dig(category, "TaxExemptionReasonCode")) not in EXEMPTION_CODES:
                check.zatca("exemption_code", *base, "TaxExemptionReasonCode", category=category_id)
            if text(dig(category, "TaxExemptionReason")) is None:
                check.zatca("exemption_reason", *base, "TaxExemptionReason", category=category_id)


def _check_totals(check: _Checker, einvoice: dict[str, Any]) -> None:
    totals = einvoice.get("LegalMonetaryTotal")
    if not isinstance(totals, dict):
        check.mandatory("LegalMonetaryTotal")
        return
    values: dict[str, Decimal] = {}
    for name in ("LineExtensionAmount", "TaxExclusiveAmount", "TaxInclusiveAmount", "PayableAmount"):
        value = amount(totals.get(name))
        if value is None:
            check.mandatory("LegalMonetaryTotal", name)
        else:
            values[name] = value
    line_amounts = [amount(dig(line, "LineExtensionAmount")) for line in as_list(einvoice.get("InvoiceLine"))]
    if line_amounts and None not in line_amounts and "LineExtensionAmount" in values:
        line_sum = sum(line_amounts, Decimal(0))
        if abs(line_sum - values["LineExtensionAmount"]) > TOLERANCE:
            check.zatca(
                "line_sum",
                "LegalMonetaryTotal",
                "LineExtensionAmount",
                lines=line_sum,
                total=values["LineExtensionAmount"],
            )
    tax_totals = as_list(einvoice.get("TaxTotal"))
    if not tax_totals:
        check.mandatory("TaxTotal")
        return
    document_tax: Decimal | None = None
    for index, tax_total in enumerate(tax_totals):
        tax_amount = amount(dig(tax_total, "TaxAmount"))
        if tax_amount is None:
            check.mandatory("TaxTotal", index, "TaxAmount")
            continue
        subtotals = as_list(dig(tax_total, "TaxSubtotal"))
        if not subtotals:
            continue
        # The TaxTotal that carries the breakdown is the one in document currency (BR-CO-14 applies to it).
        document_tax = tax_amount if document_tax is None else document_tax
        subtotal_amounts = [amount(dig(subtotal, "TaxAmount")) for subtotal in subtotals]
        if None in subtotal_amounts:
            check.mandatory("TaxTotal", index, "TaxSubtotal", "TaxAmount")
            continue
        subtotal_sum = sum(subtotal_amounts, Decimal(0))  # type: ignore[arg-type]
        if abs(subtotal_sum - tax_amount) > TOLERANCE:
            check.zatca("tax_sum", "TaxTotal", index, "TaxAmount", total=tax_amount, subtotals=subtotal_sum)
    if document_tax is None:
        document_tax = amount(dig(tax_totals[0], "TaxAmount"))
    if document_tax is not None and {"TaxExclusiveAmount", "TaxInclusiveAmount"} <= values.keys():
        exclusive, inclusive = values["TaxExclusiveAmount"], values["TaxInclusiveAmount"]
        if abs(exclusive + document_tax - inclusive) > TOLERANCE:
            check.zatca(
                "inclusive_sum",
                "LegalMonetaryTotal",
                "TaxInclusiveAmount",
                inclusive=inclusive,
                exclusive=exclusive,
                tax=document_tax,
            )
