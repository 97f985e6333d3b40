"""Build ClearTax E-Invoices from flat ERP rows, so DAGs never hand-write nested UBL JSON."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from .models import PROFILE_ID, TAX_CATEGORY_PERCENT, TAX_CURRENCY, to_decimal
from .problems import InvoiceProblem, InvoiceValidationError
from .validation import ROOT, round_halala, validate_invoice

_KINDS = {"standard": "01", "simplified": "02"}
_DOCUMENTS = {"invoice": "388", "credit_note": "381", "debit_note": "383", "prepayment": "386"}
_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f", ""})
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}:\d{2}")

_BUYER = f"{ROOT}.AccountingCustomerParty.Party"
_SELLER = f"{ROOT}.AccountingSupplierParty.Party"
#: Where a problem found in the built invoice came from: the row key (or Seller attribute) to fix.
_SOURCE_KEYS = {
    f"{ROOT}.ID": "invoice_number",
    f"{ROOT}.IssueDate": "issue_date",
    f"{ROOT}.IssueTime": "issue_time",
    f"{ROOT}.DocumentCurrencyCode": "currency",
    f"{ROOT}.BillingReference": "billing_reference",
    f"{ROOT}.PaymentMeans[0].InstructionNote": "reason",
    f"{ROOT}.Delivery[0].ActualDeliveryDate": "supply_date",
    f"{ROOT}.Delivery[0].LatestDeliveryDate": "supply_end_date",
    f"{ROOT}.AccountingCustomerParty": "buyer_name",
    f"{_BUYER}.PartyTaxScheme.CompanyID": "buyer_vat",
    f"{_BUYER}.PostalAddress.StreetName": "buyer_street",
    f"{_BUYER}.PostalAddress.BuildingNumber": "buyer_building",
    f"{_BUYER}.PostalAddress.CityName": "buyer_city",
    f"{_BUYER}.PostalAddress.PostalZone": "buyer_postal_code",
    f"{_BUYER}.PostalAddress.Country.IdentificationCode": "buyer_country",
    f"{_SELLER}.PartyTaxScheme.CompanyID": "seller.vat",
    f"{_SELLER}.PostalAddress.StreetName": "seller.street",
    f"{_SELLER}.PostalAddress.BuildingNumber": "seller.building",
    f"{_SELLER}.PostalAddress.PostalZone": "seller.postal_code",
}
_LINE_CATEGORY_KEYS = {
    "ID": "vat_category",
    "Percent": "vat_percent",
    "TaxExemptionReasonCode": "exemption_code",
    "TaxExemptionReason": "exemption_reason",
}
_LINE_CATEGORY_PATH = re.compile(rf"{ROOT}\.InvoiceLine\[(\d+)\]\.Item\.ClassifiedTaxCategory\.(\w+)")
_SUBTOTAL_CATEGORY_PATH = re.compile(rf"{ROOT}\.TaxTotal\[0\]\.TaxSubtotal\[(\d+)\]\.TaxCategory\.(\w+)")


@dataclass(frozen=True, kw_only=True)
class Seller:
    """The seller's registration details, the same on every invoice of one VAT number.

    :param vat: VAT (or VAT group) number: 15 digits, starting and ending with 3.
    :param name_en: registered name in English.
    :param name_ar: registered name in Arabic.
    :param street: street name of the national address.
    :param building: 4-digit building number.
    :param city: city.
    :param district: district (``CitySubdivisionName``).
    :param postal_code: 5-digit postal code.
    :param crn: commercial registration number, sent as the ``CRN`` party identification.
    """

    vat: str
    name_en: str
    name_ar: str | None = None
    street: str
    building: str
    city: str
    district: str | None = None
    postal_code: str
    crn: str | None = None

    def party(self) -> dict[str, Any]:
        """Return the seller as an E-Invoice ``Party``."""
        party: dict[str, Any] = {}
        if self.crn:
            party["PartyIdentification"] = {"ID": {"schemeID": "CRN", "value": self.crn}}
        address: dict[str, Any] = {"StreetName": _bilingual(self.street), "BuildingNumber": self.building}
        if self.district:
            address["CitySubdivisionName"] = _bilingual(self.district)
        address |= {
            "CityName": _bilingual(self.city),
            "PostalZone": self.postal_code,
            "Country": {"IdentificationCode": "SA"},
        }
        party["PostalAddress"] = address
        party["PartyTaxScheme"] = {"CompanyID": self.vat, "TaxScheme": {"ID": "VAT"}}
        party["PartyLegalEntity"] = {"RegistrationName": _bilingual(self.name_en, self.name_ar)}
        return party


def _bilingual(en: str, ar: str | None = None) -> dict[str, str | None]:
    return {"en": en, "ar": ar}


def _number(amount: Decimal) -> int | float:
    """Return a Decimal as the JSON number ClearTax expects (whole quantities stay integers)."""
    return (
        int(amount)
        if amount == amount.to_integral_value() and amount.as_tuple().exponent >= 0
        else float(amount)
    )


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"currencyID": currency, "value": float(round_halala(amount))}


class _RowReader:
    """Read typed values out of one ERP row (or one of its lines), collecting a problem per bad key."""

    def __init__(
        self,
        row: Mapping[str, Any],
        *,
        prefix: str = "",
        invoice_number: str | None = None,
        problems: list[InvoiceProblem] | None = None,
    ) -> None:
        self.row = row
        self.prefix = prefix
        self.problems: list[InvoiceProblem] = [] if problems is None else problems
        if invoice_number is None:
            number = self.raw("invoice_number")
            invoice_number = str(number).strip() if isinstance(number, str | int) else ""
        self.invoice_number = invoice_number

    def nested(self, row: Mapping[str, Any], prefix: str) -> _RowReader:
        """Return a reader of a nested object (a line) that reports into the same problem list."""
        return _RowReader(row, prefix=prefix, invoice_number=self.invoice_number, problems=self.problems)

    def raw(self, key: str) -> Any:
        value = self.row.get(key)
        # CSV readers give "", pandas gives NaN: both mean "no value" in a row.
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def fail(self, key: str, message: str) -> None:
        self.problems.append(
            InvoiceProblem(
                invoice_number=self.invoice_number, path=self.prefix + key, message=message, code="ROW"
            )
        )

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                self.fail(key, "is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(key, f"must be text, got {type(value).__name__}")
            return None
        return str(value).strip()

    def choice(self, key: str, options: Mapping[str, str], *, default: str | None = None) -> str | None:
        value = self.text(key, required=default is None)
        if value is None:
            return None if default is None else options[default]
        normalized = value.lower().replace("-", "_").replace(" ", "_")
        if normalized not in options:
            self.fail(key, f"{value!r} is not one of {', '.join(options)}")
            return None
        return options[normalized]

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        normalized = str(value).strip().lower()
        if normalized not in _TRUE and normalized not in _FALSE:
            self.fail(key, f"{value!r} is not a yes/no value")
        return normalized in _TRUE

    def date(self, key: str, *, required: bool = False) -> date | None:
        value = self.raw(key)
        if value is None:
            if required:
                self.fail(key, "is missing")
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str) and _DATE.fullmatch(value.strip()):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.fail(key, f"{value!r} is not a YYYY-MM-DD date")
        return None

    def time(self, key: str, *, fallback: datetime | None) -> str | None:
        value = self.raw(key)
        if value is None:
            if fallback is not None:
                return fallback.strftime("%H:%M:%S")
            self.fail(key, "is missing")
            return None
        if isinstance(value, datetime | time):
            return value.strftime("%H:%M:%S")
        if isinstance(value, str) and _TIME.fullmatch(value.strip()):
            try:
                return time.fromisoformat(value.strip()).strftime("%H:%M:%S")
            except ValueError:
                pass
        self.fail(key, f"{value!r} is not an HH:MM:SS time")
        return None

    def decimal(self, key: str, *, required: bool = True, positive: bool = False) -> Decimal | None:
        value = self.raw(key)
        if value is None:
            if required:
                self.fail(key, "is missing")
            return None
        amount = to_decimal(value)
        if amount is None:
            self.fail(key, f"{value!r} is not a number")
        elif amount < 0 or (positive and amount == 0):
            self.fail(key, f"must be {'greater than' if positive else 'at least'} 0, got {value}")
            amount = None
        return amount

    def lines(self) -> list[_RowReader]:
        value = self.raw("lines")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                self.fail("lines", f"is not valid JSON ({error.msg} at position {error.pos})")
                return []
        if value is None:
            self.fail("lines", "is missing")
            return []
        if not isinstance(value, list | tuple) or not value:
            self.fail("lines", "must be a non-empty list of line objects")
            return []
        readers = []
        for index, line in enumerate(value):
            if isinstance(line, Mapping):
                readers.append(self.nested(line, f"lines[{index}]."))
            else:
                self.fail(f"lines[{index}]", f"must be an object, got {type(line).__name__}")
        return readers


@dataclass(frozen=True)
class _Line:
    name: str
    name_ar: str | None
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    category: str
    percent: Decimal
    exemption_code: str | None
    exemption_reason: str | None

    @property
    def amount(self) -> Decimal:
        return round_halala(self.quantity * self.unit_price)

    @property
    def tax(self) -> Decimal:
        return round_halala(self.amount * self.percent / 100)

    @property
    def tax_group(self) -> tuple[str, Decimal, str | None, str | None]:
        return (self.category, self.percent, self.exemption_code, self.exemption_reason)


def _read_line(reader: _RowReader) -> _Line | None:
    name = reader.text("name", required=True)
    quantity = reader.decimal("quantity", positive=True)
    unit_price = reader.decimal("unit_price")
    category = (reader.text("vat_category") or "S").upper()
    if category not in TAX_CATEGORY_PERCENT:
        reader.fail("vat_category", f"{category!r} is not one of S, Z, E, O")
        return None
    percent = reader.decimal("vat_percent", required=False)
    if name is None or quantity is None or unit_price is None:
        return None
    return _Line(
        name=name,
        name_ar=reader.text("name_ar"),
        quantity=quantity,
        unit_code=reader.text("unit_code") or "PCE",
        unit_price=unit_price,
        category=category,
        percent=TAX_CATEGORY_PERCENT[category] if percent is None else percent,
        exemption_code=reader.text("exemption_code"),
        exemption_reason=reader.text("exemption_reason"),
    )


def _tax_category(line: _Line) -> dict[str, Any]:
    category: dict[str, Any] = {
        "ID": line.category,
        "Percent": float(line.percent),
        "TaxScheme": {"ID": "VAT"},
    }
    if line.exemption_code is not None:
        category["TaxExemptionReasonCode"] = line.exemption_code
    if line.exemption_reason is not None:
        category["TaxExemptionReason"] = line.exemption_reason
    return category


def _buyer_party(reader: _RowReader, *, standard: bool, export: bool) -> dict[str, Any] | None:
    name = reader.text("buyer_name", required=standard)
    vat = reader.text("buyer_vat")
    id_scheme = reader.text("buyer_id_scheme")
    id_value = reader.text("buyer_id")
    address_parts = {
        "StreetName": reader.text("buyer_street"),
        "BuildingNumber": reader.text("buyer_building"),
        "CitySubdivisionName": reader.text("buyer_district"),
        "CityName": reader.text("buyer_city"),
        "PostalZone": reader.text("buyer_postal_code"),
    }
    country = reader.text("buyer_country")
    has_address = any(value is not None for value in address_parts.values())
    if country is None and (has_address or standard) and not export:
        country = "SA"
    if not (standard or name or vat or id_value or has_address or country):
        return None

    party: dict[str, Any] = {}
    if id_value is not None:
        party["PartyIdentification"] = {"ID": {"schemeID": (id_scheme or "OTH").upper(), "value": id_value}}
    address: dict[str, Any] = {}
    for key, value in address_parts.items():
        if value is not None:
            address[key] = value if key in ("BuildingNumber", "PostalZone") else _bilingual(value)
    if country is not None:
        address["Country"] = {"IdentificationCode": country.upper()}
    if address:
        party["PostalAddress"] = address
    if vat is not None:
        party["PartyTaxScheme"] = {"CompanyID": vat, "TaxScheme": {"ID": "VAT"}}
    if name is not None:
        party["PartyLegalEntity"] = {"RegistrationName": _bilingual(name, reader.text("buyer_name_ar"))}
    return party


def invoice_from_row(
    row: Mapping[str, Any],
    *,
    seller: Seller,
    today: date | None = None,
    payment_means_code: str = "10",
) -> dict[str, Any]:
    """Build a valid E-Invoice (the ``EInvoice`` of a generate body) from one flat ERP row.

    Amounts are computed with Decimal, rounded half-up to the halala: line amount = quantity x
    unit price, line VAT = line amount x percent, one tax subtotal per (category, percent,
    exemption), document VAT = sum of subtotals. The result passes ``validate_invoice``.

    Row keys (blank strings and NaN count as missing):

    - ``invoice_number`` (required): the document number.
    - ``issue_date`` (required): ``date``, ``datetime`` or ``"YYYY-MM-DD"``; not in the future.
    - ``issue_time``: ``time``, ``datetime`` or ``"HH:MM:SS"``; required unless ``issue_date`` is a
      ``datetime``.
    - ``kind`` (required): ``standard`` (B2B/B2G, cleared) or ``simplified`` (B2C, reported).
    - ``document``: ``invoice`` (default, 388), ``credit_note`` (381), ``debit_note`` (383) or
      ``prepayment`` (386).
    - ``export``: yes/no; sets the export flag, which allows a buyer outside SA.
    - ``uuid``: the document UUID; ClearTax generates one when absent.
    - ``buyer_name`` (required for standard), ``buyer_name_ar``: the buyer's registered name.
    - ``buyer_vat``: the buyer's VAT or VAT group number (required for standard, except exports with
      ``buyer_id``).
    - ``buyer_id_scheme``, ``buyer_id``: another buyer identification, e.g. ``PAS``/``TIN``/``OTH``
      (default ``OTH``).
    - ``buyer_street``, ``buyer_building`` (4 digits), ``buyer_district``, ``buyer_city``,
      ``buyer_postal_code`` (5 digits): the buyer's address; building and postal code are required
      for a buyer in SA on a standard invoice.
    - ``buyer_country``: ISO 3166 alpha-2 code; defaults to ``SA`` for standard invoices and for any
      buyer address, unless the invoice is an export.
    - ``billing_reference``: number of the invoice a credit or debit note corrects (required for notes).
    - ``reason``: why a credit or debit note was issued, e.g. ``CAN``, ``ASUP``, ``REF`` (required for notes).
    - ``supply_date``, ``supply_end_date``: the supply period, dates as for ``issue_date``.
    - ``currency``: ISO 4217 document currency, default ``SAR``.
    - ``exchange_rate``: SAR per unit of ``currency``; required when ``currency`` is not SAR.
    - ``lines`` (required): a list, or a JSON string of a list, of objects with keys
      ``name`` (required), ``name_ar``, ``quantity`` (required, > 0), ``unit_code`` (default ``PCE``),
      ``unit_price`` (required, net of VAT), ``vat_category`` (``S`` default, ``Z``, ``E``, ``O``),
      ``vat_percent`` (default 15 for S, 0 otherwise), ``exemption_code`` (a ``VATEX-SA-…`` code) and
      ``exemption_reason`` (text), the last two required for Z, E and O.

    :param row: the ERP row, e.g. a dict from a database cursor or a CSV reader.
    :param seller: the seller's registration details.
    :param today: the date an issue date may not be after; defaults to today in Saudi Arabia.
    :param payment_means_code: UNTDID 4461 payment means code (``10`` cash, ``30`` credit transfer, ...).
    :raises InvoiceValidationError: naming the invoice number and each bad row key
        (``lines[1].quantity``, ``buyer_vat``, or ``seller.vat`` for a bad ``Seller``).
    """
    reader = _RowReader(row)
    reader.text("invoice_number", required=True)
    raw_issue_date = reader.raw("issue_date")
    issue_date = reader.date("issue_date", required=True)
    issue_time = reader.time(
        "issue_time", fallback=raw_issue_date if isinstance(raw_issue_date, datetime) else None
    )
    prefix = reader.choice("kind", _KINDS)
    type_code = reader.choice("document", _DOCUMENTS, default="invoice")
    export = reader.flag("export")
    uuid = reader.text("uuid")
    currency = (reader.text("currency") or TAX_CURRENCY).upper()
    valid_currency = _CURRENCY.fullmatch(currency) is not None
    if not valid_currency:
        reader.fail("currency", f"{currency!r} is not an ISO 4217 code")
    exchange_rate = reader.decimal(
        "exchange_rate", required=valid_currency and currency != TAX_CURRENCY, positive=True
    )
    supply_date = reader.date("supply_date")
    supply_end_date = reader.date("supply_end_date")
    billing_reference = reader.text("billing_reference")
    reason = reader.text("reason")
    buyer = _buyer_party(reader, standard=prefix == _KINDS["standard"], export=export)
    read_lines = [_read_line(line_reader) for line_reader in reader.lines()]
    if reader.problems:
        raise InvoiceValidationError(invoice_number=reader.invoice_number, problems=reader.problems)
    lines = [line for line in read_lines if line is not None]

    invoice: dict[str, Any] = {
        "ProfileID": PROFILE_ID,
        "ID": _bilingual(reader.invoice_number, reader.invoice_number),
    }
    if uuid is not None:
        invoice["UUID"] = uuid
    invoice |= {
        "InvoiceTypeCode": {"name": f"{prefix}00{int(export)}00", "value": type_code},
        "IssueDate": issue_date.isoformat(),
        "IssueTime": issue_time,
    }
    if supply_date or supply_end_date:
        delivery = {}
        if supply_date:
            delivery["ActualDeliveryDate"] = supply_date.isoformat()
        if supply_end_date:
            delivery["LatestDeliveryDate"] = supply_end_date.isoformat()
        invoice["Delivery"] = [delivery]
    if billing_reference is not None:
        invoice["BillingReference"] = [
            {"InvoiceDocumentReference": {"ID": _bilingual(billing_reference, billing_reference)}}
        ]
    invoice |= {"DocumentCurrencyCode": currency, "TaxCurrencyCode": TAX_CURRENCY}
    invoice["AccountingSupplierParty"] = {"Party": seller.party()}
    if buyer is not None:
        invoice["AccountingCustomerParty"] = {"Party": buyer}
    payment_means: dict[str, Any] = {"PaymentMeansCode": payment_means_code}
    if reason is not None:
        payment_means["InstructionNote"] = reason
    invoice["PaymentMeans"] = [payment_means]

    groups: dict[tuple[str, Decimal, str | None, str | None], list[_Line]] = {}
    for line in lines:
        groups.setdefault(line.tax_group, []).append(line)
    subtotals = []
    tax = Decimal(0)
    for (_category, percent, _code, _reason), members in groups.items():
        taxable = sum((line.amount for line in members), Decimal(0))
        subtotal_tax = round_halala(taxable * percent / 100)
        tax += subtotal_tax
        subtotals.append(
            {
                "TaxableAmount": _money(taxable, currency),
                "TaxAmount": _money(subtotal_tax, currency),
                "TaxCategory": _tax_category(members[0]),
            }
        )
    invoice["TaxTotal"] = [{"TaxAmount": _money(tax, currency), "TaxSubtotal": subtotals}]
    # ZATCA wants the VAT total once more in SAR, without a breakdown.
    sar_tax = tax if exchange_rate is None else tax * exchange_rate
    invoice["TaxTotal"].append({"TaxAmount": _money(sar_tax, TAX_CURRENCY)})

    net = sum((line.amount for line in lines), Decimal(0))
    invoice["LegalMonetaryTotal"] = {
        "LineExtensionAmount": _money(net, currency),
        "TaxExclusiveAmount": _money(net, currency),
        "TaxInclusiveAmount": _money(net + tax, currency),
        "AllowanceTotalAmount": _money(Decimal(0), currency),
        "PayableAmount": _money(net + tax, currency),
    }
    invoice["InvoiceLine"] = [
        {
            "ID": str(index + 1),
            "InvoicedQuantity": {"unitCode": line.unit_code, "value": _number(line.quantity)},
            "LineExtensionAmount": _money(line.amount, currency),
            "TaxTotal": {
                "TaxAmount": _money(line.tax, currency),
                "RoundingAmount": _money(line.amount + line.tax, currency),
            },
            "Item": {
                "Name": _bilingual(line.name, line.name_ar),
                "ClassifiedTaxCategory": _tax_category(line),
            },
            "Price": {"PriceAmount": {"currencyID": currency, "value": _number(line.unit_price)}},
        }
        for index, line in enumerate(lines)
    ]

    problems = validate_invoice(invoice, today=today)
    if problems:
        first_line_of_group = [_first_line_of(lines, group) for group in groups]
        raise InvoiceValidationError(
            invoice_number=reader.invoice_number,
            problems=list(
                dict.fromkeys(_to_row_problem(problem, first_line_of_group) for problem in problems)
            ),
        )
    return invoice


def _first_line_of(lines: list[_Line], group: tuple[str, Decimal, str | None, str | None]) -> int:
    return next(index for index, line in enumerate(lines) if line.tax_group == group)


def _to_row_problem(problem: InvoiceProblem, first_line_of_group: list[int]) -> InvoiceProblem:
    """Point a problem of the built invoice at the row key (or Seller attribute) that caused it."""
    key = _SOURCE_KEYS.get(problem.path)
    if key is None and (match := _LINE_CATEGORY_PATH.fullmatch(problem.path)):
        key = f"lines[{match[1]}].{_LINE_CATEGORY_KEYS.get(match[2], match[2])}"
    if key is None and (match := _SUBTOTAL_CATEGORY_PATH.fullmatch(problem.path)):
        line_index = first_line_of_group[int(match[1])]
        key = f"lines[{line_index}].{_LINE_CATEGORY_KEYS.get(match[2], match[2])}"
    if key is None:
        return problem
    return InvoiceProblem(
        invoice_number=problem.invoice_number, path=key, message=problem.message, code=problem.code
    )
