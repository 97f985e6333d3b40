"""R5: whatever a server answers, the client gives a typed ClearTax error or a valid result, in bounded time.

Three layers: every endpoint's parser driven by hand with random replies (no I/O, many examples);
the sync and async drivers over ``httpx.MockTransport`` with random statuses, headers, encodings
and bodies; and the same drivers over real loopback HTTP against the scripted server, including
answers too large, a gzip bomb and a trickle that never ends.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from airflow_provider_cleartax.client import api
from airflow_provider_cleartax.client.api import Session
from airflow_provider_cleartax.client.pipeline import Reply, Send, run_async, run_sync
from airflow_provider_cleartax.client.results import (
    CsidResult,
    DeviceResult,
    EmailResult,
    InvoiceResult,
    PcsidStatus,
    PdfDownload,
    SignedXmlResult,
)
from airflow_provider_cleartax.client.settings import API_PATH, ClientSettings, RetryPolicy
from airflow_provider_cleartax.exceptions import ClearTaxError, ClearTaxTimeoutError
from tests.conftest import SECRET_TOKEN, SELLER_VAT
from tests.reliability.conftest import time_limit
from tests.scripted_server import ScriptedServer, raw_reply

# Generous: only a hang exceeds it (each example normally takes milliseconds).
EXAMPLE_BOUND = 20.0
PROPERTY = settings(
    max_examples=200,
    deadline=None,  # a loaded 2-core box makes per-example deadlines flaky; time_limit catches hangs
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

INVOICE = {
    "ID": {"en": "INV/1"},
    "InvoiceTypeCode": {"name": "0100000", "value": "388"},
    "IssueDate": "2026-12-01",
}
XML = b"<Invoice/>"
DEVICE = {"EgsSerialNumber": "1-A|2-B|3-C"}
ORGANIZATION = {"VatNumber": SELLER_VAT}


def _endpoints(sink_dir: Path) -> dict[str, tuple[Callable[[Session], Any], tuple[type, ...]]]:
    """Every endpoint of the API: how to start its operation, and what it may return."""
    pdf = sink_dir / "out.pdf"
    return {
        "generate": (lambda s: api.generate_invoice(s, INVOICE), (InvoiceResult,)),
        "generate_async": (lambda s: api.generate_invoice_async(s, INVOICE), (InvoiceResult,)),
        "generate_with_file": (lambda s: api.generate_invoice_from_xml(s, XML), (InvoiceResult,)),
        "generate_with_file_offline": (lambda s: api.send_signed_xml(s, XML), (SignedXmlResult,)),
        "get_invoice": (lambda s: api.get_invoice(s, unique_id="u"), (InvoiceResult,)),
        "get_bulk": (lambda s: api.get_bulk_status(s, ["a", "b"]), (list,)),
        "print_pdf": (
            lambda s: api.download_invoice_pdf(
                s, pdf, invoice_number="N", invoice_type="INV", issue_date="2026-12-01"
            ),
            (PdfDownload,),
        ),
        "embedded_pdf": (
            lambda s: api.embed_xml_in_pdf(
                s, b"%PDF-1.7", pdf, invoice_number="N", invoice_type="INV", issue_date="2026-12-01"
            ),
            (PdfDownload,),
        ),
        "email": (
            lambda s: api.email_invoice(
                s, invoice_number="N", invoice_type="INV", issue_date="2026-12-01", to=["a@b.example"]
            ),
            (EmailResult,),
        ),
        "register_device": (
            lambda s: api.register_device(
                s, device_details=DEVICE, organization_details=ORGANIZATION, otp="123456"
            ),
            (DeviceResult,),
        ),
        "generate_csr": (
            lambda s: api.generate_csr(s, device_details=DEVICE, organization_details=ORGANIZATION),
            (DeviceResult,),
        ),
        "generate_csid": (lambda s: api.generate_csid(s, device_id="d", otp="123456"), (CsidResult,)),
        "pcsid_status": (lambda s: api.get_pcsid_status(s, "a" * 24), (PcsidStatus,)),
    }


ENDPOINT_NAMES = sorted(_endpoints(Path(".")))


def _settings(base_url: str = "https://cleartax.invalid" + API_PATH, **overrides: Any) -> ClientSettings:
    return ClientSettings(
        conn_id="hostile",
        base_url=base_url,
        token=SECRET_TOKEN,
        vat=SELLER_VAT,
        device_id="dev-1",
        retry=RetryPolicy(max_retries=1, backoff_base=0.001, backoff_cap=0.002, max_retry_after=0.01),
        **overrides,
    )


def _assert_typed(outcome: Any, expected: tuple[type, ...]) -> None:
    """A result of the endpoint's type, or a typed ClearTax error that does not carry the token."""
    if isinstance(outcome, BaseException):
        assert isinstance(outcome, ClearTaxError), f"untyped {type(outcome).__name__}: {outcome!r}"
        assert SECRET_TOKEN not in str(outcome) + repr(outcome)
        return
    assert isinstance(outcome, expected), type(outcome)


