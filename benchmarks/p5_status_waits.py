"""P5: 1,000 deferred status waits in one event loop, as a triggerer runs them.

The parent creates W simplified invoices through generate/async; the emulator keeps them PENDING
(its report delay is longer than the run), so every wait polls until its deadline, which falls
half an interval after the K-th poll cycle. A child process then runs W triggers, one invoice
each, as tasks of one event loop (what the triggerer does), until all have yielded their event.
It samples its RSS; the emulator's request log counts the API calls.

- ``ClearTaxInvoicesReportedTrigger``: the bulk wait trigger; all triggers of one connection in a
  process share one poller, which asks Get bulk for the union of their invoices, 500 per call.
- ``ClearTaxInvoiceStatusTrigger``: the per-sensor trigger; each one polls Get invoice on its
  own, with its own hook and connection pool (the baseline the shared poller replaces).
"""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_cleartax.emulator.config import DEFAULT_VAT
from benchmarks.harness import (
    API_HEADERS,
    CLEARTAX_CONN_ID,
    Bench,
    BenchResult,
    Unavailable,
    at_most,
    info,
    today,
)

_RSS_SAMPLE_S = 0.2
_DEADLINE_MARGIN_S = 300


def simplified_body(number: str) -> dict[str, Any]:
    """Return a generate request for a valid simplified (B2C) invoice.

    :param number: the invoice number.
    """
    from benchmarks.emulator_load import generate_body

    body = generate_body(number)
    body["EInvoice"]["InvoiceTypeCode"]["name"] = "0200000"
    return body


