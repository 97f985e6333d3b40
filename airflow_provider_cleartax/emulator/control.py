"""Misbehaviour, pacing and bookkeeping of the emulator: faults, rate limits, request log and admin API.

:class:`ControlMiddleware` is a plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs too
much per request for a load-test target) that wraps every ClearTax API call. The admin API under
:data:`~airflow_provider_cleartax.emulator.config.ADMIN_PREFIX` lets tests and people change the
behaviour of a running emulator and read what it has seen.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import itertools
import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from airflow_provider_cleartax.emulator.config import ADMIN_PREFIX, ENDPOINTS, EmulatorConfig, FaultSpec

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from airflow_provider_cleartax.emulator.api import Emulator

#: Names of the fault kinds, in the order they are drawn for each request.
FAULT_KINDS: tuple[str, ...] = ("error_5xx", "rate_limit", "connection_reset", "timeout_after_processing")
#: Endpoint key whose :class:`FaultSpec` applies to every endpoint without a spec of its own.
ALL_ENDPOINTS = "*"

_WINDOW_SECONDS = 60.0
_PROBABILITY_FIELDS = frozenset(FAULT_KINDS)
_FAULT_FIELDS = frozenset(f.name for f in dataclasses.fields(FaultSpec))
_TOKEN_HEADER = b"x-cleartax-auth-token"
_REQUEST_ID_HEADER = b"x-request-id"
_SERVER_ERRORS: dict[int, tuple[str, str]] = {
    500: ("4040", "Unhandled exception"),
    502: ("4040", "Bad gateway"),
    503: ("4040", "Service temporarily unavailable"),
}
#: Content length announced by a response that is cut off; the body never follows.
_DROPPED_CONTENT_LENGTH = b"512"

# Set while a request's connection is deliberately dropped, so the server's complaint about the
# unfinished response can be told apart from a real application error.
_dropping_connection: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "cleartax_emulator_dropping_connection", default=False
)


class DroppedConnectionLogFilter(logging.Filter):
    """Hide the ASGI server's error record for connections the emulator drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether ``record`` should be logged.

        :param record: a record of the ASGI server's error logger.
        """
        return not _dropping_connection.get()


def fault_spec_from_mapping(data: Mapping[str, Any]) -> FaultSpec:
    """Build a :class:`FaultSpec` from a JSON-like mapping, rejecting unknown keys and bad values.

    :param data: field names of :class:`FaultSpec` mapped to numbers.
    """
    if not isinstance(data, Mapping):
        raise ValueError("a fault spec must be a JSON object")
    unknown = sorted(set(data) - _FAULT_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown fault field(s) {', '.join(unknown)}; known: {', '.join(sorted(_FAULT_FIELDS))}"
        )
    values: dict[str, float] = {}
    for key, raw in data.items():
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError(f"fault field {key} must be a number")
        value = float(raw)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"fault field {key} must be a finite number >= 0")
        if key in _PROBABILITY_FIELDS and value > 1:
            raise ValueError(f"fault field {key} is a probability and must be <= 1")
        values[key] = value
    return FaultSpec(**values)


def validate_fault_endpoint(endpoint: str) -> str:
    """Return ``endpoint`` if faults can be set on it, else raise :class:`ValueError`.

    :param endpoint: a canonical endpoint name or ``"*"``.
    """
    if endpoint != ALL_ENDPOINTS and endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; known: *, {', '.join(ENDPOINTS)}")
    return endpoint


def validate_rate_limits(data: Mapping[str, Any]) -> dict[str, int]:
    """Return a copy of per-endpoint limits after checking names and values.

    :param data: canonical endpoint names mapped to requests per minute (positive integers).
    """
    if not isinstance(data, Mapping):
        raise ValueError("rate limits must be a JSON object")
    limits: dict[str, int] = {}
    for endpoint, value in data.items():
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {', '.join(ENDPOINTS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"rate limit of {endpoint} must be a positive integer")
        limits[endpoint] = value
    return limits


@dataclasses.dataclass(frozen=True)
class FaultDecision:
    """What the emulator does to one request, as drawn from the seeded RNG.

    :param fault: the fault kind (see :data:`FAULT_KINDS`) or ``None``.
    :param delay: seconds to wait before handling the request.
    :param status: HTTP status of an ``error_5xx`` fault.
    """

    fault: str | None
    delay: float
    status: int = 0


class Control:
    """Keep the mutable behaviour of a running emulator and everything it records about requests.

    All methods are meant to be called from the event loop that serves the requests.
    """

    def __init__(
        self,
        *,
        config: EmulatorConfig,
        routes: Iterable[BaseRoute],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        log_size: int = 10_000,
    ) -> None:
        """Build the control state from the start configuration.

        :param config: settings the emulator starts (and resets) with.
        :param routes: the API routes; their names identify endpoints in limits, faults and the log.
        :param clock: monotonic seconds, for rate-limit windows and durations.
        :param wall_clock: epoch seconds, for the request log's timestamps.
        :param log_size: how many request-log entries are kept (oldest dropped first).
        """
        self.config = config
        self._clock = clock
        self._wall_clock = wall_clock
        self._static_paths: dict[str, str] = {}
        self._pattern_paths: list[tuple[Any, str]] = []
        for route in routes:
            name = getattr(route, "name", None)
            if name not in ENDPOINTS:
                continue
            if getattr(route, "param_convertors", None):
                self._pattern_paths.append((route.path_regex, name))  # type: ignore[attr-defined]
            else:
                self._static_paths[route.path] = name  # type: ignore[attr-defined]
        self._known_tokens = frozenset(config.tokens)
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._sequence = itertools.count(1)
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._rng = random.Random()
        self.faults: dict[str, FaultSpec] = {}
        self.rate_limits: dict[str, int] = {}
        self.seed_value: int | None = None
        self.reset()

    def reset(self) -> None:
        """Return faults, limits, RNG seed, rate-limit windows and the request log to the start state."""
        self.faults = {name: dataclasses.replace(spec) for name, spec in self.config.faults.items()}
        self.rate_limits = dict(self.config.rate_limits)
        self._windows.clear()
        self._log.clear()
        self.seed(self.config.seed)

    def seed(self, value: int | None) -> None:
        """Reseed the RNG behind faults and jitter, so the same requests meet the same faults.

        :param value: the seed; ``None`` seeds from the operating system.
        """
        self.seed_value = value
        self._rng.seed(value)

    def set_faults(self, faults: Mapping[str, FaultSpec]) -> None:
        """Replace every fault spec.

        :param faults: endpoint names (or ``"*"``) mapped to specs; empty turns faults off.
        """
        self.faults = {validate_fault_endpoint(name): spec for name, spec in faults.items()}

    def set_fault(self, endpoint: str, spec: FaultSpec) -> None:
        """Set the fault spec of one endpoint (or of ``"*"``).

        :param endpoint: a canonical endpoint name or ``"*"``.
        :param spec: the misbehaviour to inject.
        """
        self.faults[validate_fault_endpoint(endpoint)] = spec

    def set_rate_limits(self, limits: Mapping[str, int]) -> None:
        """Replace every rate limit and forget the requests counted so far.

        :param limits: endpoint names mapped to requests per token per minute; empty turns limits off.
        """
        self.rate_limits = validate_rate_limits(limits)
        self._windows.clear()

    def endpoint_for(self, path: str) -> str | None:
        """Return the canonical endpoint name of a request path, or ``None`` for any other path.

        :param path: the request path, including the API prefix.
        """
        name = self._static_paths.get(path)
        if name is None:
            for pattern, candidate in self._pattern_paths:
                if pattern.match(path):
                    return candidate
        return name

    def consume_rate_limit(self, token: str | None, endpoint: str) -> int | None:
        """Count one request of ``token`` against the endpoint's sliding one-minute window.

        Unknown tokens are not counted: the API answers them 401 anyway, and counting them would
        let anyone grow the emulator's memory.

        :param token: the request's auth token.
        :param endpoint: the canonical endpoint name.
        :return: ``None`` if the request may pass, else the seconds after which it may be retried.
        """
        limit = self.rate_limits.get(endpoint)
        if limit is None or token not in self._known_tokens:
            return None
        now = self._clock()
        window = self._windows.get((token, endpoint))
        if window is None:
            window = self._windows[(token, endpoint)] = deque()
        horizon = now - _WINDOW_SECONDS
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= limit:
            return max(1, math.ceil(window[0] - horizon))
        window.append(now)
        return None

    def fault_spec_for(self, endpoint: str) -> FaultSpec | None:
        """Return the spec that applies to ``endpoint``: its own, else the ``"*"`` one, else ``None``.

        :param endpoint: the canonical endpoint name.
        """
        faults = self.faults
        if not faults:
            return None
        return faults.get(endpoint) or faults.get(ALL_ENDPOINTS)

    def draw(self, spec: FaultSpec) -> FaultDecision:
        """Draw the fate of one request from the seeded RNG.

        Kinds are tried in the order of :data:`FAULT_KINDS`, one independent draw each, and the
        first that hits wins; zero probabilities use no draw, so a replay needs the same specs.

        :param spec: the spec of the request's endpoint.
        """
        rng = self._rng
        fault = None
        for kind in FAULT_KINDS:
            probability = getattr(spec, kind)
            if probability > 0 and rng.random() < probability:
                fault = kind
                break
        delay_ms = spec.latency_ms + (rng.uniform(0.0, spec.jitter_ms) if spec.jitter_ms > 0 else 0.0)
        status = rng.choice(tuple(_SERVER_ERRORS)) if fault == "error_5xx" else 0
        return FaultDecision(fault=fault, delay=delay_ms / 1000.0, status=status)

    def new_log_entry(
        self, *, endpoint: str | None, method: str, path: str, request_id: str | None
    ) -> dict[str, Any]:
        """Start the request-log entry of one request (recorded by :meth:`record`).

        :param endpoint: the canonical endpoint name, ``None`` for paths outside the API.
        :param method: the HTTP method.
        :param path: the request path, without query string.
        :param request_id: the ``X-Request-Id`` header, if any.
        """
        return {
            "seq": 0,
            "time": self._wall_clock(),
            "request_id": request_id,
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "status": None,
            "duration_ms": 0.0,
            "fault": None,
            "throttled": False,
            "delay_ms": 0.0,
        }

    def record(self, entry: dict[str, Any]) -> None:
        """Append a finished entry to the request log.

        :param entry: an entry from :meth:`new_log_entry`.
        """
        entry["seq"] = next(self._sequence)
        self._log.append(entry)

    def request_log(self, since: int | None = None) -> list[dict[str, Any]]:
        """Return the logged requests in completion order.

        :param since: only entries with a ``seq`` greater than this.
        """
        if since is None:
            return list(self._log)
        return [entry for entry in self._log if entry["seq"] > since]

    def now(self) -> float:
        """Return the monotonic clock used for windows and durations."""
        return self._clock()


def _error_body(code: str, message: str) -> bytes:
    return json.dumps(
        {"ErrorList": [{"ErrorCode": code, "ErrorMessage": message, "ErrorSource": "CLEARTAX"}]}
    ).encode()


async def _send_json(
    send: Send, status: int, body: bytes, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class ControlMiddleware:
    """Apply rate limits and faults to ClearTax API requests and log every non-admin request."""

    def __init__(self, app: ASGIApp, *, control: Control) -> None:
        """Wrap an ASGI app.

        :param app: the application behind the middleware.
        :param control: the shared control state.
        """
        self.app = app
        self.control = control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        control = self.control
        started = control.now()
        token = request_id = None
        for name, value in scope["headers"]:
            if name == _TOKEN_HEADER:
                token = value.decode("latin-1")
            elif name == _REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")
        endpoint = control.endpoint_for(scope["path"])
        entry = control.new_log_entry(
            endpoint=endpoint, method=scope["method"], path=scope["path"], request_id=request_id
        )

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        try:
            if endpoint is None:
                await self.app(scope, receive, recording_send)
            else:
                await self._handle_api_call(scope, receive, send, recording_send, endpoint, token, entry)
        finally:
            entry["duration_ms"] = round((control.now() - started) * 1000.0, 3)
            control.record(entry)

    async def _handle_api_call(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        recording_send: Send,
        endpoint: str,
        token: str | None,
        entry: dict[str, Any],
    ) -> None:
        control = self.control
        retry_after = control.consume_rate_limit(token, endpoint)
        if retry_after is not None:
            entry["throttled"] = True
            limit = control.rate_limits[endpoint]
            body = _error_body("429", f"Too many requests: {endpoint} allows {limit} requests per minute")
            await _send_json(recording_send, 429, body, [(b"retry-after", str(retry_after).encode())])
            return
        spec = control.fault_spec_for(endpoint)
        if spec is None:
            await self.app(scope, receive, recording_send)
            return
        decision = control.draw(spec)
        if decision.delay > 0:
            entry["delay_ms"] = round(decision.delay * 1000.0, 3)
            await asyncio.sleep(decision.delay)
        entry["fault"] = decision.fault
        if decision.fault is None:
            await self.app(scope, receive, recording_send)
        elif decision.fault == "error_5xx":
            code, message = _SERVER_ERRORS[decision.status]
            await _send_json(recording_send, decision.status, _error_body(code, message))
        elif decision.fault == "rate_limit":
            body = _error_body("429", "Too many requests")
            await _send_json(recording_send, 429, body, [(b"retry-after", b"1")])
        elif decision.fault == "connection_reset":
            await self._drop_connection(send)
        else:
            await self._answer_late(scope, receive, recording_send, spec.hold_seconds)

    @staticmethod
    async def _drop_connection(send: Send) -> None:
        # ASGI cannot close a connection directly; announcing a body and ending the app without
        # it makes the server close the transport, which the client sees as a broken response.
        _dropping_connection.set(True)
        headers = [(b"content-type", b"application/json"), (b"content-length", _DROPPED_CONTENT_LENGTH)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def _answer_late(self, scope: Scope, receive: Receive, send: Send, hold_seconds: float) -> None:
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        try:
            # A client that gave up will never read the answer; stop holding the task then.
            await asyncio.wait_for(_wait_for_disconnect(receive), timeout=hold_seconds)
        except asyncio.TimeoutError:
            for message in held:
                await send(message)


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None


def admin_routes(*, control: Control, emulator: Emulator) -> list[Route]:
    """Return the routes of the admin API (no auth: the emulator is a loopback test tool).

    :param control: the control state the API reads and changes.
    :param emulator: the emulator whose business state the API exposes and resets.
    """

    def faults_json() -> dict[str, Any]:
        return {name: dataclasses.asdict(spec) for name, spec in control.faults.items()}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def get_faults(request: Request) -> JSONResponse:
        return JSONResponse(faults_json())

    async def put_faults(request: Request) -> JSONResponse:
        try:
            data = await _json_body(request)
            if not isinstance(data, dict):
                raise ValueError("faults must be a JSON object of endpoint -> fault spec")
            control.set_faults({name: fault_spec_from_mapping(spec) for name, spec in data.items()})
        except ValueError as exc:
            return _bad_request(str(exc))
        return JSONResponse(faults_json())

    async def put_endpoint_faults(request: Request) -> JSONResponse:
        try:
            spec = fault_spec_from_mapping(await _json_body(request))
            control.set_fault(request.path_params["endpoint"], spec)
        except ValueError as exc:
            return _bad_request(str(exc))
        return JSONResponse(faults_json())

    async def get_rate_limits(request: Request) -> JSONResponse:
        return JSONResponse(control.rate_limits)

    async def put_rate_limits(request: Request) -> JSONResponse:
        try:
            control.set_rate_limits(await _json_body(request))
        except ValueError as exc:
            return _bad_request(str(exc))
        return JSONResponse(control.rate_limits)

    async def submission_counts(request: Request) -> JSONResponse:
        return JSONResponse(emulator.submission_counts())

    async def invoice_statuses(request: Request) -> JSONResponse:
        return JSONResponse(emulator.invoice_statuses())

    async def request_log(request: Request) -> JSONResponse:
        since = request.query_params.get("since")
        try:
            since_seq = int(since) if since is not None else None
        except ValueError:
            return _bad_request("since must be an integer sequence number")
        return JSONResponse(control.request_log(since_seq))

    async def emails(request: Request) -> JSONResponse:
        return JSONResponse(emulator.sent_emails())

    async def reset(request: Request) -> JSONResponse:
        emulator.reset()
        control.reset()
        return JSONResponse({"status": "reset"})

    async def seed(request: Request) -> JSONResponse:
        try:
            data = await _json_body(request)
        except ValueError as exc:
            return _bad_request(str(exc))
        value = data.get("seed", False) if isinstance(data, dict) else False
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return _bad_request('body must be {"seed": <integer or null>}')
        control.seed(value)
        return JSONResponse({"seed": value})

    prefix = ADMIN_PREFIX
    return [
        Route(f"{prefix}/health", health, methods=["GET"]),
        Route(f"{prefix}/faults", get_faults, methods=["GET"]),
        Route(f"{prefix}/faults", put_faults, methods=["PUT"]),
        Route(f"{prefix}/faults/{{endpoint}}", put_endpoint_faults, methods=["PUT"]),
        Route(f"{prefix}/rate-limits", get_rate_limits, methods=["GET"]),
        Route(f"{prefix}/rate-limits", put_rate_limits, methods=["PUT"]),
        Route(f"{prefix}/submission-counts", submission_counts, methods=["GET"]),
        Route(f"{prefix}/invoice-statuses", invoice_statuses, methods=["GET"]),
        Route(f"{prefix}/requests", request_log, methods=["GET"]),
        Route(f"{prefix}/emails", emails, methods=["GET"]),
        Route(f"{prefix}/reset", reset, methods=["POST"]),
        Route(f"{prefix}/seed", seed, methods=["POST"]),
    ]
