"""P4: what importing every ClearTax operator and sensor adds to a DAG file, against ``HttpOperator``.

Every measurement is a fresh interpreter. It first imports what any DAG file already imports
(``from airflow.sdk import DAG, task``), then times, with ``time.perf_counter``, the import of
one side: all modules under ``airflow_provider_cleartax.operators`` and ``.sensors`` (every
operator and sensor class), or ``HttpOperator``. The DAG processor pays only this increment per
DAG file parse, since ``airflow.sdk`` is loaded already, so the increment is the fair comparison;
the cold totals (``airflow.sdk`` included) are reported alongside. The sides alternate, one
unmeasured run per side first writes the bytecode caches, and the median of the repeats is used.
One extra ``-X importtime`` run lists the modules that cost most.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

from benchmarks.harness import PROJECT_ROOT, Bench, BenchResult, at_most, info, ratio

WARM = "from airflow.sdk import DAG, task"
HTTP_OPERATOR = ("airflow.providers.http.operators.http",)
_MARK = "--benchmark-import-starts--"

_SCRIPT = """
import importlib, json, sys, time
started = time.perf_counter()
{warm}
warm = time.perf_counter() - started
sys.stderr.write({mark!r} + "\\n")
started = time.perf_counter()
for name in {modules!r}:
    importlib.import_module(name)
took = time.perf_counter() - started
print(json.dumps({{"warm_s": warm, "import_s": took, "modules": len(sys.modules)}}))
"""


def provider_modules() -> tuple[str, ...]:
    """Every operator and sensor module of the provider, found by file (without importing them)."""
    package = PROJECT_ROOT / "airflow_provider_cleartax"
    names = [
        f"airflow_provider_cleartax.{path.parent.name}.{path.stem}"
        for folder in ("operators", "sensors")
        for path in sorted((package / folder).glob("*.py"))
        if path.stem != "__init__"
    ]
    return tuple(names)


def _time_import(
    modules: tuple[str, ...], env: dict[str, str], *, importtime: bool = False
) -> tuple[dict[str, Any], str]:
    command = [sys.executable]
    if importtime:
        command += ["-X", "importtime"]
    command += ["-c", _SCRIPT.format(warm=WARM, mark=_MARK, modules=modules)]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, check=False, timeout=120
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"importing {modules} failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def import_hot_spots(stderr: str, *, top: int = 8) -> list[dict[str, Any]]:
    """Read ``-X importtime`` output after the marker: the modules with the largest self time.

    :param stderr: the interpreter's stderr.
    :param top: how many modules to return.
    """
    lines = stderr.split(_MARK, 1)[-1].splitlines()
    modules = []
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        fields = line[len("import time:") :].split("|")
        try:
            self_us, cumulative_us = int(fields[0]), int(fields[1])
        except ValueError:
            continue  # the header line
        modules.append(
            {"module": fields[2].strip(), "self_ms": self_us / 1e3, "cumulative_ms": cumulative_us / 1e3}
        )
    return sorted(modules, key=lambda m: m["self_ms"], reverse=True)[:top]


def run(bench: Bench, options: dict[str, Any]) -> BenchResult:
    """Time the imports of both sides ``p4_repeats`` times each, alternating, and compare medians."""
    repeats = max(1, options["p4_repeats"])
    ours = provider_modules()
    sides = {"ClearTax operators + sensors": ours, "HttpOperator": HTTP_OPERATOR}
    result = BenchResult(
        "P4",
        "import cost of all ClearTax operators and sensors vs HttpOperator (after `import airflow.sdk`)",
        params={"repeats": repeats, "warm_import": WARM, "modules": list(ours)},
    )
    if repeats > 1:
        for modules in sides.values():
            _time_import(modules, bench.env)  # writes the bytecode caches; not counted
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, modules in sides.items():
            answer, _ = _time_import(modules, bench.env)
            samples[name].append((answer["import_s"], answer["warm_s"]))
    medians = {}
    for name, pairs in samples.items():
        imports = [took for took, _ in pairs]
        totals = [took + warm for took, warm in pairs]
        medians[name] = (statistics.median(imports), statistics.median(totals))
        result.rows.append(
            {
                "side": name,
                "import_ms_median": statistics.median(imports) * 1e3,
                "import_ms_min": min(imports) * 1e3,
                "import_ms_max": max(imports) * 1e3,
                "airflow_sdk_ms_median": statistics.median(warm for _, warm in pairs) * 1e3,
                "cold_total_ms_median": statistics.median(totals) * 1e3,
            }
        )
    (ours_ms, ours_total), (http_ms, http_total) = medians.values()
    result.figures += [
        at_most("import after airflow.sdk: ClearTax all / HttpOperator", ratio(ours_ms, http_ms), 1.3),
        info("cold import incl. airflow.sdk: ClearTax all / HttpOperator", ratio(ours_total, http_total)),
    ]
    _, stderr = _time_import(ours, bench.env, importtime=True)
    spots = import_hot_spots(stderr)
    result.params["hot_spots"] = spots
    result.notes.append(
        "Largest self times importing the ClearTax side (one -X importtime run, after airflow.sdk): "
        + ", ".join(f"{spot['module']} {spot['self_ms']:.1f} ms" for spot in spots[:5])
    )
    return result
