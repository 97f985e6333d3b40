"""Run a real Airflow on one machine: api-server, scheduler, dag-processor and triggerer, one process each.

Used by ``make demo`` and by the system tests, so both exercise the same set-up. The metadata
database is SQLite in a private ``AIRFLOW_HOME``; the simple auth manager makes everyone an admin,
which is fine for a loopback-only sandbox and nothing else.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

#: Components started after the database migration, in start order (stopped in reverse).
COMPONENTS = ("api-server", "dag-processor", "scheduler", "triggerer")
#: Keys of ``GET /api/v2/monitor/health`` that must all report ``healthy``.
HEALTH_KEYS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
#: Run states after which a DAG run does not change any more.
FINAL_RUN_STATES = frozenset({"success", "failed"})

Progress = Callable[[str], None]


class LocalAirflowError(RuntimeError):
    """A component did not start or died, or a DAG file did not import."""


class AirflowApiError(LocalAirflowError):
    """The REST API answered with an error status."""


def free_port() -> int:
    """Return a TCP port on the loopback interface that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quiet(message: str) -> None:
    """Swallow a progress line."""


@dataclass
class _Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log_tail(self, lines: int = 30) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class AirflowApi:
    """A small client of Airflow's REST API, authenticated as the simple auth manager's admin.

    :param base_url: the api-server's root URL, e.g. ``http://127.0.0.1:8080``.
    :param timeout: seconds per request.
    """

    def __init__(self, *, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)
        self._token: str | None = None

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def token(self) -> str:
        """Return a JWT; with every user an admin, ``GET /auth/token`` hands one out without credentials."""
        if self._token is None:
            response = self._client.get("/auth/token")
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send an authenticated request and return the response, whatever its status."""
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return self._client.request(method, path, headers=headers, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send an authenticated request and return its JSON; raise on an HTTP error status."""
        response = self.request(method, path, **kwargs)
        if response.is_error:
            raise AirflowApiError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        """Return ``GET /api/v2/monitor/health`` (needs no token)."""
        response = self._client.get("/api/v2/monitor/health")
        response.raise_for_status()
        return response.json()

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """Return the DAG's details, or ``None`` while the dag-processor has not stored it yet."""
        response = self.request("GET", f"/api/v2/dags/{dag_id}")
        if response.status_code == 404:
            return None
        if response.is_error:
            raise AirflowApiError(f"GET /api/v2/dags/{dag_id} answered {response.status_code}")
        return response.json()

    def import_errors(self) -> list[dict[str, Any]]:
        """Return the DAG files that failed to import."""
        return self.call("GET", "/api/v2/importErrors")["import_errors"]

    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG so the scheduler runs it."""
        self.call("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, *, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Trigger a run with no logical date (as the UI's "Trigger" does on Airflow 3) and return it."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Return one DAG run."""
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Return the task instances of a DAG run (mapped ones included)."""
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """Return the deserialized XCom a task pushed."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.call("GET", path, params={"deserialize": True})["value"]

    def test_connection(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        """Run a connection's Test (``POST /api/v2/connections/test``) without saving it."""
        return self.call("POST", "/api/v2/connections/test", json=dict(connection))


class LocalAirflow:
    """Airflow's components as child processes, sharing one SQLite metadata database.

    Each component runs in its own session (so Ctrl-C in a terminal reaches only this process,
    which then stops them in order) and logs to ``<home>/logs/<component>.log``.

    :param home: ``AIRFLOW_HOME``; created if missing.
    :param dags_folder: folder of the DAG files.
    :param env: further environment variables for every component (connections, variables...).
    :param port: api-server port; ``None`` picks a free one.
    :param progress: called with one line per step.
    """

    def __init__(
        self,
        *,
        home: Path,
        dags_folder: Path,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        progress: Progress = _quiet,
    ) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.port = port or free_port()
        self.log_ports = (free_port(), free_port())
        self.progress = progress
        self.extra_env = dict(env or {})
        self.components: dict[str, _Component] = {}
        self.api = AirflowApi(base_url=self.url)

    def __repr__(self) -> str:
        return f"LocalAirflow(url={self.url!r}, running={sorted(self.components)})"

    @property
    def url(self) -> str:
        """The api-server's root URL (UI and REST API)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        """Where the components' console output goes."""
        return self.home / "logs"

    def environment(self) -> dict[str, str]:
        """Return the environment of the components: this process's, minus its Airflow settings, plus ours."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env |= {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__PORT": str(self.port),
            # Tokens signed by the api-server must verify in the other components: one fixed secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": "local-airflow-not-a-secret",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            # The first parse happens at start; later changes to the folder show up within 30 s.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # The scheduler and triggerer serve task logs on fixed ports by default: two stacks would clash.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_ports[1]),
            "PYTHONUNBUFFERED": "1",
        }
        return env | self.extra_env

    def start(self, *, timeout: float = 180.0) -> Self:
        """Migrate the database, start every component and wait until all report healthy.

        :param timeout: seconds to wait for the components to become healthy.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        self.progress(f"Creating the Airflow metadata database in {self.home}")
        migrate_log = self.log_dir / "db-migrate.log"
        with migrate_log.open("wb") as log_file:
            migrated = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if migrated.returncode != 0:
            tail = "\n".join(migrate_log.read_text(errors="replace").splitlines()[-30:])
            raise LocalAirflowError(f"airflow db migrate failed ({migrated.returncode}):\n{tail}")
        try:
            for name in COMPONENTS:
                self._spawn(name, env)
            self.progress(f"Started {', '.join(COMPONENTS)}; waiting for them to report healthy")
            self.wait_healthy(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, env: Mapping[str, str]) -> None:
        args = [sys.executable, "-m", "airflow", name]
        if name == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            args,
            env=dict(env),
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.components[name] = _Component(name, process, log_path, log_file)
        self.progress(f"  {name} started (pid {process.pid}, log {log_path})")

    def check_alive(self) -> None:
        """Raise if a component has exited."""
        for component in self.components.values():
            code = component.process.poll()
            if code is not None:
                raise LocalAirflowError(
                    f"airflow {component.name} exited with code {code}; "
                    f"its log ends with:\n{component.log_tail()}"
                )

    def wait_for(self, what: str, check: Callable[[], Any], *, timeout: float, interval: float = 1.0) -> Any:
        """Call ``check`` until it returns something truthy; raise on timeout or when a component dies.

        :param what: what is awaited, for the error message.
        :param check: returns a truthy value when done; HTTP and API errors count as "not yet".
        :param timeout: seconds to wait.
        :param interval: seconds between checks.
        """
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.check_alive()
            try:
                result = check()
            except (httpx.HTTPError, AirflowApiError) as error:
                result, last_error = None, error
            if result:
                return result
            if time.monotonic() > deadline:
                detail = f" (last error: {last_error})" if last_error else ""
                raise LocalAirflowError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
            time.sleep(interval)

    def wait_healthy(self, *, timeout: float) -> dict[str, Any]:
        """Wait until the metadatabase, scheduler, triggerer and dag-processor all report healthy."""

        def healthy() -> dict[str, Any] | None:
            report = self.api.health()
            statuses = {key: (report.get(key) or {}).get("status") for key in HEALTH_KEYS}
            return report if all(status == "healthy" for status in statuses.values()) else None

        return self.wait_for("Airflow to report healthy", healthy, timeout=timeout)

    def wait_for_dag(self, dag_id: str, *, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag-processor stored ``dag_id``; raise at once if a DAG file failed to import."""

        def parsed() -> dict[str, Any] | None:
            errors = self.api.import_errors()
            if errors:
                details = "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in errors)
                raise LocalAirflowError(f"DAG files failed to import:\n{details}")
            return self.api.dag(dag_id)

        return self.wait_for(f"DAG {dag_id} to be parsed", parsed, timeout=timeout)

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a DAG run until it is final and return it.

        :param dag_id: the DAG.
        :param run_id: the run.
        :param timeout: seconds to wait.
        :param on_change: called with the run whenever its task states changed.
        """
        seen: dict[str, str | None] = {}

        def final() -> dict[str, Any] | None:
            run = self.api.dag_run(dag_id, run_id)
            if on_change is not None:
                states = {_ti_name(ti): ti["state"] for ti in self.api.task_instances(dag_id, run_id)}
                if states != seen:
                    seen.clear()
                    seen.update(states)
                    on_change({**run, "task_states": dict(states)})
            return run if run["state"] in FINAL_RUN_STATES else None

        return self.wait_for(f"run {run_id} of {dag_id} to finish", final, timeout=timeout, interval=2.0)

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop every component: SIGTERM by PID, wait, then kill what is left of its process group."""
        for name in reversed(list(self.components)):
            component = self.components.pop(name)
            process = component.process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.progress(
                        f"  {name} (pid {process.pid}) ignored SIGTERM for {timeout:.0f} s; killing it"
                    )
                    process.kill()
                    process.wait()
            # Task runners and parsing processes live in the component's session: leave none behind.
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            component.log_file.close()
            self.progress(f"  {name} stopped")
        self.api.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _ti_name(ti: Mapping[str, Any]) -> str:
    index = ti.get("map_index", -1)
    return ti["task_id"] if index is None or index < 0 else f"{ti['task_id']}[{index}]"


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt, so the clean-up of a ``finally`` runs for them too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
