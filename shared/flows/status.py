"""The status page's body: the same status data as the CLI (shared.status.build_status), as HTML or JSON."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import azure.functions as func

from shared import context
from shared.budget import BACKGROUND, speech_priority
from shared.flows.timers import snapshot
from shared.status import build_status, options
from shared.status_page import render_page

log = logging.getLogger("autopilot.status")

# The page holds no script and loads nothing: a strict policy costs nothing and keeps any injected markup inert.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# A page view lists the whole Speech resource (about N/100 calls for N resources): views within this many seconds
# share one listing per instance, and the listing is background work within the request budget, so however often
# the page is loaded it never takes the share ingests and deployments keep (shared/budget.py).
FRESH_SECONDS = 60.0
_cache: dict[str, tuple[float, list[dict]]] = {}
_cache_lock = threading.Lock()


def status_rows(config, now: Callable[[], float] = time.monotonic) -> list[dict]:
    """The status data, listed at most once per FRESH_SECONDS per Speech endpoint and container in this instance."""
    key = f"{config.speech_endpoint}|{config.training_container}"
    with _cache_lock:  # one listing at a time: concurrent views wait for it instead of listing again
        cached = _cache.get(key)
        if cached is not None and now() - cached[0] < FRESH_SECONDS:
            return cached[1]
        with speech_priority(BACKGROUND):
            snap = snapshot(config, context.speech(config), context.training_container(config))
        rows = build_status(snap, **options(config))
        _cache[key] = (now(), rows)
        return rows


def on_request(req: func.HttpRequest) -> func.HttpResponse:
    config = context.settings()
    rows = status_rows(config)
    if (req.params.get("format") or "").lower() == "json":
        return func.HttpResponse(
            json.dumps(rows, indent=2), mimetype="application/json", status_code=200, headers=HEADERS
        )
    return func.HttpResponse(render_page(rows), mimetype="text/html", charset="utf-8", status_code=200, headers=HEADERS)
