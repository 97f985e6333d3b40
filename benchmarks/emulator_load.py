"""Measure the emulator's throughput for get-invoice and generate under concurrent load.

The emulator runs in a child process (rate limits off, no faults); load comes from worker
processes, each running many concurrent requests on one ``aiohttp`` session (aiohttp comes with
the ``benchmarks`` extra, through the HTTP provider).

Run from the project root::

    python benchmarks/emulator_load.py --duration 10 --workers 1 --concurrency 64 --output emulator_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from typing import Any

import httpx

from airflow_provider_cleartax.emulator.config import (
    DEFAULT_DEVICE_ID,
    DEFAULT_TOKEN,
    DEFAULT_VAT,
    EmulatorConfig,
)
from airflow_provider_cleartax.emulator.server import EmulatorProcess

HEADERS = {"X-Cleartax-Auth-Token": DEFAULT_TOKEN, "vat": DEFAULT_VAT}
SCENARIOS = ("get_invoice", "generate")


def _amount(value: float) -> dict[str, Any]:
    return {"currencyID": "SAR", "value": value}


def _party(name: str, vat: str, postal_zone: str) -> dict[str, Any]:
    return {
        "PartyLegalEntity": {"RegistrationName": {"en": name, "ar": None}},
        "PartyTaxScheme": {"CompanyID": vat, "TaxScheme": {"ID": "VAT"}},
        "PartyIdentification": {"ID": {"schemeID": "CRN", "value": "1010010000"}},
        "PostalAddress": {
            "StreetName": "King Fahd Road",
            "BuildingNumber": "1234",
            "CityName": "Riyadh",
            "CitySubdivisionName": "Olaya",
            "PostalZone": postal_zone,
            "Country": {"IdentificationCode": "SA"},
        },
    }


def generate_body(number: str) -> dict[str, Any]:
    """Return a generate request for a valid standard invoice of 100 SAR + 15 % VAT.

    :param number: the invoice number.
    """
    category = {"ID": "S", "Percent": 15.0, "TaxScheme": {"ID": "VAT"}}
    invoice = {
        "ProfileID": "reporting:1.0",
        "ID": {"en": number, "ar": None},
        "InvoiceTypeCode": {"name": "0100000", "value": "388"},
        "IssueDate": datetime.date.today().isoformat(),
        "IssueTime": "00:00:01",
        "DocumentCurrencyCode": "SAR",
        "TaxCurrencyCode": "SAR",
        "AccountingSupplierParty": {"Party": _party("Emulator Trading Co.", DEFAULT_VAT, "12345")},
        "AccountingCustomerParty": {"Party": _party("Buyer Co.", "399999999900003", "23435")},
        "TaxTotal": [
            {
                "TaxAmount": _amount(15.0),
                "TaxSubtotal": [
                    {"TaxableAmount": _amount(100.0), "TaxAmount": _amount(15.0), "TaxCategory": category}
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
                "Item": {"Name": {"en": "Widget", "ar": None}, "ClassifiedTaxCategory": category},
                "Price": {"PriceAmount": _amount(100.0)},
                "InvoicedQuantity": {"unitCode": "PCE", "value": 1.0},
                "LineExtensionAmount": _amount(100.0),
                "TaxTotal": {"TaxAmount": _amount(15.0), "RoundingAmount": _amount(115.0)},
            }
        ],
    }
    return {"DeviceId": DEFAULT_DEVICE_ID, "EInvoice": invoice}


async def _load(
    base_url: str, scenario: str, worker: int, concurrency: int, duration: float
) -> dict[str, Any]:
    # aiohttp, not httpx: httpx's async pool costs far more CPU per request at high concurrency
    # (encode/httpx#3215), and on two cores the client would be measured instead of the emulator.
    import aiohttp

    numbers = itertools.count()
    latencies: list[float] = []
    errors = 0
    unique_id = f"{DEFAULT_VAT}_BENCH-SEED_388_{datetime.date.today().year}"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url + "/", headers=HEADERS, connector=connector) as session:
        deadline = time.perf_counter() + duration

        async def one_user() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    if scenario == "get_invoice":
                        request = session.get("v2/einvoices/data", params={"uniqueId": unique_id})
                    else:
                        body = generate_body(f"BENCH-{worker}-{next(numbers)}")
                        request = session.post("v2/einvoices/generate", json=body)
                    async with request as response:
                        ok = response.status == 200 and not (await response.json()).get("ErrorList")
                except aiohttp.ClientError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(one_user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "errors": errors, "elapsed": elapsed, "latencies": latencies}


def _worker(args: tuple[str, str, int, int, float]) -> dict[str, Any]:
    return asyncio.run(_load(*args))


def run_scenario(
    base_url: str, scenario: str, *, workers: int, concurrency: int, duration: float
) -> dict[str, Any]:
    """Load one endpoint from ``workers`` processes and return the combined figures.

    :param base_url: the emulator's API base URL.
    :param scenario: ``get_invoice`` or ``generate``.
    :param workers: client processes.
    :param concurrency: concurrent requests per process.
    :param duration: seconds of load.
    """
    jobs = [(base_url, scenario, worker, concurrency, duration) for worker in range(workers)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_worker, jobs)
    latencies = sorted(latency for result in results for latency in result["latencies"])
    requests = len(latencies)
    elapsed = max(result["elapsed"] for result in results)
    return {
        "scenario": scenario,
        "workers": workers,
        "concurrency": concurrency,
        "requests": requests,
        "errors": sum(result["errors"] for result in results),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(requests / elapsed, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 1),
        "latency_ms_p99": round(latencies[int(requests * 0.99) - 1] * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Start an emulator, load it scenario by scenario, print a table and write JSON.

    :param argv: command-line options; defaults to ``sys.argv[1:]``.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per scenario (default: %(default)s)"
    )
    parser.add_argument("--workers", type=int, default=1, help="client processes (default: %(default)s)")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="requests in flight per process (default: %(default)s)"
    )
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable (default: all)")
    parser.add_argument(
        "--output", default="emulator_load.json", help="JSON results file (default: %(default)s)"
    )
    args = parser.parse_args(argv)

    rows = []
    with EmulatorProcess(config=EmulatorConfig(rate_limits={})) as emulator:
        seeded = httpx.post(
            emulator.base_url + "/v2/einvoices/generate", json=generate_body("BENCH-SEED"), headers=HEADERS
        )
        seeded.raise_for_status()
        for scenario in args.scenario or SCENARIOS:
            rows.append(
                run_scenario(
                    emulator.base_url,
                    scenario,
                    workers=args.workers,
                    concurrency=args.concurrency,
                    duration=args.duration,
                )
            )

    columns = (
        "scenario",
        "requests",
        "errors",
        "seconds",
        "requests_per_second",
        "latency_ms_p50",
        "latency_ms_p99",
    )
    print(" | ".join(f"{column:>19}" for column in columns))
    for row in rows:
        print(" | ".join(f"{row[column]!s:>19}" for column in columns))
    report = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "results": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as output:
        json.dump(report, output, indent=2)
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