async def _create(base_url: str, numbers: list[str], concurrency: int = 16) -> None:
    import asyncio

    import httpx

    pending = iter(numbers)

    async def worker(client: httpx.AsyncClient) -> None:
        for number in pending:
            answer = await client.post("/v2/einvoices/generate/async", json=simplified_body(number))
            answer.raise_for_status()
            if answer.json().get("InvoiceStatus") != "PENDING":
                raise RuntimeError(f"invoice {number} is not PENDING: {answer.text[:200]}")

    async with httpx.AsyncClient(base_url=base_url, headers=API_HEADERS, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


def create_pending_invoices(base_url: str, count: int, prefix: str) -> list[str]:
    """Create ``count`` PENDING simplified invoices and return their unique ids.

    :param base_url: the emulator's API base URL.
    :param count: how many.
    :param prefix: start of every invoice number.
    """
    import asyncio

    numbers = [f"{prefix}-{n:05d}" for n in range(count)]
    asyncio.run(_create(base_url, numbers))
    return [f"{DEFAULT_VAT}_{number}_388_{today()[:4]}" for number in numbers]


def measure(kind: str, unique_ids: list[str], poll_interval: float, cycles: int) -> dict[str, Any]:
    """Run one trigger per invoice in one event loop until every trigger has yielded its event.

    :param kind: ``shared`` (bulk wait trigger) or ``single`` (per-sensor status trigger).
    :param unique_ids: the invoices, one per trigger.
    :param poll_interval: seconds between polls.
    :param cycles: poll cycles before the deadline.
    """
    import asyncio

    from benchmarks.harness import current_rss_mb

    if kind == "shared":
        from airflow_provider_cleartax.triggers.bulk import ClearTaxInvoicesReportedTrigger, SharedBulkPoller

        trigger_class: Any = ClearTaxInvoicesReportedTrigger
    else:
        from airflow_provider_cleartax.triggers.cleartax import ClearTaxInvoiceStatusTrigger

        trigger_class = ClearTaxInvoiceStatusTrigger

    async def main() -> dict[str, Any]:
        rss = {"before": current_rss_mb(), "max": 0.0}
        deadline = time.time() + (cycles - 0.5) * poll_interval
        triggers = [
            trigger_class(
                cleartax_conn_id=CLEARTAX_CONN_ID,
                invoices=[uid],
                poll_interval=poll_interval,
                deadline=deadline,
            )
            for uid in unique_ids
        ]

        async def drive(trigger: Any) -> dict[str, Any]:
            async for event in trigger.run():
                return event.payload
            raise RuntimeError("a trigger ended without an event")

        async def sample() -> None:
            while True:
                rss["max"] = max(rss["max"], current_rss_mb())
                await asyncio.sleep(_RSS_SAMPLE_S)

        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        tasks = [asyncio.create_task(drive(trigger)) for trigger in triggers]
        await asyncio.sleep(0)
        poller = SharedBulkPoller.acquire(CLEARTAX_CONN_ID, {}) if kind == "shared" else None
        payloads = await asyncio.wait_for(
            asyncio.gather(*tasks), timeout=cycles * poll_interval + _DEADLINE_MARGIN_S
        )
        elapsed = time.perf_counter() - started
        sampler.cancel()
        statuses: dict[str, int] = {}
        for payload in payloads:
            statuses[payload["status"]] = statuses.get(payload["status"], 0) + 1
        return {
            "waits": len(payloads),
            "events": statuses,
            "seconds": elapsed,
            "poller_cycles": poller.cycles if poller is not None else None,
            "rss_before_mb": rss["before"],
            "rss_max_sampled_mb": rss["max"],
        }

    return asyncio.run(main())


def run(bench: Bench, options: dict[str, Any]) -> BenchResult:
    """Run W shared-poller waits and W per-invoice waits; count RSS and calls per poll cycle."""
    try:
        from airflow_provider_cleartax.triggers.bulk import ClearTaxInvoicesReportedTrigger  # noqa: F401
    except ImportError as error:
        raise Unavailable("the bulk wait trigger (triggers/bulk.py) is not in this checkout") from error
    waits, cycles = options["p5_waits"], options["p5_cycles"]
    poll_interval = options["p5_poll_interval"]
    result = BenchResult(
        "P5",
        f"{waits:,} concurrent status-wait triggers in one event loop",
        params={
            "waits": waits,
            "poll_interval_s": poll_interval,
            "cycles": cycles,
            "latency_ms": bench.latency_ms,
        },
    )
    variants = (
        ("shared", "ClearTaxInvoicesReportedTrigger (shared Get bulk poller)", "get_bulk"),
        ("single", "ClearTaxInvoiceStatusTrigger (one Get invoice per wait)", "get_invoice"),
    )
    for kind, name, endpoint in variants:
        bench.emulator.reset()
        unique_ids = create_pending_invoices(bench.base_url, waits, f"P5{kind[0].upper()}")
        seq = max((entry["seq"] for entry in bench.emulator.request_log()), default=0)
        answer = bench.child(
            "benchmarks.p5_status_waits:measure",
            timeout=cycles * poll_interval + _DEADLINE_MARGIN_S + 120,
            kind=kind,
            unique_ids=unique_ids,
            poll_interval=poll_interval,
            cycles=cycles,
        )
        calls = [entry for entry in bench.emulator.request_log(since=seq) if entry["endpoint"] == endpoint]
        per_wait_checks = len(calls) / waits
        observed_cycles = answer["poller_cycles"] if kind == "shared" else per_wait_checks
        result.rows.append(
            {
                "trigger": name,
                "waits": answer["waits"],
                "events": ", ".join(f"{status} {n}" for status, n in sorted(answer["events"].items())),
                "seconds": answer["seconds"],
                "endpoint": endpoint,
                "api_calls": len(calls),
                "poll_cycles": observed_cycles,
                "calls_per_cycle": len(calls) / observed_cycles if observed_cycles else None,
                "rss_after_imports_mb": answer["rss_before_mb"],
                "rss_max_sampled_mb": answer["rss_max_sampled_mb"],
                "peak_rss_mb": answer["peak_rss_mb"],
            }
        )
    shared, single = result.rows
    result.figures += [
        at_most(f"peak RSS, {waits:,} shared-poller waits", shared["peak_rss_mb"], 300, unit="MB"),
        at_most(
            f"Get bulk calls per poll cycle, {waits:,} waits", shared["calls_per_cycle"], 2, unit="calls"
        ),
        info(f"peak RSS, {waits:,} per-invoice waits", single["peak_rss_mb"], unit="MB"),
        info(
            f"Get invoice calls per poll cycle, {waits:,} per-invoice waits",
            single["calls_per_cycle"],
            unit="calls",
        ),
    ]
    result.notes.append(
        "The invoices stay PENDING, so every wait ends with its deadline (status timeout) after poll "
        f"cycle {cycles}; poll cycles of the shared poller are its own count, those of the "
        "per-invoice triggers are calls / waits (the last check lands on the deadline itself)."
    )
    return result
