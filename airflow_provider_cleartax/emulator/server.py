"""Run the emulator over real HTTP: in a background thread of this process, or as a child process."""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import httpx

from airflow_provider_cleartax.emulator.config import ADMIN_PREFIX, API_PREFIX, EmulatorConfig, FaultSpec

if TYPE_CHECKING:
    from types import TracebackType

    import uvicorn
    from starlette.applications import Starlette
    from typing_extensions import Self

    from airflow_provider_cleartax.emulator.api import Emulator
    from airflow_provider_cleartax.emulator.control import Control

log = logging.getLogger(__name__)

#: Connection id the provider's hook uses by default.
DEFAULT_CONN_ID = "cleartax_default"
#: Line prefixes the command line prints on start; :class:`EmulatorProcess` reads them back.
BASE_URL_LINE = "Base URL:"
ADMIN_URL_LINE = "Admin API:"


def _http_protocol() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def airflow_connection_json(
    config: EmulatorConfig,
    base_url: str,
    *,
    token: str | None = None,
    vat: str | None = None,
    device_id: str | None = None,
) -> str:
    """Return the JSON of an Airflow connection (``AIRFLOW_CONN_<ID>``) that points at an emulator.

    :param config: the emulator's settings, used for defaults.
    :param base_url: the emulator's API base URL.
    :param token: auth token; defaults to the first configured token.
    :param vat: seller VAT; defaults to the token's first allowed VAT, else the first known VAT.
    :param device_id: device id; defaults to the first device registered for the VAT (omitted if none).
    """
    if token is None:
        if not config.tokens:
            raise ValueError("the emulator has no tokens configured")
        token = next(iter(config.tokens))
    if vat is None:
        allowed = config.tokens.get(token) or tuple(config.vats)
        vat = allowed[0] if allowed else None
    if device_id is None:
        device_id = next((device for device, owner in config.devices.items() if owner == vat), None)
    extra = {key: value for key, value in (("vat", vat), ("device_id", device_id)) if value is not None}
    return json.dumps({"conn_type": "cleartax", "host": base_url, "password": token, "extra": extra})


def conn_env_var(conn_id: str) -> str:
    """Return the environment variable name Airflow reads connection ``conn_id`` from.

    :param conn_id: the connection id.
    """
    return f"AIRFLOW_CONN_{conn_id.upper()}"


