"""The bulk sensor checks once before deferring: final invoices never go to the triggerer."""

from __future__ import annotations

from airflow_provider_cleartax.client.api import key_of_invoice
from airflow_provider_cleartax.emulator.config import DEFAULT_VAT
from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
from airflow_provider_cleartax.sensors.bulk import ClearTaxInvoicesReportedSensor
from tests.conftest import sample_invoice


def test_final_invoices_are_not_deferred(cleartax_connection: str) -> None:
    hook = ClearTaxHook(cleartax_conn_id=cleartax_connection)
    unique_ids = []
    for number in ("SIM-ND-1", "SIM-ND-2"):
        invoice = sample_invoice("simplified_invoice", number=number)
        hook.generate_invoice(invoice)
        unique_ids.append(key_of_invoice(invoice, DEFAULT_VAT).unique_id)
    sensor = ClearTaxInvoicesReportedSensor(
        task_id="wait", invoices=unique_ids, cleartax_conn_id=cleartax_connection, deferrable=True
    )
    # TaskDeferred would escape here if the sensor deferred.
    result = sensor.execute({})
    assert result["counts"] == {"REPORTED": 2} and result["pending"] == []
