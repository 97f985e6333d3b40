"""P2: generate N invoices with the bulk operator's engine, raw async clients, and an HttpHook loop.

The input is one JSON Lines file of N generate bodies (valid standard invoices), streamed by
every variant. Each variant runs in its own child process, so its peak RSS (``VmHWM``) is its
own; the emulator forgets all invoices between variants.

- ``ClearTaxSubmitInvoicesOperator``: ``execute()`` with an explicit ledger path and no
  client-side rate limit (the emulator has none in P2; P3 measures the limiter). It validates
  each invoice, writes the ledger (fsync per group) and parses every answer.
- ``httpx.AsyncClient`` and ``aiohttp``: a pool of C workers reading the same file, posting each
  body and decoding the answer, at the same concurrency C as the engine (its client-side
  limit). aiohttp is there because httpx's async pool spends much more CPU per request at high
  concurrency (encode/httpx#3215); the same pair is measured again at 64 requests in flight.
- ``HttpHook`` loop: ``HttpHook(method="POST").run(endpoint, json=body)`` per invoice, one after
  the other, as a PythonOperator would do it; run on the first ``p2_httphook_invoices``
  invoices only and extrapolated to N.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    API_HEADERS,
    CLEARTAX_CONN_ID,
    HTTP_CONN_ID,
    Bench,
    BenchResult,
    Unavailable,
    at_least,
    at_most,
    info,
    ratio,
)

HIGH_CONCURRENCY = 64
_GENERATE = "/v2/einvoices/generate"


def write_input(path: Path, count: int, prefix: str) -> None:
    """Write ``count`` generate bodies, one per line, with distinct invoice numbers.

    :param path: the JSON Lines file to write.
    :param count: how many invoices.
    :param prefix: start of every invoice number.
    """
    from benchmarks.emulator_load import generate_body

    template = json.dumps(generate_body("@NUMBER@"))
    with path.open("w", encoding="utf-8") as output:
        for number in range(count):
            output.write(template.replace("@NUMBER@", f"{prefix}-{number:06d}") + "\n")


def _lines(path: str, limit: int | None = None) -> Any:
    with open(path, "rb") as source:
        for number, line in enumerate(source):
            if limit is not None and number >= limit:
                return
            yield line


# --------------------------------------------------------------------------------------------
# Child side
# --------------------------------------------------------------------------------------------


def measure_engine(source: str, ledger: str, concurrency: int, profile: bool = False) -> dict[str, Any]:
    """Submit the file through ``ClearTaxSubmitInvoicesOperator.execute()``.

    :param source: the JSON Lines input.
    :param ledger: directory of the ledger (must not exist yet).
    :param concurrency: invoices in flight.
    :param profile: run under cProfile and return its summary (the timings are then not comparable).
    """
    import cProfile

    from airflow_provider_cleartax.operators.bulk import ClearTaxSubmitInvoicesOperator
    from benchmarks.harness import Stopwatch, current_rss_mb, profile_summary

    operator = ClearTaxSubmitInvoicesOperator(
        task_id="submit",
        cleartax_conn_id=CLEARTAX_CONN_ID,
        invoices=source,
        ledger_path=ledger,
        concurrency=concurrency,
        rate_limits={},
    )
    operator.hook.settings  # noqa: B018 - the connection is read once before the clock starts
    rss_before = current_rss_mb()
    profiler = cProfile.Profile() if profile else None
    with Stopwatch() as watch:
        if profiler is not None:
            profiler.enable()
        value = operator.execute(context={})
        if profiler is not None:
            profiler.disable()
    summary = value["summary"]
    return {
        "profile": profile_summary(profiler, summary["total"]) if profiler is not None else None,
        "invoices": summary["total"],
        "ok": summary["counts"].get("CLEARED", 0),
        "seconds": watch.wall,
        "run_cpu_s": watch.cpu,
        "rss_before_mb": rss_before,
        "peak_in_memory": summary["peak_in_memory"],
    }


async def _pool(source: str, concurrency: int, post: Any) -> tuple[int, int]:
    import asyncio

    lines = _lines(source)
    done = ok = 0

    async def worker() -> None:
        nonlocal done, ok
        for line in lines:  # one shared iterator: each line goes to exactly one worker
            accepted = await post(line)  # awaited first: `ok += await ...` would read ok before the wait
            ok += accepted
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, ok


def measure_httpx(base_url: str, source: str, concurrency: int) -> dict[str, Any]:
    """Post every line with one ``httpx.AsyncClient`` and ``concurrency`` workers.

    :param base_url: the emulator's API base URL.
    :param source: the JSON Lines input.
    :param concurrency: requests in flight (and the pool's connection limit).
    """
    import asyncio

    import httpx

    from benchmarks.harness import Stopwatch, current_rss_mb

    async def main() -> tuple[int, int]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {**API_HEADERS, "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=90) as client:

            async def post(line: bytes) -> bool:
                answer = await client.post(_GENERATE, content=line)
                return answer.status_code == 200 and not answer.json().get("ErrorList")

            return await _pool(source, concurrency, post)

    rss_before = current_rss_mb()
    with Stopwatch() as watch:
        done, ok = asyncio.run(main())
    return {
        "invoices": done,
        "ok": ok,
        "seconds": watch.wall,
        "run_cpu_s": watch.cpu,
        "rss_before_mb": rss_before,
    }


def measure_aiohttp(base_url: str, source: str, concurrency: int) -> dict[str, Any]:
    """Post every line with one ``aiohttp.ClientSession`` and ``concurrency`` workers.

    :param base_url: the emulator's API base URL.
    :param source: the JSON Lines input.
    :param concurrency: requests in flight (and the connector's limit).
    """
    import asyncio

    import aiohttp

    from benchmarks.harness import Stopwatch, current_rss_mb

    async def main() -> tuple[int, int]:
        connector = aiohttp.TCPConnector(limit=concurrency)
        headers = {**API_HEADERS, "Content-Type": "application/json"}
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            url = base_url + _GENERATE

            async def post(line: bytes) -> bool:
                async with session.post(url, data=line) as answer:
                    return answer.status == 200 and not (await answer.json()).get("ErrorList")

            return await _pool(source, concurrency, post)

    rss_before = current_rss_mb()
    with Stopwatch() as watch:
        done, ok = asyncio.run(main())
    return {
        "invoices": done,
        "ok": ok,
        "seconds": watch.wall,
        "run_cpu_s": watch.cpu,
        "rss_before_mb": rss_before,
    }


def measure_http_hook(source: str, limit: int) -> dict[str, Any]:
    """Post the first ``limit`` lines one after the other with ``HttpHook.run()``.

    :param source: the JSON Lines input.
    :param limit: how many invoices to send.
    """
    from airflow.providers.http.hooks.http import HttpHook

    from benchmarks.harness import Stopwatch, current_rss_mb

    hook = HttpHook(method="POST", http_conn_id=HTTP_CONN_ID)
    rss_before = current_rss_mb()
    done = ok = 0
    with Stopwatch() as watch:
        for line in _lines(source, limit):
            answer = hook.run("v2/einvoices/generate", json=json.loads(line))
            ok += not answer.json().get("ErrorList")
            done += 1
    return {
        "invoices": done,
        "ok": ok,
        "seconds": watch.wall,
        "run_cpu_s": watch.cpu,
        "rss_before_mb": rss_before,
    }


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


def engine_concurrency() -> int:
    """The bulk engine's default client-side concurrency limit."""
    try:
        from airflow_provider_cleartax.bulk import DEFAULT_CONCURRENCY
    except ImportError as error:
        raise Unavailable(
            "the bulk engine (airflow_provider_cleartax.bulk) is not in this checkout"
        ) from error
    return DEFAULT_CONCURRENCY


def _row(
    variant: str, concurrency: int | str, answer: dict[str, Any], *, scale: int | None = None
) -> dict[str, Any]:
    per_s = answer["invoices"] / answer["seconds"]
    row = {
        "variant": variant,
        "concurrency": concurrency,
        "invoices": answer["invoices"],
        "ok": answer["ok"],
        "seconds": answer["seconds"],
        "invoices_per_s": per_s,
        "cpu_ms_per_invoice": answer["run_cpu_s"] / answer["invoices"] * 1e3,
        "rss_after_imports_mb": answer["rss_before_mb"],
        "peak_rss_mb": answer["peak_rss_mb"],
    }
    if scale is not None:
        row["seconds_for_n_extrapolated"] = scale / per_s
    return row


def _limit_source(source: Path, count: int, target: Path) -> Path:
    with source.open("rb") as lines, target.open("wb") as output:
        for number, line in enumerate(lines):
            if number >= count:
                break
            output.write(line)
    return target


ENGINE = "ClearTaxSubmitInvoicesOperator"
RAW = ("httpx.AsyncClient", "measure_httpx")
AIOHTTP = ("aiohttp", "measure_aiohttp")


def run(bench: Bench, options: dict[str, Any]) -> BenchResult:
    """Run every variant on the same input and compare throughput, CPU and peak RSS."""
    concurrency = options["p2_concurrency"] or engine_concurrency()
    count = options["p2_invoices"]
    subset = min(options["p2_httphook_invoices"], count)
    high_count = min(options["p2_high_invoices"], count)
    source = bench.workdir / "p2-invoices.jsonl"
    write_input(source, count, "P2")
    high_source = _limit_source(source, high_count, bench.workdir / "p2-high.jsonl")
    result = BenchResult(
        "P2",
        f"bulk generate of {count:,} invoices: operator engine vs raw async clients vs HttpHook loop",
        params={"invoices": count, "concurrency": concurrency, "latency_ms": bench.latency_ms},
    )
    plan: list[tuple[str, int, Path, str, dict[str, Any]]] = [
        (ENGINE, concurrency, source, "measure_engine", {"ledger": str(bench.workdir / "ledger-c")}),
        (RAW[0], concurrency, source, RAW[1], {"base_url": bench.base_url}),
        (AIOHTTP[0], concurrency, source, AIOHTTP[1], {"base_url": bench.base_url}),
    ]
    if concurrency != HIGH_CONCURRENCY:
        plan += [
            (
                ENGINE,
                HIGH_CONCURRENCY,
                high_source,
                "measure_engine",
                {"ledger": str(bench.workdir / "ledger-h")},
            ),
            (RAW[0], HIGH_CONCURRENCY, high_source, RAW[1], {"base_url": bench.base_url}),
            (AIOHTTP[0], HIGH_CONCURRENCY, high_source, AIOHTTP[1], {"base_url": bench.base_url}),
        ]
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for variant, in_flight, path, function, kwargs in plan:
        bench.emulator.reset()
        answer = bench.child(
            f"benchmarks.p2_bulk_generate:{function}",
            timeout=1800,
            concurrency=in_flight,
            source=str(path),
            **kwargs,
        )
        rows[variant, in_flight] = row = _row(variant, in_flight, answer)
        if answer["ok"] != answer["invoices"]:
            result.notes.append(
                f"{variant} at {in_flight}: only {answer['ok']} of {answer['invoices']} CLEARED"
            )
        result.rows.append(row)

    bench.emulator.reset()
    answer = bench.child(
        "benchmarks.p2_bulk_generate:measure_http_hook", timeout=1800, source=str(source), limit=subset
    )
    hook_row = _row("HttpHook loop (sequential)", 1, answer, scale=count)
    result.rows.append(hook_row)
    if subset < count:
        result.notes.append(
            f"The HttpHook loop sent only the first {subset:,} invoices (one at a time it would take about "
            f"{hook_row['seconds_for_n_extrapolated'] / 60:.0f} min for {count:,}); its throughput is "
            "extrapolated to N assuming a constant rate, and its peak RSS is that of the subset run."
        )
    if concurrency != HIGH_CONCURRENCY and high_count < count:
        result.notes.append(
            f"The rows at {HIGH_CONCURRENCY} in flight send the first {high_count:,} invoices."
        )

    engine, raw, aio = (rows[name, concurrency] for name in (ENGINE, RAW[0], AIOHTTP[0]))
    result.figures += [
        at_least(
            f"throughput engine / httpx.AsyncClient at {concurrency}",
            ratio(engine["invoices_per_s"], raw["invoices_per_s"]),
            0.85,
        ),
        at_most(f"engine peak RSS at {count:,} invoices", engine["peak_rss_mb"], 250, unit="MB"),
        info(
            f"client CPU per invoice httpx.AsyncClient / engine at {concurrency}",
            ratio(raw["cpu_ms_per_invoice"], engine["cpu_ms_per_invoice"]),
        ),
        info(
            f"throughput engine / aiohttp at {concurrency}",
            ratio(engine["invoices_per_s"], aio["invoices_per_s"]),
        ),
        info(
            "throughput engine / sequential HttpHook loop",
            ratio(engine["invoices_per_s"], hook_row["invoices_per_s"]),
        ),
    ]
    if concurrency != HIGH_CONCURRENCY:
        high = {name: rows[name, HIGH_CONCURRENCY] for name in (ENGINE, RAW[0], AIOHTTP[0])}
        result.figures += [
            info(
                f"throughput httpx.AsyncClient / aiohttp at {HIGH_CONCURRENCY}",
                ratio(high[RAW[0]]["invoices_per_s"], high[AIOHTTP[0]]["invoices_per_s"]),
            ),
            info(
                f"CPU per invoice httpx.AsyncClient at {HIGH_CONCURRENCY} / at {concurrency}",
                ratio(high[RAW[0]]["cpu_ms_per_invoice"], raw["cpu_ms_per_invoice"]),
            ),
            info(
                f"throughput engine at {HIGH_CONCURRENCY} / engine at {concurrency}",
                ratio(high[ENGINE]["invoices_per_s"], engine["invoices_per_s"]),
            ),
        ]
    if options["profile"]:
        bench.emulator.reset()
        profiled = bench.child(
            "benchmarks.p2_bulk_generate:measure_engine",
            timeout=1800,
            source=str(high_source),
            ledger=str(bench.workdir / "ledger-profile"),
            concurrency=concurrency,
            profile=True,
        )
        result.params["engine_profile"] = profiled["profile"]
    return result
