"""Run the example DAGs under ``dag.test()`` against the emulator, with the ERP and outputs in a temp dir."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_provider_cleartax.emulator.config import EmulatorConfig

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
#: Seconds between the example DAGs' status checks under test (parsed from the environment).
POLL_INTERVAL = "0.5"


@pytest.fixture(scope="session")
def cleartax_emulator_config() -> EmulatorConfig:
    """Keep the emulator's documented rate limits; B2C reporting and PCSIDs take a second."""
    return EmulatorConfig(async_report_delay=1.0, pcsid_delay=1.0)


@pytest.fixture(autouse=True)
def example_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Declare the example DAGs as a second DAG bundle: ``dag.test()`` runs only DAGs of a bundle."""
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": os.environ["AIRFLOW__CORE__DAGS_FOLDER"]},
        },
        {
            "name": "cleartax-example-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(EXAMPLE_DAGS)},
        },
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))


@pytest.fixture(scope="session")
def example_dag(airflow_db: None) -> Iterator[Callable[[str], object]]:
    """Return a loader of the example DAGs, parsed once with a short status-check interval."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    # The DAG files import their settings module from their own folder, as Airflow allows.
    sys.path.append(str(EXAMPLE_DAGS))
    previous = os.environ.get("CLEARTAX_POLL_INTERVAL")
    os.environ["CLEARTAX_POLL_INTERVAL"] = POLL_INTERVAL
    try:
        bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    finally:
        if previous is None:
            del os.environ["CLEARTAX_POLL_INTERVAL"]
        else:
            os.environ["CLEARTAX_POLL_INTERVAL"] = previous
    assert not bag.import_errors, bag.import_errors
    yield bag.get_dag
    sys.path.remove(str(EXAMPLE_DAGS))


@pytest.fixture
def example_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleartax_connection: str) -> dict[str, Path]:
    """Point the example DAGs' ERP database and outputs at a temp dir (through the environment)."""
    paths = {"erp_db": tmp_path / "erp.sqlite", "output": tmp_path / "output"}
    monkeypatch.setenv("CLEARTAX_ERP_DB", str(paths["erp_db"]))
    monkeypatch.setenv("CLEARTAX_OUTPUT", paths["output"].as_uri())
    return paths
