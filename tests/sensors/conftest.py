"""Fixtures of the sensor tests: a fast emulator and an Airflow connection pointing at it."""

from tests.triggers.support import _fast_emulator_server, connect, emulator, make_emulator

__all__ = ["_fast_emulator_server", "connect", "emulator", "make_emulator"]
