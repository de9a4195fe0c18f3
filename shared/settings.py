"""Every setting the app reads, in one place, read lazily (never at import time).

`SETTINGS` is the registry: name -> default (None = no default). The infra consistency test checks that
every name here is defined in the Bicep and in local.settings.example.json, and nothing else is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlparse

DEFAULT_API_VERSION = "2025-10-15"

SETTINGS: dict[str, str | None] = {
    "SPEECH_ENDPOINT": None,
    "SPEECH_API_VERSION": DEFAULT_API_VERSION,
    "SPEECH_KEY": None,
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "TRAINING_CONTAINER": "training",
    "DEPLOY_QUEUE": "speech-deployments",
    "ALERT_QUEUE": "speech-alerts",
    "ALERT_WEBHOOK_URL": None,
    "EXPIRY_WARNING_DAYS": "30,14,7,1",
    "POLL_SCHEDULE": "0 */5 * * * *",
    "EXPIRY_SCHEDULE": "0 0 6 * * *",
    "AUTO_RETRAIN": "true",
    "AUTO_DEPLOY": "true",
    "SAS_LIFETIME_HOURS": "48",
    "SPEECH_PROJECT": None,
    "ALERT_WEBHOOK_MIN_SEVERITY": "warning",
    "QUALITY_GATE": "auto",
    "QUALITY_MAX_WER_REGRESSION": "0",
    "QUALITY_EXPIRY_MAX_WER_REGRESSION": "2",
    "DATASET_UPLOAD": "contentUrl",
}

# Settings used as %NAME% in trigger bindings: the Functions host resolves them, so they must exist as app
# settings even where the code has a default (the host has no defaults).
BINDING_SETTINGS = ("TRAINING_CONTAINER", "DEPLOY_QUEUE", "ALERT_QUEUE", "POLL_SCHEDULE", "EXPIRY_SCHEDULE")

MAX_SAS_LIFETIME_HOURS = 168
SEVERITIES = ("info", "warning", "critical")
QUALITY_GATES = ("auto", "required", "off")
DATASET_UPLOADS = ("contentUrl", "blocks")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class SettingError(ValueError):
    """A setting is missing or malformed. The message names the setting and never echoes a secret value."""


@dataclass(frozen=True)
class StorageConnection:
    """Where the app's storage is and how to authenticate to it (from AzureWebJobsStorage[__*])."""

    connection_string: str | None = None  # key-based (Azurite, local)
    blob_service_uri: str | None = None  # identity-based (Azure)
    queue_service_uri: str | None = None
    client_id: str | None = None  # user-assigned managed identity

    @property
    def identity_based(self) -> bool:
        return self.connection_string is None


@dataclass(frozen=True)
class Settings:
    speech_endpoint: str
    speech_api_version: str
    speech_key: str | None
    storage: StorageConnection
    training_container: str
    deploy_queue: str
    alert_queue: str
    alert_webhook_url: str | None
    expiry_warning_days: tuple[int, ...]  # descending, e.g. (30, 14, 7, 1)
    poll_schedule: str
    expiry_schedule: str
    auto_retrain: bool
    auto_deploy: bool
    sas_lifetime_hours: int
    speech_project: str | None
    alert_webhook_min_severity: str = "warning"  # info | warning | critical: the least severe alert POSTed
    quality_gate: str = "auto"  # auto | required | off
    quality_max_wer_regression: float = 0.0  # percentage points a data-change training may lose
    quality_expiry_max_wer_regression: float = 2.0  # percentage points an expiry retrain may lose
    dataset_upload: str = "contentUrl"  # contentUrl | blocks

    def __repr__(self) -> str:  # never print the key or a connection string
        return (
            f"Settings(speech_endpoint={self.speech_endpoint!r}, api={self.speech_api_version!r}, "
            f"auth={'key' if self.speech_key else 'entra'}, container={self.training_container!r}, "
            f"deploy_queue={self.deploy_queue!r}, alert_queue={self.alert_queue!r})"
        )


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return SETTINGS[name]
    return value.strip()


def _required(env: Mapping[str, str], name: str) -> str:
    value = _raw(env, name)
    if value is None:
        raise SettingError(f"setting {name} is required but not set")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = _required(env, name).lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError(f"setting {name} must be true or false, got {value!r}")


def _name(env: Mapping[str, str], name: str, kind: str) -> str:
    value = _required(env, name)
    # Azure rules for container and queue names: 3-63 chars, lowercase letters, digits and single hyphens.
    ok = 3 <= len(value) <= 63 and value[0].isalnum() and value[-1].isalnum() and "--" not in value
    if not ok or not all(c.islower() or c.isdigit() or c == "-" for c in value):
        raise SettingError(f"setting {name} is not a valid {kind} name: {value!r}")
    return value


def _url(env: Mapping[str, str], name: str, *, required: bool, secret: bool = False) -> str | None:
    value = _raw(env, name)
    if value is None:
        if required:
            raise SettingError(f"setting {name} is required but not set")
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        shown = "(value hidden)" if secret else repr(value)
        raise SettingError(f"setting {name} must be an http(s) URL, got {shown}")
    return value.rstrip("/") if not secret else value


