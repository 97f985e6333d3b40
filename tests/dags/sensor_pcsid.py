"""ClearTax PCSID sensors in poke and deferrable mode, the activity given at run time; retries to spare."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_cleartax.sensors.cleartax import ClearTaxPcsidStatusSensor

for dag_id, deferrable, timeout in (
    ("sensor_pcsid_poke", False, 30),
    ("sensor_pcsid_deferrable", True, 30),
    ("sensor_pcsid_short_timeout", True, 1),
):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        catchup=False,
        default_args={"retries": 2, "retry_delay": timedelta(seconds=0.1)},
        params={"activity_id": ""},
    ):
        ClearTaxPcsidStatusSensor(
            task_id="wait",
            activity_id="{{ params.activity_id }}",
            cleartax_conn_id="cleartax_sensor_test",
            poll_interval=0.2,
            timeout=timeout,
            deferrable=deferrable,
        )
