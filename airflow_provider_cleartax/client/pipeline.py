"""The one request pipeline of the ClearTax client, shared by the sync and the async hook.

Every API operation is a generator that yields :class:`Send` and :class:`Sleep` actions and
receives :class:`Reply` objects (or has transport errors thrown into it). Request building,
the retry policy, look-up-before-resend and error mapping live here, free of I/O; the two small
drivers at the bottom, :func:`run_sync` and :func:`run_async`, only perform the actions. This
is also why retries are not delegated to tenacity: its sync and async retry loops would have
split this pipeline in two.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import uuid
import zlib
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import httpx
from pydantic import ValidationError

from airflow_provider_cleartax import __version__
from airflow_provider_cleartax.exceptions import (
    ClearTaxAuthError,
    ClearTaxConfigError,
    ClearTaxError,
    ClearTaxInvoiceRejectedError,
    ClearTaxNotFoundError,
    ClearTaxPermanentError,
    ClearTaxPermissionError,
    ClearTaxRateLimitError,
    ClearTaxResponseError,
    ClearTaxServerError,
    ClearTaxTimeoutError,
    ClearTaxTransportError,
    ClearTaxValidationError,
)

if TYPE_CHECKING:
    from airflow_provider_cleartax.client.settings import ClientSettings

T = TypeVar("T")
R = TypeVar("R")

USER_AGENT = f"airflow-provider-cleartax/{__version__}"
_EXCERPT_BYTES = 200
_CHUNK = 64 * 1024

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# What an operation asks for, and what it gets back
# --------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """An HTTP answer, read in full (or streamed into a sink, then ``streamed`` is its size)."""

    status: int
    headers: httpx.Headers
    body: bytes = b""
    streamed: int | None = None

    def json(self) -> Any:
        """Decode the body as JSON, or raise a :class:`ValueError` describing why not."""
        try:
            return json.loads(self.body)
        except RecursionError:
            # A hostile answer nested deeper than the interpreter's stack is garbage like any other.
            raise ValueError("the JSON is nested too deeply") from None


@dataclass
class Send:
    """Action: send ``request`` and answer with a :class:`Reply`.

    :param sink: where a successful body is streamed instead of being kept in memory.
    :param deadline: ``time.monotonic()`` by which the whole answer must have arrived.
    :param endpoint: canonical endpoint name, for rate limiting.
    """

    request: httpx.Request
    max_body: int
    deadline: float
    sink: Any = None
    endpoint: str = ""


@dataclass
class Sleep:
    """Action: wait ``seconds`` before going on."""

    seconds: float


Action = Send | Sleep
Operation = Generator[Action, Any, T]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange with ClearTax, described without doing it.

    :param endpoint: canonical endpoint name (``generate``, ``get_invoice``, ...).
    :param method: HTTP method.
    :param path: path below the base URL.
    :param parse: turns a 2xx :class:`Reply` into the typed result.
    :param params: query parameters.
    :param json: JSON body.
    :param files: multipart files, as httpx takes them (kept in memory: they are rebuilt per attempt).
    :param data: multipart form fields.
    :param headers: endpoint-specific headers (e.g. ``device-id``).
    :param vat: ``vat`` header for this call; defaults to the connection's.
    :param branch: ``branch`` header for this call; defaults to the connection's.
    :param slow: use the generate timeout instead of the request timeout.
    :param idempotent: may be sent again when an attempt's outcome is unknown.
    :param recover: for a non-idempotent call, a look-up that finds whether an attempt with an
        unknown outcome took effect (returns its result, or ``None`` when it did not).
    :param check: tells why a parsed 2xx result is a business rejection (``None`` = accepted).
    :param none_on_404: answer ``None`` instead of raising for HTTP 404.
    :param terminal_error: recognises an error status that is really a final answer.
    :param sink: path or ObjectStoragePath to stream a 2xx body into.
    """

    endpoint: str
    method: str
    path: str
    parse: Callable[[Reply], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    files: Mapping[str, Any] | None = None
    data: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    vat: str | None = None
    branch: str | None = None
    slow: bool = False
    idempotent: bool = True
    recover: Callable[[], Call[Any]] | None = None
    check: Callable[[T], str | None] | None = None
    none_on_404: bool = False
    terminal_error: Callable[[Reply], T | None] | None = None
    sink: Any = None


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def execute(
    call: Call[T],
    settings: ClientSettings,
    *,
    logger: logging.Logger | None = None,
    rng: random.Random | None = None,
) -> Operation[T]:
    """Perform ``call`` with retries and error mapping; the generator's return value is the result.

    Transient failures (429, 5xx, connection errors, malformed answers, timeouts) are retried with
    capped exponential backoff and full jitter, honouring ``Retry-After``. When an attempt of a
    non-idempotent call may have reached ClearTax (timeout, cut connection, 5xx, garbled answer),
    the call's ``recover`` look-up runs before anything is sent again; without one, the error is
    raised rather than risk a duplicate.
    """
    logger = logger or log
    rng = rng or random.Random()
    request_id = str(uuid.uuid4())
    policy = settings.retry
    attempts = policy.max_retries + 1
    timeout = settings.generate_timeout if call.slow else settings.request_timeout
    for attempt in range(1, attempts + 1):
        request = build_request(call, settings, request_id, timeout)
        retry_after: float | None = None
        try:
            reply = yield Send(
                request,
                max_body=settings.max_body_bytes,
                deadline=time.monotonic() + timeout,
                sink=call.sink,
                endpoint=call.endpoint,
            )
            return interpret(call, reply, settings, request_id)
        except ClearTaxPermanentError:
            raise
        except ClearTaxRateLimitError as error:
            failure: ClearTaxError = error
            retry_after = error.retry_after
            # ClearTax refuses a rate-limited request before processing it.
            reached_server = False
        except ClearTaxError as error:
            failure = error
            reached_server = True
        except httpx.HTTPError as exc:
            if _is_certificate_failure(exc):
                raise ClearTaxConfigError(
                    f"the TLS certificate of {request.url.host!r} could not be verified; check the base URL, "
                    "or trust your gateway's CA through SSL_CERT_FILE",
                    endpoint=call.endpoint,
                    request_id=request_id,
                ) from None
            failure = transport_error(call, exc, request_id)
            reached_server = not isinstance(
                exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
            )

        if reached_server and not call.idempotent:
            if call.recover is None:
                raise failure
            found = yield from _recover(call, settings, failure, logger=logger, rng=rng)
            if found is not None:
                return found
        if attempt == attempts:
            raise failure
        delay = backoff_delay(attempt, retry_after, settings, rng)
        logger.warning(
            "ClearTax %s: %s; retry %s of %s in %.1f s (request id %s)",
            call.endpoint,
            _short_reason(failure),
            attempt,
            policy.max_retries,
            delay,
            request_id,
        )
        yield Sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _recover(
    call: Call[T],
    settings: ClientSettings,
    failure: ClearTaxError,
    *,
    logger: logging.Logger,
    rng: random.Random,
) -> Operation[T | None]:
    """Look up whether an attempt with an unknown outcome took effect before sending it again."""
    assert call.recover is not None
    lookup = call.recover()
    logger.info(
        "ClearTax %s: outcome unknown (%s); looking the document up before sending it again",
        call.endpoint,
        _short_reason(failure),
    )
    try:
        found = yield from execute(lookup, settings, logger=logger, rng=rng)
    except ClearTaxNotFoundError:
        return None
    except ClearTaxError as lookup_failure:
        # Without knowing whether the first attempt landed, sending again could duplicate it.
        raise failure from lookup_failure
    if found is None:
        return None
    logger.info("ClearTax %s: found the earlier attempt's result; not sending again", call.endpoint)
    _check(call, found, failure.request_id)
    return found


def build_request(
    call: Call[Any], settings: ClientSettings, request_id: str, timeout: float
) -> httpx.Request:
    """Build the HTTP request of one attempt (the request id stays the same across attempts)."""
    vat = call.vat or settings.vat
    if not vat:
        raise ClearTaxConfigError(
            f"no VAT number for connection {settings.conn_id!r}: set the connection's 'vat' extra "
            "or pass vat= to the call",
            endpoint=call.endpoint,
        )
    headers = {
        "X-Cleartax-Auth-Token": settings.token,
        "vat": vat,
        "X-Request-Id": request_id,
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
        # What the drivers can decompress within the size limit (see _Decompressor).
        "Accept-Encoding": "gzip, deflate",
    }
    branch = call.branch or settings.branch
    if branch:
        headers["branch"] = branch
    if settings.language:
        headers["accept-language"] = settings.language
    headers.update(call.headers)
    try:
        return httpx.Request(
            call.method,
            settings.base_url + call.path,
            params={k: v for k, v in (call.params or {}).items() if v is not None},
            json=call.json,
            files=call.files,
            data=call.data,
            headers=headers,
            extensions={"timeout": httpx.Timeout(timeout, connect=min(timeout, 15.0)).as_dict()},
        )
    except (TypeError, ValueError, RecursionError) as error:
        # E.g. NaN or an object in the body: nothing can be sent, and retrying will not change that.
        raise ClearTaxValidationError(
            f"the request cannot be encoded ({type(error).__name__}: {str(error)[:_EXCERPT_BYTES]})",
            endpoint=call.endpoint,
        ) from None


def interpret(call: Call[T], reply: Reply, settings: ClientSettings, request_id: str) -> T:
    """Map one reply to the call's result or to a typed error."""
    context: dict[str, Any] = {"endpoint": call.endpoint, "status": reply.status, "request_id": request_id}
    status = reply.status
    if 200 <= status < 300:
        try:
            result = call.parse(reply)
        except (ValueError, ValidationError, TypeError, KeyError):
            raise ClearTaxResponseError(
                "ClearTax's answer could not be read", body_excerpt=excerpt(reply.body, settings), **context
            ) from None
        _check(call, result, request_id)
        return result
    if call.terminal_error is not None:
        final = call.terminal_error(reply)
        if final is not None:
            return final
    errors = scrub(error_entries(reply), settings)
    context["errors"] = errors
    if status == 401:
        raise ClearTaxAuthError(conn_id=settings.conn_id, **context)
    if status == 403:
        raise ClearTaxPermissionError(
            f"the token of connection {settings.conn_id!r} has no rights on VAT "
            f"{call.vat or settings.vat!r} for this operation (onboarding also needs an Admin user)",
            **context,
        )
    if status == 404:
        if call.none_on_404:
            return None  # type: ignore[return-value]
        raise ClearTaxNotFoundError("not found", **context)
    if status == 429:
        raise ClearTaxRateLimitError(
            "rate limit exceeded", retry_after=parse_retry_after(reply.headers.get("Retry-After")), **context
        )
    if status >= 500:
        raise ClearTaxServerError(_error_text(reply, errors, settings, "server error"), **context)
    if 300 <= status < 400:
        raise ClearTaxConfigError(
            "ClearTax answered with a redirect, which is not followed so the token never goes to "
            "another host; check the connection's base URL",
            **context,
        )
    raise ClearTaxValidationError(_error_text(reply, errors, settings, "request refused"), **context)


def _check(call: Call[T], result: T, request_id: str | None) -> None:
    if call.check is None:
        return
    reason = call.check(result)
    if reason is not None:
        errors = [e.to_api() for e in getattr(result, "error_list", [])]
        raise ClearTaxInvoiceRejectedError(
            reason, result=result, endpoint=call.endpoint, status=200, errors=errors, request_id=request_id
        )


def _is_certificate_failure(exc: BaseException) -> bool:
    """Tell whether a connection failed TLS verification: retrying cannot fix that."""
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def transport_error(call: Call[Any], exc: httpx.HTTPError, request_id: str) -> ClearTaxTransportError:
    """Wrap an httpx transport failure (its text names only the failure, never headers)."""
    kind = ClearTaxTimeoutError if isinstance(exc, httpx.TimeoutException) else ClearTaxTransportError
    return kind(f"no usable answer: {type(exc).__name__}", endpoint=call.endpoint, request_id=request_id)


def backoff_delay(
    attempt: int, retry_after: float | None, settings: ClientSettings, rng: random.Random
) -> float:
    """Seconds to wait before retry number ``attempt``: ``Retry-After`` if given, else full jitter."""
    policy = settings.retry
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after)
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (attempt - 1))
    return rng.uniform(0, ceiling)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Read ``Retry-After`` as seconds or as an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan" parses as a float, and sleeping NaN seconds fails (sync) or never ends (async).
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def error_entries(reply: Reply) -> list[dict[str, Any]]:
    """Find ClearTax's error objects in an error answer, whatever shape it came in."""
    try:
        data = reply.json()
    except ValueError:
        return []
    if isinstance(data, list):
        return [e for e in data if isinstance(e, dict)]
    if not isinstance(data, dict):
        return []
    for key in ("ErrorList", "errorList", "errors", "Errors"):
        entries = data.get(key)
        if isinstance(entries, list):
            return [e for e in entries if isinstance(e, dict)]
    if "ErrorCode" in data or "ErrorMessage" in data:
        return [data]
    return []


