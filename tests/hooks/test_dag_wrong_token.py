"""The design's promise: a wrong token fails the task on its first try, after one request."""

from __future__ import annotations

from tests.conftest import SECRET_TOKEN
from tests.scripted_server import ScriptedServer, json_reply

AUTH_FAILED = {"ErrorCode": "100401", "ErrorMessage": "Authentication Failed", "ErrorSource": "CLEARTAX"}


def test_wrong_token_fails_first_try_without_retries(
    scripted: ScriptedServer, make_connection, load_dag, capfd
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    make_connection(scripted.url, conn_id="cleartax_dag_test", password=SECRET_TOKEN)
    scripted.script("/v2/einvoices/data", default=json_reply(401, AUTH_FAILED))

    run = load_dag("cleartax_wrong_token").test()

    assert run.state == DagRunState.FAILED
    (ti,) = run.get_task_instances()
    assert ti.state == TaskInstanceState.FAILED
    assert ti.try_number == 1  # retries=3 were not used
    assert len(scripted.requests) == 1
    output = capfd.readouterr()
    assert "ClearTaxAuthError" in output.out + output.err
