"""Onboard an EGS device (e-invoice generating unit) with ClearTax and wait until ZATCA issued its PCSID.

Trigger it by hand with the OTP from the ZATCA Fatoora portal (6 digits, valid one hour) and the
device's serial number. Registration answers with a PCSID activity id; the operator then waits for
that activity in the triggerer (deferrable), without holding a worker slot. The token of the
connection must belong to a ClearTax Admin user.

The device id is in the task's XCom (``device_id``): put it in the connection's ``device_id``
extra to generate invoices with this device.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param
from cleartax_example_settings import CONN_ID, POLL_INTERVAL

from airflow_provider_cleartax.operators.cleartax import ClearTaxRegisterDeviceOperator

with DAG(
    dag_id="cleartax_onboarding",
    description="Register an EGS device with its ZATCA OTP and wait for the production CSID",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Riyadh"),
    catchup=False,
    tags=["cleartax", "example"],
    params={
        "otp": Param(type="string", pattern=r"^\d{6}$", description="ZATCA OTP (6 digits, valid one hour)"),
        "egs_serial_number": Param(
            "1-Airflow|2-ExampleDAG|3-0001",
            type="string",
            pattern=r"^1-[a-zA-Z0-9]+\|2-[a-zA-Z0-9]+\|3-[a-zA-Z0-9]+$",
            description="EGS serial number: 1-<solution>|2-<model>|3-<serial>",
        ),
        "organization": Param(
            {
                "OrganizationName": "Emulator Trading Co.",
                "OrganizationUnitName": "Riyadh Head Office",
                "CountryCode": "SA",
                "InvoiceType": "1100",
                "LocationAddress": "King Fahd Road 2322, Riyadh 12214",
                "IndustryBusinessCategory": "Wholesale",
            },
            type="object",
            description="ClearTax OrganizationDetails; InvoiceType 1100 = standard and simplified",
        ),
    },
):
    ClearTaxRegisterDeviceOperator(
        task_id="register_device",
        cleartax_conn_id=CONN_ID,
        device_details={"EgsSerialNumber": "{{ params.egs_serial_number }}", "DeviceName": "Airflow"},
        organization_details="{{ params.organization | tojson }}",
        otp="{{ params.otp }}",
        wait_for_pcsid=True,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        execution_timeout=timedelta(minutes=30),
    )
