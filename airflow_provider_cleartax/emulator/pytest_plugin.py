"""Pytest fixtures that run the ClearTax emulator for tests of users' own DAGs.

Fixtures (all available once the provider is installed):

- ``cleartax_emulator_config`` (session): the :class:`EmulatorConfig` of the shared server;
  override it in a ``conftest.py`` (keeping session scope) to change tokens, VATs, delays...
- ``cleartax_emulator_server`` (session): the shared :class:`EmulatorServer`, state kept
  across tests.
- ``cleartax_emulator`` (function): the shared server, reset before the test (no invoices,
  counters, log entries; faults, limits and seed as configured).
- ``cleartax_connection`` (function): sets ``AIRFLOW_CONN_CLEARTAX_DEFAULT`` to point at
  ``cleartax_emulator`` and returns the connection id.

The ``cleartax_emulator`` marker changes the emulator of one test:
``@pytest.mark.cleartax_emulator(faults={"generate": {"error_5xx": 1.0}}, rate_limits={}, seed=7)``
applies to the shared server; any other :class:`EmulatorConfig` field (``pcsid_fail=True``...)
starts a dedicated server for that test.

The web stack is imported by the fixtures, not by this module, which pytest loads in every session.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_cleartax.emulator.config import EmulatorConfig, FaultSpec

if TYPE_CHECKING:
    from airflow_provider_cleartax.emulator.server import EmulatorServer

MARKER = "cleartax_emulator"
#: Connection id :func:`cleartax_connection` installs.
CONN_ID = "cleartax_default"
# Settings the admin API can change on a running server; any other needs a server of its own.
_LIVE_SETTINGS = frozenset({"faults", "rate_limits", "seed"})
_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(EmulatorConfig))


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``cleartax_emulator`` marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): EmulatorConfig fields for this test's ClearTax emulator; faults, "
        "rate_limits and seed are applied to the shared server, other fields start a dedicated one",
    )


def _marker_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keyword arguments only (EmulatorConfig fields)")
    unknown = sorted(set(marker.kwargs) - _CONFIG_FIELDS)
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: unknown EmulatorConfig field(s) {', '.join(unknown)}"
        )
    return dict(marker.kwargs)


def _fault_spec(spec: FaultSpec | Mapping[str, float]) -> FaultSpec:
    return spec if isinstance(spec, FaultSpec) else FaultSpec(**spec)


@pytest.fixture(scope="session")
def cleartax_emulator_config() -> EmulatorConfig:
    """Return the settings of the session's emulator (override this fixture to change them)."""
    return EmulatorConfig()


@pytest.fixture(scope="session")
def cleartax_emulator_server(cleartax_emulator_config: EmulatorConfig) -> Iterator[EmulatorServer]:
    """Run one emulator for the whole session; its state is shared between tests."""
    from airflow_provider_cleartax.emulator.server import EmulatorServer

    with EmulatorServer(config=cleartax_emulator_config) as server:
        yield server


@pytest.fixture
def cleartax_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """Yield an emulator with fresh state, shaped by the test's ``cleartax_emulator`` marker."""
    settings = _marker_settings(request)
    if "faults" in settings:
        settings["faults"] = {endpoint: _fault_spec(spec) for endpoint, spec in settings["faults"].items()}
    if set(settings) - _LIVE_SETTINGS:
        from airflow_provider_cleartax.emulator.server import EmulatorServer

        base: EmulatorConfig = request.getfixturevalue("cleartax_emulator_config")
        with EmulatorServer(config=dataclasses.replace(base, **settings)) as server:
            yield server
        return
    shared: EmulatorServer = request.getfixturevalue("cleartax_emulator_server")
    shared.reset()
    for endpoint, spec in settings.get("faults", {}).items():
        shared.set_faults(endpoint, spec)
    if "rate_limits" in settings:
        shared.set_rate_limits(settings["rate_limits"])
    if "seed" in settings:
        shared.seed(settings["seed"])
    yield shared


@pytest.fixture
def cleartax_connection(cleartax_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point Airflow connection ``cleartax_default`` at the test's emulator and return its id."""
    from airflow_provider_cleartax.emulator.server import conn_env_var

    monkeypatch.setenv(conn_env_var(CONN_ID), cleartax_emulator.airflow_conn_json())
    return CONN_ID
