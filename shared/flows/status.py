"""The status page's body: the same status data as the CLI (shared.status.build_status), as HTML or JSON."""

from __future__ import annotations

import html
import json
import logging

import azure.functions as func

from shared import context
from shared.flows.timers import snapshot
from shared.status import COLUMNS, build_status, cell

log = logging.getLogger("autopilot.status")


def on_request(req: func.HttpRequest) -> func.HttpResponse:
    config = context.settings()
    rows = build_status(snapshot(config, context.speech(config), context.training_container(config)))
    if (req.params.get("format") or "").lower() == "json":
        return func.HttpResponse(json.dumps(rows, indent=2), mimetype="application/json", status_code=200)
    return func.HttpResponse(render_html(rows), mimetype="text/html", charset="utf-8", status_code=200)


def render_html(rows: list[dict]) -> str:
    """One self-contained page (no scripts, no external assets); every value escaped."""
    head = "".join(f"<th>{html.escape(title)}</th>" for title, _ in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(row, key))}</td>" for _, key in COLUMNS) + "</tr>" for row in rows
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Custom Speech Autopilot status</title></head>"
        f"<body><h1>Custom Speech Autopilot</h1><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "</body></html>"
    )
