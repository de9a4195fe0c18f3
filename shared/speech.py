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

log = logging.getLogger("autopilot.speech")

TOKEN_SCOPE = "https://cognitiveservices.azure.com/.default"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
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
        self.message = message
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


# ---------------------------------------------------------------------------------------------------------------
# Resources: only the fields we use, the raw JSON kept.


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


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
    return EntityError(code=str(err.get("code", "")), message=str(err.get("message", "")))


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


@dataclass(frozen=True, slots=True)
class Evaluation:
    id: str
    self_uri: str
    status: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Evaluation:
        return cls(id=entity_id(raw["self"]), self_uri=raw["self"], status=raw.get("status", ""), raw=raw)


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
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - now()) if parsed else None


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
        url, query = self._url(path_or_url)
        query.update({k: v for k, v in (params or {}).items() if v is not None})
        shown = urlsplit(url).path.removeprefix(urlsplit(self.base).path) or "/"
        is_post = method == "POST"
        for attempt in range(self._max_attempts):
            if self.budget is not None:
                self.budget.acquire()  # every attempt counts, retries included
            headers = self._headers()
            if content_type:
                headers["Content-Type"] = content_type
            started = time.monotonic()
            self.calls += 1
            try:
                resp = self._session.request(
                    method, url, params=query, json=json, data=data, headers=headers, timeout=self._timeout
                )
            except requests.ConnectionError as exc:
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
                if resp.status_code == 204 or not resp.content:
                    return None
                return resp.json()
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
        """Every item of a paged list, following @nextLink exactly as given."""
        page = self.request("GET", path, params=params)
        while True:
            yield from page.get("values") or ()
            next_link = page.get("@nextLink")
            if not next_link:
                return
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
        url = self.uri("datasets", uri_or_id).replace("?", "/blocks?", 1)
        self.request("PUT", url, params={"blockid": block_id}, data=data, content_type="application/octet-stream")

    def commit_blocks(self, uri_or_id: str, block_ids: list[str]) -> None:
        url = self.uri("datasets", uri_or_id).replace("?", "/blocks:commit?", 1)
        self.request("POST", url, json=[{"kind": "Latest", "id": block} for block in block_ids])

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
        self, *, display_name: str, locale: str, model1: str, model2: str, dataset: str
    ) -> Evaluation:
        body = {
            "displayName": display_name,
            "locale": locale,
            "model1": {"self": self.uri("models", model1)},
            "model2": {"self": self.uri("models", model2)},
            "dataset": {"self": self.uri("datasets", dataset)},
        }
        return Evaluation.from_json(self._create("evaluations", body))

    def get_evaluation(self, uri_or_id: str) -> Evaluation:
        return Evaluation.from_json(self.request("GET", self.uri("evaluations", uri_or_id)))

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
