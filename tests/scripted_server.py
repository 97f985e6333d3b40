"""A loopback HTTP server that answers from a script, for the client's edge cases.

The emulator is the faithful ClearTax; this server produces what a faithful ClearTax never
would (an HTML 502, truncated JSON, a redirect, a trickle) and records every request it got.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Handler:
    """Answer ``payload`` as JSON."""

    async def handler(request: Request) -> Response:
        return JSONResponse(payload, status_code=status, headers=headers)

    return handler


def raw_reply(status: int, body: bytes, content_type: str = "application/json", **headers: str) -> Handler:
    """Answer ``body`` exactly as given."""

    async def handler(request: Request) -> Response:
        return Response(body, status_code=status, media_type=content_type, headers=headers)

    return handler


def slow_reply(seconds: float, then: Handler) -> Handler:
    """Wait before answering (the client should time out first)."""

    async def handler(request: Request) -> Response:
        await asyncio.sleep(seconds)
        return await then(request)

    return handler


@dataclass
class ScriptedServer:
    """Serve scripted answers per path suffix; unscripted paths answer 599."""

    scripts: dict[str, deque[Handler]] = field(default_factory=dict)
    defaults: dict[str, Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    def script(self, path: str, *handlers: Handler, default: Handler | None = None) -> None:
        """Answer requests whose path ends with ``path`` with ``handlers`` in turn, then ``default``."""
        self.scripts.setdefault(path, deque()).extend(handlers)
        if default is not None:
            self.defaults[path] = default

    def reset(self) -> None:
        self.scripts.clear()
        self.defaults.clear()
        self.requests.clear()

    def hits(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(path)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        self.requests.append(
            Recorded(
                request.method,
                request.url.path,
                request.url.query,
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        handler = self._handler_for(request.url.path)
        response = await handler(request) if handler else Response("unscripted", status_code=599)
        await response(scope, receive, send)

    def _handler_for(self, path: str) -> Handler | None:
        for suffix, queue in self.scripts.items():
            if path.endswith(suffix):
                if queue:
                    return queue.popleft()
                return self.defaults.get(suffix)
        return None

    def start(self) -> ScriptedServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self, log_level="error", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
