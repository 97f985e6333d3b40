"""The benchmark harness: its helpers, and one run at tiny sizes that must give well-formed results.

These check that the harness works and reports what it measured; they assert nothing about speed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import run as bench_run
from benchmarks.harness import BenchResult, at_least, at_most, info, markdown_table, percentile, ratio, render
from benchmarks.p4_imports import import_hot_spots, provider_modules


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


def test_targets_compare_in_the_right_direction() -> None:
    assert at_least("a", 2.0, 2.0).met is True
    assert at_least("a", 1.99, 2.0).met is False
    assert at_most("b", 1.3, 1.3).met is True
    assert at_most("b", 1.31, 1.3).met is False
    assert at_least("c", None, 1.0).met is None
    assert info("d", 1.0).target == ""
    assert ratio(1.0, 0.0) is None
    assert ratio(3.0, 2.0) == 1.5


def test_markdown_table_renders_missing_cells_and_numbers() -> None:
    table = markdown_table(["name", "value"], [{"name": "x", "value": 1234.5}, {"name": "y"}])
    assert table.splitlines() == ["| name | value |", "|---|---|", "| x | 1,234 |", "| y | - |"]


def test_render_marks_missed_targets() -> None:
    result = BenchResult(
        "P9", "demo", rows=[{"variant": "a", "calls": 3}], figures=[at_least("a / b", 0.5, 2.0)]
    )
    text = render(result)
    assert "### P9: demo" in text
    assert "| P9 | a / b | 0.50x | >= 2x | **no** |" in text


def test_import_hot_spots_reads_only_what_follows_the_marker() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      9000 |       9000 | before.marker",
            "--benchmark-import-starts--",
            "import time: self [us] | cumulative | imported package",
            "import time:       150 |        150 |   small",
            "import time:      2500 |       2650 | big",
        ]
    )
    spots = import_hot_spots(stderr)
    assert [spot["module"] for spot in spots] == ["big", "small"]
    assert spots[0]["self_ms"] == 2.5
    assert spots[0]["cumulative_ms"] == 2.65


def test_provider_modules_cover_operators_and_sensors() -> None:
    modules = provider_modules()
    assert "airflow_provider_cleartax.operators.cleartax" in modules
    assert "airflow_provider_cleartax.sensors.cleartax" in modules
    assert not any(name.endswith("__init__") for name in modules)


def test_unknown_benchmark_is_refused() -> None:
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--only", "P7"])


def test_n_sets_every_size() -> None:
    args = bench_run.parse_args(["--n", "12"])
    assert (args.p1_calls, args.p2_invoices, args.p5_waits) == (12, 12, 12)
    assert args.p2_httphook_invoices == 12


def _check_figures(result: dict) -> None:
    assert result["figures"], f"{result['id']} reported no figures"
    for figure in result["figures"]:
        assert figure["name"]
        assert isinstance(figure["value"], float) and math.isfinite(figure["value"]) and figure["value"] >= 0
        assert (figure["met"] is None) == (figure["target"] == "")


def _run(tmp_path: Path, *options: str) -> dict[str, dict]:
    output = tmp_path / "results.json"
    assert (
        bench_run.main([*options, "--output", str(output), "--markdown", str(tmp_path / "results.md")]) == 0
    )
    report = json.loads(output.read_text())
    assert report["command"].startswith("python -m benchmarks.run " + " ".join(options[:2]))
    results = {result["id"]: result for result in report["results"]}
    for result in results.values():
        assert not any(note.startswith(("failed", "not run")) for note in result["notes"]), result["notes"]
        _check_figures(result)
    assert (tmp_path / "results.md").read_text().count("### P") == len(results)
    return results


def test_p3_needs_a_whole_rate_limit_window() -> None:
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--p3-seconds", "30"])


@pytest.mark.integration
def test_tiny_p1_and_p4_give_well_formed_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _run(tmp_path, "--only", "P1,P4", "--n", "6", "--latency-ms", "0", "--p4-repeats", "1")
    assert list(results) == ["P1", "P4"]

    p1 = results["P1"]
    assert {row["variant"] for row in p1["rows"]} == {"ClearTaxHook", "HttpHook", "httpx.Client"}
    for row in p1["rows"]:
        assert row["calls"] == 6
        assert row["calls_per_s"] > 0 and row["p99_ms"] >= row["p50_ms"] > 0
    assert p1["params"]["clear_tax_hook_stages_us"]["answer size (bytes)"] > 0
    assert p1["params"]["clear_tax_hook_profile"]["provider_by_cumulative_time"]

    p4 = results["P4"]
    assert [row["side"] for row in p4["rows"]] == ["ClearTax operators + sensors", "HttpOperator"]
    assert all(row["import_ms_median"] > 0 for row in p4["rows"])
    assert p4["params"]["hot_spots"], "the -X importtime run found no modules"
    assert "### Summary" in capsys.readouterr().out


@pytest.mark.integration
def test_tiny_p2_and_p5_give_well_formed_results(tmp_path: Path) -> None:
    results = _run(
        tmp_path,
        "--only",
        "P2,P5",
        "--n",
        "8",
        "--latency-ms",
        "0",
        "--p2-concurrency",
        "64",
        "--p2-httphook-invoices",
        "3",
        "--p5-poll-interval",
        "0.5",
        "--p5-cycles",
        "2",
    )
    p2 = results["P2"]
    by_variant = {row["variant"]: row for row in p2["rows"]}
    assert set(by_variant) == {
        "ClearTaxSubmitInvoicesOperator",
        "httpx.AsyncClient",
        "aiohttp",
        "HttpHook loop (sequential)",
    }
    for name, row in by_variant.items():
        assert row["ok"] == row["invoices"] == (3 if name.startswith("HttpHook") else 8)
        assert row["peak_rss_mb"] >= row["rss_after_imports_mb"] > 0
    assert by_variant["HttpHook loop (sequential)"]["seconds_for_n_extrapolated"] > 0

    p5 = results["P5"]
    shared, single = p5["rows"]
    assert shared["waits"] == single["waits"] == 8
    assert shared["events"] == single["events"] == "timeout 8"
    assert shared["endpoint"] == "get_bulk" and shared["api_calls"] >= shared["poll_cycles"] >= 1
    assert single["endpoint"] == "get_invoice" and single["api_calls"] >= 8
