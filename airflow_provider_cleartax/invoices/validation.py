"""Client-side checks of an E-Invoice against ClearTax's rules, and the identity of an invoice.

The checks run on the JSON form of the invoice so that every problem is reported in one pass:
type errors found by the pydantic models and business-rule violations alike, each with the
invoice number and a path such as ``EInvoice.InvoiceLine[2].Item.ClassifiedTaxCategory.Percent``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, Literal

from pydantic import ValidationError

from .models import (
    BUYER_ID_SCHEMES,
    DOCUMENT_TYPES,
    EXEMPTION_REASON_CODES,
    NOTE_TYPE_CODES,
    PROFILE_ID,
    TAX_CATEGORY_PERCENT,
    TAX_CURRENCY,
    UNION_TAGS,
    EInvoice,
    to_decimal,
)
from .problems import InvoiceProblem, InvoiceValidationError

ROOT = "EInvoice"
HALALA = Decimal("0.01")
# Sums and products of in-range numbers (below 1e18) need more than the default 28 digits.
_WIDE = Context(prec=60)
_SHOWN_CHARS = 40
# Saudi Arabia keeps UTC+3 all year; "issue date in the future" is judged on the Saudi calendar.
KSA_TIMEZONE = timezone(timedelta(hours=3))

_VAT = re.compile(r"3\d{13}3")
_TYPE_NAME = re.compile(r"0[12][01]{5}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d")
_CURRENCY = re.compile(r"[A-Z]{3}")
_BUILDING_NUMBER = re.compile(r"\d{4}")
_POSTAL_CODE = re.compile(r"\d{5}")

_SELLER = "AccountingSupplierParty.Party"
_BUYER = "AccountingCustomerParty.Party"
_EXPORT_FLAG = 4


def round_halala(amount: Decimal) -> Decimal:
    """Round an amount half-up to the halala (0.01 SAR).

    :param amount: the amount to round.
    """
    return amount.quantize(HALALA, rounding=ROUND_HALF_UP, context=_WIDE)


def ksa_today() -> date:
    """Return today's date in Saudi Arabia."""
    return datetime.now(KSA_TIMEZONE).date()


def _get(node: Any, *keys: str | int) -> Any:
    """Walk into nested JSON, returning None as soon as a step is missing or of the wrong kind."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(node, list) or not -len(node) <= key < len(node):
                return None
            node = node[key]
        elif isinstance(node, Mapping):
            node = node.get(key)
        else:
            return None
    return node


def _text(value: Any) -> str | None:
    """Return the non-blank text of a plain, bilingual or repeated value, preferring English."""
    if isinstance(value, list):
        # A repeated value holds plain or bilingual values, never further lists: no deep recursion.
        return next((text for item in value if not isinstance(item, list) and (text := _text(item))), None)
    if isinstance(value, Mapping):
        value = _plain(value.get("en")) or _plain(value.get("ar"))
    return _plain(value)


def _plain(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _is_one_of(value: Any, allowed: Any) -> bool:
    """Tell whether ``value`` is one of the ``allowed`` texts (safe for unhashable JSON values)."""
    return isinstance(value, str) and value in allowed


def _shown(value: Any) -> str:
    """Quote a value for a message, cut short so an absurd input does not make an absurd message."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _amount(node: Any) -> Decimal | None:
    return to_decimal(_get(node, "value"))


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _as_data(invoice: Mapping[str, Any] | EInvoice) -> Mapping[str, Any]:
    if isinstance(invoice, EInvoice):
        return invoice.to_api()
    if isinstance(invoice, Mapping):
        return invoice
    raise TypeError(f"expected an E-Invoice dict or EInvoice, got {type(invoice).__name__}")


def invoice_number_of(invoice: Mapping[str, Any] | EInvoice) -> str:
    """Return the invoice number (``ID.en``, else ``ID.ar``), or an empty string if there is none.

    :param invoice: the E-Invoice, as JSON or as a model.
    """
    data = _as_data(invoice)
    return _text(data.get("ID")) or ""


def _type_name(data: Mapping[str, Any]) -> str | None:
    name = _get(data, "InvoiceTypeCode", "name")
    return name if isinstance(name, str) and _TYPE_NAME.fullmatch(name) else None


