"""State: SQLite persistence across restarts, reset, and inspection from other threads."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.emulator.conftest import DEVICE_ID, Env, FakeClock, make_invoice, simplified, unique_id


def _email(number: str) -> dict:
    return {
        "Attachments": {
            "documentDetails": [
                {
                    "InvoiceNumber": number,
                    "IssueDate": "2026-03-15",
                    "InvoiceType": "INV",
                    "Vat": "300000000000003",
                }
            ]
        },
        "PreviewDetails": {
            "Template": {"Type": "INVOICE_GENERATED"},
            "CounterParties": [{"Contacts": [{"Email": "buyer@example.com", "EmailRecipientType": "TO"}]}],
        },
    }


def test_restart_with_a_state_file_loses_nothing(make_env, tmp_path: Path) -> None:
    state = str(tmp_path / "state.sqlite")
    clock = FakeClock()
    first = make_env(state_path=state, clock=clock, async_report_delay=5.0)
    cleared = first.generate(make_invoice()).json()
    first.generate(make_invoice())  # a duplicate, counted
    first.generate(simplified(), path="/v2/einvoices/generate/async")
    device_id = first.client.post(
        "/onboarding/generate-csr",
        json={"DeviceDetails": {"EgsSerialNumber": "1-A|2-B|3-C"}, "OrganizationDetails": {}},
    ).json()["DeviceId"]
    activity_id = first.client.post(
        "/onboarding/generate-csid", json={"DeviceId": device_id, "Otp": "123456"}
    ).json()["PcsidGenerationActivityId"]
    first.client.post("/v1/emails", json=_email("INV-0001"))
    first_counts = first.emulator.submission_counts()
    first.emulator.close()

    second = make_env(state_path=state, clock=clock, async_report_delay=5.0)
    assert (
        second.client.get("/v2/einvoices/data", params={"uniqueId": unique_id("INV-0001")}).json() == cleared
    )
    assert (
        second.emulator.submission_counts()
        == first_counts
        == {unique_id("INV-0001"): 2, unique_id("SIM-0001"): 1}
    )
    assert second.emulator.invoice_statuses()[unique_id("SIM-0001")] == "PENDING"
    clock.advance(5)
    assert second.emulator.invoice_statuses()[unique_id("SIM-0001")] == "REPORTED"
    # The device chain goes on where it stopped.
    third = second.generate(make_invoice("INV-0002")).json()
    assert third["ICV"] == 3
    # Devices, activities and emails came back too.
    assert second.client.get(f"/onboarding/{activity_id}/pcsid-status").json()["Status"] == "SUCCEEDED"
    assert second.generate(make_invoice("INV-0003"), device_id=device_id).json()["InvoiceStatus"] == "CLEARED"
    assert [email["Documents"] for email in second.emulator.sent_emails()] == [[unique_id("INV-0001")]]
    # A re-post after the restart is still a duplicate.
    again = second.generate(make_invoice()).json()
    assert again["WarningList"][-1]["ErrorCode"] == "DUPLICATE_SUBMISSION"
    assert again["ICV"] == 1


def test_reset_forgets_everything_but_configured_devices(make_env, tmp_path: Path) -> None:
    state = str(tmp_path / "state.sqlite")
    e = make_env(state_path=state)
    e.generate(make_invoice())
    e.client.post(
        "/onboarding/register-device",
        json={
            "DeviceDetails": {"EgsSerialNumber": "1-A|2-B|3-C"},
            "OrganizationDetails": {},
            "Otp": "123456",
        },
    )
    e.emulator.reset()
    assert e.emulator.invoice_statuses() == {}
    assert e.emulator.submission_counts() == {}
    assert e.client.get("/v2/einvoices/data", params={"uniqueId": unique_id("INV-0001")}).status_code == 404
    fresh = e.generate(make_invoice(), device_id=DEVICE_ID).json()
    assert fresh["ICV"] == 1
    e.emulator.close()
    reopened = make_env(state_path=state)
    assert reopened.emulator.submission_counts() == {unique_id("INV-0001"): 1}


def test_state_can_be_inspected_from_other_threads_while_serving(env: Env) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def inspect() -> None:
        while not stop.is_set():
            seen.append(sum(env.emulator.submission_counts().values()))
            env.emulator.invoice_statuses()

    reader = threading.Thread(target=inspect)
    reader.start()
    try:
        for n in range(30):
            assert env.generate(make_invoice(f"T-{n}")).json()["ICV"] == n + 1
    finally:
        stop.set()
        reader.join()
    assert sum(env.emulator.submission_counts().values()) == 30
    assert seen == sorted(seen)
