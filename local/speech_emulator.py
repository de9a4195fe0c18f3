"""An emulator of the Azure Speech to text REST API, api-version 2025-10-15, for tests and offline runs.

Emulated, in memory behind one lock: datasets (from a `contentUrl` that is really downloaded and checked, or from
uploaded and committed blocks), custom models, base models (seeded per locale, several generations), endpoints,
evaluations and web hooks: create, list (`skip`/`top`/`@nextLink`, and the `filter` parameter as the spec documents
it: local/odata.py), get, patch, delete, and the supported-locale lists. The service's validation rules and error
shape (`code`, `message`, `innerError`), key or bearer auth, an `apim-request-id` on every response, the
NotStarted -> Running -> Succeeded/Failed progression computed lazily from an emulator clock (real or frozen), the
documented quarter rule for deprecation dates, forced failures and injected faults (error statuses with
Retry-After, slow answers), and, when asked (`rate_limit=(100, 10.0)`), the service's rate limit: a sliding window
over API requests, 429 with Retry-After beyond it. An optional observer sees every request and response.
Evaluations report word error rates a test controls (`set_quality`, `set_next_quality`; local/evaluations.py),
-1 for every figure until they have Succeeded, as the service does.

At scale (local/emulator_store.py): entities are kept in creation order with equality indexes on displayName,
description, locale and kind; a list page costs O(top) whatever its offset when unfiltered or when an index answers
the filter (`description eq '...'`), and following a filtered list's nextLinks costs O(n) in all. `seed()` bulk-adds
finished entities for benchmarks.

Choices where the service's behaviour is not documented: a `top` above `page_size` is cut to it (server-driven
paging); a filtered list's @nextLink continues after the last entity shown; throttled requests do not count
against the rate limit; PATCH replaces `customProperties` as a whole; a model without `baseModel` gets the
locale's newest base model; Acoustic and AudioFiles WAVs must be 8 or 16 kHz mono 16-bit PCM (the documented
format); `contentUrl` is echoed with its SAS signature redacted. Nothing secret is kept: request logs hold no key,
token or `sig=` value.

Uploads in blocks (Datasets_UploadBlock/GetBlocks/CommitBlocks): at most 8 MiB a block, block ids valid Base64 of
at most 64 bytes and of one length per dataset, the content assembled in commit order. Model copy between two
emulators (Models_AuthorizeCopy on the target, Models_Copy on the source, Operations_GetModelCopy): the source hands
the model to the target over HTTP, authorized by the copy authorization's id; the copy keeps name, locale, base
model reference and deprecation dates, not customProperties. Network shaping for benchmarks: a latency added to
every API answer and a per-connection bandwidth cap on request bodies (`latency`, `bandwidth`).

Not emulated: transcriptions, projects (a `project` reference is echoed unchecked), files, manifests, web hook
calls (challenge, ping, test), real training or recognition, regional differences.

Control from Python (set_now, advance, inject, fail_next, add_base_model, set_quality, seed, shape, ...) or, for
other processes, over HTTP under /_emulator/ with the same key auth.
Run alone: `python -m local.speech_emulator --port 8765 --fast`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import itertools
import json
import logging
import math
import os
import posixpath
import re
import signal
import tempfile
import threading
import time
import urllib.request
import uuid
import wave
import zipfile
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Callable, Mapping
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit
from urllib.request import ProxyHandler, build_opener

from local import evaluations as quality
from local import odata
from local.emulator_store import Collection, Pager

log = logging.getLogger("speech_emulator")

API_VERSION = "2025-10-15"
KINDS = ("Language", "Acoustic", "Pronunciation", "AudioFiles", "LanguageMarkdown", "OutputFormatting")
DEFAULT_LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "ja-JP")
DEFAULT_DURATIONS = {"dataset": 2.0, "model": 4.0, "endpoint": 2.0, "evaluation": 2.0}
FAST_DURATIONS = {"dataset": 0.2, "model": 0.5, "endpoint": 0.2, "evaluation": 0.2}
DURATION_OF = {"datasets": "dataset", "models": "model", "endpoints": "endpoint", "evaluations": "evaluation"}
COLLECTIONS = ("datasets", "models", "endpoints", "evaluations", "webhooks")
BASE = "models/base"
BASE_MODEL_AGES_MONTHS = (21, 15, 9, 3)
QUARTER_END_MONTHS = (1, 4, 7, 10)
MAX_CUSTOM_PROPERTIES, MAX_PROPERTY_KEY, MAX_PROPERTY_VALUE = 10, 64, 256
MAX_BLOCK_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
DOWNLOAD_TIMEOUT = 30.0
SHARED_FIELDS = ("displayName", "description", "locale", "customProperties", "project")
PATCHABLE = ("displayName", "description", "customProperties", "project")
OBJECT_FIELDS = ("model", "model1", "model2", "dataset", "events")
REQUIRED = {  # besides displayName; the service's rules, stricter than the schema's for endpoints
    "datasets": ("locale", "kind"),
    "models": ("locale",),
    "endpoints": ("locale", "model"),
    "evaluations": ("locale", "model1", "model2", "dataset"),
    "webhooks": ("webUrl", "events"),
}
LINKS = {
    "datasets": {"files": "/files"},
    "models": {"manifest": "/manifest", "copy": ":copy", "files": "/files"},
    BASE: {"manifest": "/manifest"},
    "evaluations": {"files": "/files"},
    "webhooks": {"test": ":test", "ping": ":ping"},
}
BLOCK_LINKS = {"uploadBlocks": "/blocks", "commitBlocks": "/blocks:commit", "listBlocks": "/blocks"}
SHARED_FEATURES = {
    "supportsTranscriptionsSubmit": True,
    "supportsTranscriptionsTranscribe": False,
    "supportsEndpoints": True,
    "supportsTranscriptionsOnSpeechContainers": False,
    "supportedOutputFormats": ["Display", "Lexical"],
}
ERROR_CODES = {
    400: "InvalidRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "NotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}
REFERENCE = re.compile(r"/speechtotext/(models/base|datasets|models|endpoints|evaluations)/([^/:?]+)$")
# `filter` properties per list operation (the spec's): name -> odata.STRING | odata.DATETIME
_COMMON_FILTER = {
    "displayName": odata.STRING,
    "description": odata.STRING,
    "createdDateTime": odata.DATETIME,
    "lastActionDateTime": odata.DATETIME,
    "status": odata.STRING,
}
FILTER_PROPERTIES = {
    "datasets": {**_COMMON_FILTER, "locale": odata.STRING, "kind": odata.STRING},
    "models": {**_COMMON_FILTER, "locale": odata.STRING},
    BASE: {**_COMMON_FILTER, "locale": odata.STRING},
    "endpoints": {**_COMMON_FILTER, "locale": odata.STRING},
    "evaluations": {**_COMMON_FILTER, "locale": odata.STRING},
    "webhooks": {**_COMMON_FILTER, "webUrl": odata.STRING},
}
SEEDED_PROPERTIES = {  # what seed() gives each kind of entity, as its create path would
    "datasets": {"textNormalizationKind": "Default"},
    "models": {"features": SHARED_FEATURES},
    "endpoints": {"loggingEnabled": False},
}
SEEDED_FIELDS = (*SHARED_FIELDS, "kind", "baseModel", "datasets", "model")
SIG = re.compile(r"(?i)(sig=)[^&#\s]*")
ID = r"(?P<id>[^/:]+)"
COLL = rf"(?P<coll>{'|'.join(COLLECTIONS)})"
# (method, path after /speechtotext, handler, runs under the lock)
ROUTES = [
    ("GET", r"/(?P<coll>datasets|models|endpoints|evaluations)/locales", "_locales", True),
    ("GET", r"/(?P<coll>models/base)", "_list", True),
    ("GET", rf"/(?P<coll>models/base)/{ID}", "_get", True),
    ("GET", rf"/datasets/{ID}/blocks", "_get_blocks", True),
    ("PUT", rf"/datasets/{ID}/blocks", "_put_block", True),
    ("POST", rf"/datasets/{ID}/blocks:commit", "_commit_blocks", True),
    ("POST", r"/datasets", "_create_datasets", False),  # downloads outside the lock
    ("POST", rf"/{COLL}", "_create", True),
    ("GET", rf"/{COLL}", "_list", True),
    ("GET", rf"/{COLL}/{ID}", "_get", True),
    ("PATCH", rf"/{COLL}/{ID}", "_patch", True),
    ("DELETE", rf"/{COLL}/{ID}", "_delete", True),
]
# Model copy (see "model copy" below): Copy calls the target emulator over HTTP, so it runs outside the lock.
COPY_ROUTES = [
    ("POST", r"/models:authorizecopy", "_authorize_copy", True),
    ("POST", rf"/models/{ID}:copy", "_copy_model", False),
    ("GET", rf"/operations/models/copy/{ID}", "_get_copy_operation", True),
]
COPY_DELIVERY_PATH = "/_emulator/model-copies"  # target side; authorized by the copy authorization's id
COPY_AUTHORIZATION_HOURS = 24
BLOCK_KINDS = ("Committed", "Uncommitted", "Latest")
MAX_BLOCK_ID_BYTES = 64
COMPILED_ROUTES = [
    (method, re.compile(pattern), name, locked) for method, pattern, name, locked in ROUTES + COPY_ROUTES
]
Observer = Callable[[str, str, Any, int, Any, str | None], None]


# -- pure helpers ------------------------------------------------------------------------------------------------


def deprecation_dates(created: datetime, *, base_model: bool) -> dict[str, datetime]:
    """The documented expiry rule. Quarters end on Jan 15, Apr 15, Jul 15 and Oct 15; a date on the 15th belongs
    to the quarter ending that day. A custom model transcribes until two years after the end of the quarter it was
    created in; a base model adapts until one year and transcribes until two years after its quarter's end."""
    day = created.astimezone(UTC).date()
    ends = [date(day.year, month, 15) for month in QUARTER_END_MONTHS] + [date(day.year + 1, 1, 15)]
    end = next(end for end in ends if day <= end)
    dates = {"transcriptionDateTime": datetime(end.year + 2, end.month, end.day, tzinfo=UTC)}
    if base_model:
        dates["adaptationDateTime"] = datetime(end.year + 1, end.month, end.day, tzinfo=UTC)
    return dates


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_utc(moment: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime (naive means UTC) or an ISO 8601 string."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def redact(url: str) -> str:
    """The URL with any SAS signature replaced (`sig=REDACTED`)."""
    return SIG.sub(r"\1REDACTED", url)


def months_before(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=min(moment.day, 28))


class Clock:
    """Real UTC time shifted by advance(), or after set() a frozen virtual time that only advance() moves."""

    def __init__(self, now: datetime | None = None) -> None:
        self._frozen = as_utc(now) if now else None
        self._offset = timedelta()

    def now(self) -> datetime:
        return self._frozen if self._frozen else datetime.now(UTC) + self._offset

    __call__ = now

    def set(self, moment: datetime | str) -> None:
        self._frozen = as_utc(moment)

    def advance(self, delta: float | timedelta) -> None:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if self._frozen:
            self._frozen += step
        else:
            self._offset += step


# -- requests, responses, errors, entities -----------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str  # the full path, e.g. /speechtotext/datasets
    query: dict[str, str]
    body: bytes
    json: Any


@dataclass
class Response:
    status: int
    body: Any = None  # a JSON value, or a str sent as text/plain
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """An error answer in the service's shape: {code, message, innerError: {code, message}}."""

    def __init__(self, status: int, message: str, inner: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.inner = status, message, inner
        self.code = code or ERROR_CODES.get(status, "ServiceUnavailable" if status >= 500 else "InvalidRequest")

    def response(self, headers: dict[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            body["innerError"] = {"code": self.inner, "message": self.message}
        return Response(self.status, body, dict(headers or {}))


def invalid(message: str, inner: str = "InvalidParameterValue") -> ApiError:
    return ApiError(400, message, inner, code="InvalidArgument")


@dataclass
class Entity:
    collection: str
    id: str
    fields: dict[str, Any]  # client-visible fields as stored (displayName, locale, references, ...)
    properties: dict[str, Any]  # `properties` shown in every state
    created: datetime
    seq: int
    last_action: datetime
    running_at: datetime | None = None  # None: waiting (a dataset awaiting its blocks)
    done_at: datetime | None = None
    failure: dict[str, str] | None = None
    results: dict[str, Any] = field(default_factory=dict)  # `properties` shown once Succeeded
    deprecation: dict[str, datetime] = field(default_factory=dict)
    blocks: dict[str, bytes] = field(default_factory=dict)  # uploaded, not yet committed
    committed: list[tuple[str, int]] = field(default_factory=list)

    def status(self, now: datetime) -> str:
        if self.running_at is None or self.done_at is None or now < self.running_at:
            return "NotStarted"
        if now < self.done_at:
            return "Running"
        return "Failed" if self.failure else "Succeeded"

    def last_action_at(self, now: datetime) -> datetime:
        return max([self.last_action] + [m for m in (self.running_at, self.done_at) if m and m <= now])


@dataclass
class Fault:
    status: int | None
    remaining: int
    retry_after: float | None = None
    retry_after_ms: int | None = None
    method: str | None = None
    path_contains: str | None = None
    delay: float = 0.0
    body: Any = None

    def matches(self, req: Request) -> bool:
        return (self.method is None or self.method.upper() == req.method) and (
            self.path_contains is None or self.path_contains in req.path
        )

    def response(self) -> Response:
        assert self.status is not None
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(self.retry_after))
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(int(self.retry_after_ms))
        if self.body is not None:
            return Response(self.status, self.body, headers)
        return ApiError(self.status, f"Injected fault: HTTP {self.status}.").response(headers)


@dataclass
class CopyOperation:
    """A Models_Copy operation on the source: NotStarted -> Running -> Succeeded (result link) or Failed."""

    id: str
    created: datetime
    result: str | None = None
    failure: dict[str, str] | None = None
    running_at: datetime | None = None
    done_at: datetime | None = None

    def status(self, now: datetime) -> str:
        if self.running_at is None or self.done_at is None or now < self.running_at:
            return "NotStarted"
        if now < self.done_at:
            return "Running"
        return "Failed" if self.failure or not self.result else "Succeeded"


def _deliver_copy(target_endpoint: str, payload: dict[str, Any]) -> tuple[str | None, dict[str, str] | None]:
    """POST the model to the target emulator; (the copy's self URI, None) or (None, the failure)."""
    if not _is_http_url(target_endpoint):
        return None, {"code": "CopyFailed", "message": "targetResourceEndpoint is not an http(s) URL."}
    parts = urlsplit(target_endpoint)
    url = f"{parts.scheme}://{parts.netloc}{COPY_DELIVERY_PATH}"
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL, checked above
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with build_opener(ProxyHandler({})).open(request, timeout=DOWNLOAD_TIMEOUT) as resp:
            return json.loads(resp.read())["self"], None
    except HTTPError as exc:
        return None, {"code": "CopyFailed", "message": f"The target resource refused the copy (HTTP {exc.code})."}
    except (URLError, OSError, HTTPException, ValueError, KeyError) as exc:
        return None, {"code": "CopyFailed", "message": f"The target resource could not be reached: {exc}."}


def _check_block_id(block_id: str, dataset: Entity) -> None:
    """Datasets_UploadBlock's rules: valid Base64, at most 64 bytes before encoding, one length per dataset."""
    try:
        raw = base64.b64decode(block_id, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"The blockid {block_id[:80]!r} is not valid Base64.", "InvalidParameterValue") from None
    if not raw or len(raw) > MAX_BLOCK_ID_BYTES:
        raise invalid(f"A blockid holds 1 to {MAX_BLOCK_ID_BYTES} bytes before encoding.", "InvalidParameterValue")
    lengths = {len(name) for name in dataset.blocks} | {len(name) for name, _ in dataset.committed}
    if lengths and len(block_id) not in lengths:
        raise invalid("Every blockid of a dataset must have the same length.", "InvalidParameterValue")


# -- dataset content checks --------------------------------------------------------------------------------------


@dataclass
class Verdict:
    error: dict[str, str] | None = None
    results: dict[str, int] = field(default_factory=dict)


class ContentError(Exception):
    """The data is not what the dataset kind needs; the message says why."""


def check_archive(path: str, kind: str) -> Verdict:
    """Check a downloaded or committed dataset as the service would: a zip holding what `kind` needs."""
    try:
        if not zipfile.is_zipfile(path):
            raise ContentError("The content is not a zip archive.")
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
            if not names:
                raise ContentError("The zip archive holds no files.")
            return Verdict(results=KIND_CHECKS[kind](archive, names))
    except (ContentError, zipfile.BadZipFile) as exc:
        return Verdict(error={"code": "DataImportFailed", "message": str(exc)})
    except (OSError, EOFError, ValueError, zlib.error) as exc:  # e.g. blocks committed in the wrong order
        return Verdict(error={"code": "DataImportFailed", "message": f"The zip archive is corrupt ({exc})."})


def _read_lines(archive: zipfile.ZipFile, name: str) -> list[str]:
    try:
        return archive.read(name).decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise ContentError(f"{name} is not UTF-8 text.") from None


def _wav_milliseconds(archive: zipfile.ZipFile, name: str) -> int:
    try:
        with archive.open(name) as raw, wave.open(raw) as audio:
            params = audio.getparams()
    except (wave.Error, EOFError) as exc:
        raise ContentError(f"{name} is not a readable PCM WAV file ({exc}).") from None
    if params.nchannels != 1 or params.sampwidth != 2 or params.framerate not in (8000, 16000):
        raise ContentError(
            f"{name} is {params.framerate} Hz, {8 * params.sampwidth}-bit, {params.nchannels} channel(s); "
            "expected 8 or 16 kHz mono 16-bit PCM."
        )
    return params.nframes * 1000 // params.framerate


def _with_suffix(names: list[str], suffix: str) -> list[str]:
    return [n for n in names if n.lower().endswith(suffix)]


def _check_acoustic(archive: zipfile.ZipFile, names: list[str]) -> dict[str, int]:
    wavs = {posixpath.basename(n): n for n in _with_suffix(names, ".wav")}
    transcripts = _with_suffix(names, ".txt")
    if not wavs or not transcripts:
        raise ContentError("An Acoustic dataset needs .wav audio files and a .txt transcript file.")
    accepted, rejected, missing = 0, 0, []
    for line in (line for name in transcripts for line in _read_lines(archive, name) if line.strip()):
        audio, tab, text = line.partition("\t")
        if not tab or not text.strip() or not audio.lower().endswith(".wav"):
            rejected += 1
        elif posixpath.basename(audio) not in wavs:
            missing.append(audio)
        else:
            accepted += 1
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ContentError(f"The transcript names {len(missing)} audio file(s) missing from the zip: {shown}.")
    if not accepted:
        raise ContentError("No transcript line has the form 'name.wav<TAB>text'.")
    duration = sum(_wav_milliseconds(archive, name) for name in wavs.values())
    return {"acceptedLineCount": accepted, "rejectedLineCount": rejected, "durationMilliseconds": duration}


def _check_audio_files(archive: zipfile.ZipFile, names: list[str]) -> dict[str, int]:
    others = [n for n in names if not n.lower().endswith(".wav")]
    if others:
        raise ContentError(f"An AudioFiles dataset holds .wav files only, not {others[0]}.")
    duration = sum(_wav_milliseconds(archive, name) for name in names)
    return {"acceptedLineCount": len(names), "rejectedLineCount": 0, "durationMilliseconds": duration}


def _check_text(archive: zipfile.ZipFile, names: list[str], suffix: str, needs_tab: bool) -> dict[str, int]:
    files = _with_suffix(names, suffix)
    if not files:
        raise ContentError(f"The zip holds no {suffix} file.")
    lines = [line for name in files for line in _read_lines(archive, name) if line.strip()]
    accepted = sum(1 for line in lines if "\t" in line or not needs_tab)
    if not accepted:
        raise ContentError(f"The {suffix} files hold no usable line.")
    return {"acceptedLineCount": accepted, "rejectedLineCount": len(lines) - accepted}


KIND_CHECKS: dict[str, Callable[[zipfile.ZipFile, list[str]], dict[str, int]]] = {
    "Acoustic": _check_acoustic,
    "AudioFiles": _check_audio_files,
    "Language": lambda archive, names: _check_text(archive, names, ".txt", needs_tab=False),
    "Pronunciation": lambda archive, names: _check_text(archive, names, ".txt", needs_tab=True),  # word<TAB>phones
    "LanguageMarkdown": lambda archive, names: _check_text(archive, names, ".md", needs_tab=False),
    "OutputFormatting": lambda archive, names: {"acceptedLineCount": len(names), "rejectedLineCount": 0},
}


def download(url: str, out: IO[bytes], record: dict[str, Any]) -> dict[str, str] | None:
    """Stream `url` into `out` in chunks (stdlib, no proxies, nothing logged); the failure as an entity error."""
    opener = build_opener(ProxyHandler({}))
    try:
        with opener.open(url, timeout=DOWNLOAD_TIMEOUT) as resp:
            record["status"] = resp.status
            while chunk := resp.read(CHUNK_BYTES):
                out.write(chunk)
                record["bytes"] += len(chunk)
    except HTTPError as exc:
        record["status"], record["error"] = exc.code, f"HTTP {exc.code} {exc.reason}"
        hint = " (an expired or invalid SAS gets 403 from storage)" if exc.code == 403 else ""
        return {"code": "InvalidDataUrl", "message": f"Downloading contentUrl failed with HTTP {exc.code}{hint}."}
    except (URLError, OSError, HTTPException) as exc:
        reason = redact(str(getattr(exc, "reason", exc)))
        record["error"] = reason
        return {"code": "InvalidDataUrl", "message": f"contentUrl could not be read: {reason}."}
    return None


# -- the emulator ------------------------------------------------------------------------------------------------


class SpeechEmulator:
    """The service on http://host:port (`url`, `key`); `start()`/`stop()` or a `with` block. Entities are kept
    per collection; their status is computed on every read from the emulator's clock and `durations`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str = "emulator-key",
        page_size: int = 100,
        durations: Mapping[str, float] | None = None,
        locales: list[str] | tuple[str, ...] | None = None,
        max_endpoints: int = 50,
        observer: Observer | None = None,
        accept_bearer: bool = True,
        now: datetime | None = None,
        resource_id: str | None = None,
        region: str = "emulatorregion",
        latency: float = 0.0,
        bandwidth: float | None = None,
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        self.host, self.port, self.key = host, port, key
        self.page_size, self.max_endpoints = page_size, max_endpoints
        self.observer, self.accept_bearer = observer, accept_bearer
        self.rate_limit = rate_limit  # (requests, seconds): API requests allowed in any window; None: no limit
        self.throttled = 0  # requests answered 429 because of rate_limit
        self._arrivals: deque[float] = deque()  # monotonic arrival times of the requests in the current window
        self._rate_lock = threading.Lock()
        self.durations: dict[str, float] = dict(DEFAULT_DURATIONS)
        self.set_durations(**(durations or {}))
        self.clock = Clock(now)
        self.requests: list[dict[str, Any]] = []
        self.downloads: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._seq = itertools.count()
        self._entities: dict[str, Collection] = {name: Collection() for name in (*COLLECTIONS, BASE)}
        self._pager = Pager()
        self._faults: list[Fault] = []
        self._failures: dict[str, deque[dict[str, str]]] = defaultdict(deque)
        self.qualities = quality.Qualities()  # word error rates of models, as tests set them (evaluations)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # model copy: this resource's identity, authorizations it issued (as a target), operations (as a source)
        self.resource_id = resource_id or (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/"
            f"Microsoft.CognitiveServices/accounts/speech-emulator-{uuid.uuid4().hex[:8]}"
        )
        self.region = region
        self._copy_authorizations: dict[str, dict[str, Any]] = {}
        self._copy_operations: dict[str, CopyOperation] = {}
        # network shaping: seconds added to every API answer; bytes per second per connection for request bodies
        self.latency, self.bandwidth = 0.0, None
        self.shape(latency=latency, bandwidth=bandwidth)
        for locale in locales or DEFAULT_LOCALES:
            for months in BASE_MODEL_AGES_MONTHS:
                self.add_base_model(locale, created=months_before(self.now(), months))
        self._seeded = dict(self._entities[BASE])

    # lifecycle

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SpeechEmulator:
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SpeechEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # control

    def now(self) -> datetime:
        return self.clock.now()

    def set_now(self, moment: datetime | str) -> None:
        """Freeze the clock at `moment` (from then on only advance() moves it)."""
        with self._lock:
            self.clock.set(moment)

    def advance(self, delta: float | timedelta) -> None:
        with self._lock:
            self.clock.advance(delta)

    def set_durations(self, **seconds: float) -> None:
        unknown = set(seconds) - set(DEFAULT_DURATIONS)
        if unknown:
            raise ValueError(f"unknown duration(s) {sorted(unknown)}; known: {sorted(DEFAULT_DURATIONS)}")
        self.durations.update({name: float(value) for name, value in seconds.items()})

    def inject(
        self,
        status: int | None = 429,
        count: int = 3,
        retry_after: float | None = 1,
        retry_after_ms: int | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        delay: float = 0.0,
        body: Any = None,
    ) -> None:
        """The next `count` matching API requests get `status` (after `delay` s), or with status None are just
        answered `delay` seconds late (a delayed POST still creates its entity)."""
        fault = Fault(status, count, retry_after, retry_after_ms, method, path_contains, delay, body)
        with self._lock:
            self._faults.append(fault)

    def shape(self, *, latency: float | None = None, bandwidth: float | None = None) -> None:
        """Network shaping: `latency` seconds added to every API answer (a round trip); `bandwidth` bytes per
        second at most for each connection's request bodies (None or 0: no cap). Control requests are not shaped."""
        if latency is not None:
            if latency < 0:
                raise ValueError("latency must be >= 0 seconds")
            self.latency = float(latency)
        if bandwidth is not None:
            if bandwidth < 0:
                raise ValueError("bandwidth must be >= 0 bytes per second")
            self.bandwidth = float(bandwidth) or None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def fail_next(self, kind: str, code: str = "InternalError", message: str = "Failed by the emulator.") -> None:
        """The next created entity of `kind` (dataset, model, endpoint, evaluation) ends Failed with this error."""
        if kind not in DEFAULT_DURATIONS:
            raise ValueError(f"unknown entity type {kind!r}; known: {sorted(DEFAULT_DURATIONS)}")
        with self._lock:
            self._failures[kind].append({"code": code, "message": message})

    def set_quality(self, model_id: str, wer: float) -> None:
        """Evaluations report this word error rate (a fraction) for the custom or base model `model_id`."""
        with self._lock:
            self.qualities.set(model_id, wer)

    def set_next_quality(self, wer: float) -> None:
        """The next custom model created gets this word error rate (a fraction) in evaluations."""
        with self._lock:
            self.qualities.set_next(wer)

    def add_base_model(
        self,
        locale: str,
        created: datetime | str | None = None,
        kinds: list[str] | tuple[str, ...] | None = None,
        display_name: str | None = None,
    ) -> dict[str, Any]:
        moment = as_utc(created) if created else self.now()
        unknown = set(kinds or ()) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown dataset kind(s) {sorted(unknown)}")
        features = {**SHARED_FEATURES, "supportsAdaptationsWith": list(kinds if kinds is not None else KINDS)}
        name = display_name or f"{moment:%Y%m%d} base model ({locale})"
        with self._lock:
            entity = Entity(
                BASE,
                str(uuid.uuid4()),
                {"displayName": name, "locale": locale},
                {"features": features, "chargeForAdaptation": False},
                created=moment,
                seq=next(self._seq),
                last_action=moment,
                running_at=moment,
                done_at=moment,
                deprecation=deprecation_dates(moment, base_model=True),
            )
            self._entities[BASE][entity.id] = entity
            return self._render(entity)

    def remove_base_model(self, model_id: str) -> None:
        with self._lock:
            if self._entities[BASE].pop(model_id, None) is None:
                raise KeyError(model_id)

    def seed(self, collection: str, items: list[dict[str, Any]]) -> list[str]:
        """Bulk-add finished (Succeeded) datasets, models or endpoints, for benchmarks at scale: no create checks,
        downloads or processing time. Each item holds a create request's fields (references as {"self": uri}) and
        optionally `createdDateTime`; models get deprecation dates by the quarter rule. Returns the new ids."""
        if collection not in SEEDED_PROPERTIES:
            raise ValueError(f"cannot seed {collection!r}; only {sorted(SEEDED_PROPERTIES)}")
        ids = []
        with self._lock:
            for item in items:
                if not isinstance(item.get("displayName"), str) or not isinstance(item.get("locale"), str):
                    raise ValueError("every seeded item needs a displayName and a locale")
                created = as_utc(item["createdDateTime"]) if "createdDateTime" in item else self.now()
                properties = json.loads(json.dumps(SEEDED_PROPERTIES[collection]))
                fields = {name: item[name] for name in SEEDED_FIELDS if name in item}
                entity = Entity(collection, str(uuid.uuid4()), fields, properties, created, next(self._seq), created)
                entity.running_at = entity.done_at = created
                if collection == "datasets":
                    entity.results = {"acceptedLineCount": 1, "rejectedLineCount": 0}
                if collection == "models":
                    entity.deprecation = deprecation_dates(created, base_model=False)
                self._entities[collection][entity.id] = entity
                ids.append(entity.id)
        return ids

    def reset(self) -> None:
        """Forget every entity, fault, forced failure, request and download; the seeded base models come back."""
        with self._lock:
            for name in COLLECTIONS:
                self._entities[name].clear()
            self._entities[BASE] = Collection(self._seeded.values())
            self._pager.clear()
            self._faults.clear()
            self._failures.clear()
            self.qualities.clear()
            self.requests.clear()
            self.downloads.clear()
            self._copy_authorizations.clear()
            self._copy_operations.clear()
        with self._rate_lock:
            self._arrivals.clear()
            self.throttled = 0

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "now": iso(self.now()),
                "requests": len(self.requests),
                "downloads": len(self.downloads),
                "pendingFaults": sum(f.remaining for f in self._faults),
                "throttled": self.throttled,
                "durations": dict(self.durations),
                "counts": {name: len(items) for name, items in self._entities.items()},
            }

    def view(self, collection: str) -> dict[str, dict[str, Any]]:
        """id -> entity as the API shows it now, for one of COLLECTIONS or BASE ("models/base")."""
        with self._lock:
            return {key: self._render(entity) for key, entity in self._entities[collection].items()}

    datasets = property(lambda self: self.view("datasets"), doc="id -> dataset as the API shows it now")
    models = property(lambda self: self.view("models"), doc="id -> custom model as the API shows it now")
    base_models = property(lambda self: self.view(BASE), doc="id -> base model as the API shows it now")
    endpoints = property(lambda self: self.view("endpoints"), doc="id -> endpoint as the API shows it now")

    # HTTP entry point

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one HTTP request (`target` is the path with its query), log it and tell the observer."""
        parts = urlsplit(target)
        lowered = {name.lower(): value for name, value in headers.items()}
        content_type = lowered.get("content-type")
        req = Request(method.upper(), unquote(parts.path), dict(parse_qsl(parts.query, True)), body, None)
        if body and not (content_type or "").startswith("application/octet-stream"):
            try:
                req.json = json.loads(body)
            except ValueError:
                req.json = None
        response = self._respond(req, lowered)
        response.headers["apim-request-id"] = str(uuid.uuid4())
        if not req.path.startswith("/_emulator/"):
            query = {name: "REDACTED" if name.lower() == "sig" else value for name, value in req.query.items()}
            entry = {"method": req.method, "path": req.path, "query": query, "status": response.status}
            if req.method == "PUT":
                entry["bytes"] = len(req.body)
            with self._lock:
                self.requests.append({**entry, "time": self.now()})
        self._notify(req, redact(self.url + target), content_type, response)
        return response

    def _notify(self, req: Request, url: str, content_type: str | None, response: Response) -> None:
        if self.observer is None:
            return
        answer = response.body if isinstance(response.body, (dict, list)) else None
        try:
            self.observer(req.method, url, req.json, response.status, answer, content_type)
        except Exception:  # noqa: BLE001 - an observer bug must not turn into a wrong HTTP answer
            log.exception("speech emulator observer failed")

    def _respond(self, req: Request, headers: dict[str, str]) -> Response:
        try:
            if req.path == COPY_DELIVERY_PATH and req.method == "POST":
                return self._receive_copy(req)
            if not self._authorized(headers):
                raise ApiError(401, "Access denied due to a missing or invalid subscription key or token.")
            if req.path.startswith("/_emulator/"):
                return self._control(req)
            throttled = self._throttle()
            if throttled is not None:
                return throttled
            fault = self._take_fault(req)
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and fault.status is not None:
                return fault.response()
            handler, params, locked = self._route(req)
            self._check_api_version(req.query)
            if not locked:
                return handler(req, **params)
            with self._lock:
                return handler(req, **params)
        except ApiError as exc:
            return exc.response()
        except Exception:  # noqa: BLE001 - answer like the service does instead of dropping the connection
            log.exception("speech emulator failed on %s %s", req.method, req.path)
            return ApiError(500, "Internal error in the emulator.").response()

    def _authorized(self, headers: dict[str, str]) -> bool:
        key = headers.get("ocp-apim-subscription-key")
        if key is not None:
            return hmac.compare_digest(key.encode(), self.key.encode())
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return self.accept_bearer and scheme.lower() == "bearer" and bool(token.strip())

    def _throttle(self) -> Response | None:
        """429 with Retry-After when `rate_limit` requests arrived in the last window (sliding, real time)."""
        if not self.rate_limit:
            return None
        limit, window = self.rate_limit
        now = time.monotonic()
        with self._rate_lock:
            while self._arrivals and self._arrivals[0] <= now - window:
                self._arrivals.popleft()
            if len(self._arrivals) < limit:
                self._arrivals.append(now)
                return None
            self.throttled += 1
            wait = self._arrivals[0] + window - now
        message = f"Too many requests: at most {limit} per {window:g} seconds. Retry after {wait:.1f} s."
        return ApiError(429, message).response({"Retry-After": str(max(1, math.ceil(wait)))})

    def _take_fault(self, req: Request) -> Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.matches(req)), None)
            if fault:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault

    def _route(self, req: Request) -> tuple[Callable[..., Response], dict[str, str], bool]:
        path = req.path.removeprefix("/speechtotext") if req.path.startswith("/speechtotext/") else None
        known_path = False
        for method, pattern, name, locked in COMPILED_ROUTES:
            match = pattern.fullmatch(path) if path is not None else None
            if match and method == req.method:
                return getattr(self, name), match.groupdict(), locked
            known_path = known_path or bool(match)
        if known_path:
            raise ApiError(405, f"{req.method} is not supported on {req.path}.")
        raise ApiError(404, f"No operation {req.method} {req.path} exists.", code="NotFound")

    @staticmethod
    def _check_api_version(query: dict[str, str]) -> None:
        version = query.get("api-version")
        if version != API_VERSION:
            what = "is missing" if version is None else f"'{version}' is not supported"
            raise ApiError(
                400, f"The api-version query parameter {what} (supported: {API_VERSION}).", "InvalidParameterValue"
            )

    # rendering

    def _uri(self, path: str) -> str:
        return f"{self.url}/speechtotext/{path}?api-version={API_VERSION}"

    def _self(self, entity: Entity) -> str:
        return self._uri(f"{entity.collection}/{entity.id}")

    def _ref(self, entity: Entity) -> dict[str, str]:
        return {"self": self._self(entity)}

    def _render(self, entity: Entity) -> dict[str, Any]:
        now = self.now()
        status = entity.status(now)
        out: dict[str, Any] = {"self": self._self(entity), **entity.fields}
        out["createdDateTime"] = iso(entity.created)
        out["lastActionDateTime"] = iso(entity.last_action_at(now))
        out["status"] = status
        links = self._links(entity)
        if links:
            out["links"] = links
        properties = dict(entity.properties)
        if entity.deprecation:
            properties["deprecationDates"] = {name: iso(moment) for name, moment in entity.deprecation.items()}
        if status == "Succeeded":
            properties.update(entity.results)
        if status == "Failed" and entity.failure:
            properties["error"] = dict(entity.failure)
        if properties:
            out["properties"] = properties
        return out

    def _links(self, entity: Entity) -> dict[str, str]:
        path = f"{entity.collection}/{entity.id}"
        suffixes = dict(LINKS.get(entity.collection, {}))
        if entity.collection == "datasets" and "contentUrl" not in entity.fields:
            suffixes.update(BLOCK_LINKS)
        links = {name: self._uri(path + suffix) for name, suffix in suffixes.items()}
        if entity.collection == "endpoints":
            links["webSocket"] = f"ws{self.url[4:]}/stt/speech/universal/v2?cid={entity.id}"
        return links

    # lookups and validation (called under the lock)

    def _entity(self, collection: str, entity_id: str) -> Entity:
        entity = self._entities[collection].get(entity_id)
        if entity is None:
            noun = "base model" if collection == BASE else collection.rstrip("s")
            raise ApiError(404, f"The {noun} {entity_id} does not exist.", code="NotFound")
        return entity

    def _referenced(self, ref: Any, collections: tuple[str, ...]) -> Entity | None:
        """The entity an EntityReference ({"self": uri}) points to, if it is one of `collections` and exists."""
        if not isinstance(ref, dict) or not isinstance(ref.get("self"), str):
            return None
        match = REFERENCE.search(urlsplit(ref["self"]).path)
        if not match or match[1] not in collections:
            return None
        return self._entities[match[1]].get(match[2])

    def _base(self) -> list[Entity]:
        return list(self._entities[BASE].values())

    def _dataset_locales(self) -> dict[str, list[str]]:
        models = [(m.fields["locale"], m.properties["features"]["supportsAdaptationsWith"]) for m in self._base()]
        return {kind: sorted({locale for locale, kinds in models if kind in kinds}) for kind in KINDS}

    def _add(self, collection: str, fields: dict[str, Any], properties: dict[str, Any]) -> Entity:
        now = self.now()
        entity = Entity(collection, str(uuid.uuid4()), fields, properties, now, next(self._seq), now)
        kind = DURATION_OF.get(collection)
        if kind and self._failures[kind]:
            entity.failure = self._failures[kind].popleft()
        self._entities[collection][entity.id] = entity
        return entity

    def _schedule(self, entity: Entity, *, queued: bool) -> None:
        """Processing starts now (or after a short NotStarted spell when `queued`) and ends after its duration."""
        now = self.now()
        seconds = self.durations.get(DURATION_OF.get(entity.collection, ""), 0.0)
        entity.running_at = now + timedelta(seconds=seconds / 4 if queued else 0)
        entity.done_at = now + timedelta(seconds=seconds)
        entity.last_action = now

    def _created(self, entity: Entity) -> Response:
        return Response(201, self._render(entity), {"Location": self._self(entity)})

    def _base_model_for(self, ref: Any, locale: str) -> Entity:
        if ref is None:
            candidates = [m for m in self._base() if m.fields["locale"] == locale]
            if not candidates:
                raise invalid(f"No base model exists for locale {locale}.", "InvalidBaseModel")
            return max(candidates, key=lambda m: (m.created, m.seq))
        base = self._referenced(ref, (BASE,))
        if base is None:
            raise invalid("baseModel must reference an existing base model (.../models/base/{id}).", "InvalidBaseModel")
        if base.fields["locale"] != locale:
            raise invalid(f"The base model is {base.fields['locale']}, the model {locale}.", "InvalidBaseModel")
        if base.deprecation["adaptationDateTime"] <= self.now():
            when = iso(base.deprecation["adaptationDateTime"])
            raise invalid(f"The base model can no longer be adapted (since {when}).", "ModelDeprecated")
        return base

    def _training_datasets(self, refs: Any, locale: str, base: Entity) -> list[Entity]:
        if not isinstance(refs, list) or not refs:
            raise invalid("A model needs at least one dataset in 'datasets'.", "InvalidDataset")
        datasets = [self._referenced(ref, ("datasets",)) for ref in refs]
        for ref, dataset in zip(refs, datasets, strict=True):
            if dataset is None:
                raise invalid(f"The dataset {ref!r} does not exist.", "InvalidDataset")
            status, kind = dataset.status(self.now()), dataset.fields["kind"]
            if status == "Failed":
                raise invalid(f"The dataset {dataset.id} failed; it cannot be used.", "FailedDataset")
            if status != "Succeeded":
                raise invalid(f"The dataset {dataset.id} is {status}, not Succeeded.", "InvalidDataset")
            if dataset.fields["locale"] != locale:
                raise invalid(f"The dataset {dataset.id} is not {locale}.", "InvalidDataset")
            if kind not in base.properties["features"]["supportsAdaptationsWith"]:
                raise invalid(f"The base model cannot be adapted with {kind} data.", "InvalidAdaptationMapping")
        return [d for d in datasets if d is not None]

    def _usable_model(self, ref: Any, locale: str) -> Entity:
        """A model an endpoint or evaluation may use: exists, same locale, Succeeded, not past transcription."""
        model = self._referenced(ref, ("models", BASE))
        if model is None:
            raise invalid(f"The model {ref!r} does not exist.", "InvalidModel")
        if model.fields["locale"] != locale:
            raise invalid(f"The model is {model.fields['locale']}, not {locale}.", "InvalidModel")
        status = model.status(self.now())
        if status == "Failed":
            raise invalid(f"The model {model.id} failed to train.", "DeployingFailedModel")
        if status != "Succeeded":
            raise invalid(f"The model {model.id} is {status}, not Succeeded.", "InvalidModel")
        if model.deprecation["transcriptionDateTime"] <= self.now():
            when = iso(model.deprecation["transcriptionDateTime"])
            raise invalid(f"The model expired for transcription on {when}.", "ModelDeprecated")
        return model

    # API handlers

    def _locales(self, req: Request, coll: str) -> Response:
        if coll == "datasets":
            return Response(200, self._dataset_locales())
        return Response(200, sorted({m.fields["locale"] for m in self._base()}))

    def _list(self, req: Request, coll: str) -> Response:
        """Newest first; only the page is rendered. An index narrows an equality filter's candidates; whatever it
        cannot answer is checked entity by entity (local/emulator_store.py)."""
        skip, top = _int_query(req, "skip", 0), min(_int_query(req, "top", self.page_size), self.page_size)
        if skip < 0 or top < 1:
            raise invalid("skip must be >= 0 and top >= 1.", "UnsupportedPagination")
        entities = self._entities[coll]
        expression = req.query.get("filter", "").strip()
        candidates, match = entities.ordered, None
        if expression:
            try:
                node = odata.parse(expression, FILTER_PROPERTIES[coll])
            except odata.FilterError as exc:
                raise invalid(f"The filter is not supported: {exc}.", "UnsupportedFilter") from None
            now = self.now()
            match = odata.compile_predicate(node, lambda entity, name: _filter_value(entity, name, now))
            terms = [(name, value) for name, value in odata.equalities(node) if name in entities.indexed]
            if terms:
                candidates = min((entities.bucket(name, value) for name, value in terms), key=len)
                if isinstance(node, odata.Comparison):  # the index answered it exactly
                    match = None
        items, more = self._pager.page(candidates, skip, top, match, listing=(coll, expression))
        page: dict[str, Any] = {"values": [self._render(e) for e in items]}
        if more:
            query = {"skip": skip + top, "top": top, **({"filter": expression} if expression else {})}
            page["@nextLink"] = f"{self.url}/speechtotext/{coll}?{urlencode({**query, 'api-version': API_VERSION})}"
        return Response(200, page)

    def _get(self, req: Request, coll: str, id: str) -> Response:
        return Response(200, self._render(self._entity(coll, id)))

    def _delete(self, req: Request, coll: str, id: str) -> Response:
        entity = self._entities[coll].get(id)
        if entity is None:
            if coll in ("endpoints", "webhooks"):  # the spec: only these answer 404; the others "did not exist"
                self._entity(coll, id)
            return Response(204)
        if coll == "models":
            self._check_not_deployed(entity)
        del self._entities[coll][id]
        return Response(204)

    def _check_not_deployed(self, model: Entity) -> None:
        for endpoint in self._entities["endpoints"].values():
            if self._referenced(endpoint.fields.get("model"), ("models",)) is model:
                raise invalid(
                    f"The model is deployed to endpoint {endpoint.id}; repoint or delete it first.", "InUseViolation"
                )

    def _patch(self, req: Request, coll: str, id: str) -> Response:
        entity = self._entity(coll, id)
        body = _object_body(req)
        if "displayName" in body:
            _require(body, "displayName")
        _check_custom_properties(body.get("customProperties"))
        if coll == "endpoints":
            self._patch_endpoint(entity, body)
        names = PATCHABLE + (("webUrl", "events") if coll == "webhooks" else ())
        entity.fields.update({name: body[name] for name in names if name in body})
        self._entities[coll].reindex(entity)
        entity.last_action = max(entity.last_action, self.now())
        return Response(200, self._render(entity))

    def _patch_endpoint(self, endpoint: Entity, body: dict[str, Any]) -> None:
        if "model" in body:
            model = self._usable_model(body["model"], endpoint.fields["locale"])
            endpoint.fields["model"] = self._ref(model)
            endpoint.failure = None
            self._schedule(endpoint, queued=False)
        logging_enabled = (body.get("properties") or {}).get("contentLoggingEnabled")
        if isinstance(logging_enabled, bool):
            endpoint.properties["loggingEnabled"] = logging_enabled

    def _create(self, req: Request, coll: str) -> Response:
        """Checks shared by every kind, then the kind's own `_create_<collection>`."""
        body = _object_body(req)
        _require(body, "displayName", *REQUIRED[coll])
        _check_custom_properties(body.get("customProperties"))
        return getattr(self, f"_create_{coll}")(body)

    def _create_datasets(self, req: Request) -> Response:
        body = _object_body(req)
        _require(body, "displayName", *REQUIRED["datasets"])
        _check_custom_properties(body.get("customProperties"))
        kind, locale, url = body["kind"], body["locale"], body.get("contentUrl")
        if kind not in KINDS:
            raise invalid(f"Unknown dataset kind '{kind}'; known: {', '.join(KINDS)}.")
        with self._lock:
            supported = self._dataset_locales()[kind]
        if locale not in supported:
            raise invalid(f"{kind} datasets are not supported for locale {locale}.", "InvalidLocale")
        if url is not None and not _is_http_url(url):
            raise invalid("contentUrl must be an absolute http(s) URL.")
        verdict = self._import(url, kind) if url is not None else None
        fields = {name: body[name] for name in (*SHARED_FIELDS, "kind") if name in body}
        if url is not None:
            fields["contentUrl"] = redact(url)
        normalization = (body.get("properties") or {}).get("textNormalizationKind", "Default")
        with self._lock:
            dataset = self._add("datasets", fields, {"textNormalizationKind": normalization})
            if verdict:
                self._finish_import(dataset, verdict, queued=True)
            return self._created(dataset)

    def _finish_import(self, dataset: Entity, verdict: Verdict, *, queued: bool) -> None:
        dataset.failure = dataset.failure or verdict.error
        dataset.results = verdict.results
        self._schedule(dataset, queued=queued)

    def _import(self, url: str, kind: str) -> Verdict:
        """Download `url` to a temporary file in chunks, check it, delete it; record the download."""
        record: dict[str, Any] = {"url": redact(url), "status": None, "bytes": 0, "error": None}
        handle, path = tempfile.mkstemp(prefix="speech-emulator-", suffix=".zip")
        try:
            with os.fdopen(handle, "wb") as out:
                error = download(url, out, record)
            return Verdict(error=error) if error else check_archive(path, kind)
        finally:
            os.unlink(path)
            with self._lock:
                self.downloads.append(record)

    def _create_models(self, body: dict[str, Any]) -> Response:
        base = self._base_model_for(body.get("baseModel"), body["locale"])
        datasets = self._training_datasets(body.get("datasets"), body["locale"], base)
        fields = {name: body[name] for name in SHARED_FIELDS if name in body}
        fields.update(baseModel=self._ref(base), datasets=[self._ref(d) for d in datasets])
        model = self._add("models", fields, {"features": dict(SHARED_FEATURES)})
        self.qualities.created(model.id)
        model.deprecation = deprecation_dates(model.created, base_model=False)
        self._schedule(model, queued=True)
        return self._created(model)

    def _create_endpoints(self, body: dict[str, Any]) -> Response:
        model = self._usable_model(body["model"], body["locale"])
        if len(self._entities["endpoints"]) >= self.max_endpoints:
            raise ApiError(
                403, f"The resource already has {self.max_endpoints} endpoints, the maximum.", "QuotaViolation"
            )
        fields = {name: body[name] for name in SHARED_FIELDS if name in body}
        fields["model"] = self._ref(model)
        logging_enabled = bool((body.get("properties") or {}).get("loggingEnabled", False))
        endpoint = self._add("endpoints", fields, {"loggingEnabled": logging_enabled})
        self._schedule(endpoint, queued=True)
        return self._created(endpoint)

    # evaluations (local/evaluations.py: the word error rates and the body check)

    def _create_evaluations(self, body: dict[str, Any]) -> Response:
        try:
            quality.check_body(body)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        models = [self._usable_model(body[name], body["locale"]) for name in ("model1", "model2")]
        dataset = self._referenced(body["dataset"], ("datasets",))
        if dataset is None or dataset.fields["kind"] != "Acoustic" or dataset.status(self.now()) != "Succeeded":
            raise invalid("'dataset' must reference a Succeeded Acoustic dataset.", "InvalidDataset")
        if dataset.fields["locale"] != body["locale"]:
            raise invalid(f"The dataset is {dataset.fields['locale']}, not {body['locale']}.", "InvalidDataset")
        fields = {name: body[name] for name in SHARED_FIELDS if name in body}
        fields.update(model1=self._ref(models[0]), model2=self._ref(models[1]), dataset=self._ref(dataset))
        evaluation = self._add("evaluations", fields, dict(quality.NOT_YET))
        wer1, wer2 = (self._word_error_rate(model) for model in models)
        evaluation.results = quality.metrics(wer1, wer2, dataset.results.get("acceptedLineCount", 1))
        self._schedule(evaluation, queued=True)
        return self._created(evaluation)

    def _word_error_rate(self, model: Entity) -> float:
        if model.collection == BASE:
            return self.qualities.of_base(model.id)
        base = self._referenced(model.fields.get("baseModel"), (BASE,))
        return self.qualities.of_model(model.id, base.id if base else None, len(model.fields.get("datasets") or ()))

    def _create_webhooks(self, body: dict[str, Any]) -> Response:
        if not _is_http_url(body["webUrl"]):
            raise invalid("webUrl must be an absolute http(s) URL.", "InvalidCallbackUri")
        if not any(value is True for value in body["events"].values()):
            raise invalid("'events' must enable at least one event.", "InvalidWebHookEventKind")
        names = ("displayName", "description", "customProperties", "webUrl", "events")
        webhook = self._add(
            "webhooks", {name: body[name] for name in names if name in body}, {"apiVersion": API_VERSION}
        )
        self._schedule(webhook, queued=False)
        return self._created(webhook)

    # dataset blocks

    def _awaiting_blocks(self, dataset_id: str) -> Entity:
        dataset = self._entity("datasets", dataset_id)
        if "contentUrl" in dataset.fields or dataset.running_at is not None:
            raise invalid(
                "The dataset does not accept blocks (it has a contentUrl or is committed).", "InvalidPrerequisite"
            )
        return dataset

    def _get_blocks(self, req: Request, id: str) -> Response:
        dataset = self._entity("datasets", id)
        committed = [{"name": name, "size": size} for name, size in dataset.committed]
        uncommitted = [{"name": name, "size": len(data)} for name, data in dataset.blocks.items()]
        return Response(200, {"committedBlocks": committed, "uncommittedBlocks": uncommitted})

    def _put_block(self, req: Request, id: str) -> Response:
        dataset = self._awaiting_blocks(id)
        block_id = req.query.get("blockid")
        if not block_id:
            raise invalid("The blockid query parameter is required.")
        _check_block_id(block_id, dataset)
        if len(req.body) > MAX_BLOCK_BYTES:
            raise ApiError(
                413, f"A block holds at most {MAX_BLOCK_BYTES} bytes, not {len(req.body)}.", "InvalidPayload"
            )
        dataset.blocks[block_id] = req.body
        return Response(201)

    def _commit_blocks(self, req: Request, id: str) -> Response:
        dataset = self._awaiting_blocks(id)
        entries = req.json
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise invalid("The body must be a non-empty list of {kind, id} block entries.")
        kinds = {e.get("kind", "Latest") for e in entries}
        if not kinds <= set(BLOCK_KINDS):
            raise invalid(f"Block kinds are {', '.join(BLOCK_KINDS)}, not {sorted(kinds - set(BLOCK_KINDS))}.")
        # Nothing is committed before the one commit (a committed dataset takes no more blocks): every entry,
        # Latest or Uncommitted, names an uploaded block; a Committed one cannot exist yet.
        unknown = [e.get("id") for e in entries if e.get("kind") == "Committed" or e.get("id") not in dataset.blocks]
        if unknown:
            raise invalid(f"Block(s) never uploaded: {unknown[:5]}.")
        handle, path = tempfile.mkstemp(prefix="speech-emulator-", suffix=".zip")
        try:
            with os.fdopen(handle, "wb") as out:
                for entry in entries:
                    out.write(dataset.blocks[entry["id"]])
            verdict = check_archive(path, dataset.fields["kind"])
        finally:
            os.unlink(path)
        dataset.committed = [(e["id"], len(dataset.blocks[e["id"]])) for e in entries]
        dataset.blocks = {}
        self._finish_import(dataset, verdict, queued=False)
        return Response(200)

    # model copy: AuthorizeCopy on the target; Copy on the source hands the model over (HTTP); its operation

    def _authorize_copy(self, req: Request) -> Response:
        body = _object_body(req)
        _require(body, "sourceResourceId")
        now = self.now()
        authorization = {
            "targetResourceRegion": self.region,
            "targetResourceId": self.resource_id,
            "targetResourceEndpoint": self.url,
            "sourceResourceId": body["sourceResourceId"],
            "expirationDateTime": iso(now + timedelta(hours=COPY_AUTHORIZATION_HOURS)),
            "id": str(uuid.uuid4()),
        }
        self._copy_authorizations[authorization["id"]] = authorization
        return Response(200, dict(authorization))

    def _copy_model(self, req: Request, id: str) -> Response:
        body = _object_body(req)
        _require(body, "id", "sourceResourceId", "targetResourceEndpoint", "targetResourceId", "targetResourceRegion")
        with self._lock:
            model = self._entity("models", id)
            if model.status(self.now()) != "Succeeded":
                raise invalid(f"The model {id} is {model.status(self.now())}; only Succeeded models can be copied.")
            if body["sourceResourceId"] != self.resource_id:
                raise ApiError(
                    403,
                    "The copy authorization was issued for another source resource.",
                    "InvalidSourceAzureResourceId",
                )
            payload = {
                "authorization": body["id"],
                "sourceResourceId": self.resource_id,
                "model": {
                    name: model.fields[name]
                    for name in ("displayName", "description", "locale", "baseModel")
                    if name in model.fields
                },
                "features": model.properties.get("features", {}),
                "deprecationDates": {name: iso(moment) for name, moment in model.deprecation.items()},
            }
        link, failure = _deliver_copy(body["targetResourceEndpoint"], payload)  # outside the lock: HTTP
        with self._lock:
            now = self.now()
            operation = CopyOperation(str(uuid.uuid4()), now, result=link, failure=failure)
            seconds = self.durations["model"]
            operation.running_at = now + timedelta(seconds=seconds / 4)
            operation.done_at = now + timedelta(seconds=seconds)
            self._copy_operations[operation.id] = operation
            location = self._uri(f"operations/models/copy/{operation.id}")
            return Response(202, self._render_operation(operation), {"Operation-Location": location})

    def _get_copy_operation(self, req: Request, id: str) -> Response:
        operation = self._copy_operations.get(id)
        if operation is None:
            raise ApiError(404, f"The operation {id} does not exist.", code="NotFound")
        return Response(200, self._render_operation(operation))

    def _render_operation(self, operation: CopyOperation) -> dict[str, Any]:
        now = self.now()
        status = operation.status(now)
        out: dict[str, Any] = {
            "id": operation.id,
            "self": self._uri(f"operations/models/copy/{operation.id}"),
            "createdDateTime": iso(operation.created),
            "lastActionDateTime": iso(
                max(
                    m
                    for m in (operation.created, operation.running_at, operation.done_at)
                    if m is not None and m <= now
                )
            ),
            "status": status,
        }
        if status == "Succeeded" and operation.result:
            out["result"] = {"link": operation.result}
        if status == "Failed" and operation.failure:
            out["error"] = dict(operation.failure)
        return out

    def _receive_copy(self, req: Request) -> Response:
        """Target side of a copy: the authorization id is the credential (the source knows no key of ours)."""
        body = req.json if isinstance(req.json, dict) else {}
        with self._lock:
            authorization = self._copy_authorizations.get(str(body.get("authorization")))
            if authorization is None or as_utc(authorization["expirationDateTime"]) <= self.now():
                raise ApiError(403, "The copy authorization is unknown or expired.", "ModelCopyAuthorizationExpired")
            if authorization["sourceResourceId"] != body.get("sourceResourceId"):
                raise ApiError(
                    403,
                    "The copy authorization was issued for another source resource.",
                    "InvalidSourceAzureResourceId",
                )
            fields = dict(body.get("model") or {})
            base = fields.pop("baseModel", None)
            if isinstance(base, dict) and base.get("self"):  # the same base model id, as this resource names it
                fields["baseModel"] = {"self": self._uri(f"{BASE}/{urlsplit(base['self']).path.rsplit('/', 1)[-1]}")}
            model = self._add("models", fields, {"features": dict(body.get("features") or SHARED_FEATURES)})
            model.deprecation = {name: as_utc(v) for name, v in (body.get("deprecationDates") or {}).items()}
            if not model.deprecation:
                model.deprecation = deprecation_dates(model.created, base_model=False)
            self._schedule(model, queued=True)
            return Response(201, {"self": self._self(model)})

    # control over HTTP

    def _control(self, req: Request) -> Response:
        action = (req.method, req.path.removeprefix("/_emulator/"))
        body = req.json if isinstance(req.json, dict) else {}
        try:
            if action == ("GET", "state"):
                return Response(200, self.state())
            if action == ("POST", "clock"):
                if "now" in body:
                    self.set_now(body["now"])
                else:
                    self.advance(float(body["advance_seconds"]))
                return Response(200, {"now": iso(self.now())})
            if action == ("POST", "faults"):
                self.inject(**body)
                return Response(201, {"pendingFaults": self.state()["pendingFaults"]})
            if action == ("DELETE", "faults"):
                self.clear_faults()
                return Response(204)
            if action == ("POST", "base-models"):
                return Response(201, self.add_base_model(**body))
            if action[0] == "DELETE" and action[1].startswith("base-models/"):
                self.remove_base_model(action[1].removeprefix("base-models/"))
                return Response(204)
            if action == ("POST", "fail-next"):
                self.fail_next(body.pop("type"), **body)
                return Response(204)
            if action == ("POST", "network"):
                self.shape(latency=body.get("latency"), bandwidth=body.get("bandwidth"))
                return Response(200, {"latency": self.latency, "bandwidth": self.bandwidth})
            if action == ("POST", "quality"):
                if "next" in body:
                    self.set_next_quality(body["next"])
                else:
                    self.set_quality(body["model"], body["wer"])
                return Response(204)
            if action == ("POST", "durations"):
                self.set_durations(**body)
                return Response(200, dict(self.durations))
            if action == ("POST", "seed"):
                return Response(201, {"ids": self.seed(body["collection"], body["items"])})
            if action == ("POST", "reset"):
                self.reset()
                return Response(204)
        except (TypeError, ValueError, KeyError) as exc:
            raise invalid(f"Bad control request: {exc!r}.") from None
        raise ApiError(404, f"No control operation {req.method} {req.path}.", code="NotFound")


def _filter_value(entity: Entity, name: str, now: datetime) -> Any:
    """A `filter` property's value as the API shows it (a string, or an aware datetime)."""
    if name == "status":
        return entity.status(now)
    if name == "createdDateTime":
        return entity.created
    if name == "lastActionDateTime":
        return entity.last_action_at(now)
    return entity.fields.get(name)


# -- request body helpers ----------------------------------------------------------------------------------------


def _object_body(req: Request) -> dict[str, Any]:
    if not req.body:
        raise ApiError(400, "The request body is empty.", "EmptyRequest")
    if not isinstance(req.json, dict):
        raise ApiError(400, "The request body must be a JSON object.", "InvalidRequestBodyFormat")
    return req.json


def _require(body: dict[str, Any], *names: str) -> None:
    """Each of `names` present: a non-empty string, or an object for references and web hook events."""
    for name in names:
        value = body.get(name)
        wanted, noun = (dict, "object") if name in OBJECT_FIELDS else (str, "string")
        if not isinstance(value, wanted) or not value:
            raise invalid(f"'{name}' is required and must be a non-empty {noun}.")


def _check_custom_properties(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid("customProperties must be an object of string values.")
    if len(value) > MAX_CUSTOM_PROPERTIES:
        raise invalid(f"customProperties holds {len(value)} entries; at most {MAX_CUSTOM_PROPERTIES} are allowed.")
    for key, text in value.items():
        if len(key) > MAX_PROPERTY_KEY or len(text) > MAX_PROPERTY_VALUE:
            raise invalid(
                f"customProperties '{key[:20]}': keys hold at most {MAX_PROPERTY_KEY} characters, "
                f"values at most {MAX_PROPERTY_VALUE}."
            )


def _is_http_url(value: Any) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return bool(parts and parts.scheme in ("http", "https") and parts.netloc)


def _int_query(req: Request, name: str, default: int) -> int:
    text = req.query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise invalid(f"The {name} query parameter must be an integer.", "UnsupportedPagination") from None


# -- HTTP plumbing -----------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms delayed-ACK wait per answer
    server: _Server

    def _serve(self) -> None:
        emulator = self.server.emulator
        shaped = not self.path.startswith("/_emulator/")
        length = int(self.headers.get("Content-Length") or 0)
        body = _read_body(self.rfile, length, emulator.bandwidth if shaped else None)
        if len(body) < length:  # the client went away mid-body (killed): nothing is stored, nobody to answer
            self.close_connection = True
            return
        if shaped and emulator.latency:
            time.sleep(emulator.latency)
        response = emulator.handle(self.command, self.path, dict(self.headers.items()), body)
        if response.body is None:
            payload, content_type = b"", None
        elif isinstance(response.body, str):
            payload, content_type = response.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(response.body).encode(), "application/json; charset=utf-8"
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a read timeout): like the service
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # quiet: emulator.requests is the log
        return


def _read_body(rfile: Any, length: int, bandwidth: float | None) -> bytes:
    """The request body; with a bandwidth cap, read in chunks no faster than `bandwidth` bytes per second (the
    sender's TCP window fills up and its writes wait, as on a slow link)."""
    if not length:
        return b""
    if not bandwidth:
        return rfile.read(length)
    body = bytearray()
    started = time.monotonic()
    while len(body) < length:
        chunk = rfile.read(min(CHUNK_BYTES, length - len(body)))
        if not chunk:
            break
        body += chunk
        ahead = len(body) / bandwidth - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    return bytes(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: SpeechEmulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Speech to text API emulator until Ctrl-C or SIGTERM.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--key", default="emulator-key")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--fast", action="store_true", help="finish processing in fractions of a second")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API answer")
    parser.add_argument("--bandwidth-mib", type=float, default=0.0, help="per-connection cap on request bodies")
    parser.add_argument("--resource-id", help="this resource's Azure resource id (model copy)")
    parser.add_argument("--region", default="emulatorregion")
    parser.add_argument(
        "--rate-limit", metavar="REQUESTS/SECONDS", help="enforce the service's rate limit, e.g. 100/10 (429 beyond)"
    )
    args = parser.parse_args(argv)
    durations = FAST_DURATIONS if args.fast else None
    rate_limit = None
    if args.rate_limit:
        requests, _, seconds = args.rate_limit.partition("/")
        rate_limit = (int(requests), float(seconds or 10))
    emulator = SpeechEmulator(
        host=args.host,
        port=args.port,
        key=args.key,
        page_size=args.page_size,
        durations=durations,
        resource_id=args.resource_id,
        region=args.region,
        latency=args.latency_ms / 1000,
        bandwidth=args.bandwidth_mib * 1024 * 1024,
        rate_limit=rate_limit,
    ).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"Speech emulator on {emulator.url} (api-version {API_VERSION})", flush=True)
    print(f"SPEECH_ENDPOINT={emulator.url}", flush=True)
    print(f"SPEECH_KEY={emulator.key}", flush=True)
    print(f"SPEECH_RESOURCE_ID={emulator.resource_id}", flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()


if __name__ == "__main__":
    main()