# ------------------------------------------------------------------------ what a hostile server sends

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
# Field names of the answers, so that random values land where the parsers look.
_KEYS = [
    "DeviceId",
    "Status",
    "QrCodeStatus",
    "InvoiceStatus",
    "UUID",
    "ICV",
    "PIH",
    "InvoiceHash",
    "QRCode",
    "InvoiceXml",
    "IssueDate",
    "ErrorList",
    "WarningList",
    "Message",
    "ErrorCode",
    "ErrorMessage",
    "Path",
    "Invoices",
    "einvoiceStatus",
    "uniqueId",
    "validationResults",
    "errorMessages",
    "warningMessages",
    "infoMessages",
    "status",
    "clearanceStatus",
    "reportingStatus",
    "PcsidGenerationActivityId",
    "ActivityType",
    "CreatedAt",
    "errors",
]
_VALUES = ["CLEARED", "REPORTED", "NOT_CLEARED", "PENDING", "FAILED", "SUCCEEDED", "ERROR", "GENERATED", ""]
SHAPED = st.recursive(
    _SCALARS | st.sampled_from(_VALUES),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=30,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A body: JSON of any shape, JSON shaped like an answer, cut-off JSON, deep nesting or bytes."""
    kind = draw(st.sampled_from(["json", "shaped", "truncated", "deep", "binary", "empty"]))
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "empty":
        return draw(st.sampled_from([b"", b" ", b"\n", b"null"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=500, max_value=50_000))
        opener = draw(st.sampled_from([b"[", b'{"a":']))
        return opener * depth
    text = json.dumps(draw(JSON_VALUES if kind == "json" else SHAPED)).encode()
    if kind == "truncated":
        return text[: draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))]
    return text


STATUSES = st.sampled_from(
    [200, 200, 200, 201, 204, 301, 302, 400, 401, 403, 404, 429, 500, 502, 503]
) | st.integers(min_value=100, max_value=599)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    """Headers an answer may carry: any content type, odd Retry-After values, a Location."""
    found: dict[str, str] = {}
    content_type = draw(
        st.sampled_from(
            ["application/json", "text/html", "application/pdf", "text/plain; charset=latin-1", ""]
        )
        | HEADER_TEXT
    )
    if content_type:
        found["content-type"] = content_type
    retry_after = draw(
        st.none()
        | st.sampled_from(
            [
                "nan",
                "inf",
                "-1",
                "1e400",
                "0",
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "Mon, 01 Jan 0001 00:00:00 GMT",
            ]
        )
        | HEADER_TEXT
    )
    if retry_after is not None:
        found["retry-after"] = retry_after
    if draw(st.booleans()):
        found["location"] = "https://elsewhere.invalid/steal"
    return found


# ------------------------------------------------------------------------ 1. every parser, driven by hand


def _drive(operation: Any, reply: Reply) -> Any:
    """Run an operation, answering every request with ``reply`` and skipping every wait."""
    outcome = None
    while True:
        try:
            action = operation.send(outcome)
        except StopIteration as stop:
            return stop.value
        outcome = (
            (
                Reply(reply.status, reply.headers, streamed=len(reply.body))
                if action.sink is not None and 200 <= reply.status < 300
                else reply
            )
            if isinstance(action, Send)
            else None
        )


@PROPERTY
@given(endpoint=st.sampled_from(ENDPOINT_NAMES), status=STATUSES, body=bodies(), answer_headers=headers())
def test_every_parser_gives_a_result_or_a_typed_error(
    endpoint: str, status: int, body: bytes, answer_headers: dict[str, str], tmp_path: Path
) -> None:
    start, expected = _endpoints(tmp_path)[endpoint]
    reply = Reply(status, httpx.Headers(answer_headers), body)
    with time_limit(EXAMPLE_BOUND):
        try:
            outcome = _drive(start(Session(_settings())), reply)
        except Exception as error:
            outcome = error
    _assert_typed(outcome, expected)


@PROPERTY
@given(value=JSON_VALUES | SHAPED)
def test_a_random_json_200_never_escapes_a_parser(value: Any, tmp_path: Path) -> None:
    body = json.dumps(value).encode()
    for start, expected in _endpoints(tmp_path).values():
        try:
            outcome = _drive(start(Session(_settings())), Reply(200, httpx.Headers(), body))
        except Exception as error:
            outcome = error
        _assert_typed(outcome, expected)


# ------------------------------------------------------------------------ 2. the drivers, over MockTransport


@st.composite
def answers(draw: st.DrawFn) -> tuple[int, dict[str, str], bytes]:
    """A whole HTTP answer (status, headers, raw body), maybe gzip- or deflate-encoded, correctly or not."""
    status, body, answer_headers = draw(STATUSES), draw(bodies()), draw(headers())
    encoding = draw(
        st.sampled_from([None, None, "gzip", "deflate", "gzip-garbage", "identity", "br", "x-unknown"])
    )
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "deflate":
        body = zlib.compress(body)
    if encoding is not None:
        answer_headers["content-encoding"] = encoding.removesuffix("-garbage")
    return status, answer_headers, body


@PROPERTY
@given(endpoint=st.sampled_from(ENDPOINT_NAMES), answer=answers(), streamed=st.booleans())
def test_sync_driver_survives_any_answer(
    endpoint: str, answer: tuple[int, dict[str, str], bytes], streamed: bool, tmp_path: Path
) -> None:
    start, expected = _endpoints(tmp_path)[endpoint]
    status, answer_headers, body = answer

    def handle(request: httpx.Request) -> httpx.Response:
        # Bytes are read (and decoded) by httpx at once; an iterator arrives raw, as off the wire.
        content = iter([body[:7], body[7:]]) if streamed else body
        return httpx.Response(status, headers=answer_headers, content=content)

    transport = httpx.MockTransport(handle)
    with time_limit(EXAMPLE_BOUND), httpx.Client(transport=transport, follow_redirects=False) as client:
        try:
            outcome = run_sync(client, start(Session(_settings())))
        except Exception as error:
            outcome = error
    _assert_typed(outcome, expected)


@PROPERTY
@given(endpoint=st.sampled_from(ENDPOINT_NAMES), answer=answers(), streamed=st.booleans())
def test_async_driver_survives_any_answer(
    endpoint: str, answer: tuple[int, dict[str, str], bytes], streamed: bool, tmp_path: Path
) -> None:
    start, expected = _endpoints(tmp_path)[endpoint]
    status, answer_headers, body = answer

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:7]
        yield body[7:]

    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=answer_headers, content=chunks() if streamed else body)

    async def scenario() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle), follow_redirects=False) as client:
            try:
                return await asyncio.wait_for(run_async(client, start(Session(_settings()))), EXAMPLE_BOUND)
            except Exception as error:
                return error

    with time_limit(EXAMPLE_BOUND + 5):
        outcome = asyncio.run(scenario())
    _assert_typed(outcome, expected)


# ------------------------------------------------------------------------ 3. real HTTP, scripted server

REAL = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
DATA = "/v2/einvoices/data"
GENERATE = "/v2/einvoices/generate"


def _server_settings(server: ScriptedServer, **overrides: Any) -> ClientSettings:
    overrides = {"request_timeout": 5.0, "generate_timeout": 5.0, **overrides}
    return _settings(base_url=server.url + API_PATH, **overrides)


def _script_everything(
    server: ScriptedServer, status: int, body: bytes, answer_headers: dict[str, str]
) -> None:
    server.reset()
    content_type = answer_headers.pop("content-type", "application/octet-stream")
    # Starlette answers 204/304 and 1xx without a body; other odd statuses are sent as they are.
    server.script("", default=raw_reply(status, body, content_type, **answer_headers))


@REAL
@given(
    endpoint=st.sampled_from(["get_invoice", "generate", "pcsid_status", "print_pdf"]),
    status=STATUSES.filter(lambda s: s >= 200),
    body=bodies(),
    answer_headers=headers(),
)
def test_real_http_sync_and_async_survive_any_answer(
    scripted_server: ScriptedServer,
    endpoint: str,
    status: int,
    body: bytes,
    answer_headers: dict[str, str],
    tmp_path: Path,
) -> None:
    _script_everything(scripted_server, status, body, answer_headers)
    start, expected = _endpoints(tmp_path)[endpoint]
    for outcome in _run_both(_server_settings(scripted_server), start):
        _assert_typed(outcome, expected)


def _streaming(chunks: Callable[[], AsyncIterator[bytes]], **answer_headers: str) -> Any:
    async def handler(request: Request) -> Response:
        return StreamingResponse(chunks(), media_type="application/json", headers=answer_headers)

    return handler


def _run_both(settings_: ClientSettings, start: Callable[[Session], Any]) -> list[BaseException | Any]:
    """Run an operation with the sync and with the async driver; return both outcomes."""
    outcomes: list[Any] = []
    with time_limit(EXAMPLE_BOUND), httpx.Client(follow_redirects=False) as client:
        try:
            outcomes.append(run_sync(client, start(Session(settings_))))
        except Exception as error:
            outcomes.append(error)

    async def scenario() -> Any:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            try:
                return await run_async(client, start(Session(settings_)))
            except Exception as error:
                return error

    with time_limit(EXAMPLE_BOUND):
        outcomes.append(asyncio.run(scenario()))
    return outcomes


MAX_BODY = 1024 * 1024


def _peak_while(run: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        outcome = run()
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_endless_body_is_cut_at_the_size_limit(scripted: ScriptedServer) -> None:
    async def endless() -> AsyncIterator[bytes]:
        block = b'{"a":"' + b"x" * 65_530
        for _ in range(2_000):  # about 130 MB, should the client not stop reading first
            yield block

    scripted.script(DATA, default=_streaming(endless))
    outcomes, peak = _peak_while(
        lambda: _run_both(
            _server_settings(scripted, max_body_bytes=MAX_BODY), lambda s: api.get_invoice(s, unique_id="u")
        )
    )
    for outcome in outcomes:
        assert isinstance(outcome, ClearTaxError), outcome
    assert peak < 8 * MAX_BODY, peak


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """256 MB of zeros, gzip-compressed to about 250 kB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    return b"".join([*(compressor.compress(block) for _ in range(256)), compressor.flush()])


def test_a_gzip_bomb_is_cut_at_the_size_limit(scripted: ScriptedServer, gzip_bomb: bytes) -> None:
    scripted.script(
        DATA, default=raw_reply(200, gzip_bomb, "application/json", **{"Content-Encoding": "gzip"})
    )

    outcomes, peak = _peak_while(
        lambda: _run_both(
            _server_settings(scripted, max_body_bytes=MAX_BODY), lambda s: api.get_invoice(s, unique_id="u")
        )
    )

    for outcome in outcomes:
        assert isinstance(outcome, ClearTaxError), outcome
    # Inflated a bounded piece at a time and cut at the limit: a few MB, not 256 MB.
    assert peak < 8 * MAX_BODY, peak


def test_a_trickle_is_stopped_by_the_overall_deadline(scripted: ScriptedServer) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"InvoiceStatus": "CLEARED", "Message": "'
        for _ in range(600):  # a minute of one byte every 0.1 s: far below any per-read timeout
            await asyncio.sleep(0.1)
            yield b"."

    scripted.script(DATA, default=_streaming(trickle))
    outcomes = _run_both(
        _server_settings(scripted, request_timeout=1.0), lambda s: api.get_invoice(s, unique_id="u")
    )

    for outcome in outcomes:
        assert isinstance(outcome, ClearTaxTimeoutError), outcome
    assert len(scripted.hits(DATA)) == 4  # two attempts per driver, each cut by the deadline


def test_a_body_shorter_than_announced_is_a_transport_error(scripted: ScriptedServer) -> None:
    async def short(request: Request) -> Response:
        return Response(
            b'{"InvoiceStatus": "CLE', headers={"content-length": "5000"}, media_type="application/json"
        )

    scripted.script(DATA, default=short)
    for outcome in _run_both(_server_settings(scripted), lambda s: api.get_invoice(s, unique_id="u")):
        assert isinstance(outcome, ClearTaxError), outcome
