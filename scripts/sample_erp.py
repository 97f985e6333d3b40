"""Create a sample ERP: a SQLite database of one seller's sales documents, a realistic day's mix per date.

Each day holds standard (B2B) and simplified (B2C) invoices, a credit note and a debit note of
each kind against that day's invoices, and a few rows a clerk got wrong (the daily DAG must reject
them with a reason and carry on). Rows use the keys of
:func:`airflow_provider_cleartax.invoices.invoice_from_row`, plus ``erp_id`` and ``buyer_email``;
``lines`` is JSON text. The seller's details live in the ``company`` table.

Run ``python -m scripts.sample_erp PATH [--day YYYY-MM-DD ...]`` to create or extend a database.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow_provider_cleartax.invoices import Seller, ksa_today

#: The emulator's default seller; any seller works as long as its VAT is the connection's.
SAMPLE_SELLER = Seller(
    vat="300000000000003",
    name_en="Emulator Trading Co.",
    name_ar="شركة المحاكي التجارية",
    street="King Fahd Road",
    building="2322",
    city="Riyadh",
    district="Al Olaya",
    postal_code="12214",
    crn="1010010000",
)

COMPANY_COLUMNS = (
    "vat",
    "name_en",
    "name_ar",
    "street",
    "building",
    "city",
    "district",
    "postal_code",
    "crn",
)
INVOICE_COLUMNS = (
    "invoice_number",
    "issue_date",
    "issue_time",
    "kind",
    "document",
    "buyer_name",
    "buyer_name_ar",
    "buyer_vat",
    "buyer_street",
    "buyer_building",
    "buyer_district",
    "buyer_city",
    "buyer_postal_code",
    "buyer_country",
    "buyer_email",
    "billing_reference",
    "reason",
    "currency",
    "lines",
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS company (
    vat TEXT PRIMARY KEY, name_en TEXT NOT NULL, name_ar TEXT, street TEXT NOT NULL, building TEXT NOT NULL,
    city TEXT NOT NULL, district TEXT, postal_code TEXT NOT NULL, crn TEXT
);
CREATE TABLE IF NOT EXISTS invoices (
    erp_id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{column} TEXT" for column in INVOICE_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS invoices_by_day ON invoices (issue_date);
"""


@dataclass(frozen=True)
class _Buyer:
    name: str
    name_ar: str
    vat: str
    street: str
    building: str
    district: str
    city: str
    postal_code: str
    email: str


_BUSINESS_BUYERS = (
    _Buyer(
        "Al Noor Hospital",
        "مستشفى النور",
        "310122393500003",
        "Prince Sultan Street",
        "3456",
        "Al Rawdah",
        "Jeddah",
        "23435",
        "accounts@alnoor.example",
    ),
    _Buyer(
        "Red Sea Logistics",
        "لوجستيات البحر الأحمر",
        "311111111100003",
        "Corniche Road",
        "7788",
        "Al Shati",
        "Jeddah",
        "23511",
        "ap@redsea-logistics.example",
    ),
    _Buyer(
        "Najd Engineering",
        "نجد للهندسة",
        "312345678900003",
        "Olaya Street",
        "1020",
        "Al Olaya",
        "Riyadh",
        "12211",
        "finance@najd-eng.example",
    ),
    _Buyer(
        "Eastern Catering",
        "تموين الشرقية",
        "300987654300003",
        "Dhahran Road",
        "4410",
        "Al Khobar North",
        "Al Khobar",
        "34428",
        "billing@eastern-catering.example",
    ),
)

_PRODUCTS = (
    # name, Arabic name, unit price (SAR, net of VAT), unit code
    ("Office chair", "كرسي مكتب", "450.00", "PCE"),
    ("Laser printer toner", "حبر طابعة ليزر", "189.50", "PCE"),
    ("A4 paper, box of 5 reams", "ورق A4 صندوق 5 رزم", "92.75", "BX"),
    ("Network switch, 24 ports", "محول شبكة 24 منفذ", "1325.00", "PCE"),
    ("Maintenance visit", "زيارة صيانة", "600.00", "HUR"),
    ("Bottled water, carton", "مياه معبأة كرتون", "14.25", "CT"),
)
_MEDICINE = ("First-aid kit, medical", "حقيبة إسعافات أولية طبية", "240.00", "PCE")


def _line(product: Sequence[str], quantity: int) -> dict[str, Any]:
    name, name_ar, price, unit = product
    return {"name": name, "name_ar": name_ar, "quantity": quantity, "unit_price": price, "unit_code": unit}


def _zero_rated(product: Sequence[str], quantity: int) -> dict[str, Any]:
    return _line(product, quantity) | {
        "vat_category": "Z",
        "exemption_code": "VATEX-SA-35",
        "exemption_reason": "Medicines and medical equipment",
    }


def _buyer_columns(buyer: _Buyer) -> dict[str, Any]:
    return {
        "buyer_name": buyer.name,
        "buyer_name_ar": buyer.name_ar,
        "buyer_vat": buyer.vat,
        "buyer_street": buyer.street,
        "buyer_building": buyer.building,
        "buyer_district": buyer.district,
        "buyer_city": buyer.city,
        "buyer_postal_code": buyer.postal_code,
        "buyer_email": buyer.email,
    }


