"""Generate endpoints (1-4): clearance, reporting, the ICV/PIH chain, duplicates and rejections."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import pytest

from airflow_provider_cleartax.emulator import documents
from airflow_provider_cleartax.emulator.api import FIRST_PIH
from tests.emulator.conftest import (
    BUYER_VAT,
    DEVICE_ID,
    VAT,
    Env,
    make_invoice,
    mutate,
    simplified,
    unique_id,
)

RESPONSE_FIELDS = {
    "DeviceId",
    "Status",
    "QrCodeStatus",
    "InvoiceStatus",
    "UUID",
    "ICV",
    "PIH",
    "InvoiceHash",
    "QRCode",
    "RawQRCode",
    "InvoiceXml",
    "IssueDate",
    "IssueTime",
    "GeneratedDate",
    "GeneratedTime",
    "SellerVatNumber",
    "BuyerVatNumber",
    "ErrorList",
    "WarningList",
    "Message",
}


def _upload(env: Env, path: str, xml: bytes, *, device_id: str | None = DEVICE_ID):
    headers = {"device-id": device_id} if device_id else {}
    return env.client.post(path, files={"file": ("invoice.xml", xml, "application/xml")}, headers=headers)


def _signed_xml(einvoice: dict, *, icv: int, pih: str) -> bytes:
    return documents.build_invoice_xml(einvoice, uuid=str(uuid.uuid4()), icv=icv, pih=pih)


def test_first_invoice_of_a_device_is_cleared_with_the_full_response(env: Env) -> None:
    response = env.generate(make_invoice())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == RESPONSE_FIELDS
    assert body["Status"] == body["QrCodeStatus"] == "GENERATED"
    assert body["InvoiceStatus"] == "CLEARED"
    assert body["ErrorList"] == [] and body["WarningList"] == []
    assert body["ICV"] == 1
    assert body["PIH"] == FIRST_PIH
    # ZATCA's first PIH is the base64 of the hex SHA-256 of "0".
    assert base64.b64decode(FIRST_PIH).decode() == hashlib.sha256(b"0").hexdigest()
    xml = base64.b64decode(body["InvoiceXml"])
    assert body["InvoiceHash"] == documents.invoice_hash(xml)
    assert body["RawQRCode"] == body["QRCode"]
    qr = documents.decode_qr_tlv(body["QRCode"])
    assert qr[2] == VAT and qr[4] == "115.00" and qr[5] == "15.00" and qr[6] == body["InvoiceHash"]
    assert (body["SellerVatNumber"], body["BuyerVatNumber"]) == (VAT, BUYER_VAT)
    assert (body["IssueDate"], body["IssueTime"]) == ("2026-03-15", "09:30:00")
    assert (body["GeneratedDate"], body["GeneratedTime"]) == ("2026-03-15", "10:00:00")
    assert body["DeviceId"] == DEVICE_ID
    uuid.UUID(body["UUID"])


def test_simplified_invoice_is_reported(env: Env) -> None:
    body = env.generate(simplified()).json()
    assert body["InvoiceStatus"] == "REPORTED"
    assert body["BuyerVatNumber"] is None


def test_client_uuid_is_kept(env: Env) -> None:
    given = str(uuid.uuid4())
    body = env.generate(mutate(make_invoice(), lambda e: e.update(UUID=given))).json()
    assert body["UUID"] == given


def test_icv_and_pih_chain_per_device(env: Env) -> None:
    first = env.generate(make_invoice("INV-1")).json()
    second = env.generate(simplified("SIM-1")).json()
    third = env.generate(make_invoice("INV-2")).json()
    assert [first["ICV"], second["ICV"], third["ICV"]] == [1, 2, 3]
    assert second["PIH"] == first["InvoiceHash"]
    assert third["PIH"] == second["InvoiceHash"]


def test_duplicate_returns_stored_result_with_warning_and_no_new_icv(env: Env) -> None:
    first = env.generate(make_invoice()).json()
    again = env.generate(mutate(make_invoice(), lambda e: e.update(IssueTime="11:11:11"))).json()
    assert again["WarningList"][-1]["ErrorCode"] == "DUPLICATE_SUBMISSION"
    assert {k: v for k, v in again.items() if k != "WarningList"} == {
        k: v for k, v in first.items() if k != "WarningList"
    }
    next_one = env.generate(make_invoice("INV-0002")).json()
    assert next_one["ICV"] == 2
    assert env.emulator.submission_counts()[unique_id("INV-0001")] == 2


def test_rejection_is_stored_but_a_fixed_resubmission_is_processed(env: Env) -> None:
    broken = mutate(
        make_invoice(), lambda e: e["AccountingSupplierParty"]["Party"]["PostalAddress"].pop("StreetName")
    )
    rejected = env.generate(broken).json()
    assert rejected["InvoiceStatus"] == "NOT_CLEARED"
    assert rejected["Status"] == "NOT_GENERATED"
    assert rejected["ICV"] is None and rejected["InvoiceXml"] is None
    stored = env.client.get("/v2/einvoices/data", params={"uniqueId": unique_id("INV-0001")}).json()
    assert stored["InvoiceStatus"] == "NOT_CLEARED"
    assert stored["ErrorList"] == rejected["ErrorList"]

    fixed = env.generate(make_invoice()).json()
    assert fixed["InvoiceStatus"] == "CLEARED"
    assert env.client.get("/v2/einvoices/data", params={"uniqueId": unique_id("INV-0001")}).json() == fixed
    assert fixed["ICV"] == 1  # the rejection consumed no counter
    assert fixed["WarningList"] == []
    assert env.emulator.invoice_statuses() == {unique_id("INV-0001"): "CLEARED"}
    assert env.emulator.submission_counts() == {unique_id("INV-0001"): 2}


def test_simplified_rejection_is_not_reported(env: Env) -> None:
    body = env.generate(mutate(simplified(), lambda e: e.update(TaxCurrencyCode="USD"))).json()
    assert body["InvoiceStatus"] == "NOT_REPORTED"
    assert body["Status"] == "NOT_GENERATED"


def test_number_used_on_another_date_of_the_same_year_is_rejected_and_keeps_the_original(env: Env) -> None:
    env.generate(make_invoice(issue_date="2026-03-14"))
    clash = env.generate(make_invoice(issue_date="2026-03-15")).json()
    assert clash["InvoiceStatus"] == "NOT_CLEARED"
    assert clash["ErrorList"][0]["Path"] == "EInvoice.ID"
    kept = env.client.get("/v2/einvoices/data", params={"uniqueId": unique_id("INV-0001")}).json()
    assert kept["InvoiceStatus"] == "CLEARED" and kept["IssueDate"] == "2026-03-14"


@pytest.mark.parametrize(
    ("device_id", "vat_of_device"),
    [("unknown-device", None), ("9b5a5a8e-0000-4c0e-9d7e-000000000002", "311111111111113")],
    ids=["unknown", "other-vat"],
)
def test_device_must_be_registered_for_the_vat(make_env, device_id: str, vat_of_device: str | None) -> None:
    devices = {DEVICE_ID: VAT}
    vats = {VAT: "Seller"}
    if vat_of_device:
        devices[device_id] = vat_of_device
        vats[vat_of_device] = "Other"
    e = make_env(devices=devices, vats=vats)
    body = e.generate(make_invoice(), device_id=device_id).json()
    assert body["InvoiceStatus"] == "NOT_CLEARED"
    [entry] = body["ErrorList"]
    assert (entry["ErrorCode"], entry["Path"]) == ("6002", "DeviceId")


def test_missing_einvoice_is_a_business_rejection(env: Env) -> None:
    response = env.client.post("/v2/einvoices/generate", json={"DeviceId": DEVICE_ID})
    assert response.status_code == 200
    body = response.json()
    assert body["Status"] == "NOT_GENERATED"
    assert [e["Path"] for e in body["ErrorList"]] == ["EInvoice"]
    assert env.emulator.submission_counts() == {}


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'"text"',
        b'{"DeviceId": 5, "EInvoice": {}}',
        b'{"DeviceId": "x", "EInvoice": []}',
        b'{"DeviceId": "x", "EInvoice": {}, "CustomFields": "a"}',
    ],
    ids=["malformed", "array", "string", "device-number", "einvoice-array", "customfields-string"],
)
@pytest.mark.parametrize("path", ["/v2/einvoices/generate", "/v2/einvoices/generate/async"])
def test_malformed_bodies_are_400(env: Env, content: bytes, path: str) -> None:
    response = env.client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["ErrorList"][0]["ErrorCode"] == "6002"


def test_garbage_inside_einvoice_is_rejected_not_crashed(env: Env) -> None:
    garbage = {
        "ID": 7,
        "InvoiceTypeCode": "388",
        "IssueDate": 20260315,
        "AccountingSupplierParty": [],
        "TaxTotal": "x",
        "LegalMonetaryTotal": {"LineExtensionAmount": {"value": "abc"}},
        "InvoiceLine": [None, 3],
        "Delivery": "tomorrow",
        "BillingReference": 1,
    }
    response = env.generate(garbage)
    assert response.status_code == 200
    assert response.json()["Status"] == "NOT_GENERATED"
    assert len(response.json()["ErrorList"]) >= 5


def test_async_answers_pending_then_reported_after_the_delay(env: Env) -> None:
    body = env.generate(simplified(), path="/v2/einvoices/generate/async").json()
    assert body["InvoiceStatus"] == "PENDING"
    assert body["Status"] == "GENERATED" and body["ICV"] == 1
    uid = unique_id("SIM-0001")
    env.clock.advance(1.9)
    assert env.client.get("/v2/einvoices/data", params={"uniqueId": uid}).json()["InvoiceStatus"] == "PENDING"
    assert env.emulator.invoice_statuses()[uid] == "PENDING"
    env.clock.advance(0.1)
    assert (
        env.client.get("/v2/einvoices/data", params={"uniqueId": uid}).json()["InvoiceStatus"] == "REPORTED"
    )
    assert env.emulator.invoice_statuses()[uid] == "REPORTED"


def test_async_accepts_simplified_notes(env: Env) -> None:
    note = simplified("SCN-1", code="381")
    assert env.generate(note, path="/v2/einvoices/generate/async").json()["InvoiceStatus"] == "PENDING"


def test_async_rejects_standard_invoices(env: Env) -> None:
    body = env.generate(make_invoice(), path="/v2/einvoices/generate/async").json()
    assert body["Status"] == "NOT_GENERATED"
    assert body["InvoiceStatus"] == "NOT_CLEARED"
    assert body["ErrorList"][0]["Path"] == "EInvoice.InvoiceTypeCode.name"


def test_async_duplicate_reports_the_current_status(env: Env) -> None:
    env.generate(simplified(), path="/v2/einvoices/generate/async")
    env.clock.advance(5)
    again = env.generate(simplified(), path="/v2/einvoices/generate/async").json()
    assert again["InvoiceStatus"] == "REPORTED"
    assert again["WarningList"][-1]["ErrorCode"] == "DUPLICATE_SUBMISSION"
    assert env.emulator.submission_counts() == {unique_id("SIM-0001"): 2}


def test_async_with_the_real_clock(make_env) -> None:
    e = make_env(clock=time.time, async_report_delay=0.2)
    body = e.generate(simplified(), path="/v2/einvoices/generate/async").json()
    assert body["InvoiceStatus"] == "PENDING"
    status = "PENDING"
    deadline = time.monotonic() + 10
    while status == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.05)
        status = e.client.get("/v2/einvoices/data", params={"uniqueId": unique_id("SIM-0001")}).json()[
            "InvoiceStatus"
        ]
    assert status == "REPORTED"


def test_generate_with_file_follows_the_json_flow(env: Env) -> None:
    xml = _signed_xml(make_invoice(), icv=77, pih="ignored")
    body = _upload(env, "/v2/einvoices/generate-with-file", xml).json()
    assert body["InvoiceStatus"] == "CLEARED"
    assert body["ICV"] == 1 and body["PIH"] == FIRST_PIH  # ClearTax owns the chain here
    assert env.emulator.submission_counts() == {unique_id("INV-0001"): 1}
    duplicate = _upload(env, "/v2/einvoices/generate-with-file", xml).json()
    assert duplicate["WarningList"][-1]["ErrorCode"] == "DUPLICATE_SUBMISSION"


def test_generate_with_file_applies_the_rules(env: Env) -> None:
    xml = _signed_xml(mutate(make_invoice(), lambda e: e.update(TaxCurrencyCode="USD")), icv=1, pih=FIRST_PIH)
    body = _upload(env, "/v2/einvoices/generate-with-file", xml).json()
    assert body["InvoiceStatus"] == "NOT_CLEARED"
    assert "BR-KSA-68" in body["ErrorList"][0]["ErrorMessage"]


@pytest.mark.parametrize(
    "path", ["/v2/einvoices/generate-with-file", "/v2/einvoices/generate-with-file-offline"]
)
def test_upload_errors_are_400(env: Env, path: str) -> None:
    xml = _signed_xml(make_invoice(), icv=1, pih=FIRST_PIH)
    no_device = _upload(env, path, xml, device_id=None)
    no_file = env.client.post(
        path, data={"other": "x"}, files={"x": ("a", b"b")}, headers={"device-id": DEVICE_ID}
    )
    bad_xml = _upload(env, path, b"<Invoice><unclosed>")
    assert [r.status_code for r in (no_device, no_file, bad_xml)] == [400, 400, 400]
    assert no_device.json()["ErrorList"][0]["Path"] == "device-id"
    assert no_file.json()["ErrorList"][0]["Path"] == "file"
    assert bad_xml.json()["ErrorList"][0]["ErrorCode"] == "6002"


def test_offline_pass_clears_with_client_chain(env: Env) -> None:
    xml = _signed_xml(make_invoice(), icv=1, pih=FIRST_PIH)
    response = _upload(env, "/v2/einvoices/generate-with-file-offline", xml)
    assert response.status_code == 200
    body = response.json()
    assert body["validationResults"]["status"] == "PASS"
    assert body["validationResults"]["errorMessages"] == []
    assert body["validationResults"]["infoMessages"][0]["status"] == "PASS"
    assert body["clearanceStatus"] == "CLEARED"
    assert base64.b64decode(body["clearedInvoice"]) == xml
    stored = env.client.get("/v2/einvoices/data", params={"uniqueId": unique_id("INV-0001")}).json()
    assert stored["ICV"] == 1 and stored["PIH"] == FIRST_PIH
    assert stored["InvoiceHash"] == documents.invoice_hash(xml)

    second = _signed_xml(simplified(), icv=2, pih=stored["InvoiceHash"])
    body = _upload(env, "/v2/einvoices/generate-with-file-offline", second).json()
    assert body["validationResults"]["status"] == "PASS"
    assert body["clearanceStatus"] == "REPORTED"
    assert body["clearedInvoice"] is None


def test_offline_broken_chain_is_a_warning(env: Env) -> None:
    xml = _signed_xml(make_invoice(), icv=5, pih="bm90LXRoZS1wcmV2aW91cy1oYXNo")
    body = _upload(env, "/v2/einvoices/generate-with-file-offline", xml).json()
    results = body["validationResults"]
    assert results["status"] == "WARNING"
    assert [m["code"] for m in results["warningMessages"]] == ["KSA-13"]
    assert body["clearanceStatus"] == "ACCEPTED_WITH_WARNING"
    assert body["clearedInvoice"] is not None


def test_offline_rule_violation_is_an_error_with_200(env: Env) -> None:
    broken = mutate(make_invoice(), lambda e: e.update(TaxCurrencyCode="USD"))
    response = _upload(
        env, "/v2/einvoices/generate-with-file-offline", _signed_xml(broken, icv=1, pih=FIRST_PIH)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["validationResults"]["status"] == "ERROR"
    [error] = body["validationResults"]["errorMessages"]
    assert (error["type"], error["code"], error["status"]) == ("ERROR", "BR-KSA-68", "ERROR")
    assert body["clearanceStatus"] == "NOT_CLEARED"
    assert body["clearedInvoice"] is None


def test_offline_duplicate_is_not_processed_again(env: Env) -> None:
    xml = _signed_xml(make_invoice(), icv=1, pih=FIRST_PIH)
    _upload(env, "/v2/einvoices/generate-with-file-offline", xml)
    again = _upload(env, "/v2/einvoices/generate-with-file-offline", xml).json()
    assert again["validationResults"]["warningMessages"][-1]["code"] == "DUPLICATE_SUBMISSION"
    assert again["clearanceStatus"] == "CLEARED"
    assert env.emulator.submission_counts() == {unique_id("INV-0001"): 2}


def test_offline_xml_without_counter_is_an_error(env: Env) -> None:
    xml = _signed_xml(make_invoice(), icv=1, pih=FIRST_PIH)
    without = xml.replace(b"<cbc:ID>ICV</cbc:ID>", b"<cbc:ID>XYZ</cbc:ID>")
    body = _upload(env, "/v2/einvoices/generate-with-file-offline", without).json()
    assert body["validationResults"]["status"] == "ERROR"
    assert "KSA-16" in [m["code"] for m in body["validationResults"]["errorMessages"]]


def test_submission_counts_cover_every_generate_endpoint(env: Env) -> None:
    env.generate(make_invoice("A-1"))
    env.generate(simplified("A-2"), path="/v2/einvoices/generate/async")
    _upload(env, "/v2/einvoices/generate-with-file", _signed_xml(make_invoice("A-3"), icv=1, pih=FIRST_PIH))
    _upload(env, "/v2/einvoices/generate-with-file-offline", _signed_xml(make_invoice("A-4"), icv=9, pih="x"))
    env.generate(make_invoice("A-1"))
    assert env.emulator.submission_counts() == {
        unique_id("A-1"): 2,
        unique_id("A-2"): 1,
        unique_id("A-3"): 1,
        unique_id("A-4"): 1,
    }
