"""Shared test set-up: a private Airflow home, loopback servers and connection helpers."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

# Airflow reads its configuration at import time: point it at a throw-away home first.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="cleartax-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"

import pytest  # noqa: E402

from tests.scripted_server import ScriptedServer  # noqa: E402

AIRFLOW_VERSION = tuple(int(part) for part in version("apache-airflow").split(".")[:2])

#: A token with characters that need escaping in JSON, URLs and shells.
SECRET_TOKEN = "tok_S3cr3t+/=%&\"'<>;,~!x9"
SELLER_VAT = "300000000000003"

ConnFactory = Callable[..., str]


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer().start()
    yield server
    server.stop()


@pytest.fixture
def scripted(scripted_server: ScriptedServer) -> ScriptedServer:
    """The scripted loopback server, with no script and no recorded requests."""
    scripted_server.reset()
    return scripted_server


@pytest.fixture
def make_connection(monkeypatch: pytest.MonkeyPatch) -> ConnFactory:
    """Install an ``AIRFLOW_CONN_<ID>`` environment connection of type cleartax; return its id."""

    def install(
        host: str, *, conn_id: str = "cleartax_test", password: str | None = SECRET_TOKEN, **extra: object
    ) -> str:
        extra.setdefault("vat", SELLER_VAT)
        payload = {"conn_type": "cleartax", "host": host, "password": password, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
        return conn_id

    return install


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Create the metadata database once per test session (needed by ``dag.test()``)."""
    from airflow.utils.db import initdb

    initdb()


@pytest.fixture(scope="session")
def load_dag(airflow_db: None) -> Callable[[str], object]:
    """Return a loader of the test DAGs (they must live in the DAGs folder for ``dag.test()``)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors

    def load(dag_id: str) -> object:
        return bag.get_dag(dag_id)

    return load


DATA_DIR = Path(__file__).parent / "data"


def sample_invoice(name: str = "standard_invoice", *, number: str | None = None) -> dict:
    """Load a sample E-Invoice from ``tests/data/invoices``, optionally renumbered."""
    invoice = json.loads((DATA_DIR / "invoices" / f"{name}.json").read_text(encoding="utf-8"))
    if number is not None:
        invoice["ID"] = {"en": number, "ar": None} if isinstance(invoice.get("ID"), dict) else number
    return invoice


def xcom_values(run: object, task_id: str) -> dict[str, object]:
    """Return every XCom a task of a finished ``dag.test()`` run pushed, by key."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id)
        ).all()
        return {row.key: XComModel.deserialize_value(row) for row in rows}


def task_states(run: object) -> dict[str, tuple[str, int]]:
    """Return ``{task_id: (state, try_number)}`` of a finished ``dag.test()`` run."""
    return {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
