"""What every benchmark shares: the emulator, child processes, results and their tables.

Each measured client runs in a child process of its own (``python -m benchmarks.child``), so
its peak RSS and CPU time are its own and no import or pool of one variant warms up another.
The emulator runs in another child process with a fixed injected latency.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_cleartax.emulator.config import (
    DEFAULT_DEVICE_ID,
    DEFAULT_TOKEN,
    DEFAULT_VAT,
    EmulatorConfig,
    FaultSpec,
)
from airflow_provider_cleartax.emulator.server import EmulatorProcess

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Connection ids the children find in their environment.
CLEARTAX_CONN_ID = "cleartax_bench"
HTTP_CONN_ID = "cleartax_http"
#: Headers a user of the HTTP provider puts into the connection's extra.
API_HEADERS = {"X-Cleartax-Auth-Token": DEFAULT_TOKEN, "vat": DEFAULT_VAT}
#: Line prefix of a child's answer on its stdout (libraries may print other lines).
RESULT_MARKER = "BENCHMARK-RESULT "


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One ratio (or fraction, or count) of a benchmark, with its target.

    :param name: what is compared.
    :param value: the measured value (``None`` when it could not be measured).
    :param target: the target as text, e.g. ``>= 2.0``.
    :param met: whether the value meets the target (``None`` when it has none).
    :param unit: unit of ``value`` and the target.
    """

    name: str
    value: float | None
    target: str = ""
    met: bool | None = None
    unit: str = "x"


def at_least(name: str, value: float | None, threshold: float, *, unit: str = "x") -> Figure:
    """Return a figure whose target is ``value >= threshold``.

    :param name: what is compared.
    :param value: the measured value.
    :param threshold: the smallest acceptable value.
    :param unit: unit of value and threshold.
    """
    met = None if value is None else value >= threshold
    return Figure(name, value, f">= {threshold:g}", met, unit)


def at_most(name: str, value: float | None, threshold: float, *, unit: str = "x") -> Figure:
    """Return a figure whose target is ``value <= threshold``.

    :param name: what is compared.
    :param value: the measured value.
    :param threshold: the largest acceptable value.
    :param unit: unit of value and threshold.
    """
    met = None if value is None else value <= threshold
    return Figure(name, value, f"<= {threshold:g}", met, unit)


def info(name: str, value: float | None, *, unit: str = "x") -> Figure:
    """Return a figure reported for context, without a target.

    :param name: what is compared.
    :param value: the measured value.
    :param unit: unit of the value.
    """
    return Figure(name, value, "", None, unit)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Divide, or return ``None`` when either side is missing or the denominator is zero."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass
class BenchResult:
    """What one benchmark measured.

    :param id: ``P1`` ... ``P5``.
    :param title: one line saying what is measured.
    :param params: the sizes and settings it ran with.
    :param rows: one mapping per variant (or setting) measured.
    :param figures: the ratios derived from the rows, with targets.
    :param notes: how to read the figures (extrapolations, skipped variants, caveats).
    :param seconds: wall time the benchmark took.
    """

    id: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``VmHWM``; ``ru_maxrss`` where /proc is absent)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ChildError(RuntimeError):
    """A measuring child process failed."""


class Unavailable(Exception):
    """A benchmark cannot run here (e.g. the code it measures is not in this checkout)."""


def run_child(
    target: str,
    kwargs: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    timeout: float,
    python_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``target(**kwargs)`` in a fresh interpreter and return its JSON answer.

    The answer carries ``peak_rss_mb`` and ``cpu_s`` of the child on top of what the target returns.

    :param target: ``module:function``.
    :param kwargs: JSON-safe keyword arguments.
    :param env: the child's environment.
    :param timeout: seconds before the child is killed.
    :param python_args: interpreter options (``-X importtime``...).
    """
    command = [sys.executable, *python_args, "-m", "benchmarks.child", target]
    try:
        done = subprocess.run(
            command,
            input=json.dumps(dict(kwargs)),
            capture_output=True,
            text=True,
            env=dict(env),
            cwd=PROJECT_ROOT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ChildError(f"{target} did not finish within {timeout:.0f} s") from error
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            answer: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            answer["stderr"] = done.stderr
            return answer
    tail = "\n".join(done.stderr.strip().splitlines()[-15:])
    raise ChildError(f"{target} exited with {done.returncode} and no result:\n{tail}")


# --------------------------------------------------------------------------------------------
# The emulator and the environment of the children
# --------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """The running emulator and what children need to reach it.

    :param emulator: the emulator child process.
    :param env: environment of measuring children (Airflow home, connections).
    :param latency_ms: the emulator's injected latency.
    :param workdir: scratch directory of this run.
    """

    emulator: EmulatorProcess
    env: dict[str, str]
    latency_ms: float
    workdir: Path

    @property
    def base_url(self) -> str:
        """The emulator's API base URL."""
        return self.emulator.base_url

    def child(self, target: str, *, timeout: float = 900.0, **kwargs: Any) -> dict[str, Any]:
        """Run ``target(**kwargs)`` in a fresh interpreter with this run's environment."""
        return run_child(target, kwargs, env=self.env, timeout=timeout)

    def set_latency(self, latency_ms: float) -> None:
        """Give every endpoint a fixed latency (0 removes it)."""
        self.emulator.clear_faults()
        if latency_ms:
            self.emulator.set_faults("*", FaultSpec(latency_ms=latency_ms))

    def restore(self) -> None:
        """Forget the emulator's state and return to the run's latency and no rate limits."""
        self.emulator.reset()
        self.emulator.set_rate_limits({})
        self.set_latency(self.latency_ms)


def child_env(base_url: str, workdir: Path) -> dict[str, str]:
    """Return the environment of measuring children: a private Airflow home and two connections.

    :param base_url: the emulator's API base URL.
    :param workdir: scratch directory of this run.
    """
    home = workdir / "airflow_home"
    home.mkdir(parents=True, exist_ok=True)
    cleartax = {
        "conn_type": "cleartax",
        "host": base_url,
        "password": DEFAULT_TOKEN,
        "extra": {"vat": DEFAULT_VAT, "device_id": DEFAULT_DEVICE_ID},
    }
    # How a user of the HTTP provider points it at the API: base URL as host, auth headers in extra.
    http = {"conn_type": "http", "host": base_url, "extra": API_HEADERS}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "PYTHONPATH"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            f"AIRFLOW_CONN_{CLEARTAX_CONN_ID.upper()}": json.dumps(cleartax),
            f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": json.dumps(http),
            "PYTHONHASHSEED": "0",
        }
    )
    return env


