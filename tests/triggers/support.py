"""Emulator fixtures and helpers shared by the trigger and sensor tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_cleartax.emulator.config import (
    DEFAULT_DEVICE_ID,
    DEFAULT_TOKEN,
    DEFAULT_VAT,
    EmulatorConfig,
)
from airflow_provider_cleartax.emulator.server import EmulatorServer, conn_env_var

#: Short delays keep the PENDING -> REPORTED and IN_PROGRESS -> SUCCEEDED waits well under a second.
FAST = {"async_report_delay": 0.5, "pcsid_delay": 0.5}
CONN_ID = "cleartax_sensor_test"
SAMPLE = Path(__file__).parents[1] / "data" / "invoices" / "simplified_invoice.json"
WRONG_TOKEN = "wrong-token-Zq8+/="


@pytest.fixture(scope="session")
def _fast_emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(config=EmulatorConfig(**FAST)) as server:
        yield server


@pytest.fixture
def emulator(_fast_emulator_server: EmulatorServer) -> EmulatorServer:
    """The shared fast emulator with no invoices, activities, faults or logged requests."""
    _fast_emulator_server.reset()
    return _fast_emulator_server


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., EmulatorServer]]:
    """Start a dedicated emulator with :data:`FAST` delays overridden by the given config fields."""
    with ExitStack() as stack:

        def start(**fields: Any) -> EmulatorServer:
            return stack.enter_context(EmulatorServer(config=EmulatorConfig(**{**FAST, **fields})))

        yield start


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Point connection :data:`CONN_ID` at an emulator (optionally with another token); return its id."""

    def install(server: EmulatorServer, *, token: str | None = None) -> str:
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        monkeypatch.setenv(conn_env_var(CONN_ID), server.airflow_conn_json(token=token))
        # Resolve it once, so the first check of a test is not slowed by Airflow's first connection look-up.
        assert ClearTaxHook(cleartax_conn_id=CONN_ID).settings.base_url == server.base_url
        return CONN_ID

    return install


def _client(server: EmulatorServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"X-Cleartax-Auth-Token": DEFAULT_TOKEN, "vat": DEFAULT_VAT},
        timeout=10,
    )


def invoice(number: str, *, valid: bool = True) -> dict[str, Any]:
    """Return the sample simplified invoice renumbered; an invalid one lacks the seller's street.

    :param number: the invoice number.
    :param valid: whether ClearTax accepts it.
    """
    einvoice = copy.deepcopy(json.loads(SAMPLE.read_text(encoding="utf-8")))
    einvoice["ID"] = {"en": number, "ar": None}
    if not valid:
        del einvoice["AccountingSupplierParty"]["Party"]["PostalAddress"]["StreetName"]
    return einvoice


def unique_id(number: str) -> str:
    """Return the ``uniqueId`` of a sample invoice renumbered ``number``."""
    einvoice = invoice(number)
    return f"{DEFAULT_VAT}_{number}_388_{einvoice['IssueDate'][:4]}"


def identity(number: str) -> dict[str, str]:
    """Return the number/type/date identity of a sample invoice renumbered ``number``."""
    return {"invoiceNumber": number, "invoiceType": "INV", "issueDate": invoice(number)["IssueDate"]}


def submit(server: EmulatorServer, number: str, *, valid: bool = True, asynchronous: bool = True) -> str:
    """Generate a sample invoice (async: PENDING first; invalid: NOT_REPORTED at once); return its uniqueId.

    :param server: the emulator.
    :param number: the invoice number.
    :param valid: whether ClearTax accepts it.
    :param asynchronous: use the async endpoint (PENDING, then REPORTED after the delay).
    """
    path = "/v2/einvoices/generate/async" if asynchronous else "/v2/einvoices/generate"
    with _client(server) as client:
        response = client.post(
            path, json={"DeviceId": DEFAULT_DEVICE_ID, "EInvoice": invoice(number, valid=valid)}
        )
    response.raise_for_status()
    expected = ("PENDING" if asynchronous else "REPORTED") if valid else "NOT_REPORTED"
    assert response.json()["InvoiceStatus"] == expected
    return unique_id(number)


def start_pcsid_activity(server: EmulatorServer, serial: str = "1-Air|2-Flow|3-Test1") -> str:
    """Register a device and request its CSID; return the PCSID activity id (IN_PROGRESS).

    :param server: the emulator.
    :param serial: the device's EGS serial number.
    """
    device = {"EgsSerialNumber": serial}
    organization = {"OrganizationName": "Emulator Trading Co.", "CountryCode": "SA"}
    with _client(server) as client:
        csr = client.post(
            "/onboarding/generate-csr", json={"DeviceDetails": device, "OrganizationDetails": organization}
        )
        csr.raise_for_status()
        csid = client.post(
            "/onboarding/generate-csid", json={"DeviceId": csr.json()["DeviceId"], "Otp": "123456"}
        )
        csid.raise_for_status()
    return csid.json()["PcsidGenerationActivityId"]


def requests_to(server: EmulatorServer, endpoint: str) -> list[dict[str, Any]]:
    """Return the logged requests of one endpoint."""
    return [entry for entry in server.request_log() if entry["endpoint"] == endpoint]
