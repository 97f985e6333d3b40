"""The invoice and PCSID triggers, run directly with asyncio against the emulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from typing import Any

import pytest

from airflow_provider_cleartax.exceptions import ClearTaxAuthError, ClearTaxNotFoundError
from airflow_provider_cleartax.triggers.cleartax import (
    ClearTaxInvoiceStatusTrigger,
    ClearTaxPcsidStatusTrigger,
    error_from_event,
    normalize_invoices,
)
from tests.triggers.support import (
    CONN_ID,
    WRONG_TOKEN,
    identity,
    requests_to,
    start_pcsid_activity,
    submit,
    unique_id,
)

# Retries inside one hook call would hide the trigger's own retrying: turned off where that matters.
NO_HOOK_RETRIES = {"max_retries": 0}


async def run_trigger(trigger: Any) -> list[Any]:
    """Drain the trigger's events (the outer timeout only stops a hung test)."""

    async def drain() -> list[Any]:
        return [event async for event in trigger.run()]

    return await asyncio.wait_for(drain(), timeout=30)


def import_string(classpath: str) -> Any:
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)


def only_payload(events: list[Any]) -> dict[str, Any]:
    assert len(events) == 1, events
    (event,) = events
    json.dumps(event.payload)  # JSON-safe
    return event.payload


# ------------------------------------------------------------------------------------------ serialize


def test_invoice_trigger_serializes_to_its_classpath_and_json_kwargs() -> None:
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id="ct",
        invoices=[
            "  300000000000003_A-1_388_2026 ",
            {"invoiceNumber": "A/2", "invoiceType": 388, "issueDate": "2026-02-03"},
        ],
        poll_interval=5,
        deadline=1_900_000_000.5,
        hook_params={"request_timeout": 12.0, "vat": "300000000000003"},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_cleartax.triggers.cleartax.ClearTaxInvoiceStatusTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs == {
        "cleartax_conn_id": "ct",
        "invoices": [
            "300000000000003_A-1_388_2026",
            {"invoiceNumber": "A/2", "invoiceType": "388", "issueDate": "2026-02-03"},
        ],
        "poll_interval": 5.0,
        "deadline": 1_900_000_000.5,
        "hook_params": {"request_timeout": 12.0, "vat": "300000000000003"},
    }
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_pcsid_trigger_serializes_to_its_classpath_and_json_kwargs() -> None:
    trigger = ClearTaxPcsidStatusTrigger(cleartax_conn_id="ct", activity_id="a" * 24)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_cleartax.triggers.cleartax.ClearTaxPcsidStatusTrigger"
    assert kwargs == {
        "cleartax_conn_id": "ct",
        "activity_id": "a" * 24,
        "poll_interval": 10.0,
        "deadline": None,
        "hook_params": {},
    }
    assert import_string(classpath)(**json.loads(json.dumps(kwargs))).serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    "invoices",
    [[""], [{"invoiceNumber": "A-1", "invoiceType": "INV"}], [42], 42],
    ids=["empty-id", "no-issue-date", "number", "not-a-list"],
)
def test_invoices_that_name_no_invoice_are_refused(invoices: Any) -> None:
    with pytest.raises(ValueError):
        normalize_invoices(invoices)


def test_duplicate_invoices_are_checked_once() -> None:
    assert normalize_invoices(
        ["X_1", " X_1", {"invoiceNumber": "N", "invoiceType": "INV", "issueDate": "2026-01-01"}] * 2
    ) == [
        "X_1",
        {"invoiceNumber": "N", "invoiceType": "INV", "issueDate": "2026-01-01"},
    ]


# ------------------------------------------------------------------------------------------ invoices


async def test_one_pending_invoice_succeeds_once_reported(emulator, connect) -> None:
    conn_id = connect(emulator)
    uid = submit(emulator, "TRG-1")
    trigger = ClearTaxInvoiceStatusTrigger(cleartax_conn_id=conn_id, invoices=[uid], poll_interval=0.2)

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "success"
    assert payload["invoices"] == {uid: "REPORTED"}
    assert payload["errors"] == {}
    assert "accepted" in payload["message"]
    looked_up = requests_to(emulator, "get_invoice")
    assert len(looked_up) >= 2  # saw PENDING, then REPORTED
    assert requests_to(emulator, "get_bulk") == []


