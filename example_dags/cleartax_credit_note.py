"""Issue a credit note against an invoice ZATCA has cleared (or reported), wait for it and keep its PDF.

A cleared invoice cannot be cancelled or edited: it is corrected by a credit note (type 381) that
references it. Trigger this DAG with the invoice number; the original is looked up in the sample
ERP (for the buyer and the lines) and at ClearTax (it must be final and accepted). By default
the whole invoice is credited; pass ``lines`` (ERP line objects) for a partial credit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from cleartax_example_settings import (
    CONN_ID,
    KSA,
    POLL_INTERVAL,
    AirflowFailException,
    location,
    setting,
    storage_path,
)

from airflow_provider_cleartax.operators.cleartax import (
    ClearTaxDownloadInvoicePdfOperator,
    ClearTaxGenerateInvoiceOperator,
    ClearTaxGetInvoiceOperator,
)
from airflow_provider_cleartax.sensors.cleartax import ClearTaxInvoiceStatusSensor

#: Statuses of an original that may be credited.
ACCEPTED = ("CLEARED", "REPORTED", "ACCEPTED_WITH_WARNING")
#: ERP columns the credit note copies from the original.
COPIED = (
    "kind",
    "buyer_name",
    "buyer_name_ar",
    "buyer_vat",
    "buyer_street",
    "buyer_building",
    "buyer_district",
    "buyer_city",
    "buyer_postal_code",
    "buyer_country",
    "currency",
    "lines",
)

with DAG(
    dag_id="cleartax_credit_note",
    description="Credit a cleared invoice, wait until ZATCA accepted the credit note, store its PDF",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Riyadh"),
    catchup=False,
    tags=["cleartax", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "invoice_number": Param(type="string", minLength=1, description="number of the invoice to credit"),
        "credit_note_number": Param(
            None,
            type=["null", "string"],
            description="number of the credit note; default CN-<invoice number>",
        ),
        "reason": Param(
            "Returned goods", type="string", minLength=1, description="why the invoice is credited"
        ),
        "lines": Param(
            None,
            type=["null", "array"],
            description="ERP lines to credit; default: every line of the invoice",
        ),
    },
):

    @task
    def find_original(params: dict[str, Any]) -> dict[str, Any]:
        """Read the original invoice's row from the ERP."""
        import sqlite3

        with sqlite3.connect(setting("erp_db", params)) as erp:
            erp.row_factory = sqlite3.Row
            row = erp.execute(
                "SELECT * FROM invoices WHERE invoice_number = ? AND document = 'invoice'",
                (params["invoice_number"],),
            ).fetchone()
        if row is None:
            raise AirflowFailException(f"invoice {params['invoice_number']} is not in the ERP")
        return {key: value for key, value in dict(row).items() if value is not None}

    original = find_original()

    check_original = ClearTaxGetInvoiceOperator(
        task_id="check_original",
        cleartax_conn_id=CONN_ID,
        invoice_number="{{ params.invoice_number }}",
        invoice_type="INV",
        issue_date=original["issue_date"],
    )

    @task
    def build_credit_note(
        original: dict[str, Any], status: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Build the credit note from the original's ERP row; refuse an original ZATCA did not accept."""
        import json
        import sqlite3

        from airflow_provider_cleartax.invoices import Seller, invoice_from_row

        if status["invoice_status"] not in ACCEPTED:
            raise AirflowFailException(
                f"invoice {params['invoice_number']} is {status['invoice_status']}: only an invoice ZATCA "
                "accepted can be credited (a refused one is fixed and sent again as a new invoice)"
            )
        with sqlite3.connect(setting("erp_db", params)) as erp:
            erp.row_factory = sqlite3.Row
            company = dict(erp.execute("SELECT * FROM company LIMIT 1").fetchone())
        now = datetime.now(KSA)
        row = {key: original[key] for key in COPIED if key in original}
        row |= {
            "invoice_number": params["credit_note_number"] or f"CN-{params['invoice_number']}",
            "document": "credit_note",
            "issue_date": now.date().isoformat(),
            "issue_time": now.strftime("%H:%M:%S"),
            "billing_reference": params["invoice_number"],
            "reason": params["reason"],
        }
        if params["lines"]:
            row["lines"] = json.dumps(params["lines"])
        return invoice_from_row(row, seller=Seller(**company))

    credit_note = build_credit_note(original, check_original.output)

    issue = ClearTaxGenerateInvoiceOperator(
        task_id="issue_credit_note", cleartax_conn_id=CONN_ID, invoice=credit_note
    )

    wait = ClearTaxInvoiceStatusSensor(
        task_id="wait_for_credit_note",
        cleartax_conn_id=CONN_ID,
        invoices="{{ ti.xcom_pull(task_ids='issue_credit_note')['unique_id'] }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=timedelta(hours=1).total_seconds(),
    )

    @task
    def pdf_destination(issued: dict[str, Any], params: dict[str, Any]) -> str:
        """Return where the credit note's PDF goes."""
        folder = storage_path(setting("output", params), "credit-notes", issued["issue_date"])
        return location(folder / f"{issued['invoice_number']}.pdf")

    download = ClearTaxDownloadInvoicePdfOperator(
        task_id="download_pdf",
        cleartax_conn_id=CONN_ID,
        invoice_number="{{ ti.xcom_pull(task_ids='issue_credit_note')['invoice_number'] }}",
        invoice_type="CRN",
        issue_date="{{ ti.xcom_pull(task_ids='issue_credit_note')['issue_date'] }}",
        destination=pdf_destination(issue.output),
    )

    # The sensor and the download read the credit note's identity from XCom, in templates.
    issue >> wait >> download
