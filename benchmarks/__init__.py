"""Benchmarks of the provider against the bundled emulator: ``python -m benchmarks.run --help``."""
