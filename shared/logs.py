"""What the app logs, and what it keeps quiet.

In Azure the Python worker sets the root logger to INFO and forwards every record to Application Insights. The
Azure SDK and urllib3 would then log every HTTP request (each blob read, each queue poll) at INFO: cost and noise,
and a URL in a log line is one step from a leaked secret. Their loggers are kept at WARNING.
"""

from __future__ import annotations

import logging

SDK_LOGGERS = ("azure.core", "azure.storage", "azure.identity", "msal", "urllib3")


def quiet_sdk_loggers() -> None:
    """SDK and HTTP library loggers at WARNING (the worker's root logger is at INFO)."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
