"""Every ClearTaxHook endpoint method against the bundled emulator, over real HTTP."""

from __future__ import annotations

import asyncio
import base64

import pytest

from airflow_provider_cleartax.client.api import key_of_invoice
from airflow_provider_cleartax.emulator import documents
from airflow_provider_cleartax.emulator.config import DEFAULT_DEVICE_ID, DEFAULT_TOKEN, DEFAULT_VAT
from airflow_provider_cleartax.exceptions import (
    ClearTaxAuthError,
    ClearTaxInvoiceRejectedError,
    ClearTaxNotFoundError,
    ClearTaxPermissionError,
    ClearTaxValidationError,
)
from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
from tests.conftest import sample_invoice

SERIAL = "1-Airflow|2-Emulator|3-0001"
DEVICE_DETAILS = {"EgsSerialNumber": SERIAL, "EgsName": "airflow-egs"}
ORGANIZATION = {"OrganizationName": "Emulator Trading Co.", "CountryCode": "SA"}


@pytest.fixture
def hook(cleartax_connection: str) -> ClearTaxHook:
    return ClearTaxHook(cleartax_conn_id=cleartax_connection, backoff_base=0.01, backoff_cap=0.05)


def _key(invoice: dict):
    return key_of_invoice(invoice, DEFAULT_VAT)


def test_generate_clears_a_standard_invoice_and_get_finds_it(hook: ClearTaxHook, cleartax_emulator) -> None:
    invoice = sample_invoice("standard_invoice")
    result = hook.generate_invoice(invoice)
    assert result.invoice_status == "CLEARED"
    assert result.uuid and result.icv and result.qr_code and result.invoice_xml
    key = _key(invoice)
    assert cleartax_emulator.submission_counts() == {key.unique_id: 1}
    by_id = hook.get_invoice(unique_id=key.unique_id)
    by_query = hook.get_invoice(
        invoice_number=key.invoice_number, invoice_type="388", issue_date=key.issue_date
    )
    assert by_id.uuid == by_query.uuid == result.uuid
    xml = base64.b64decode(by_id.invoice_xml)
    assert b"INV-0001" in xml


def test_generate_reports_a_simplified_invoice(hook: ClearTaxHook) -> None:
    assert hook.generate_invoice(sample_invoice("simplified_invoice")).invoice_status == "REPORTED"


def test_rejected_invoice_raises_with_paths(hook: ClearTaxHook) -> None:
    invoice = sample_invoice("standard_invoice", number="INV-BAD-1")
    invoice["TaxCurrencyCode"] = "USD"
    with pytest.raises(ClearTaxInvoiceRejectedError) as caught:
        hook.generate_invoice(invoice)
    assert caught.value.result.invoice_status == "NOT_CLEARED"
    assert any("TaxCurrencyCode" in (e.get("Path") or "") for e in caught.value.errors)


def test_unknown_invoice_is_not_found(hook: ClearTaxHook) -> None:
    with pytest.raises(ClearTaxNotFoundError) as caught:
        hook.get_invoice(unique_id=f"{DEFAULT_VAT}_NOPE_388_2026")
    assert caught.value.errors[0]["ErrorCode"] == "6003"


def test_async_generate_then_bulk_status(hook: ClearTaxHook) -> None:
    invoice = sample_invoice("simplified_invoice", number="SIM-ASYNC-1")
    result = hook.generate_invoice_async(invoice)
    assert result.invoice_status == "PENDING"
    key = _key(invoice)
    items = hook.get_bulk_status(
        [key.unique_id, {**key.query(), "invoiceType": "388"}, f"{DEFAULT_VAT}_X_388_2026"]
    )
    assert [i.unique_id for i in items][:1] == [key.unique_id]
    assert items[0].einvoice_status in ("PENDING", "REPORTED")
    assert items[2].einvoice_status is None and items[2].error_list[0].error_code == "6003"


def test_generate_from_unsigned_xml(hook: ClearTaxHook) -> None:
    invoice = sample_invoice("standard_invoice", number="INV-XML-1")
    xml = documents.build_invoice_xml(invoice, uuid="3cf5ee18-ee25-44ea-a444-2c37ba7f28be", icv=1, pih="")
    result = hook.generate_invoice_from_xml(xml, device_id=DEFAULT_DEVICE_ID)
    assert result.invoice_status == "CLEARED"
    assert hook.get_invoice(unique_id=_key(invoice).unique_id).uuid == result.uuid


