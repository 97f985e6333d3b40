"""The bulk operator and sensor under dag.test(), against the emulator over real HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_cleartax.bulk import Ledger
from tests.bulk.conftest import invoices, write_jsonl
from tests.conftest import task_states, xcom_values


@pytest.fixture(autouse=True)
def _emulator_connection(cleartax_connection: str) -> None:
    """Point ``cleartax_default`` at a fresh emulator for every test."""


def test_jsonl_object_storage_input_with_and_without_failing_on_rejections(
    load_dag, cleartax_emulator, tmp_path
) -> None:
    paths = []
    for prefix in ("OP-STRICT", "OP-LENIENT"):
        good = invoices(6, prefix)
        lines = [*good[:3], b"{oops", {**good[3], "TaxCurrencyCode": "USD"}, *good[3:]]
        paths.append(f"file://{write_jsonl(tmp_path / f'{prefix}.jsonl', lines)}")
    run = load_dag("ct_bulk_file").test(
        run_conf={"path": paths[0], "other_path": paths[1], "ledgers": str(tmp_path / "ledgers")}
    )
    states = task_states(run)

    # Invalid lines fail the strict task at once (no retry could fix them), not the lenient one.
    assert states["submit"] == ("failed", 1) and states["submit_lenient"] == ("success", 1)
    for task_id in ("submit", "submit_lenient"):
        value = xcom_values(run, task_id)["return_value"]
        assert set(value) == {"ledger_path", "summary"}
        assert value["summary"]["counts"] == {"CLEARED": 6, "ERROR": 1, "INVALID": 1}
        assert [e["line"] for e in value["summary"]["errors"]] == [4, 5]
        assert len(str(value)) < 2000
    strict = xcom_values(run, "submit")["return_value"]
    assert strict["ledger_path"].startswith(str(tmp_path / "ledgers" / "ct_bulk_file"))
    assert strict["ledger_path"].endswith("/submit")
    assert "/lenient/" in xcom_values(run, "submit_lenient")["return_value"]["ledger_path"]
    counts = cleartax_emulator.submission_counts()
    assert len(counts) == 12 and set(counts.values()) == {1}


@pytest.mark.cleartax_emulator(async_report_delay=0.5)
def test_xcom_list_async_submission_then_wait_for_reporting(load_dag, cleartax_emulator, tmp_path) -> None:
    run = load_dag("ct_bulk_xcom").test(run_conf={"prefix": "OP-XC", "count": 7})
    states = task_states(run)
    assert run.state == "success", states

    value = xcom_values(run, "submit")["return_value"]
    assert set(value) == {"ledger_path", "summary"} and value["summary"]["counts"] == {"PENDING": 7}
    assert len(Ledger(value["ledger_path"]).state()) == 7
    for task_id in ("wait", "wait_poking"):
        assert xcom_values(run, task_id)["return_value"]["counts"] == {"REPORTED": 7}
    assert set(cleartax_emulator.invoice_statuses().values()) == {"REPORTED"}
    assert len(cleartax_emulator.submission_counts()) == 7
    assert {e["endpoint"] for e in cleartax_emulator.request_log()} >= {"generate_async", "get_bulk"}
    assert not any(e["endpoint"] == "get_invoice" for e in cleartax_emulator.request_log())
