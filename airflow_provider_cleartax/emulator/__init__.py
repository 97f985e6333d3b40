"""Local emulator of ClearTax's KSA e-invoicing API, for tests and offline development.

Importing this package is cheap: the web stack is only imported when a server or app is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow_provider_cleartax.emulator.config import (
    ADMIN_PREFIX,
    API_PREFIX,
    ENDPOINTS,
    EmulatorConfig,
    FaultSpec,
)

if TYPE_CHECKING:
    from airflow_provider_cleartax.emulator.api import Emulator
    from airflow_provider_cleartax.emulator.app import create_app
    from airflow_provider_cleartax.emulator.server import EmulatorProcess, EmulatorServer

_LAZY = {
    "Emulator": "airflow_provider_cleartax.emulator.api",
    "create_app": "airflow_provider_cleartax.emulator.app",
    "EmulatorServer": "airflow_provider_cleartax.emulator.server",
    "EmulatorProcess": "airflow_provider_cleartax.emulator.server",
}

__all__ = [
    "ADMIN_PREFIX",
    "API_PREFIX",
    "ENDPOINTS",
    "Emulator",
    "EmulatorConfig",
    "EmulatorProcess",
    "EmulatorServer",
    "FaultSpec",
    "create_app",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
