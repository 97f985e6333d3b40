"""ClearTax invoice statuses, kept free of heavy imports so sensors and triggers parse fast."""

from __future__ import annotations

SUCCESS_STATUSES = frozenset({"CLEARED", "REPORTED", "ACCEPTED_WITH_WARNING"})
FAILURE_STATUSES = frozenset({"NOT_CLEARED", "NOT_REPORTED"})
TERMINAL_STATUSES = SUCCESS_STATUSES | FAILURE_STATUSES