def scrub(value: Any, settings: ClientSettings) -> Any:
    """Replace the token wherever a server echoed it back (defence in depth for error texts)."""
    token = settings.token
    if isinstance(value, str):
        return value.replace(token, "***") if token and token in value else value
    if isinstance(value, list):
        return [scrub(v, settings) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v, settings) for k, v in value.items()}
    return value


def excerpt(body: bytes, settings: ClientSettings) -> str:
    """The first bytes of a body, as text, for error messages."""
    return scrub(body[:_EXCERPT_BYTES].decode("utf-8", errors="replace"), settings)


def _error_text(reply: Reply, errors: list[dict[str, Any]], settings: ClientSettings, default: str) -> str:
    if errors:
        return default
    if not reply.body:
        return f"{default} (empty body)"
    return f"{default}; body starts {excerpt(reply.body, settings)!r}"


def _short_reason(error: ClearTaxError) -> str:
    if error.status is not None:
        return f"HTTP {error.status}"
    return error.message


# --------------------------------------------------------------------------------------------
# Drivers: perform the actions, synchronously or on an event loop
# --------------------------------------------------------------------------------------------


class _Decompressor:
    """Undo a gzip or deflate content encoding a bounded piece at a time.

    httpx inflates each network read whole, so a few hundred kilobytes of gzip could become
    gigabytes in memory before the size limit is checked; here no piece exceeds ``_CHUNK``.
    """

    def __init__(self, encoding: str, request: httpx.Request) -> None:
        self.request = request
        self.raw_deflate_fallback = encoding == "deflate"
        # 32 + MAX_WBITS reads a gzip or a zlib header; bare deflate data is tried when that fails.
        self.inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
        self.started = False

    def pieces(self, data: bytes) -> Generator[bytes, None, None]:
        while data:
            try:
                piece = self.inflater.decompress(data, _CHUNK)
            except zlib.error as exc:
                if self.started or not self.raw_deflate_fallback:
                    raise _broken(exc, self.request) from None
                self.raw_deflate_fallback = False
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self.started = True
            data = self.inflater.unconsumed_tail
            if piece:
                yield piece

    def rest(self) -> bytes:
        try:
            return self.inflater.flush()
        except zlib.error as exc:
            raise _broken(exc, self.request) from None


