"""A small typed client for the Speech to text REST API (api-version 2025-10-15).

One requests.Session; connect/read timeouts; retries on 408/429/5xx honouring Retry-After / retry-after-ms with
capped, jittered exponential backoff; a POST is never repeated after an ambiguous failure (the caller looks up
before re-creating); list calls follow @nextLink as given; errors carry status, service code, message and request id.
Every request, retries included, first takes a slot from the endpoint's RequestBudget (shared/budget.py): the
service's 100 requests per 10 s, with a share kept for foreground work while a background pass runs.
Nothing secret (key, token, SAS) is ever logged: log lines carry method, path and status only.
"""

from __future__ import annotations

import email.utils
import io
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

import requests

from shared.budget import BACKGROUND_SHARE, SERVICE_RATE_LIMIT, RequestBudget, budget_for
from shared.guard import before_write
from shared.logs import scrub

log = logging.getLogger("autopilot.speech")

TOKEN_SCOPE = "https://cognitiveservices.azure.com/.default"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
MAX_PAGES = 10_000  # of one list: a million entities at the service's page size of 100
MAX_BLOCK_BYTES = 8 * 1024 * 1024  # Datasets_UploadBlock, api-version 2025-10-15
# A POST that got one of these was refused before doing anything, so it is safe to send again.
POST_RETRY_STATUSES = frozenset({429})


class SpeechError(Exception):
    """A failed Speech API call. `transient` errors are worth retrying later; `ambiguous` ones may have
    taken effect (a POST whose response was lost): look up before creating again."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        inner_code: str | None = None,
        request_id: str | None = None,
        method: str = "",
        path: str = "",
        ambiguous: bool = False,
    ) -> None:
        self.status = status
        self.code = code
        self.inner_code = inner_code
        self.request_id = request_id
        self.method = method
        self.path = path
        self.ambiguous = ambiguous
        # the service may quote what it was sent (a contentUrl's SAS): the text goes to alerts, zip states and the
        # host's own record of a failed invocation, none of which pass through the log record factory
        self.message = message = scrub(message)
        where = f"{method} {path}".strip()
        detail = ", ".join(
            part
            for part in (
                f"status {status}" if status else "no response",
                f"code {code}" if code else "",
                f"inner {inner_code}" if inner_code else "",
                f"request id {request_id}" if request_id else "",
            )
            if part
        )
        super().__init__(f"{where}: {message} ({detail})")

    @property
    def transient(self) -> bool:
        return self.status is None or self.status in RETRY_STATUSES

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def denied(self) -> bool:
        """The app's credentials were refused (401) or lack a permission (403 other than a quota): nothing is wrong
        with the request itself, and it succeeds once access is fixed. Never a reason to reject the input."""
        quota = "quota" in f"{self.code or ''} {self.inner_code or ''}".lower()
        return self.status == 401 or (self.status == 403 and not quota)


# ---------------------------------------------------------------------------------------------------------------
# Resources: only the fields we use, the raw JSON kept.


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time from the service, in UTC. The service speaks UTC: a time without an offset is UTC, never
    the host's local time."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def listed(raw: dict[str, Any]) -> dict[str, Any]:
    """An entity from a list page, kept without its `links`: the app follows none of them, and they are a third of
    an entity's memory, which counts when a pass holds tens of thousands (a GET keeps the entity whole)."""
    raw.pop("links", None)
    return raw


def entity_id(uri_or_id: str) -> str:
    """The id at the end of a self URI (`.../models/base/{id}?api-version=...`), or the id itself."""
    path = urlsplit(uri_or_id).path if "/" in uri_or_id else uri_or_id
    return path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class EntityError:
    code: str
    message: str


def _error(raw: Mapping[str, Any]) -> EntityError | None:
    err = (raw.get("properties") or {}).get("error")
    if not err:
        return None
    return EntityError(code=str(err.get("code", "")), message=scrub(str(err.get("message", ""))))


def _ref(raw: Mapping[str, Any], name: str) -> str | None:
    ref = raw.get(name)
    return ref.get("self") if isinstance(ref, Mapping) else None


