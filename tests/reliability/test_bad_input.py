"""R4: bad input is refused invoice by invoice, naming the invoice and the field; its neighbours go through.

The corpus in ``tests/data/bad_input`` holds one JSON file per case: a valid sample with one of
ClearTax's rules broken (``base`` plus ``set``/``delete``), a raw line (``line``, in some
``encoding``), or the recipe of an absurdly large input that is generated here (``generate``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_cleartax.bulk import BulkSubmitter, Ledger, RateLimiter
from airflow_provider_cleartax.exceptions import ClearTaxConfigError, ClearTaxInvoiceInvalidError
from airflow_provider_cleartax.invoices import (
    InvoiceValidationError,
    invoice_identity,
    invoice_number_of,
    validate_invoice,
)
from airflow_provider_cleartax.operators.cleartax import ClearTaxGenerateInvoiceOperator
from tests.conftest import SELLER_VAT, sample_invoice
from tests.reliability.conftest import case_invoice, case_line, case_number, load_corpus

CORPUS = load_corpus()
INVOICE_CASES = sorted(name for name, case in CORPUS.items() if "paths" in case["expect"])
LINE_CASES = sorted(name for name, case in CORPUS.items() if "line" in case)
# A record stays small whatever the input: messages quote values cut short.
MAX_RECORD_BYTES = 20_000


def _neighbour(index: int) -> dict[str, Any]:
    kind = "standard_invoice" if index % 2 == 0 else "simplified_invoice"
    return sample_invoice(kind, number=f"OK-{index:03d}")


def _unique_id(invoice: dict[str, Any]) -> str:
    return (
        f"{SELLER_VAT}_{invoice['ID']['en']}_{invoice['InvoiceTypeCode']['value']}_{invoice['IssueDate'][:4]}"
    )


def test_corpus_covers_every_kind_of_bad_input() -> None:
    kinds = {name.split("_")[0] for name in CORPUS}
    assert len(CORPUS) >= 30
    assert {"rule", "type", "missing", "line", "huge", "ten", "deep"} <= kinds
    for name, case in CORPUS.items():
        assert case["about"] and ("paths" in case["expect"]) != ("message" in case["expect"]), name


def test_bulk_run_records_each_bad_case_and_clears_each_neighbour_once(
    fast_hook, cleartax_emulator, tmp_path
) -> None:
    lines: list[bytes] = []
    where: dict[str, int] = {}
    neighbours = []
    for index, name in enumerate(sorted(CORPUS)):
        neighbours.append(_neighbour(index))
        lines.append(json.dumps(neighbour := neighbours[-1]).encode())
        lines.append(case_line(name, CORPUS[name]))
        where[name] = len(lines)
    neighbours.append(_neighbour(len(CORPUS)))
    lines.append(json.dumps(neighbours[-1]).encode())
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    del lines, neighbour

    submitter = BulkSubmitter(
        hook=fast_hook, ledger=tmp_path / "ledger", concurrency=8, rate_limiter=RateLimiter(limits={})
    )
    summary = asyncio.run(submitter.run(str(source)))

    state = Ledger(tmp_path / "ledger").state()
    by_line = {record["line"]: record for record in state.values()}
    for name, line in where.items():
        record, expect = by_line[line], CORPUS[name]["expect"]
        assert record["key"] == f"line:{line}", name
        assert len(json.dumps(record)) < MAX_RECORD_BYTES, name
        if "paths" in expect:
            assert record["status"] == "INVALID", name
            assert record["invoice_number"] == case_number(name, CORPUS[name]), name
            found = {(entry["Path"], entry["ErrorCode"]) for entry in record["errors"]}
            assert set(expect["paths"].items()) <= found, (name, found)
        else:
            assert record["status"] == "ERROR", name
            (entry,) = record["errors"]
            assert entry["Path"] == f"line {line}" and expect["message"] in entry["ErrorMessage"], (
                name,
                entry,
            )

    # Every valid neighbour went through exactly once, and nothing else reached ClearTax.
    assert cleartax_emulator.submission_counts() == {_unique_id(invoice): 1 for invoice in neighbours}
    for invoice in neighbours:
        expected = "CLEARED" if invoice["InvoiceTypeCode"]["name"].startswith("01") else "REPORTED"
        assert state[_unique_id(invoice)]["status"] == expected
    invalid = sum("paths" in case["expect"] for case in CORPUS.values())
    assert summary.counts == {
        "CLEARED": sum(i % 2 == 0 for i in range(len(neighbours))),
        "REPORTED": sum(i % 2 == 1 for i in range(len(neighbours))),
        "INVALID": invalid,
        "ERROR": len(CORPUS) - invalid,
    }
    assert summary.unresolved == 0


@pytest.mark.parametrize("name", INVOICE_CASES)
def test_validate_invoice_names_the_invoice_and_the_field(name: str) -> None:
    case = CORPUS[name]
    invoice = case_invoice(name, case)

    problems = validate_invoice(invoice)

    found = {(problem.path, problem.code) for problem in problems}
    assert set(case["expect"]["paths"].items()) <= found, found
    assert {problem.invoice_number for problem in problems} == {case_number(name, case)}
    assert all(len(problem.message) < 300 for problem in problems)


@pytest.mark.parametrize("name", [n for n in INVOICE_CASES if "base" in CORPUS[n]])
def test_generate_operator_refuses_and_sends_nothing(
    name: str, cleartax_connection, cleartax_emulator
) -> None:
    case = CORPUS[name]
    operator = ClearTaxGenerateInvoiceOperator(task_id=f"bad_{name}", invoice=case_invoice(name, case))

    with pytest.raises(ClearTaxInvoiceInvalidError) as caught:
        operator.execute({})

    found = {(entry["Path"], entry["ErrorCode"]) for entry in caught.value.errors}
    assert set(case["expect"]["paths"].items()) <= found
    assert (case_number(name, case) or "(no number)") in str(caught.value)
    assert cleartax_emulator.submission_counts() == {}


@pytest.mark.parametrize("name", LINE_CASES)
def test_generate_operator_refuses_an_unreadable_invoice_text(
    name: str, cleartax_connection, cleartax_emulator
) -> None:
    raw = case_line(name, CORPUS[name])
    text: str | bytes = raw.decode("utf-8") if CORPUS[name].get("encoding") is None else raw
    operator = ClearTaxGenerateInvoiceOperator(task_id=f"bad_{name}", invoice=text)

    # Text that is not one JSON object is a configuration error; an object that is no invoice is invalid.
    with pytest.raises((ClearTaxConfigError, ClearTaxInvoiceInvalidError)):
        operator.execute({})

    assert cleartax_emulator.submission_counts() == {}


# ------------------------------------------------------------------------ random damage to valid invoices

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


_SAMPLES = {
    kind: sample_invoice(kind)
    for kind in ("standard_invoice", "simplified_invoice", "credit_note", "zero_rated_export")
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(sorted(_SAMPLES)), damage=st.lists(_JSON, min_size=1, max_size=3))
def test_any_damage_gives_problems_never_a_crash(data: st.DataObject, kind: str, damage: list[Any]) -> None:
    invoice = json.loads(json.dumps(_SAMPLES[kind]))
    for value in damage:
        path = data.draw(st.sampled_from(_paths(invoice)))
        node = invoice
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    problems = validate_invoice(invoice)

    number = invoice_number_of(invoice)
    assert all(
        problem.path.startswith("EInvoice") and problem.invoice_number == number for problem in problems
    )
    try:
        invoice_identity(invoice)
    except InvoiceValidationError as error:
        assert error.problems


def test_an_unencodable_item_of_a_list_fails_alone(fast_hook, cleartax_emulator, tmp_path) -> None:
    # Items handed over as objects (an XCom list) skip the JSON reader, so NaN reaches the request builder.
    poisoned = {**sample_invoice("standard_invoice", number="NAN-1"), "Extra": float("nan")}
    batch = [_neighbour(0), poisoned, _neighbour(1)]

    summary = asyncio.run(
        BulkSubmitter(hook=fast_hook, ledger=tmp_path / "ledger", rate_limiter=RateLimiter(limits={})).run(
            batch
        )
    )

    assert summary.counts == {"CLEARED": 1, "REPORTED": 1, "FAILED": 1}
    record = Ledger(tmp_path / "ledger").state()[_unique_id(poisoned)]
    assert record["status"] == "FAILED" and record["invoice_number"] == "NAN-1"
    assert "cannot be encoded" in record["errors"][0]["ErrorMessage"]
    assert cleartax_emulator.submission_counts() == {_unique_id(batch[0]): 1, _unique_id(batch[2]): 1}
