"""The bulk engine against the emulator over loopback HTTP: exactly once, resumable, bounded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from airflow_provider_cleartax.bulk import BulkSubmitter, Ledger, RateLimiter
from airflow_provider_cleartax.bulk.ledger import SENDING
from airflow_provider_cleartax.emulator import control
from airflow_provider_cleartax.invoices import Seller
from tests.bulk.conftest import VAT, invoices, unique_id, write_jsonl

NO_LIMITS = RateLimiter(limits={})


def run(hook, ledger, source, **options):
    options.setdefault("rate_limiter", RateLimiter(limits={}))
    return asyncio.run(BulkSubmitter(hook=hook, ledger=ledger, **options).run(source))


@pytest.mark.cleartax_emulator(faults={"generate": {"latency_ms": 15}})
def test_two_hundred_invoices_are_cleared_or_reported_once(fast_hook, cleartax_emulator, tmp_path) -> None:
    batch = invoices(150, "BLK-STD") + invoices(70, "BLK-SIM", kind="simplified_invoice")
    summary = run(fast_hook, tmp_path / "ledger", batch, concurrency=8)

    assert summary.counts == {"CLEARED": 150, "REPORTED": 70}
    assert (summary.sent, summary.failures, summary.unresolved) == (220, 0, 0)
    counts = cleartax_emulator.submission_counts()
    assert len(counts) == 220 and set(counts.values()) == {1}
    # The ledger agrees with ClearTax invoice by invoice, and carries the chain fields.
    state = Ledger(tmp_path / "ledger").state()
    statuses = cleartax_emulator.invoice_statuses()
    assert {key: record["status"] for key, record in state.items()} == statuses
    first = state[unique_id(batch[0])]
    assert first["line"] == 1 and first["uuid"] and first["icv"] and first["qr"] and first["attempts"] == 1
    assert summary.peak_in_memory <= 8

    # A second run over the same ledger sends nothing.
    again = run(fast_hook, tmp_path / "ledger", batch)
    assert (again.sent, again.skipped, again.counts) == (0, 220, summary.counts)
    assert set(cleartax_emulator.submission_counts().values()) == {1}


def test_bad_lines_and_invalid_invoices_are_recorded_and_neighbours_go_through(
    fast_hook, cleartax_emulator, tmp_path
) -> None:
    good = invoices(4, "BLK-NB")
    broken = {**invoices(1, "BLK-BAD")[0], "TaxCurrencyCode": "USD"}
    path = write_jsonl(
        tmp_path / "in.jsonl",
        [good[0], b"{not json", good[1], b'{"ID": "\xff\xfe"}', [1, 2], broken, good[2], good[2], good[3]],
    )
    summary = run(fast_hook, tmp_path / "ledger", str(path))

    assert summary.counts == {"CLEARED": 4, "ERROR": 4, "INVALID": 1}
    assert sorted(cleartax_emulator.submission_counts()) == sorted(unique_id(i) for i in good)
    by_line = {record["line"]: record for record in Ledger(tmp_path / "ledger").state().values()}
    assert "not valid JSON" in by_line[2]["errors"][0]["ErrorMessage"]
    assert "UTF-8" in by_line[4]["errors"][0]["ErrorMessage"]
    assert "JSON object" in by_line[5]["errors"][0]["ErrorMessage"]
    assert by_line[6]["status"] == "INVALID" and by_line[6]["invoice_number"] == "BLK-BAD-00000"
    assert "EInvoice.TaxCurrencyCode" in {e["Path"] for e in by_line[6]["errors"]}
    assert by_line[8]["status"] == "ERROR" and "line 7" in by_line[8]["errors"][0]["ErrorMessage"]
    listed = {(e["line"], e["status"]) for e in summary.errors}
    assert listed == {(2, "ERROR"), (4, "ERROR"), (5, "ERROR"), (6, "INVALID"), (8, "ERROR")}


def test_erp_rows_are_built_and_bad_rows_name_their_key(fast_hook, cleartax_emulator, tmp_path) -> None:
    seller = Seller(
        vat=VAT,
        name_en="Najd Office Supplies Co.",
        street="King Fahd Road",
        building="8228",
        city="Riyadh",
        district="Al Olaya",
        postal_code="12214",
        crn="1010010000",
    )
    row = {
        "invoice_number": "ROW-1",
        "issue_date": "2026-11-02",
        "issue_time": "10:00:00",
        "kind": "simplified",
        "lines": [{"name": "Pen", "quantity": 2, "unit_price": 5}],
    }
    rows = [
        row,
        {**row, "invoice_number": "ROW-2", "lines": [{"name": "Pen", "quantity": -1, "unit_price": 5}]},
        {**row, "invoice_number": "ROW-3"},
    ]
    summary = run(fast_hook, tmp_path / "ledger", rows, seller=seller)

    assert summary.counts == {"INVALID": 1, "REPORTED": 2}
    (error,) = summary.errors
    assert error["line"] == 2 and error["invoice_number"] == "ROW-2"
    assert error["errors"][0]["Path"] == "lines[0].quantity"


def test_business_rejections_are_recorded_and_do_not_stop_the_batch(
    fast_hook, cleartax_emulator, tmp_path
) -> None:
    batch = invoices(3, "BLK-REJ")
    batch[1] = {**batch[1], "TaxCurrencyCode": "USD"}
    summary = run(fast_hook, tmp_path / "ledger", batch, validate=False)

    assert summary.counts == {"CLEARED": 2, "NOT_CLEARED": 1}
    rejected = Ledger(tmp_path / "ledger").state()[unique_id(batch[1])]
    assert rejected["errors"] and rejected["attempts"] == 1
    assert summary.errors[0]["invoice_number"] == "BLK-REJ-00001"
    # Refused for good: a re-run does not send it again.
    again = run(fast_hook, tmp_path / "ledger", batch, validate=False)
    assert again.sent == 0


@pytest.mark.cleartax_emulator(faults={"generate": {"latency_ms": 150}})
def test_a_cancelled_run_resumes_without_duplicates(fast_hook, cleartax_emulator, tmp_path) -> None:
    batch = invoices(60, "BLK-CAN")

    async def cancel_midway() -> None:
        task = asyncio.create_task(
            BulkSubmitter(
                hook=fast_hook, ledger=tmp_path / "l", concurrency=10, rate_limiter=RateLimiter(limits={})
            ).run(batch)
        )
        while len(cleartax_emulator.submission_counts()) < 15:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    in_flight = [k for k, r in Ledger(tmp_path / "l").state().items() if r["status"] == SENDING]
    assert in_flight, "the cancel should have caught invoices in flight"

    summary = run(fast_hook, tmp_path / "l", batch)
    assert summary.counts == {"CLEARED": 60} and summary.looked_up == len(in_flight)
    counts = cleartax_emulator.submission_counts()
    assert len(counts) == 60 and set(counts.values()) == {1}


_CHILD = """
import asyncio, sys
from airflow_provider_cleartax.bulk import BulkSubmitter, RateLimiter
from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
asyncio.run(BulkSubmitter(hook=ClearTaxHook(), ledger=sys.argv[2], concurrency=8,
                          rate_limiter=RateLimiter(limits={})).run(sys.argv[1]))
