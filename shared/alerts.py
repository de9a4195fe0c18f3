"""Alerts: one shape for the queue, the optional webhook (Teams or Slack) and the logs.

Queue message (JSON): {"id", "kind", "severity", "locale", "resource", "message", "details", "at"}.
`id` is deterministic for the event it reports (kind + resource + what happened), so a consumer can drop the
duplicates that at-least-once delivery may produce.
Log line (Application Insights traces): `ALERT severity=<s> kind=<k> locale=<l> resource=<r> id=<id>: <message>`,
at WARNING level for warning, ERROR for critical, INFO for info.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

log = logging.getLogger("autopilot.alerts")

SEVERITIES = ("info", "warning", "critical")
_NAMESPACE = uuid.UUID("6f1d3c2e-5a7b-4c89-9e0f-1a2b3c4d5e6f")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}

# Every alert kind the app raises, with its default severity.
KINDS: dict[str, str] = {
    "zip-rejected": "warning",
    "dataset-failed": "warning",
    "model-failed": "warning",
    "no-base-model": "warning",
    "endpoint-deployed": "info",
    "endpoint-failed": "critical",
    "model-expiring": "warning",
    "model-expired": "critical",
    "retrain-impossible": "critical",
    "deploy-rejected": "warning",
    "deploy-poisoned": "critical",
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
        return json.dumps(asdict(self), sort_keys=True, default=str)


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
        locale=locale,
        resource=resource,
        message=message,
        details=dict(details or {}),
        at=at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
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


def deliver(alerts: Iterable[Alert], out: Any, webhook_url: str | None, post: Callable[..., Any] | None = None) -> None:
    """Log each alert, put all of them on the alert queue output binding, then try the webhook.

    The queue copy goes first, so a failing webhook cannot lose it.
    """
    alerts = list(alerts)
    if not alerts:
        return
    for alert in alerts:
        log_alert(alert)
    out.set([alert.to_json() for alert in alerts])
    if webhook_url:
        if post is None:
            import requests

            post = requests.post
        for alert in alerts:
            post_webhook(alert, webhook_url, post)
