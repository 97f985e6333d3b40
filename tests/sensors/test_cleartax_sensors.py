"""The invoice and PCSID sensors under ``dag.test()``, in poke and deferrable mode, against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

try:
    from airflow.sdk.exceptions import AirflowSensorTimeout
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowSensorTimeout

from airflow_provider_cleartax.exceptions import (
    ClearTaxAuthError,
    ClearTaxInvoiceRejectedError,
    ClearTaxNotFoundError,
)
from airflow_provider_cleartax.sensors.cleartax import ClearTaxInvoiceStatusSensor, ClearTaxPcsidStatusSensor
from airflow_provider_cleartax.triggers.cleartax import ClearTaxInvoiceStatusTrigger
from tests.triggers.support import (
    CONN_ID,
    WRONG_TOKEN,
    identity,
    requests_to,
    start_pcsid_activity,
    submit,
    unique_id,
)

MODES = ["poke", "deferrable"]


def run_dag(load_dag, dag_id: str, **conf: Any) -> tuple[Any, Any]:
    """Run the DAG once with ``conf`` as its params; return the run and its sensor's task instance.

    The DAG objects are shared by the whole session and a run's conf may stay in their params, so
    every run names all the params its DAG uses.
    """
    from airflow.utils.state import DagRunState

    run = load_dag(dag_id).test(run_conf=conf)
    (ti,) = run.get_task_instances()
    assert run.state in (DagRunState.SUCCESS, DagRunState.FAILED)
    return run, ti


def assert_succeeded(run: Any, ti: Any) -> Any:
    from airflow.utils.state import DagRunState, TaskInstanceState

    assert run.state == DagRunState.SUCCESS
    assert ti.state == TaskInstanceState.SUCCESS
    return ti.xcom_pull(task_ids="wait")


def assert_failed_first_try(run: Any, ti: Any) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    assert run.state == DagRunState.FAILED
    assert ti.state == TaskInstanceState.FAILED
    assert ti.try_number == 1  # retries=2 were not used


def output_of(capfd: pytest.CaptureFixture[str]) -> str:
    captured = capfd.readouterr()
    return captured.out + captured.err


# ------------------------------------------------------------------------------------------ invoices


@pytest.mark.parametrize("mode", MODES)
def test_invoice_sensor_waits_until_the_invoice_is_reported(mode, emulator, connect, load_dag, capfd) -> None:
    connect(emulator)
    number = f"SNS-{mode}"
    uid = unique_id(number)

    run, ti = run_dag(load_dag, f"sensor_invoice_{mode}", invoice=uid, submit=[number])

    assert assert_succeeded(run, ti) == {uid: "REPORTED"}
    assert len(requests_to(emulator, "get_invoice")) >= 2  # PENDING first
    deferred = "Not final yet; deferring" in output_of(capfd)
    assert deferred == (mode == "deferrable")


@pytest.mark.parametrize("mode", MODES)
def test_a_refused_invoice_fails_the_task_at_once_without_retries(
    mode, emulator, connect, load_dag, capfd
) -> None:
    connect(emulator)
    uid = submit(emulator, f"SNS-BAD-{mode}", valid=False)

    run, ti = run_dag(load_dag, f"sensor_invoice_{mode}", invoice=uid, submit=[])

    assert_failed_first_try(run, ti)
    output = output_of(capfd)
    assert "ClearTaxInvoiceRejectedError" in output
    assert f"{uid} NOT_REPORTED" in output and "BR-KSA-09" in output
    assert len(requests_to(emulator, "get_invoice")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_token_fails_the_task_at_once_naming_the_connection(
    mode, emulator, connect, load_dag, capfd
) -> None:
    connect(emulator, token=WRONG_TOKEN)
    uid = submit(emulator, f"SNS-401-{mode}")

    run, ti = run_dag(load_dag, f"sensor_invoice_{mode}", invoice=uid, submit=[])

    assert_failed_first_try(run, ti)
    output = output_of(capfd)
    assert "ClearTaxAuthError" in output and repr(CONN_ID) in output
    assert WRONG_TOKEN not in output
    assert len(requests_to(emulator, "get_invoice")) == 1


def test_an_invoice_final_at_the_first_check_is_never_deferred(emulator, connect, load_dag, capfd) -> None:
    connect(emulator)
    uid = submit(emulator, "SNS-DONE", asynchronous=False)

    run, ti = run_dag(load_dag, "sensor_invoice_deferrable", invoice=uid, submit=[])

    assert assert_succeeded(run, ti) == {uid: "REPORTED"}
    output = output_of(capfd)
    assert "Final state on the first check; not deferring" in output
    assert "running trigger in line" not in output  # dag.test's note when it runs a deferred task's trigger
    assert len(requests_to(emulator, "get_invoice")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_templated_invoice_renders_without_a_logical_date(mode, emulator, connect, load_dag) -> None:
    connect(emulator)
    number = f"SNS-NOLD-{mode}"
    uid = unique_id(number)

    run = load_dag(f"sensor_invoice_{mode}").test(
        logical_date=None, run_conf={"invoice": uid, "submit": [number]}
    )
    (ti,) = run.get_task_instances()

    assert run.logical_date is None
    assert assert_succeeded(run, ti) == {uid: "REPORTED"}


def test_deferred_bulk_sensor_takes_unique_ids_and_identities(emulator, connect, load_dag) -> None:
    connect(emulator)
    first = unique_id("SNS-B1")
    second = identity("SNS-B2")

    run, ti = run_dag(
        load_dag,
        "sensor_invoice_bulk_deferrable",
        first=first,
        second_number=second["invoiceNumber"],
        second_date=second["issueDate"],
        submit=["SNS-B1", "SNS-B2"],
    )

    assert assert_succeeded(run, ti) == {first: "REPORTED", "SNS-B2": "REPORTED"}
    assert len(requests_to(emulator, "get_bulk")) >= 2  # PENDING first
    assert requests_to(emulator, "get_invoice") == []


def test_deferred_sensor_times_out_without_retries(make_emulator, connect, load_dag, capfd) -> None:
    slow = make_emulator(async_report_delay=60)
    connect(slow)
    uid = submit(slow, "SNS-SLOW")

    run, ti = run_dag(load_dag, "sensor_invoice_short_timeout", invoice=uid)

    assert_failed_first_try(run, ti)
    output = output_of(capfd)
    assert "AirflowSensorTimeout" in output and f"{uid} PENDING" in output


# ------------------------------------------------------------------------------------------ PCSID


@pytest.mark.parametrize("mode", MODES)
def test_pcsid_sensor_waits_until_the_activity_succeeded(mode, emulator, connect, load_dag) -> None:
    connect(emulator)
    activity = start_pcsid_activity(emulator)

    run, ti = run_dag(load_dag, f"sensor_pcsid_{mode}", activity_id=activity)

    assert assert_succeeded(run, ti) == {"activity_id": activity, "pcsid_status": "SUCCEEDED"}


def test_deferred_pcsid_sensor_times_out_without_retries(make_emulator, connect, load_dag, capfd) -> None:
    slow = make_emulator(pcsid_delay=60)
    connect(slow)
    activity = start_pcsid_activity(slow)

    run, ti = run_dag(load_dag, "sensor_pcsid_short_timeout", activity_id=activity)

    assert_failed_first_try(run, ti)
    output = output_of(capfd)
    assert "AirflowSensorTimeout" in output and f"PCSID activity {activity} still IN_PROGRESS" in output
    assert len(requests_to(slow, "pcsid_status")) >= 2  # the first check, then the trigger's


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_pcsid_activity_fails_the_task_without_retries(
    mode, make_emulator, connect, load_dag, capfd
) -> None:
    failing = make_emulator(pcsid_fail=True)
    connect(failing)
    activity = start_pcsid_activity(failing)

    run, ti = run_dag(load_dag, f"sensor_pcsid_{mode}", activity_id=activity)

    assert_failed_first_try(run, ti)
    output = output_of(capfd)
    assert f"PCSID activity {activity} FAILED" in output
    assert requests_to(failing, "pcsid_status")[-1]["status"] == 500


@pytest.mark.parametrize("mode", MODES)
def test_pcsid_sensor_with_a_wrong_token_fails_at_once(mode, emulator, connect, load_dag, capfd) -> None:
    connect(emulator, token=WRONG_TOKEN)
    activity = start_pcsid_activity(emulator)

    run, ti = run_dag(load_dag, f"sensor_pcsid_{mode}", activity_id=activity)

    assert_failed_first_try(run, ti)
    output = output_of(capfd)
    assert "ClearTaxAuthError" in output and repr(CONN_ID) in output and WRONG_TOKEN not in output


# ------------------------------------------------------------------------------------------ events


def trigger_event(conn_id: str, invoices: list[Any], **kwargs: Any) -> dict[str, Any]:
    """Run a real trigger to its event and return the payload."""

    async def first_event() -> dict[str, Any]:
        trigger = ClearTaxInvoiceStatusTrigger(cleartax_conn_id=conn_id, invoices=invoices, **kwargs)
        events = [event async for event in trigger.run()]
        assert len(events) == 1
        return events[0].payload

    return asyncio.run(asyncio.wait_for(first_event(), timeout=30))


def test_execute_complete_maps_each_trigger_event(make_emulator, connect) -> None:
    slow = make_emulator(async_report_delay=60)
    conn_id = connect(slow)
    pending = submit(slow, "EVT-1")
    refused = submit(slow, "EVT-2", valid=False)
    done = submit(slow, "EVT-3", asynchronous=False)
    sensor = ClearTaxInvoiceStatusSensor(
        task_id="wait", invoices=[], cleartax_conn_id=conn_id, deferrable=True
    )

    success = trigger_event(conn_id, [done], poll_interval=0.1)
    failed = trigger_event(conn_id, [pending, refused], poll_interval=0.1)
    timeout = trigger_event(conn_id, [pending], poll_interval=0.1, deadline=0)
    missing = trigger_event(conn_id, [unique_id("EVT-NONE")], poll_interval=0.1)
    connect(slow, token=WRONG_TOKEN)
    unauthorized = trigger_event(conn_id, [done], poll_interval=0.1)

    assert sensor.execute_complete({}, success) == {done: "REPORTED"}
    with pytest.raises(ClearTaxInvoiceRejectedError, match="BR-KSA-09") as rejected:
        sensor.execute_complete({}, failed)
    assert rejected.value.result["invoices"] == {pending: "PENDING", refused: "NOT_REPORTED"}
    with pytest.raises(AirflowSensorTimeout, match=pending):
        sensor.execute_complete({}, timeout)
    with pytest.raises(ClearTaxNotFoundError, match="EVT-NONE"):
        sensor.execute_complete({}, missing)
    with pytest.raises(ClearTaxAuthError, match=CONN_ID) as auth:
        sensor.execute_complete({}, unauthorized)
    assert auth.value.status == 401 and WRONG_TOKEN not in str(auth.value)


def test_sensors_template_their_inputs() -> None:
    assert set(ClearTaxInvoiceStatusSensor.template_fields) == {"invoices", "vat"}
    assert set(ClearTaxPcsidStatusSensor.template_fields) == {"activity_id", "vat"}
    sensor = ClearTaxInvoiceStatusSensor(task_id="s", invoices="X_1", poll_interval=7)
    assert sensor.poke_interval == 7 and sensor.cleartax_conn_id == "cleartax_default"
    assert "hook" not in sensor.__dict__  # the hook is built on first use, not at parse time
