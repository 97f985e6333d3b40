"""Fixtures of the emulator API tests: a uvicorn server on loopback, a movable clock, invoice builders."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from airflow_provider_cleartax.emulator.api import Emulator
from airflow_provider_cleartax.emulator.config import (
    API_PREFIX,
    DEFAULT_DEVICE_ID,
    DEFAULT_TOKEN,
    DEFAULT_VAT,
    EmulatorConfig,
)

TOKEN = DEFAULT_TOKEN
VAT = DEFAULT_VAT
DEVICE_ID = DEFAULT_DEVICE_ID
BUYER_VAT = "399999999900003"
#: Fake "now" of every test: 2026-03-15 10:00:00 in Riyadh.
START = datetime(2026, 3, 15, 7, 0, 0, tzinfo=timezone.utc).timestamp()
TODAY = "2026-03-15"


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        :param seconds: how far.
        """
        self.now += seconds


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn from a background thread on a free loopback port; yield its root URL.

    :param app: the ASGI app.
    """
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="emulator-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("emulator test server did not start")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclasses.dataclass
class Env:
    """One running emulator: the object, its clock and an HTTP client with valid default headers."""

    emulator: Emulator
    clock: FakeClock
    client: httpx.Client
    root_url: str

    def generate(
        self,
        einvoice: dict[str, Any],
        *,
        device_id: str = DEVICE_ID,
        path: str = "/v2/einvoices/generate",
        **kwargs: Any,
    ) -> httpx.Response:
        """Post ``einvoice`` to a JSON generate endpoint."""
        return self.client.post(path, json={"DeviceId": device_id, "EInvoice": einvoice}, **kwargs)


def _client(root_url: str) -> httpx.Client:
    return httpx.Client(
        base_url=root_url + API_PREFIX, headers={"X-Cleartax-Auth-Token": TOKEN, "vat": VAT}, timeout=10
    )


@pytest.fixture(scope="session")
def _shared_env() -> Iterator[Env]:
    clock = FakeClock()
    emulator = Emulator(EmulatorConfig(async_report_delay=2.0, pcsid_delay=2.0), clock=clock)
    with serve(Starlette(routes=emulator.routes())) as root_url, _client(root_url) as client:
        yield Env(emulator=emulator, clock=clock, client=client, root_url=root_url)
    emulator.close()


@pytest.fixture
def env(_shared_env: Env) -> Env:
    """The shared emulator, reset, with its clock back at :data:`START`."""
    _shared_env.clock.now = START
    _shared_env.emulator.reset()
    return _shared_env


@pytest.fixture
def make_env() -> Iterator[Callable[..., Env]]:
    """Start a dedicated emulator with the given :class:`EmulatorConfig` fields; stopped after the test."""
    with ExitStack() as stack:

        def start(*, clock: Callable[[], float] | None = None, **fields: Any) -> Env:
            the_clock = clock or FakeClock()
            emulator = Emulator(EmulatorConfig(**fields), clock=the_clock)
            stack.callback(emulator.close)
            root_url = stack.enter_context(serve(Starlette(routes=emulator.routes())))
            client = stack.enter_context(_client(root_url))
            return Env(emulator=emulator, clock=the_clock, client=client, root_url=root_url)  # type: ignore[arg-type]

        yield start


def sar(value: float) -> dict[str, Any]:
    """Return a SAR amount object."""
    return {"currencyID": "SAR", "value": value}


def _party(*, vat: str, name: str, street: str = "King Fahd Road") -> dict[str, Any]:
    return {
        "Party": {
            "PartyLegalEntity": {"RegistrationName": {"en": name, "ar": None}},
            "PartyTaxScheme": {"CompanyID": vat, "TaxScheme": {"ID": "VAT"}},
            "PartyIdentification": {"ID": {"schemeID": "CRN", "value": "1010010000"}},
            "PostalAddress": {
                "StreetName": street,
                "BuildingNumber": "1234",
                "CityName": "Riyadh",
                "CitySubdivisionName": "Al Olaya",
                "PostalZone": "12345",
                "Country": {"IdentificationCode": "SA"},
            },
        }
    }


def make_invoice(
    number: str = "INV-0001",
    *,
    name: str = "0100000",
    code: str = "388",
    issue_date: str = TODAY,
    net: float = 100.0,
) -> dict[str, Any]:
    """Return a valid E-Invoice (standard tax invoice by default) with one 15 % line.

    :param number: invoice number.
    :param name: ``InvoiceTypeCode.name`` (``01...`` standard, ``02...`` simplified).
    :param code: ``InvoiceTypeCode.value``.
    :param issue_date: ``YYYY-MM-DD``.
    :param net: net amount of the single line.
    """
    tax = round(net * 0.15, 2)
    einvoice: dict[str, Any] = {
        "ProfileID": "reporting:1.0",
        "ID": {"en": number, "ar": None},
        "InvoiceTypeCode": {"name": name, "value": code},
        "IssueDate": issue_date,
        "IssueTime": "09:30:00",
        "DocumentCurrencyCode": "SAR",
        "TaxCurrencyCode": "SAR",
        "Delivery": [{"ActualDeliveryDate": issue_date}],
        "AccountingSupplierParty": _party(vat=VAT, name="Emulator Trading Co."),
        "AccountingCustomerParty": _party(vat=BUYER_VAT, name="Buyer Co.", street="Olaya Street"),
        "PaymentMeans": [{"PaymentMeansCode": "10"}],
        "TaxTotal": [
            {
                "TaxAmount": sar(tax),
                "TaxSubtotal": [
                    {
                        "TaxableAmount": sar(net),
                        "TaxAmount": sar(tax),
                        "TaxCategory": {"ID": "S", "Percent": 15, "TaxScheme": {"ID": "VAT"}},
                    }
                ],
            },
            {"TaxAmount": sar(tax)},
        ],
        "LegalMonetaryTotal": {
            "LineExtensionAmount": sar(net),
            "TaxExclusiveAmount": sar(net),
            "TaxInclusiveAmount": sar(net + tax),
            "AllowanceTotalAmount": sar(0),
            "PrepaidAmount": sar(0),
            "PayableAmount": sar(net + tax),
        },
        "InvoiceLine": [
            {
                "ID": "1",
                "Item": {
                    "Name": {"en": "Widget", "ar": None},
                    "ClassifiedTaxCategory": {"ID": "S", "Percent": 15, "TaxScheme": {"ID": "VAT"}},
                },
                "Price": {"PriceAmount": sar(net)},
                "InvoicedQuantity": {"unitCode": "PCE", "value": 1},
                "LineExtensionAmount": sar(net),
                "TaxTotal": {"TaxAmount": sar(tax), "RoundingAmount": sar(net + tax)},
            }
        ],
    }
    if code in {"381", "383"}:
        einvoice["BillingReference"] = [{"InvoiceDocumentReference": {"ID": {"en": "INV-0001", "ar": None}}}]
        einvoice["PaymentMeans"] = [{"PaymentMeansCode": "10", "InstructionNote": "CAN"}]
    return einvoice


def simplified(number: str = "SIM-0001", **kwargs: Any) -> dict[str, Any]:
    """Return a valid simplified (B2C) invoice without buyer."""
    einvoice = make_invoice(number, name="0200000", **kwargs)
    del einvoice["AccountingCustomerParty"]
    return einvoice


def unique_id(number: str, code: str = "388", year: str = TODAY[:4]) -> str:
    """Return the ``uniqueId`` of an invoice of the default seller."""
    return f"{VAT}_{number}_{code}_{year}"


def mutate(einvoice: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Return a changed deep copy of ``einvoice``."""
    result = copy.deepcopy(einvoice)
    change(result)
    return result
