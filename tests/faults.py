"""Fault injection and the invariants of the reliability suite (tests/test_reliability.py, issue #13).

Faults are injected at the app's edges, never inside the app or the emulator:

- Speech: `FaultSession`, a requests.Session given to the app's SpeechClient through shared.context.CLIENT_OPTIONS.
  Its rules answer instead of the service (429 with any Retry-After), lose the answer after the service acted
  (read timeout, connection reset, a body cut short), rewrite what the service answered (a model without its
  dates, a naive timestamp, an @nextLink loop, a dataset that never leaves NotStarted), or run something first.
- Storage: `StorageFaults`, a patch of azure-core's RequestsTransport.send, which every storage client of the app
  uses (the blob trigger's BlobClient included): error answers, exceptions, a hook before a call, a rewritten
  `Date`. Only calls made by a function invocation are touched (the test rig's own queue reads never are); the
  SDK's retry sleeps are recorded, not slept.

`World` is one case's environment: Azurite, the emulator on a frozen clock, the functions run through the worker
(local.runtime), a webhook that records what it receives, and every log record at DEBUG. `check` holds every
invariant in one place; each case calls it once and its outcome joins RESULTS, the table the suite prints.
"""

from __future__ import annotations

import collections
import io
import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, unquote, urlsplit

import requests
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.core.pipeline.transport._requests_basic import RequestsTransportResponse, _is_rest
from requests.structures import CaseInsensitiveDict

from shared import managed
from shared.logs import SDK_LOGGERS
from shared.speech import entity_id

START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SETTLE = timedelta(minutes=1)  # the emulator finishes anything (FAST durations are seconds) within this
MAX_ROUNDS = 8  # convergence rounds: a reconcile, deploys, an expiry pass each


# -- Speech faults: a fault-injecting requests.Session -------------------------------------------------------------


@dataclass
class Call:
    method: str
    url: str
    kwargs: dict

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def body(self) -> Any:
        return self.kwargs.get("json")


Action = Callable[["FaultSession", Call], requests.Response]


@dataclass
class Rule:
    action: Action
    method: str | None = None
    path: str | None = None  # a fragment of the URL path
    count: int = 1  # how many matching calls it takes; -1: every one
    when: Callable[[Call], bool] | None = None
    hits: int = 0

    def matches(self, call: Call) -> bool:
        return (
            (self.method is None or self.method == call.method)
            and (self.path is None or self.path in call.path)
            and (self.when is None or self.when(call))
        )


def response(
    status: int, body: Any = None, headers: Mapping[str, str] | None = None, url: str = ""
) -> requests.Response:
    """A response as requests builds it."""
    resp = requests.Response()
    resp.status_code = status
    resp.reason = {200: "OK", 201: "Created", 429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "")
    resp.headers = CaseInsensitiveDict(headers or {})
    if body is not None:
        resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        resp.headers.setdefault("Content-Type", "application/json")
    else:
        resp._content = b""
    resp.encoding = "utf-8"
    resp.url = url
    return resp


class FaultSession(requests.Session):
    """A requests.Session that applies the first matching rule to each Speech call."""

    def __init__(self) -> None:
        super().__init__()
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def add(self, action: Action, **match: Any) -> Rule:
        rule = Rule(action, **match)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def request(self, method, url, **kwargs):  # noqa: D401 - requests' signature
        call = Call(method.upper(), url, kwargs)
        with self._lock:
            self.calls.append(call)
            rule = next((r for r in self.rules if r.matches(call)), None)
            if rule is not None:
                rule.hits += 1
                if rule.count > 0 and rule.hits >= rule.count:
                    self.rules.remove(rule)
        if rule is None:
            return self.send_through(call)
        return rule.action(self, call)

    def send_through(self, call: Call) -> requests.Response:
        return super().request(call.method, call.url, **call.kwargs)


# Actions