def is_standard(invoice: Mapping[str, Any] | EInvoice) -> bool:
    """Tell whether the invoice is a standard (B2B/B2G, cleared) document: type name ``01.....``.

    :param invoice: the E-Invoice, as JSON or as a model.
    """
    name = _type_name(_as_data(invoice))
    return name is not None and name.startswith("01")


def is_simplified(invoice: Mapping[str, Any] | EInvoice) -> bool:
    """Tell whether the invoice is a simplified (B2C, reported) document: type name ``02.....``.

    :param invoice: the E-Invoice, as JSON or as a model.
    """
    name = _type_name(_as_data(invoice))
    return name is not None and name.startswith("02")


def is_export(invoice: Mapping[str, Any] | EInvoice) -> bool:
    """Tell whether the invoice has the export flag (position 5 of the type name) set.

    :param invoice: the E-Invoice, as JSON or as a model.
    """
    name = _type_name(_as_data(invoice))
    return name is not None and name[_EXPORT_FLAG] == "1"


def _schema_path(loc: tuple[str | int, ...]) -> str:
    parts = [ROOT]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        elif item not in UNION_TAGS:
            parts.append(item)
    return ".".join(parts)


def _schema_problems(error: ValidationError, invoice_number: str) -> list[InvoiceProblem]:
    problems = []
    for detail in error.errors(include_url=False):
        message = detail["msg"]
        problems.append(
            InvoiceProblem(
                invoice_number=invoice_number,
                path=_schema_path(detail["loc"]),
                message=message[:1].lower() + message[1:],
                code=f"SCHEMA_{detail['type'].upper()}",
            )
        )
    return problems


