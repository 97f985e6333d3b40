"""Every validation rule of the E-Invoice object, each as an ``ErrorList`` entry with a ``Path``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from airflow_provider_cleartax.emulator import rules
from tests.emulator.conftest import VAT, Env, make_invoice, mutate, sar, simplified

Change = Callable[[dict[str, Any]], None]


def _seller_address(e: dict[str, Any]) -> dict[str, Any]:
    return e["AccountingSupplierParty"]["Party"]["PostalAddress"]


def _buyer(e: dict[str, Any]) -> dict[str, Any]:
    return e["AccountingCustomerParty"]["Party"]


def _line_category(e: dict[str, Any]) -> dict[str, Any]:
    return e["InvoiceLine"][0]["Item"]["ClassifiedTaxCategory"]


def _zero_rate(e: dict[str, Any]) -> None:
    _line_category(e).update(ID="Z", Percent=0)


BUYER = "EInvoice.AccountingCustomerParty.Party"
#: (id, base invoice, change, expected Path, expected ErrorCode, text expected in the message)
CASES: list[tuple[str, Callable[[], dict[str, Any]], Change, str, str, str]] = [
    (
        "seller-street",
        make_invoice,
        lambda e: _seller_address(e).pop("StreetName"),
        "EInvoice.AccountingSupplierParty.Party.PostalAddress.StreetName",
        "8001",
        "BR-KSA-09",
    ),
    (
        "seller-street-blank",
        make_invoice,
        lambda e: _seller_address(e).update(StreetName="  "),
        "EInvoice.AccountingSupplierParty.Party.PostalAddress.StreetName",
        "8001",
        "BR-KSA-09",
    ),
    (
        "buyer-building-sa",
        make_invoice,
        lambda e: _buyer(e)["PostalAddress"].pop("BuildingNumber"),
        f"{BUYER}.PostalAddress.BuildingNumber",
        "8001",
        "BR-KSA-63",
    ),
    (
        "buyer-postal-4-digits",
        make_invoice,
        lambda e: _buyer(e)["PostalAddress"].update(PostalZone="1234"),
        f"{BUYER}.PostalAddress.PostalZone",
        "8001",
        "BR-KSA-67",
    ),
    (
        "buyer-postal-letters",
        make_invoice,
        lambda e: _buyer(e)["PostalAddress"].update(PostalZone="12A45"),
        f"{BUYER}.PostalAddress.PostalZone",
        "8001",
        "BR-KSA-67",
    ),
    (
        "buyer-country-not-sa",
        make_invoice,
        lambda e: _buyer(e)["PostalAddress"].update(Country={"IdentificationCode": "AE"}),
        f"{BUYER}.PostalAddress.Country.IdentificationCode",
        "8001",
        "must be SA",
    ),
    (
        "standard-without-buyer",
        make_invoice,
        lambda e: e.pop("AccountingCustomerParty"),
        BUYER,
        "8001",
        "mandatory for standard",
    ),
    (
        "standard-without-buyer-vat",
        make_invoice,
        lambda e: _buyer(e).pop("PartyTaxScheme"),
        f"{BUYER}.PartyTaxScheme.CompanyID",
        "8001",
        "BR-KSA-81",
    ),
    (
        "buyer-vat-format",
        make_invoice,
        lambda e: _buyer(e)["PartyTaxScheme"].update(CompanyID="123"),
        f"{BUYER}.PartyTaxScheme.CompanyID",
        "8001",
        "BR-KSA-44",
    ),
    (
        "credit-note-without-reference",
        lambda: make_invoice(code="381"),
        lambda e: e.pop("BillingReference"),
        "EInvoice.BillingReference",
        "8001",
        "BR-KSA-56",
    ),
    (
        "debit-note-without-reason",
        lambda: make_invoice(code="383"),
        lambda e: e.update(PaymentMeans=[{"PaymentMeansCode": "10"}]),
        "EInvoice.PaymentMeans",
        "8001",
        "BR-KSA-17",
    ),
    (
        "supply-after-end",
        make_invoice,
        lambda e: e.update(
            Delivery=[{"ActualDeliveryDate": "2026-03-10", "LatestDeliveryDate": "2026-03-09"}]
        ),
        "EInvoice.Delivery[0].ActualDeliveryDate",
        "8001",
        "BR-KSA-36",
    ),
    (
        "supply-end-without-start",
        make_invoice,
        lambda e: e.update(Delivery=[{"LatestDeliveryDate": "2026-03-09"}]),
        "EInvoice.Delivery[0].ActualDeliveryDate",
        "8001",
        "BR-KSA-35",
    ),
    (
        "issue-date-future",
        make_invoice,
        lambda e: e.update(IssueDate="2026-03-16"),
        "EInvoice.IssueDate",
        "8001",
        "BR-KSA-04",
    ),
    (
        "tax-currency",
        make_invoice,
        lambda e: e.update(TaxCurrencyCode="USD"),
        "EInvoice.TaxCurrencyCode",
        "8001",
        "BR-KSA-68",
    ),
    (
        "line-sum",
        make_invoice,
        lambda e: e["InvoiceLine"][0].update(LineExtensionAmount=sar(90)),
        "EInvoice.LegalMonetaryTotal.LineExtensionAmount",
        "8001",
        "BR-CO-10",
    ),
    (
        "tax-subtotals",
        make_invoice,
        lambda e: e["TaxTotal"][0]["TaxSubtotal"][0].update(TaxAmount=sar(14)),
        "EInvoice.TaxTotal[0].TaxAmount",
        "8001",
        "BR-CO-14",
    ),
    (
        "inclusive-total",
        make_invoice,
        lambda e: e["LegalMonetaryTotal"].update(TaxInclusiveAmount=sar(116)),
        "EInvoice.LegalMonetaryTotal.TaxInclusiveAmount",
        "8001",
        "BR-CO-15",
    ),
    (
        "exemption-code",
        make_invoice,
        _zero_rate,
        "EInvoice.InvoiceLine[0].Item.ClassifiedTaxCategory.TaxExemptionReasonCode",
        "8001",
        "BR-KSA-69",
    ),
    (
        "exemption-code-unknown",
        make_invoice,
        lambda e: (
            _zero_rate(e),
            _line_category(e).update(TaxExemptionReasonCode="VATEX-XX", TaxExemptionReason="x"),
        ),
        "EInvoice.InvoiceLine[0].Item.ClassifiedTaxCategory.TaxExemptionReasonCode",
        "8001",
        "BR-KSA-69",
    ),
    (
        "profile",
        make_invoice,
        lambda e: e.update(ProfileID="clearance:1.0"),
        "EInvoice.ProfileID",
        "6002",
        "reporting:1.0",
    ),
    (
        "number-missing",
        make_invoice,
        lambda e: e.update(ID={"en": None, "ar": ""}),
        "EInvoice.ID",
        "6002",
        "mandatory",
    ),
    (
        "type-name",
        make_invoice,
        lambda e: e["InvoiceTypeCode"].update(name="0300000"),
        "EInvoice.InvoiceTypeCode.name",
        "6002",
        "format",
    ),
    (
        "type-value",
        make_invoice,
        lambda e: e["InvoiceTypeCode"].update(value="380"),
        "EInvoice.InvoiceTypeCode.value",
        "6002",
        "format",
    ),
    (
        "issue-date-format",
        make_invoice,
        lambda e: e.update(IssueDate="15/03/2026"),
        "EInvoice.IssueDate",
        "6002",
        "YYYY-MM-DD",
    ),
    (
        "issue-time-format",
        make_invoice,
        lambda e: e.update(IssueTime="9:30"),
        "EInvoice.IssueTime",
        "6002",
        "HH:mm:ss",
    ),
    (
        "seller-vat-mismatch",
        make_invoice,
        lambda e: e["AccountingSupplierParty"]["Party"]["PartyTaxScheme"].update(CompanyID="311111111111113"),
        "EInvoice.AccountingSupplierParty.Party.PartyTaxScheme.CompanyID",
        "6002",
        "does not match",
    ),
    ("no-lines", make_invoice, lambda e: e.update(InvoiceLine=[]), "EInvoice.InvoiceLine", "8001", "BR-16"),
    ("uuid", make_invoice, lambda e: e.update(UUID="not-a-uuid"), "EInvoice.UUID", "6002", "invalid"),
]


@pytest.mark.parametrize(("case", "base", "change", "path", "code", "text"), CASES, ids=[c[0] for c in CASES])
def test_rule_violation_is_reported_with_its_path(
    env: Env, case: str, base: Callable[[], dict[str, Any]], change: Change, path: str, code: str, text: str
) -> None:
    response = env.generate(mutate(base(), change))
    assert response.status_code == 200
    body = response.json()
    assert body["Status"] == "NOT_GENERATED"
    assert body["InvoiceStatus"] == "NOT_CLEARED"
    matching = [entry for entry in body["ErrorList"] if entry["Path"] == path]
    assert matching, body["ErrorList"]
    entry = matching[0]
    assert entry["ErrorCode"] == code
    assert entry["ErrorSource"] == ("ZATCA" if code == "8001" else "CLEARTAX")
    assert text in entry["ErrorMessage"]


@pytest.mark.parametrize(
    ("base", "change"),
    [
        (make_invoice, lambda e: None),
        (simplified, lambda e: None),
        # Export invoices may go to a foreign buyer without VAT number.
        (
            lambda: make_invoice(name="0100100"),
            lambda e: (
                _buyer(e)["PostalAddress"].update(Country={"IdentificationCode": "AE"}, PostalZone="X1"),
                _buyer(e).pop("PartyTaxScheme"),
            ),
        ),
        # A simplified invoice needs no buyer VAT; a foreign-less buyer without country is not checked.
        (lambda: make_invoice(name="0200000"), lambda e: _buyer(e).pop("PartyTaxScheme")),
        (make_invoice, lambda e: e.pop("TaxCurrencyCode")),
        (
            make_invoice,
            lambda e: e.update(
                Delivery=[{"ActualDeliveryDate": "2026-03-01", "LatestDeliveryDate": "2026-03-01"}]
            ),
        ),
        (
            make_invoice,
            lambda e: (
                _zero_rate(e),
                _line_category(e).update(
                    TaxExemptionReasonCode="VATEX-SA-32", TaxExemptionReason="Export of goods"
                ),
            ),
        ),
        # Amounts may arrive as bare numbers or strings; a cent of rounding is tolerated.
        (
            make_invoice,
            lambda e: e["LegalMonetaryTotal"].update(LineExtensionAmount="100.00", TaxInclusiveAmount=115.01),
        ),
        (lambda: make_invoice(code="381"), lambda e: None),
        (lambda: make_invoice(code="386"), lambda e: None),
    ],
    ids=[
        "standard",
        "simplified",
        "export",
        "simplified-buyer-no-vat",
        "no-tax-currency",
        "same-day-supply",
        "zero-rated",
        "loose-amounts",
        "credit-note",
        "prepayment",
    ],
)
def test_valid_variants_pass(env: Env, base: Callable[[], dict[str, Any]], change: Change) -> None:
    body = env.generate(mutate(base(), change)).json()
    assert body["ErrorList"] == []
    assert body["Status"] == "GENERATED"


def test_all_violations_are_reported_together(env: Env) -> None:
    def break_everything(e: dict[str, Any]) -> None:
        _seller_address(e).pop("StreetName")
        e.update(TaxCurrencyCode="EUR", IssueDate="2027-01-01")
        e["LegalMonetaryTotal"].update(TaxInclusiveAmount=sar(1))

    body = env.generate(mutate(make_invoice(), break_everything)).json()
    messages = " ".join(entry["ErrorMessage"] for entry in body["ErrorList"])
    for rule in ("BR-KSA-09", "BR-KSA-68", "BR-KSA-04", "BR-CO-15"):
        assert rule in messages


def test_arabic_rule_messages(env: Env) -> None:
    broken = mutate(make_invoice(), lambda e: e.update(TaxCurrencyCode="USD"))
    body = env.generate(broken, headers={"accept-language": "ar-SA"}).json()
    [entry] = body["ErrorList"]
    assert entry["ErrorMessage"].startswith("[BR-KSA-68] ")
    assert "عملة" in entry["ErrorMessage"]


def test_every_message_has_an_arabic_variant_with_the_same_placeholders() -> None:
    for key, (english, arabic) in rules.MESSAGES.items():
        assert arabic, key
        assert sorted(_placeholders(english)) == sorted(_placeholders(arabic)), key


def _placeholders(template: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


@pytest.mark.parametrize(
    "einvoice",
    [
        {},
        {"ID": [], "InvoiceTypeCode": {"name": 1, "value": None}},
        {"TaxTotal": [{"TaxSubtotal": [1, None]}]},
        {"InvoiceLine": {"LineExtensionAmount": "NaN"}},
        {"LegalMonetaryTotal": {"TaxInclusiveAmount": True}},
        {"Delivery": [{"ActualDeliveryDate": "2026-02-30"}]},
        {"AccountingCustomerParty": {"Party": "x"}},
    ],
)
def test_validation_never_raises_on_odd_shapes(einvoice: dict[str, Any]) -> None:
    errors = rules.validate_einvoice(einvoice, vat=VAT, today=date(2026, 3, 15))
    assert errors
    assert all(set(entry) == {"ErrorCode", "ErrorMessage", "ErrorSource", "Path"} for entry in errors)
