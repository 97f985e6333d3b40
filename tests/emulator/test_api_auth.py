"""Authentication and authorisation of every emulator endpoint, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_cleartax.emulator.config import API_PREFIX, ENDPOINTS
from tests.emulator.conftest import TOKEN, VAT, Env, make_invoice

AUTH_FAILED = {"ErrorCode": "100401", "ErrorMessage": "Authentication Failed", "ErrorSource": "CLEARTAX"}

#: One request per endpoint: (name, method, path).
REQUESTS = [
    ("generate", "POST", "/v2/einvoices/generate"),
    ("generate_async", "POST", "/v2/einvoices/generate/async"),
    ("generate_with_file", "POST", "/v2/einvoices/generate-with-file"),
    ("generate_with_file_offline", "POST", "/v2/einvoices/generate-with-file-offline"),
    ("get_invoice", "GET", "/v2/einvoices/data?uniqueId=x"),
    ("get_bulk", "POST", "/v3/einvoices/get-bulk"),
    ("print_pdf", "GET", "/v2/einvoices/print?invoiceNumber=A&invoiceType=INV&issueDate=2026-03-15"),
    ("embedded_pdf", "POST", "/v2/einvoices/embeddedpdf"),
    ("email", "POST", "/v1/emails"),
    ("register_device", "POST", "/onboarding/register-device"),
    ("generate_csr", "POST", "/onboarding/generate-csr"),
    ("generate_csid", "POST", "/onboarding/generate-csid"),
    ("pcsid_status", "GET", "/onboarding/0123456789abcdef01234567/pcsid-status"),
]


def _call(env: Env, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=env.root_url + API_PREFIX, timeout=10) as client:
        return client.request(method, path, headers=headers, content=b"{}")


def test_routes_cover_every_endpoint_by_name(env: Env) -> None:
    assert [route.name for route in env.emulator.routes()] == list(ENDPOINTS)
    assert all(route.path.startswith(API_PREFIX) for route in env.emulator.routes())


@pytest.mark.parametrize(("name", "method", "path"), REQUESTS, ids=[r[0] for r in REQUESTS])
@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["missing", "empty", "unknown"])
def test_every_endpoint_rejects_a_missing_or_unknown_token(
    env: Env, name: str, method: str, path: str, token: str | None
) -> None:
    headers = {"vat": VAT}
    if token is not None:
        headers["X-Cleartax-Auth-Token"] = token
    response = _call(env, method, path, headers)
    assert response.status_code == 401
    assert response.json() == AUTH_FAILED


@pytest.mark.parametrize(
    "header", ["X-Cleartax-Auth-Token", "x-cleartax-auth-token", "X-CLEARTAX-AUTH-TOKEN"]
)
def test_token_header_name_is_case_insensitive(env: Env, header: str) -> None:
    response = _call(env, "GET", "/v2/einvoices/data?uniqueId=nothing", {header: TOKEN, "VAT": VAT})
    assert response.status_code == 404
    assert response.json()["ErrorList"][0]["ErrorCode"] == "6003"


@pytest.mark.parametrize("vat", [None, "", "12345", "100000000000003", "300000000000001", "30000000000003"])
def test_vat_header_is_mandatory_and_well_formed(env: Env, vat: str | None) -> None:
    headers = {"X-Cleartax-Auth-Token": TOKEN}
    if vat is not None:
        headers["vat"] = vat
    response = _call(env, "POST", "/v2/einvoices/generate", headers)
    assert response.status_code == 400
    [entry] = response.json()["ErrorList"]
    assert entry["ErrorCode"] == "6002"
    assert entry["Path"] == "vat"


def test_unknown_vat_is_forbidden(env: Env) -> None:
    response = _call(
        env, "POST", "/v2/einvoices/generate", {"X-Cleartax-Auth-Token": TOKEN, "vat": "311111111111113"}
    )
    assert response.status_code == 403


def test_token_limited_to_other_vats_is_forbidden(make_env) -> None:
    other_vat = "311111111111113"
    e = make_env(
        tokens={"all": (), "only-other": (other_vat,)},
        vats={VAT: "Seller", other_vat: "Other"},
    )
    allowed = _call(
        e, "GET", "/v2/einvoices/data?uniqueId=x", {"x-cleartax-auth-token": "all", "vat": other_vat}
    )
    forbidden = _call(
        e, "GET", "/v2/einvoices/data?uniqueId=x", {"x-cleartax-auth-token": "only-other", "vat": VAT}
    )
    assert allowed.status_code == 404
    assert forbidden.status_code == 403


def test_lookup_of_a_vat_without_rights_is_forbidden(make_env) -> None:
    other_vat = "311111111111113"
    e = make_env(tokens={"mine": (VAT,)}, vats={VAT: "Seller", other_vat: "Other"})
    headers = {"x-cleartax-auth-token": "mine", "vat": VAT}
    by_id = _call(e, "GET", f"/v2/einvoices/data?uniqueId={other_vat}_A_388_2026", headers)
    by_fields = _call(
        e,
        "GET",
        f"/v2/einvoices/data?invoiceNumber=A&invoiceType=INV&issueDate=2026-03-15&vat={other_vat}",
        headers,
    )
    assert (by_id.status_code, by_fields.status_code) == (403, 403)


def test_onboarding_needs_an_admin_token(make_env) -> None:
    e = make_env(tokens={"admin": (), "clerk": ()}, admin_tokens=("admin",))
    body = {
        "DeviceDetails": {"EgsSerialNumber": "1-Emu|2-Model|3-Serial1"},
        "OrganizationDetails": {"OrganizationName": "Seller"},
        "Otp": "123456",
    }
    with httpx.Client(base_url=e.root_url + API_PREFIX, timeout=10) as client:
        clerk = client.post(
            "/onboarding/register-device", json=body, headers={"X-Cleartax-Auth-Token": "clerk", "vat": VAT}
        )
        admin = client.post(
            "/onboarding/register-device", json=body, headers={"X-Cleartax-Auth-Token": "admin", "vat": VAT}
        )
        # Non-onboarding endpoints stay open to the clerk.
        invoice = client.post(
            "/v2/einvoices/generate",
            json={"DeviceId": "7b5a5a8e-8f5c-4c0e-9d7e-000000000001", "EInvoice": make_invoice()},
            headers={"X-Cleartax-Auth-Token": "clerk", "vat": VAT},
        )
    assert clerk.status_code == 403
    assert admin.status_code == 200
    assert invoice.json()["InvoiceStatus"] == "CLEARED"


def test_arabic_messages_follow_accept_language(env: Env) -> None:
    english = env.client.post("/v2/einvoices/generate", json={"DeviceId": "nope", "EInvoice": make_invoice()})
    arabic = env.client.post(
        "/v2/einvoices/generate",
        json={"DeviceId": "nope", "EInvoice": make_invoice("INV-0002")},
        headers={"Accept-Language": "ar"},
    )
    english_message = english.json()["ErrorList"][0]["ErrorMessage"]
    arabic_message = arabic.json()["ErrorList"][0]["ErrorMessage"]
    assert "not registered" in english_message
    assert "غير مسجل" in arabic_message
