"""A task that calls ClearTax with whatever token the connection holds, with retries to spare."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

with DAG(dag_id="cleartax_wrong_token", schedule=None, catchup=False):

    @task(retries=3, retry_delay=timedelta(seconds=0.1))
    def look_up_invoice() -> str | None:
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        hook = ClearTaxHook(cleartax_conn_id="cleartax_dag_test")
        return hook.get_invoice(unique_id="300000000000003_INV-1_388_2026").invoice_status

    look_up_invoice()
