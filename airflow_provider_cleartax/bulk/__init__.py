"""Bulk e-invoicing: submit thousands of invoices exactly once, at the rate limit, resumably."""

from __future__ import annotations

from airflow_provider_cleartax.bulk.engine import (
    DEFAULT_CONCURRENCY,
    BulkSubmitter,
    BulkSummary,
    submit_invoices,
)
from airflow_provider_cleartax.bulk.ledger import Ledger
from airflow_provider_cleartax.bulk.ratelimit import DEFAULT_RATE_LIMITS, RateLimiter

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE_LIMITS",
    "BulkSubmitter",
    "BulkSummary",
    "Ledger",
    "RateLimiter",
    "submit_invoices",
]