class _EmulatorHandle:
    """URLs and admin-API helpers shared by the in-thread and the child-process emulator."""

    config: EmulatorConfig
    _root_url: str | None = None
    _admin_client: httpx.Client | None = None

    @property
    def root_url(self) -> str:
        """Return the server root, e.g. ``http://127.0.0.1:8080``."""
        if self._root_url is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._root_url

    @property
    def base_url(self) -> str:
        """Return the API base URL (what a ClearTax connection's host is set to)."""
        return self.root_url + API_PREFIX

    @property
    def admin_url(self) -> str:
        """Return the base URL of the admin API."""
        return self.root_url + ADMIN_PREFIX

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._admin_client is None:
            self._admin_client = httpx.Client(base_url=self.admin_url, timeout=30.0)
        response = self._admin_client.request(method, path, **kwargs)
        if response.status_code == 400:
            raise ValueError(response.json().get("error", response.text))
        response.raise_for_status()
        return response.json()

    def _close_admin_client(self) -> None:
        if self._admin_client is not None:
            self._admin_client.close()
            self._admin_client = None

    def health(self) -> dict[str, Any]:
        """Return the admin API's health answer."""
        return self._admin("GET", "/health")

    def faults(self) -> dict[str, dict[str, float]]:
        """Return the fault specs in force, by endpoint."""
        return self._admin("GET", "/faults")

    def set_faults(self, endpoint: str, spec: FaultSpec | Mapping[str, float]) -> None:
        """Inject faults into one endpoint, or into all with ``"*"``.

        :param endpoint: a canonical endpoint name (see ``config.ENDPOINTS``) or ``"*"``.
        :param spec: the faults; a mapping may name only the fields it changes.
        """
        body = dataclasses.asdict(spec) if isinstance(spec, FaultSpec) else dict(spec)
        self._admin("PUT", f"/faults/{endpoint}", json=body)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._admin("PUT", "/faults", json={})

    def rate_limits(self) -> dict[str, int]:
        """Return the per-minute rate limits in force, by endpoint."""
        return self._admin("GET", "/rate-limits")

    def set_rate_limits(self, limits: Mapping[str, int]) -> None:
        """Replace the per-token per-minute rate limits; an empty mapping turns them off.

        :param limits: canonical endpoint names mapped to requests per minute.
        """
        self._admin("PUT", "/rate-limits", json=dict(limits))

    def seed(self, value: int | None) -> None:
        """Reseed the RNG behind faults and jitter.

        :param value: the seed; ``None`` seeds from the operating system.
        """
        self._admin("POST", "/seed", json={"seed": value})

    def reset(self) -> None:
        """Forget all invoices, devices, emails, counters and logged requests; restore start settings."""
        self._admin("POST", "/reset")

    def submission_counts(self) -> dict[str, int]:
        """Return how many generate requests reached the business logic, by invoice ``uniqueId``."""
        return self._admin("GET", "/submission-counts")

    def invoice_statuses(self) -> dict[str, str]:
        """Return the ``InvoiceStatus`` of every stored invoice, by ``uniqueId``."""
        return self._admin("GET", "/invoice-statuses")

    def sent_emails(self) -> list[dict[str, Any]]:
        """Return the emails the emulator pretended to send."""
        return self._admin("GET", "/emails")

    def request_log(self, since: int | None = None) -> list[dict[str, Any]]:
        """Return the logged API requests (never with tokens or headers other than ``X-Request-Id``).

        :param since: only entries whose ``seq`` is greater than this.
        """
        params = {"since": since} if since is not None else None
        return self._admin("GET", "/requests", params=params)

    def airflow_conn_json(
        self, *, token: str | None = None, vat: str | None = None, device_id: str | None = None
    ) -> str:
        """Return the JSON value of an ``AIRFLOW_CONN_<ID>`` variable pointing at this emulator.

        :param token: auth token; defaults to the first configured token.
        :param vat: seller VAT; defaults to the token's first allowed VAT.
        :param device_id: device id; defaults to the first device registered for the VAT.
        """
        return airflow_connection_json(self.config, self.base_url, token=token, vat=vat, device_id=device_id)

    def airflow_conn_env(
        self,
        conn_id: str = DEFAULT_CONN_ID,
        *,
        token: str | None = None,
        vat: str | None = None,
        device_id: str | None = None,
    ) -> dict[str, str]:
        """Return ``{"AIRFLOW_CONN_<ID>": <json>}``, ready to merge into a process environment.

        :param conn_id: the Airflow connection id.
        :param token: auth token; defaults to the first configured token.
        :param vat: seller VAT; defaults to the token's first allowed VAT.
        :param device_id: device id; defaults to the first device registered for the VAT.
        """
        return {conn_env_var(conn_id): self.airflow_conn_json(token=token, vat=vat, device_id=device_id)}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


def _install_log_filter() -> None:
    from airflow_provider_cleartax.emulator.control import DroppedConnectionLogFilter

    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, DroppedConnectionLogFilter) for existing in server_log.filters):
        server_log.addFilter(DroppedConnectionLogFilter())


