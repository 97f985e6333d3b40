"""Registration with Airflow: provider info, connection form, cheap import."""

from __future__ import annotations

import json
import subprocess
import sys

from airflow_provider_cleartax.get_provider_info import get_provider_info
from tests.conftest import AIRFLOW_VERSION


def test_provider_info_declares_the_connection_form() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-cleartax"
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "cleartax"
    assert conn_type["hook-class-name"] == "airflow_provider_cleartax.hooks.cleartax.ClearTaxHook"
    behaviour = conn_type["ui-field-behaviour"]
    assert set(behaviour["hidden-fields"]) == {"schema", "port", "login"}
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "Auth token"}
    assert behaviour["placeholders"]["host"].startswith("https://api-sandbox.cleartax.com/")
    labels = {name: field["label"] for name, field in conn_type["conn-fields"].items()}
    assert labels == {
        "vat": "VAT number",
        "branch": "Branch",
        "device_id": "Device id",
        "request_timeout": "Request timeout (s)",
        "generate_timeout": "Generate timeout (s)",
        "max_retries": "Max retries",
        "language": "Language",
    }


def test_listed_modules_and_links_import() -> None:
    import importlib

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for link in info["extra-links"]:
        module, _, name = link.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def test_airflow_discovers_the_provider_and_its_form() -> None:
    """Ask a fresh interpreter, as `airflow providers` does, through the providers manager."""
    code = """
import json
from airflow.providers_manager import ProvidersManager
pm = ProvidersManager()
hook = pm.hooks["cleartax"]
widgets = {k: v.field for k, v in pm.connection_form_widgets.items() if k.startswith("extra__cleartax__")}
print(json.dumps({
    "providers": list(pm.providers),
    "hook": hook.hook_class_name if hook else None,
    "widgets": sorted(widgets),
    "behaviour": pm.field_behaviours.get("cleartax"),
}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert "airflow-provider-cleartax" in found["providers"]
    assert found["hook"] == "airflow_provider_cleartax.hooks.cleartax.ClearTaxHook"
    if AIRFLOW_VERSION >= (3, 2):
        # Airflow 3.1 builds connection forms only with Flask-AppBuilder installed, for every provider.
        assert "extra__cleartax__vat" in found["widgets"] and "extra__cleartax__language" in found["widgets"]
        assert found["behaviour"]["hidden_fields"] == ["schema", "port", "login"]


def test_importing_the_package_does_no_io_and_stays_light() -> None:
    code = "import sys, airflow_provider_cleartax, airflow_provider_cleartax.get_provider_info as g; g.get_provider_info(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'httpx', 'pydantic')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