class _RuleChecker:
    """Apply ClearTax's business rules to the JSON of one invoice, tolerating any shape."""

    def __init__(self, *, data: Mapping[str, Any], invoice_number: str, today: date) -> None:
        self.data = data
        self.invoice_number = invoice_number
        self.today = today
        self.problems: list[InvoiceProblem] = []
        # Only text can be a type code; a list or an object here would not even be hashable.
        type_code = _get(data, "InvoiceTypeCode", "value")
        self.type_code = type_code if isinstance(type_code, str) else None
        name = _type_name(data)
        self.standard = name is not None and name.startswith("01")
        self.export = name is not None and name[_EXPORT_FLAG] == "1"

    def add(self, path: str, code: str, message: str) -> None:
        self.problems.append(
            InvoiceProblem(
                invoice_number=self.invoice_number, path=f"{ROOT}.{path}", message=message, code=code
            )
        )

    def run(self) -> list[InvoiceProblem]:
        self.check_header()
        self.check_dates()
        self.check_currencies()
        self.check_seller()
        self.check_buyer()
        self.check_note_references()
        self.check_tax_categories()
        self.check_totals()
        return self.problems

    def check_header(self) -> None:
        if isinstance(self.data.get("ID"), Mapping) and not self.invoice_number:
            self.add("ID", "INVOICE_NUMBER", "the invoice number is mandatory (ID.en or ID.ar)")
        profile = self.data.get("ProfileID")
        if isinstance(profile, str) and profile != PROFILE_ID:
            self.add("ProfileID", "PROFILE_ID", f"profile {_shown(profile)} must be {PROFILE_ID!r}")
        if isinstance(self.type_code, str) and self.type_code not in DOCUMENT_TYPES:
            self.add(
                "InvoiceTypeCode.value",
                "TYPE_CODE",
                f"type code {_shown(self.type_code)} is not 388 (invoice), 381 (credit note), "
                "383 (debit note) or 386 (prepayment)",
            )
        name = _get(self.data, "InvoiceTypeCode", "name")
        if isinstance(name, str) and not _TYPE_NAME.fullmatch(name):
            self.add(
                "InvoiceTypeCode.name",
                "TYPE_NAME",
                f"type name {_shown(name)} must be 7 digits: 01 (standard) or 02 (simplified), "
                "then five 0/1 flags",
            )

    def check_dates(self) -> None:
        issue_date = self.data.get("IssueDate")
        if isinstance(issue_date, str):
            parsed = _parse_date(issue_date)
            if parsed is None:
                self.add(
                    "IssueDate",
                    "ISSUE_DATE_FORMAT",
                    f"issue date {_shown(issue_date)} is not a YYYY-MM-DD date",
                )
            elif parsed > self.today:
                self.add("IssueDate", "ISSUE_DATE_FUTURE", f"issue date {issue_date} is in the future")
        issue_time = self.data.get("IssueTime")
        if isinstance(issue_time, str) and not _TIME.fullmatch(issue_time):
            self.add(
                "IssueTime", "ISSUE_TIME_FORMAT", f"issue time {_shown(issue_time)} is not an HH:mm:ss time"
            )
        for index, delivery in enumerate(_list(self.data.get("Delivery"))):
            dates = {}
            for key in ("ActualDeliveryDate", "LatestDeliveryDate"):
                value = _get(delivery, key)
                if isinstance(value, str):
                    dates[key] = _parse_date(value)
                    if dates[key] is None:
                        self.add(
                            f"Delivery[{index}].{key}",
                            "DELIVERY_DATE_FORMAT",
                            f"date {_shown(value)} is not a YYYY-MM-DD date",
                        )
            supply, supply_end = dates.get("ActualDeliveryDate"), dates.get("LatestDeliveryDate")
            if "LatestDeliveryDate" in dates and "ActualDeliveryDate" not in dates:
                self.add(
                    f"Delivery[{index}].ActualDeliveryDate",
                    "SUPPLY_DATE_MISSING",
                    "a supply end date needs the supply date",
                )
            elif supply and supply_end and supply > supply_end:
                self.add(
                    f"Delivery[{index}].ActualDeliveryDate",
                    "SUPPLY_DATES",
                    f"supply date {supply} is after the supply end date {supply_end}",
                )

    def check_currencies(self) -> None:
        document_currency = self.data.get("DocumentCurrencyCode")
        if isinstance(document_currency, str) and not _CURRENCY.fullmatch(document_currency):
            self.add(
                "DocumentCurrencyCode",
                "DOCUMENT_CURRENCY",
                f"document currency {_shown(document_currency)} is not an ISO 4217 code (3 capital letters)",
            )
        tax_currency = self.data.get("TaxCurrencyCode")
        if isinstance(tax_currency, str) and tax_currency != TAX_CURRENCY:
            self.add("TaxCurrencyCode", "TAX_CURRENCY", f"tax currency {_shown(tax_currency)} must be SAR")

    def check_vat(self, party_path: str, party: Any, *, who: str, saudi: bool = True) -> str | None:
        vat = _get(party, "PartyTaxScheme", "CompanyID")
        if saudi and isinstance(vat, str) and vat.strip() and not _VAT.fullmatch(vat):
            self.add(
                f"{party_path}.PartyTaxScheme.CompanyID",
                "VAT_FORMAT",
                f"{who} VAT number {_shown(vat)} must be 15 digits starting and ending with 3",
            )
        return vat if isinstance(vat, str) and vat.strip() else None

    def check_seller(self) -> None:
        seller = _get(self.data, "AccountingSupplierParty", "Party")
        if not isinstance(seller, Mapping):
            return
        tax_scheme = seller.get("PartyTaxScheme")
        if isinstance(tax_scheme, Mapping) and self.check_vat(_SELLER, seller, who="seller") is None:
            self.add(
                f"{_SELLER}.PartyTaxScheme.CompanyID", "SELLER_VAT", "the seller's VAT number is mandatory"
            )
        address = seller.get("PostalAddress")
        if isinstance(address, Mapping) and _text(address.get("StreetName")) is None:
            self.add(
                f"{_SELLER}.PostalAddress.StreetName",
                "SELLER_STREET",
                "the seller's street name is mandatory",
            )

    def check_buyer(self) -> None:
        customer = self.data.get("AccountingCustomerParty")
        buyer = _get(customer, "Party")
        if not isinstance(buyer, Mapping):
            if self.standard and customer is None:
                self.add("AccountingCustomerParty", "BUYER_MISSING", "standard invoices need the buyer")
            return
        # An export buyer's CompanyID is a foreign tax number, not a Saudi VAT number.
        vat = self.check_vat(_BUYER, buyer, who="buyer", saudi=not self.export)
        if self.standard and vat is None and not (self.export and self._has_other_buyer_id(buyer)):
            self.add(
                f"{_BUYER}.PartyTaxScheme.CompanyID",
                "BUYER_VAT",
                "standard invoices need the buyer's VAT or VAT group number"
                + (" (or, for an export, a PartyIdentification)" if self.export else ""),
            )
        address = _get(buyer, "PostalAddress")
        country = _get(address, "Country", "IdentificationCode")
        if not isinstance(country, str):
            return
        if country != "SA" and not self.export:
            self.add(
                f"{_BUYER}.PostalAddress.Country.IdentificationCode",
                "BUYER_COUNTRY",
                f"buyer country {_shown(country)} must be SA unless the invoice is an export "
                "(flag at position 5 of the type name)",
            )
        if country == "SA":
            building = _get(address, "BuildingNumber")
            if not isinstance(building, str) or not _BUILDING_NUMBER.fullmatch(building):
                self.add(
                    f"{_BUYER}.PostalAddress.BuildingNumber",
                    "BUYER_BUILDING_NUMBER",
                    "a buyer in SA needs a 4-digit building number"
                    + (f", got {_shown(building)}" if building is not None else ""),
                )
            postal_code = _get(address, "PostalZone")
            if not isinstance(postal_code, str) or not _POSTAL_CODE.fullmatch(postal_code):
                self.add(
                    f"{_BUYER}.PostalAddress.PostalZone",
                    "BUYER_POSTAL_CODE",
                    "a buyer in SA needs a 5-digit postal code"
                    + (f", got {_shown(postal_code)}" if postal_code is not None else ""),
                )

    @staticmethod
    def _has_other_buyer_id(buyer: Mapping[str, Any]) -> bool:
        identifier = _get(buyer, "PartyIdentification", "ID")
        return (
            _is_one_of(_get(identifier, "schemeID"), BUYER_ID_SCHEMES)
            and _text(_get(identifier, "value")) is not None
        )

    def check_note_references(self) -> None:
        if self.type_code not in NOTE_TYPE_CODES:
            return
        kind = "credit" if self.type_code == "381" else "debit"
        references = _list(self.data.get("BillingReference"))
        if not any(_text(_get(ref, "InvoiceDocumentReference", "ID")) for ref in references):
            self.add(
                "BillingReference",
                "BILLING_REFERENCE",
                f"a {kind} note needs a BillingReference to the invoice it corrects",
            )
        payment_means = _list(self.data.get("PaymentMeans"))
        if not any(_text(_get(means, "InstructionNote")) for means in payment_means):
            self.add(
                "PaymentMeans[0].InstructionNote" if payment_means else "PaymentMeans",
                "NOTE_REASON",
                f"a {kind} note needs its reason in PaymentMeans[].InstructionNote",
            )

    def check_tax_categories(self) -> None:
        for index, line in enumerate(_list(self.data.get("InvoiceLine"))):
            self.check_tax_category(
                f"InvoiceLine[{index}].Item.ClassifiedTaxCategory",
                _get(line, "Item", "ClassifiedTaxCategory"),
            )
        for index, total in enumerate(_list(self.data.get("TaxTotal"))):
            for sub_index, subtotal in enumerate(_list(_get(total, "TaxSubtotal"))):
                self.check_tax_category(
                    f"TaxTotal[{index}].TaxSubtotal[{sub_index}].TaxCategory", _get(subtotal, "TaxCategory")
                )

    def check_tax_category(self, path: str, category: Any) -> None:
        category_id = _get(category, "ID")
        if not isinstance(category_id, str):
            return
        if category_id not in TAX_CATEGORY_PERCENT:
            self.add(f"{path}.ID", "TAX_CATEGORY", f"tax category {_shown(category_id)} is not S, Z, E or O")
            return
        expected = TAX_CATEGORY_PERCENT[category_id]
        raw_percent = _get(category, "Percent")
        percent = to_decimal(raw_percent)
        if raw_percent is None:
            self.add(
                f"{path}.Percent", "TAX_PERCENT", f"category {category_id} needs its percent ({expected})"
            )
        elif percent is not None and percent != expected:
            self.add(
                f"{path}.Percent",
                "TAX_PERCENT",
                f"category {category_id} is taxed at {expected} %, not {_shown(raw_percent)}",
            )
        if category_id == "S":
            return
        code = _get(category, "TaxExemptionReasonCode")
        if not _is_one_of(code, EXEMPTION_REASON_CODES):
            self.add(
                f"{path}.TaxExemptionReasonCode",
                "EXEMPTION_CODE",
                f"category {category_id} needs a VATEX-SA exemption reason code"
                + (f"; {_shown(code)} is not one" if code is not None else ""),
            )
        if _text(_get(category, "TaxExemptionReason")) is None:
            self.add(
                f"{path}.TaxExemptionReason",
                "EXEMPTION_REASON",
                f"category {category_id} needs the exemption reason text",
            )

    def check_totals(self) -> None:
        totals = self.data.get("LegalMonetaryTotal")
        lines = _list(self.data.get("InvoiceLine"))
        line_amounts = [_amount(_get(line, "LineExtensionAmount")) for line in lines]
        line_total = _amount(_get(totals, "LineExtensionAmount"))
        if lines and line_total is not None and None not in line_amounts:
            line_sum = sum(line_amounts, Decimal(0))
            if abs(line_sum - line_total) > HALALA:
                self.add(
                    "LegalMonetaryTotal.LineExtensionAmount",
                    "LINE_TOTAL",
                    f"line amounts add up to {round_halala(line_sum)}, not {line_total}",
                )

        tax_totals = _list(self.data.get("TaxTotal"))
        for index, total in enumerate(tax_totals):
            subtotals = _list(_get(total, "TaxSubtotal"))
            amounts = [_amount(_get(subtotal, "TaxAmount")) for subtotal in subtotals]
            tax = _amount(_get(total, "TaxAmount"))
            if subtotals and tax is not None and None not in amounts:
                subtotal_sum = sum(amounts, Decimal(0))
                if abs(subtotal_sum - tax) > HALALA:
                    self.add(
                        f"TaxTotal[{index}].TaxAmount",
                        "TAX_TOTAL",
                        f"tax subtotals add up to {round_halala(subtotal_sum)}, not {tax}",
                    )

        document_tax = self._document_tax(tax_totals)
        exclusive = _amount(_get(totals, "TaxExclusiveAmount"))
        inclusive = _amount(_get(totals, "TaxInclusiveAmount"))
        if None not in (document_tax, exclusive, inclusive):
            expected = exclusive + document_tax
            if abs(expected - inclusive) > HALALA:
                self.add(
                    "LegalMonetaryTotal.TaxInclusiveAmount",
                    "INCLUSIVE_TOTAL",
                    f"tax-inclusive amount must be {exclusive} + {document_tax} = {expected}, "
                    f"not {inclusive}",
                )

        for index, line in enumerate(lines):
            amount = _amount(_get(line, "LineExtensionAmount"))
            percent = to_decimal(_get(line, "Item", "ClassifiedTaxCategory", "Percent"))
            tax = _amount(_get(line, "TaxTotal", "TaxAmount"))
            if None in (amount, percent, tax):
                continue
            expected = round_halala(amount * percent / 100)
            if abs(tax - expected) > HALALA:
                self.add(
                    f"InvoiceLine[{index}].TaxTotal.TaxAmount",
                    "LINE_TAX",
                    f"line tax must be {amount} x {percent} % = {expected}, not {tax}",
                )

    def _document_tax(self, tax_totals: list[Any]) -> Decimal | None:
        """Return the tax in the document currency: the TaxTotal with a breakdown in that currency."""
        currency = self.data.get("DocumentCurrencyCode") or TAX_CURRENCY
        with_breakdown = [total for total in tax_totals if _list(_get(total, "TaxSubtotal"))]
        in_currency = [
            total for total in with_breakdown if _get(total, "TaxAmount", "currencyID") == currency
        ]
        for candidates in (in_currency, with_breakdown, tax_totals):
            if candidates:
                return _amount(_get(candidates[0], "TaxAmount"))
        return None


