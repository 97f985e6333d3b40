"""Client-side checks reproduce ClearTax's rules, with the invoice number and the JSON path."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from airflow_provider_cleartax.invoices import (
    EInvoice,
    InvoiceProblem,
    InvoiceValidationError,
    check_invoice,
    invoice_identity,
    is_export,
    is_simplified,
    is_standard,
    ksa_today,
    validate_invoice,
)
from tests.invoices.conftest import DELETE, TODAY, edit, load_sample

SELLER = "AccountingSupplierParty.Party"
BUYER = "AccountingCustomerParty.Party"
LINE_1_CATEGORY = "InvoiceLine[1].Item.ClassifiedTaxCategory"
EXPORT_CATEGORY = "InvoiceLine[0].Item.ClassifiedTaxCategory"


def _found(problems: list[InvoiceProblem]) -> set[tuple[str, str]]:
    return {(problem.path, problem.code) for problem in problems}


def test_samples_validate_cleanly(sample_name: str) -> None:
    assert validate_invoice(load_sample(sample_name), today=TODAY) == []


def test_models_validate_like_their_json(sample_name: str) -> None:
    model = EInvoice.model_validate(load_sample(sample_name))

    assert validate_invoice(model, today=TODAY) == []
    assert check_invoice(model, today=TODAY) is model


# (sample, changes, every (path below EInvoice, code) expected)
RULE_CASES: dict[str, tuple[str, dict[str, Any], set[tuple[str, str]]]] = {
    "seller VAT format": (
        "standard_invoice",
        {f"{SELLER}.PartyTaxScheme.CompanyID": "300000000000004"},
        {(f"{SELLER}.PartyTaxScheme.CompanyID", "VAT_FORMAT")},
    ),
    "seller VAT missing": (
        "simplified_invoice",
        {f"{SELLER}.PartyTaxScheme.CompanyID": DELETE},
        {(f"{SELLER}.PartyTaxScheme.CompanyID", "SELLER_VAT")},
    ),
    "buyer VAT format": (
        "standard_invoice",
        {f"{BUYER}.PartyTaxScheme.CompanyID": "31111111111113"},
        {(f"{BUYER}.PartyTaxScheme.CompanyID", "VAT_FORMAT")},
    ),
    "profile": ("debit_note", {"ProfileID": "clearance:1.0"}, {("ProfileID", "PROFILE_ID")}),
    "type code": (
        "standard_invoice",
        {"InvoiceTypeCode.value": "380"},
        {("InvoiceTypeCode.value", "TYPE_CODE")},
    ),
    "type name prefix": (
        "debit_note",
        {"InvoiceTypeCode.name": "0300000"},
        {("InvoiceTypeCode.name", "TYPE_NAME")},
    ),
    "type name length": (
        "debit_note",
        {"InvoiceTypeCode.name": "02000"},
        {("InvoiceTypeCode.name", "TYPE_NAME")},
    ),
    "issue date in the future": (
        "credit_note",
        {"IssueDate": "2026-04-01"},
        {("IssueDate", "ISSUE_DATE_FUTURE")},
    ),
    "issue date format": ("credit_note", {"IssueDate": "20/01/2026"}, {("IssueDate", "ISSUE_DATE_FORMAT")}),
    "issue date not a day": (
        "credit_note",
        {"IssueDate": "2026-02-30"},
        {("IssueDate", "ISSUE_DATE_FORMAT")},
    ),
    "issue time format": ("simplified_invoice", {"IssueTime": "18:04"}, {("IssueTime", "ISSUE_TIME_FORMAT")}),
    "issue time range": (
        "simplified_invoice",
        {"IssueTime": "24:00:00"},
        {("IssueTime", "ISSUE_TIME_FORMAT")},
    ),
    "seller street missing": (
        "simplified_invoice",
        {f"{SELLER}.PostalAddress.StreetName": DELETE},
        {(f"{SELLER}.PostalAddress.StreetName", "SELLER_STREET")},
    ),
    "seller street blank": (
        "standard_invoice",
        {f"{SELLER}.PostalAddress.StreetName": {"en": " ", "ar": None}},
        {(f"{SELLER}.PostalAddress.StreetName", "SELLER_STREET")},
    ),
    "buyer building missing": (
        "standard_invoice",
        {f"{BUYER}.PostalAddress.BuildingNumber": DELETE},
        {(f"{BUYER}.PostalAddress.BuildingNumber", "BUYER_BUILDING_NUMBER")},
    ),
    "buyer building not 4 digits": (
        "credit_note",
        {f"{BUYER}.PostalAddress.BuildingNumber": "23A2"},
        {(f"{BUYER}.PostalAddress.BuildingNumber", "BUYER_BUILDING_NUMBER")},
    ),
    "buyer postal code": (
        "standard_invoice",
        {f"{BUYER}.PostalAddress.PostalZone": "2333"},
        {(f"{BUYER}.PostalAddress.PostalZone", "BUYER_POSTAL_CODE")},
    ),
    "buyer abroad without export flag": (
        "zero_rated_export",
        {"InvoiceTypeCode.name": "0100000"},
        {
            (f"{BUYER}.PostalAddress.Country.IdentificationCode", "BUYER_COUNTRY"),
            (f"{BUYER}.PartyTaxScheme.CompanyID", "BUYER_VAT"),
        },
    ),
    "standard invoice without buyer": (
        "standard_invoice",
        {"AccountingCustomerParty": DELETE},
        {("AccountingCustomerParty", "BUYER_MISSING")},
    ),
    "standard invoice without buyer VAT": (
        "standard_invoice",
        {f"{BUYER}.PartyTaxScheme": DELETE},
        {(f"{BUYER}.PartyTaxScheme.CompanyID", "BUYER_VAT")},
    ),
    "export without buyer VAT or other id": (
        "zero_rated_export",
        {f"{BUYER}.PartyIdentification": DELETE},
        {(f"{BUYER}.PartyTaxScheme.CompanyID", "BUYER_VAT")},
    ),
    "credit note without billing reference": (
        "credit_note",
        {"BillingReference": DELETE},
        {("BillingReference", "BILLING_REFERENCE")},
    ),
    "debit note with blank billing reference": (
        "debit_note",
        {"BillingReference[0].InvoiceDocumentReference.ID": {"en": "", "ar": None}},
        {("BillingReference", "BILLING_REFERENCE")},
    ),
    "debit note without reason": (
        "debit_note",
        {"PaymentMeans[0].InstructionNote": DELETE},
        {("PaymentMeans[0].InstructionNote", "NOTE_REASON")},
    ),
    "credit note without payment means": (
        "credit_note",
        {"PaymentMeans": DELETE},
        {("PaymentMeans", "NOTE_REASON")},
    ),
    "supply date after supply end date": (
        "zero_rated_export",
        {"Delivery[0].ActualDeliveryDate": "2026-03-01"},
        {("Delivery[0].ActualDeliveryDate", "SUPPLY_DATES")},
    ),
    "supply end date without supply date": (
        "zero_rated_export",
        {"Delivery[0].ActualDeliveryDate": DELETE},
        {("Delivery[0].ActualDeliveryDate", "SUPPLY_DATE_MISSING")},
    ),
    "supply date format": (
        "standard_invoice",
        {"Delivery[0].ActualDeliveryDate": "14.01.2026"},
        {("Delivery[0].ActualDeliveryDate", "DELIVERY_DATE_FORMAT")},
    ),
    "tax currency": ("zero_rated_export", {"TaxCurrencyCode": "USD"}, {("TaxCurrencyCode", "TAX_CURRENCY")}),
    "document currency": (
        "standard_invoice",
        {"DocumentCurrencyCode": "sar"},
        {("DocumentCurrencyCode", "DOCUMENT_CURRENCY")},
    ),
    "line sum": (
        "standard_invoice",
        {"LegalMonetaryTotal.LineExtensionAmount.value": 400.01},
        {("LegalMonetaryTotal.LineExtensionAmount", "LINE_TOTAL")},
    ),
    "tax total against subtotals": (
        "standard_invoice",
        {"TaxTotal[0].TaxSubtotal[0].TaxAmount.value": 59.98},
        {("TaxTotal[0].TaxAmount", "TAX_TOTAL")},
    ),
    "inclusive amount": (
        "simplified_invoice",
        {"LegalMonetaryTotal.TaxInclusiveAmount.value": 36.25},
        {("LegalMonetaryTotal.TaxInclusiveAmount", "INCLUSIVE_TOTAL")},
    ),
    "line tax": (
        "standard_invoice",
        {"InvoiceLine[1].TaxTotal.TaxAmount.value": 15.02},
        {("InvoiceLine[1].TaxTotal.TaxAmount", "LINE_TAX")},
    ),
    "unknown tax category": (
        "standard_invoice",
        {f"{LINE_1_CATEGORY}.ID": "X"},
        {(f"{LINE_1_CATEGORY}.ID", "TAX_CATEGORY")},
    ),
    "standard rate is 15": (
        "standard_invoice",
        {f"{LINE_1_CATEGORY}.Percent": 5},
        {(f"{LINE_1_CATEGORY}.Percent", "TAX_PERCENT"), ("InvoiceLine[1].TaxTotal.TaxAmount", "LINE_TAX")},
    ),
    "zero rate is 0": (
        "zero_rated_export",
        {f"{EXPORT_CATEGORY}.Percent": 15.0},
        {(f"{EXPORT_CATEGORY}.Percent", "TAX_PERCENT"), ("InvoiceLine[0].TaxTotal.TaxAmount", "LINE_TAX")},
    ),
    "percent missing": (
        "debit_note",
        {"InvoiceLine[0].Item.ClassifiedTaxCategory.Percent": DELETE},
        {("InvoiceLine[0].Item.ClassifiedTaxCategory.Percent", "TAX_PERCENT")},
    ),
    "exemption code missing": (
        "zero_rated_export",
        {f"{EXPORT_CATEGORY}.TaxExemptionReasonCode": DELETE},
        {(f"{EXPORT_CATEGORY}.TaxExemptionReasonCode", "EXEMPTION_CODE")},
    ),
    "exemption code unknown": (
        "zero_rated_export",
        {f"{EXPORT_CATEGORY}.TaxExemptionReasonCode": "VATEX-SA-99"},
        {(f"{EXPORT_CATEGORY}.TaxExemptionReasonCode", "EXEMPTION_CODE")},
    ),
    "exemption reason missing": (
        "zero_rated_export",
        {f"{EXPORT_CATEGORY}.TaxExemptionReason": " "},
        {(f"{EXPORT_CATEGORY}.TaxExemptionReason", "EXEMPTION_REASON")},
    ),
    "exempt line without exemption": (
        "standard_invoice",
        {f"{LINE_1_CATEGORY}.ID": "E", f"{LINE_1_CATEGORY}.Percent": 0},
        {
            (f"{LINE_1_CATEGORY}.TaxExemptionReasonCode", "EXEMPTION_CODE"),
            (f"{LINE_1_CATEGORY}.TaxExemptionReason", "EXEMPTION_REASON"),
            ("InvoiceLine[1].TaxTotal.TaxAmount", "LINE_TAX"),
        },
    ),
    "subtotal category exemption": (
        "zero_rated_export",
        {"TaxTotal[0].TaxSubtotal[0].TaxCategory.TaxExemptionReasonCode": DELETE},
        {("TaxTotal[0].TaxSubtotal[0].TaxCategory.TaxExemptionReasonCode", "EXEMPTION_CODE")},
    ),
}


@pytest.mark.parametrize(("sample", "changes", "expected"), RULE_CASES.values(), ids=RULE_CASES.keys())
def test_rule_violation_is_reported(
    sample: str, changes: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    invoice = edit(load_sample(sample), changes)

    problems = validate_invoice(invoice, today=TODAY)

    assert _found(problems) == {(f"EInvoice.{path}", code) for path, code in expected}
    assert {problem.invoice_number for problem in problems} == {invoice["ID"]["en"]}
    assert all(problem.message for problem in problems)


def test_totals_tolerate_one_halala() -> None:
    invoice = edit(
        load_sample("standard_invoice"),
        {
            "InvoiceLine[1].TaxTotal.TaxAmount.value": 15.01,
            "LegalMonetaryTotal.TaxInclusiveAmount.value": 460.0,
        },
    )

    assert validate_invoice(invoice, today=TODAY) == []


def test_line_tax_is_rounded_half_up() -> None:
    # 31.50 x 15 % = 4.725: half-up gives 4.73 (the sample), half-even would give 4.72.
    invoice = edit(load_sample("simplified_invoice"), {"InvoiceLine[0].TaxTotal.TaxAmount.value": 4.71})

    assert _found(validate_invoice(invoice, today=TODAY)) == {
        ("EInvoice.InvoiceLine[0].TaxTotal.TaxAmount", "LINE_TAX")
    }


def test_simplified_invoice_needs_no_buyer() -> None:
    invoice = edit(load_sample("simplified_invoice"), {"AccountingCustomerParty": DELETE})

    assert validate_invoice(invoice, today=TODAY) == []


def test_export_buyer_may_carry_a_foreign_tax_number() -> None:
    invoice = edit(
        load_sample("zero_rated_export"),
        {f"{BUYER}.PartyTaxScheme": {"CompanyID": "100234567800003", "TaxScheme": {"ID": "VAT"}}},
    )

    assert validate_invoice(invoice, today=TODAY) == []


SCHEMA_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "wrong type": ({"IssueDate": 20260115}, "EInvoice.IssueDate", "SCHEMA_STRING_TYPE"),
    "missing mandatory field": ({"ID": DELETE}, "EInvoice.ID", "SCHEMA_MISSING"),
    "bad amount in a line": (
        {"InvoiceLine[1].LineExtensionAmount.value": "ninety"},
        "EInvoice.InvoiceLine[1].LineExtensionAmount.value",
        "SCHEMA_NUMBER_TYPE",
    ),
    "boolean amount": (
        {"TaxTotal[1].TaxAmount.value": True},
        "EInvoice.TaxTotal[1].TaxAmount.value",
        "SCHEMA_NUMBER_TYPE",
    ),
    "text of the wrong shape": (
        {f"{SELLER}.PostalAddress.CityName": 42},
        f"EInvoice.{SELLER}.PostalAddress.CityName",
        "SCHEMA_TEXT_TYPE",
    ),
    "bilingual part of the wrong type": (
        {f"{SELLER}.PostalAddress.CityName": {"en": 42}},
        f"EInvoice.{SELLER}.PostalAddress.CityName.en",
        "SCHEMA_STRING_TYPE",
    ),
    "missing seller address": (
        {f"{SELLER}.PostalAddress": DELETE},
        f"EInvoice.{SELLER}.PostalAddress",
        "SCHEMA_MISSING",
    ),
    "no lines": ({"InvoiceLine": []}, "EInvoice.InvoiceLine", "SCHEMA_TOO_SHORT"),
    "allowance tax category of the wrong shape": (
        {"AllowanceCharge[0].TaxCategory": "S"},
        "EInvoice.AllowanceCharge[0].TaxCategory",
        "SCHEMA_TAX_CATEGORY_TYPE",
    ),
}


@pytest.mark.parametrize(("changes", "path", "code"), SCHEMA_CASES.values(), ids=SCHEMA_CASES.keys())
def test_type_errors_become_problems_with_paths(changes: dict[str, Any], path: str, code: str) -> None:
    problems = validate_invoice(edit(load_sample("standard_invoice"), changes), today=TODAY)

    assert (path, code) in _found(problems)
    assert all(problem.path.startswith("EInvoice") for problem in problems)


def test_type_errors_and_rule_violations_come_together() -> None:
    invoice = edit(load_sample("credit_note"), {"IssueTime": 1100, "BillingReference": DELETE})

    problems = validate_invoice(invoice, today=TODAY)

    assert _found(problems) == {
        ("EInvoice.IssueTime", "SCHEMA_STRING_TYPE"),
        ("EInvoice.BillingReference", "BILLING_REFERENCE"),
    }
    assert {problem.invoice_number for problem in problems} == {"CRN-0001"}


def test_invoice_without_number_is_still_checked() -> None:
    invoice = edit(load_sample("debit_note"), {"ID": {"en": " ", "ar": None}, "BillingReference": DELETE})

    problems = validate_invoice(invoice, today=TODAY)

    assert _found(problems) == {
        ("EInvoice.ID", "INVOICE_NUMBER"),
        ("EInvoice.BillingReference", "BILLING_REFERENCE"),
    }
    assert {problem.invoice_number for problem in problems} == {""}
    assert str(problems[0]).startswith("(no invoice number): EInvoice.ID: ")


def test_non_mapping_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="list"):
        validate_invoice([], today=TODAY)  # type: ignore[arg-type]


def test_problem_reads_well() -> None:
    problems = validate_invoice(
        edit(load_sample("standard_invoice"), {"IssueDate": "2027-01-01"}), today=TODAY
    )

    assert [str(problem) for problem in problems] == [
        "INV-0001: EInvoice.IssueDate: issue date 2027-01-01 is in the future"
    ]


def test_check_invoice_raises_with_every_problem() -> None:
    invoice = edit(load_sample("credit_note"), {"IssueDate": "2026-05-01", "PaymentMeans": DELETE})

    with pytest.raises(InvoiceValidationError) as raised:
        check_invoice(invoice, today=TODAY)

    error = raised.value
    assert isinstance(error, ValueError)
    assert error.invoice_number == "CRN-0001"
    assert [problem.code for problem in error.problems] == ["ISSUE_DATE_FUTURE", "NOTE_REASON"]
    assert "CRN-0001" in str(error) and "EInvoice.PaymentMeans" in str(error)


def test_check_invoice_returns_the_model() -> None:
    model = check_invoice(load_sample("credit_note"), today=TODAY)

    assert isinstance(model, EInvoice)
    assert model.invoice_number == "CRN-0001"


def test_today_defaults_to_the_saudi_calendar() -> None:
    future = edit(load_sample("debit_note"), {"IssueDate": "2999-01-01"})
    today = edit(load_sample("debit_note"), {"IssueDate": ksa_today().isoformat()})

    assert _found(validate_invoice(future)) == {("EInvoice.IssueDate", "ISSUE_DATE_FUTURE")}
    assert validate_invoice(today, today=ksa_today()) == []


IDENTITY_CASES = {
    "standard_invoice": ("INV", "388", "300000000000003_INV-0001_388_2026"),
    "simplified_invoice": ("INV", "388", "300000000000003_SIM-2026/0107_388_2026"),
    "credit_note": ("CRN", "381", "300000000000003_CRN-0001_381_2026"),
    "debit_note": ("DBN", "383", "300000000000003_DBN-0009_383_2026"),
}


@pytest.mark.parametrize(("sample", "expected"), IDENTITY_CASES.items(), ids=IDENTITY_CASES.keys())
def test_invoice_identity(sample: str, expected: tuple[str, str, str]) -> None:
    invoice = load_sample(sample)

    identity = invoice_identity(invoice)

    assert (identity.invoice_type, identity.type_code, identity.unique_id) == expected
    assert identity == invoice_identity(EInvoice.model_validate(invoice))
    assert identity.query_params() == {
        "invoiceNumber": invoice["ID"]["en"],
        "invoiceType": expected[0],
        "issueDate": invoice["IssueDate"],
        "vat": "300000000000003",
    }


def test_prepayment_identity() -> None:
    invoice = edit(
        load_sample("standard_invoice"), {"InvoiceTypeCode.value": "386", "IssueDate": "2025-12-31"}
    )

    identity = invoice_identity(invoice)

    assert (identity.invoice_type, identity.issue_date) == ("RECEIPT", date(2025, 12, 31))
    assert identity.unique_id == "300000000000003_INV-0001_386_2025"


def test_identity_names_what_is_missing() -> None:
    invoice = edit(
        load_sample("standard_invoice"),
        {f"{SELLER}.PartyTaxScheme.CompanyID": "12", "InvoiceTypeCode.value": "380", "IssueDate": DELETE},
    )

    with pytest.raises(InvoiceValidationError) as raised:
        invoice_identity(invoice)

    assert raised.value.invoice_number == "INV-0001"
    assert [problem.path for problem in raised.value.problems] == [
        f"EInvoice.{SELLER}.PartyTaxScheme.CompanyID",
        "EInvoice.InvoiceTypeCode.value",
        "EInvoice.IssueDate",
    ]


@pytest.mark.parametrize(
    ("sample", "standard", "simplified", "export"),
    [
        ("standard_invoice", True, False, False),
        ("simplified_invoice", False, True, False),
        ("debit_note", False, True, False),
        ("zero_rated_export", True, False, True),
    ],
)
def test_invoice_kind(sample: str, standard: bool, simplified: bool, export: bool) -> None:
    invoice = load_sample(sample)

    assert (is_standard(invoice), is_simplified(invoice), is_export(invoice)) == (
        standard,
        simplified,
        export,
    )
    assert is_standard(EInvoice.model_validate(invoice)) == standard


def test_malformed_type_name_is_neither_kind() -> None:
    invoice = edit(load_sample("standard_invoice"), {"InvoiceTypeCode.name": "0X00000"})

    assert not is_standard(invoice) and not is_simplified(invoice)
