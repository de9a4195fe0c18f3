"""Per-process clients, built lazily from the settings on first use (never at import time)."""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared import settings as settings_module
from shared.logs import protect_secrets, url_secrets
from shared.settings import Settings
from shared.speech import SpeechClient
from shared.storage import LOCKS_CONTAINER, blob_service, queue_service

LOCALES_TTL_SECONDS = 3600
# Extra SpeechClient options (the offline host and tests use them to speed up backoff sleeps).
CLIENT_OPTIONS: dict = {}


def settings() -> Settings:
    config = settings_module.load()
    protect_secrets(config.speech_key, *url_secrets(config.alert_webhook_url), config.storage.connection_string)
    return config


@functools.lru_cache(maxsize=4)
def speech(config: Settings) -> SpeechClient:
    return SpeechClient.from_settings(config, **CLIENT_OPTIONS)


@functools.lru_cache(maxsize=4)
def blobs(config: Settings) -> BlobServiceClient:
    return blob_service(config.storage)


@functools.lru_cache(maxsize=4)
def queues(config: Settings) -> Any:
    return queue_service(config.storage)


def queue_sender(config: Settings, queue_name: str) -> Callable[[list[str]], None]:
    """Send messages to one of the app's queues now (not through an output binding), as plain text like the
    host's bindings (host.json messageEncoding none). Raises if the queue service refuses: nothing is lost,
    since callers record what they sent only afterwards."""
    client = queues(config).get_queue_client(queue_name)

    def send(messages: list[str]) -> None:
        for message in messages:
            try:
                client.send_message(message)
            except ResourceNotFoundError:  # a queue nobody created yet (a fresh local run)
                try:
                    client.create_queue()
                except ResourceExistsError:
                    pass
                client.send_message(message)

    return send


def alert_sender(config: Settings) -> Callable[[list[str]], None]:
    return queue_sender(config, config.alert_queue)


def locks_container(config: Settings) -> ContainerClient:
    """The container of the per-source lock markers (shared.storage.source_lock), created on first use."""
    return blobs(config).get_container_client(LOCKS_CONTAINER)


def training_container(config: Settings) -> ContainerClient:
    return blobs(config).get_container_client(config.training_container)


_locales: dict[str, tuple[float, dict[str, frozenset[str]]]] = {}


def supported_locales(config: Settings) -> dict[str, frozenset[str]]:
    """Dataset kind -> locales the service accepts, cached for an hour per Speech endpoint."""
    cached = _locales.get(config.speech_endpoint)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    raw = speech(config).dataset_locales()
    value = {kind: frozenset(locales) for kind, locales in raw.items()}
    _locales[config.speech_endpoint] = (time.monotonic() + LOCALES_TTL_SECONDS, value)
    return value


def reset() -> None:
    """Forget cached clients (tests and the offline host change settings between runs)."""
    speech.cache_clear()
    blobs.cache_clear()
    queues.cache_clear()
    _locales.clear()
