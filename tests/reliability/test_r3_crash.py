"""R3: SIGKILL the task process mid-batch under a real scheduler; Airflow retries; nothing lost or doubled.

Real Airflow components (scheduler with its LocalExecutor, dag-processor, triggerer, api-server)
run ``dags/r3_crash.py``: one bulk submission, ``retries=2`` with a 2 s ``retry_delay``. The emulator
(child process) answers generate after 100 ms, so the batch takes seconds. Once the ledger holds a
quarter of the invoices, the test sends SIGKILL to the process running the task (its pid comes from
the DAG's ``on_execute_callback``). Airflow's supervisor sees the signal and sets the try up for
retry, the scheduler runs it again, and the second try resumes from the ledger. By the emulator's
counts every invoice reached ClearTax exactly once; the ledger holds them all, in the emulator's
status.

Size: ``CLEARTAX_RELIABILITY_SCALE=full`` (``make reliability``) sends 1,000 invoices; otherwise 300.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_cleartax.bulk import Ledger
from airflow_provider_cleartax.bulk.ledger import IN_FLIGHT_STATUSES
from airflow_provider_cleartax.emulator import EmulatorConfig, EmulatorProcess, FaultSpec
from airflow_provider_cleartax.emulator.config import DEFAULT_VAT
from scripts.local_airflow import LocalAirflow
from tests.conftest import sample_invoice

pytestmark = pytest.mark.slow

FULL_SCALE = os.environ.get("CLEARTAX_RELIABILITY_SCALE", "reduced") == "full"
INVOICES = 1000 if FULL_SCALE else 300
DAGS = Path(__file__).parent / "dags"
DAG_ID = "r3_crash"
#: Share of the batch the ledger must show done before the kill.
KILL_AFTER = 0.25


def _invoices(count: int) -> list[dict[str, Any]]:
    kinds = ("standard_invoice", "simplified_invoice")
    return [sample_invoice(kinds[i % 2], number=f"R3-{i:05d}") for i in range(count)]


def _unique_id(invoice: dict[str, Any]) -> str:
    number, code = invoice["ID"]["en"], invoice["InvoiceTypeCode"]["value"]
    return f"{DEFAULT_VAT}_{number}_{code}_{invoice['IssueDate'][:4]}"


def _expected_status(invoice: dict[str, Any]) -> str:
    return "CLEARED" if invoice["InvoiceTypeCode"]["name"].startswith("01") else "REPORTED"


def _pids(pidfile: Path) -> dict[int, int]:
    """Return ``{try number: pid}`` from the DAG's pid file."""
    if not pidfile.exists():
        return {}
    # A line being written may lack its newline: only complete lines count.
    lines = pidfile.read_text(encoding="utf-8").splitlines(keepends=True)
    pairs = [line.split() for line in lines if line.endswith("\n")]
    return {int(pair[0]): int(pair[1]) for pair in pairs if len(pair) == 2}


def _done(ledger: Path) -> int:
    return sum(1 for record in Ledger(ledger).state().values() if record["status"] not in IN_FLIGHT_STATUSES)


def test_a_task_killed_mid_batch_is_retried_and_submits_every_invoice_once(tmp_path: Path) -> None:
    batch = _invoices(INVOICES)
    source = tmp_path / "invoices.jsonl"
    source.write_text("".join(json.dumps(invoice) + "\n" for invoice in batch), encoding="utf-8")
    ledger, pidfile = tmp_path / "ledger", tmp_path / "task.pid"
    config = EmulatorConfig(faults={"generate": FaultSpec(latency_ms=100)}, rate_limits={})

    with (
        EmulatorProcess(config=config) as emulator,
        LocalAirflow(
            home=tmp_path / "airflow-home", dags_folder=DAGS, env=emulator.airflow_conn_env()
        ) as airflow,
    ):
        airflow.wait_for_dag(DAG_ID)
        airflow.api.unpause(DAG_ID)
        started = time.monotonic()
        run = airflow.api.trigger(
            DAG_ID, conf={"path": str(source), "ledger": str(ledger), "pidfile": str(pidfile)}
        )
        run_id = run["dag_run_id"]

        pid = airflow.wait_for(
            "the first try to start", lambda: _pids(pidfile).get(1), timeout=300, interval=0.2
        )
        done_at_kill = airflow.wait_for(
            "the ledger to show progress",
            lambda: (done := _done(ledger)) >= INVOICES * KILL_AFTER and done,
            timeout=300,
            interval=0.1,
        )
        assert done_at_kill < INVOICES, "the batch finished before the kill; slow the emulator down"
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic() - started

        final = airflow.wait_for_run(DAG_ID, run_id, timeout=600)
        seconds = time.monotonic() - started
        (ti,) = airflow.api.task_instances(DAG_ID, run_id)
        first_try_log = airflow.api.request(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/submit/logs/1",
            params={"full_content": True},
            headers={"Accept": "application/x-ndjson"},
        ).text
        summary = airflow.api.xcom(DAG_ID, run_id, "submit")["summary"]
        counts = emulator.submission_counts()
        statuses = emulator.invoice_statuses()

    assert final["state"] == "success", (final, ti)
    assert ti["state"] == "success" and ti["try_number"] == 2, ti
    pids = _pids(pidfile)
    assert set(pids) == {1, 2} and pids[1] != pids[2], pids
    assert not Path(f"/proc/{pids[1]}").exists()

    expected = {_unique_id(invoice): _expected_status(invoice) for invoice in batch}
    assert set(counts) == set(expected)
    assert collections.Counter(counts.values()) == {1: INVOICES}
    assert statuses == expected

    state = Ledger(ledger).state()
    assert {key: record["status"] for key, record in state.items()} == expected
    # The retry skipped what the killed try finished and looked up what it left in flight.
    assert (
        summary["skipped"] >= done_at_kill
        and summary["skipped"] + summary["sent"] + summary["looked_up"] >= INVOICES
    )
    reports = [line for line in first_try_log.splitlines() if "signal" in line]
    print(
        f"\nR3: {INVOICES} invoices; try 1 (pid {pids[1]}) killed at {killed_at:.1f} s, {done_at_kill} final "
        f"in the ledger; run {final['state']} after {seconds:.1f} s in {ti['try_number']} tries; "
        f"try 2: {json.dumps(summary)}; try 1's log on the kill: {reports}"
    )
