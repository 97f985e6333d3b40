"""Operators under dag.test(), against the emulator over real HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_cleartax.emulator import documents
from airflow_provider_cleartax.emulator.api import FIRST_PIH
from airflow_provider_cleartax.emulator.config import DEFAULT_VAT
from tests.conftest import task_states, xcom_values


@pytest.fixture(autouse=True)
def _emulator_connection(cleartax_connection: str) -> None:
    """Point ``cleartax_default`` at a fresh emulator for every test."""


def test_invoice_flow_generates_fetches_prints_and_emails(load_dag, cleartax_emulator, tmp_path) -> None:
    run = load_dag("ct_invoice_flow").test(run_conf={"number": "INV-FLOW-7", "out": str(tmp_path)})
    states = task_states(run)
    assert run.state == "success", states
    unique_id = f"{DEFAULT_VAT}_INV-FLOW-7_388_2026"
    assert cleartax_emulator.submission_counts() == {unique_id: 1}

    generated = xcom_values(run, "generate")
    summary = generated["return_value"]
    assert summary["unique_id"] == unique_id and summary["invoice_status"] == "CLEARED" and summary["icv"]
    assert "InvoiceXml" not in str(summary) and len(str(summary)) < 1000
    assert generated["cleartax_invoice_url"].endswith(f"/ksa/einvoicing/invoices/{unique_id}")

    assert xcom_values(run, "get")["return_value"]["uuid"] == summary["uuid"]
    pdf = (tmp_path / "INV-FLOW-7.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and xcom_values(run, "download")["return_value"]["size"] == len(pdf)
    own = (tmp_path / "own-INV-FLOW-7.pdf").read_bytes()
    assert any(b"INV-FLOW-7" in body for body in documents.extract_embedded_files(own).values())
    assert xcom_values(run, "email")["return_value"]["recipients"] == 2
    assert len(cleartax_emulator.sent_emails()) == 1


def test_dry_run_invalid_and_rejected_invoices(load_dag, cleartax_emulator) -> None:
    run = load_dag("ct_generate_checks").test()
    states = task_states(run)
    assert states["dry_run"] == ("success", 1)
    assert xcom_values(run, "dry_run")["return_value"]["valid"] is True
    # Both fail on their first try although they have retries: nothing a retry could fix.
    assert states["invalid"] == ("failed", 1)
    assert states["rejected"] == ("failed", 1)
    # The invalid one never reached ClearTax; the dry run sent nothing either.
    counts = cleartax_emulator.submission_counts()
    assert list(counts) == [f"{DEFAULT_VAT}_INV-REJ-CCY_388_2026"]
    # The link still works after the failure.
    assert "INV-REJ-CCY" in xcom_values(run, "rejected")["cleartax_invoice_url"]


@pytest.mark.cleartax_emulator(async_report_delay=0.6)
def test_async_submission_waits_deferred_or_polling(load_dag, cleartax_emulator) -> None:
    run = load_dag("ct_async").test()
    assert run.state == "success", task_states(run)
    for task_id in ("deferrable_true", "deferrable_false"):
        pushed = xcom_values(run, task_id)
        assert pushed["return_value"]["invoice_status"] == "REPORTED"
        assert pushed["return_value"]["uuid"]
        assert "SIM-ASYNC" in pushed["cleartax_invoice_url"]  # pushed before deferring, kept after
    assert xcom_values(run, "no_wait")["return_value"]["invoice_status"] == "PENDING"
    assert set(cleartax_emulator.submission_counts().values()) == {1}


def test_templated_operators_run_without_a_logical_date(load_dag, cleartax_emulator, tmp_path) -> None:
    run = load_dag("ct_invoice_flow").test(
        logical_date=None, run_conf={"number": "INV-NOLD-1", "out": str(tmp_path)}
    )
    assert run.state == "success", task_states(run)


@pytest.mark.cleartax_emulator(pcsid_delay=0.5)
def test_onboarding_waits_for_the_pcsid_and_xml_uploads(load_dag, cleartax_emulator, tmp_path) -> None:
    from tests.conftest import sample_invoice

    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(
        documents.build_invoice_xml(
            sample_invoice(number="INV-XML-OP"), uuid="3cf5ee18-ee25-44ea-a444-2c37ba7f28be", icv=1, pih=""
        )
    )
    signed = documents.build_invoice_xml(
        sample_invoice(number="INV-SIGNED-OP"),
        uuid="8e6000cf-1a98-4174-b3e7-b5d5954bc10d",
        icv=3,
        pih=FIRST_PIH,
    )
    run = load_dag("ct_onboarding_xml").test(run_conf={"unsigned": str(unsigned), "signed": signed.decode()})
    states = task_states(run)
    assert run.state == "success", states
    for task_id in ("register_deferrable_true", "register_deferrable_false"):
        pushed = xcom_values(run, task_id)
        assert pushed["return_value"]["pcsid_status"] == "SUCCEEDED"
        assert pushed["cleartax_device_url"].endswith(pushed["return_value"]["device_id"])
    assert xcom_values(run, "from_xml")["return_value"]["invoice_status"] == "CLEARED"
    assert xcom_values(run, "signed_xml")["return_value"]["clearance_status"] in {
        "CLEARED",
        "ACCEPTED_WITH_WARNING",
    }


@pytest.mark.cleartax_emulator(pcsid_delay=0.2, pcsid_fail=True)
def test_failed_pcsid_fails_the_task_once(load_dag, cleartax_emulator) -> None:
    run = load_dag("ct_onboarding_xml").test(run_conf={"serial": "1-Airflow|2-Test|3-0009"})
    states = task_states(run)
    assert states["register_deferrable_true"] == ("failed", 1)
    assert states["register_deferrable_false"] == ("failed", 1)


def test_wrong_token_fails_the_operator_at_once_naming_the_connection(
    load_dag, cleartax_emulator, monkeypatch, capfd, tmp_path
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLEARTAX_DEFAULT", cleartax_emulator.airflow_conn_json(token="revoked-token")
    )
    run = load_dag("ct_invoice_flow").test(run_conf={"number": "INV-401", "out": str(tmp_path)})
    states = task_states(run)
    assert states["generate"] == ("failed", 1)  # retries=2 left unused
    assert cleartax_emulator.submission_counts() == {}
    output = capfd.readouterr()
    text = output.out + output.err
    assert "ClearTaxAuthError" in text and "'cleartax_default'" in text
    assert "revoked-token" not in text
