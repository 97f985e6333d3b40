"""Invoices that must fail on the first try: invalid before sending, or rejected by ClearTax."""

from __future__ import annotations

import json
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_cleartax.operators.cleartax import ClearTaxGenerateInvoiceOperator

SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "invoices" / "standard_invoice.json").read_text())

with DAG(dag_id="ct_generate_checks", schedule=None, params={"currency": "USD", "validate": True}):
    ClearTaxGenerateInvoiceOperator(
        task_id="dry_run",
        invoice={**SAMPLE, "ID": {"en": "INV-DRY-1"}},
        validate_only=True,
    )
    ClearTaxGenerateInvoiceOperator(
        task_id="invalid",
        invoice={**SAMPLE, "ID": {"en": "INV-BAD-CCY"}, "TaxCurrencyCode": "{{ params.currency }}"},
        retries=3,
    )
    ClearTaxGenerateInvoiceOperator(
        task_id="rejected",
        invoice={**SAMPLE, "ID": {"en": "INV-REJ-CCY"}, "TaxCurrencyCode": "{{ params.currency }}"},
        validate=False,
        retries=3,
    )
