"""The daily e-invoicing example DAG under dag.test(), against the emulator over real HTTP."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from airflow_provider_cleartax.bulk import Ledger
from airflow_provider_cleartax.emulator import documents
from airflow_provider_cleartax.invoices import (
    InvoiceValidationError,
    invoice_from_row,
    is_standard,
    ksa_today,
)
from scripts.sample_erp import SAMPLE_SELLER, day_rows
from tests.conftest import task_states, xcom_values

DAG_ID = "cleartax_daily_einvoicing"
#: What the sample ERP holds for every day.
STANDARD_DOCUMENTS = 8  # six invoices, a credit note and a debit note
SIMPLIFIED_DOCUMENTS = 10  # eight invoices, a credit note and a debit note
INVALID_ROWS = 3


def _summary(run) -> dict:
    return xcom_values(run, "summarize")["return_value"]


def test_a_run_without_logical_date_handles_today_end_to_end(
    example_dag, example_env, cleartax_emulator
) -> None:
    run = example_dag(DAG_ID).test(logical_date=None)
    assert run.state == "success", task_states(run)
    today = ksa_today().isoformat()
    summary = _summary(run)
    assert summary["day"] == today
    assert summary["documents"] == STANDARD_DOCUMENTS + SIMPLIFIED_DOCUMENTS + INVALID_ROWS
    assert summary["counts"] == {
        "CLEARED": STANDARD_DOCUMENTS,
        "INVALID": INVALID_ROWS,
        "REPORTED": SIMPLIFIED_DOCUMENTS,
    }
    assert summary["sent_this_run"] == STANDARD_DOCUMENTS + SIMPLIFIED_DOCUMENTS
    assert {r["invoice_number"] for r in summary["rejects"]} == {
        f"INV-{today.replace('-', '')}-901",
        f"CRN-{today.replace('-', '')}-902",
        f"INV-{today.replace('-', '')}-903",
    }
    assert all(r["reasons"] and r["status"] == "INVALID" for r in summary["rejects"])
    assert any("buyer_vat" in reason for r in summary["rejects"] for reason in r["reasons"])

    # The ERP was created at first use; the emulator got each valid document once and reported the B2C ones.
    assert example_env["erp_db"].exists()
    counts = cleartax_emulator.submission_counts()
    assert len(counts) == STANDARD_DOCUMENTS + SIMPLIFIED_DOCUMENTS and set(counts.values()) == {1}
    statuses = cleartax_emulator.invoice_statuses()
    assert sorted(statuses.values()) == ["CLEARED"] * STANDARD_DOCUMENTS + ["REPORTED"] * SIMPLIFIED_DOCUMENTS

    # The B2C documents were submitted asynchronously and the sensor waited for them.
    ledger = Ledger(summary["ledger"]).state()
    assert sorted(record["status"] for record in ledger.values()) == (
        ["CLEARED"] * STANDARD_DOCUMENTS + ["PENDING"] * SIMPLIFIED_DOCUMENTS
    )
    assert xcom_values(run, "wait_for_reporting")["return_value"]["counts"] == {
        "REPORTED": SIMPLIFIED_DOCUMENTS
    }

    # A valid PDF/A-3 per cleared standard document, with its own XML inside.
    pdf_folder = example_env["output"] / "pdf" / today
    pdfs = sorted(pdf_folder.iterdir())
    assert len(pdfs) == summary["pdfs"] == STANDARD_DOCUMENTS
    for pdf_path in pdfs:
        pdf = pdf_path.read_bytes()
        assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
        embedded = b"".join(documents.extract_embedded_files(pdf).values())
        assert pdf_path.stem.encode() in embedded

    # Each buyer got one email per cleared standard document.
    emails = cleartax_emulator.sent_emails()
    assert len(emails) == summary["emailed"] == STANDARD_DOCUMENTS
    stored = json.loads((example_env["output"] / "summary" / f"{today}.json").read_text())
    assert stored == summary


def test_a_rerun_of_the_day_submits_and_emails_nothing_twice(
    example_dag, example_env, cleartax_emulator
) -> None:
    dag = example_dag(DAG_ID)
    first = dag.test(logical_date=None)
    assert first.state == "success", task_states(first)
    first_counts = _summary(first)["counts"]  # read now: the next dag.test() clears the DAG's earlier runs
    emails = len(cleartax_emulator.sent_emails())

    again = dag.test(logical_date=None)
    assert again.state == "success", task_states(again)
    summary = _summary(again)
    assert summary["sent_this_run"] == 0
    assert summary["skipped_as_done"] == STANDARD_DOCUMENTS + SIMPLIFIED_DOCUMENTS
    assert summary["counts"] == first_counts
    assert set(cleartax_emulator.submission_counts().values()) == {1}
    assert len(cleartax_emulator.sent_emails()) == emails


def test_the_day_param_picks_the_day(example_dag, example_env, cleartax_emulator) -> None:
    yesterday = ksa_today() - timedelta(days=1)
    run = example_dag(DAG_ID).test(run_conf={"day": yesterday.isoformat()})
    assert run.state == "success", task_states(run)
    assert _summary(run)["day"] == yesterday.isoformat()
    numbers = {key.split("_")[1] for key in cleartax_emulator.submission_counts()}
    assert all(number.split("-")[1] == f"{yesterday:%Y%m%d}" for number in numbers)


@pytest.mark.cleartax_emulator(
    faults={"generate": {"error_5xx": 0.3}, "generate_async": {"error_5xx": 0.3}}, seed=5
)
def test_flaky_clearTax_still_gets_every_document_once(example_dag, example_env, cleartax_emulator) -> None:
    run = example_dag(DAG_ID).test(logical_date=None)
    assert run.state == "success", task_states(run)
    assert _summary(run)["counts"]["CLEARED"] == STANDARD_DOCUMENTS
    counts = cleartax_emulator.submission_counts()
    assert len(counts) == STANDARD_DOCUMENTS + SIMPLIFIED_DOCUMENTS and set(counts.values()) == {1}


def test_sample_erp_day_is_the_same_mix_every_time() -> None:
    day = date(2026, 3, 15)
    rows = day_rows(day)
    assert rows == day_rows(day) and rows != day_rows(day + timedelta(days=1))
    built, invalid = [], []
    for row in rows:
        try:
            built.append(
                invoice_from_row({k: v for k, v in row.items() if v is not None}, seller=SAMPLE_SELLER)
            )
        except InvoiceValidationError:
            invalid.append(row["invoice_number"])
    assert len(invalid) == INVALID_ROWS
    assert sum(map(is_standard, built)) == STANDARD_DOCUMENTS
    assert len(built) - sum(map(is_standard, built)) == SIMPLIFIED_DOCUMENTS
