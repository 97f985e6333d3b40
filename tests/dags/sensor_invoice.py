"""ClearTax invoice sensors in poke and deferrable mode, the invoices given at run time; retries to spare.

Each sensor first sends the run's ``submit`` invoice numbers for asynchronous reporting, so its
first check finds them PENDING however long Airflow took to start the task.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG

from airflow_provider_cleartax.sensors.cleartax import ClearTaxInvoiceStatusSensor

CONN_ID = "cleartax_sensor_test"
SAMPLE = Path(__file__).parents[1] / "data" / "invoices" / "simplified_invoice.json"
DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(seconds=0.1)}


def submit_pending(context: Any) -> None:
    """Send the sample invoice, renumbered as each of the run's ``submit`` numbers, for async reporting."""
    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

    with ClearTaxHook(cleartax_conn_id=CONN_ID) as hook:
        for number in context["params"]["submit"]:
            einvoice = json.loads(SAMPLE.read_text(encoding="utf-8"))
            einvoice["ID"] = {"en": number, "ar": None}
            hook.generate_invoice_async(einvoice)


for mode in ("poke", "deferrable"):
    with DAG(
        dag_id=f"sensor_invoice_{mode}",
        schedule=None,
        catchup=False,
        default_args=DEFAULT_ARGS,
        params={"invoice": "", "submit": []},
    ):
        ClearTaxInvoiceStatusSensor(
            task_id="wait",
            invoices="{{ params.invoice }}",
            cleartax_conn_id=CONN_ID,
            poll_interval=0.2,
            timeout=30,
            deferrable=mode == "deferrable",
            pre_execute=submit_pending,
        )

with DAG(
    dag_id="sensor_invoice_bulk_deferrable",
    schedule=None,
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={"first": "", "second_number": "", "second_date": "", "submit": []},
):
    ClearTaxInvoiceStatusSensor(
        task_id="wait",
        invoices=[
            "{{ params.first }}",
            {
                "invoiceNumber": "{{ params.second_number }}",
                "invoiceType": "INV",
                "issueDate": "{{ params.second_date }}",
            },
        ],
        cleartax_conn_id=CONN_ID,
        poll_interval=0.2,
        timeout=30,
        deferrable=True,
        pre_execute=submit_pending,
    )

with DAG(
    dag_id="sensor_invoice_short_timeout",
    schedule=None,
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={"invoice": ""},
):
    ClearTaxInvoiceStatusSensor(
        task_id="wait",
        invoices="{{ params.invoice }}",
        cleartax_conn_id=CONN_ID,
        poll_interval=0.2,
        timeout=1,
        deferrable=True,
    )
