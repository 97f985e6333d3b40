"""Settings shared by the ClearTax example DAGs, resolved when a task runs (never while a DAG file is parsed).

Each setting is looked up in this order: the run's params (``conf`` of a manual run), the Airflow
Variable ``cleartax_<name>``, the environment variable ``CLEARTAX_<NAME>``, then a default under
``$AIRFLOW_HOME/cleartax_example``:

=============  ==========================================  ======================================
name           meaning                                     default
=============  ==========================================  ======================================
``erp_db``     SQLite file of the sample ERP               ``$AIRFLOW_HOME/cleartax_example/erp.sqlite``
``output``     ObjectStoragePath base of PDFs, ledger,     ``file://$AIRFLOW_HOME/cleartax_example/output``
               summaries (``s3://bucket/prefix`` works)
=============  ==========================================  ======================================

Two settings are read from the environment when a DAG file is parsed, because operators need
them up front: ``CLEARTAX_CONN_ID`` (default ``cleartax_default``) and ``CLEARTAX_POLL_INTERVAL``,
the seconds between status checks while waiting (default 10; ClearTax allows 10 bulk status
calls a minute per account, so keep it at 6 or more).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException

__all__ = [
    "CONN_ID",
    "KSA",
    "POLL_INTERVAL",
    "AirflowFailException",
    "business_day",
    "location",
    "setting",
    "storage_path",
]

CONN_ID = os.environ.get("CLEARTAX_CONN_ID", "cleartax_default")
#: Seconds between status checks of the waiting tasks (read when the DAG file is parsed).
POLL_INTERVAL = float(os.environ.get("CLEARTAX_POLL_INTERVAL", "10"))
#: Saudi Arabia keeps UTC+3 all year; invoice dates follow its calendar.
KSA = timezone(timedelta(hours=3))


def _example_home() -> Path:
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(airflow_home) / "cleartax_example"


DEFAULTS = {
    "erp_db": lambda: str(_example_home() / "erp.sqlite"),
    "output": lambda: (_example_home() / "output").as_uri(),
}


def setting(name: str, params: Mapping[str, Any] | None = None) -> str:
    """Return one setting: run params, then Airflow Variable, then environment, then the default.

    :param name: ``erp_db`` or ``output``.
    :param params: the run's params.
    """
    from airflow.sdk import Variable

    value = (params or {}).get(name)
    if not value:
        value = Variable.get(f"cleartax_{name}", default=None)
    if not value:
        value = os.environ.get(f"CLEARTAX_{name.upper()}")
    return str(value) if value else DEFAULTS[name]()


def storage_path(base: str, *parts: str) -> Any:
    """Return ``base/part/...`` as an ObjectStoragePath; a plain local path is accepted as base.

    :param base: an ObjectStoragePath URL (``file:///data/out``, ``s3://bucket/prefix``) or a local path.
    :param parts: path segments below it.
    """
    from airflow.sdk import ObjectStoragePath

    url = base if "://" in base else Path(base).resolve().as_uri()
    path = ObjectStoragePath(url)
    for part in parts:
        path = path / part
    return path


def location(path: Any) -> str:
    """Return where an ObjectStoragePath points, as text: a plain path for local files, else its URL.

    On Airflow 3.1 an ObjectStoragePath is also a ``pathlib.Path``, so code that tells local from
    remote paths by that class would take a ``file://`` URL for a relative path; a plain path is
    read the same way everywhere.

    :param path: the ObjectStoragePath.
    """
    return path.path if path.protocol in ("file", "local") else str(path)


def business_day(context: Mapping[str, Any]) -> date:
    """Return the day (on the Saudi calendar) whose invoices a run handles.

    A ``day`` param wins. A scheduled (or backfill) run handles the day that ended when its
    interval did, the usual "yesterday's batch". Any other run handles the day it is for: its
    logical date, or, for a run triggered from the UI or the REST API on Airflow 3 without a
    logical date, the moment it was started (``run_after``).

    :param context: the task's context.
    """
    requested = (context.get("params") or {}).get("day")
    if requested:
        return date.fromisoformat(str(requested))
    dag_run = context["dag_run"]
    if getattr(dag_run.run_type, "value", dag_run.run_type) in {"scheduled", "backfill"}:
        end = context.get("data_interval_end") or dag_run.logical_date
        return end.astimezone(KSA).date() - timedelta(days=1)
    moment = dag_run.logical_date or dag_run.run_after
    return moment.astimezone(KSA).date()
