"""DAG of the chaos test (R2): one bulk submission of a JSON Lines file against a faulty emulator.

The generate timeout is short (1 s) so that answers the emulator holds back after storing the
invoice time out in the client; the task may retry, and each try resumes from the same ledger.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_cleartax.operators.bulk import ClearTaxSubmitInvoicesOperator

#: Seconds the client waits for generate; the emulator holds its answers longer.
GENERATE_TIMEOUT = 1.0
#: Client-side limits far above the load, so the 429 back-off runs without pacing the test.
RATE_LIMITS = {"generate": 100_000, "get_invoice": 100_000}

with DAG(dag_id="r2_chaos", schedule=None, catchup=False, params={"path": "", "ledger": ""}, tags=["r2"]):
    ClearTaxSubmitInvoicesOperator(
        task_id="submit",
        invoices="{{ params.path }}",
        ledger_path="{{ params.ledger }}",
        concurrency=16,
        rate_limits=RATE_LIMITS,
        hook_params={
            "generate_timeout": GENERATE_TIMEOUT,
            "request_timeout": 2.0,
            "max_retries": 4,
            "backoff_base": 0.05,
            "backoff_cap": 0.5,
        },
        retries=5,
        retry_delay=timedelta(seconds=1),
    )
