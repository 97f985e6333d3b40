"""R6: TLS is verified, plain http goes only to loopback unless allowed, redirects never carry the token."""

from __future__ import annotations

import asyncio
import pickle
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from airflow_provider_cleartax.client import api
from airflow_provider_cleartax.client.api import Session
from airflow_provider_cleartax.client.pipeline import run_sync
from airflow_provider_cleartax.client.settings import normalize_base_url
from airflow_provider_cleartax.exceptions import AirflowFailException, ClearTaxConfigError, ClearTaxError
from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
from tests.conftest import SECRET_TOKEN
from tests.scripted_server import ScriptedServer, json_reply, raw_reply

DATA = "/v2/einvoices/data"
GENERATE = "/v2/einvoices/generate"
CLEARED = {"InvoiceStatus": "CLEARED", "Status": "GENERATED", "UUID": "u-1", "ICV": 1, "ErrorList": []}
INVOICE = {
    "ID": {"en": "INV-R6"},
    "InvoiceTypeCode": {"name": "0100000", "value": "388"},
    "IssueDate": "2026-12-01",
}


def _all_text(error: BaseException) -> str:
    return " ".join([str(error), repr(error), str(error.__dict__), str(pickle.loads(pickle.dumps(error)))])


@pytest.fixture(scope="module")
def https_server(tls_material: dict[str, Path]) -> Iterator[ScriptedServer]:
    """The scripted server behind TLS, with a self-signed certificate for 127.0.0.1."""
    import socket

    server = ScriptedServer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server.port = sock.getsockname()[1]
    config = uvicorn.Config(
        server,
        log_level="critical",
        lifespan="off",
        ssl_certfile=str(tls_material["cert"]),
        ssl_keyfile=str(tls_material["key"]),
        timeout_graceful_shutdown=1,
    )
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        assert time.monotonic() < deadline, "TLS server did not start"
        time.sleep(0.01)
    yield server
    runner.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def tls_hook(https_server: ScriptedServer, make_connection) -> ClearTaxHook:
    https_server.reset()
    https_server.script(DATA, default=json_reply(200, CLEARED))
    conn_id = make_connection(f"https://127.0.0.1:{https_server.port}", device_id="dev-1")
    return ClearTaxHook(cleartax_conn_id=conn_id, max_retries=1, backoff_base=0.01, backoff_cap=0.02)


# ---------------------------------------------------------------------------- TLS verification


def test_the_sync_client_refuses_a_self_signed_certificate(
    tls_hook: ClearTaxHook, https_server: ScriptedServer
) -> None:
    with pytest.raises(ClearTaxConfigError, match="could not be verified") as caught:
        tls_hook.get_invoice(unique_id="x")
    assert isinstance(caught.value, AirflowFailException)  # no retry can fix a certificate
    assert SECRET_TOKEN not in _all_text(caught.value)
    assert https_server.requests == []  # the handshake failed: no request, no header, left the client


def test_the_async_client_refuses_a_self_signed_certificate(
    tls_hook: ClearTaxHook, https_server: ScriptedServer
) -> None:
    async def scenario() -> BaseException:
        try:
            with pytest.raises(ClearTaxConfigError, match="could not be verified") as caught:
                await tls_hook.aget_invoice(unique_id="x")
            return caught.value
        finally:
            await tls_hook.aclose()

    error = asyncio.run(scenario())
    assert SECRET_TOKEN not in _all_text(error)
    assert https_server.requests == []


def test_the_bulk_engine_refuses_a_self_signed_certificate(
    tls_hook: ClearTaxHook, https_server: ScriptedServer, tmp_path: Path
) -> None:
    from airflow_provider_cleartax.bulk import BulkSubmitter, Ledger, RateLimiter
    from tests.conftest import sample_invoice

    submitter = BulkSubmitter(hook=tls_hook, ledger=tmp_path / "ledger", rate_limiter=RateLimiter(limits={}))
    with pytest.raises(ClearTaxConfigError, match="could not be verified") as caught:
        asyncio.run(submitter.run([sample_invoice(number="TLS-1")]))
    assert SECRET_TOKEN not in _all_text(caught.value)
    records = Ledger(tmp_path / "ledger").records()
    assert SECRET_TOKEN not in str(records)
    assert https_server.requests == []


