"""P1: a blocking get-invoice loop through ClearTaxHook, HttpHook and a raw ``httpx.Client``.

All three read the same seeded invoice from the same emulator, N calls each, in one child
process. The calls are made in rounds that rotate the order of the variants, so a change in
machine load during the run hits all three alike. Every variant decodes the JSON answer:
ClearTaxHook also validates it into its typed result, as a task using it would.

The HTTP provider is used as its documentation shows: an ``http`` connection whose host is the
API base URL and whose extra holds the headers (token and VAT), one ``HttpHook(method="GET")``,
and ``run()`` per call (which opens a new ``requests`` session, hence a new connection, per call).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import (
    API_HEADERS,
    CLEARTAX_CONN_ID,
    HTTP_CONN_ID,
    Bench,
    BenchResult,
    at_least,
    info,
    percentile,
    ratio,
    seed_invoice,
)

VARIANTS = ("ClearTaxHook", "HttpHook", "httpx.Client")
_WARMUP = 20
_ROUNDS = 10


def paired_ratio(ours: list[float], theirs: list[float]) -> float | None:
    """Median over rounds of the ratio of two variants' throughputs in the same round.

    Rounds next to each other in time meet the same machine load, so pairing them and taking the
    median keeps a burst of other work from deciding the figure.
    """
    ratios = [mine / other for mine, other in zip(ours, theirs, strict=True) if other]
    return statistics.median(ratios) if ratios else None


def _callers(base_url: str, unique_id: str) -> dict[str, Callable[[], Any]]:
    import httpx
    from airflow.providers.http.hooks.http import HttpHook

    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

    hook = ClearTaxHook(cleartax_conn_id=CLEARTAX_CONN_ID)
    http_hook = HttpHook(method="GET", http_conn_id=HTTP_CONN_ID)
    client = httpx.Client(base_url=base_url, headers=API_HEADERS)

    def cleartax() -> str | None:
        return hook.get_invoice(unique_id=unique_id).invoice_status

    def http() -> str | None:
        return http_hook.run("v2/einvoices/data", data={"uniqueId": unique_id}).json()["InvoiceStatus"]

    def raw() -> str | None:
        answer = client.get("/v2/einvoices/data", params={"uniqueId": unique_id})
        answer.raise_for_status()
        return answer.json()["InvoiceStatus"]

    return dict(zip(VARIANTS, (cleartax, http, raw), strict=True))


def profile(call: Callable[[], Any], calls: int) -> dict[str, Any]:
    """Run ``call`` ``calls`` times under cProfile; see :func:`~benchmarks.harness.profile_summary`."""
    import cProfile

    from benchmarks.harness import profile_summary

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    return profile_summary(profiler, calls)


def _per_call_us(function: Callable[[], Any], repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats * 1e6


def stages(base_url: str, unique_id: str, repeats: int = 2000) -> dict[str, float]:
    """Time the CPU-bound steps of one ClearTaxHook get-invoice call without I/O, in µs per call.

    The reply is captured once over HTTP, then fed to the pipeline again and again.

    :param base_url: the emulator's API base URL.
    :param unique_id: the invoice to read.
    :param repeats: iterations per step.
    """
    import json

    import httpx

    from airflow_provider_cleartax.client import api
    from airflow_provider_cleartax.client.pipeline import Reply
    from airflow_provider_cleartax.client.results import InvoiceResult
    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

    hook = ClearTaxHook(cleartax_conn_id=CLEARTAX_CONN_ID)
    session = hook.session
    client = httpx.Client(base_url=base_url, headers=API_HEADERS)
    answer = client.get("/v2/einvoices/data", params={"uniqueId": unique_id})
    reply = Reply(answer.status_code, answer.headers, answer.content)

    def build() -> Any:
        return next(api.get_invoice(session, unique_id=unique_id))

    def build_and_interpret() -> Any:
        operation = api.get_invoice(session, unique_id=unique_id)
        next(operation)
        try:
            operation.send(reply)
        except StopIteration as stop:
            return stop.value
        raise RuntimeError("the operation did not finish on one reply")

    def raw_build() -> Any:
        return client.build_request("GET", "/v2/einvoices/data", params={"uniqueId": unique_id})

    built = build().request
    return {
        "hook.session (per call)": _per_call_us(lambda: hook.session, repeats),
        "execute + build_request (to the first Send)": _per_call_us(build, repeats),
        "httpx.Request(...) alone": _per_call_us(
            lambda: httpx.Request("GET", built.url, headers=built.headers, extensions=built.extensions),
            repeats,
        ),
        "raw httpx client.build_request (for comparison)": _per_call_us(raw_build, repeats),
        "interpret: json.loads of the answer": _per_call_us(lambda: json.loads(reply.body), repeats),
        "interpret: InvoiceResult.model_validate": _per_call_us(
            lambda: InvoiceResult.model_validate(json.loads(reply.body)), repeats
        ),
        "whole pipeline without I/O (build + interpret + parse)": _per_call_us(build_and_interpret, repeats),
        "answer size (bytes)": float(len(reply.body)),
    }


def measure(base_url: str, unique_id: str, calls: int, rounds: int, profile_calls: int = 0) -> dict[str, Any]:
    """Make ``calls`` get-invoice calls per variant; return wall, CPU and latencies per variant.

    :param base_url: the emulator's API base URL.
    :param unique_id: the invoice to read.
    :param calls: calls per variant (split over the rounds).
    :param rounds: rounds; each round runs every variant once, in a rotated order.
    :param profile_calls: after measuring, profile this many ClearTaxHook calls (0: none).
    """
    from benchmarks.harness import cpu_seconds

    callers = _callers(base_url, unique_id)
    for name, call in callers.items():
        for _ in range(_WARMUP):
            status = call()
            if status != "CLEARED":
                raise RuntimeError(f"{name} read status {status!r}, expected CLEARED")
    per_round = [calls // rounds + (1 if r < calls % rounds else 0) for r in range(rounds)]
    figures = {name: {"wall": 0.0, "cpu": 0.0, "latencies": [], "rounds": []} for name in callers}
    for number, count in enumerate(per_round):
        order = VARIANTS[number % 3 :] + VARIANTS[: number % 3]
        for name in order:
            call, figure = callers[name], figures[name]
            latencies = figure["latencies"]
            cpu_start = cpu_seconds()
            wall_start = time.perf_counter()
            for _ in range(count):
                started = time.perf_counter()
                call()
                latencies.append(time.perf_counter() - started)
            wall = time.perf_counter() - wall_start
            figure["wall"] += wall
            figure["cpu"] += cpu_seconds() - cpu_start
            figure["rounds"].append(count / wall)
    return {
        "profile": profile(callers["ClearTaxHook"], profile_calls) if profile_calls else None,
        "stages": stages(base_url, unique_id) if profile_calls else None,
        "variants": {
            name: {
                "calls": len(figure["latencies"]),
                "calls_per_s": len(figure["latencies"]) / figure["wall"],
                "cpu_us_per_call": figure["cpu"] / len(figure["latencies"]) * 1e6,
                "p50_ms": percentile(figure["latencies"], 0.5) * 1e3,
                "p99_ms": percentile(figure["latencies"], 0.99) * 1e3,
                "round_calls_per_s": figure["rounds"],
            }
            for name, figure in figures.items()
        },
    }


def run(bench: Bench, options: dict[str, Any]) -> BenchResult:
    """Run P1 at the emulator's latency and again without latency, and derive the ratios."""
    calls = options["p1_calls"]
    rounds = max(1, min(_ROUNDS, calls // 10))
    unique_id = seed_invoice(bench.base_url, "BENCH-P1-SEED")
    result = BenchResult(
        "P1",
        "sync get-invoice loop: ClearTaxHook vs HttpHook (run() per call) vs raw httpx.Client",
        params={"calls": calls, "rounds": rounds, "latency_ms": bench.latency_ms},
    )
    settings = [bench.latency_ms, 0.0] if bench.latency_ms else [0.0]
    measured: dict[float, dict[str, dict[str, float]]] = {}
    for latency in settings:
        bench.set_latency(latency)
        answer = bench.child(
            "benchmarks.p1_get_invoice:measure",
            base_url=bench.base_url,
            unique_id=unique_id,
            calls=calls,
            rounds=rounds,
            profile_calls=min(calls, 300) if latency == 0 else 0,
        )
        measured[latency] = answer["variants"]
        if answer["profile"]:
            result.params["clear_tax_hook_profile"] = answer["profile"]
            result.params["clear_tax_hook_stages_us"] = answer["stages"]
        for name in VARIANTS:
            row = dict(answer["variants"][name])
            row["median_round_calls_per_s"] = statistics.median(row.pop("round_calls_per_s"))
            result.rows.append({"latency_ms": latency, "variant": name, **row})
    bench.set_latency(bench.latency_ms)

    for latency, variants in measured.items():
        ours, http, raw = (variants[name] for name in VARIANTS)
        where = f"{latency:g} ms latency"
        result.figures += [
            at_least(
                f"throughput ClearTaxHook / HttpHook, {where}",
                paired_ratio(ours["round_calls_per_s"], http["round_calls_per_s"]),
                2.0,
            ),
            at_least(
                f"throughput ClearTaxHook / httpx, {where}",
                paired_ratio(ours["round_calls_per_s"], raw["round_calls_per_s"]),
                0.9,
            ),
        ]
    variants = measured[settings[0]]
    ours, http, raw = (variants[name] for name in VARIANTS)
    result.figures += [
        info(
            "client CPU per call HttpHook / ClearTaxHook",
            ratio(http["cpu_us_per_call"], ours["cpu_us_per_call"]),
        ),
        info(
            "client CPU per call httpx / ClearTaxHook", ratio(raw["cpu_us_per_call"], ours["cpu_us_per_call"])
        ),
    ]
    result.notes.append(
        f"Throughput figures are the median over {rounds} rounds of the ratio within each round (the "
        "rows show the aggregate); CPU figures are per call over all rounds, at the configured latency."
    )
    result.notes.append(
        "A blocking loop waits out the injected latency on every call, so at 20 ms the throughput "
        "ratios are bounded by (latency + client cost) ratios; the 0 ms rows and the CPU-per-call "
        "figures show the client's own cost."
    )
    return result