def _broken(exc: zlib.error, request: httpx.Request) -> httpx.DecodingError:
    return httpx.DecodingError(f"the answer's compression is broken: {exc}", request=request)


def _decompressor(response: httpx.Response, request: httpx.Request) -> _Decompressor | None:
    codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        # Only gzip and deflate are asked for (Accept-Encoding); anything else cannot be read.
        raise httpx.DecodingError(
            f"the answer uses a content encoding that was not asked for: {', '.join(codings)[:50]}",
            request=request,
        )
    return _Decompressor(codings[0], request)


class _BodyReader:
    """Collect (or stream into the sink) a body, within the size limit and the overall deadline.

    httpx's read timeout is per chunk; the deadline stops a server that trickles bytes forever.
    The body is read raw and decompressed here, piece by piece, so the size limit also bounds
    what a compressed answer expands to.
    """

    def __init__(self, action: Send, response: httpx.Response) -> None:
        self.action = action
        self.response = response
        self.stream = action.sink is not None and 200 <= response.status_code < 300
        self.buffer = bytearray()
        self.size = 0
        self.file: IO[bytes] | None = None
        self.decompressor = _decompressor(response, action.request)

    def feed_raw(self, chunk: bytes) -> None:
        """Take one chunk as it came off the wire."""
        if self.decompressor is None:
            self.feed(chunk)
            return
        for piece in self.decompressor.pieces(chunk):
            self.feed(piece)

    def finish(self) -> Reply:
        """Take what the decompressor still holds, and return the reply."""
        if self.decompressor is not None and self.decompressor.started:
            for piece in self.decompressor.pieces(self.decompressor.rest()):
                self.feed(piece)
        return self.reply()

    def feed(self, chunk: bytes) -> None:
        if time.monotonic() > self.action.deadline:
            raise httpx.ReadTimeout("the answer did not complete in time", request=self.action.request)
        self.size += len(chunk)
        if self.stream:
            if self.file is None:
                self.file = _open_sink(self.action.sink)
            self.file.write(chunk)
            return
        if self.size > self.action.max_body:
            raise httpx.ReadError("the answer is larger than allowed", request=self.action.request)
        self.buffer += chunk

    def reply(self) -> Reply:
        if self.stream:
            self.close()
            if self.file is None:  # an empty body still leaves a file behind
                _open_sink(self.action.sink).close()
            return Reply(self.response.status_code, self.response.headers, streamed=self.size)
        return Reply(self.response.status_code, self.response.headers, bytes(self.buffer))

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