class EmulatorServer(_EmulatorHandle):
    """Serve the emulator with uvicorn from a background thread of the current process.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. The app is built inside the
    server thread, so everything it holds lives on that thread's event loop; the helper methods go
    through the admin API and are safe to call from any thread.
    """

    def __init__(
        self,
        *,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 15.0,
    ) -> None:
        """Prepare a server; nothing listens before :meth:`start`.

        :param config: emulator settings; defaults to :class:`EmulatorConfig`.
        :param host: interface to listen on.
        :param port: TCP port; ``0`` picks a free one.
        :param startup_timeout: seconds :meth:`start` waits for the server to be ready.
        """
        self.config = config if config is not None else EmulatorConfig()
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self._app: Starlette | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"EmulatorServer(root_url={self._root_url!r})"

    @property
    def app(self) -> Starlette:
        """Return the running Starlette app."""
        if self._app is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._app

    @property
    def emulator(self) -> Emulator:
        """Return the emulator (touch it only from the server's event loop; prefer the helpers)."""
        return self.app.state.emulator

    @property
    def control(self) -> Control:
        """Return the control state (touch it only from the server's event loop; prefer the helpers)."""
        return self.app.state.control

    @property
    def running(self) -> bool:
        """Return whether the server thread is up and serving."""
        return (
            self._thread is not None
            and self._thread.is_alive()
            and self._server is not None
            and self._server.started
            and not self._server.should_exit
        )

    def start(self) -> Self:
        """Bind the socket, start serving in a daemon thread and wait until requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("the emulator server is already started")
        import uvicorn

        from airflow_provider_cleartax.emulator.app import create_app

        _install_log_filter()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose listening
        # socket names it, and without it every answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        url_host = f"[{self.host}]" if family == socket.AF_INET6 else self.host

        def build_app() -> Starlette:
            self._app = create_app(self.config)
            return self._app

        uvicorn_config = uvicorn.Config(
            build_app,
            factory=True,
            loop="asyncio",
            http=_http_protocol(),
            lifespan="on",
            log_level="warning",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(uvicorn_config)
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name=f"cleartax-emulator-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                self._thread.join(5)
                self._thread = None
                reason = "timed out" if self._failure is None else f"failed: {self._failure!r}"
                raise RuntimeError(
                    f"the emulator server on {url_host}:{self.port} {reason}"
                ) from self._failure
            time.sleep(0.01)
        self._root_url = f"http://{url_host}:{self.port}"
        return self

    def _serve(self, sock: socket.socket) -> None:
        try:
            assert self._server is not None
            self._server.run(sockets=[sock])
        except BaseException as exc:  # uvicorn exits with SystemExit when the app fails to start
            self._failure = exc
        finally:
            sock.close()

    def stop(self) -> None:
        """Stop serving and wait for the server thread; held (delayed) answers are cut short."""
        self._close_admin_client()
        if self._thread is None or self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5)
        self._thread = None
        self._root_url = None


class EmulatorProcess(_EmulatorHandle):
    """Run the emulator as a child process (``python -m airflow_provider_cleartax.emulator``).

    For tests whose HTTP clients live outside the test process (Airflow's scheduler, triggerer or
    task processes) or that must not share the test process's CPU. The same helpers as
    :class:`EmulatorServer` work through the admin API.
    """

    def __init__(
        self,
        *,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare a child process; nothing runs before :meth:`start`.

        :param config: emulator settings, passed as command-line options.
        :param host: interface to listen on.
        :param port: TCP port; ``0`` picks a free one.
        :param startup_timeout: seconds :meth:`start` waits for the printed base URL.
        :param extra_args: further command-line options.
        :param env: environment of the child; defaults to this process's.
        """
        self.config = config if config is not None else EmulatorConfig()
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.env = dict(env) if env is not None else None
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=50)
        self._readers: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"EmulatorProcess(root_url={self._root_url!r})"

    @property
    def pid(self) -> int | None:
        """Return the child's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        """Return the command line the child is started with."""
        from airflow_provider_cleartax.emulator.cli import config_to_argv

        return [
            sys.executable,
            "-m",
            "airflow_provider_cleartax.emulator",
            *config_to_argv(self.config),
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]

    def start(self) -> Self:
        """Start the child and wait until it prints its base URL."""
        if self._process is not None:
            raise RuntimeError("the emulator process is already started")
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(self._process.stdout,), daemon=True),
            threading.Thread(target=self._stderr_tail.extend, args=(self._process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while self._root_url is None:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                details = "".join(self._stderr_tail).strip()
                raise RuntimeError(f"the emulator process did not start: {details or 'no output'}")
            if line.startswith(BASE_URL_LINE):
                base_url = line[len(BASE_URL_LINE) :].strip()
                self._root_url = base_url[: -len(API_PREFIX)]
        return self

    def _read_stdout(self, stream: IO[str]) -> None:
        # Drained to the end so the child never blocks on a full pipe; None marks the end.
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def stop(self) -> None:
        """Ask the child to stop (SIGTERM), kill it if it does not, and reap it."""
        self._close_admin_client()
        process, self._process = self._process, None
        self._root_url = None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                log.warning("The emulator process %s ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait()
        for reader in self._readers:
            reader.join(5)
        self._readers = []