def _tiers(env: Mapping[str, str], name: str) -> tuple[int, ...]:
    value = _required(env, name)
    try:
        days = sorted({int(part) for part in value.split(",") if part.strip()}, reverse=True)
    except ValueError:
        raise SettingError(f"setting {name} must be comma-separated whole days, got {value!r}") from None
    if not days or days[-1] < 1:
        raise SettingError(f"setting {name} must list at least one whole number of days >= 1, got {value!r}")
    return tuple(days)


def _hours(env: Mapping[str, str], name: str) -> int:
    value = _required(env, name)
    try:
        hours = int(value)
    except ValueError:
        raise SettingError(f"setting {name} must be a whole number of hours, got {value!r}") from None
    if not 1 <= hours <= MAX_SAS_LIFETIME_HOURS:
        raise SettingError(f"setting {name} must be between 1 and {MAX_SAS_LIFETIME_HOURS}, got {hours}")
    return hours


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = _required(env, name)
    by_lower = {choice.lower(): choice for choice in choices}
    if value.lower() not in by_lower:
        raise SettingError(f"setting {name} must be one of {', '.join(choices)}, got {value!r}")
    return by_lower[value.lower()]


def _points(env: Mapping[str, str], name: str) -> float:
    value = _required(env, name)
    try:
        points = float(value)
    except ValueError:
        raise SettingError(f"setting {name} must be a number of percentage points, got {value!r}") from None
    if not 0 <= points <= 100:
        raise SettingError(f"setting {name} must be between 0 and 100 percentage points, got {value!r}")
    return points


def storage_connection(env: Mapping[str, str]) -> StorageConnection:
    """AzureWebJobsStorage as a connection string, or identity-based AzureWebJobsStorage__* settings."""
    prefix = "AzureWebJobsStorage"
    blob_uri = env.get(f"{prefix}__blobServiceUri") or env.get(f"{prefix}__serviceUri")
    account = env.get(f"{prefix}__accountName")
    if not blob_uri and account:
        blob_uri = f"https://{account}.blob.core.windows.net"
    direct = env.get(prefix, "").strip()
    if direct:
        if "=" not in direct:
            raise SettingError(f"setting {prefix} is not a storage connection string")
        return StorageConnection(connection_string=direct)
    if blob_uri:
        queue_uri = env.get(f"{prefix}__queueServiceUri")
        if not queue_uri and account:
            queue_uri = f"https://{account}.queue.core.windows.net"
        return StorageConnection(
            blob_service_uri=blob_uri.rstrip("/"),
            queue_service_uri=queue_uri.rstrip("/") if queue_uri else None,
            client_id=env.get(f"{prefix}__clientId"),
        )
    return StorageConnection(connection_string=SETTINGS[prefix])


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting. Raises SettingError naming the first bad one."""
    env = os.environ if env is None else env
    return Settings(
        speech_endpoint=_url(env, "SPEECH_ENDPOINT", required=True),  # type: ignore[arg-type]
        speech_api_version=_required(env, "SPEECH_API_VERSION"),
        speech_key=_raw(env, "SPEECH_KEY"),
        storage=storage_connection(env),
        training_container=_name(env, "TRAINING_CONTAINER", "container"),
        deploy_queue=_name(env, "DEPLOY_QUEUE", "queue"),
        alert_queue=_name(env, "ALERT_QUEUE", "queue"),
        alert_webhook_url=_url(env, "ALERT_WEBHOOK_URL", required=False, secret=True),
        expiry_warning_days=_tiers(env, "EXPIRY_WARNING_DAYS"),
        poll_schedule=_required(env, "POLL_SCHEDULE"),
        expiry_schedule=_required(env, "EXPIRY_SCHEDULE"),
        auto_retrain=_bool(env, "AUTO_RETRAIN"),
        auto_deploy=_bool(env, "AUTO_DEPLOY"),
        sas_lifetime_hours=_hours(env, "SAS_LIFETIME_HOURS"),
        speech_project=_raw(env, "SPEECH_PROJECT"),
        alert_webhook_min_severity=_choice(env, "ALERT_WEBHOOK_MIN_SEVERITY", SEVERITIES),
        quality_gate=_choice(env, "QUALITY_GATE", QUALITY_GATES),
        quality_max_wer_regression=_points(env, "QUALITY_MAX_WER_REGRESSION"),
        quality_expiry_max_wer_regression=_points(env, "QUALITY_EXPIRY_MAX_WER_REGRESSION"),
        dataset_upload=_choice(env, "DATASET_UPLOAD", DATASET_UPLOADS),
    )


def binding_value(name: str, env: Mapping[str, str] | None = None) -> str:
    """Resolve a %NAME% binding expression as the host would, falling back to our default for local runs."""
    env = os.environ if env is None else env
    value = env.get(name) or SETTINGS.get(name)
    if not value:
        raise SettingError(f"setting {name} is used by a binding and must be set")
    return value
