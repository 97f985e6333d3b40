"""Run one measurement in this fresh interpreter: ``python -m benchmarks.child module:function``.

The keyword arguments come as JSON on stdin; the answer goes to stdout as one JSON line after
:data:`~benchmarks.harness.RESULT_MARKER`, with the process's peak RSS and CPU time added.
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> int:
    """Call the target named on the command line and print its answer."""
    # Only the stdlib before the target runs: what the target imports is part of its measurement.
    module_name, function_name = sys.argv[1].split(":")
    kwargs = json.loads(sys.stdin.read() or "{}")
    answer = getattr(importlib.import_module(module_name), function_name)(**kwargs)

    from benchmarks.harness import RESULT_MARKER, cpu_seconds, peak_rss_mb

    answer = {**answer, "peak_rss_mb": round(peak_rss_mb(), 1), "cpu_s": round(cpu_seconds(), 3)}
    sys.stdout.write(RESULT_MARKER + json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
