"""Submit simplified invoices asynchronously and wait until ZATCA has reported them."""

from __future__ import annotations

import json
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_cleartax.operators.cleartax import ClearTaxGenerateInvoiceAsyncOperator

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "invoices" / "simplified_invoice.json").read_text())

with DAG(dag_id="ct_async", schedule=None, params={"prefix": "SIM-ASYNC"}):
    for deferrable in (True, False):
        ClearTaxGenerateInvoiceAsyncOperator(
            task_id=f"deferrable_{str(deferrable).lower()}",
            invoice={**SAMPLE, "ID": {"en": f"{{{{ params.prefix }}}}-{deferrable}"}},
            wait_for_completion=True,
            poll_interval=0.2,
            deferrable=deferrable,
        )
    ClearTaxGenerateInvoiceAsyncOperator(
        task_id="no_wait",
        invoice={**SAMPLE, "ID": {"en": "{{ params.prefix }}-nowait"}},
    )
