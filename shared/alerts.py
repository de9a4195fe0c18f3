"""Alerts: one shape for the queue, the optional webhook (Teams or Slack) and the logs.

Queue message (JSON): {"id", "kind", "severity", "locale", "resource", "message", "details", "at"}.
`id` is deterministic for the event it reports (kind + resource + what happened), so a consumer can drop the
duplicates that at-least-once delivery may produce.
Log line (Application Insights traces): `ALERT severity=<s> kind=<k> locale=<l> resource=<r> id=<id>: <message>`,
at WARNING level for warning, ERROR for critical, INFO for info.

Every alert is bounded: whatever a zip entry's name or a deploy message holds, the queue message stays far below
the queue's 64 KiB limit, with a visible truncation marker where text was cut. An alert is delivered (queue, then
webhook, then log) before anything records it as sent: delivery is at least once, and ids make repeats harmless.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from shared.clock import utc
from shared.logs import scrub

log = logging.getLogger("autopilot.alerts")

SEVERITIES = ("info", "warning", "critical")
MAX_ALERT_BYTES = 16 * 1024  # one alert's JSON; the queue takes 64 KiB
MAX_MESSAGE_CHARS = 2000
MAX_RESOURCE_CHARS = 512
MAX_TEXT_CHARS = 1000  # one string inside details
MAX_ITEMS = 50  # entries of a list or object inside details
MAX_DEPTH = 4
# Seconds one delivery may spend on webhook POSTs (each up to 3 + 10 s, tried twice). A webhook that hangs must not
# keep a pass under the autopilot lock until the functionTimeout kills it before it records anything; the alerts
# it could not post in time are on the queue all the same.
WEBHOOK_BUDGET_SECONDS = 60.0
_NAMESPACE = uuid.UUID("6f1d3c2e-5a7b-4c89-9e0f-1a2b3c4d5e6f")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}

# Every alert kind the app raises, with its default severity.
KINDS: dict[str, str] = {
    "zip-rejected": "warning",
    "dataset-failed": "warning",
    "dataset-stuck": "warning",
    "model-failed": "warning",
    "no-base-model": "warning",
    "endpoint-deployed": "info",
    "endpoint-failed": "critical",
    "model-expiring": "warning",
    "model-expired": "critical",
    "retrain-impossible": "critical",
    "deploy-rejected": "warning",
    "deploy-poisoned": "critical",
    "evaluation-passed": "info",
    "evaluation-failed": "warning",  # critical for an expiry retrain
    "evaluation-error": "warning",
}


@dataclass(frozen=True)
class Alert:
    id: str
    kind: str
    severity: str
    locale: str | None
    resource: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    at: str = ""

    def to_json(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        if len(text.encode()) <= MAX_ALERT_BYTES:
            return text
        # Still too large (many long strings): keep the summary, cut the details to a bounded digest.
        details = json.dumps(self.details, sort_keys=True, default=str)
        room = MAX_ALERT_BYTES // 2
        cut = {"truncated": True, "details": truncate(details, room // 4)}
        return json.dumps({**asdict(self), "details": cut}, sort_keys=True, default=str)


def truncate(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, with a marker saying how much was cut; secrets masked first (an
    alert leaves through the queue and the webhook, never through the log record factory)."""
    text = scrub(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[{len(text) - limit:,} more characters]"


def bounded(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy of `value` with every string, list and object bounded (markers where cut)."""
    if isinstance(value, str):
        return truncate(value, MAX_TEXT_CHARS)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth >= MAX_DEPTH:
        return truncate(json.dumps(value, default=str), MAX_TEXT_CHARS // 4)
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {truncate(str(k), 100): bounded(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["…"] = f"{len(items) - MAX_ITEMS} more entries"
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        out = [bounded(v, depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out.append(f"…{len(items) - MAX_ITEMS} more")
        return out
    return truncate(str(value), MAX_TEXT_CHARS)


def make_alert(
    kind: str,
    *,
    resource: str,
    message: str,
    at: datetime,
    locale: str | None = None,
    details: Mapping[str, Any] | None = None,
    severity: str | None = None,
    key: str = "",
) -> Alert:
    """An alert; `key` distinguishes repeated events of the same kind on the same resource (e.g. a tier)."""
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    severity = severity or KINDS[kind]
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    return Alert(
        id=str(uuid.uuid5(_NAMESPACE, f"{kind}|{resource}|{key}")),
        kind=kind,
        severity=severity,
        locale=truncate(locale, 64) if locale else None,
        resource=truncate(resource, MAX_RESOURCE_CHARS),
        message=truncate(message, MAX_MESSAGE_CHARS),
        details=bounded(dict(details or {})),
        at=utc(at).isoformat().replace("+00:00", "Z"),
    )


def log_alert(alert: Alert) -> None:
    log.log(
        _LEVELS[alert.severity],
        "ALERT severity=%s kind=%s locale=%s resource=%s id=%s: %s",
        alert.severity,
        alert.kind,
        alert.locale or "-",
        alert.resource,
        alert.id,
        alert.message,
    )


def webhook_payload(alert: Alert, url: str) -> dict[str, Any]:
    """Slack incoming webhooks take {"text"}; Teams (Workflows) takes an Adaptive Card message. Both get the
    alert's summary; the Teams form also carries the alert itself for other consumers."""
    title = f"[{alert.severity.upper()}] {alert.kind}" + (f" ({alert.locale})" if alert.locale else "")
    text = f"{title}: {alert.message}\nResource: {alert.resource}"
    if (urlsplit(url).hostname or "").endswith("hooks.slack.com"):
        return {"text": text}
    facts = [{"title": "Resource", "value": alert.resource}, {"title": "At", "value": alert.at}]
    facts += [{"title": str(k), "value": _short(v)} for k, v in list(alert.details.items())[:8]]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "wrap": True},
            {"type": "TextBlock", "text": alert.message, "wrap": True},
            {"type": "FactSet", "facts": facts},
        ],
    }
    return {
        "type": "message",
        "text": text,
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        "alert": json.loads(alert.to_json()),
    }


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def post_webhook(alert: Alert, url: str, post: Callable[..., Any]) -> bool:
    """POST the alert; never raises and never logs the URL (webhook URLs embed a secret)."""
    for attempt in (1, 2):
        try:
            resp = post(url, json=webhook_payload(alert, url), timeout=(3, 10))
            if resp.status_code < 300:
                return True
            log.warning("alert webhook answered %s for alert %s (attempt %d)", resp.status_code, alert.id, attempt)
            if resp.status_code < 500 and resp.status_code != 429:
                return False
        except Exception as exc:  # noqa: BLE001 - a webhook must never break alert delivery
            log.warning("alert webhook failed for alert %s: %s (attempt %d)", alert.id, type(exc).__name__, attempt)
    return False


