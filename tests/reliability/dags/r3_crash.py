"""DAG of the crash test (R3): a bulk submission whose task process the test kills with SIGKILL.

Each try appends ``<try number> <pid>`` to the file named by ``params.pidfile`` before it starts
submitting, so the test knows which process runs the task. The ledger path is fixed by the run's
params, so the retry resumes from what the killed try made durable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from airflow_provider_cleartax.operators.bulk import ClearTaxSubmitInvoicesOperator


def record_pid(context: Any) -> None:
    """Append this try's number and process id to the run's pid file."""
    with Path(context["params"]["pidfile"]).open("a", encoding="utf-8") as stream:
        stream.write(f"{context['ti'].try_number} {os.getpid()}\n")


with DAG(
    dag_id="r3_crash",
    schedule=None,
    catchup=False,
    params={"path": "", "ledger": "", "pidfile": ""},
    tags=["r3"],
):
    ClearTaxSubmitInvoicesOperator(
        task_id="submit",
        invoices="{{ params.path }}",
        ledger_path="{{ params.ledger }}",
        concurrency=8,
        rate_limits={},
        hook_params={"max_retries": 3, "backoff_base": 0.05, "backoff_cap": 0.5},
        retries=2,
        retry_delay=timedelta(seconds=2),
        on_execute_callback=record_pid,
    )
