"""Apache Airflow provider for ClearTax's KSA e-invoicing API (ZATCA Phase 2)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