def _open_sink(sink: Any) -> IO[bytes]:
    if hasattr(sink, "open"):  # pathlib.Path and ObjectStoragePath alike
        parent = getattr(sink, "parent", None)
        if parent is not None and hasattr(parent, "mkdir"):
            parent.mkdir(parents=True, exist_ok=True)
        return sink.open("wb")
    return open(sink, "wb")


def run_sync(client: httpx.Client, operation: Operation[T]) -> T:
    """Drive ``operation`` with a blocking :class:`httpx.Client`."""
    outcome: Any = None
    failure: BaseException | None = None
    while True:
        try:
            action = operation.throw(failure) if failure is not None else operation.send(outcome)
        except StopIteration as stop:
            return stop.value
        outcome, failure = None, None
        try:
            if isinstance(action, Sleep):
                time.sleep(action.seconds)
                continue
            response = client.send(action.request, stream=True)
            reader = _BodyReader(action, response)
            try:
                if response.is_stream_consumed:  # a transport that read (and decoded) it already
                    reader.feed(response.content)
                else:
                    # As it arrives: a chunker would hold a trickle back from the deadline check.
                    for chunk in response.iter_raw():
                        reader.feed_raw(chunk)
                outcome = reader.finish()
            finally:
                reader.close()
                response.close()
        except httpx.HTTPError as exc:
            failure = exc


