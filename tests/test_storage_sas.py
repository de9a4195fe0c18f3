"""The contentUrl SAS in Azure: a user-delegation key Azure accepts, and a SAS that does not outlive it.

Azure refuses a user delegation key whose start or expiry is more than 7 days from now, so the longest SAS
lifetime (SAS_LIFETIME_HOURS=168) must not turn into a key request for exactly now + 7 days. No network: the
BlobServiceClient that hands out the key is replaced by a recorder.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import BlobClient, UserDelegationKey

from shared import storage

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SEVEN_DAYS = timedelta(days=7)


class _TokenCredential:
    """Stands in for the managed identity: the SAS code only needs a credential without an account key."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token is needed: the key request is recorded, not sent")


class _KeyService:
    """Replaces BlobServiceClient in shared.storage; records each user delegation key request."""

    requests: list[tuple[datetime, datetime]] = []

    def __init__(self, account_url: str, credential: Any) -> None:
        self.account_url = account_url

    def get_user_delegation_key(self, key_start_time: datetime, key_expiry_time: datetime) -> UserDelegationKey:
        self.requests.append((key_start_time, key_expiry_time))
        key = UserDelegationKey()
        key.signed_oid = "00000000-0000-0000-0000-000000000001"
        key.signed_tid = "00000000-0000-0000-0000-000000000002"
        key.signed_start = key_start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = key_expiry_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service = "b"
        key.signed_version = "2025-01-05"
        key.value = base64.b64encode(b"k" * 32).decode()
        return key


@pytest.fixture
def key_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[datetime, datetime]]:
    _KeyService.requests = []
    monkeypatch.setattr(storage, "BlobServiceClient", _KeyService)
    return _KeyService.requests


def _blob() -> BlobClient:
    return BlobClient(
        "https://stexample.blob.core.windows.net",
        container_name="training",
        blob_name="en-US/acoustic/calls.zip",
        credential=_TokenCredential(),
    )


def _sas(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_longest_lifetime_requests_a_key_within_seven_days(key_requests: list[tuple[datetime, datetime]]) -> None:
    url = storage.content_sas_url(_blob(), 168, now=NOW)

    [(key_start, key_expiry)] = key_requests
    assert storage.SAS_START_SKEW == timedelta(minutes=15)
    assert key_start == NOW - storage.SAS_START_SKEW  # the 15-minute start skew
    assert NOW - key_start <= SEVEN_DAYS
    assert key_expiry - NOW <= SEVEN_DAYS - storage.SAS_START_SKEW  # room for a client clock 15 minutes ahead
    assert key_expiry - key_start <= SEVEN_DAYS

    sas = _sas(url)
    assert _time(sas["se"]) <= _time(sas["ske"]) == key_expiry  # the SAS does not outlive its key
    assert _time(sas["st"]) >= _time(sas["skt"]) == key_start
    assert sas["sp"] == "r" and sas["spr"] == "https"


def test_shorter_lifetimes_are_not_shortened(key_requests: list[tuple[datetime, datetime]]) -> None:
    url = storage.content_sas_url(_blob(), 48, now=NOW)

    [(key_start, key_expiry)] = key_requests
    assert (key_start, key_expiry) == (NOW - storage.SAS_START_SKEW, NOW + timedelta(hours=48))
    assert _time(_sas(url)["se"]) == NOW + timedelta(hours=48)
