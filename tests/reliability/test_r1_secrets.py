"""R1: no auth token in anything Airflow and the provider produce when calls fail.

Real Airflow components (api-server, scheduler with LocalExecutor, dag-processor, triggerer) run
the DAGs of ``dags/r1_secrets.py`` against two emulators in child processes: one that knows the
tokens but restricts them to one VAT, one that answers every request with a 5xx. Each DAG makes
the provider's operators, deferrable sensors (also one that defers at once, so the triggerer meets
the failure), the bulk operator and the bare hook fail with 401, 403, 5xx or a rejection, with a
plain token and with one full of characters that need escaping. Then everything the runs produced
is searched for every token in raw, URL-encoded, JSON-escaped, repr and HTML forms, and for the
token's random core: files under ``AIRFLOW_HOME`` (task logs, each component's console output,
the metadata database, the bulk ledgers), the REST API's task instances (rendered fields), XCom
entries, task logs and event log, and both emulators' request logs.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from airflow_provider_cleartax.emulator import EmulatorConfig, EmulatorProcess, FaultSpec
from airflow_provider_cleartax.emulator.config import DEFAULT_DEVICE_ID, DEFAULT_VAT
from scripts.local_airflow import LocalAirflow

pytestmark = pytest.mark.slow

DAGS = Path(__file__).parent / "dags"
OTHER_VAT = "311111111111113"
FAILURES = ("401", "403", "5xx", "rejected")
KINDS = ("plain", "special")
#: Characters that JSON, URLs, HTML, shells and Python reprs all escape differently.
SPECIAL = "a+b/c=d%e\"f'g<h>&i;j\\k"
#: Seconds the whole set of runs may take on a loaded 2-core machine.
RUN_TIMEOUT = 600.0
#: Tasks expected to fail in every R1 DAG; ``hook_calls`` catches its errors and succeeds.
FAILING_TASKS = ("generate", "generate_async", "sensor", "sensor_in_triggerer", "bulk")


@dataclass
class Secrets:
    """The tokens of one kind: the one the emulator accepts, and one it has never seen."""

    good: str
    wrong: str

    def all(self) -> dict[str, str]:
        return {"good": self.good, "wrong": self.wrong}


def make_secrets(kind: str) -> Secrets:
    """Return fresh tokens of a kind; each ends in a random core found in every encoding of it."""
    prefix = SPECIAL if kind == "special" else "plain"
    return Secrets(good=f"{prefix}-{secrets.token_hex(16)}", wrong=f"{prefix}-{secrets.token_hex(16)}")


def forms(secret: str) -> set[str]:
    """Return the forms a leak of ``secret`` could take in a log, a URL, JSON or HTML."""
    core = secret.rsplit("-", 1)[1]
    return {
        secret,
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(json.dumps(secret))[1:-1],
        repr(secret)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        core,
    }


@dataclass
class Haystack:
    """Everything the runs produced, by where it came from."""

    texts: dict[str, bytes] = field(default_factory=dict)

    def add(self, where: str, content: bytes | str) -> None:
        self.texts[where] = content.encode("utf-8") if isinstance(content, str) else content

    def find(self, needle: str) -> list[str]:
        """Return the places that contain ``needle``."""
        raw = needle.encode("utf-8")
        return [where for where, text in self.texts.items() if raw in text]


@dataclass
class R1Run:
    """The finished runs of every R1 DAG and what they produced."""

    tokens: dict[str, Secrets]
    canary: str
    states: dict[str, dict[str, str | None]]
    hook_errors: dict[str, list[dict[str, Any]]]
    haystack: Haystack
    seconds: float


def _connection(emulator: EmulatorProcess, token: str, vat: str) -> str:
    extra = {
        "vat": vat,
        "device_id": DEFAULT_DEVICE_ID,
        "max_retries": 1,
        "backoff_base": 0.05,
        "backoff_cap": 0.2,
        "request_timeout": 5,
        "generate_timeout": 5,
    }
    return json.dumps({"conn_type": "cleartax", "host": emulator.base_url, "password": token, "extra": extra})


def _environment(
    tokens: dict[str, Secrets], healthy: EmulatorProcess, failing: EmulatorProcess, canary: str
) -> dict[str, str]:
    env = {"AIRFLOW_VAR_R1_CANARY": canary}
    for kind, pair in tokens.items():
        per_failure = {
            "401": (healthy, pair.wrong, DEFAULT_VAT),
            "403": (healthy, pair.good, OTHER_VAT),
            "5xx": (failing, pair.good, DEFAULT_VAT),
            "rejected": (healthy, pair.good, DEFAULT_VAT),
        }
        for failure, (emulator, token, vat) in per_failure.items():
            env[f"AIRFLOW_CONN_R1_{failure.upper()}_{kind.upper()}"] = _connection(emulator, token, vat)
    return env


def _collect_api(airflow: LocalAirflow, runs: dict[str, dict[str, Any]], haystack: Haystack) -> None:
    api = airflow.api
    for dag_id, run in runs.items():
        base = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
        haystack.add(f"api {base}", api.request("GET", base).content)
        for ti in api.task_instances(dag_id, run["dag_run_id"]):
            task = f"{base}/taskInstances/{ti['task_id']}"
            haystack.add(f"api {task}", api.request("GET", task).content)
            entries = api.call("GET", f"{task}/xcomEntries")["xcom_entries"]
            for entry in entries:
                path = f"{task}/xcomEntries/{entry['key']}"
                for deserialize in (True, False):
                    response = api.request("GET", path, params={"deserialize": deserialize})
                    haystack.add(f"api {path}?deserialize={deserialize}", response.content)
            for try_number in range(1, (ti["try_number"] or 0) + 1):
                path = f"{task}/logs/{try_number}"
                for accept in ("application/json", "text/plain"):
                    response = api.request(
                        "GET", path, params={"full_content": True}, headers={"Accept": accept}
                    )
                    haystack.add(f"api {path} ({accept})", response.content)
    events = api.request("GET", "/api/v2/eventLogs", params={"limit": 1000})
    haystack.add("api /api/v2/eventLogs", events.content)


def _collect_files(home: Path, haystack: Haystack) -> None:
    for path in sorted(home.rglob("*")):
        if path.is_file():
            haystack.add(f"file {path.relative_to(home)}", path.read_bytes())


@pytest.fixture(scope="module")
def r1_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[R1Run]:
    """Run every R1 DAG once on real Airflow components and collect what they produced."""
    tokens = {kind: make_secrets(kind) for kind in KINDS}
    canary = f"{SPECIAL}-canary-{secrets.token_hex(8)}"
    restricted = {pair.good: (DEFAULT_VAT,) for pair in tokens.values()}
    vats = {DEFAULT_VAT: "Emulator Trading Co.", OTHER_VAT: "Other Trading Co."}
    healthy = EmulatorProcess(config=EmulatorConfig(tokens=restricted, vats=vats, async_report_delay=0.5))
    failing = EmulatorProcess(
        config=EmulatorConfig(tokens=restricted, vats=vats, faults={"*": FaultSpec(error_5xx=1.0)}, seed=1)
    )
    home = tmp_path_factory.mktemp("r1") / "airflow-home"
    haystack = Haystack()
    with healthy, failing:
        env = _environment(tokens, healthy, failing, canary)
        with LocalAirflow(home=home, dags_folder=DAGS, env=env) as airflow:
            dag_ids = [f"r1_{failure}_{kind}" for failure in FAILURES for kind in KINDS] + ["r1_canary"]
            for dag_id in dag_ids:
                airflow.wait_for_dag(dag_id)
            started = time.monotonic()
            runs = {}
            for dag_id in dag_ids:
                airflow.api.unpause(dag_id)
                runs[dag_id] = airflow.api.trigger(dag_id)
            deadline = started + RUN_TIMEOUT
            for dag_id, run in runs.items():
                runs[dag_id] = airflow.wait_for_run(
                    dag_id, run["dag_run_id"], timeout=max(1.0, deadline - time.monotonic())
                )
            seconds = time.monotonic() - started
            states = {
                dag_id: {
                    ti["task_id"]: ti["state"] for ti in airflow.api.task_instances(dag_id, run["dag_run_id"])
                }
                for dag_id, run in runs.items()
            }
            hook_errors = {
                dag_id: airflow.api.xcom(dag_id, run["dag_run_id"], "hook_calls")
                for dag_id, run in runs.items()
                if dag_id != "r1_canary"
            }
            _collect_api(airflow, runs, haystack)
        for name, emulator in (("healthy", healthy), ("failing", failing)):
            haystack.add(f"emulator {name} request log", json.dumps(emulator.request_log()))
    # After the components stopped, so their consoles' last lines are searched too.
    _collect_files(home, haystack)
    yield R1Run(tokens, canary, states, hook_errors, haystack, seconds)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("failure", FAILURES)
def test_every_tool_failed_for_the_intended_reason(r1_run: R1Run, failure: str, kind: str) -> None:
    dag_id = f"r1_{failure}_{kind}"
    states = r1_run.states[dag_id]
    assert {task: states[task] for task in FAILING_TASKS} == dict.fromkeys(FAILING_TASKS, "failed"), states
    assert states["hook_calls"] == "success"
    lookup, generate = r1_run.hook_errors[dag_id]
    expected = {
        "401": ("ClearTaxAuthError", "ClearTaxAuthError"),
        "403": ("ClearTaxPermissionError", "ClearTaxPermissionError"),
        "5xx": ("ClearTaxServerError", "ClearTaxServerError"),
        "rejected": ("ClearTaxNotFoundError", "ClearTaxInvoiceRejectedError"),
    }[failure]
    assert (lookup["type"], generate["type"]) == expected, (lookup, generate)
    if failure in ("401", "403"):
        assert dag_id in generate["str"]  # the message names the connection, not its token


def test_the_search_finds_a_marker_the_tasks_did_write(r1_run: R1Run) -> None:
    """Control: a value a task logged and returned is found, in its escaped forms too."""
    places = {where for form in forms(r1_run.canary) for where in r1_run.haystack.find(form)}
    assert any(where.startswith("file logs/dag_id=r1_canary/") for where in places), places
    assert any("/xcomEntries/return_value" in where for where in places), places
    assert any(where.endswith("/logs/1 (application/json)") for where in places), places
    assert r1_run.haystack.find(json.dumps(r1_run.canary)[1:-1]), "JSON-escaped form not seen"


@pytest.mark.parametrize("kind", KINDS)
def test_no_token_in_anything_the_runs_produced(r1_run: R1Run, kind: str) -> None:
    haystack = r1_run.haystack
    task_logs = [where for where in haystack.texts if where.startswith("file logs/dag_id=r1_")]
    components = [
        f"file logs/{name}.log" for name in ("api-server", "scheduler", "dag-processor", "triggerer")
    ]
    assert len(task_logs) >= len(FAILURES) * len(KINDS) * (len(FAILING_TASKS) + 1), task_logs
    assert set(components) <= set(haystack.texts)
    assert any("ledgers" in where for where in haystack.texts), "the bulk operator wrote no ledger"
    leaks = {
        f"{which} token as {form!r}": places
        for which, secret in r1_run.tokens[kind].all().items()
        for form in forms(secret)
        if (places := haystack.find(form))
    }
    assert leaks == {}
    size = sum(len(text) for text in haystack.texts.values())
    print(
        f"\nR1 ({kind}): runs took {r1_run.seconds:.0f} s; "
        f"searched {len(haystack.texts)} places, {size:,} bytes"
    )
