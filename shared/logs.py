"""What the app logs, and what it never logs.

In Azure the Python worker sets the root logger to INFO and forwards every record to Application Insights. The
Azure SDK and urllib3 would then log every HTTP request (each blob read, each queue poll) at INFO: cost and noise.
Their loggers are kept at WARNING (`quiet_sdk_loggers`).

Secrecy never depends on a log level: `protect_secrets` wraps the logging record factory, so every record of any
logger, at any level, reaching any handler, has the app's secrets (Speech key, storage account key, the alert
webhook URL, its path and query) and anything shaped like a SAS signature or a function key replaced before a
handler sees it; an exception's text is scrubbed the same way.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Iterable
from urllib.parse import urlsplit

SDK_LOGGERS = ("azure.core", "azure.storage", "azure.identity", "msal", "urllib3")
REDACTED = "<redacted>"
# Query parameters that carry secrets: SAS signatures and key material, function keys, tokens.
_SECRET_PARAMS = re.compile(
    r"(?i)\b(sig|skoid|sktid|skv|code|key|access_token|token|client_secret|password)=([^&\s\"'<>]+)"
)
_ACCOUNT_KEY = re.compile(r"(?i)(AccountKey=)([^;\s\"']+)")
_MIN_SECRET_LENGTH = 6


def quiet_sdk_loggers() -> None:
    """SDK and HTTP library loggers at WARNING (the worker's root logger is at INFO)."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class _Scrubber:
    def __init__(self) -> None:
        self.secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, values: Iterable[str | None]) -> None:
        with self._lock:
            self.secrets = self.secrets | {v for v in values if v and len(v) >= _MIN_SECRET_LENGTH}

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        return _ACCOUNT_KEY.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


SCRUBBER = _Scrubber()
_installed = False
_install_lock = threading.Lock()
_formatter = logging.Formatter()


def scrub(text: str) -> str:
    """`text` with every known secret and secret-shaped query value replaced."""
    return SCRUBBER.scrub(text)


def url_secrets(url: str | None) -> list[str]:
    """The parts of a URL that may carry its secret: the whole URL, its path, its query."""
    if not url:
        return []
    parts = urlsplit(url)
    return [url, parts.path if len(parts.path.strip("/")) >= _MIN_SECRET_LENGTH else "", parts.query]


def protect_secrets(*secrets: str | None) -> None:
    """Register secrets and make sure every log record is scrubbed of them (idempotent)."""
    global _installed
    SCRUBBER.add(secrets)
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed log call is the caller's problem, not a leak
                return record
            cleaned = SCRUBBER.scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
            if record.exc_info and not record.exc_text:
                record.exc_text = SCRUBBER.scrub(_formatter.formatException(record.exc_info))
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