def answer(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Action:
    """The session answers instead of the service (nothing reaches it)."""
    return lambda session, call: response(status, body, headers, call.url)


def refuse(exc: Exception) -> Action:
    """The call fails before it is sent (connection refused or reset while connecting)."""

    def act(session: FaultSession, call: Call) -> requests.Response:
        raise exc

    return act


def lose_answer(exc: Exception) -> Action:
    """The service gets the call and acts on it; its answer is lost (read timeout, reset, body cut short)."""

    def act(session: FaultSession, call: Call) -> requests.Response:
        session.send_through(call)
        raise exc

    return act


def cut_body(session: FaultSession, call: Call) -> requests.Response:
    """The service acts and answers; the body arrives cut in half (not JSON any more)."""
    resp = session.send_through(call)
    resp._content = resp.content[: max(1, len(resp.content) // 2)]
    return resp


def rewrite(change: Callable[[Any], Any]) -> Action:
    """The service's JSON answer, changed by `change` (which may edit it in place and return None)."""

    def act(session: FaultSession, call: Call) -> requests.Response:
        resp = session.send_through(call)
        if resp.status_code < 400 and resp.content:
            body = resp.json()
            changed = change(body)
            resp._content = json.dumps(body if changed is None else changed).encode()
        return resp

    return act


def first(hook: Callable[[Call], None]) -> Action:
    """Run `hook` (something happening meanwhile elsewhere), then send the call."""

    def act(session: FaultSession, call: Call) -> requests.Response:
        hook(call)
        return session.send_through(call)

    return act


def entities(body: Any) -> list[dict]:
    """The entities of a list page or a single entity answer."""
    if isinstance(body, dict) and isinstance(body.get("values"), list):
        return [e for e in body["values"] if isinstance(e, dict)]
    return [body] if isinstance(body, dict) and "self" in body else []


def without_dates(body: Any) -> None:
    """Models without deprecationDates (the service gives no transcriptionDateTime)."""
    for entity in entities(body):
        (entity.get("properties") or {}).pop("deprecationDates", None)


def naive_times(body: Any) -> None:
    """Every ...DateTime of the answer without its offset (`2026-03-01T06:00:00`)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (v.rstrip("Z") if k.endswith("DateTime") and isinstance(v, str) else strip(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    for entity in entities(body):
        entity.update(strip(entity))


# -- Storage faults: azure-core's transport, patched ---------------------------------------------------------------


@dataclass
class StorageRule:
    action: Callable[[Callable[[], Any], Any], Any]  # (send, request) -> transport response
    method: str | None = None
    url: str | None = None  # a fragment of the URL (path and query)
    header: tuple[str, str] | None = None  # a request header that must have this value
    count: int = 1
    app_only: bool = True  # only calls made by a function invocation
    hits: int = 0

    def matches(self, request: Any, in_app: bool) -> bool:
        if self.app_only and not in_app:
            return False
        if self.method and request.method != self.method:
            return False
        if self.url and self.url not in unquote(request.url):
            return False
        if self.header and request.headers.get(self.header[0]) != self.header[1]:
            return False
        return True


def storage_error(status: int, code: str) -> Callable[[Callable[[], Any], Any], Any]:
    """The storage service answers with an error (never reached)."""

    def act(send: Callable[[], Any], request: Any) -> Any:
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
            f"<Message>Injected fault: {code}.</Message></Error>"
        ).encode()
        headers = {
            "x-ms-error-code": code,
            "Content-Type": "application/xml",
            "Date": format_datetime(datetime.now(UTC), usegmt=True),
        }
        answer = response(status, body, headers, request.url)
        answer.raw = io.BytesIO(body)  # what a streamed read and close() reach
        if _is_rest(request):  # as the transport answers a request sent with send_request (the zips' listing)
            from azure.core.rest._requests_basic import RestRequestsTransportResponse

            return RestRequestsTransportResponse(request=request, internal_response=answer)
        return RequestsTransportResponse(request, answer)

    return act


def storage_raise(exc: BaseException) -> Callable[[Callable[[], Any], Any], Any]:
    """The call fails with `exc`, whatever it is (not only the SDK's own errors)."""

    def act(send: Callable[[], Any], request: Any) -> Any:
        raise exc

    return act


def storage_hook(hook: Callable[[Any], None]) -> Callable[[Callable[[], Any], Any], Any]:
    def act(send: Callable[[], Any], request: Any) -> Any:
        hook(request)
        return send()

    return act


def storage_clock(shift: timedelta) -> Callable[[Callable[[], Any], Any], Any]:
    """The storage service's clock (the `Date` of its answers) `shift` later than Azurite's."""

    def act(send: Callable[[], Any], request: Any) -> Any:
        resp = send()
        date = resp.headers.get("Date")
        if date:
            resp.headers["Date"] = format_datetime(parsedate_to_datetime(date) + shift, usegmt=True)
        return resp

    return act


class StorageFaults:
    def __init__(self, in_app: Callable[[], bool]) -> None:
        self.rules: list[StorageRule] = []
        self.sleeps: list[float] = []
        self.in_app = in_app
        self._lock = threading.Lock()

    def add(self, action, **match: Any) -> StorageRule:
        rule = StorageRule(action, **match)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def install(self, monkeypatch) -> None:
        original = RequestsTransport.send
        faults = self

        def send(transport, request, **kwargs):
            with faults._lock:
                rule = next((r for r in faults.rules if r.matches(request, faults.in_app())), None)
                if rule is not None:
                    rule.hits += 1
                    if rule.count > 0 and rule.hits >= rule.count:
                        faults.rules.remove(rule)
            if rule is None:
                return original(transport, request, **kwargs)
            return rule.action(lambda: original(transport, request, **kwargs), request)

        monkeypatch.setattr(RequestsTransport, "send", send)
        # the retry policies ask the transport to sleep (the clients' TransportWrapper inherits the base's sleep)
        monkeypatch.setattr(HttpTransport, "sleep", lambda transport, seconds: faults.sleeps.append(seconds))


# -- a webhook that records what it receives -----------------------------------------------------------------------


class Webhook:
    """An alert webhook (Teams Workflows-like URL, a secret in its path and query) that records each POST."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    hook.received.append({"path": self.path, "body": json.loads(self.rfile.read(length) or b"{}")})
                except ValueError:
                    hook.received.append({"path": self.path, "body": None})
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()

    def url(self) -> str:
        """A fresh secret URL: the workflow id in the path, the signature in the query."""
        port = self.server.server_address[1]
        workflow, sig = secrets.token_hex(16), secrets.token_urlsafe(24)
        return (
            f"http://127.0.0.1:{port}/workflows/{workflow}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"
        )

    def alert_ids(self, url: str) -> collections.Counter:
        path = urlsplit(url).path
        return collections.Counter(
            (r["body"] or {}).get("alert", {}).get("id") for r in self.received if r["path"].startswith(path)
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- every log record, at every level -----------------------------------------------------------------------------


class Records(logging.Handler):
    """Every record reaching the root logger, as a handler would format it (message and exception text)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call is still scanned as given
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += "\n" + (record.exc_text or self._formatter.formatException(record.exc_info))
        self.texts.append(f"{record.name} {logging.getLevelName(record.levelno)} {text}")


# -- the outcome of each case -------------------------------------------------------------------------------------


@dataclass
class Result:
    case: str
    handled: bool
    zips_lost: int = 0
    duplicates: int = 0
    secrets_leaked: int = 0
    alerts_lost: int = 0
    problems: list[str] = field(default_factory=list)


RESULTS: list[Result] = []


def summary_lines(results: Sequence[Result]) -> list[str]:
    columns = ("cases", "handled", "zips lost", "duplicates", "secrets leaked", "alerts lost")
    values = (
        len(results),
        sum(r.handled for r in results),
        sum(r.zips_lost for r in results),
        sum(r.duplicates for r in results),
        sum(r.secrets_leaked for r in results),
        sum(r.alerts_lost for r in results),
    )
    widths = [max(len(c), len(str(v))) for c, v in zip(columns, values, strict=True)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        "| " + " | ".join(str(v).rjust(w) for v, w in zip(values, widths, strict=True)) + " |",
    ]
    failed = [r for r in results if not r.handled]
    for result in failed:
        lines.append(f"not handled: {result.case}: {'; '.join(result.problems) or 'its expected outcome failed'}")
    return lines


# -- a case's world ------------------------------------------------------------------------------------------------


@dataclass
class ZipRecord:
    data: bytes
    metadata: dict[str, str]
    tags: dict[str, str]
    valid: bool


@dataclass(frozen=True)
class Expect:
    """An alert the case implies: its kind and a fragment of its resource."""

    kind: str
    resource: str = ""
    severity: str | None = None


class World:
    def __init__(self, name, runtime, container, emulator, env, webhook, records, session, storage, sas_urls):
        self.name = name
        self.runtime = runtime
        self.container = container
        self.emulator = emulator
        self.env = env
        self.webhook = webhook
        self.records = records
        self.session = session
        self.storage = storage
        self.sas_urls = sas_urls
        self.zips: dict[str, ZipRecord] = {}
        self.delivered: list[dict] = []  # every alert message taken from the alert queue
        self.failures: list[str] = []  # invocation errors (the host logs them)
        self.sleeps: list[float] = []  # the Speech client's retry waits (CLIENT_OPTIONS["sleep"])
        self.checked = False
        runtime.on_invocation = self._seen

    def _seen(self, invocation) -> None:
        if invocation.error is not None:
            self.failures.append(f"{invocation.error}\n{invocation.error.stack_trace}")

    # zips

    @property
    def path_prefix(self) -> str:
        return self.env["TRAINING_CONTAINER"] + "/"

    def drop(self, name: str, data: bytes, *, valid: bool = True, metadata=None, tags=None):
        blob = self.container.get_blob_client(name)
        blob.upload_blob(data, overwrite=True, metadata=dict(metadata or {}))
        if tags:
            blob.set_blob_tags(dict(tags))
        self.zips[name] = ZipRecord(data, dict(metadata or {}), dict(tags or {}), valid)
        return blob

    def user_changed(self, name: str, *, metadata=None, tags=None) -> None:
        """The case changed a zip's user metadata or tags: that is what it must keep."""
        record = self.zips[name]
        if metadata is not None:
            record.metadata = dict(metadata)
        if tags is not None:
            record.tags = dict(tags)

    def forget(self, name: str) -> None:
        """The case deleted the zip itself."""
        self.zips.pop(name, None)

    # the host

    def event(self, name: str):
        return self.runtime.deliver_blob("ingest_zip", name)

    def reconcile(self):
        return self.runtime.fire_timer("reconcile")

    def expiry(self):
        return self.runtime.fire_timer("expiry")

    def deploy(self, body: str, message=None):
        return self.runtime.deliver_message("deploy", body, message)

    def drain_deploys(self) -> int:
        moved = self.runtime.drain(self.env["DEPLOY_QUEUE"], visibility_timeout=0)
        return moved + self.runtime.drain(self.env["DEPLOY_QUEUE"] + "-poison", visibility_timeout=0)

    def settle(self, delta: timedelta = SETTLE) -> None:
        self.emulator.advance(delta)

    def alerts(self) -> list[dict]:
        """Take the alerts delivered since the last call (all of them are kept for the check)."""
        taken = [json.loads(text) for text in self.runtime.take(self.env["ALERT_QUEUE"])]
        self.delivered += taken
        return taken

    def kinds(self) -> list[str]:
        return sorted({a["id"]: a["kind"] for a in self.delivered + self.alerts()}.values())

    def posted(self) -> list[dict]:
        """What this case's webhook URL received."""
        path = urlsplit(self.env["ALERT_WEBHOOK_URL"]).path
        return [r for r in self.webhook.received if r["path"].startswith(path)]

    def speech(self):
        from shared import context

        return context.speech(context.settings())

    def clear_faults(self) -> None:
        self.session.clear()
        self.storage.clear()
        self.emulator.clear_faults()

    def train_and_deploy(self, locale: str = "en-US", name: str = "corpus", data: bytes | None = None) -> dict:
        """A locale served by a model trained on one dropped zip; returns the model as the emulator shows it."""
        from local import samples

        zip_name = f"{locale}/language/{name}.zip"
        self.drop(zip_name, data or samples.language_zip())
        assert self.event(zip_name).ok
        self.settle()
        assert self.reconcile().ok
        self.settle()
        assert self.reconcile().ok  # requests the deployment
        self.drain_deploys()
        self.settle()
        assert self.reconcile().ok  # reports it
        [endpoint] = [e for e in self.emulator.endpoints.values() if e["locale"] == locale]
        return self.emulator.models[entity_id(endpoint["model"]["self"])]

    # convergence

    def _fingerprint(self) -> tuple:
        em = self.emulator
        return (
            tuple(
                sorted(
                    (k, v["status"], json.dumps(v.get("customProperties"), sort_keys=True))
                    for k, v in em.datasets.items()
                )
            ),
            tuple(
                sorted(
                    (k, v["status"], json.dumps(v.get("customProperties"), sort_keys=True))
                    for k, v in em.models.items()
                )
            ),
            tuple(sorted((k, v["status"], v["model"]["self"]) for k, v in em.endpoints.items())),
            tuple(
                sorted(
                    (b.name, json.dumps(b.metadata, sort_keys=True))
                    for b in self.container.list_blobs(include=["metadata"])
                )
            ),
        )

    def converge(self) -> list[str]:
        """The faults clear and the host keeps running its timers and queues until nothing changes any more."""
        self.clear_faults()
        before = None
        for _ in range(MAX_ROUNDS):
            self.reconcile()
            self.settle()
            self.drain_deploys()
            self.settle()
            self.expiry()
            self.alerts()
            now = self._fingerprint()
            if now == before and not self.runtime.peek(self.env["DEPLOY_QUEUE"]):
                return []
            before = now
        return [f"did not converge within {MAX_ROUNDS} rounds"]

    # secrets

    def secrets(self) -> list[str]:
        conn = dict(part.split("=", 1) for part in self.env["AzureWebJobsStorage"].split(";") if "=" in part)
        url = self.env["ALERT_WEBHOOK_URL"]
        parts = urlsplit(url)
        values = [self.env["SPEECH_KEY"], conn["AccountKey"], url, parts.path, parts.query]
        values += [dict(p.split("=", 1) for p in parts.query.split("&"))["sig"]]
        for sas in self.sas_urls:
            values += [p.split("=", 1)[1] for p in urlsplit(sas).query.split("&") if p.startswith("sig=")]
        found = set()
        for value in values:
            found |= {value, unquote(value), quote(value, safe="")}
        return sorted(v for v in found if len(v) >= 8)


# -- the invariants, in one place ----------------------------------------------------------------------------------


def check(
    world: World,
    *,
    alerts: Iterable[Expect] = (),
    served: Mapping[str, set[str] | None] | None = None,
    allow: Iterable[str] = ("endpoint-deployed",),
) -> Result:
    """Every invariant of the suite, after the case's own expected outcome:

    - the pipeline converges once the faults clear (the host keeps running), and each locale ends where it should:
      its managed endpoint serves a model trained on exactly its valid zips (`served` overrides; None: no endpoint);
    - no zip changed or lost: bytes, user metadata and tags as the case left them;
    - no duplicate: dataset by sourcePath + sourceContent, model by datasetSet + baseModel (failed ones aside),
      managed endpoint by locale;
    - no secret in any log record at any level, any invocation error, any alert or webhook body;
    - every alert the case implies delivered exactly once by id (copies of one id are one delivery; none missing,
      none of another kind), and POSTed to the webhook when warning or above.
    """
    problems: dict[str, list[str]] = {"converge": [], "zips": [], "duplicates": [], "secrets": [], "alerts": []}
    problems["converge"] += world.converge()
    problems["converge"] += _end_state(world, served)
    problems["zips"] += _zips(world)
    problems["duplicates"] += _duplicates(world)
    problems["secrets"] += _secrets(world)
    problems["alerts"] += _alerts(world, list(alerts), set(allow))
    flat = [f"{kind}: {p}" for kind, items in problems.items() for p in items]
    result = Result(
        world.name,
        handled=not flat,
        zips_lost=len(problems["zips"]),
        duplicates=len(problems["duplicates"]),
        secrets_leaked=len(problems["secrets"]),
        alerts_lost=len([p for p in problems["alerts"] if p.startswith("missing")]),
        problems=flat,
    )
    world.checked = True
    RESULTS.append(result)
    assert not flat, "\n".join(flat)
    return result


def _end_state(world: World, served: Mapping[str, set[str] | None] | None) -> list[str]:
    expected: dict[str, set[str] | None] = {}
    for name, record in world.zips.items():
        if record.valid:
            expected.setdefault(name.split("/")[0], set()).add(name)
    expected.update(served or {})
    problems = []
    datasets = world.emulator.datasets
    models = world.emulator.models
    endpoints = [e for e in world.emulator.endpoints.values() if e.get("customProperties", {}).get(managed.MANAGED)]
    for locale, names in expected.items():
        mine = [e for e in endpoints if e["locale"] == locale]
        if not names:
            if mine:
                problems.append(f"{locale}: a managed endpoint exists, none was expected")
            continue
        if len(mine) != 1:
            problems.append(f"{locale}: {len(mine)} managed endpoints, expected one")
            continue
        model = models.get(entity_id(mine[0]["model"]["self"]))
        if model is None or model["status"] != "Succeeded" or mine[0]["status"] != "Succeeded":
            problems.append(f"{locale}: the endpoint does not serve a trained model")
            continue
        trained = [
            datasets.get(entity_id(d["self"]), {}).get("customProperties", {}) for d in model.get("datasets", [])
        ]
        sources = {(p.get(managed.SOURCE, "?"), p.get(managed.SOURCE_CONTENT)) for p in trained}
        wanted = {(world.path_prefix + n, _content(world.zips[n].data)) for n in names if n in world.zips}
        if sources != wanted:
            shown = sorted(path.rsplit("/", 1)[-1] for path, _ in sources)
            problems.append(
                f"{locale}: serves a model trained on {shown}, not on the current content of {sorted(names)}"
            )
    return problems


def _content(data: bytes) -> str:
    from shared.zipcheck import BytesRangeReader, content_id

    return content_id(BytesRangeReader(data))


def _zips(world: World) -> list[str]:
    problems = []
    present = {b.name: b for b in world.container.list_blobs(include=["metadata", "tags"])}
    for name, record in world.zips.items():
        blob = present.get(name)
        if blob is None:
            problems.append(f"{name} is gone")
            continue
        data = world.container.get_blob_client(name).download_blob().readall()
        if data != record.data:
            problems.append(f"{name} holds other bytes")
        user = {k: v for k, v in (blob.metadata or {}).items() if not k.lower().startswith("autopilot_")}
        if user != record.metadata:
            problems.append(f"{name}: user metadata {user} != {record.metadata}")
        if dict(blob.tags or {}) != record.tags:
            problems.append(f"{name}: tags {dict(blob.tags or {})} != {record.tags}")
    return problems


def _duplicates(world: World) -> list[str]:
    problems = []
    datasets = collections.Counter(
        (d["customProperties"].get(managed.SOURCE), d["customProperties"].get(managed.SOURCE_CONTENT))
        for d in world.emulator.datasets.values()
        if d.get("customProperties", {}).get(managed.MANAGED) == managed.MANAGED_BY
    )
    problems += [f"{n} datasets from {key}" for key, n in datasets.items() if n > 1]
    models = collections.Counter(
        (m["customProperties"].get(managed.DATASET_SET), m["customProperties"].get(managed.BASE_MODEL))
        for m in world.emulator.models.values()
        if m.get("customProperties", {}).get(managed.MANAGED) == managed.MANAGED_BY and m["status"] != "Failed"
    )
    problems += [f"{n} models trained on {key}" for key, n in models.items() if n > 1]
    endpoints = collections.Counter(
        e["locale"]
        for e in world.emulator.endpoints.values()
        if e.get("customProperties", {}).get(managed.MANAGED) == managed.MANAGED_BY
    )
    problems += [f"{n} managed endpoints for {locale}" for locale, n in endpoints.items() if n > 1]
    return problems


def _secrets(world: World) -> list[str]:
    texts = list(world.records.texts) + world.failures
    texts += [json.dumps(a) for a in world.delivered]
    texts += [json.dumps(r["body"]) for r in world.posted()]
    leaked = []
    for secret in world.secrets():
        hits = [t for t in texts if secret in t]
        if hits:
            leaked.append(f"{secret[:4]}… in {len(hits)} record(s), e.g. {hits[0][:160]!r}")
    return leaked


def _alerts(world: World, expected: list[Expect], allow: set[str]) -> list[str]:
    world.alerts()
    by_id: dict[str, dict] = {}
    for alert in world.delivered:
        by_id.setdefault(alert["id"], alert)
    problems = []
    claimed: set[str] = set()
    for want in expected:
        ids = [
            i
            for i, a in by_id.items()
            if a["kind"] == want.kind
            and want.resource in a["resource"]
            and i not in claimed
            and (want.severity is None or a["severity"] == want.severity)
        ]
        if not ids:
            problems.append(f"missing {want.kind} alert about {want.resource or 'anything'}")
            continue
        claimed.add(ids[0])
    for alert_id, alert in by_id.items():
        if alert_id not in claimed and alert["kind"] not in allow:
            problems.append(f"unexpected {alert['kind']} alert about {alert['resource'][:120]}")
    posted = world.webhook.alert_ids(world.env["ALERT_WEBHOOK_URL"])
    for alert_id in claimed:
        if by_id[alert_id]["severity"] != "info" and not posted[alert_id]:
            problems.append(f"missing webhook POST of {by_id[alert_id]['kind']} alert {alert_id}")
    return problems


def loud_loggers() -> Callable[[], None]:
    """Root and the SDK/HTTP loggers at DEBUG (the worker keeps root at INFO and the SDKs at WARNING); returns the
    function that puts them back."""
    names = ["", *SDK_LOGGERS, "azure", "requests"]
    before = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)

    def restore() -> None:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)

    return restore