def start_emulator(latency_ms: float) -> EmulatorProcess:
    """Start the emulator in a child process: no rate limits, every endpoint ``latency_ms`` slow.

    Asynchronously generated invoices stay PENDING for an hour, so status waits poll until
    their deadline.

    :param latency_ms: fixed latency injected into every endpoint.
    """
    faults = {"*": FaultSpec(latency_ms=latency_ms)} if latency_ms else {}
    config = EmulatorConfig(rate_limits={}, faults=faults, seed=1, async_report_delay=3600.0)
    return EmulatorProcess(config=config).start()


def today() -> str:
    """Today's date, as invoices are issued with it."""
    return datetime.date.today().isoformat()


def seed_invoice(base_url: str, number: str) -> str:
    """Generate one standard invoice on the emulator and return its ``uniqueId``.

    :param base_url: the emulator's API base URL.
    :param number: the invoice number.
    """
    import httpx

    from benchmarks.emulator_load import generate_body

    answer = httpx.post(base_url + "/v2/einvoices/generate", json=generate_body(number), headers=API_HEADERS)
    answer.raise_for_status()
    if answer.json().get("ErrorList"):
        raise RuntimeError(f"the emulator refused the seed invoice: {answer.json()['ErrorList']}")
    return f"{DEFAULT_VAT}_{number}_388_{today()[:4]}"


# --------------------------------------------------------------------------------------------
# Timing and tables
# --------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values`` (not necessarily sorted)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


class Stopwatch:
    """Wall and CPU seconds of a block: ``with Stopwatch() as watch: ...; watch.wall``."""

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = cpu_seconds() - self._cpu


def profile_summary(profiler: Any, per: int, *, top: int = 12) -> dict[str, Any]:
    """Summarise a cProfile run: the costliest functions by own time, and the provider's by total time.

    Times are wall time under the profiler, which roughly doubles the cost of Python code and
    counts waits on sockets as ``recv``/``send``/``select``: read them as shares.

    :param profiler: a finished ``cProfile.Profile``.
    :param per: what to divide by (calls, invoices) to get per-unit times.
    :param top: how many functions each list holds.
    """
    import pstats

    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(tottime for _, _, tottime, _, _ in stats.values())

    def name(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        if filename == "~":
            return function
        short = filename.split("/site-packages/")[-1].split("/airflow_provider_cleartax/")[-1]
        return f"{short}:{line}({function})"

    by_own = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    by_cumulative = sorted(stats.items(), key=lambda item: item[1][3], reverse=True)
    return {
        "per": per,
        "profiled_us_per_unit": total / per * 1e6,
        "by_own_time": [
            {"function": name(key), "own_us": tottime / per * 1e6, "cum_us": cumtime / per * 1e6}
            for key, (_, _, tottime, cumtime, _) in by_own
        ],
        "provider_by_cumulative_time": [
            {"function": name(key), "cum_us": cumtime / per * 1e6}
            for key, (_, _, _, cumtime, _) in by_cumulative
            if "airflow_provider_cleartax" in key[0]
        ][:top],
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """Render rows as a Markdown table, one column per key in ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def _with_unit(text: str, unit: str) -> str:
    if unit in ("x", "%", ""):
        return f"{text}{unit}"
    return f"{text} {unit}"


def figure_value(figure: Figure) -> str:
    """Render a figure's value with its unit."""
    if figure.value is None:
        return "-"
    if figure.unit in ("", "calls") and float(figure.value).is_integer():
        return _with_unit(f"{int(figure.value):,}", figure.unit)
    return _with_unit(_cell(float(figure.value)), figure.unit)


def render(result: BenchResult) -> str:
    """Render one benchmark: its rows, its figures and its notes."""
    columns: list[str] = []
    for row in result.rows:
        columns += [key for key in row if key not in columns]
    parts = [f"### {result.id}: {result.title}", ""]
    if result.rows:
        parts += [markdown_table(columns, result.rows), ""]
    parts += [render_figures([result])]
    if result.notes:
        parts += ["", *(f"- {note}" for note in result.notes)]
    return "\n".join(parts)


def render_figures(results: Sequence[BenchResult]) -> str:
    """Render the figures of several benchmarks as one table."""
    rows = [
        {
            "": result.id,
            "figure": figure.name,
            "measured": figure_value(figure),
            "target": _with_unit(figure.target, figure.unit) if figure.target else "",
            "met": {True: "yes", False: "**no**", None: ""}[figure.met],
        }
        for result in results
        for figure in result.figures
    ]
    return markdown_table(["", "figure", "measured", "target", "met"], rows)


BenchFunction = Callable[[Bench, dict[str, Any]], BenchResult]
