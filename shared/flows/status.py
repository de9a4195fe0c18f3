"""The status page's body: the same status data as the CLI (shared.status.build_status), as HTML or JSON."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import context
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


def on_request(req: func.HttpRequest) -> func.HttpResponse:
    config = context.settings()
    rows = build_status(snapshot(config, context.speech(config), context.training_container(config)), **options(config))
    if (req.params.get("format") or "").lower() == "json":
        return func.HttpResponse(
            json.dumps(rows, indent=2), mimetype="application/json", status_code=200, headers=HEADERS
        )
    return func.HttpResponse(render_page(rows), mimetype="text/html", charset="utf-8", status_code=200, headers=HEADERS)