def test_the_same_server_is_reachable_when_its_certificate_is_trusted(
    tls_hook: ClearTaxHook, https_server: ScriptedServer, tls_material: dict[str, Path]
) -> None:
    # The control: the refusals above come from verification, not from a broken server.
    trusting = ssl.create_default_context(cafile=str(tls_material["cert"]))
    with httpx.Client(verify=trusting, follow_redirects=False, trust_env=False) as client:
        result = run_sync(client, api.get_invoice(Session(tls_hook.settings), unique_id="x"))
    assert result.invoice_status == "CLEARED"
    assert https_server.hits(DATA)[0].headers["x-cleartax-auth-token"] == SECRET_TOKEN


# ---------------------------------------------------------------------------- plain http


@pytest.mark.parametrize(
    "host",
    [
        "http://api.cleartax.com",
        "http://10.0.0.8:8080/middle-east/ksa/einvoicing",
        "http://0.0.0.0:8080",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://localhost@evil.example",
        "HTTP://api.cleartax.com",
        "  http://api.cleartax.com  ",
    ],
)
def test_plain_http_to_another_host_is_refused(host: str, make_connection) -> None:
    conn_id = make_connection(host)
    hook = ClearTaxHook(cleartax_conn_id=conn_id)
    with pytest.raises(ClearTaxConfigError, match="refusing plain http") as caught:
        hook.get_invoice(unique_id="x")
    assert SECRET_TOKEN not in _all_text(caught.value)


@pytest.mark.parametrize("flag", ["false", "0", "no", ""])
def test_a_false_allow_insecure_http_still_refuses(flag: str, make_connection) -> None:
    conn_id = make_connection("http://api.cleartax.com", allow_insecure_http=flag)
    with pytest.raises(ClearTaxConfigError, match="refusing plain http"):
        ClearTaxHook(cleartax_conn_id=conn_id).settings  # noqa: B018


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://[::1]:8080",
        "http://localhost:8080",
        "http://api.localhost",
    ],
)
def test_plain_http_to_loopback_is_allowed(host: str) -> None:
    assert normalize_base_url(host, conn_id="c").startswith("http://")


def test_plain_http_elsewhere_needs_the_explicit_flag(make_connection) -> None:
    conn_id = make_connection("http://gateway.internal:8080", allow_insecure_http=True)
    assert ClearTaxHook(cleartax_conn_id=conn_id).settings.base_url == (
        "http://gateway.internal:8080/middle-east/ksa/einvoicing"
    )


# ---------------------------------------------------------------------------- redirects


@pytest.fixture(scope="module")
def second_server() -> Iterator[ScriptedServer]:
    """Where a redirect points: it must never see a request."""
    server = ScriptedServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_redirect_to_another_host_is_not_followed(
    status: int, driver: str, scripted: ScriptedServer, second_server: ScriptedServer, make_connection
) -> None:
    second_server.reset()
    second_server.script("", default=json_reply(200, CLEARED))
    target = f"{second_server.url}/middle-east/ksa/einvoicing"
    scripted.script(DATA, default=raw_reply(status, b"", Location=f"{target}{DATA}"))
    scripted.script(GENERATE, default=raw_reply(status, b"", Location=f"{target}{GENERATE}"))
    conn_id = make_connection(scripted.url, device_id="dev-1")
    hook = ClearTaxHook(cleartax_conn_id=conn_id, max_retries=2, backoff_base=0.01, backoff_cap=0.02)

    errors: list[ClearTaxError] = []
    if driver == "sync":
        for call in (lambda: hook.get_invoice(unique_id="x"), lambda: hook.generate_invoice(INVOICE)):
            with pytest.raises(ClearTaxConfigError, match="redirect") as caught:
                call()
            errors.append(caught.value)
    else:

        async def scenario() -> None:
            for call in (lambda: hook.aget_invoice(unique_id="x"), lambda: hook.agenerate_invoice(INVOICE)):
                with pytest.raises(ClearTaxConfigError, match="redirect") as caught:
                    await call()
                errors.append(caught.value)
            await hook.aclose()

        asyncio.run(scenario())

    assert second_server.requests == []
    # A redirect is a permanent answer: asked once each, never retried towards anyone.
    assert len(scripted.hits(DATA)) == 1 and len(scripted.hits(GENERATE)) == 1
    assert all(SECRET_TOKEN not in _all_text(error) and error.status == status for error in errors)
