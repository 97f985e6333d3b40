"""Onboarding (10-13): device registration, CSR/CSID and PCSID activities."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.emulator.conftest import Env, make_invoice

REGISTER = "/onboarding/register-device"
CSR = "/onboarding/generate-csr"
CSID = "/onboarding/generate-csid"


def _device_body(serial: str = "1-Emu|2-Model|3-Serial1", *, otp: str | None = "123456") -> dict[str, Any]:
    body: dict[str, Any] = {
        "DeviceDetails": {"EgsSerialNumber": serial},
        "OrganizationDetails": {"OrganizationName": "Emulator Trading Co.", "CountryCode": "SA"},
    }
    if otp is not None:
        body["Otp"] = otp
    return body


def _status(env: Env, activity_id: str):
    return env.client.get(f"/onboarding/{activity_id}/pcsid-status")


def test_registered_device_generates_once_its_pcsid_is_issued(env: Env) -> None:
    response = env.client.post(REGISTER, json=_device_body())
    assert response.status_code == 200
    body = response.json()
    assert body["Status"] == "GENERATED" and body["ErrorList"] == []
    activity_id = body["PcsidGenerationActivityId"]
    assert re.fullmatch(r"[0-9a-f]{24}", activity_id)
    assert _status(env, activity_id).json()["Status"] == "IN_PROGRESS"
    early = env.generate(make_invoice(), device_id=body["DeviceId"]).json()
    assert early["InvoiceStatus"] == "NOT_CLEARED"
    env.clock.advance(2.0)
    assert _status(env, activity_id).json()["Status"] == "SUCCEEDED"
    invoice = env.generate(make_invoice(), device_id=body["DeviceId"]).json()
    assert invoice["InvoiceStatus"] == "CLEARED"
    assert invoice["ICV"] == 1 and invoice["DeviceId"] == body["DeviceId"]


def test_re_registration_returns_the_existing_device_with_a_warning_entry(env: Env) -> None:
    first = env.client.post(REGISTER, json=_device_body()).json()
    again = env.client.post(REGISTER, json=_device_body(otp="654321"))
    assert again.status_code == 200
    assert again.json()["DeviceId"] == first["DeviceId"]
    assert again.json()["ErrorList"][0]["Path"] == "DeviceDetails.EgsSerialNumber"
    other = env.client.post(REGISTER, json=_device_body("1-Emu|2-Model|3-Serial2")).json()
    assert other["DeviceId"] != first["DeviceId"]


@pytest.mark.parametrize("otp", [None, "12345", "1234567", "abcdef", ""])
def test_register_needs_a_six_digit_otp(env: Env, otp: str | None) -> None:
    response = env.client.post(REGISTER, json=_device_body(otp=otp))
    assert response.status_code == 400
    body = response.json()
    assert body["Status"] == "FAILED" and body["DeviceId"] is None
    assert body["ErrorList"][0]["Path"] == "Otp"


def test_configured_otps_are_enforced(make_env) -> None:
    e = make_env(otps=("111111",))
    assert e.client.post(REGISTER, json=_device_body(otp="222222")).status_code == 400
    assert e.client.post(REGISTER, json=_device_body(otp="111111")).status_code == 200


@pytest.mark.parametrize(
    "serial", ["1-a|2-b", "1-a|2-b|3-c|4-d", "1-a-b|2-c|3-d", "x-a|2-b|3-c", "1-|2-b|3-c", "1-a | 2-b | 3-c"]
)
@pytest.mark.parametrize("path", [REGISTER, CSR])
def test_egs_serial_number_must_match_the_pattern(env: Env, serial: str, path: str) -> None:
    response = env.client.post(path, json=_device_body(serial))
    assert response.status_code == 400
    assert response.json()["ErrorList"][0]["Path"] == "DeviceDetails.EgsSerialNumber"


def test_onboarding_body_shapes(env: Env) -> None:
    not_json = env.client.post(REGISTER, content=b"nope", headers={"content-type": "application/json"})
    no_org = env.client.post(REGISTER, json={**_device_body(), "OrganizationDetails": None})
    wrong_type = env.client.post(REGISTER, json={**_device_body(), "DeviceDetails": "x"})
    assert [r.status_code for r in (not_json, no_org, wrong_type)] == [400, 400, 400]


def test_legacy_flow_csr_then_csid_then_status(env: Env) -> None:
    csr = env.client.post(CSR, json=_device_body(otp=None)).json()
    device_id = csr["DeviceId"]
    assert csr["Status"] == "GENERATED"
    # Without a production CSID the device cannot generate yet.
    before = env.generate(make_invoice(), device_id=device_id).json()
    assert before["Status"] == "NOT_GENERATED"
    assert "CSID" in before["ErrorList"][0]["ErrorMessage"]

    csid = env.client.post(CSID, json={"DeviceId": device_id, "Otp": "123456"})
    assert csid.status_code == 200
    activity_id = csid.json()["PcsidGenerationActivityId"]
    assert re.fullmatch(r"[0-9a-f]{24}", activity_id)
    assert csid.json()["Status"] == "GENERATED"

    in_progress = _status(env, activity_id)
    assert in_progress.status_code == 200
    assert in_progress.json()["Status"] == "IN_PROGRESS"
    assert in_progress.json()["ActivityType"] == "ZATCA_COMPLIANCE_INVOICE"
    assert in_progress.json()["CompletedAt"] is None
    assert env.generate(make_invoice("INV-0002"), device_id=device_id).json()["Status"] == "NOT_GENERATED"

    env.clock.advance(2.0)
    done = _status(env, activity_id)
    assert done.status_code == 200
    body = done.json()
    assert body["Status"] == "SUCCEEDED" and body["ErrorList"] == []
    assert body["CreatedAt"] == "2026-03-15T07:00:00Z"
    assert body["CompletedAt"] == body["UpdatedAt"] == "2026-03-15T07:00:02Z"
    assert env.generate(make_invoice("INV-0003"), device_id=device_id).json()["InvoiceStatus"] == "CLEARED"


def test_second_csid_request_is_400_6002(env: Env) -> None:
    device_id = env.client.post(CSR, json=_device_body(otp=None)).json()["DeviceId"]
    env.client.post(CSID, json={"DeviceId": device_id, "Otp": "123456"})
    again = env.client.post(CSID, json={"DeviceId": device_id, "Otp": "123456"})
    assert again.status_code == 400
    [entry] = again.json()["ErrorList"]
    assert entry["ErrorCode"] == "6002"
    assert entry["ErrorMessage"] == "Production CSID already generated for device"
    # A device registered in one step already holds its production CSID.
    registered = env.client.post(REGISTER, json=_device_body("1-A|2-B|3-C")).json()["DeviceId"]
    assert env.client.post(CSID, json={"DeviceId": registered, "Otp": "123456"}).status_code == 400


def test_csid_for_unknown_device_or_bad_otp(env: Env) -> None:
    unknown = env.client.post(CSID, json={"DeviceId": "no-such-device", "Otp": "123456"})
    bad_otp = env.client.post(CSID, json={"DeviceId": "no-such-device", "Otp": "12"})
    assert unknown.status_code == 404
    assert unknown.json()["ErrorList"][0]["ErrorCode"] == "6003"
    assert bad_otp.status_code == 400


def test_failed_pcsid_is_http_500(make_env) -> None:
    e = make_env(pcsid_fail=True, pcsid_delay=0.5)
    device_id = e.client.post(CSR, json=_device_body(otp=None)).json()["DeviceId"]
    activity_id = e.client.post(CSID, json={"DeviceId": device_id, "Otp": "123456"}).json()[
        "PcsidGenerationActivityId"
    ]
    assert _status(e, activity_id).json()["Status"] == "IN_PROGRESS"
    e.clock.advance(0.5)
    failed = _status(e, activity_id)
    assert failed.status_code == 500
    assert failed.json()["Status"] == "FAILED"
    assert failed.json()["ErrorList"][0]["ErrorSource"] == "ZATCA"
    assert e.generate(make_invoice(), device_id=device_id).json()["Status"] == "NOT_GENERATED"


def test_unknown_activity_is_404(env: Env) -> None:
    response = _status(env, "0123456789abcdef01234567")
    assert response.status_code == 404
    assert response.json()["ErrorList"][0]["ErrorCode"] == "6003"