class Throttle(Protocol):
    """Paces the requests of :func:`run_async` (e.g. a client-side rate limiter shared by many calls)."""

    async def acquire(self, endpoint: str) -> None:
        """Wait until a request to ``endpoint`` may be sent."""

    def record(self, endpoint: str, status: int | None) -> None:
        """Learn how a request to ``endpoint`` went: its HTTP status, or ``None`` without an answer."""


async def run_async(
    client: httpx.AsyncClient, operation: Operation[T], *, throttle: Throttle | None = None
) -> T:
    """Drive ``operation`` with an :class:`httpx.AsyncClient`.

    :param throttle: asked before every request is sent (first attempts, retries and look-ups
        alike) and told its outcome; time spent waiting for it does not count against the deadline.
    """
    import asyncio

    outcome: Any = None
    failure: BaseException | None = None
    while True:
        try:
            action = operation.throw(failure) if failure is not None else operation.send(outcome)
        except StopIteration as stop:
            return stop.value
        outcome, failure = None, None
        try:
            if isinstance(action, Sleep):
                await asyncio.sleep(action.seconds)
                continue
            if throttle is not None:
                queued = time.monotonic()
                await throttle.acquire(action.endpoint)
                action.deadline += time.monotonic() - queued
            try:
                response = await client.send(action.request, stream=True)
            except httpx.HTTPError:
                if throttle is not None:
                    throttle.record(action.endpoint, None)
                raise
            if throttle is not None:
                throttle.record(action.endpoint, response.status_code)
            reader = _BodyReader(action, response)
            try:
                if response.is_stream_consumed:  # a transport that read (and decoded) it already
                    reader.feed(response.content)
                else:
                    # As it arrives: a chunker would hold a trickle back from the deadline check.
                    async for chunk in response.aiter_raw():
                        reader.feed_raw(chunk)
                outcome = reader.finish()
            finally:
                reader.close()
                await response.aclose()
        except httpx.HTTPError as exc:
            failure = exc
