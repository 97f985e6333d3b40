"""The request pipeline's edge cases, over real HTTP to a scripted loopback server."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from airflow_provider_cleartax.client import api
from airflow_provider_cleartax.client.api import Session
from airflow_provider_cleartax.client.pipeline import Reply, Send, parse_retry_after
from airflow_provider_cleartax.client.settings import ClientSettings, RetryPolicy
from airflow_provider_cleartax.exceptions import (
    AirflowFailException,
    ClearTaxAuthError,
    ClearTaxConfigError,
    ClearTaxError,
    ClearTaxInvoiceRejectedError,
    ClearTaxNotFoundError,
    ClearTaxPermissionError,
    ClearTaxRateLimitError,
    ClearTaxResponseError,
    ClearTaxServerError,
    ClearTaxTimeoutError,
    ClearTaxValidationError,
)
from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
from tests.conftest import SECRET_TOKEN, SELLER_VAT
from tests.scripted_server import ScriptedServer, json_reply, raw_reply, slow_reply

GENERATE = "/v2/einvoices/generate"
DATA = "/v2/einvoices/data"

INVOICE = {
    "ID": {"en": "INV/2026/0001"},
    "InvoiceTypeCode": {"name": "0100000", "value": "388"},
    "IssueDate": "2026-12-01",
    "IssueTime": "10:00:00",
}
CLEARED = {"InvoiceStatus": "CLEARED", "Status": "GENERATED", "UUID": "u-1", "ICV": 7, "ErrorList": []}
AUTH_FAILED = {"ErrorCode": "100401", "ErrorMessage": "Authentication Failed", "ErrorSource": "CLEARTAX"}


@pytest.fixture
def hook(scripted: ScriptedServer, make_connection) -> ClearTaxHook:
    conn_id = make_connection(scripted.url, device_id="dev-1")
    # Tiny backoff so retries are real but quick.
    return ClearTaxHook(cleartax_conn_id=conn_id, max_retries=2, backoff_base=0.01, backoff_cap=0.02)


def _all_text(error: BaseException) -> str:
    return " ".join([str(error), repr(error), str(error.__dict__), str(pickle.loads(pickle.dumps(error)))])


# ---------------------------------------------------------------------------- request building


def test_headers_are_sent_and_request_id_kept_across_retries(
    hook: ClearTaxHook, scripted: ScriptedServer
) -> None:
    scripted.script(DATA, json_reply(503, {}), json_reply(200, CLEARED))
    result = hook.get_invoice(unique_id="300000000000003_INV-1_388_2026", branch="Riyadh")
    assert result.invoice_status == "CLEARED"
    first, second = scripted.hits(DATA)
    assert first.headers["x-cleartax-auth-token"] == SECRET_TOKEN
    assert first.headers["vat"] == SELLER_VAT
    assert first.headers["branch"] == "Riyadh"
    assert first.headers["user-agent"].startswith("airflow-provider-cleartax/")
    assert first.headers["x-request-id"] == second.headers["x-request-id"]
    assert "uniqueId=300000000000003_INV-1_388_2026" in first.query


def test_vat_override_per_call(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(DATA, json_reply(200, CLEARED))
    hook.get_invoice(invoice_number="A/1", invoice_type="388", issue_date="2026-12-01", vat="399999999999993")
    (request,) = scripted.hits(DATA)
    assert request.headers["vat"] == "399999999999993"
    assert "invoiceNumber=A%2F1" in request.query and "invoiceType=INV" in request.query


def test_each_logical_request_gets_its_own_id(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(DATA, default=json_reply(200, CLEARED))
    hook.get_invoice(unique_id="a")
    hook.get_invoice(unique_id="b")
    ids = {r.headers["x-request-id"] for r in scripted.hits(DATA)}
    assert len(ids) == 2


# ---------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("status", "body", "error_type", "permanent"),
    [
        (401, AUTH_FAILED, ClearTaxAuthError, True),
        (
            403,
            {"ErrorList": [{"ErrorCode": "5002", "ErrorMessage": "no rights"}]},
            ClearTaxPermissionError,
            True,
        ),
        (
            400,
            {"ErrorList": [{"ErrorCode": "6002", "ErrorMessage": "bad", "Path": "x.y"}]},
            ClearTaxValidationError,
            True,
        ),
        (
            404,
            {"ErrorList": [{"ErrorCode": "6003", "ErrorMessage": "not found"}]},
            ClearTaxNotFoundError,
            True,
        ),
        (429, {"ErrorList": []}, ClearTaxRateLimitError, False),
        (500, {"ErrorList": [{"ErrorCode": "4040", "ErrorMessage": "oops"}]}, ClearTaxServerError, False),
    ],
)
def test_status_maps_to_typed_error(
    hook: ClearTaxHook, scripted: ScriptedServer, status, body, error_type, permanent
) -> None:
    scripted.script(DATA, default=json_reply(status, body, headers={"Retry-After": "0"}))
    with pytest.raises(error_type) as caught:
        hook.get_invoice(unique_id="x")
    error = caught.value
    assert error.status == status
    assert error.endpoint == "get_invoice"
    assert error.request_id == scripted.hits(DATA)[0].headers["x-request-id"]
    assert isinstance(error, AirflowFailException) is permanent
    expected_attempts = 1 if permanent else 3
    assert len(scripted.hits(DATA)) == expected_attempts
    if body.get("ErrorList"):
        assert error.errors == body["ErrorList"]
        assert body["ErrorList"][0]["ErrorMessage"] in str(error)


def test_auth_error_names_the_connection_and_the_fix(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(DATA, json_reply(401, AUTH_FAILED))
    with pytest.raises(ClearTaxAuthError) as caught:
        hook.get_invoice(unique_id="x")
    text = str(caught.value)
    assert "'cleartax_test'" in text
    assert "ClearTax portal" in text and "revoked" in text and "password" in text
    assert caught.value.errors[0]["ErrorCode"] == "100401"


def test_html_502_gives_typed_error_with_excerpt(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    scripted.script(DATA, default=raw_reply(502, page, "text/html"))
    with pytest.raises(ClearTaxServerError) as caught:
        hook.get_invoice(unique_id="x")
    assert "502 Bad Gateway" in str(caught.value)
    assert caught.value.status == 502


def test_truncated_json_is_a_response_error_not_a_decode_error(
    hook: ClearTaxHook, scripted: ScriptedServer
) -> None:
    scripted.script(DATA, default=raw_reply(200, b'{"InvoiceStatus": "CLEA'))
    with pytest.raises(ClearTaxResponseError) as caught:
        hook.get_invoice(unique_id="x")
    assert caught.value.body_excerpt.startswith('{"InvoiceStatus"')
    assert len(scripted.hits(DATA)) == 3  # a garbled answer to a read is retried


def test_wrong_shape_is_a_response_error(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(DATA, default=json_reply(200, {"ErrorList": "not a list"}))
    with pytest.raises(ClearTaxResponseError):
        hook.get_invoice(unique_id="x")


def test_unknown_fields_are_kept(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(DATA, json_reply(200, {**CLEARED, "NewField": {"a": 1}, "ErrorList": None}))
    result = hook.get_invoice(unique_id="x")
    assert result.model_extra == {"NewField": {"a": 1}}
    assert result.to_api()["NewField"] == {"a": 1}
    assert result.error_list == []


def test_business_rejection_in_a_200(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    rejected = {
        "InvoiceStatus": "NOT_CLEARED",
        "Status": "NOT_GENERATED",
        "ErrorList": [
            {
                "ErrorCode": "8001",
                "ErrorMessage": "BR-KSA-14 buyer VAT",
                "ErrorSource": "ZATCA",
                "Path": "EInvoice.AccountingCustomerParty",
            }
        ],
    }
    scripted.script(GENERATE, json_reply(200, rejected))
    with pytest.raises(ClearTaxInvoiceRejectedError) as caught:
        hook.generate_invoice(INVOICE)
    error = caught.value
    assert isinstance(error, AirflowFailException)
    assert error.status == 200
    assert error.result.invoice_status == "NOT_CLEARED"
    assert "BR-KSA-14" in str(error) and "EInvoice.AccountingCustomerParty" in str(error)
    assert len(scripted.hits(GENERATE)) == 1


def test_redirect_is_not_followed_and_token_stays_home(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    other = ScriptedServer().start()
    try:
        other.script(DATA, default=json_reply(200, CLEARED))
        scripted.script(DATA, raw_reply(302, b"", Location=f"{other.url}/middle-east/ksa/einvoicing{DATA}"))
        with pytest.raises(ClearTaxConfigError, match="redirect"):
            hook.get_invoice(unique_id="x")
        assert other.requests == []
    finally:
        other.stop()


# ---------------------------------------------------------------------------- retries


def test_retry_after_seconds_is_honoured(hook: ClearTaxHook, scripted: ScriptedServer, capfd) -> None:
    scripted.script(DATA, json_reply(429, {}, headers={"Retry-After": "1"}), json_reply(200, CLEARED))
    hook.get_invoice(unique_id="x")
    first, second = scripted.hits(DATA)
    # The backoff alone (base 0.01 s) would have retried almost at once.
    assert second.at - first.at >= 0.95
    assert "HTTP 429; retry 1 of 2 in 1.0 s" in capfd.readouterr().out


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now.timestamp())
        == 30.0
    )
    assert (
        parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now.timestamp())
        == 0.0
    )
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_and_capped() -> None:
    from airflow_provider_cleartax.client.pipeline import backoff_delay

    settings = ClientSettings(
        conn_id="c", base_url="https://x", token="t", retry=RetryPolicy(backoff_base=1, backoff_cap=8)
    )
    rng = random.Random(1)
    delays = [backoff_delay(attempt, None, settings, rng) for attempt in range(1, 8) for _ in range(50)]
    assert max(delays) <= 8 and min(delays) >= 0
    assert max(delays[:50]) <= 1  # first retry: ceiling of backoff_base
    assert backoff_delay(3, 500, settings, rng) == 120  # Retry-After capped at max_retry_after


def test_bulk_pacing_waits_for_the_window() -> None:
    """Drive the operation by hand: the 3rd call at 2 calls/minute must wait about a minute."""
    settings = ClientSettings(conn_id="c", base_url="https://x", token="t", vat=SELLER_VAT)
    operation = api.get_bulk_status(Session(settings), [f"id-{i}" for i in range(1200)], calls_per_minute=2)
    actions = []
    action = next(operation)
    for _ in range(5):
        actions.append(action)
        if isinstance(action, Send):
            body = {
                "Invoices": [
                    {"uniqueId": e["uniqueId"], "einvoiceStatus": "REPORTED"}
                    for e in json.loads(action.request.content)["Invoices"]
                ]
            }
            reply = Reply(200, httpx.Headers(), json.dumps(body).encode())
            try:
                action = operation.send(reply)
            except StopIteration as stop:
                result = stop.value
                break
        else:
            action = operation.send(None)
    kinds = [type(a).__name__ for a in actions]
    assert kinds == ["Send", "Send", "Sleep", "Send"]
    assert 59 < actions[2].seconds <= 60
    assert [len(json.loads(a.request.content)["Invoices"]) for a in actions if isinstance(a, Send)] == [
        500,
        500,
        200,
    ]
    assert len(result) == 1200 and result[1199].unique_id == "id-1199"


# ---------------------------------------------------------------------------- look up before resending


def test_generate_5xx_then_found_by_lookup_is_not_resent(
    hook: ClearTaxHook, scripted: ScriptedServer
) -> None:
    scripted.script(GENERATE, json_reply(503, {}))
    scripted.script(DATA, json_reply(200, CLEARED))
    result = hook.generate_invoice(INVOICE)
    assert result.uuid == "u-1"
    assert len(scripted.hits(GENERATE)) == 1
    (lookup,) = scripted.hits(DATA)
    assert "invoiceNumber=INV%2F2026%2F0001" in lookup.query and "issueDate=2026-12-01" in lookup.query


def test_generate_5xx_not_found_is_sent_again(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(GENERATE, json_reply(500, {}), json_reply(200, CLEARED))
    scripted.script(DATA, json_reply(404, {"ErrorList": [{"ErrorCode": "6003"}]}))
    assert hook.generate_invoice(INVOICE).invoice_status == "CLEARED"
    assert len(scripted.hits(GENERATE)) == 2
    body = json.loads(scripted.hits(GENERATE)[0].body)
    assert body["DeviceId"] == "dev-1" and body["EInvoice"] == INVOICE


def test_generate_timeout_is_looked_up(scripted: ScriptedServer, make_connection) -> None:
    conn_id = make_connection(scripted.url, device_id="dev-1", generate_timeout=0.3)
    hook = ClearTaxHook(cleartax_conn_id=conn_id, backoff_base=0.01)
    scripted.script(GENERATE, slow_reply(1.5, json_reply(200, CLEARED)))
    scripted.script(DATA, json_reply(200, CLEARED))
    assert hook.generate_invoice(INVOICE).icv == 7
    assert len(scripted.hits(GENERATE)) == 1


def test_generate_rejection_found_by_lookup_is_raised(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(GENERATE, json_reply(502, {}))
    scripted.script(
        DATA, json_reply(200, {"InvoiceStatus": "NOT_CLEARED", "ErrorList": [{"ErrorCode": "8001"}]})
    )
    with pytest.raises(ClearTaxInvoiceRejectedError):
        hook.generate_invoice(INVOICE)
    assert len(scripted.hits(GENERATE)) == 1


def test_generate_is_not_resent_when_the_lookup_fails(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(GENERATE, json_reply(503, {}), default=json_reply(200, CLEARED))
    scripted.script(DATA, default=json_reply(503, {}))
    with pytest.raises(ClearTaxServerError):
        hook.generate_invoice(INVOICE)
    assert len(scripted.hits(GENERATE)) == 1
    assert len(scripted.hits(DATA)) == 3


def test_generate_429_is_retried_without_lookup(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(GENERATE, json_reply(429, {}, headers={"Retry-After": "0"}), json_reply(200, CLEARED))
    hook.generate_invoice(INVOICE)
    assert len(scripted.hits(GENERATE)) == 2
    assert scripted.hits(DATA) == []


def test_signed_xml_with_unknown_outcome_is_never_repeated(
    hook: ClearTaxHook, scripted: ScriptedServer
) -> None:
    path = "/v2/einvoices/generate-with-file-offline"
    scripted.script(path, json_reply(500, {}), default=json_reply(200, {}))
    with pytest.raises(ClearTaxServerError):
        hook.send_signed_xml(b"<Invoice/>")
    assert len(scripted.hits(path)) == 1


def test_connection_refused_is_retried_then_typed(make_connection) -> None:
    conn_id = make_connection("http://127.0.0.1:9", conn_id="refused")
    hook = ClearTaxHook(cleartax_conn_id=conn_id, max_retries=1, backoff_base=0.01)
    with pytest.raises(ClearTaxError) as caught:
        hook.generate_invoice(INVOICE)  # nothing reached a server: resending is safe, and no lookup needed
    assert not isinstance(caught.value, AirflowFailException)


def test_read_timeout_on_a_read_is_retried(scripted: ScriptedServer, make_connection) -> None:
    conn_id = make_connection(scripted.url, request_timeout=0.3)
    hook = ClearTaxHook(cleartax_conn_id=conn_id, max_retries=1, backoff_base=0.01)
    scripted.script(
        DATA, slow_reply(1.0, json_reply(200, CLEARED)), slow_reply(1.0, json_reply(200, CLEARED))
    )
    with pytest.raises(ClearTaxTimeoutError):
        hook.get_invoice(unique_id="x")
    assert len(scripted.hits(DATA)) == 2


# ---------------------------------------------------------------------------- streaming and async


def test_pdf_is_streamed_to_a_path_and_an_object_storage_path(
    hook: ClearTaxHook, scripted: ScriptedServer, tmp_path
) -> None:
    from airflow.sdk import ObjectStoragePath

    pdf = b"%PDF-1.7\n" + b"x" * 300_000 + b"\n%%EOF\n"
    scripted.script("/v2/einvoices/print", default=raw_reply(200, pdf, "application/pdf"))
    local = hook.download_invoice_pdf(
        tmp_path / "a" / "inv.pdf", invoice_number="INV-1", invoice_type="INV", issue_date="2026-12-01"
    )
    assert local.size == len(pdf) and (tmp_path / "a" / "inv.pdf").read_bytes() == pdf
    remote = ObjectStoragePath(f"file://{tmp_path}/store/inv.pdf")
    result = hook.download_invoice_pdf(
        remote, invoice_number="INV-1", invoice_type="388", issue_date="2026-12-01"
    )
    assert result.size == len(pdf) and remote.read_bytes() == pdf
    assert "templateId=39" in scripted.hits("/v2/einvoices/print")[0].query


def test_pdf_error_is_a_json_array(hook: ClearTaxHook, scripted: ScriptedServer, tmp_path) -> None:
    scripted.script(
        "/v2/einvoices/print", json_reply(404, [{"ErrorCode": "6003", "ErrorMessage": "Invoice not found"}])
    )
    with pytest.raises(ClearTaxNotFoundError, match="Invoice not found"):
        hook.download_invoice_pdf(
            tmp_path / "x.pdf", invoice_number="N", invoice_type="INV", issue_date="2026-12-01"
        )


def test_async_variant_shares_the_pipeline(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(DATA, json_reply(503, {}), json_reply(200, CLEARED), json_reply(401, AUTH_FAILED))

    async def scenario() -> None:
        result = await hook.aget_invoice(unique_id="x")
        assert result.invoice_status == "CLEARED"
        with pytest.raises(ClearTaxAuthError):
            await hook.aget_invoice(unique_id="x")
        await hook.aclose()

    asyncio.run(scenario())
    assert len(scripted.hits(DATA)) == 3


def test_oversized_answer_is_refused(scripted: ScriptedServer, make_connection) -> None:
    from airflow_provider_cleartax.client.settings import settings_from_connection

    conn_id = make_connection(scripted.url)
    hook = ClearTaxHook(cleartax_conn_id=conn_id, max_retries=0)
    hook._settings = settings_from_connection(hook.get_connection(conn_id)).with_overrides(
        max_body_bytes=1000
    )
    scripted.script(DATA, raw_reply(200, b'{"a": "' + b"x" * 5000 + b'"}'))
    with pytest.raises(ClearTaxError):
        hook.get_invoice(unique_id="x")


# ---------------------------------------------------------------------------- secrets


def test_token_never_in_errors_logs_or_reprs(
    hook: ClearTaxHook, scripted: ScriptedServer, caplog, capfd
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"ErrorList": [{"ErrorCode": "1", "ErrorMessage": f"bad token {SECRET_TOKEN}"}]}
    scripted.script(
        DATA,
        json_reply(401, echo),
        json_reply(400, echo),
        json_reply(500, echo),
        default=raw_reply(502, f"<p>{SECRET_TOKEN}</p>".encode(), "text/html"),
    )
    errors = []
    for _ in range(3):
        with pytest.raises(ClearTaxError) as caught:
            hook.get_invoice(unique_id="x")
        errors.append(caught.value)
    assert len(errors) == 3
    for error in errors:
        assert SECRET_TOKEN not in _all_text(error)
    captured = capfd.readouterr()
    assert "HTTP 500" in captured.out  # the retry was logged...
    assert SECRET_TOKEN not in caplog.text + captured.out + captured.err  # ...without the token
    assert SECRET_TOKEN not in repr(hook) and SECRET_TOKEN not in repr(hook.settings)
    assert scripted.hits(DATA)[0].headers["x-cleartax-auth-token"] == SECRET_TOKEN  # it was really sent


def test_errors_survive_pickling(hook: ClearTaxHook, scripted: ScriptedServer) -> None:
    scripted.script(DATA, json_reply(401, AUTH_FAILED))
    with pytest.raises(ClearTaxAuthError) as caught:
        hook.get_invoice(unique_id="x")
    clone = pickle.loads(pickle.dumps(caught.value))
    assert type(clone) is ClearTaxAuthError and str(clone) == str(caught.value)
    assert clone.status == 401 and clone.errors == caught.value.errors and clone.conn_id == "cleartax_test"


def test_long_server_texts_are_clipped_in_messages_but_kept_whole(
    hook: ClearTaxHook, scripted: ScriptedServer
) -> None:
    essay = "x" * 100_000
    scripted.script(
        DATA, json_reply(400, {"ErrorList": [{"ErrorCode": "6002", "ErrorMessage": essay, "Path": "p"}]})
    )
    with pytest.raises(ClearTaxValidationError) as caught:
        hook.get_invoice(unique_id="x")
    assert len(str(caught.value)) < 1_000
    assert caught.value.errors[0]["ErrorMessage"] == essay
