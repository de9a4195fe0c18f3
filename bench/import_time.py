"""Import cost of function_app against a bare app importing the same four packages (goal: <= 1.2x).

Measured with `python -X importtime`: the cumulative microseconds of the top-level import, median of N runs,
each in a fresh interpreter.

    python bench/import_time.py [--runs 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE = """
import azure.functions as func
import azure.storage.blob
import azure.identity
import requests

app = func.FunctionApp()
"""


def cumulative_us(module: str, cwd: Path) -> int:
    """Cumulative import time of `module` in microseconds, from a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in proc.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError(f"no import time line for {module}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare_app.py").write_text(BARE)
        cumulative_us("function_app", ROOT), cumulative_us("bare_app", Path(tmp))  # warm the disk cache
        app = statistics.median(cumulative_us("function_app", ROOT) for _ in range(args.runs))
        bare = statistics.median(cumulative_us("bare_app", Path(tmp)) for _ in range(args.runs))
    print(f"import function_app: {app / 1000:.1f} ms (median of {args.runs})")
    print(f"import bare_app (azure.functions, azure.storage.blob, azure.identity, requests): {bare / 1000:.1f} ms")
    print(f"ratio: {app / bare:.2f}x (goal <= 1.20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
