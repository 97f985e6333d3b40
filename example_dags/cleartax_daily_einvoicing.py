"""Daily e-invoicing: a day's sales documents from the ERP to ZATCA through ClearTax, exactly once.

1. ``extract``: read the day's documents from the ERP (a SQLite sample here; created on first
   use when the repository's ``scripts`` package is importable).
2. ``validate``: build each E-Invoice from its row and check it against ClearTax's rules. Bad rows
   are set aside with their reasons; the rest go to a JSON Lines file.
3. ``submit``: send them in bulk. Standard (B2B) invoices are cleared synchronously; simplified
   (B2C) ones are submitted for asynchronous reporting. Every outcome goes to a ledger named after
   the day, so a re-run of the day sends nothing twice.
4. ``wait_for_reporting``: wait, deferred to the triggerer, until ZATCA reported the B2C documents.
5. ``download_pdfs``: store the PDF/A-3 of every cleared standard document.
6. ``email_buyers``: email those documents to their buyers, each once.
7. ``summarize``: write the day's summary (counts by status, rejects with their reasons).

Which day? A scheduled run handles the day that just ended; a run triggered by hand or through
the REST API (with no logical date) handles the day it started on; a ``day`` param overrides
both. Settings (ERP database, output location, connection) are described in
``cleartax_example_settings``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from cleartax_example_settings import CONN_ID, POLL_INTERVAL, business_day, location, setting, storage_path

from airflow_provider_cleartax.operators.bulk import ClearTaxSubmitInvoicesOperator
from airflow_provider_cleartax.sensors.bulk import ClearTaxInvoicesReportedSensor

#: Final statuses of documents ZATCA accepted.
ACCEPTED = frozenset({"CLEARED", "REPORTED", "ACCEPTED_WITH_WARNING"})
#: Statuses of standard documents that may be handed to the buyer.
CLEARED = frozenset({"CLEARED", "ACCEPTED_WITH_WARNING"})

log = logging.getLogger(__name__)

with DAG(
    dag_id="cleartax_daily_einvoicing",
    description="Clear and report a day's invoices with ClearTax, store PDFs, email buyers, summarize",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Riyadh"),
    catchup=False,
    tags=["cleartax", "example"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "day": Param(None, type=["null", "string"], format="date", description="day to handle (YYYY-MM-DD)"),
        "erp_db": Param(None, type=["null", "string"], description="ERP database; default from settings"),
        "output": Param(None, type=["null", "string"], description="ObjectStoragePath base of the outputs"),
    },
):

    @task
    def extract(**context: Any) -> dict[str, Any]:
        """Read the day's documents and the seller's details from the ERP."""
        import sqlite3
        from pathlib import Path

        params = context["params"]
        day = business_day(context).isoformat()
        erp_db = Path(setting("erp_db", params))
        if not erp_db.exists():
            from scripts.sample_erp import create_sample_erp

            create_sample_erp(erp_db, days=[business_day(context)])
            log.info("Created the sample ERP %s with the documents of %s", erp_db, day)
        with sqlite3.connect(erp_db) as erp:
            erp.row_factory = sqlite3.Row
            company = dict(erp.execute("SELECT * FROM company LIMIT 1").fetchone())
            rows = erp.execute(
                "SELECT * FROM invoices WHERE issue_date = ? ORDER BY erp_id", (day,)
            ).fetchall()
        documents = [{key: value for key, value in dict(row).items() if value is not None} for row in rows]
        log.info("%s document(s) issued on %s in %s", len(documents), day, erp_db)
        output = setting("output", params)
        return {
            "day": day,
            "seller": company,
            "rows": documents,
            "output": output,
            "ledger": location(storage_path(output, "ledger", day)),
        }

    @task
    def validate(extracted: dict[str, Any]) -> dict[str, Any]:
        """Build and check every document; write the valid ones as JSON Lines and set the others aside."""
        import json

        from airflow_provider_cleartax.invoices import (
            InvoiceValidationError,
            Seller,
            invoice_from_row,
            invoice_identity,
            is_standard,
        )

        seller = Seller(**extracted["seller"])
        documents, rejects, lines = [], [], []
        for row in extracted["rows"]:
            try:
                invoice = invoice_from_row(row, seller=seller)
            except InvoiceValidationError as error:
                reasons = [f"{problem.path}: {problem.message}" for problem in error.problems]
                rejects.append(
                    {"invoice_number": row.get("invoice_number"), "erp_id": row["erp_id"], "reasons": reasons}
                )
                continue
            identity = invoice_identity(invoice)
            documents.append(
                {
                    "unique_id": identity.unique_id,
                    "invoice_number": identity.invoice_number,
                    "invoice_type": identity.invoice_type,
                    "issue_date": identity.issue_date.isoformat(),
                    "standard": is_standard(invoice),
                    "buyer_email": row.get("buyer_email"),
                }
            )
            lines.append(json.dumps(invoice, ensure_ascii=False))
        path = storage_path(extracted["output"], "invoices", f"{extracted['day']}.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        for reject in rejects:
            log.warning(
                "Rejected %s (ERP row %s): %s",
                reject["invoice_number"],
                reject["erp_id"],
                "; ".join(reject["reasons"]),
            )
        log.info("%s valid document(s) written to %s; %s rejected", len(documents), path, len(rejects))
        return {"path": location(path), "documents": documents, "rejects": rejects}

    extracted = extract()
    validated = validate(extracted)

    submit = ClearTaxSubmitInvoicesOperator(
        task_id="submit",
        cleartax_conn_id=CONN_ID,
        invoices=validated["path"],
        mode="async",
        ledger_path=extracted["ledger"],
        # Rejections are part of the day's summary; they must not stop the valid documents.
        fail_on_rejections=False,
    )

    wait_for_reporting = ClearTaxInvoicesReportedSensor(
        task_id="wait_for_reporting",
        cleartax_conn_id=CONN_ID,
        ledger_path=extracted["ledger"],
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        fail_on_rejections=False,
        # ZATCA must have reported a simplified invoice within 24 hours of its issue.
        timeout=timedelta(hours=20).total_seconds(),
        # When the trigger fires within seconds of deferring, Airflow 3.3's scheduler may take the
        # stale exit event of the deferring attempt for a crash of the resumed one and fail it
        # (apache/airflow#72716). A quick retry finds the invoices final and succeeds.
        retries=3,
        retry_delay=timedelta(seconds=5),
    )

    @task
    def download_pdfs(extracted: dict[str, Any], validated: dict[str, Any]) -> list[str]:
        """Store the PDF/A-3 of every cleared standard document; keep the ones already stored."""
        from airflow_provider_cleartax.bulk import Ledger
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        state = Ledger(extracted["ledger"]).state()
        folder = storage_path(extracted["output"], "pdf", extracted["day"])
        stored = []
        with ClearTaxHook(cleartax_conn_id=CONN_ID) as hook:
            for document in validated["documents"]:
                status = state.get(document["unique_id"], {}).get("status")
                if not (document["standard"] and status in CLEARED):
                    continue
                destination = folder / f"{document['invoice_number']}.pdf"
                if not destination.exists():
                    hook.download_invoice_pdf(
                        destination,
                        invoice_number=document["invoice_number"],
                        invoice_type=document["invoice_type"],
                        issue_date=document["issue_date"],
                    )
                stored.append(location(destination))
        log.info("%s PDF(s) in %s", len(stored), folder)
        return stored

    @task
    def email_buyers(extracted: dict[str, Any], validated: dict[str, Any]) -> int:
        """Email every cleared standard document to its buyer, once: sent ones are recorded per day."""
        import json

        from airflow_provider_cleartax.bulk import Ledger
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        state = Ledger(extracted["ledger"]).state()
        record = storage_path(extracted["output"], "emails", f"{extracted['day']}.json")
        sent: dict[str, str] = json.loads(record.read_text()) if record.exists() else {}
        record.parent.mkdir(parents=True, exist_ok=True)
        with ClearTaxHook(cleartax_conn_id=CONN_ID) as hook:
            for document in validated["documents"]:
                status = state.get(document["unique_id"], {}).get("status")
                if not (document["standard"] and status in CLEARED and document["buyer_email"]):
                    continue
                if document["unique_id"] in sent:
                    continue
                hook.email_invoice(
                    to=[document["buyer_email"]],
                    invoice_number=document["invoice_number"],
                    invoice_type=document["invoice_type"],
                    issue_date=document["issue_date"],
                )
                sent[document["unique_id"]] = document["buyer_email"]
                # Recorded after each mail, so a retry after a failure does not mail anyone twice.
                record.write_text(json.dumps(sent, indent=2))
        log.info("%s document(s) emailed for %s", len(sent), extracted["day"])
        return len(sent)

    @task
    def summarize(
        extracted: dict[str, Any],
        validated: dict[str, Any],
        submitted: dict[str, Any],
        reported: dict[str, Any],
        pdfs: list[str],
        emailed: int,
    ) -> dict[str, Any]:
        """Write the day's summary: counts by final status, rejects with their reasons, outputs."""
        import json

        from airflow_provider_cleartax.bulk import Ledger

        state = Ledger(extracted["ledger"]).state()
        rejected_b2c = set((reported or {}).get("rejected") or {})
        counts: dict[str, int] = {}
        rejects = [
            {"invoice_number": r["invoice_number"], "status": "INVALID", "reasons": r["reasons"]}
            for r in validated["rejects"]
        ]
        for document in validated["documents"]:
            record = state.get(document["unique_id"], {})
            status = record.get("status", "NOT_SUBMITTED")
            if status == "PENDING":
                # The sensor waited until every PENDING document was final, and failed none of them
                # unless ZATCA refused it.
                status = "NOT_REPORTED" if document["unique_id"] in rejected_b2c else "REPORTED"
            counts[status] = counts.get(status, 0) + 1
            if status not in ACCEPTED:
                reasons = [
                    f"{e.get('ErrorCode')}: {e.get('ErrorMessage')}" for e in record.get("errors") or []
                ]
                rejects.append(
                    {"invoice_number": document["invoice_number"], "status": status, "reasons": reasons}
                )
        counts["INVALID"] = len(validated["rejects"])
        summary = {
            "day": extracted["day"],
            "documents": len(extracted["rows"]),
            "counts": dict(sorted(counts.items())),
            "sent_this_run": submitted["summary"]["sent"],
            "skipped_as_done": submitted["summary"]["skipped"],
            "pdfs": len(pdfs),
            "emailed": emailed,
            "rejects": rejects,
            "ledger": extracted["ledger"],
            "pdf_folder": location(storage_path(extracted["output"], "pdf", extracted["day"])),
        }
        path = storage_path(extracted["output"], "summary", f"{extracted['day']}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
        log.info("Summary of %s written to %s: %s", extracted["day"], path, summary["counts"])
        for reject in rejects:
            log.info(
                "Rejected %s (%s): %s",
                reject["invoice_number"],
                reject["status"],
                "; ".join(reject["reasons"]),
            )
        return summary

    pdfs = download_pdfs(extracted, validated)
    emailed = email_buyers(extracted, validated)
    submit >> [wait_for_reporting, pdfs, emailed]
    summarize(extracted, validated, submit.output, wait_for_reporting.output, pdfs, emailed)
