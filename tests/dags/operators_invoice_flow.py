"""Generate a standard invoice, then fetch it, download its PDF, embed our own PDF and email it."""

from __future__ import annotations

import json
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_cleartax.operators.cleartax import (
    ClearTaxDownloadInvoicePdfOperator,
    ClearTaxEmailInvoiceOperator,
    ClearTaxEmbedPdfOperator,
    ClearTaxGenerateInvoiceOperator,
    ClearTaxGetInvoiceOperator,
)

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "invoices" / "standard_invoice.json").read_text())
INVOICE = {**SAMPLE, "ID": {"en": "{{ params.number }}", "ar": None}}
REF = {
    "invoice_number": "{{ params.number }}",
    "invoice_type": "INV",
    "issue_date": SAMPLE["IssueDate"],
}

with DAG(dag_id="ct_invoice_flow", schedule=None, params={"number": "INV-FLOW-1", "out": "/tmp"}):
    generate = ClearTaxGenerateInvoiceOperator(task_id="generate", invoice=INVOICE, retries=2)
    get = ClearTaxGetInvoiceOperator(task_id="get", **REF)
    download = ClearTaxDownloadInvoicePdfOperator(
        task_id="download", destination="{{ params.out }}/{{ params.number }}.pdf", **REF
    )
    embed = ClearTaxEmbedPdfOperator(
        task_id="embed",
        pdf="{{ params.out }}/{{ params.number }}.pdf",
        destination="file://{{ params.out }}/own-{{ params.number }}.pdf",
        **REF,
    )
    email = ClearTaxEmailInvoiceOperator(
        task_id="email", to="buyer@example.com", cc=["ap@example.com"], **REF
    )
    generate >> get >> download >> embed >> email
