"""The typed Speech client against the emulator: paging, retries, Retry-After, no duplicated POST, errors,
Entra tokens, and nothing secret in the logs."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from shared.speech import TOKEN_SCOPE, SpeechClient, SpeechError, entity_id, retry_after_seconds


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(emulator, sleeps) -> SpeechClient:
    return SpeechClient(emulator.url, key=emulator.key, sleep=sleeps, timeout=(2, 5))


def _make_datasets(client: SpeechClient, count: int) -> list[str]:
    return [client.create_dataset(display_name=f"d{i}", locale="en-US", kind="Language").id for i in range(count)]


def _requests(emulator, method: str, fragment: str) -> list[dict]:
    return [r for r in emulator.requests if r["method"] == method and fragment in r["path"]]


def test_paging_follows_next_link_across_pages(emulator, client):
    emulator.page_size = 2
    created = _make_datasets(client, 7)
    before = client.calls
    listed = [d.id for d in client.list_datasets()]
    assert sorted(listed) == sorted(created)
    assert client.calls - before == 4  # 2 + 2 + 2 + 1


def test_429_waits_for_retry_after_then_succeeds(emulator, client, sleeps):
    dataset = _make_datasets(client, 1)[0]
    emulator.inject(status=429, count=2, retry_after=3, method="GET")
    assert client.get_dataset(dataset).id == dataset
    assert sleeps == [3, 3]


def test_retry_after_beyond_the_bound_gives_up_instead_of_hanging(emulator, client, sleeps):
    emulator.inject(status=429, count=1, retry_after=3600, method="GET")
    with pytest.raises(SpeechError) as err:
        list(client.list_datasets())
    assert err.value.status == 429 and err.value.transient
    assert sleeps == []


def test_500_on_get_is_retried_with_backoff(emulator, client, sleeps):
    dataset = _make_datasets(client, 1)[0]
    emulator.inject(status=500, count=2, method="GET")
    assert client.get_dataset(dataset).id == dataset
    assert len(sleeps) == 2 and all(0 < s <= 30 for s in sleeps)


def test_post_429_is_retried_because_nothing_was_done(emulator, client, sleeps):
    emulator.inject(status=429, count=1, retry_after=1, method="POST")
    _make_datasets(client, 1)
    assert sleeps == [1]
    assert len(emulator.datasets) == 1


def test_post_503_is_not_repeated(emulator, client, sleeps):
    emulator.inject(status=503, count=1, method="POST")
    with pytest.raises(SpeechError) as err:
        _make_datasets(client, 1)
    assert err.value.status == 503 and err.value.transient
    assert len(_requests(emulator, "POST", "/datasets")) == 1


def test_post_that_timed_out_is_not_duplicated(emulator, sleeps):
    client = SpeechClient(emulator.url, key=emulator.key, sleep=sleeps, timeout=(2, 0.3))
    emulator.inject(status=None, count=1, delay=1.0, method="POST")
    with pytest.raises(SpeechError) as err:
        client.create_dataset(display_name="slow", locale="en-US", kind="Language")
    assert err.value.ambiguous
    time.sleep(1.0)
    assert len(_requests(emulator, "POST", "/datasets")) == 1
    # the service did create it: a caller looks it up instead of creating again
    assert [d.display_name for d in client.list_datasets()] == ["slow"]


def test_get_that_timed_out_is_retried(emulator, sleeps):
    client = SpeechClient(emulator.url, key=emulator.key, sleep=sleeps, timeout=(2, 0.3))
    emulator.inject(status=None, count=1, delay=1.0, method="GET")
    assert list(client.list_datasets()) == []
    assert len(sleeps) == 1


def test_errors_carry_status_code_message_and_request_id(client):
    with pytest.raises(SpeechError) as err:
        client.get_dataset("00000000-0000-0000-0000-000000000000")
    assert err.value.status == 404 and err.value.not_found and not err.value.transient
    assert err.value.code == "NotFound"
    assert err.value.request_id
    assert "00000000" in str(err.value) or "/datasets/" in str(err.value)


def test_invalid_body_maps_to_a_400_and_the_contract_check_catches_it(client, spec, contract_problems):
    with pytest.raises(SpeechError) as err:
        client.create_dataset(display_name="x", locale="en-US", kind="NotAKind")
    assert err.value.status == 400 and err.value.code in ("InvalidRequest", "InvalidArgument")
    assert err.value.message
    if spec is not None:  # the suite-wide spec check saw the invalid body
        assert any("NotAKind" in p for p in contract_problems), contract_problems
        contract_problems.clear()


class FakeCredential:
    def __init__(self, lifetime: float = 3600) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.lifetime = lifetime

    def get_token(self, *scopes: str):
        self.scopes.append(scopes)
        return SimpleNamespace(token=f"token-{len(self.scopes)}", expires_on=int(time.time() + self.lifetime))


def test_bearer_token_from_a_credential_is_cached(emulator, sleeps):
    credential = FakeCredential()
    client = SpeechClient(emulator.url, credential=credential, sleep=sleeps)
    _make_datasets(client, 2)
    list(client.list_datasets())
    assert credential.scopes == [(TOKEN_SCOPE,)]


def test_a_token_near_expiry_is_renewed(emulator, sleeps):
    credential = FakeCredential(lifetime=60)  # inside the five-minute margin
    client = SpeechClient(emulator.url, credential=credential, sleep=sleeps)
    list(client.list_datasets())
    list(client.list_datasets())
    assert len(credential.scopes) == 2


def test_a_wrong_key_is_unauthorized(emulator, sleeps):
    client = SpeechClient(emulator.url, key="wrong", sleep=sleeps)
    with pytest.raises(SpeechError) as err:
        list(client.list_datasets())
    assert err.value.status == 401 and sleeps == []


def test_no_key_or_token_in_logs(emulator, caplog, sleeps):
    caplog.set_level(logging.DEBUG)
    credential = FakeCredential()
    SpeechClient(emulator.url, key=emulator.key, sleep=sleeps).create_dataset(
        display_name="d", locale="en-US", kind="Language", content_url="https://x.example/a.zip?sv=1&sig=SECRETSIG"
    )
    list(SpeechClient(emulator.url, credential=credential, sleep=sleeps).list_datasets())
    text = caplog.text
    assert emulator.key not in text and "token-1" not in text and "SECRETSIG" not in text
    assert "speech POST /datasets -> 201" in text


def test_references_accept_ids_or_self_uris(emulator, client):
    assert client.uri("models", "abc").endswith("/speechtotext/models/abc?api-version=2025-10-15")
    uri = f"{emulator.url}/speechtotext/models/base/xyz?api-version=2025-10-15"
    assert client.uri("models", uri) == uri
    assert entity_id(uri) == "xyz" and entity_id("xyz") == "xyz"


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"Retry-After": "7"}) == 7
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=lambda: 1445412470) == 10
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize(
    ("status", "code", "inner", "denied"),
    [
        (401, "Unauthorized", None, True),
        (403, "Forbidden", None, True),
        (403, "Forbidden", "QuotaViolation", False),  # a limit of the resource: the request itself is refused
        (400, "InvalidArgument", "InvalidLocale", False),
        (404, "NotFound", None, False),
        (None, None, None, False),
    ],
)
def test_refused_credentials_are_told_apart_from_refused_requests(status, code, inner, denied):
    """A 401/403 says nothing about the input: callers retry it instead of rejecting a zip or a deploy request."""
    assert SpeechError("no", status=status, code=code, inner_code=inner).denied is denied
