"""Rate limits, fault injection, request log and admin API of the emulator, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_cleartax.emulator.config import (
    DEFAULT_DEVICE_ID,
    DEFAULT_RATE_LIMITS,
    DEFAULT_TOKEN,
    DEFAULT_VAT,
    EmulatorConfig,
    FaultSpec,
)
from airflow_provider_cleartax.emulator.control import Control, fault_spec_from_mapping
from airflow_provider_cleartax.emulator.server import EmulatorServer

pytestmark = pytest.mark.integration

#: A token with characters that need escaping in JSON, URLs, shells and HTML.
SPECIAL_TOKEN = "tok_S3cr3t+/=%&\"'<>;,~!x9 :{}"
LOG_KEYS = {
    "seq",
    "time",
    "request_id",
    "endpoint",
    "method",
    "path",
    "status",
    "duration_ms",
    "fault",
    "throttled",
    "delay_ms",
}


def _amount(value: float) -> dict[str, Any]:
    return {"currencyID": "SAR", "value": value}


def _party(name: str, vat: str, street: str, postal_zone: str) -> dict[str, Any]:
    return {
        "PartyLegalEntity": {"RegistrationName": {"en": name, "ar": None}},
        "PartyTaxScheme": {"CompanyID": vat, "TaxScheme": {"ID": "VAT"}},
        "PartyIdentification": {"ID": {"schemeID": "CRN", "value": "1010010000"}},
        "PostalAddress": {
            "StreetName": street,
            "BuildingNumber": "1234",
            "CityName": "Riyadh",
            "CitySubdivisionName": "Olaya",
            "PostalZone": postal_zone,
            "Country": {"IdentificationCode": "SA"},
        },
    }


def make_invoice(number: str) -> dict[str, Any]:
    """Return a valid standard tax invoice of 100 SAR + 15 % VAT from the default seller."""
    tax_category = {"ID": "S", "Percent": 15.0, "TaxScheme": {"ID": "VAT"}}
    return {
        "ProfileID": "reporting:1.0",
        "ID": {"en": number, "ar": None},
        "InvoiceTypeCode": {"name": "0100000", "value": "388"},
        "IssueDate": datetime.date.today().isoformat(),
        "IssueTime": "00:00:01",
        "DocumentCurrencyCode": "SAR",
        "TaxCurrencyCode": "SAR",
        "AccountingSupplierParty": {
            "Party": _party("Emulator Trading Co.", DEFAULT_VAT, "King Fahd Road", "12345")
        },
        "AccountingCustomerParty": {
            "Party": _party("Buyer Co.", "399999999900003", "Tahlia Street", "23435")
        },
        "TaxTotal": [
            {
                "TaxAmount": _amount(15.0),
                "TaxSubtotal": [
                    {"TaxableAmount": _amount(100.0), "TaxAmount": _amount(15.0), "TaxCategory": tax_category}
                ],
            }
        ],
        "LegalMonetaryTotal": {
            "LineExtensionAmount": _amount(100.0),
            "TaxExclusiveAmount": _amount(100.0),
            "TaxInclusiveAmount": _amount(115.0),
            "AllowanceTotalAmount": _amount(0.0),
            "PrepaidAmount": _amount(0.0),
            "PayableAmount": _amount(115.0),
        },
        "InvoiceLine": [
            {
                "ID": "1",
                "Item": {"Name": {"en": "Widget", "ar": None}, "ClassifiedTaxCategory": tax_category},
                "Price": {"PriceAmount": _amount(100.0)},
                "InvoicedQuantity": {"unitCode": "PCE", "value": 1.0},
                "LineExtensionAmount": _amount(100.0),
                "TaxTotal": {"TaxAmount": _amount(15.0), "RoundingAmount": _amount(115.0)},
            }
        ],
    }


def unique_id(number: str) -> str:
    return f"{DEFAULT_VAT}_{number}_388_{datetime.date.today().year}"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(tokens={DEFAULT_TOKEN: (), SPECIAL_TOKEN: ()})
    with EmulatorServer(config=config) as running:
        yield running


@pytest.fixture
def emulator(server: EmulatorServer) -> EmulatorServer:
    server.reset()
    return server


def api_client(server: EmulatorServer, token: str = DEFAULT_TOKEN, **headers: str) -> httpx.Client:
    headers = {"X-Cleartax-Auth-Token": token, "vat": DEFAULT_VAT, **headers}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=10.0)


def generate(client: httpx.Client, number: str, **kwargs: Any) -> httpx.Response:
    body = {"DeviceId": DEFAULT_DEVICE_ID, "EInvoice": make_invoice(number)}
    return client.post("/v2/einvoices/generate", json=body, **kwargs)


def get_invoice(client: httpx.Client, number: str) -> httpx.Response:
    return client.get("/v2/einvoices/data", params={"uniqueId": unique_id(number)})


class TestRateLimits:
    def test_limit_answers_429_with_retry_after_and_is_per_token(self, emulator: EmulatorServer) -> None:
        emulator.set_rate_limits({"get_invoice": 3})
        with api_client(emulator) as first, api_client(emulator, SPECIAL_TOKEN) as second:
            statuses = [get_invoice(first, "INV-1").status_code for _ in range(3)]
            limited = get_invoice(first, "INV-1")
            other_token = get_invoice(second, "INV-1")

        assert statuses == [404, 404, 404]
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json()["ErrorList"][0]["ErrorSource"] == "CLEARTAX"
        assert other_token.status_code == 404
        throttled = [entry for entry in emulator.request_log() if entry["throttled"]]
        assert [entry["status"] for entry in throttled] == [429]

    def test_documented_limit_is_on_by_default(self, emulator: EmulatorServer) -> None:
        assert emulator.rate_limits() == DEFAULT_RATE_LIMITS
        with api_client(emulator) as client:
            statuses = [
                client.post(
                    "/v3/einvoices/get-bulk", json={"Invoices": [{"uniqueId": unique_id("X")}]}
                ).status_code
                for _ in range(DEFAULT_RATE_LIMITS["get_bulk"] + 1)
            ]
        assert statuses[:-1] == [200] * DEFAULT_RATE_LIMITS["get_bulk"]
        assert statuses[-1] == 429

    def test_limits_can_be_turned_off(self, emulator: EmulatorServer) -> None:
        emulator.set_rate_limits({})
        with api_client(emulator) as client:
            statuses = {
                client.post(
                    "/v3/einvoices/get-bulk", json={"Invoices": [{"uniqueId": unique_id("X")}]}
                ).status_code
                for _ in range(DEFAULT_RATE_LIMITS["get_bulk"] + 5)
            }
        assert statuses == {200}

    def test_unknown_tokens_are_not_counted(self, emulator: EmulatorServer) -> None:
        emulator.set_rate_limits({"get_invoice": 1})
        with api_client(emulator, "not-a-token") as client:
            statuses = {get_invoice(client, "INV-1").status_code for _ in range(3)}
        assert statuses == {401}

    def test_window_slides(self) -> None:
        now = [1000.0]
        control = Control(config=EmulatorConfig(rate_limits={"email": 2}), routes=[], clock=lambda: now[0])

        assert control.consume_rate_limit(DEFAULT_TOKEN, "email") is None
        now[0] += 10
        assert control.consume_rate_limit(DEFAULT_TOKEN, "email") is None
        now[0] += 10
        assert control.consume_rate_limit(DEFAULT_TOKEN, "email") == 40
        now[0] = 1060.5
        assert control.consume_rate_limit(DEFAULT_TOKEN, "email") is None
        assert control.consume_rate_limit(DEFAULT_TOKEN, "email") == 10
        assert control.consume_rate_limit(DEFAULT_TOKEN, "get_bulk") is None


class TestFaults:
    def test_5xx_answers_without_processing(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("generate", FaultSpec(error_5xx=1.0))
        with api_client(emulator) as client:
            response = generate(client, "INV-5XX")

        assert response.status_code in {500, 502, 503}
        assert response.json()["ErrorList"][0]["ErrorCode"] == "4040"
        assert emulator.submission_counts() == {}
        assert emulator.invoice_statuses() == {}

    def test_injected_429_answers_without_processing(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("generate", {"rate_limit": 1.0})
        with api_client(emulator) as client:
            response = generate(client, "INV-429")

        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert emulator.submission_counts() == {}
        assert emulator.request_log()[-1]["fault"] == "rate_limit"

    def test_timeout_after_processing_stores_the_invoice(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("generate", {"timeout_after_processing": 1.0, "hold_seconds": 30.0})
        with api_client(emulator) as client, pytest.raises(httpx.ReadTimeout):
            generate(client, "INV-HELD", timeout=httpx.Timeout(10.0, read=0.5))

        assert emulator.submission_counts() == {unique_id("INV-HELD"): 1}
        assert emulator.invoice_statuses() == {unique_id("INV-HELD"): "CLEARED"}
        with api_client(emulator) as client:
            assert get_invoice(client, "INV-HELD").json()["InvoiceStatus"] == "CLEARED"

    async def test_held_answer_does_not_block_other_requests(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("generate", {"timeout_after_processing": 1.0, "hold_seconds": 30.0})
        headers = {"X-Cleartax-Auth-Token": DEFAULT_TOKEN, "vat": DEFAULT_VAT}
        async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers, timeout=5.0) as client:
            body = {"DeviceId": DEFAULT_DEVICE_ID, "EInvoice": make_invoice("INV-HOLD")}
            held = asyncio.create_task(client.post("/v2/einvoices/generate", json=body))
            while not emulator.submission_counts():
                await asyncio.sleep(0.01)
            other = await client.get("/v2/einvoices/data", params={"uniqueId": unique_id("INV-HOLD")})
            assert not held.done()
            held.cancel()

        assert other.status_code == 200

    def test_held_answer_is_delivered_after_hold(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("generate", {"timeout_after_processing": 1.0, "hold_seconds": 0.2})
        with api_client(emulator) as client:
            response = generate(client, "INV-LATE")

        assert response.status_code == 200
        assert response.json()["InvoiceStatus"] == "CLEARED"
        entry = emulator.request_log()[-1]
        assert (entry["fault"], entry["status"]) == ("timeout_after_processing", 200)
        assert entry["duration_ms"] >= 200

    def test_connection_reset_is_a_transport_error(
        self, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        emulator.set_faults("generate", {"connection_reset": 1.0})
        with caplog.at_level(logging.WARNING), api_client(emulator) as client:
            with pytest.raises(httpx.TransportError):
                generate(client, "INV-RESET")
            emulator.clear_faults()
            after = generate(client, "INV-AFTER")

        assert emulator.submission_counts() == {unique_id("INV-AFTER"): 1}
        assert after.status_code == 200
        assert not [record for record in caplog.records if record.name.startswith("uvicorn")]

    def test_latency_and_jitter_delay_the_answer(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("get_invoice", {"latency_ms": 150.0, "jitter_ms": 100.0})
        with api_client(emulator) as client:
            for _ in range(3):
                get_invoice(client, "INV-1")

        entries = emulator.request_log()
        assert all(150.0 <= entry["delay_ms"] <= 250.0 for entry in entries)
        assert all(entry["duration_ms"] >= 150.0 for entry in entries)
        assert len({entry["delay_ms"] for entry in entries}) > 1

    def test_wildcard_applies_to_endpoints_without_their_own_spec(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("*", {"error_5xx": 1.0})
        emulator.set_faults("get_invoice", {"latency_ms": 1.0})
        with api_client(emulator) as client:
            bulk = client.post("/v3/einvoices/get-bulk", json={"Invoices": [{"uniqueId": unique_id("X")}]})
            single = get_invoice(client, "INV-1")

        assert bulk.status_code >= 500
        assert single.status_code == 404

    def test_same_seed_replays_the_same_faults(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("get_invoice", {"error_5xx": 0.4, "rate_limit": 0.2, "jitter_ms": 5.0})

        def run() -> list[tuple[int, float]]:
            emulator.seed(1234)
            with api_client(emulator) as client:
                statuses = [get_invoice(client, "INV-1").status_code for _ in range(30)]
            delays = [entry["delay_ms"] for entry in emulator.request_log()[-30:]]
            return list(zip(statuses, delays, strict=True))

        first, second = run(), run()
        assert first == second
        assert {status for status, _ in first} >= {404, 429} and max(status for status, _ in first) >= 500

    def test_reset_restores_configured_faults_and_limits(self, emulator: EmulatorServer) -> None:
        emulator.set_faults("generate", {"error_5xx": 1.0})
        emulator.set_rate_limits({"generate": 1})
        with api_client(emulator) as client:
            generate(client, "INV-1")
        emulator.reset()

        assert emulator.faults() == {}
        assert emulator.rate_limits() == DEFAULT_RATE_LIMITS
        assert emulator.request_log() == []


class TestRequestLog:
    def test_never_contains_the_token(self, emulator: EmulatorServer) -> None:
        with api_client(
            emulator, SPECIAL_TOKEN, **{"X-Request-Id": "req-42", "X-Other": "other-value"}
        ) as client:
            generate(client, "INV-LOG")
            get_invoice(client, "INV-LOG")
            client.get("/v2/einvoices/nowhere")

        entries = emulator.request_log()
        dumped = json.dumps(entries)
        for form in (
            SPECIAL_TOKEN,
            json.dumps(SPECIAL_TOKEN)[1:-1],
            urllib.parse.quote(SPECIAL_TOKEN),
            "S3cr3t",
        ):
            assert form not in dumped
        assert "other-value" not in dumped
        assert [(e["endpoint"], e["status"], e["request_id"]) for e in entries] == [
            ("generate", 200, "req-42"),
            ("get_invoice", 200, "req-42"),
            (None, 404, "req-42"),
        ]
        assert all(set(entry) == LOG_KEYS for entry in entries)

    def test_since_returns_newer_entries(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            get_invoice(client, "INV-1")
            last = emulator.request_log()[-1]["seq"]
            client.get("/onboarding/0123456789abcdef01234567/pcsid-status")

        newer = emulator.request_log(since=last)
        assert [entry["endpoint"] for entry in newer] == ["pcsid_status"]

    def test_admin_calls_are_not_logged(self, emulator: EmulatorServer) -> None:
        emulator.health()
        emulator.faults()
        assert emulator.request_log() == []


class TestAdminApi:
    @pytest.mark.parametrize(
        ("endpoint", "spec", "message"),
        [
            ("nope", {"error_5xx": 0.1}, "unknown endpoint"),
            ("generate", {"error_5xx": 1.5}, "probability"),
            ("generate", {"explode": 1.0}, "unknown fault field"),
            ("generate", {"latency_ms": "slow"}, "must be a number"),
        ],
    )
    def test_bad_fault_specs_are_rejected(
        self, emulator: EmulatorServer, endpoint: str, spec: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            emulator.set_faults(endpoint, spec)
        assert emulator.faults() == {}

    def test_replacing_all_faults(self, emulator: EmulatorServer) -> None:
        with httpx.Client(base_url=emulator.admin_url) as admin:
            response = admin.put("/faults", json={"email": {"latency_ms": 5}, "*": {"jitter_ms": 1}})
            bad = admin.put("/faults", json=["generate"])

        assert response.json()["email"] == {**vars(FaultSpec()), "latency_ms": 5.0}
        assert set(emulator.faults()) == {"email", "*"}
        assert bad.status_code == 400

    @pytest.mark.parametrize("limits", [{"generate": 0}, {"nope": 5}, {"generate": 2.5}])
    def test_bad_rate_limits_are_rejected(self, emulator: EmulatorServer, limits: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            emulator.set_rate_limits(limits)
        assert emulator.rate_limits() == DEFAULT_RATE_LIMITS

    def test_seed_requires_an_integer(self, emulator: EmulatorServer) -> None:
        with pytest.raises(ValueError, match="seed"):
            emulator._admin("POST", "/seed", json={"seed": "x"})

    def test_state_views(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            generate(client, "INV-VIEW")
            generate(client, "INV-VIEW")

        assert emulator.health() == {"status": "ok"}
        assert emulator.submission_counts() == {unique_id("INV-VIEW"): 2}
        assert emulator.invoice_statuses() == {unique_id("INV-VIEW"): "CLEARED"}
        assert emulator.sent_emails() == []


def test_fault_spec_from_mapping_fills_defaults() -> None:
    assert fault_spec_from_mapping({"connection_reset": 1}) == FaultSpec(connection_reset=1.0)
    with pytest.raises(ValueError, match="finite"):
        fault_spec_from_mapping({"latency_ms": float("inf")})
