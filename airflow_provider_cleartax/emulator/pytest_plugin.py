"""Pytest fixtures that run the ClearTax emulator for tests of users' own DAGs."""

from __future__ import annotations
