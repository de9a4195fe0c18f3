"""The Speech emulator at 50,000 datasets (issue #16): a list page costs the same at any offset, an exact
`description eq` filter (the ingest lookup) does not scan the collection, and following a filtered listing's
nextLinks costs O(n) in all rather than O(n) per page.

In-process, through `SpeechEmulator.handle` (routing, auth, filter parsing, paging, rendering; no sockets), so
the figures are the emulator's alone. Times are the median of several calls.

    python -m bench.emulator_bench [--n 50000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from urllib.parse import quote, urlsplit

from local.speech_emulator import API_VERSION, SpeechEmulator
from shared import ingest


def _description(i: int) -> str:
    """The description the ingest gives the dataset of zip number i (shared.ingest.description)."""
    return ingest.description(f"training/en-US/language/d{i:06d}.zip", f"zip1:{i:040x}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000)
    args = parser.parse_args()
    emulator = SpeechEmulator(page_size=100)  # not started: handle() is called directly
    headers = {"Ocp-Apim-Subscription-Key": emulator.key}
    locales = ("en-US", "de-DE", "fr-FR", "es-ES", "ja-JP")
    started = time.perf_counter()
    emulator.seed(
        "datasets",
        [
            {
                "displayName": f"d{i:06d}",
                "locale": locales[i % len(locales)],
                "kind": "Language",
                "description": _description(i),
            }
            for i in range(args.n)
        ],
    )
    print(f"seeded {args.n} datasets in {time.perf_counter() - started:.1f} s")

    def call(target: str) -> tuple[float, dict]:
        began = time.perf_counter()
        response = emulator.handle("GET", target, headers, b"")
        assert response.status == 200, response.body
        return time.perf_counter() - began, response.body

    def timed(target: str, repeat: int = 7) -> float:
        return statistics.median(call(target)[0] for _ in range(repeat)) * 1000

    def list_url(**query: str) -> str:
        parts = "&".join(f"{k}={quote(v)}" for k, v in {**query, "api-version": API_VERSION}.items())
        return f"/speechtotext/datasets?{parts}"

    print(f"{'request':<58} {'ms':>8}")
    for skip in (0, args.n // 2, args.n - 100):
        print(f"{f'page of 100, skip={skip}':<58} {timed(list_url(skip=str(skip), top='100')):>8.2f}")
    exact = f"description eq {ingest.odata_string(_description(args.n // 3))}"
    assert len(call(list_url(filter=exact))[1]["values"]) == 1, "the lookup should find its one dataset"
    print(f"{'filter description eq (the ingest lookup: an index)':<58} {timed(list_url(filter=exact)):>8.2f}")
    both = f"{exact} and status eq 'Succeeded'"
    print(f"{'filter description eq ... and status eq (index + check)':<58} {timed(list_url(filter=both)):>8.2f}")
    scan = "status eq 'Succeeded' and kind eq 'Language'"
    print(f"{'filter status/kind, first page (a scan from the newest)':<58} {timed(list_url(filter=scan)):>8.2f}")
    pages, total, target = 0, 0.0, list_url(filter="locale eq 'de-DE' and status eq 'Succeeded'")
    while target:
        elapsed, body = call(target)
        total, pages = total + elapsed, pages + 1
        link = body.get("@nextLink")
        target = f"{urlsplit(link).path}?{urlsplit(link).query}" if link else ""
    per_page = total / pages * 1000
    print(f"{f'filtered walk of {pages} pages via nextLinks (locale + status)':<58} {per_page:>8.2f} per page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