async def test_several_invoices_are_polled_in_bulk_by_id_and_by_number(emulator, connect) -> None:
    conn_id = connect(emulator)
    first = submit(emulator, "TRG-2")
    submit(emulator, "TRG-3")
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=conn_id, invoices=[first, identity("TRG-3")], poll_interval=0.2
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "success"
    assert payload["invoices"] == {first: "REPORTED", "TRG-3": "REPORTED"}
    assert len(requests_to(emulator, "get_bulk")) >= 2
    assert requests_to(emulator, "get_invoice") == []


async def test_a_refused_invoice_fails_at_once_while_others_are_pending(make_emulator, connect) -> None:
    slow = make_emulator(async_report_delay=60)
    pending = submit(slow, "TRG-4")
    refused = submit(slow, "TRG-5", valid=False)
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=connect(slow), invoices=[pending, refused], poll_interval=60
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "failed"
    assert payload["invoices"] == {pending: "PENDING", refused: "NOT_REPORTED"}
    assert list(payload["errors"]) == [refused]
    (entry,) = payload["errors"][refused]
    assert entry["ErrorCode"] == "8001" and "BR-KSA-09" in entry["ErrorMessage"]
    assert refused in payload["message"] and "BR-KSA-09" in payload["message"]
    assert len(requests_to(slow, "get_bulk")) == 1


async def test_the_deadline_ends_with_timeout_after_a_last_check_at_the_deadline(
    make_emulator, connect
) -> None:
    slow = make_emulator(async_report_delay=60)
    uid = submit(slow, "TRG-6")
    deadline = time.time() + 0.3
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=connect(slow), invoices=[uid], poll_interval=60, deadline=deadline
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "timeout"
    assert payload["invoices"] == {uid: "PENDING"}
    assert uid in payload["message"]
    checks = requests_to(slow, "get_invoice")
    assert len(checks) >= 2
    assert checks[-1]["time"] >= deadline


async def test_the_last_check_at_the_deadline_can_still_succeed(make_emulator, connect) -> None:
    emulator = make_emulator(async_report_delay=1.0)
    conn_id = connect(emulator)
    uid = submit(emulator, "TRG-7")
    # Reported one second after submission: after the first check, before the deadline's check.
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=conn_id, invoices=[uid], poll_interval=60, deadline=time.time() + 1.5
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "success"
    assert [entry["status"] for entry in requests_to(emulator, "get_invoice")] == [200, 200]


async def test_a_wrong_token_ends_with_an_error_naming_the_connection_not_the_token(
    emulator, connect
) -> None:
    uid = submit(emulator, "TRG-8")
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=connect(emulator, token=WRONG_TOKEN), invoices=[uid], poll_interval=0.2
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "error"
    assert payload["error_type"] == "ClearTaxAuthError"
    assert payload["error_detail"]["http_status"] == 401
    assert CONN_ID in payload["message"]
    assert WRONG_TOKEN not in json.dumps(payload)
    assert len(requests_to(emulator, "get_invoice")) == 1  # a 401 is never retried
    error = error_from_event(payload, conn_id=CONN_ID)
    assert isinstance(error, ClearTaxAuthError)
    assert CONN_ID in str(error) and WRONG_TOKEN not in str(error)


async def test_an_unknown_invoice_ends_with_a_not_found_error(emulator, connect) -> None:
    missing = unique_id("TRG-NEVER-SENT")
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=connect(emulator), invoices=[missing], poll_interval=0.2
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "error"
    assert payload["error_type"] == "ClearTaxNotFoundError"
    assert missing in payload["message"]
    assert isinstance(error_from_event(payload, conn_id=CONN_ID), ClearTaxNotFoundError)


async def test_an_unknown_invoice_in_a_bulk_check_ends_with_a_not_found_error(emulator, connect) -> None:
    known = submit(emulator, "TRG-9")
    missing = unique_id("TRG-NEVER-SENT")
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=connect(emulator), invoices=[known, missing], poll_interval=0.2
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "error"
    assert payload["error_type"] == "ClearTaxNotFoundError"
    assert missing in payload["message"] and known not in payload["message"]
    assert payload["error_detail"]["errors"][0]["ErrorCode"] == "6003"