"""


@pytest.mark.cleartax_emulator(
    faults={"generate": {"latency_ms": 100, "timeout_after_processing": 0.1, "hold_seconds": 2}}
)
def test_sigkill_mid_batch_then_retry_submits_each_invoice_once(
    fast_hook, cleartax_emulator, cleartax_connection, tmp_path
) -> None:
    batch = invoices(80, "BLK-KILL")
    source = write_jsonl(tmp_path / "in.jsonl", batch)
    ledger = tmp_path / "ledger"
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(source), str(ledger)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(cleartax_emulator.submission_counts()) < 25 and child.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    state = Ledger(ledger).state()
    in_flight = [key for key, record in state.items() if record["status"] == SENDING]
    assert in_flight and len(state) < 80

    summary = run(fast_hook, ledger, str(source))
    assert summary.counts == {"CLEARED": 80} and summary.unresolved == 0
    assert summary.looked_up == len(in_flight) and summary.skipped == len(state) - len(in_flight)
    counts = cleartax_emulator.submission_counts()
    assert len(counts) == 80 and set(counts.values()) == {1}


@pytest.mark.cleartax_emulator(
    seed=11,
    faults={
        "generate": {
            "error_5xx": 0.1,
            "rate_limit": 0.05,
            "connection_reset": 0.05,
            "timeout_after_processing": 0.08,
            "hold_seconds": 2,
        },
        "get_invoice": {"error_5xx": 0.1, "connection_reset": 0.05},
    },
)
def test_faults_still_end_exactly_once(fast_hook, cleartax_emulator, tmp_path) -> None:
    batch = invoices(120, "BLK-FLT")
    summary = run(fast_hook, tmp_path / "ledger", batch, concurrency=16)
    while summary.unresolved:  # what outlasted the in-call retries, a retry of the task resumes
        summary = run(fast_hook, tmp_path / "ledger", batch, concurrency=16)

    assert summary.counts == {"CLEARED": 120}
    counts = cleartax_emulator.submission_counts()
    assert len(counts) == 120 and set(counts.values()) == {1}
    log = cleartax_emulator.request_log()
    faults = {entry["fault"] for entry in log if entry["fault"]}
    assert {"error_5xx", "timeout_after_processing"} <= faults
    records = Ledger(tmp_path / "ledger").state().values()
    assert max(record["attempts"] for record in records) > 1


@pytest.mark.cleartax_emulator(
    faults={
        "get_invoice": {"error_5xx": 1.0},
        "generate": {"timeout_after_processing": 1.0, "hold_seconds": 2},
    }
)
def test_outcomes_that_stay_unknown_are_left_for_the_next_try(fast_hook, cleartax_emulator, tmp_path) -> None:
    batch = invoices(3, "BLK-UNK")
    hook = type(fast_hook)(
        cleartax_conn_id=fast_hook.cleartax_conn_id, generate_timeout=0.5, max_retries=1, backoff_base=0.01
    )
    summary = run(hook, tmp_path / "ledger", batch)
    assert summary.unresolved == 3 and summary.counts == {"RETRY": 3}
    assert all(record["error"] for record in Ledger(tmp_path / "ledger").state().values())

    cleartax_emulator.clear_faults()
    resumed = run(fast_hook, tmp_path / "ledger", batch)
    assert resumed.counts == {"CLEARED": 3} and (resumed.looked_up, resumed.recovered, resumed.sent) == (
        3,
        3,
        0,
    )
    assert set(cleartax_emulator.submission_counts().values()) == {1}


@pytest.mark.cleartax_emulator(rate_limits={"generate": 10, "get_invoice": 10})
def test_rate_limiter_keeps_under_the_limit_without_a_single_429(
    fast_hook, cleartax_emulator, tmp_path, monkeypatch
) -> None:
    # A 2-second server window stands in for ClearTax's minute, to keep the test short.
    monkeypatch.setattr(control, "_WINDOW_SECONDS", 2.0)
    limiter = RateLimiter(limits={"generate": 10, "get_invoice": 10}, window=2.0, slack=0.1)
    summary = run(
        fast_hook, tmp_path / "limited", invoices(30, "BLK-RL"), concurrency=16, rate_limiter=limiter
    )

    assert summary.counts == {"CLEARED": 30}
    log = [entry for entry in cleartax_emulator.request_log() if entry["endpoint"] == "generate"]
    assert len(log) == 30 and not any(entry["throttled"] for entry in log)
    assert limiter.throttled("generate") == 0


@pytest.mark.cleartax_emulator(rate_limits={"generate": 10})
def test_without_a_fitting_limit_the_server_throttles_and_aimd_backs_off(
    fast_hook, cleartax_emulator, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(control, "_WINDOW_SECONDS", 2.0)
    limiter = RateLimiter(limits={"generate": 40}, window=2.0, slack=0.1)
    summary = run(
        fast_hook, tmp_path / "unlimited", invoices(25, "BLK-429"), concurrency=16, rate_limiter=limiter
    )

    assert summary.counts == {"CLEARED": 25}
    assert limiter.throttled("generate") > 0 and limiter.allowance("generate") < 40
    assert set(cleartax_emulator.submission_counts().values()) == {1}


class _CountingLedger(Ledger):
    finished = 0

    def append(self, records) -> None:
        records = list(records)
        super().append(records)
        self.finished += sum(record["status"] != SENDING for record in records)


def test_the_reader_never_holds_more_than_the_window(fast_hook, cleartax_emulator, tmp_path) -> None:
    ledger = _CountingLedger(tmp_path / "ledger")
    window = 5
    most_ahead = 0

    def stream():
        nonlocal most_ahead
        for pulled, invoice in enumerate(invoices(60, "BLK-MEM")):
            # Items pulled and not yet finished, counting the one about to be handed over.
            most_ahead = max(most_ahead, pulled + 1 - ledger.finished)
            yield invoice

    summary = run(fast_hook, ledger, stream(), concurrency=window)
    assert summary.counts == {"CLEARED": 60}
    assert summary.peak_in_memory == window
    assert most_ahead <= window + 1  # the generator runs one step ahead of the slot it fills


def test_ledger_on_object_storage_writes_one_object_per_group(fast_hook, cleartax_emulator) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    location = ObjectStoragePath("memory://ledgers/day-1")
    batch = invoices(12, "BLK-OBJ")
    summary = run(fast_hook, location, batch, concurrency=4)
    assert summary.counts == {"CLEARED": 12}
    parts = sorted(p.name for p in location.iterdir())
    assert len(parts) > 1 and all(name.startswith("part-") for name in parts)
    assert {record["status"] for record in Ledger(location).state().values()} == {"CLEARED"}
    assert run(fast_hook, location, batch).sent == 0


def test_a_torn_last_line_is_skipped(tmp_path) -> None:
    ledger = Ledger(tmp_path / "l")
    ledger.append([{"key": "a", "status": "SENDING"}, {"key": "a", "status": "CLEARED"}])
    ledger.close()
    (segment,) = (tmp_path / "l").iterdir()
    with segment.open("ab") as stream:
        stream.write(b'{"key": "b", "sta')
    assert {k: r["status"] for k, r in Ledger(tmp_path / "l").state().items()} == {"a": "CLEARED"}
    assert json.loads(segment.read_bytes().splitlines()[0])["v"] == 1


def test_limiter_halves_on_429_once_per_burst_and_recovers() -> None:
    now = [0.0]
    limiter = RateLimiter(limits={"generate": 100}, window=60.0, clock=lambda: now[0])
    for _ in range(5):
        limiter.record("generate", 429)
    assert limiter.allowance("generate") == 50
    now[0] = 10.0
    limiter.record("generate", 429)
    assert limiter.allowance("generate") == 25
    for _ in range(200):
        limiter.record("generate", 200)
    assert 25 < limiter.allowance("generate") <= 100
    assert limiter.allowance("get_invoice") is None


def test_limiter_waits_for_the_window_to_free_a_slot() -> None:
    now = [0.0]
    slept: list[float] = []
    limiter = RateLimiter(limits={"generate": 2}, window=10.0, slack=0.0, clock=lambda: now[0])

    async def scenario() -> None:
        real_sleep = asyncio.sleep

        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds
            await real_sleep(0)

        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            for _ in range(3):
                await limiter.acquire("generate")
        finally:
            asyncio.sleep = real_sleep  # type: ignore[assignment]

    asyncio.run(scenario())
    assert slept == [10.0]
