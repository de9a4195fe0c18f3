"""Headless Chromium for the status page: the DOM a browser builds from it, and a screenshot.

Debian's `chromium` package (CI installs it: .ci/run). Each run gets a fresh, empty profile and the flags a sandboxed
machine without a network needs (no sandbox as root, no GPU, no background connections).

    python -m local.browser screenshot PAGE OUT.png [--size 1320x1500]   # PAGE: a URL or a file
    python -m local.browser dom PAGE
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)
LIMIT_SECONDS = 120  # a hung browser fails the run instead of hanging it (not a timing assertion)


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """$CHROMIUM, else the first Chromium on the PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((found for name in NAMES if (found := shutil.which(name))), None)


def _target(page: str) -> str:
    return page if "://" in page else Path(page).resolve().as_uri()


def run(page: str, *flags: str) -> str:
    """Run headless Chromium on `page` with `flags`; its standard output."""
    binary = find_chromium()
    if binary is None:
        raise BrowserError("no Chromium found (apt-get install chromium, or set CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *flags, _target(page)],
            capture_output=True,
            text=True,
            timeout=LIMIT_SECONDS,
            check=False,
        )
    if done.returncode != 0:
        raise BrowserError(f"chromium exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def dump_dom(page: str) -> str:
    """The DOM Chromium built from the page, serialized (what a person's browser would show)."""
    return run(page, "--dump-dom")


def screenshot(page: str, out: Path, width: int = 1320, height: int = 1500) -> Path:
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    run(page, f"--window-size={width},{height}", f"--screenshot={out}")
    if not out.is_file() or out.stat().st_size == 0:
        raise BrowserError(f"chromium wrote no screenshot to {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Headless Chromium: a page's DOM or a screenshot.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    shot = verbs.add_parser("screenshot")
    shot.add_argument("page", help="a URL or an HTML file")
    shot.add_argument("out", type=Path)
    shot.add_argument("--size", default="1320x1500", help="WIDTHxHEIGHT of the window")
    dom = verbs.add_parser("dom")
    dom.add_argument("page")
    args = parser.parse_args(argv)
    try:
        if args.verb == "dom":
            sys.stdout.write(dump_dom(args.page))
        else:
            width, height = (int(n) for n in args.size.lower().split("x"))
            print(screenshot(args.page, args.out, width, height))
    except BrowserError as exc:
        print(f"browser: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
