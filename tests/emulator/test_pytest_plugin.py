"""The emulator's pytest plugin, exercised in inner pytest sessions."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.integration

_HELPERS = """
import json, os
import httpx
from airflow_provider_cleartax.emulator.config import DEFAULT_DEVICE_ID, DEFAULT_TOKEN, DEFAULT_VAT

def bulk_status(server):
    headers = {"X-Cleartax-Auth-Token": DEFAULT_TOKEN, "vat": DEFAULT_VAT}
    body = {"Invoices": [{"uniqueId": "300000000000003_INV-1_388_2026"}]}
    return httpx.post(server.base_url + "/v3/einvoices/get-bulk", json=body, headers=headers).status_code
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_function_fixture_resets_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _HELPERS
        + """
def test_first(cleartax_emulator, cleartax_emulator_server):
    assert cleartax_emulator is cleartax_emulator_server
    cleartax_emulator.set_faults("get_bulk", {"error_5xx": 1.0})
    assert bulk_status(cleartax_emulator) >= 500
    assert len(cleartax_emulator.request_log()) == 1

def test_second(cleartax_emulator):
    assert cleartax_emulator.faults() == {}
    assert cleartax_emulator.request_log() == []
    assert bulk_status(cleartax_emulator) == 200
"""
    )
    run(pytester).assert_outcomes(passed=2)


def test_connection_fixture_installs_the_env_connection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _HELPERS
        + """
def test_connection(cleartax_connection, cleartax_emulator):
    assert cleartax_connection == "cleartax_default"
    connection = json.loads(os.environ["AIRFLOW_CONN_CLEARTAX_DEFAULT"])
    assert connection == {
        "conn_type": "cleartax",
        "host": cleartax_emulator.base_url,
        "password": DEFAULT_TOKEN,
        "extra": {"vat": DEFAULT_VAT, "device_id": DEFAULT_DEVICE_ID},
    }

def test_connection_is_gone_afterwards():
    assert "AIRFLOW_CONN_CLEARTAX_DEFAULT" not in os.environ
"""
    )
    run(pytester).assert_outcomes(passed=2)


def test_marker_shapes_the_emulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _HELPERS
        + """
import pytest
from airflow_provider_cleartax.emulator.config import FaultSpec

@pytest.mark.cleartax_emulator(faults={"get_bulk": FaultSpec(rate_limit=1.0)}, rate_limits={}, seed=3)
def test_live_settings_use_the_shared_server(cleartax_emulator, cleartax_emulator_server):
    assert cleartax_emulator is cleartax_emulator_server
    assert cleartax_emulator.rate_limits() == {}
    assert bulk_status(cleartax_emulator) == 429

@pytest.mark.cleartax_emulator(pcsid_fail=True, faults={"get_bulk": {"error_5xx": 1.0}})
def test_other_settings_start_a_dedicated_server(cleartax_emulator, cleartax_emulator_server):
    assert cleartax_emulator is not cleartax_emulator_server
    assert cleartax_emulator.config.pcsid_fail
    assert bulk_status(cleartax_emulator) >= 500
    assert cleartax_emulator_server.faults().get("get_bulk", {}).get("error_5xx", 0.0) == 0.0

@pytest.mark.cleartax_emulator(no_such_field=1)
def test_unknown_field(cleartax_emulator):
    pass
"""
    )
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*unknown EmulatorConfig field(s) no_such_field*"])


def test_config_fixture_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest
from airflow_provider_cleartax.emulator.config import EmulatorConfig

@pytest.fixture(scope="session")
def cleartax_emulator_config():
    return EmulatorConfig(tokens={"team-token": ()}, rate_limits={"get_bulk": 1})
"""
    )
    pytester.makepyfile(
        """
import httpx

def test_uses_the_override(cleartax_emulator, cleartax_connection):
    assert cleartax_emulator.rate_limits() == {"get_bulk": 1}
    assert '"password": "team-token"' in cleartax_emulator.airflow_conn_json()
    headers = {"X-Cleartax-Auth-Token": "emulator-token"}
    response = httpx.get(cleartax_emulator.base_url + "/v2/einvoices/data", headers=headers)
    assert response.status_code == 401
"""
    )
    run(pytester).assert_outcomes(passed=1)


def test_plugin_imports_no_web_stack() -> None:
    code = (
        "import sys, airflow_provider_cleartax.emulator.pytest_plugin; "
        "print(sorted(m for m in ('uvicorn', 'starlette', 'httpx', 'airflow') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
