"""Helpers of the reliability tests: the bad-input corpus, a bound on every example, TLS material."""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sample_invoice

CORPUS_DIR = Path(__file__).parent.parent / "data" / "bad_input"
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class Hang(Exception):
    """An example outlived its time bound."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail with :class:`Hang` when the block runs longer than ``seconds`` (main thread only).

    :param seconds: the bound; generous, as it only catches hangs, never measures speed.
    """

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_corpus() -> dict[str, dict[str, Any]]:
    """Return every case of ``tests/data/bad_input``, by file stem."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(CORPUS_DIR.glob("*.json"))
    }


def _set(data: Any, path: str, value: Any, *, delete: bool = False) -> None:
    steps = [int(index) if index else key for key, index in _STEP.findall(path)]
    node = data
    for step in steps[:-1]:
        node = node[step]
    if delete:
        del node[steps[-1]]
    else:
        node[steps[-1]] = value


def case_number(name: str, case: dict[str, Any]) -> str:
    """Return the invoice number a case carries (empty when the case is about a missing one)."""
    return f"BAD-{name}" if case.get("numbered", True) else ""


def _many_lines_invoice(count: int, number: str) -> dict[str, Any]:
    """Build a consistent standard invoice of ``count`` lines of 1.00 SAR at 15 %; then tax the last wrong."""
    invoice = sample_invoice("standard_invoice", number=number)
    template = invoice["InvoiceLine"][1]
    lines = []
    for index in range(count):
        line = copy.deepcopy(template)
        line["ID"] = str(index + 1)
        line["InvoicedQuantity"]["value"] = 1
        line["LineExtensionAmount"]["value"] = 1.0
        line["TaxTotal"] = {
            "TaxAmount": {"currencyID": "SAR", "value": 0.15},
            "RoundingAmount": {"currencyID": "SAR", "value": 1.15},
        }
        line["Price"] = {"PriceAmount": {"currencyID": "SAR", "value": 1.0}}
        lines.append(line)
    lines[-1]["TaxTotal"]["TaxAmount"]["value"] = 0.5
    net, tax = float(count), round(count * 0.15, 2)
    invoice["InvoiceLine"] = lines
    invoice["AllowanceCharge"] = []
    invoice["TaxTotal"] = [
        {
            "TaxAmount": {"currencyID": "SAR", "value": tax},
            "TaxSubtotal": [
                {
                    "TaxableAmount": {"currencyID": "SAR", "value": net},
                    "TaxAmount": {"currencyID": "SAR", "value": tax},
                    "TaxCategory": {"ID": "S", "Percent": 15.0, "TaxScheme": {"ID": "VAT"}},
                }
            ],
        },
        {"TaxAmount": {"currencyID": "SAR", "value": tax}},
    ]
    totals = invoice["LegalMonetaryTotal"]
    for key in ("LineExtensionAmount", "TaxExclusiveAmount"):
        totals[key]["value"] = net
    totals["TaxInclusiveAmount"]["value"] = totals["PayableAmount"]["value"] = round(net + tax, 2)
    return invoice


def case_invoice(name: str, case: dict[str, Any]) -> dict[str, Any] | None:
    """Return the broken invoice of a case, or ``None`` for a case that is a raw line, not an invoice."""
    kind = case.get("generate")
    number = case_number(name, case)
    if "base" in case:
        invoice = sample_invoice(case["base"], number=number or None)
        for path in case.get("delete", []):
            _set(invoice, path, None, delete=True)
        for path, value in case.get("set", {}).items():
            _set(invoice, path, value)
        return invoice
    if kind == "huge_value":
        invoice = sample_invoice("standard_invoice", number=number)
        invoice[case["field"]] = "9" * case["bytes"]
        return invoice
    if kind == "many_lines":
        return _many_lines_invoice(case["lines"], number)
    if kind == "deep_field":
        invoice = sample_invoice("simplified_invoice", number="unused")
        value: Any = "x"
        for _ in range(case["depth"]):
            value = [value]
        invoice[case["field"]] = value
        return invoice
    return None


def case_line(name: str, case: dict[str, Any]) -> bytes:
    """Return the JSON Lines line (without its newline) that carries a case."""
    invoice = case_invoice(name, case)
    if invoice is not None:
        return json.dumps(invoice, ensure_ascii=False).encode("utf-8")
    if "line" in case:
        return case["line"].encode(case.get("encoding", "utf-8"))
    kind = case["generate"]
    if kind == "huge_garbage":
        return b'{"ID": {"en": "' + b"x" * case["bytes"]
    if kind == "deep_line":
        return b'{"ID": ' + b"[" * case["depth"] + b"]" * case["depth"] + b"}"
    raise ValueError(f"case {name}: unknown kind {kind!r}")


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Create a self-signed certificate for 127.0.0.1 and localhost; return its cert and key files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return {"cert": cert_file, "key": key_file}


@pytest.fixture
def fast_hook(cleartax_connection: str):
    """A hook on the test emulator with quick backoff."""
    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

    return ClearTaxHook(
        cleartax_conn_id=cleartax_connection,
        generate_timeout=5.0,
        request_timeout=5.0,
        max_retries=3,
        backoff_base=0.02,
        backoff_cap=0.2,
    )
