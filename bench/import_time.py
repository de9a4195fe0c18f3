"""Import cost of function_app against a bare app importing the same packages (goal: <= 1.2x).

Measured with `python -X importtime`: the cumulative microseconds of the top-level import, median of N runs,
each in a fresh interpreter. The bare app imports the third-party packages function_app loads at import time (the
Functions library, its blob SDK-type bindings extension, the blob storage SDK, azure.identity, requests); the bench
checks that, in fresh interpreters, function_app loads no third-party module the bare app does not, and says so if
it does (then BARE needs the package, or the app imports it too early).

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
import azurefunctions.extensions.bindings.blob
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


LOADED = "import sys; before = set(sys.modules); import {module}; print(*sorted(set(sys.modules) - before))"


def third_party_modules(module: str, cwd: Path) -> set[str]:
    """Modules outside the standard library (and outside this project) that importing `module` loads."""
    proc = subprocess.run(
        [sys.executable, "-c", LOADED.format(module=module)], cwd=cwd, capture_output=True, text=True, check=True
    )
    own = {"shared", "function_app", "bare_app"}
    return {
        name
        for name in proc.stdout.split()
        if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] not in own and name[0] != "_"
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bare_app.py").write_text(BARE)
        extra = third_party_modules("function_app", ROOT) - third_party_modules("bare_app", Path(tmp))
        cumulative_us("function_app", ROOT), cumulative_us("bare_app", Path(tmp))  # warm the disk cache
        app = statistics.median(cumulative_us("function_app", ROOT) for _ in range(args.runs))
        bare = statistics.median(cumulative_us("bare_app", Path(tmp)) for _ in range(args.runs))
    print(f"import function_app: {app / 1000:.1f} ms (median of {args.runs})")
    packages = "azure.functions, azurefunctions.extensions.bindings.blob, azure.storage.blob, azure.identity, requests"
    print(f"import bare_app ({packages}): {bare / 1000:.1f} ms")
    tops = sorted({".".join(name.split(".")[:2]) for name in extra})
    print(
        "third-party modules function_app loads that bare_app does not: "
        + (f"{len(extra)} ({', '.join(tops)}): the comparison is NOT like for like" if extra else "none")
    )
    print(f"ratio: {app / bare:.2f}x (goal <= 1.20x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