async def test_server_errors_are_retried_with_backoff_until_they_pass(emulator, connect) -> None:
    uid = submit(emulator, "TRG-10", asynchronous=False)
    emulator.set_faults("get_invoice", {"error_5xx": 1.0})
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=connect(emulator), invoices=[uid], poll_interval=0.05, hook_params=NO_HOOK_RETRIES
    )
    task = asyncio.create_task(run_trigger(trigger))

    while len(requests_to(emulator, "get_invoice")) < 3:
        assert not task.done(), task.result()
        await asyncio.sleep(0.02)
    emulator.clear_faults()
    payload = only_payload(await task)

    assert payload["status"] == "success"
    assert payload["invoices"] == {uid: "REPORTED"}
    statuses = [entry["status"] for entry in requests_to(emulator, "get_invoice")]
    assert statuses[-1] == 200 and all(status >= 500 for status in statuses[:-1])


async def test_server_errors_until_the_deadline_end_with_timeout(emulator, connect) -> None:
    uid = submit(emulator, "TRG-11", asynchronous=False)
    emulator.set_faults("get_invoice", {"error_5xx": 1.0})
    trigger = ClearTaxInvoiceStatusTrigger(
        cleartax_conn_id=connect(emulator),
        invoices=[uid],
        poll_interval=0.05,
        deadline=time.time() + 0.5,
        hook_params=NO_HOOK_RETRIES,
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "timeout"
    assert payload["invoices"] == {uid: None}
    assert "the last check failed" in payload["message"]
    failures = requests_to(emulator, "get_invoice")
    # Backoff grows to four poll intervals: far fewer attempts than a busy loop would make.
    assert 2 <= len(failures) <= 12


# ------------------------------------------------------------------------------------------ PCSID


async def test_pcsid_activity_succeeds_after_in_progress(emulator, connect) -> None:
    conn_id = connect(emulator)
    activity = start_pcsid_activity(emulator)
    trigger = ClearTaxPcsidStatusTrigger(cleartax_conn_id=conn_id, activity_id=activity, poll_interval=0.2)

    payload = only_payload(await run_trigger(trigger))

    assert payload == {
        "status": "success",
        "activity_id": activity,
        "pcsid_status": "SUCCEEDED",
        "errors": [],
        "message": f"PCSID activity {activity} SUCCEEDED",
    }
    assert len(requests_to(emulator, "pcsid_status")) >= 2


async def test_a_failed_pcsid_activity_answered_with_http_500_is_final(make_emulator, connect) -> None:
    failing = make_emulator(pcsid_fail=True)
    activity = start_pcsid_activity(failing)
    trigger = ClearTaxPcsidStatusTrigger(
        cleartax_conn_id=connect(failing),
        activity_id=activity,
        poll_interval=0.2,
        hook_params=NO_HOOK_RETRIES,
    )

    payload = only_payload(await run_trigger(trigger))

    assert payload["status"] == "failed"
    assert payload["pcsid_status"] == "FAILED"
    assert payload["errors"] and payload["errors"][0]["ErrorSource"] == "ZATCA"
    assert activity in payload["message"]
    assert requests_to(failing, "pcsid_status")[-1]["status"] == 500


async def test_pcsid_timeout_and_unknown_activity(make_emulator, connect) -> None:
    slow = make_emulator(pcsid_delay=60)
    activity = start_pcsid_activity(slow)
    conn_id = connect(slow)

    timed_out = only_payload(
        await run_trigger(
            ClearTaxPcsidStatusTrigger(
                cleartax_conn_id=conn_id, activity_id=activity, poll_interval=60, deadline=time.time() + 0.2
            )
        )
    )
    unknown = only_payload(
        await run_trigger(
            ClearTaxPcsidStatusTrigger(cleartax_conn_id=conn_id, activity_id="f" * 24, poll_interval=0.2)
        )
    )

    assert (timed_out["status"], timed_out["pcsid_status"]) == ("timeout", "IN_PROGRESS")
    assert (unknown["status"], unknown["error_type"]) == ("error", "ClearTaxNotFoundError")
    assert unknown["pcsid_status"] is None


async def test_pcsid_wrong_token_ends_with_an_auth_error(emulator, connect) -> None:
    activity = start_pcsid_activity(emulator)
    trigger = ClearTaxPcsidStatusTrigger(
        cleartax_conn_id=connect(emulator, token=WRONG_TOKEN), activity_id=activity, poll_interval=0.2
    )

    payload = only_payload(await run_trigger(trigger))

    assert (payload["status"], payload["error_type"]) == ("error", "ClearTaxAuthError")
    assert CONN_ID in payload["message"] and WRONG_TOKEN not in json.dumps(payload)