def validate_invoice(
    invoice: Mapping[str, Any] | EInvoice, *, today: date | None = None
) -> list[InvoiceProblem]:
    """Check an E-Invoice against the model and ClearTax's rules, returning every problem found.

    Rule violations and type errors are returned, never raised; an empty list means the invoice
    passes every client-side check.

    :param invoice: the E-Invoice object (the ``EInvoice`` member of a generate body), as JSON or as a model.
    :param today: the date an issue date may not be after; defaults to today in Saudi Arabia.
    """
    data = _as_data(invoice)
    invoice_number = _text(data.get("ID")) or ""
    problems: list[InvoiceProblem] = []
    if not isinstance(invoice, EInvoice):
        try:
            EInvoice.model_validate(data)
        except ValidationError as error:
            problems.extend(_schema_problems(error, invoice_number))
    checker = _RuleChecker(data=data, invoice_number=invoice_number, today=today or ksa_today())
    problems.extend(checker.run())
    return list(dict.fromkeys(problems))


def check_invoice(invoice: Mapping[str, Any] | EInvoice, *, today: date | None = None) -> EInvoice:
    """Validate an E-Invoice and return it as a model, or raise with every problem found.

    :param invoice: the E-Invoice object, as JSON or as a model.
    :param today: the date an issue date may not be after; defaults to today in Saudi Arabia.
    :raises InvoiceValidationError: if any check fails.
    """
    problems = validate_invoice(invoice, today=today)
    if problems:
        raise InvoiceValidationError(invoice_number=problems[0].invoice_number, problems=problems)
    return invoice if isinstance(invoice, EInvoice) else EInvoice.model_validate(invoice)