@dataclass(frozen=True, slots=True)
class Dataset:
    id: str
    self_uri: str
    display_name: str
    locale: str
    kind: str
    status: str
    created: datetime | None
    last_action: datetime | None
    custom_properties: Mapping[str, str]
    error: EntityError | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Dataset:
        return cls(
            id=entity_id(raw["self"]),
            self_uri=raw["self"],
            display_name=raw.get("displayName", ""),
            locale=raw.get("locale", ""),
            kind=raw.get("kind", ""),
            status=raw.get("status", ""),
            created=parse_time(raw.get("createdDateTime")),
            last_action=parse_time(raw.get("lastActionDateTime")),
            custom_properties=raw.get("customProperties") or {},  # shared with raw: neither is ever changed
            error=_error(raw),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class CustomModel:
    id: str
    self_uri: str
    display_name: str
    locale: str
    status: str
    created: datetime | None
    base_model_id: str | None
    dataset_ids: tuple[str, ...]
    transcription_expiry: datetime | None
    custom_properties: Mapping[str, str]
    error: EntityError | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CustomModel:
        props = raw.get("properties") or {}
        base = _ref(raw, "baseModel")
        return cls(
            id=entity_id(raw["self"]),
            self_uri=raw["self"],
            display_name=raw.get("displayName", ""),
            locale=raw.get("locale", ""),
            status=raw.get("status", ""),
            created=parse_time(raw.get("createdDateTime")),
            base_model_id=entity_id(base) if base else None,
            dataset_ids=tuple(entity_id(d["self"]) for d in raw.get("datasets") or () if d.get("self")),
            transcription_expiry=parse_time((props.get("deprecationDates") or {}).get("transcriptionDateTime")),
            custom_properties=raw.get("customProperties") or {},  # shared with raw: neither is ever changed
            error=_error(raw),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class BaseModel:
    id: str
    self_uri: str
    display_name: str
    locale: str
    created: datetime | None
    adaptation_expiry: datetime | None
    transcription_expiry: datetime | None
    adapts_with: frozenset[str]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BaseModel:
        props = raw.get("properties") or {}
        dates = props.get("deprecationDates") or {}
        return cls(
            id=entity_id(raw["self"]),
            self_uri=raw["self"],
            display_name=raw.get("displayName", ""),
            locale=raw.get("locale", ""),
            created=parse_time(raw.get("createdDateTime")),
            adaptation_expiry=parse_time(dates.get("adaptationDateTime")),
            transcription_expiry=parse_time(dates.get("transcriptionDateTime")),
            adapts_with=frozenset((props.get("features") or {}).get("supportsAdaptationsWith") or ()),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    self_uri: str
    display_name: str
    locale: str
    status: str
    model_uri: str | None
    created: datetime | None
    last_action: datetime | None
    custom_properties: Mapping[str, str]
    error: EntityError | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def model_id(self) -> str | None:
        return entity_id(self.model_uri) if self.model_uri else None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Endpoint:
        return cls(
            id=entity_id(raw["self"]),
            self_uri=raw["self"],
            display_name=raw.get("displayName", ""),
            locale=raw.get("locale", ""),
            status=raw.get("status", ""),
            model_uri=_ref(raw, "model"),
            created=parse_time(raw.get("createdDateTime")),
            last_action=parse_time(raw.get("lastActionDateTime")),
            custom_properties=raw.get("customProperties") or {},  # shared with raw: neither is ever changed
            error=_error(raw),
            raw=raw,
        )


def _count(props: Mapping[str, Any], name: str) -> int | None:
    """A count from EvaluationProperties; None where it is absent or the service's "not yet" (-1)."""
    value = props.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _rate(props: Mapping[str, Any], name: str) -> float | None:
    value = props.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


@dataclass(frozen=True)
class Recognition:
    """How one model of an evaluation did on the test set (EvaluationProperties, suffix 1 or 2). The word error
    rate is a fraction, as the REST API gives it (0.0289 = 2.89 %); None where the service gave none yet (it
    reports -1 until the evaluation has Succeeded)."""

    word_error_rate: float | None
    sentence_error_rate: float | None
    sentence_count: int | None
    word_count: int | None
    correct_word_count: int | None
    substitutions: int | None
    deletions: int | None
    insertions: int | None

    @classmethod
    def from_properties(cls, props: Mapping[str, Any], n: str) -> Recognition:
        return cls(
            word_error_rate=_rate(props, f"wordErrorRate{n}"),
            sentence_error_rate=_rate(props, f"sentenceErrorRate{n}"),
            sentence_count=_count(props, f"sentenceCount{n}"),
            word_count=_count(props, f"wordCount{n}"),
            correct_word_count=_count(props, f"correctWordCount{n}"),
            substitutions=_count(props, f"wordSubstitutionCount{n}"),
            deletions=_count(props, f"wordDeletionCount{n}"),
            insertions=_count(props, f"wordInsertionCount{n}"),
        )


@dataclass(frozen=True)
class Evaluation:
    """A comparison of two models (model1, model2; custom or base) on one Acoustic dataset."""

    id: str
    self_uri: str
    display_name: str
    locale: str
    status: str
    created: datetime | None
    last_action: datetime | None
    model1_uri: str | None
    model2_uri: str | None
    dataset_uri: str | None
    custom_properties: Mapping[str, str]
    error: EntityError | None
    model1: Recognition
    model2: Recognition
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def model1_id(self) -> str | None:
        return entity_id(self.model1_uri) if self.model1_uri else None

    @property
    def model2_id(self) -> str | None:
        return entity_id(self.model2_uri) if self.model2_uri else None

    @property
    def dataset_id(self) -> str | None:
        return entity_id(self.dataset_uri) if self.dataset_uri else None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Evaluation:
        props = raw.get("properties") or {}
        return cls(
            id=entity_id(raw["self"]),
            self_uri=raw["self"],
            display_name=raw.get("displayName", ""),
            locale=raw.get("locale", ""),
            status=raw.get("status", ""),
            created=parse_time(raw.get("createdDateTime")),
            last_action=parse_time(raw.get("lastActionDateTime")),
            model1_uri=_ref(raw, "model1"),
            model2_uri=_ref(raw, "model2"),
            dataset_uri=_ref(raw, "dataset"),
            custom_properties=dict(raw.get("customProperties") or {}),
            error=_error(raw),
            model1=Recognition.from_properties(props, "1"),
            model2=Recognition.from_properties(props, "2"),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class WebHook:
    id: str
    self_uri: str
    display_name: str
    web_url: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> WebHook:
        return cls(
            id=entity_id(raw["self"]),
            self_uri=raw["self"],
            display_name=raw.get("displayName", ""),
            web_url=raw.get("webUrl", ""),
            raw=raw,
        )


@dataclass(frozen=True)
class UploadedBlocks:
    """Datasets_GetBlocks: (name, size) of the blocks the service holds for a dataset uploaded in blocks."""

    committed: tuple[tuple[str, int], ...]
    uncommitted: tuple[tuple[str, int], ...]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> UploadedBlocks:
        def blocks(name: str) -> tuple[tuple[str, int], ...]:
            return tuple(
                (str(b.get("name", "")), int(b.get("size") or 0)) for b in (raw or {}).get(name) or () if b.get("name")
            )

        return cls(committed=blocks("committedBlocks"), uncommitted=blocks("uncommittedBlocks"))


@dataclass(frozen=True)
class ModelCopyAuthorization:
    """Models_AuthorizeCopy's answer on the target resource: what Models_Copy on the source takes as its body."""

    id: str
    source_resource_id: str
    target_resource_id: str
    target_resource_region: str
    target_resource_endpoint: str
    expires: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ModelCopyAuthorization:
        return cls(
            id=str(raw["id"]),
            source_resource_id=raw.get("sourceResourceId", ""),
            target_resource_id=raw.get("targetResourceId", ""),
            target_resource_region=raw.get("targetResourceRegion", ""),
            target_resource_endpoint=raw.get("targetResourceEndpoint", ""),
            expires=parse_time(raw.get("expirationDateTime")),
            raw=raw,
        )


@dataclass(frozen=True)
class Operation:
    """A long-running operation (Models_Copy, Operations_GetModelCopy); `result_uri` names what it made."""

    id: str
    self_uri: str
    status: str
    result_uri: str | None
    error: EntityError | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in ("Succeeded", "Failed")

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Operation:
        err = raw.get("error")
        return cls(
            id=str(raw.get("id") or entity_id(raw.get("self", ""))),
            self_uri=raw.get("self", ""),
            status=raw.get("status", ""),
            result_uri=(raw.get("result") or {}).get("link"),
            error=EntityError(str(err.get("code", "")), scrub(str(err.get("message", "")))) if err else None,
            raw=raw,
        )


# ---------------------------------------------------------------------------------------------------------------
# Authentication


class _BearerToken:
    """A Microsoft Entra token from a TokenCredential, cached until five minutes before it expires."""

    def __init__(self, credential: Any, clock: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self._clock = clock
        self._token: Any = None
        self._lock = threading.Lock()

    def header(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on - 300 <= self._clock():
                self._token = self._credential.get_token(TOKEN_SCOPE)
            return f"Bearer {self._token.token}"


def retry_after_seconds(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from retry-after-ms / x-ms-retry-after-ms / Retry-After (seconds or HTTP date)."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date; anything else ("soon") is ignored and the client's own backoff applies
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return max(0.0, parsed.timestamp() - now())


# ---------------------------------------------------------------------------------------------------------------
# The client


class SpeechClient:
    def __init__(
        self,
        endpoint: str,
        *,
        api_version: str = "2025-10-15",
        key: str | None = None,
        credential: Any = None,
        project: str | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rate_limit: tuple[int, float] | None = SERVICE_RATE_LIMIT,
        background_share: float = BACKGROUND_SHARE,
        budget: RequestBudget | None = None,
    ) -> None:
        """`budget`: the RequestBudget every request takes a slot from; by default the process-wide one of this
        endpoint for `rate_limit` (None: no budget at all, e.g. a benchmark measuring CPU alone)."""
        if not key and credential is None:
            raise ValueError("SpeechClient needs a key or a token credential")
        self.base = endpoint.rstrip("/") + "/speechtotext"
        self.api_version = api_version
        self.project = project
        self._key = key
        self._token = _BearerToken(credential) if not key else None
        self._session = session or requests.Session()
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep
        if budget is None and rate_limit is not None:
            budget = budget_for(self.base, rate_limit, background_share)
        self.budget = budget
        self.calls = 0  # requests sent, for budgets and benchmarks

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> SpeechClient:
        credential = None
        if not settings.speech_key:
            from azure.identity import DefaultAzureCredential  # imported only where Entra auth is used

            credential = DefaultAzureCredential()
        return cls(
            settings.speech_endpoint,
            api_version=settings.speech_api_version,
            key=settings.speech_key,
            credential=credential,
            project=settings.speech_project,
            **kwargs,
        )

    def close(self) -> None:
        self._session.close()

    # -- plumbing ----------------------------------------------------------------------------------------------

    def uri(self, collection: str, uri_or_id: str) -> str:
        """A self URI for an id (or the URI unchanged) — what the service expects in references."""
        if uri_or_id.startswith(("http://", "https://")):
            return uri_or_id
        return f"{self.base}/{collection}/{uri_or_id}?api-version={self.api_version}"

    def _url(self, path_or_url: str) -> tuple[str, dict[str, str]]:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url, {}  # a @nextLink or self URI already carries the api-version
        return f"{self.base}/{path_or_url.lstrip('/')}", {"api-version": self.api_version}

    def _headers(self) -> dict[str, str]:
        if self._key:
            return {"Ocp-Apim-Subscription-Key": self._key}
        assert self._token is not None
        return {"Authorization": self._token.header()}

    def _backoff(self, attempt: int) -> float:
        return min(self._backoff_cap, self._backoff_base * 2**attempt) * random.uniform(0.5, 1.0)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """One API call with the retry rules above. A `data` body goes out as a stream of small writes (a fresh
        one per attempt), so the timeout bounds each write's progress rather than the whole body's."""
        url, query = self._url(path_or_url)
        query.update({k: v for k, v in (params or {}).items() if v is not None})
        shown = urlsplit(url).path.removeprefix(urlsplit(self.base).path) or "/"
        is_post = method == "POST"
        for attempt in range(self._max_attempts):
            if method in WRITE_METHODS:
                before_write()  # under the autopilot lock: stop here if the lock is no longer held
            if self.budget is not None:
                self.budget.acquire()  # every attempt counts, retries included
            headers = self._headers()
            if content_type:
                headers["Content-Type"] = content_type
            started = time.monotonic()
            self.calls += 1
            try:
                body = io.BytesIO(data) if data else data
                resp = self._session.request(
                    method, url, params=query, json=json, data=body, headers=headers, timeout=self._timeout
                )
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                # ChunkedEncodingError: the connection broke while the response was read; like any connection
                # failure after sending, the service may have acted.
                never_sent = isinstance(exc, requests.ConnectTimeout) or "NewConnectionError" in repr(exc)
                ambiguous = is_post and not never_sent
                log.warning("speech %s %s: %s", method, shown, type(exc).__name__)
                if ambiguous or attempt + 1 == self._max_attempts:
                    raise SpeechError(
                        f"no response ({type(exc).__name__})", method=method, path=shown, ambiguous=ambiguous
                    ) from None
                self._sleep(self._backoff(attempt))
                continue
            except requests.Timeout as exc:  # read timeout: the request may have been processed
                log.warning("speech %s %s: %s", method, shown, type(exc).__name__)
                if is_post or attempt + 1 == self._max_attempts:
                    raise SpeechError("timed out", method=method, path=shown, ambiguous=is_post) from None
                self._sleep(self._backoff(attempt))
                continue
            elapsed_ms = int((time.monotonic() - started) * 1000)
            request_id = resp.headers.get("apim-request-id") or resp.headers.get("x-ms-request-id")
            log.info(
                "speech %s %s -> %s (%d ms, request id %s)", method, shown, resp.status_code, elapsed_ms, request_id
            )
            if resp.status_code < 400:
                try:
                    if resp.status_code == 204 or not resp.content:
                        return None
                    return resp.json()
                except (ValueError, requests.RequestException) as exc:  # a body cut short or not JSON
                    log.warning("speech %s %s: unreadable response body (%s)", method, shown, type(exc).__name__)
                    if is_post or attempt + 1 == self._max_attempts:
                        raise SpeechError(
                            f"unreadable response ({type(exc).__name__})",
                            status=resp.status_code,
                            request_id=request_id,
                            method=method,
                            path=shown,
                            ambiguous=method != "GET",
                        ) from None
                    self._sleep(self._backoff(attempt))
                    continue
            error = self._error(resp, method, shown, request_id)
            retryable = resp.status_code in (POST_RETRY_STATUSES if is_post else RETRY_STATUSES)
            if not retryable or attempt + 1 == self._max_attempts:
                raise error
            wait = retry_after_seconds(resp.headers)
            wait = self._backoff(attempt) if wait is None else wait
            if wait > self._max_retry_wait:
                raise error
            self._sleep(wait)
        raise AssertionError("unreachable")

    @staticmethod
    def _error(resp: requests.Response, method: str, path: str, request_id: str | None) -> SpeechError:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            body = body["error"]  # older versions wrap the error
        body = body if isinstance(body, Mapping) else {}
        inner = body.get("innerError") if isinstance(body.get("innerError"), Mapping) else {}
        message = inner.get("message") or body.get("message") or resp.reason or "request failed"
        return SpeechError(
            str(message),
            status=resp.status_code,
            code=body.get("code"),
            inner_code=inner.get("code"),
            request_id=request_id,
            method=method,
            path=path,
        )

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, following @nextLink exactly as given. A link seen before (a loop) or more
        than MAX_PAGES pages end the listing with an error rather than running forever."""
        page = self.request("GET", path, params=params)
        seen: set[str] = set()
        while True:
            if not isinstance(page, Mapping) or not isinstance(page.get("values") or [], list):
                raise SpeechError("the list's response is not a page of values", method="GET", path=path)
            yield from page.get("values") or ()
            next_link = page.get("@nextLink")
            if not next_link:
                return
            if next_link in seen or len(seen) >= MAX_PAGES:
                why = "repeats a page already read" if next_link in seen else f"goes past {MAX_PAGES:,} pages"
                raise SpeechError(f"the list's @nextLink {why}; listing stopped", method="GET", path=path)
            seen.add(next_link)
            page = self.request("GET", next_link)

    def _create(
        self,
        collection: str,
        body: dict[str, Any],
        description: str | None = None,
        custom_properties: Mapping[str, str] | None = None,
    ) -> Any:
        """POST a new entity, with the optional fields every entity shares and the project, if one is set."""
        if description:
            body["description"] = description
        if custom_properties:
            body["customProperties"] = dict(custom_properties)
        if self.project:
            body["project"] = {"self": self.uri("projects", self.project)}
        return self.request("POST", collection, json=body)

    # -- datasets ----------------------------------------------------------------------------------------------

    def create_dataset(
        self,
        *,
        display_name: str,
        locale: str,
        kind: str,
        content_url: str | None = None,
        description: str | None = None,
        custom_properties: Mapping[str, str] | None = None,
    ) -> Dataset:
        body: dict[str, Any] = {"displayName": display_name, "locale": locale, "kind": kind}
        if content_url:
            body["contentUrl"] = content_url
        return Dataset.from_json(self._create("datasets", body, description, custom_properties))

    def get_dataset(self, uri_or_id: str) -> Dataset:
        return Dataset.from_json(self.request("GET", self.uri("datasets", uri_or_id)))

    def list_datasets(self, filter: str | None = None) -> Iterator[Dataset]:
        return (Dataset.from_json(listed(raw)) for raw in self.pages("datasets", {"filter": filter}))

    def update_dataset(self, uri_or_id: str, **fields: Any) -> Dataset:
        body = _update_body(fields)
        return Dataset.from_json(self.request("PATCH", self.uri("datasets", uri_or_id), json=body))

    def delete_dataset(self, uri_or_id: str) -> None:
        self.request("DELETE", self.uri("datasets", uri_or_id))

    def dataset_locales(self) -> dict[str, list[str]]:
        return dict(self.request("GET", "datasets/locales") or {})

    def upload_block(self, uri_or_id: str, block_id: str, data: bytes) -> None:
        """Datasets_UploadBlock: at most 8 MiB (MAX_BLOCK_BYTES); an idempotent PUT, so retried like a GET."""
        if len(data) > MAX_BLOCK_BYTES:
            raise ValueError(f"a block holds at most {MAX_BLOCK_BYTES} bytes, not {len(data)}")
        url = self.uri("datasets", uri_or_id).replace("?", "/blocks?", 1)
        self.request("PUT", url, params={"blockid": block_id}, data=data, content_type="application/octet-stream")

    def get_blocks(self, uri_or_id: str) -> UploadedBlocks:
        """Datasets_GetBlocks: the committed and uncommitted blocks of a dataset uploaded in blocks."""
        url = self.uri("datasets", uri_or_id).replace("?", "/blocks?", 1)
        return UploadedBlocks.from_json(self.request("GET", url))

    def commit_blocks(self, uri_or_id: str, block_ids: list[str], kind: str = "Latest") -> None:
        """Datasets_CommitBlocks: the dataset's content is these blocks, in this order. A POST: not repeated after
        an ambiguous failure (the caller settles it with get_blocks)."""
        url = self.uri("datasets", uri_or_id).replace("?", "/blocks:commit?", 1)
        self.request("POST", url, json=[{"kind": kind, "id": block} for block in block_ids])

    # -- models ------------------------------------------------------------------------------------------------

    def create_model(
        self,
        *,
        display_name: str,
        locale: str,
        base_model: str,
        datasets: list[str],
        description: str | None = None,
        custom_properties: Mapping[str, str] | None = None,
    ) -> CustomModel:
        body: dict[str, Any] = {
            "displayName": display_name,
            "locale": locale,
            "baseModel": {"self": self.uri("models/base", base_model)},
            "datasets": [{"self": self.uri("datasets", d)} for d in datasets],
        }
        return CustomModel.from_json(self._create("models", body, description, custom_properties))

    def get_model(self, uri_or_id: str) -> CustomModel:
        return CustomModel.from_json(self.request("GET", self.uri("models", uri_or_id)))

    def list_models(self, filter: str | None = None) -> Iterator[CustomModel]:
        return (CustomModel.from_json(listed(raw)) for raw in self.pages("models", {"filter": filter}))

    def update_model(self, uri_or_id: str, **fields: Any) -> CustomModel:
        body = _update_body(fields)
        return CustomModel.from_json(self.request("PATCH", self.uri("models", uri_or_id), json=body))

    def delete_model(self, uri_or_id: str) -> None:
        self.request("DELETE", self.uri("models", uri_or_id))

    def list_base_models(self, filter: str | None = None) -> Iterator[BaseModel]:
        return (BaseModel.from_json(listed(raw)) for raw in self.pages("models/base", {"filter": filter}))

    def get_base_model(self, uri_or_id: str) -> BaseModel:
        return BaseModel.from_json(self.request("GET", self.uri("models/base", uri_or_id)))

    # -- model copy (to another Speech resource or region) ----------------------------------------------------

    def authorize_copy(self, source_resource_id: str) -> ModelCopyAuthorization:
        """Models_AuthorizeCopy, called on the TARGET resource: lets `source_resource_id` copy a model here."""
        body = {"sourceResourceId": source_resource_id}
        return ModelCopyAuthorization.from_json(self.request("POST", "models:authorizecopy", json=body))

    def copy_model(self, uri_or_id: str, authorization: ModelCopyAuthorization) -> Operation:
        """Models_Copy, called on the SOURCE resource with the target's authorization; follow the operation."""
        url = self.uri("models", uri_or_id).replace("?", ":copy?", 1)
        return Operation.from_json(self.request("POST", url, json=dict(authorization.raw)))

    def get_model_copy_operation(self, uri_or_id: str) -> Operation:
        """Operations_GetModelCopy."""
        return Operation.from_json(self.request("GET", self.uri("operations/models/copy", uri_or_id)))

    # -- endpoints ---------------------------------------------------------------------------------------------

    def create_endpoint(
        self,
        *,
        display_name: str,
        locale: str,
        model: str,
        description: str | None = None,
        custom_properties: Mapping[str, str] | None = None,
    ) -> Endpoint:
        body: dict[str, Any] = {
            "displayName": display_name,
            "locale": locale,
            "model": {"self": self.uri("models", model)},
        }
        return Endpoint.from_json(self._create("endpoints", body, description, custom_properties))

    def get_endpoint(self, uri_or_id: str) -> Endpoint:
        return Endpoint.from_json(self.request("GET", self.uri("endpoints", uri_or_id)))

    def list_endpoints(self, filter: str | None = None) -> Iterator[Endpoint]:
        return (Endpoint.from_json(listed(raw)) for raw in self.pages("endpoints", {"filter": filter}))

    def update_endpoint(self, uri_or_id: str, *, model: str | None = None, **fields: Any) -> Endpoint:
        body = _update_body(fields)
        if model:
            body["model"] = {"self": self.uri("models", model)}
        return Endpoint.from_json(self.request("PATCH", self.uri("endpoints", uri_or_id), json=body))

    def delete_endpoint(self, uri_or_id: str) -> None:
        self.request("DELETE", self.uri("endpoints", uri_or_id))

    # -- evaluations and web hooks -----------------------------------------------------------------------------

    def create_evaluation(
        self,
        *,
        display_name: str,
        locale: str,
        model1: str,
        model2: str,
        dataset: str,
        description: str | None = None,
        custom_properties: Mapping[str, str] | None = None,
    ) -> Evaluation:
        """model1 and model2 are self URIs (a base model's is under models/base) or custom model ids."""
        body: dict[str, Any] = {
            "displayName": display_name,
            "locale": locale,
            "model1": {"self": self.uri("models", model1)},
            "model2": {"self": self.uri("models", model2)},
            "dataset": {"self": self.uri("datasets", dataset)},
        }
        return Evaluation.from_json(self._create("evaluations", body, description, custom_properties))

    def get_evaluation(self, uri_or_id: str) -> Evaluation:
        return Evaluation.from_json(self.request("GET", self.uri("evaluations", uri_or_id)))

    def list_evaluations(self, filter: str | None = None) -> Iterator[Evaluation]:
        return (Evaluation.from_json(raw) for raw in self.pages("evaluations", {"filter": filter}))

    def update_evaluation(self, uri_or_id: str, **fields: Any) -> Evaluation:
        body = _update_body(fields)
        return Evaluation.from_json(self.request("PATCH", self.uri("evaluations", uri_or_id), json=body))

    def delete_evaluation(self, uri_or_id: str) -> None:
        self.request("DELETE", self.uri("evaluations", uri_or_id))

    def list_webhooks(self) -> Iterator[WebHook]:
        return (WebHook.from_json(raw) for raw in self.pages("webhooks"))

    def create_webhook(self, *, display_name: str, web_url: str, events: Mapping[str, bool]) -> WebHook:
        body = {"displayName": display_name, "webUrl": web_url, "events": dict(events)}
        return WebHook.from_json(self.request("POST", "webhooks", json=body))

    def delete_webhook(self, uri_or_id: str) -> None:
        self.request("DELETE", self.uri("webhooks", uri_or_id))


_UPDATE_FIELDS = {"display_name": "displayName", "description": "description", "custom_properties": "customProperties"}


def _update_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(_UPDATE_FIELDS)
    if unknown:
        raise TypeError(f"cannot update {sorted(unknown)}")
    return {_UPDATE_FIELDS[name]: value for name, value in fields.items() if value is not None}
