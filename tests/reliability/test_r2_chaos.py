"""R2: a bulk run through injected 5xx, held answers, 429s and dropped connections, each invoice once.

The emulator runs in a child process with seeded faults on every endpoint (so on generate and on
the look-ups after an unknown outcome alike): 10 % 5xx, 5 % answers stored then held past the
client's 1 s generate timeout, 5 % 429 and 2 % dropped connections. The bulk operator runs under
``dag.test()`` with task retries allowed. By the emulator's own counts every invoice must have
reached its business logic exactly once and be cleared or reported, and the ledger must hold every
invoice with the status the emulator has.

Size: ``CLEARTAX_RELIABILITY_SCALE=full`` (``make reliability``) sends 1,000 invoices; otherwise 200.
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_cleartax.bulk import Ledger
from airflow_provider_cleartax.emulator import EmulatorConfig, EmulatorProcess, FaultSpec
from airflow_provider_cleartax.emulator.config import DEFAULT_VAT
from tests.conftest import sample_invoice, task_states, xcom_values

FULL_SCALE = os.environ.get("CLEARTAX_RELIABILITY_SCALE", "reduced") == "full"
INVOICES = 1000 if FULL_SCALE else 200
DAGS = Path(__file__).parent / "dags"
SEED = 20261203
#: Faults of the issue's R2, on every endpoint; held answers outlast the DAG's 1 s generate timeout.
FAULTS = FaultSpec(
    error_5xx=0.10, timeout_after_processing=0.05, rate_limit=0.05, connection_reset=0.02, hold_seconds=4
)


def _invoices(count: int) -> list[dict[str, Any]]:
    """Return ``count`` valid invoices, standard and simplified alternately, numbered uniquely."""
    kinds = ("standard_invoice", "simplified_invoice")
    return [sample_invoice(kinds[i % 2], number=f"R2-{i:05d}") for i in range(count)]


def _unique_id(invoice: dict[str, Any]) -> str:
    number, code = invoice["ID"]["en"], invoice["InvoiceTypeCode"]["value"]
    return f"{DEFAULT_VAT}_{number}_{code}_{invoice['IssueDate'][:4]}"


def _expected_status(invoice: dict[str, Any]) -> str:
    return "CLEARED" if invoice["InvoiceTypeCode"]["name"].startswith("01") else "REPORTED"


@pytest.fixture
def chaos_emulator(monkeypatch: pytest.MonkeyPatch):
    """A faulty emulator in a child process, its documented rate limits off, as ``cleartax_default``."""
    config = EmulatorConfig(faults={"*": FAULTS}, seed=SEED, rate_limits={})
    with EmulatorProcess(config=config) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_CLEARTAX_DEFAULT", emulator.airflow_conn_json())
        yield emulator


@pytest.fixture
def chaos_dag(airflow_db: None, monkeypatch: pytest.MonkeyPatch):
    """The R2 DAG; its folder is added as a second DAG bundle, as ``dag.test()`` runs only bundled DAGs."""
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    bundles = [
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "reliability", "classpath": local, "kwargs": {"path": str(DAGS)}},
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "r2_chaos.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("r2_chaos")


def test_every_invoice_is_cleared_or_reported_exactly_once_through_faults(
    chaos_dag, chaos_emulator, tmp_path
) -> None:
    batch = _invoices(INVOICES)
    source = tmp_path / "invoices.jsonl"
    source.write_text("".join(json.dumps(invoice) + "\n" for invoice in batch), encoding="utf-8")
    ledger = tmp_path / "ledger"

    started = time.monotonic()
    run = chaos_dag.test(run_conf={"path": str(source), "ledger": str(ledger)})
    seconds = time.monotonic() - started

    state, tries = task_states(run)["submit"]
    assert (run.state, state) == ("success", "success"), (run.state, state, tries)
    expected = {_unique_id(invoice): _expected_status(invoice) for invoice in batch}

    # The emulator's own view: each invoice reached the business logic once and is final.
    counts = chaos_emulator.submission_counts()
    assert set(counts) == set(expected)
    assert collections.Counter(counts.values()) == {1: INVOICES}
    assert chaos_emulator.invoice_statuses() == expected

    # The ledger is complete and agrees with the emulator.
    records = Ledger(ledger).state()
    assert {key: record["status"] for key, record in records.items()} == expected
    assert all(record.get("uuid") for record in records.values())

    # The faults really happened, on generate and on the look-ups.
    log = chaos_emulator.request_log()
    faults = collections.Counter((entry["endpoint"], entry["fault"]) for entry in log if entry["fault"])
    for fault in ("error_5xx", "rate_limit", "connection_reset", "timeout_after_processing"):
        assert faults[("generate", fault)] > 0, faults
    assert sum(n for (endpoint, _), n in faults.items() if endpoint == "get_invoice") > 0, faults

    summary = xcom_values(run, "submit")["return_value"]["summary"]
    requests = collections.Counter(entry["endpoint"] for entry in log)
    print(
        f"\nR2: {INVOICES} invoices in {seconds:.1f} s, task tries {tries}; requests {dict(requests)}; "
        f"faults {dict(faults)}; last try's summary {json.dumps(summary)}"
    )