@dataclass(frozen=True)
class InvoiceIdentity:
    """What ClearTax identifies an invoice by: seller VAT, number, document type and issue date.

    :param vat: the seller's VAT number (the ``vat`` header).
    :param invoice_number: the invoice number.
    :param invoice_type: ``INV``, ``CRN``, ``DBN`` or ``RECEIPT``.
    :param type_code: ``388``, ``381``, ``383`` or ``386``.
    :param issue_date: the issue date.
    """

    vat: str
    invoice_number: str
    invoice_type: Literal["INV", "CRN", "DBN", "RECEIPT"]
    type_code: str
    issue_date: date

    @property
    def unique_id(self) -> str:
        """Return ClearTax's ``uniqueId``: ``<vat>_<invoice number>_<type code>_<issue year>``."""
        return f"{self.vat}_{self.invoice_number}_{self.type_code}_{self.issue_date.year}"

    def query_params(self) -> dict[str, str]:
        """Return the query parameters of Get invoice (and the items of Get bulk) for this invoice."""
        return {
            "invoiceNumber": self.invoice_number,
            "invoiceType": self.invoice_type,
            "issueDate": self.issue_date.isoformat(),
            "vat": self.vat,
        }


def invoice_identity(invoice: Mapping[str, Any] | EInvoice) -> InvoiceIdentity:
    """Return the identity ClearTax files an invoice under.

    :param invoice: the E-Invoice object, as JSON or as a model.
    :raises InvoiceValidationError: if the seller VAT, number, type code or issue date is missing or invalid.
    """
    data = _as_data(invoice)
    invoice_number = _text(data.get("ID")) or ""
    problems = []

    def problem(path: str, message: str) -> None:
        problems.append(
            InvoiceProblem(
                invoice_number=invoice_number, path=f"{ROOT}.{path}", message=message, code="IDENTITY"
            )
        )

    vat = _get(data, "AccountingSupplierParty", "Party", "PartyTaxScheme", "CompanyID")
    if not isinstance(vat, str) or not _VAT.fullmatch(vat):
        problem(
            f"{_SELLER}.PartyTaxScheme.CompanyID", f"seller VAT number {_shown(vat)} is missing or invalid"
        )
    if not invoice_number:
        problem("ID", "the invoice number is missing")
    type_code = _get(data, "InvoiceTypeCode", "value")
    if not _is_one_of(type_code, DOCUMENT_TYPES):
        problem("InvoiceTypeCode.value", f"type code {_shown(type_code)} is not 388, 381, 383 or 386")
    issue_date = _parse_date(data.get("IssueDate"))
    if issue_date is None:
        problem("IssueDate", f"issue date {_shown(data.get('IssueDate'))} is missing or not YYYY-MM-DD")
    if problems:
        raise InvoiceValidationError(invoice_number=invoice_number, problems=problems)
    return InvoiceIdentity(
        vat=vat,
        invoice_number=invoice_number,
        invoice_type=DOCUMENT_TYPES[type_code],
        type_code=type_code,
        issue_date=issue_date,
    )