def test_send_signed_xml(hook: ClearTaxHook) -> None:
    invoice = sample_invoice("standard_invoice", number="INV-SIGNED-1")
    xml = documents.build_invoice_xml(
        invoice,
        uuid="8e6000cf-1a98-4174-b3e7-b5d5954bc10d",
        icv=10,
        pih="NWZlY2ViNjZmZmM4NmYzOGQ5NTI3ODZjNmQ2OTZjNzljMmRiYzIzOWRkNGU5MWI0NjcyOWQ3M2EyN2ZiNTdlOQ==",
    )
    result = hook.send_signed_xml(xml, device_id=DEFAULT_DEVICE_ID)
    assert result.validation_results.status in ("PASS", "WARNING")
    assert result.clearance_status == "CLEARED"


def test_pdf_download_and_embed(hook: ClearTaxHook, tmp_path) -> None:
    invoice = sample_invoice("standard_invoice", number="INV-PDF-1")
    hook.generate_invoice(invoice)
    key = _key(invoice)
    args = {"invoice_number": key.invoice_number, "invoice_type": "INV", "issue_date": key.issue_date}
    download = hook.download_invoice_pdf(tmp_path / "inv.pdf", **args)
    pdf = (tmp_path / "inv.pdf").read_bytes()
    assert download.size == len(pdf) and pdf.startswith(b"%PDF-")
    assert any(b"INV-PDF-1" in body for body in documents.extract_embedded_files(pdf).values())

    embedded = hook.embed_xml_in_pdf(pdf, tmp_path / "mine.pdf", **args)
    out = (tmp_path / "mine.pdf").read_bytes()
    assert embedded.size == len(out) and out.startswith(b"%PDF-")
    with pytest.raises(ClearTaxNotFoundError):
        hook.download_invoice_pdf(tmp_path / "none.pdf", **{**args, "invoice_number": "MISSING"})


def test_email(hook: ClearTaxHook, cleartax_emulator) -> None:
    invoice = sample_invoice("standard_invoice", number="INV-MAIL-1")
    hook.generate_invoice(invoice)
    key = _key(invoice)
    hook.email_invoice(
        invoice_number=key.invoice_number,
        invoice_type="INV",
        issue_date=key.issue_date,
        to=["buyer@example.com"],
    )
    assert len(cleartax_emulator.sent_emails()) == 1
    with pytest.raises(ClearTaxValidationError):
        hook.email_invoice(
            invoice_number=key.invoice_number,
            invoice_type="INV",
            issue_date=key.issue_date,
            to=["not-an-address"],
        )


@pytest.mark.cleartax_emulator(pcsid_delay=0.3)
def test_onboarding_legacy_flow(hook: ClearTaxHook, cleartax_connection: str) -> None:
    device = hook.generate_csr(device_details=DEVICE_DETAILS, organization_details=ORGANIZATION)
    assert device.device_id
    csid = hook.generate_csid(device_id=device.device_id, otp="123456")
    assert len(csid.pcsid_generation_activity_id or "") == 24
    status = hook.get_pcsid_status(csid.pcsid_generation_activity_id)
    assert status.status == "IN_PROGRESS"
    with pytest.raises(ClearTaxValidationError) as caught:
        hook.generate_csid(device_id=device.device_id, otp="123456")
    assert caught.value.errors[0]["ErrorCode"] == "6002"


@pytest.mark.cleartax_emulator(pcsid_delay=0.0, pcsid_fail=True)
def test_failed_pcsid_is_an_answer(hook: ClearTaxHook) -> None:
    device = hook.generate_csr(device_details=DEVICE_DETAILS, organization_details=ORGANIZATION)
    csid = hook.generate_csid(device_id=device.device_id, otp="123456")
    status = hook.get_pcsid_status(csid.pcsid_generation_activity_id)
    assert status.status == "FAILED" and status.is_terminal