def day_rows(day: date) -> list[dict[str, Any]]:
    """Return the sales documents of one day, the same ones every time for the same date.

    Six standard invoices, eight simplified ones, a credit note and a debit note of each kind,
    and three faulty rows: 21 in all, 18 of them valid.

    :param day: the issue date of every row.
    """
    rng = random.Random(day.toordinal())
    stamp = day.strftime("%Y%m%d")
    clock = datetime.combine(day, datetime.min.time()) + timedelta(hours=8)
    rows: list[dict[str, Any]] = []

    def add(number: str, kind: str, document: str, lines: list[dict[str, Any]], **columns: Any) -> None:
        nonlocal clock
        clock += timedelta(minutes=rng.randint(7, 35))
        rows.append(
            {
                "invoice_number": number,
                "issue_date": day.isoformat(),
                "issue_time": clock.strftime("%H:%M:%S"),
                "kind": kind,
                "document": document,
                "currency": "SAR",
                "lines": json.dumps(lines, ensure_ascii=False),
                **columns,
            }
        )

    def basket(size: int) -> list[dict[str, Any]]:
        return [_line(product, rng.randint(1, 12)) for product in rng.sample(_PRODUCTS, size)]

    for index in range(1, 7):
        buyer = _BUSINESS_BUYERS[(index - 1) % len(_BUSINESS_BUYERS)]
        lines = basket(rng.randint(1, 3))
        if buyer.name == "Al Noor Hospital":
            lines.append(_zero_rated(_MEDICINE, rng.randint(5, 20)))
        add(f"INV-{stamp}-{index:03d}", "standard", "invoice", lines, **_buyer_columns(buyer))
    for index in range(1, 9):
        add(f"SIM-{stamp}-{index:03d}", "simplified", "invoice", basket(rng.randint(1, 2)))

    first_buyer = _buyer_columns(_BUSINESS_BUYERS[0])
    add(
        f"CRN-{stamp}-001",
        "standard",
        "credit_note",
        [_line(_PRODUCTS[0], 1)],
        billing_reference=f"INV-{stamp}-001",
        reason="Returned goods",
        **first_buyer,
    )
    add(
        f"DBN-{stamp}-001",
        "standard",
        "debit_note",
        [_line(_PRODUCTS[4], 2)],
        billing_reference=f"INV-{stamp}-003",
        reason="Extra maintenance hours",
        **_buyer_columns(_BUSINESS_BUYERS[2]),
    )
    add(
        f"SCN-{stamp}-001",
        "simplified",
        "credit_note",
        [_line(_PRODUCTS[5], 1)],
        billing_reference=f"SIM-{stamp}-002",
        reason="Damaged carton refunded",
    )
    add(
        f"SDN-{stamp}-001",
        "simplified",
        "debit_note",
        [_line(_PRODUCTS[5], 2)],
        billing_reference=f"SIM-{stamp}-004",
        reason="Delivery charge omitted",
    )

    # Mistakes a clerk makes; each breaks one of ClearTax's rules.
    no_vat = {**_buyer_columns(_BUSINESS_BUYERS[1]), "buyer_vat": None}
    add(f"INV-{stamp}-901", "standard", "invoice", basket(1), **no_vat)
    add(
        f"CRN-{stamp}-902",
        "standard",
        "credit_note",
        [_line(_PRODUCTS[1], 1)],
        reason="Price correction",
        **_buyer_columns(_BUSINESS_BUYERS[3]),
    )
    bad_exemption = [_line(_MEDICINE, 3) | {"vat_category": "Z"}]
    add(f"INV-{stamp}-903", "standard", "invoice", bad_exemption, **_buyer_columns(_BUSINESS_BUYERS[0]))
    return rows


def connect(path: Path | str) -> sqlite3.Connection:
    """Open the ERP database, creating its tables if needed; rows come back as ``sqlite3.Row``.

    :param path: the SQLite file.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path))
    connection.row_factory = sqlite3.Row
    connection.executescript(_SCHEMA)
    return connection


def create_sample_erp(path: Path | str, *, days: Iterable[date], seller: Seller = SAMPLE_SELLER) -> int:
    """Create (or extend) the ERP database with the rows of each day it does not hold yet.

    Returns how many rows were added; a day already present is left alone, so this is safe to
    call again.

    :param path: the SQLite file.
    :param days: issue dates to fill.
    :param seller: the company the invoices are issued by.
    """
    added = 0
    with connect(path) as connection:
        connection.execute(
            f"INSERT OR REPLACE INTO company ({', '.join(COMPANY_COLUMNS)}) "
            f"VALUES ({', '.join(':' + column for column in COMPANY_COLUMNS)})",
            asdict(seller),
        )
        for day in days:
            present = connection.execute(
                "SELECT COUNT(*) FROM invoices WHERE issue_date = ?", (day.isoformat(),)
            ).fetchone()[0]
            if present:
                continue
            rows = day_rows(day)
            connection.executemany(
                f"INSERT INTO invoices ({', '.join(INVOICE_COLUMNS)}) "
                f"VALUES ({', '.join(':' + column for column in INVOICE_COLUMNS)})",
                [{column: row.get(column) for column in INVOICE_COLUMNS} for row in rows],
            )
            added += len(rows)
    connection.close()
    return added


def main(argv: Sequence[str] | None = None) -> int:
    """Create or extend a sample ERP database from the command line."""
    parser = argparse.ArgumentParser(prog="python -m scripts.sample_erp", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="SQLite file to create or extend")
    parser.add_argument(
        "--day",
        action="append",
        type=date.fromisoformat,
        help="issue date to fill (YYYY-MM-DD, repeatable); default: today in Saudi Arabia",
    )
    args = parser.parse_args(argv)
    days = args.day or [ksa_today()]
    added = create_sample_erp(args.path, days=days)
    print(f"{args.path}: added {added} rows for {', '.join(day.isoformat() for day in days)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
