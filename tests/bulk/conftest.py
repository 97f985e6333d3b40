"""Helpers of the bulk tests: numbered invoices, JSON Lines files and a fast-retrying hook."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_cleartax.triggers import bulk as bulk_triggers
from tests.conftest import sample_invoice

VAT = "300000000000003"


def invoices(
    count: int, prefix: str, *, kind: str = "standard_invoice", start: int = 0
) -> list[dict[str, Any]]:
    """Return ``count`` valid invoices numbered ``<prefix>-00000`` on."""
    return [sample_invoice(kind, number=f"{prefix}-{i:05d}") for i in range(start, start + count)]


def unique_id(invoice: dict[str, Any]) -> str:
    """Return the ClearTax uniqueId of a sample invoice."""
    code = invoice["InvoiceTypeCode"]["value"]
    return f"{VAT}_{invoice['ID']['en']}_{code}_{invoice['IssueDate'][:4]}"


def write_jsonl(path: Path, items: Iterable[Any]) -> Path:
    """Write items (objects as JSON, bytes as they are) one per line."""
    with path.open("wb") as stream:
        for item in items:
            stream.write(item if isinstance(item, bytes) else json.dumps(item).encode())
            stream.write(b"\n")
    return path


@pytest.fixture
def fast_hook(cleartax_connection: str):
    """A hook on the test emulator with quick backoff and a short generate timeout."""
    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

    return ClearTaxHook(
        cleartax_conn_id=cleartax_connection,
        generate_timeout=1.0,
        request_timeout=2.0,
        max_retries=8,
        backoff_base=0.02,
        backoff_cap=0.2,
    )


@pytest.fixture(autouse=True)
def _fresh_bulk_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give each test its own Get bulk budget, as the emulator's counting restarts per test too."""
    monkeypatch.setattr(bulk_triggers, "_LIMITERS", {})
    monkeypatch.setattr(bulk_triggers, "_POLLERS", {})
