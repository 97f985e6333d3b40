"""Run the ClearTax emulator: ``python -m airflow_provider_cleartax.emulator --help``."""

from __future__ import annotations

from airflow_provider_cleartax.emulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