def test_register_device_twice_returns_the_same_device(hook: ClearTaxHook) -> None:
    first = hook.register_device(
        device_details=DEVICE_DETAILS, organization_details=ORGANIZATION, otp="123456"
    )
    second = hook.register_device(
        device_details=DEVICE_DETAILS, organization_details=ORGANIZATION, otp="123456"
    )
    assert first.device_id == second.device_id and second.error_list


def test_async_methods_run_the_same_endpoints(hook: ClearTaxHook) -> None:
    invoice = sample_invoice("simplified_invoice", number="SIM-AIO-1")

    async def scenario():
        generated = await hook.agenerate_invoice(invoice)
        fetched = await hook.aget_invoice(unique_id=_key(invoice).unique_id)
        items = await hook.aget_bulk_status([_key(invoice).unique_id])
        await hook.aclose()
        return generated, fetched, items

    generated, fetched, items = asyncio.run(scenario())
    assert generated.uuid == fetched.uuid and items[0].einvoice_status == "REPORTED"


def test_wrong_token_and_foreign_vat(cleartax_emulator, make_connection) -> None:
    bad = make_connection(
        cleartax_emulator.base_url, conn_id="ct_bad", password="wrong-token", vat=DEFAULT_VAT
    )
    with pytest.raises(ClearTaxAuthError, match="'ct_bad'"):
        ClearTaxHook(cleartax_conn_id=bad).get_invoice(unique_id="x")
    foreign = make_connection(
        cleartax_emulator.base_url, conn_id="ct_vat", password=DEFAULT_TOKEN, vat="399999999999993"
    )
    with pytest.raises(ClearTaxPermissionError):
        ClearTaxHook(cleartax_conn_id=foreign).get_invoice(unique_id="x")


def test_test_connection(cleartax_emulator, make_connection) -> None:
    good = make_connection(
        cleartax_emulator.base_url, conn_id="ct_good", password=DEFAULT_TOKEN, vat=DEFAULT_VAT
    )
    ok, message = ClearTaxHook(cleartax_conn_id=good).test_connection()
    assert ok, message
    bad = make_connection(cleartax_emulator.base_url, conn_id="ct_bad2", password="nope", vat=DEFAULT_VAT)
    ok, message = ClearTaxHook(cleartax_conn_id=bad).test_connection()
    assert not ok and "401" in message and "nope" not in message
    unreachable = make_connection("http://127.0.0.1:9", conn_id="ct_down", password=DEFAULT_TOKEN)
    ok, message = ClearTaxHook(cleartax_conn_id=unreachable).test_connection()
    assert not ok and "could not be reached" in message


@pytest.mark.cleartax_emulator(faults={"generate": {"timeout_after_processing": 1.0, "hold_seconds": 2.0}})
def test_timeout_after_processing_is_not_submitted_twice(cleartax_emulator, make_connection) -> None:
    conn_id = make_connection(
        cleartax_emulator.base_url,
        conn_id="ct_slow",
        password=DEFAULT_TOKEN,
        generate_timeout=0.5,
        device_id=DEFAULT_DEVICE_ID,
    )
    invoice = sample_invoice("standard_invoice", number="INV-SLOW-1")
    result = ClearTaxHook(cleartax_conn_id=conn_id, backoff_base=0.01).generate_invoice(invoice)
    assert result.invoice_status == "CLEARED"
    assert cleartax_emulator.submission_counts() == {_key(invoice).unique_id: 1}


@pytest.mark.cleartax_emulator(faults={"generate": {"error_5xx": 0.3, "connection_reset": 0.1}}, seed=11)
def test_flaky_generate_submits_each_invoice_once(cleartax_emulator, make_connection) -> None:
    conn_id = make_connection(
        cleartax_emulator.base_url, conn_id="ct_flaky", password=DEFAULT_TOKEN, device_id=DEFAULT_DEVICE_ID
    )
    hook = ClearTaxHook(cleartax_conn_id=conn_id, max_retries=10, backoff_base=0.01, backoff_cap=0.05)
    keys = []
    for i in range(20):
        invoice = sample_invoice("simplified_invoice", number=f"SIM-FLAKY-{i}")
        assert hook.generate_invoice(invoice).invoice_status == "REPORTED"
        keys.append(_key(invoice).unique_id)
    assert cleartax_emulator.submission_counts() == dict.fromkeys(keys, 1)
