"""The bulk wait trigger: Get bulk in chunks of 500, one shared poller per connection."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_cleartax.bulk import BulkSubmitter, RateLimiter
from airflow_provider_cleartax.triggers import bulk as bulk_triggers
from airflow_provider_cleartax.triggers.bulk import ClearTaxInvoicesReportedTrigger, SharedBulkPoller
from tests.bulk.conftest import VAT, invoices, unique_id


def submit_async(hook, tmp_path, batch) -> None:
    summary = asyncio.run(
        BulkSubmitter(
            hook=hook, ledger=tmp_path / "ledger", mode="async", rate_limiter=RateLimiter(limits={})
        ).run(batch)
    )
    assert summary.counts == {"PENDING": len(batch)}


async def first_event(trigger: ClearTaxInvoicesReportedTrigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("no event")


@pytest.mark.cleartax_emulator(async_report_delay=0.3)
def test_a_thousand_invoices_take_two_get_bulk_calls_per_cycle(
    fast_hook, cleartax_connection, cleartax_emulator, tmp_path
) -> None:
    batch = invoices(10, "TRG-K", kind="simplified_invoice")
    submit_async(fast_hook, tmp_path, batch)
    known = [unique_id(invoice) for invoice in batch]
    unknown = [f"{VAT}_TRG-NONE-{i}_388_2026" for i in range(990)]
    trigger = ClearTaxInvoicesReportedTrigger(
        cleartax_conn_id=cleartax_connection,
        invoices=known + unknown,
        poll_interval=0.5,
        deadline=time.time() + 30,
    )
    since = cleartax_emulator.request_log()[-1]["seq"]

    async def scenario() -> int:
        poller = SharedBulkPoller.acquire(cleartax_connection, {})
        task = asyncio.create_task(first_event(trigger))
        while poller.cycles < 2:  # stop between cycles, while the poller sleeps
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        statuses = poller.subscriptions and poller.subscriptions[0].statuses
        assert not statuses  # the cancelled trigger unsubscribed
        return poller.cycles

    cycles = asyncio.run(scenario())
    calls = [e for e in cleartax_emulator.request_log(since=since) if e["endpoint"] == "get_bulk"]
    assert cycles == 2 and len(calls) == 4
    assert all(e["status"] == 200 for e in calls)
    assert bulk_triggers._POLLERS == {}  # the last subscriber stopped the poller


@pytest.mark.cleartax_emulator(async_report_delay=0.6)
def test_two_triggers_on_one_connection_share_one_poller(
    fast_hook, cleartax_connection, cleartax_emulator, tmp_path
) -> None:
    batch = invoices(8, "TRG-CO", kind="simplified_invoice")
    submit_async(fast_hook, tmp_path, batch)
    ids = [unique_id(invoice) for invoice in batch]
    triggers = [
        ClearTaxInvoicesReportedTrigger(
            cleartax_conn_id=cleartax_connection, invoices=ids[:5], poll_interval=0.25
        ),
        ClearTaxInvoicesReportedTrigger(
            cleartax_conn_id=cleartax_connection, invoices=ids[3:], poll_interval=0.25
        ),
    ]
    since = cleartax_emulator.request_log()[-1]["seq"]

    async def scenario() -> tuple[list[dict], list[int], int]:
        tasks = [asyncio.create_task(first_event(trigger)) for trigger in triggers]
        await asyncio.sleep(0.1)
        pollers = list(bulk_triggers._POLLERS.values())
        subscribers = [len(poller.subscriptions) for poller in pollers]
        payloads = await asyncio.gather(*tasks)
        return payloads, subscribers, pollers[0].cycles

    payloads, subscribers, cycles = asyncio.run(scenario())
    assert subscribers == [2]
    assert [p["status"] for p in payloads] == ["success", "success"]
    assert [p["counts"] for p in payloads] == [{"REPORTED": 5}, {"REPORTED": 5}]
    calls = [e for e in cleartax_emulator.request_log(since=since) if e["endpoint"] == "get_bulk"]
    assert len(calls) == cycles  # one call per cycle for both triggers' union, not one per trigger
    assert bulk_triggers._POLLERS == {}


@pytest.mark.cleartax_emulator(async_report_delay=0.3)
def test_the_trigger_reports_final_statuses_and_times_out_on_unknown_ones(
    fast_hook, cleartax_connection, cleartax_emulator, tmp_path
) -> None:
    batch = invoices(4, "TRG-FIN", kind="simplified_invoice")
    submit_async(fast_hook, tmp_path, batch)
    ids = [unique_id(invoice) for invoice in batch]
    done = asyncio.run(
        first_event(
            ClearTaxInvoicesReportedTrigger(
                cleartax_conn_id=cleartax_connection,
                invoices=ids,
                poll_interval=0.2,
                deadline=time.time() + 20,
            )
        )
    )
    assert done["status"] == "success" and done["counts"] == {"REPORTED": 4} and done["pending"] == []
    late = asyncio.run(
        first_event(
            ClearTaxInvoicesReportedTrigger(
                cleartax_conn_id=cleartax_connection,
                invoices=[*ids, f"{VAT}_NOPE_388_2026"],
                poll_interval=0.2,
                deadline=time.time() + 0.5,
            )
        )
    )
    assert late["status"] == "timeout" and late["pending"] == [f"{VAT}_NOPE_388_2026"]


def test_trigger_serializes_and_fails_cleanly_without_a_connection() -> None:
    trigger = ClearTaxInvoicesReportedTrigger(
        cleartax_conn_id="nope", invoices=["a", "a", "b"], poll_interval=0.1
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_cleartax.triggers.bulk.ClearTaxInvoicesReportedTrigger"
    assert kwargs["invoices"] == ["a", "b"]
    payload = asyncio.run(first_event(ClearTaxInvoicesReportedTrigger(**kwargs)))
    assert payload["status"] == "error" and "nope" in payload["message"]


@pytest.mark.cleartax_emulator(async_report_delay=0.2)
def test_a_deadline_already_past_still_gets_one_final_check(
    fast_hook, cleartax_connection, cleartax_emulator, tmp_path
) -> None:
    batch = invoices(3, "TRG-LATE", kind="simplified_invoice")
    submit_async(fast_hook, tmp_path, batch)
    time.sleep(0.3)  # reported by now
    trigger = ClearTaxInvoicesReportedTrigger(
        cleartax_conn_id=cleartax_connection,
        invoices=[unique_id(invoice) for invoice in batch],
        poll_interval=30,
        deadline=time.time() - 1,  # e.g. the triggerer picked the trigger up late
    )
    payload = asyncio.run(first_event(trigger))
    assert payload["status"] == "success", payload
    assert payload["counts"] == {"REPORTED": 3}
