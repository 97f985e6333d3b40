"""The pydantic models read ClearTax JSON and give it back unchanged."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from airflow_provider_cleartax.invoices import (
    Amount,
    EInvoice,
    EmailRequest,
    GenerateCsidRequest,
    GenerateRequest,
    InvoiceIdentity,
    RegisterDeviceRequest,
    invoice_identity,
)
from tests.invoices.conftest import load_sample, sample_text


def _normalised(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def test_sample_round_trips_byte_for_byte(sample_name: str) -> None:
    original = json.loads(sample_text(sample_name))

    model = EInvoice.model_validate(original)

    assert _normalised(model.to_api()) == _normalised(original)
    assert model.model_dump(by_alias=True, exclude_unset=True) == original


def test_unknown_fields_are_kept_at_every_level() -> None:
    model = EInvoice.model_validate(load_sample("standard_invoice"))

    assert model.model_extra == {"Note": "Thank you for your business", "ICV": 41}
    buyer_address = model.accounting_customer_party.party.postal_address
    assert buyer_address.model_extra == {"AdditionalNumber": "4411"}
    assert model.invoice_line[0].model_extra == {"ErpLineRef": "SO-12/1"}


def test_numbers_keep_their_json_type() -> None:
    model = EInvoice.model_validate(load_sample("standard_invoice"))

    price = model.invoice_line[0].price.price_amount
    assert type(price.value) is int
    assert type(model.invoice_line[1].price.price_amount.value) is float
    assert price.amount == Decimal("150")
    assert model.invoice_line[1].line_extension_amount.amount == Decimal("99.99")


def test_numeric_strings_and_decimals_are_accepted() -> None:
    assert Amount.model_validate({"currencyID": "SAR", "value": "12.50"}).to_api()["value"] == "12.50"
    assert Amount(currency_id="SAR", value=Decimal("12.50")).to_api() == {"currencyID": "SAR", "value": 12.5}
    assert Amount(currency_id="SAR", value=Decimal("7")).to_api() == {"currencyID": "SAR", "value": 7}
    with pytest.raises(ValidationError, match="expected a number"):
        Amount.model_validate({"currencyID": "SAR", "value": "12,50"})


def test_models_accept_python_names_and_dump_clear_tax_names() -> None:
    amount = Amount(currency_id="SAR", value=10)

    assert amount.to_api() == {"currencyID": "SAR", "value": 10}
    assert Amount.model_validate({"currency_id": "SAR", "value": 1}).currency_id == "SAR"


def test_invoice_properties() -> None:
    model = EInvoice.model_validate(load_sample("simplified_invoice"))

    assert model.invoice_number == "SIM-2026/0107"
    assert model.type_code == "388"
    assert model.seller_vat == "300000000000003"


def test_generate_request_round_trips_with_custom_fields() -> None:
    body = {
        "DeviceId": "7b5a5a8e-8f5c-4c0e-9d7e-000000000001",
        "EInvoice": load_sample("credit_note"),
        "CustomFields": {"ErpDocumentId": 991, "Channel": "b2b"},
    }

    request = GenerateRequest.model_validate(body)

    assert _normalised(request.to_api()) == _normalised(body)
    assert request.e_invoice.invoice_number == "CRN-0001"


def test_generate_request_built_from_a_model() -> None:
    invoice = EInvoice.model_validate(load_sample("debit_note"))

    body = GenerateRequest(device_id="device-1", e_invoice=invoice).to_api()

    assert list(body) == ["DeviceId", "EInvoice"]
    assert _normalised(body["EInvoice"]) == _normalised(load_sample("debit_note"))


def test_register_device_request_checks_serial_and_otp() -> None:
    body = {
        "DeviceDetails": {"EgsSerialNumber": "1-Airflow|2-Provider|3-0001", "DeviceName": "dag-runner"},
        "OrganizationDetails": {"VatNumber": "300000000000003", "BranchName": "Riyadh HQ"},
        "Otp": "123456",
    }

    assert RegisterDeviceRequest.model_validate(body).to_api() == body
    with pytest.raises(ValidationError) as raised:
        RegisterDeviceRequest.model_validate(
            {**body, "Otp": "12345", "DeviceDetails": {"EgsSerialNumber": "abc"}}
        )
    assert {error["loc"] for error in raised.value.errors()} == {
        ("Otp",),
        ("DeviceDetails", "EgsSerialNumber"),
    }


def test_generate_csid_request() -> None:
    assert GenerateCsidRequest(device_id="d-1", otp="654321").to_api() == {"DeviceId": "d-1", "Otp": "654321"}


def test_email_request_has_the_documented_shape() -> None:
    identity = invoice_identity(load_sample("standard_invoice"))

    body = EmailRequest.for_invoices([identity], to=["ap@example.com"], cc=["audit@example.com"]).to_api()

    assert body == {
        "Attachments": {
            "documentDetails": [
                {
                    "InvoiceNumber": "INV-0001",
                    "IssueDate": "2026-01-15",
                    "InvoiceType": "INV",
                    "Vat": "300000000000003",
                }
            ],
            "printTemplateId": "39",
            "documentType": "EINVOICE",
        },
        "PreviewDetails": {
            "Template": {"Type": "INVOICE_GENERATED"},
            "CounterParties": [
                {
                    "Contacts": [
                        {"Email": "ap@example.com", "EmailRecipientType": "TO"},
                        {"Email": "audit@example.com", "EmailRecipientType": "CC"},
                    ]
                }
            ],
        },
    }


def test_email_request_rejects_receipts() -> None:
    receipt = InvoiceIdentity(
        vat="300000000000003",
        invoice_number="PRE-1",
        invoice_type="RECEIPT",
        type_code="386",
        issue_date=invoice_identity(load_sample("debit_note")).issue_date,
    )

    with pytest.raises(ValidationError, match="RECEIPT"):
        EmailRequest.for_invoices([receipt], to=["a@example.com"])
