"""Sample E-Invoice payloads and helpers shared by the invoice tests."""

from __future__ import annotations

import copy
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

DATA_DIR = Path(__file__).parent.parent / "data" / "invoices"
SAMPLE_NAMES = sorted(path.stem for path in DATA_DIR.glob("*.json"))
#: Every sample is issued on or before this date.
TODAY = date(2026, 3, 31)
DELETE = object()

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def sample_text(name: str) -> str:
    return (DATA_DIR / f"{name}.json").read_text(encoding="utf-8")


def load_sample(name: str) -> dict[str, Any]:
    return json.loads(sample_text(name))


def edit(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of an invoice with values set (or removed, with DELETE) at dotted paths."""
    data = copy.deepcopy(data)
    for path, value in changes.items():
        steps = [int(index) if index else key for key, index in _STEP.findall(path)]
        node = data
        for step in steps[:-1]:
            node = node[step]
        if value is DELETE:
            del node[steps[-1]]
        else:
            node[steps[-1]] = value
    return data


@pytest.fixture(params=SAMPLE_NAMES)
def sample_name(request: pytest.FixtureRequest) -> str:
    return request.param
