"""Bulk submission from a JSON Lines file, and from an XCom list followed by a wait for reporting."""

from __future__ import annotations

import json
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_cleartax.operators.bulk import ClearTaxSubmitInvoicesOperator
from airflow_provider_cleartax.sensors.bulk import ClearTaxInvoicesReportedSensor

DATA = Path(__file__).parents[1] / "data" / "invoices"
SIMPLIFIED = json.loads((DATA / "simplified_invoice.json").read_text())

with DAG(dag_id="ct_bulk_file", schedule=None, params={"path": "", "other_path": "", "ledgers": ""}):
    ClearTaxSubmitInvoicesOperator(
        task_id="submit",
        invoices="{{ params.path }}",
        ledger_base="{{ params.ledgers }}",
        concurrency=4,
    )
    ClearTaxSubmitInvoicesOperator(
        task_id="submit_lenient",
        invoices="{{ params.other_path }}",
        ledger_path="{{ params.ledgers }}/lenient/{{ ds }}",
        fail_on_rejections=False,
        retries=2,
    )

with DAG(dag_id="ct_bulk_xcom", schedule=None, params={"prefix": "XC", "count": 5}):

    @task
    def make_invoices(params=None) -> list[dict]:
        return [{**SIMPLIFIED, "ID": {"en": f"{params['prefix']}-{i}"}} for i in range(params["count"])]

    submit = ClearTaxSubmitInvoicesOperator(task_id="submit", invoices=make_invoices(), mode="async")
    submit >> ClearTaxInvoicesReportedSensor(
        task_id="wait",
        ledger_path="{{ ti.xcom_pull(task_ids='submit')['ledger_path'] }}",
        poll_interval=0.3,
        deferrable=True,
        timeout=30,
    )
    submit >> ClearTaxInvoicesReportedSensor(
        task_id="wait_poking",
        ledger_path="{{ ti.xcom_pull(task_ids='submit')['ledger_path'] }}",
        poll_interval=0.3,
        deferrable=False,
        timeout=30,
    )
