"""Run the provider's benchmarks against the emulator, print their tables and write JSON.

Run from the project root::

    python -m benchmarks.run                        # everything, default sizes (several minutes)
    python -m benchmarks.run --only P1,P4 --n 200   # some benchmarks, smaller
    make benchmarks BENCH_ONLY=P1,P4 BENCH_N=200    # the same through make

``--n`` sets the size of every benchmark that has one (P1 calls, P2 invoices, P5 waits); the
``--p*`` options set one size each. See docs/benchmarks.md for what each benchmark measures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PROJECT_ROOT,
    Bench,
    BenchResult,
    Unavailable,
    child_env,
    render,
    render_figures,
    start_emulator,
)

#: Benchmark id -> module with a ``run(bench, options)`` function.
BENCHMARKS = {
    "P1": "benchmarks.p1_get_invoice",
    "P2": "benchmarks.p2_bulk_generate",
    "P3": "benchmarks.p3_rate_limit",
    "P4": "benchmarks.p4_imports",
    "P5": "benchmarks.p5_status_waits",
}
DEFAULT_OUTPUT = ".artifacts/benchmarks.json"


def _selection(text: str) -> list[str]:
    chosen = [part.strip().upper() for part in text.replace(" ", ",").split(",") if part.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line; ``BENCH_ONLY`` and ``BENCH_N`` in the environment give defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        type=_selection,
        default=_selection(os.environ.get("BENCH_ONLY", ",".join(BENCHMARKS))),
        help="comma-separated benchmarks to run (default: all, or $BENCH_ONLY)",
    )
    parser.add_argument(
        "--n",
        type=int,
        default=int(os.environ["BENCH_N"]) if os.environ.get("BENCH_N") else None,
        help="size of P1 (calls), P2 (invoices) and P5 (waits) at once (or $BENCH_N)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=20.0,
        help="latency injected into every endpoint (default: %(default)s)",
    )
    parser.add_argument(
        "--p1-calls", type=int, default=1000, help="get-invoice calls per variant (default: %(default)s)"
    )
    parser.add_argument(
        "--p2-invoices", type=int, default=10_000, help="invoices per bulk run (default: %(default)s)"
    )
    parser.add_argument(
        "--p2-httphook-invoices",
        type=int,
        default=300,
        help="invoices of the sequential HttpHook loop, extrapolated to --p2-invoices (default: %(default)s)",
    )
    parser.add_argument(
        "--p2-high-invoices",
        type=int,
        default=2000,
        help="invoices of the runs at 64 in flight, the httpx pool check (default: %(default)s)",
    )
    parser.add_argument(
        "--p2-concurrency",
        type=int,
        default=None,
        help="requests in flight (default: the bulk engine's own limit)",
    )
    parser.add_argument(
        "--p3-limit", type=int, default=600, help="generate rate limit, per minute (default: %(default)s)"
    )
    parser.add_argument(
        "--p3-seconds", type=float, default=60.0, help="length of the P3 window (default: %(default)s)"
    )
    parser.add_argument(
        "--p4-repeats", type=int, default=9, help="fresh interpreters per import side (default: %(default)s)"
    )
    parser.add_argument(
        "--p5-waits", type=int, default=1000, help="concurrent status waits (default: %(default)s)"
    )
    parser.add_argument(
        "--p5-poll-interval",
        type=float,
        default=6.0,
        help="seconds between status polls (default: %(default)s)",
    )
    parser.add_argument(
        "--p5-cycles", type=int, default=3, help="poll cycles to observe (default: %(default)s)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile the bulk engine (an extra, unmeasured P2 run)"
    )
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="JSON results file (default: %(default)s)")
    parser.add_argument("--markdown", default=None, help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)
    if args.p3_seconds < 60:
        # The emulator's window is a sliding minute: a shorter run only sees the opening burst.
        parser.error("--p3-seconds must be at least 60 (the rate-limit window)")
    if args.n is not None:
        args.p1_calls = args.p2_invoices = args.p5_waits = args.n
        args.p2_httphook_invoices = min(args.p2_httphook_invoices, args.n)
    return args


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT).stdout


def _revision() -> dict[str, Any]:
    """The commit measured, and which tracked files differed from it."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        status = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "modified": []}
    return {"commit": commit, "modified": [line[3:] for line in status.splitlines()]}


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, run the chosen benchmarks one after another, report and write JSON.

    :param argv: command-line options; defaults to ``sys.argv[1:]``.
    """
    args = parse_args(argv)
    options: dict[str, Any] = vars(args)
    command = "python -m benchmarks.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    workdir = Path(tempfile.mkdtemp(prefix="cleartax-benchmarks-"))
    results: list[BenchResult] = []
    failed = False
    started = time.perf_counter()
    load_before = _load_average()
    emulator = start_emulator(args.latency_ms)
    try:
        bench = Bench(
            emulator=emulator,
            env=child_env(emulator.base_url, workdir),
            latency_ms=args.latency_ms,
            workdir=workdir,
        )
        for name in args.only:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                result = importlib.import_module(BENCHMARKS[name]).run(bench, options)
            except Unavailable as reason:
                result = BenchResult(name, "not run", notes=[f"not run: {reason}"])
            except Exception as error:  # one broken benchmark must not hide the others' figures
                failed = True
                traceback.print_exc()
                result = BenchResult(name, "failed", notes=[f"failed: {type(error).__name__}: {error}"])
            finally:
                bench.restore()
            result.seconds = round(time.perf_counter() - began, 1)
            results.append(result)
            print(render(result) + "\n", flush=True)
    finally:
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = render_figures(results)
    print("### Summary\n\n" + summary)
    report = {
        "command": command,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "revision": _revision(),
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "latency_ms": args.latency_ms,
        "seconds": round(time.perf_counter() - started, 1),
        "options": {key: value for key, value in options.items() if key not in ("output", "markdown")},
        "results": [result.to_json() for result in results],
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {output}", file=sys.stderr)
    if args.markdown:
        tables = "\n\n".join(render(result) for result in results)
        Path(args.markdown).write_text(
            f"`{command}`\n\n{tables}\n\n### Summary\n\n{summary}\n", encoding="utf-8"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
