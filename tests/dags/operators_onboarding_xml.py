"""Onboard a device and wait for its PCSID; submit invoices as unsigned and as signed XML."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_cleartax.operators.cleartax import (
    ClearTaxGenerateInvoiceFromXmlOperator,
    ClearTaxRegisterDeviceOperator,
    ClearTaxSendSignedXmlOperator,
)

with DAG(
    dag_id="ct_onboarding_xml",
    schedule=None,
    params={"otp": "123456", "serial": "1-Airflow|2-Test|3-0001", "unsigned": "", "signed": ""},
):
    for deferrable in (True, False):
        ClearTaxRegisterDeviceOperator(
            task_id=f"register_deferrable_{str(deferrable).lower()}",
            device_details={"EgsSerialNumber": "{{ params.serial }}" + ("0" if deferrable else "1")},
            organization_details={"OrganizationName": "Emulator Trading Co.", "CountryCode": "SA"},
            otp="{{ params.otp }}",
            poll_interval=0.2,
            deferrable=deferrable,
        )
    ClearTaxGenerateInvoiceFromXmlOperator(task_id="from_xml", xml="{{ params.unsigned }}")
    ClearTaxSendSignedXmlOperator(task_id="signed_xml", xml="{{ params.signed }}")