def deliver(
    alerts: Iterable[Alert],
    send: Callable[[list[str]], None],
    webhook_url: str | None,
    *,
    webhook_min_severity: str = "warning",
    post: Callable[..., Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Deliver alerts: log each, `send` all of them to the alert queue, then POST those at or above
    `webhook_min_severity` to the webhook. Returns once the queue has them; a failing queue raises (the caller
    records nothing then, and the alerts are raised again); a failing webhook never loses the queue copy, and
    gets at most WEBHOOK_BUDGET_SECONDS of POSTs per delivery.

    `send` is the function's queue output binding (`out.set`: the host writes the messages before it completes
    the trigger) or a direct queue sender (shared.context.alert_sender) where state is recorded during the run.
    """
    alerts = list(alerts)
    if not alerts:
        return
    for alert in alerts:
        log_alert(alert)
    send([alert.to_json() for alert in alerts])
    if webhook_url:
        floor = SEVERITIES.index(webhook_min_severity)
        loud = [alert for alert in alerts if SEVERITIES.index(alert.severity) >= floor]
        if loud and post is None:
            import requests

            post = requests.post
        started = clock()
        for done, alert in enumerate(loud):
            if clock() - started >= WEBHOOK_BUDGET_SECONDS:
                log.warning(
                    "alert webhook: %d of %d alert(s) not posted after %.0f s of trying; they are on the queue only",
                    len(loud) - done,
                    len(loud),
                    WEBHOOK_BUDGET_SECONDS,
                )
                break
            post_webhook(alert, webhook_url, post)
