"""One real Airflow (api-server, scheduler, dag-processor, triggerer) and emulator for the system tests.

The stack is the demo's own (``scripts.demo.demo_stack``), started once per session in a temp dir,
and the daily DAG is run on it once; every test reads what it needs from that run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_cleartax.emulator import EmulatorConfig
from scripts.demo import DemoRun, DemoStack, demo_stack, run_daily

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"


@dataclass
class SystemRun:
    """The running stack and the outcome of the daily DAG's run on it."""

    stack: DemoStack
    outcome: DemoRun


@pytest.fixture(scope="session")
def system_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemRun]:
    """Start the demo's stack, run the daily DAG through the REST API, and stop it all at the end."""
    run_dir = tmp_path_factory.mktemp("system")
    lines: list[str] = []
    # B2C reporting takes longer than the sensor's first check: it defers and the triggerer waits.
    config = EmulatorConfig(seed=3, async_report_delay=8.0)
    with demo_stack(run_dir, emulator_config=config, progress=lines.append) as stack:
        outcome = run_daily(stack, timeout=480, progress=lines.append)
        if not outcome.succeeded:
            print("\n".join(lines))
        yield SystemRun(stack=stack, outcome=outcome)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The folder CI keeps after the run (screenshots)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
