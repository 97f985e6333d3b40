"""P3: how close the bulk engine gets to a rate limit without crossing it.

The emulator limits generate to L requests per token in any sliding 60-second window (429 above
it, as ClearTax does per minute). The engine, with more invoices than the window allows, runs in
a child process for T seconds and is then cancelled; the emulator's request log says how many
generate requests it accepted in those T seconds and how many it refused with 429.

Two runs: the engine told the limit (``rate_limits={"generate": L}``, what a user who knows their
contract sets), and the engine left at ClearTax's documented 1000 per minute while the account
gets only L (it must find the limit from the 429s: halve on 429, regain slowly).

The figure is accepted / (L x T / 60). The window is sliding, so a client may start L requests at
once and then must wait out the window: whole windows (T a multiple of 60 s) measure fairly.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.harness import CLEARTAX_CONN_ID, Bench, BenchResult, at_least, at_most, info
from benchmarks.p2_bulk_generate import engine_concurrency, write_input

_BUCKET_S = 10


def measure_engine(source: str, ledger: str, seconds: float, limit: int | None) -> dict[str, Any]:
    """Run the operator's engine on ``source`` for ``seconds``, then cancel it.

    :param source: the JSON Lines input (more invoices than can be sent in time).
    :param ledger: directory of the ledger.
    :param seconds: how long to let it run.
    :param limit: the engine's generate limit per 60 s; ``None`` keeps ClearTax's documented one.
    """
    import asyncio
    import contextlib

    from airflow_provider_cleartax.bulk import DEFAULT_RATE_LIMITS, BulkSubmitter, RateLimiter
    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

    limits = dict(DEFAULT_RATE_LIMITS) if limit is None else {**DEFAULT_RATE_LIMITS, "generate": limit}
    limiter = RateLimiter(limits=limits, window=60.0)
    hook = ClearTaxHook(cleartax_conn_id=CLEARTAX_CONN_ID)
    hook.settings  # noqa: B018 - read the connection before the clock starts
    submitter = BulkSubmitter(
        hook=hook, ledger=ledger, rate_limiter=limiter, concurrency=engine_concurrency()
    )

    async def main() -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(submitter.run(source), timeout=seconds)

    started = time.time()
    asyncio.run(main())
    return {
        "started": started,
        "allowance_at_end": limiter.allowance("generate"),
        "throttled": limiter.throttled("generate"),
    }


def _count(log: list[dict[str, Any]], start: float, seconds: float) -> dict[str, Any]:
    generate = [entry for entry in log if entry["endpoint"] == "generate"]
    accepted = [e for e in generate if e["status"] == 200 and start <= e["time"] <= start + seconds]
    buckets = [0] * max(1, int(seconds // _BUCKET_S))
    for entry in accepted:
        buckets[min(len(buckets) - 1, int((entry["time"] - start) // _BUCKET_S))] += 1
    return {
        "accepted": len(accepted),
        "throttled_429": sum(1 for e in generate if e["throttled"] or e["status"] == 429),
        "per_10s": buckets,
    }


def run(bench: Bench, options: dict[str, Any]) -> BenchResult:
    """Run the engine against a rate-limited emulator, told the limit and not told it."""
    limit, seconds = options["p3_limit"], options["p3_seconds"]
    engine_concurrency()  # fails early when the engine is missing
    expected = limit * seconds / 60
    count = int(expected * 1.5) + 50
    source = bench.workdir / "p3-invoices.jsonl"
    write_input(source, count, "P3")
    result = BenchResult(
        "P3",
        f"rate-limit saturation: emulator allows {limit} generate/min; engine runs {seconds:g} s",
        params={
            "limit_per_min": limit,
            "seconds": seconds,
            "input_invoices": count,
            "latency_ms": bench.latency_ms,
        },
    )
    for name, told in (("engine told L", limit), ("engine at documented 1000/min", None)):
        bench.emulator.reset()  # also empties the request log
        bench.emulator.set_rate_limits({"generate": limit})
        answer = bench.child(
            "benchmarks.p3_rate_limit:measure_engine",
            timeout=seconds + 300,
            source=str(source),
            ledger=str(bench.workdir / f"ledger-p3-{told or 'default'}"),
            seconds=seconds,
            limit=told,
        )
        log = bench.emulator.request_log()
        counted = _count(log, answer["started"], seconds)
        result.rows.append(
            {
                "variant": name,
                "accepted": counted["accepted"],
                "allowed": int(expected),
                "fraction_of_L_pct": counted["accepted"] / expected * 100,
                "429s": counted["throttled_429"],
                "engine_allowance_at_end": answer["allowance_at_end"],
                "accepted_per_10s": " ".join(str(n) for n in counted["per_10s"]),
            }
        )
    told_row, default_row = result.rows
    result.figures += [
        at_least("accepted / allowed, engine told L", told_row["fraction_of_L_pct"], 95, unit="%"),
        at_most("429 answers, engine told L", float(told_row["429s"]), 0, unit=""),
        info("accepted / allowed, engine at 1000/min", default_row["fraction_of_L_pct"], unit="%"),
        info("429 answers, engine at 1000/min", float(default_row["429s"]), unit=""),
    ]
    result.notes.append(
        "Time stamps are the emulator's arrival times; the window starts when the child starts the "
        "engine (its imports are done by then)."
    )
    return result
