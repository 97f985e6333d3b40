"""Flat ERP rows become E-Invoices that pass validation; bad rows name the key to fix."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_cleartax.invoices import (
    EInvoice,
    InvoiceValidationError,
    Seller,
    invoice_from_row,
    invoice_identity,
    is_simplified,
    is_standard,
    validate_invoice,
)
from tests.invoices.conftest import TODAY

SELLER = Seller(
    vat="300000000000003",
    name_en="Najd Office Supplies Co.",
    name_ar="شركة نجد للأدوات المكتبية",
    street="King Fahd Road",
    building="8228",
    city="Riyadh",
    district="Al Olaya",
    postal_code="12214",
    crn="1010010000",
)

BUYER = {
    "buyer_name": "Red Sea Logistics LLC",
    "buyer_vat": "311111111111113",
    "buyer_street": "Prince Sultan Street",
    "buyer_building": "2322",
    "buyer_city": "Jeddah",
    "buyer_postal_code": "23334",
}
LINES = [
    {"name": "Office chair", "quantity": 2, "unit_price": "150.00"},
    {"name": "Desk lamp", "quantity": "1", "unit_price": 99.99, "vat_category": "S", "vat_percent": 15},
]


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "invoice_number": "INV-0100",
        "issue_date": "2026-03-02",
        "issue_time": "10:15:00",
        "kind": "standard",
        "document": "invoice",
        **BUYER,
        "lines": LINES,
    }
    row.update(overrides)
    return row


def _build(**overrides: Any) -> dict[str, Any]:
    return invoice_from_row(_row(**overrides), seller=SELLER, today=TODAY)


def _row_problems(**overrides: Any) -> set[str]:
    with pytest.raises(InvoiceValidationError) as raised:
        _build(**overrides)
    assert raised.value.invoice_number == str(overrides.get("invoice_number", "INV-0100")).strip()
    return {problem.path for problem in raised.value.problems}


NOTE = {"billing_reference": "INV-0001", "reason": "CAN"}
KIND_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "standard invoice": ({}, "0100000", "388"),
    "simplified invoice": ({"kind": "simplified", **dict.fromkeys(BUYER)}, "0200000", "388"),
    "simplified invoice with a named buyer": ({"kind": "simplified", "buyer_vat": None}, "0200000", "388"),
    "standard credit note": ({"document": "credit_note", **NOTE}, "0100000", "381"),
    "simplified credit note": (
        {"kind": "simplified", "document": "credit note", **NOTE, **dict.fromkeys(BUYER)},
        "0200000",
        "381",
    ),
    "standard debit note": ({"document": "debit_note", **NOTE}, "0100000", "383"),
    "simplified debit note": ({"kind": "Simplified", "document": "debit-note", **NOTE}, "0200000", "383"),
    "prepayment": ({"document": "prepayment"}, "0100000", "386"),
    "zero-rated export": (
        {
            "export": "yes",
            "buyer_vat": None,
            "buyer_building": None,
            "buyer_postal_code": None,
            "buyer_country": "AE",
            "buyer_id_scheme": "oth",
            "buyer_id": "DED-TL-778812",
            "currency": "USD",
            "exchange_rate": "3.75",
            "lines": [
                {
                    "name": "Printer toner",
                    "quantity": 10,
                    "unit_price": 250,
                    "unit_code": "BX",
                    "vat_category": "Z",
                    "exemption_code": "VATEX-SA-32",
                    "exemption_reason": "Export of goods",
                }
            ],
        },
        "0100100",
        "388",
    ),
}


@pytest.mark.parametrize(("overrides", "type_name", "type_code"), KIND_CASES.values(), ids=KIND_CASES.keys())
def test_row_becomes_a_valid_invoice(overrides: dict[str, Any], type_name: str, type_code: str) -> None:
    invoice = _build(**overrides)

    assert validate_invoice(invoice, today=TODAY) == []
    assert invoice["InvoiceTypeCode"] == {"name": type_name, "value": type_code}
    assert is_standard(invoice) == type_name.startswith("01")
    assert is_simplified(invoice) == type_name.startswith("02")
    identity = invoice_identity(invoice)
    assert (identity.vat, identity.invoice_number, identity.issue_date) == (
        "300000000000003",
        "INV-0100",
        date(2026, 3, 2),
    )
    assert json.dumps(EInvoice.model_validate(invoice).to_api()) == json.dumps(invoice)


def test_totals_are_rounded_half_up_to_the_halala() -> None:
    lines = [
        # 0.70 x 15 % = 0.105: half-up 0.11 (half-even would say 0.10).
        {"name": "Pencil", "quantity": 1, "unit_price": "0.70"},
        {"name": "Eraser", "quantity": 3, "unit_price": "0.333"},
        {
            "name": "Textbook",
            "quantity": 1,
            "unit_price": 40,
            "vat_category": "Z",
            "exemption_code": "VATEX-SA-EDU",
            "exemption_reason": "Educational material",
        },
    ]

    invoice = _build(kind="simplified", lines=json.dumps(lines))

    assert [line["LineExtensionAmount"]["value"] for line in invoice["InvoiceLine"]] == [0.7, 1.0, 40.0]
    assert [line["TaxTotal"]["TaxAmount"]["value"] for line in invoice["InvoiceLine"]] == [0.11, 0.15, 0.0]
    subtotals = invoice["TaxTotal"][0]["TaxSubtotal"]
    assert [
        (s["TaxCategory"]["ID"], s["TaxableAmount"]["value"], s["TaxAmount"]["value"]) for s in subtotals
    ] == [
        ("S", 1.7, 0.26),
        ("Z", 40.0, 0.0),
    ]
    assert invoice["TaxTotal"][0]["TaxAmount"]["value"] == 0.26
    totals = {key: value["value"] for key, value in invoice["LegalMonetaryTotal"].items()}
    assert totals == {
        "LineExtensionAmount": 41.7,
        "TaxExclusiveAmount": 41.7,
        "TaxInclusiveAmount": 41.96,
        "AllowanceTotalAmount": 0.0,
        "PayableAmount": 41.96,
    }
    assert validate_invoice(invoice, today=TODAY) == []


def test_foreign_currency_reports_the_vat_once_more_in_sar() -> None:
    invoice = _build(currency="usd", exchange_rate=Decimal("3.75"))

    assert invoice["DocumentCurrencyCode"] == "USD"
    assert invoice["TaxTotal"][0]["TaxAmount"] == {"currencyID": "USD", "value": 60.0}
    assert invoice["TaxTotal"][1] == {"TaxAmount": {"currencyID": "SAR", "value": 225.0}}


def test_seller_party_is_complete() -> None:
    party = _build()["AccountingSupplierParty"]["Party"]

    assert party["PartyIdentification"] == {"ID": {"schemeID": "CRN", "value": "1010010000"}}
    assert party["PartyTaxScheme"]["CompanyID"] == "300000000000003"
    assert party["PostalAddress"]["CitySubdivisionName"] == {"en": "Al Olaya", "ar": None}
    assert party["PartyLegalEntity"]["RegistrationName"]["ar"] == "شركة نجد للأدوات المكتبية"


def test_note_carries_reference_reason_and_supply_period() -> None:
    invoice = _build(
        document="credit_note", supply_date=date(2026, 2, 1), supply_end_date="2026-02-28", **NOTE
    )

    assert invoice["BillingReference"] == [
        {"InvoiceDocumentReference": {"ID": {"en": "INV-0001", "ar": "INV-0001"}}}
    ]
    assert invoice["PaymentMeans"] == [{"PaymentMeansCode": "10", "InstructionNote": "CAN"}]
    assert invoice["Delivery"] == [{"ActualDeliveryDate": "2026-02-01", "LatestDeliveryDate": "2026-02-28"}]


def test_datetime_issue_date_gives_the_time() -> None:
    invoice = _build(issue_date=datetime(2026, 3, 2, 7, 5, 9), issue_time=None)

    assert (invoice["IssueDate"], invoice["IssueTime"]) == ("2026-03-02", "07:05:09")


def test_blank_and_nan_values_count_as_missing() -> None:
    invoice = _build(kind="simplified", buyer_vat=float("nan"), buyer_street="  ", uuid="", export="")

    buyer = invoice["AccountingCustomerParty"]["Party"]
    assert "PartyTaxScheme" not in buyer and "StreetName" not in buyer["PostalAddress"]
    assert "UUID" not in invoice


BAD_ROWS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "missing invoice number": ({"invoice_number": " "}, {"invoice_number"}),
    "missing issue date": ({"issue_date": None}, {"issue_date"}),
    "bad issue date": ({"issue_date": "02/03/2026"}, {"issue_date"}),
    "future issue date": ({"issue_date": "2026-04-01"}, {"issue_date"}),
    "missing issue time": ({"issue_time": None}, {"issue_time"}),
    "bad issue time": ({"issue_time": "10:15"}, {"issue_time"}),
    "unknown kind": ({"kind": "wholesale"}, {"kind"}),
    "missing kind": ({"kind": None}, {"kind"}),
    "unknown document": ({"document": "quote"}, {"document"}),
    "bad export flag": ({"export": "maybe"}, {"export"}),
    "no lines": ({"lines": []}, {"lines"}),
    "lines not JSON": ({"lines": "[{'name': 'x'}"}, {"lines"}),
    "line not an object": ({"lines": [LINES[0], "chair"]}, {"lines[1]"}),
    "line without a name": ({"lines": [LINES[0], {"quantity": 1, "unit_price": 1}]}, {"lines[1].name"}),
    "bad quantity": ({"lines": [LINES[0], {**LINES[1], "quantity": "two"}]}, {"lines[1].quantity"}),
    "zero quantity": ({"lines": [{**LINES[0], "quantity": 0}]}, {"lines[0].quantity"}),
    "negative price": ({"lines": [{**LINES[0], "unit_price": "-1"}]}, {"lines[0].unit_price"}),
    "unknown category": ({"lines": [{**LINES[0], "vat_category": "R"}]}, {"lines[0].vat_category"}),
    "wrong standard rate": ({"lines": [{**LINES[0], "vat_percent": 5}]}, {"lines[0].vat_percent"}),
    "exempt line without exemption": (
        {"lines": [LINES[0], {**LINES[1], "vat_category": "E", "vat_percent": None}]},
        {"lines[1].exemption_code", "lines[1].exemption_reason"},
    ),
    "standard invoice without buyer VAT": ({"buyer_vat": None}, {"buyer_vat"}),
    "standard invoice without buyer name": ({"buyer_name": None}, {"buyer_name"}),
    "bad buyer VAT": ({"buyer_vat": "311111111111112"}, {"buyer_vat"}),
    "bad buyer postal code": ({"buyer_postal_code": "2333"}, {"buyer_postal_code"}),
    "buyer without building": ({"buyer_building": None}, {"buyer_building"}),
    "foreign buyer without export": ({"buyer_country": "AE"}, {"buyer_country"}),
    "credit note without reference": ({"document": "credit_note", "reason": "CAN"}, {"billing_reference"}),
    "debit note without reason": ({"document": "debit_note", "billing_reference": "INV-1"}, {"reason"}),
    "supply dates reversed": (
        {"supply_date": "2026-03-01", "supply_end_date": "2026-02-01"},
        {"supply_date"},
    ),
    "bad currency": ({"currency": "RIYAL"}, {"currency"}),
    "foreign currency without rate": ({"currency": "EUR"}, {"exchange_rate"}),
    "numeric invoice number": ({"invoice_number": 100, "issue_time": "99:00:00"}, {"issue_time"}),
}


@pytest.mark.parametrize(("overrides", "keys"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_row_names_the_key(overrides: dict[str, Any], keys: set[str]) -> None:
    assert _row_problems(**overrides) == keys


def test_bad_seller_names_the_seller_attribute() -> None:
    seller = Seller(
        vat="300000000000001", name_en="X", street="", building="1", city="Riyadh", postal_code="1"
    )

    with pytest.raises(InvoiceValidationError) as raised:
        invoice_from_row(_row(), seller=seller, today=TODAY)

    assert {problem.path for problem in raised.value.problems} == {"seller.vat", "seller.street"}


def test_error_message_names_invoice_and_key() -> None:
    with pytest.raises(
        InvoiceValidationError, match=r"invoice INV-0100 has 1 problem:\n  - lines\[0\]\.quantity: "
    ):
        _build(lines=[{**LINES[0], "quantity": "x"}])
