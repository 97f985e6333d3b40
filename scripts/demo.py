"""Run the daily e-invoicing DAG on a real Airflow against the bundled ClearTax emulator (``make demo``).

Starts the emulator and Airflow's api-server, scheduler, dag-processor and triggerer as child
processes, with everything they write under ``.demo/<time>/`` in the repository; creates today's
sample ERP; unpauses ``cleartax_daily_einvoicing`` and triggers it through the REST API (with no
logical date, as the UI does); follows the run; prints its outcome and the day's summary; then
stops every process it started. With ``--keep`` everything stays up, UI included, until Ctrl-C.
The exit code is 0 only if the run succeeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_cleartax.emulator import EmulatorConfig, EmulatorProcess, FaultSpec
from airflow_provider_cleartax.invoices import ksa_today
from scripts.local_airflow import LocalAirflow, LocalAirflowError, Progress, signals_as_interrupt
from scripts.sample_erp import create_sample_erp

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO_ROOT / ".demo"
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
DAG_ID = "cleartax_daily_einvoicing"
#: Seconds between B2C status checks: ClearTax allows 10 Get-bulk calls a minute.
POLL_INTERVAL = "6"
#: Seconds the emulator takes to report a B2C invoice.
REPORT_DELAY = 15.0


@dataclass
class DemoStack:
    """The running emulator and Airflow, and where the demo's data lives.

    :param run_dir: the folder of this demo run.
    :param emulator: the ClearTax emulator child process.
    :param airflow: the Airflow components.
    :param erp_db: the sample ERP database.
    :param output: the example DAGs' output folder (ledger, PDFs, summaries).
    """

    run_dir: Path
    emulator: EmulatorProcess
    airflow: LocalAirflow
    erp_db: Path
    output: Path


@dataclass
class DemoRun:
    """How a run of the daily DAG ended.

    :param run: the DAG run as the REST API returns it.
    :param task_states: the final state of each task.
    :param summary: the ``summarize`` task's result (``None`` if it did not run).
    :param seconds: from trigger to final state.
    """

    run: dict[str, Any]
    task_states: dict[str, str | None] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        """Whether the run ended in success."""
        return self.run["state"] == "success"


def new_run_dir(base: Path = DEMO_DIR) -> Path:
    """Create ``<base>/<time>/`` (git-ignored: the base holds a ``.gitignore`` of ``*``) and return it.

    :param base: where demo runs are kept.
    """
    base.mkdir(parents=True, exist_ok=True)
    (base / ".gitignore").write_text("*\n")
    run_dir = base / datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = base / f"{datetime.now():%Y%m%d-%H%M%S}-{suffix}"
    run_dir.mkdir()
    return run_dir


@contextmanager
def demo_stack(
    run_dir: Path,
    *,
    emulator_config: EmulatorConfig | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    progress: Progress = print,
) -> Iterator[DemoStack]:
    """Create today's sample ERP, start the emulator and Airflow, and stop them all on exit.

    :param run_dir: folder of this run: Airflow home, ERP, outputs and logs go below it.
    :param emulator_config: settings of the emulator.
    :param port: the api-server's port; ``None`` picks a free one.
    :param env: further environment of the Airflow components.
    :param progress: called with one line per step.
    """
    erp_db = run_dir / "erp.sqlite"
    output = run_dir / "output"
    added = create_sample_erp(erp_db, days=[ksa_today()])
    progress(f"Created the sample ERP {_shown(erp_db)}: {added} sales documents issued today")
    emulator = EmulatorProcess(config=emulator_config or EmulatorConfig())
    airflow: LocalAirflow | None = None
    try:
        emulator.start()
        progress(f"ClearTax emulator running (pid {emulator.pid}) at {emulator.base_url}")
        airflow = LocalAirflow(
            home=run_dir / "airflow-home",
            dags_folder=EXAMPLE_DAGS,
            port=port,
            progress=progress,
            env={
                **emulator.airflow_conn_env(),
                "AIRFLOW_VAR_CLEARTAX_ERP_DB": str(erp_db),
                "AIRFLOW_VAR_CLEARTAX_OUTPUT": output.as_uri(),
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "CLEARTAX_POLL_INTERVAL": POLL_INTERVAL,
                **(env or {}),
            },
        )
        airflow.start()
        progress(f"Airflow is healthy at {airflow.url}")
        yield DemoStack(run_dir=run_dir, emulator=emulator, airflow=airflow, erp_db=erp_db, output=output)
    finally:
        progress("Stopping the processes started for the demo")
        if airflow is not None:
            airflow.stop()
        emulator.stop()
        progress("  emulator stopped")


def run_daily(stack: DemoStack, *, timeout: float = 600.0, progress: Progress = print) -> DemoRun:
    """Unpause the daily DAG, trigger it with no logical date, and follow the run to its end.

    :param stack: the running demo.
    :param timeout: seconds the run may take.
    :param progress: called with one line per step and per task state change.
    """
    airflow = stack.airflow
    airflow.wait_for_dag(DAG_ID)
    airflow.api.unpause(DAG_ID)
    triggered = airflow.api.trigger(DAG_ID)
    run_id = triggered["dag_run_id"]
    progress(f"Triggered {DAG_ID} through the REST API: run {run_id}")
    started = time.monotonic()
    states: dict[str, str | None] = {}

    def report(run: dict[str, Any]) -> None:
        for task, state in run["task_states"].items():
            if states.get(task) != state and state is not None:
                progress(f"  [{time.monotonic() - started:5.0f} s] {task}: {state}")
        states.clear()
        states.update(run["task_states"])

    run = airflow.wait_for_run(DAG_ID, run_id, timeout=timeout, on_change=report)
    outcome = DemoRun(run=run, task_states=dict(states), seconds=time.monotonic() - started)
    if states.get("summarize") == "success":
        outcome.summary = airflow.api.xcom(DAG_ID, run_id, "summarize")
    return outcome


def summary_lines(outcome: DemoRun) -> list[str]:
    """Return the run's outcome and the day's summary as printable lines.

    :param outcome: the finished run.
    """
    run = outcome.run
    lines = [f"Run {run['dag_run_id']} finished: {run['state'].upper()} in {outcome.seconds:.0f} s"]
    summary = outcome.summary
    if summary is None:
        failed = [task for task, state in outcome.task_states.items() if state not in ("success", "skipped")]
        lines.append(f"No summary: these tasks did not succeed: {', '.join(failed) or 'none'}")
        return lines
    lines += [
        "",
        f"Day {summary['day']}: {summary['documents']} documents in the ERP",
        f"  {'status':<24}{'documents':>10}",
        *(f"  {status:<24}{count:>10}" for status, count in summary["counts"].items()),
        f"  sent to ClearTax in this run: {summary['sent_this_run']}, "
        f"already done before: {summary['skipped_as_done']}",
        f"  PDFs stored: {summary['pdfs']}, buyers emailed: {summary['emailed']}",
    ]
    if summary["rejects"]:
        lines.append("Rejected:")
        for reject in summary["rejects"]:
            lines.append(
                f"  {reject['invoice_number']:<20}{reject['status']:<14}{'; '.join(reject['reasons'])}"
            )
    return lines


def _shown(path: Path | str) -> str:
    """Return a path relative to the working directory when it is below it (shorter to read)."""
    path = Path(str(path).removeprefix("file://"))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return 0 only if the DAG run succeeded."""
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave Airflow and the emulator up until Ctrl-C")
    parser.add_argument("--port", type=int, help="api-server (UI) port; default: a free one")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds the DAG run may take (default 600)"
    )
    parser.add_argument(
        "--flaky", action="store_true", help="make the emulator fail 10%% of invoice submissions with a 5xx"
    )
    args = parser.parse_args(argv)

    began = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    # ZATCA takes a while to report B2C invoices: the sensor really waits in the triggerer.
    config = EmulatorConfig(seed=7, async_report_delay=REPORT_DELAY)
    if args.flaky:
        config.faults = {name: FaultSpec(error_5xx=0.1) for name in ("generate", "generate_async")}
    run_dir = new_run_dir()
    progress(f"Demo folder: {_shown(run_dir)}")
    code = 1
    with signals_as_interrupt():
        try:
            with demo_stack(run_dir, emulator_config=config, port=args.port, progress=progress) as stack:
                outcome = run_daily(stack, timeout=args.timeout, progress=progress)
                print("\n".join(["", *summary_lines(outcome), ""]), flush=True)
                summary = outcome.summary or {}
                progress(f"PDFs:    {_shown(summary.get('pdf_folder', stack.output / 'pdf'))}")
                progress(f"Ledger:  {_shown(summary.get('ledger', stack.output / 'ledger'))}")
                progress(f"Logs:    {_shown(stack.airflow.log_dir)}")
                run_url = f"{stack.airflow.url}/dags/{DAG_ID}/runs/{outcome.run['dag_run_id']}"
                code = 0 if outcome.succeeded else 1
                if args.keep:
                    progress(f"Airflow UI: {run_url} (no login needed); press Ctrl-C to stop")
                    while True:
                        stack.airflow.check_alive()
                        time.sleep(1)
                else:
                    progress(f"Airflow UI (while running): {run_url}; run with --keep to leave it up")
        except KeyboardInterrupt:
            progress("Interrupted")
            if not args.keep:
                code = 130
        except LocalAirflowError as error:
            progress(f"Demo failed: {error}")
            code = 1
    progress(f"Done (exit code {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
