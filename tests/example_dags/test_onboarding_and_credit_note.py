"""The onboarding and credit-note example DAGs under dag.test(), against the emulator over real HTTP."""

from __future__ import annotations

import sqlite3

import pytest

from airflow_provider_cleartax.emulator import documents
from airflow_provider_cleartax.emulator.config import DEFAULT_VAT
from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
from airflow_provider_cleartax.invoices import invoice_from_row, ksa_today
from scripts.sample_erp import SAMPLE_SELLER, create_sample_erp
from tests.conftest import task_states, xcom_values


def test_onboarding_registers_the_device_and_waits_for_its_pcsid(
    example_dag, example_env, cleartax_emulator
) -> None:
    run = example_dag("cleartax_onboarding").test(
        logical_date=None, run_conf={"otp": "123456", "egs_serial_number": "1-Airflow|2-Test|3-0042"}
    )
    assert run.state == "success", task_states(run)
    result = xcom_values(run, "register_device")["return_value"]
    assert result["device_id"] and len(result["pcsid_activity_id"]) == 24
    assert result["pcsid_status"] == "SUCCEEDED"


@pytest.mark.cleartax_emulator(pcsid_fail=True)
def test_onboarding_fails_when_zatca_refuses_the_pcsid(example_dag, example_env, cleartax_emulator) -> None:
    run = example_dag("cleartax_onboarding").test(logical_date=None, run_conf={"otp": "123456"})
    assert run.state == "failed"
    assert task_states(run)["register_device"][0] == "failed"


@pytest.fixture
def cleared_invoice(example_env, cleartax_connection) -> str:
    """Create the sample ERP for today and have the emulator clear its first standard invoice."""
    today = ksa_today()
    create_sample_erp(example_env["erp_db"], days=[today])
    with sqlite3.connect(example_env["erp_db"]) as erp:
        erp.row_factory = sqlite3.Row
        row = erp.execute(
            "SELECT * FROM invoices WHERE kind = 'standard' AND document = 'invoice'"
        ).fetchone()
    row = {key: value for key, value in dict(row).items() if value is not None}
    with ClearTaxHook(cleartax_conn_id=cleartax_connection) as hook:
        assert hook.generate_invoice(invoice_from_row(row, seller=SAMPLE_SELLER)).invoice_status == "CLEARED"
    return row["invoice_number"]


def test_credit_note_credits_a_cleared_invoice_and_stores_its_pdf(
    example_dag, example_env, cleartax_emulator, cleared_invoice
) -> None:
    run = example_dag("cleartax_credit_note").test(
        logical_date=None,
        run_conf={
            "invoice_number": cleared_invoice,
            "reason": "Two chairs returned",
            "lines": [{"name": "Office chair", "quantity": 2, "unit_price": "450.00"}],
        },
    )
    assert run.state == "success", task_states(run)
    issued = xcom_values(run, "issue_credit_note")["return_value"]
    credit_id = f"{DEFAULT_VAT}_CN-{cleared_invoice}_381_{ksa_today().year}"
    assert issued["unique_id"] == credit_id and issued["invoice_status"] == "CLEARED"
    assert xcom_values(run, "wait_for_credit_note")["return_value"] == {credit_id: "CLEARED"}
    assert cleartax_emulator.submission_counts()[credit_id] == 1

    pdf_path = example_env["output"] / "credit-notes" / ksa_today().isoformat() / f"CN-{cleared_invoice}.pdf"
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:]
    xml = b"".join(documents.extract_embedded_files(pdf).values())
    assert cleared_invoice.encode() in xml  # the billing reference to the original
    assert b"1035.00" in xml or b"1035" in xml  # 2 x 450 + 15 % VAT


def test_credit_note_refuses_an_invoice_clearTax_does_not_know(
    example_dag, example_env, cleartax_emulator
) -> None:
    create_sample_erp(example_env["erp_db"], days=[ksa_today()])
    number = f"INV-{ksa_today():%Y%m%d}-002"
    run = example_dag("cleartax_credit_note").test(logical_date=None, run_conf={"invoice_number": number})
    states = task_states(run)
    assert run.state == "failed"
    assert states["check_original"][0] == "failed" and states["issue_credit_note"][0] == "upstream_failed"
    assert cleartax_emulator.submission_counts() == {}
