"""The functions run here the way they run in Azure: through the Python worker library, driven as the host does.

`Worker` is the one worker of this process (the library keeps its state in module globals, as in Azure): it is
initialized once with the app's directory, which makes the library import `function_app.py` and index it
(an indexing error, such as an annotation the worker refuses, is an init failure, as in Azure); the function
metadata, with the raw bindings the host would read (including the blob extension's SupportsDeferredBinding
property), comes from the worker; every function is loaded.

`Runtime` plays the host around it for one storage account: it sends invocations with the trigger data the host
sends (the timer's JSON; a queue message with its metadata; model binding data for the SDK-type blob trigger; an
HTTP request), reads back the output bindings as the worker encodes them and delivers them to the queues as the
host does (a JSON array on a queue output becomes one message per item), and runs the queue listener's
dequeue-count / visibility-timeout / poison-queue rules from host.json. The worker's log records are collected
per invocation. The tests, the offline host, the demo and the soak all run functions through here: there is no
other way functions run in this repository.

`python -m local.runtime [APP_DIR]` initializes a worker on an app directory and prints its functions, or the
worker's own error: a quick "would it load in Azure" check.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Mapping

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueServiceClient

from local import worker_messages as protos
from shared.settings import binding_value

log = logging.getLogger("autopilot.host")

ROOT = Path(__file__).resolve().parents[1]
HOST_VERSION = "4.1046.100"  # the Functions host version we pretend to be (informational only)
LOG_BUFFER = 20_000  # worker log records kept per process


class WorkerInitError(RuntimeError):
    """The worker refused the app at init (indexing): in Azure the host would load no function."""


class FunctionFailed(Exception):
    """An invocation the worker reported as failed; the message is the worker's (exception type and text)."""

    def __init__(self, message: str, stack_trace: str = "") -> None:
        super().__init__(message)
        self.stack_trace = stack_trace


@dataclass(frozen=True)
class LogRecord:
    level: int
    logger: str
    message: str
    invocation_id: str | None


class _Capture(logging.Handler):
    """What the worker would forward to the host (RpcLog): every record reaching the root logger, tagged with the
    invocation it belongs to (the worker's context variable, set in the thread that runs the function)."""

    def __init__(self, invocation_id: Any) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: collections.deque[LogRecord] = collections.deque(maxlen=LOG_BUFFER)
        self._invocation_id = invocation_id

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break the function
            message = str(record.msg)
        self.records.append(LogRecord(record.levelno, record.name, message, self._invocation_id.get()))


class Worker:
    """The process's Python worker library, initialized on one app directory."""

    _instance: Worker | None = None
    _instance_lock = threading.Lock()

    def __init__(self, app_dir: Path = ROOT) -> None:
        import azure_functions_runtime as library

        self.library = library
        self.app_dir = Path(app_dir).resolve()
        if str(self.app_dir) not in sys.path:  # the proxy worker puts the app's directory on sys.path
            sys.path.insert(0, str(self.app_dir))
        # The Azure proxy worker sets the root logger to INFO and forwards every record to the host.
        logging.getLogger().setLevel(logging.INFO)
        self.capture = _Capture(library.invocation_id_cv)
        logging.getLogger().addHandler(self.capture)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="worker-loop", daemon=True).start()
        library.start_threadpool_executor()
        init = self._call(
            library.worker_init_request,
            worker_init_request=protos.WorkerInitRequest(
                host_version=HOST_VERSION,
                capabilities={},
                worker_directory=str(Path(library.__file__).parent),
                function_app_directory=str(self.app_dir),
            ),
        )
        if init.result.status != protos.StatusResult.Success:
            raise WorkerInitError(init.result.exception.message)
        self.capabilities = dict(init.capabilities)
        metadata = self._call(
            library.functions_metadata_request,
            functions_metadata_request=protos.FunctionsMetadataRequest(function_app_directory=str(self.app_dir)),
        )
        if metadata.result.status != protos.StatusResult.Success or metadata.function_metadata_results is None:
            raise WorkerInitError("the worker returned no function metadata")
        self.metadata: dict[str, protos.RpcFunctionMetadata] = {}
        for function in metadata.function_metadata_results:
            loaded = self._call(
                library.function_load_request,
                function_load_request=protos.FunctionLoadRequest(function_id=function.function_id, metadata=function),
            )
            if loaded.result.status != protos.StatusResult.Success:
                raise WorkerInitError(f"function {function.name} did not load: {loaded.result.exception.message}")
            self.metadata[function.name] = function
        self.bindings = {
            name: [json.loads(raw) for raw in function.raw_bindings] for name, function in self.metadata.items()
        }

    @classmethod
    def get(cls) -> Worker:
        """The worker of this process, initialized on the repository's app on first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = Worker(ROOT)
            return cls._instance

    def _call(self, handler: Callable, **request: Any) -> Any:
        message = protos.StreamingMessage(request_id=uuid.uuid4().hex, **request)
        envelope = protos.WorkerRequest(message, {"protos": protos, "host": "127.0.0.1"})
        return asyncio.run_coroutine_threadsafe(handler(envelope), self._loop).result()

    def invoke(
        self, name: str, inputs: Mapping[str, protos.TypedData], trigger_metadata: Mapping[str, protos.TypedData]
    ) -> tuple[str, protos.InvocationResponse]:
        invocation_id = str(uuid.uuid4())
        request = protos.InvocationRequest(
            invocation_id=invocation_id,
            function_id=self.metadata[name].function_id,
            input_data=[protos.ParameterBinding(name=key, data=value) for key, value in inputs.items()],
            trigger_metadata=dict(trigger_metadata),
        )
        return invocation_id, self._call(self.library.invocation_request, invocation_request=request)

    def logs(self, invocation_id: str | None = None) -> list[LogRecord]:
        records = list(self.capture.records)
        return records if invocation_id is None else [r for r in records if r.invocation_id == invocation_id]


def log_volume(records: list[LogRecord]) -> str:
    """What a run sends to Application Insights (records at INFO and above), by origin."""
    kept = [r for r in records if r.level >= logging.INFO]
    families = collections.Counter(
        "app"
        if r.logger.startswith("autopilot")
        else "worker"
        if r.logger.startswith("azure.functions")
        else "Azure SDK / urllib3"
        if r.logger.startswith(("azure", "urllib3", "msal"))
        else "other"
        for r in kept
    )
    size = sum(len(r.message) for r in kept)
    parts = ", ".join(f"{family} {count}" for family, count in sorted(families.items()))
    return f"Log volume at INFO and above: {len(kept)} records, {size:,} characters ({parts or 'none'})"


# -- the host's side -------------------------------------------------------------------------------------------


@dataclass
class Invocation:
    function: str
    ok: bool
    error: FunctionFailed | None
    outputs: dict[str, Any]  # output binding name -> value as the worker encoded it (decoded from TypedData)
    logs: list[LogRecord] = field(default_factory=list)
    return_value: Any = None


@dataclass(frozen=True)
class QueuedMessage:
    """A queue message's metadata, for deliveries that do not come from a queue (tests of races and retries)."""

    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    dequeue_count: int = 1
    inserted_on: datetime | None = field(default_factory=lambda: datetime.now(UTC))
    expires_on: datetime | None = field(default_factory=lambda: datetime.now(UTC) + timedelta(days=7))
    next_visible_on: datetime | None = field(default_factory=lambda: datetime.now(UTC) + timedelta(seconds=30))
    pop_receipt: str | None = "offline-host"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


def resolve(expression: str, env: Mapping[str, str] | None = None) -> str:
    """Resolve %SETTING% parts of a binding expression from app settings, as the host does."""
    import re

    return re.sub(r"%([A-Za-z0-9_]+)%", lambda m: binding_value(m.group(1), env), expression)


def _json(value: Any) -> protos.TypedData:
    return protos.TypedData(json=json.dumps(value))


def _time(moment: datetime | None) -> protos.TypedData | None:
    return _json(moment.astimezone(UTC).isoformat()) if moment else None


def decode(data: protos.TypedData | None) -> Any:
    """A TypedData the worker returned, as the host reads it."""
    if data is None:
        return None
    kind = data.WhichOneof("data")
    if kind == "json":
        return json.loads(data.json)
    if kind == "http":
        return data.http
    return getattr(data, kind) if kind else None


def queue_messages(value: Any) -> list[str]:
    """The messages a queue output value becomes: the host splits a JSON array into one message per item."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    messages = []
    for item in items:
        if isinstance(item, bytes):
            messages.append(item.decode("utf-8"))
        elif isinstance(item, dict) and "body" in item:  # a QueueMessage the worker encoded as {"id", "body"}
            messages.append(str(item["body"]))
        elif isinstance(item, str):
            messages.append(item)
        else:
            messages.append(json.dumps(item))
    return messages


class Runtime:
    """The host around the worker, for one storage account (Azurite)."""

    def __init__(self, *, connection_string: str, host_json: Path = ROOT / "host.json", worker: Worker | None = None):
        self.worker = worker or Worker.get()
        queues = json.loads(host_json.read_text()).get("extensions", {}).get("queues", {})
        self.max_dequeue_count = int(queues.get("maxDequeueCount", 5))
        hours, minutes, seconds = (int(part) for part in queues.get("visibilityTimeout", "00:00:00").split(":"))
        self.visibility_timeout = hours * 3600 + minutes * 60 + seconds  # before a failed message is retried
        self.encoding = queues.get("messageEncoding", "base64")
        self.queue_service = QueueServiceClient.from_connection_string(connection_string)
        self.connection_string = connection_string
        self.invocations: list[Invocation] = []
        self.on_invocation: Callable[[Invocation], None] | None = None

    # -- index -------------------------------------------------------------------------------------------------

    @property
    def functions(self) -> dict[str, protos.RpcFunctionMetadata]:
        return self.worker.metadata

    def bindings(self, name: str) -> list[dict[str, Any]]:
        return self.worker.bindings[name]

    def trigger(self, name: str) -> dict[str, Any]:
        return next(b for b in self.bindings(name) if b["type"].endswith("Trigger"))

    def functions_with(self, trigger_type: str) -> list[str]:
        return [name for name in self.functions if self.trigger(name)["type"] == trigger_type]

    def queue_triggers(self) -> dict[str, str]:
        """Resolved queue name -> function name."""
        return {resolve(self.trigger(n)["queueName"]): n for n in self.functions_with("queueTrigger")}

    # -- invoking ----------------------------------------------------------------------------------------------

    def invoke(
        self, name: str, trigger: protos.TypedData, metadata: Mapping[str, protos.TypedData | None] | None = None
    ) -> Invocation:
        """One invocation through the worker. On success the output bindings are delivered as the host does; a
        failure is recorded and returned (the host would log it and retry where it retries)."""
        binding = self.trigger(name)
        trigger_metadata = {k: v for k, v in (metadata or {}).items() if v is not None}
        invocation_id, response = self.worker.invoke(name, {binding["name"]: trigger}, trigger_metadata)
        logs = self.worker.logs(invocation_id)
        if response.result.status != protos.StatusResult.Success:
            exception = response.result.exception
            error = FunctionFailed(exception.message, exception.stack_trace)
            log.warning("function %s failed: %s", name, exception.message)
            result = Invocation(name, False, error, {}, logs)
        else:
            outputs = {binding.name: decode(binding.data) for binding in response.output_data}
            self._deliver(name, outputs)
            result = Invocation(name, True, None, outputs, logs, decode(response.return_value))
        self.invocations.append(result)
        if self.on_invocation:
            self.on_invocation(result)
        return result

    def _deliver(self, name: str, outputs: Mapping[str, Any]) -> None:
        for binding in self.bindings(name):
            if binding["type"] == "queue" and binding["name"] in outputs:
                queue = resolve(binding["queueName"])
                for message in queue_messages(outputs[binding["name"]]):
                    self.send(queue, message)

    def fire_timer(self, name: str, *, past_due: bool = False) -> Invocation:
        """A timer firing: the JSON the host's timer trigger sends."""
        now = datetime.now(UTC)
        status = {
            "Last": now.isoformat(),
            "Next": (now + timedelta(minutes=5)).isoformat(),
            "LastUpdated": now.isoformat(),
        }
        body = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status, "IsPastDue": past_due}
        return self.invoke(name, _json(body))

    def deliver_blob(self, name: str, blob_name: str) -> Invocation:
        """A BlobCreated delivery to an SDK-type blob trigger: model binding data naming the connection, container
        and blob, from which the blob extension builds the BlobClient exactly as in Azure (never the bytes)."""
        binding = self.trigger(name)
        container = resolve(binding["path"]).split("/", 1)[0]
        content = {"Connection": binding["connection"], "ContainerName": container, "BlobName": blob_name}
        data = protos.ModelBindingData(
            version="1.0", source="AzureStorageBlobs", content_type="application/json", content=json.dumps(content)
        )
        url = self.queue_service.url.replace("/queue", "/blob").rstrip("/")  # informational, as the host sends it
        metadata = {
            "BlobTrigger": protos.TypedData(string=f"{container}/{blob_name}"),
            "Uri": protos.TypedData(string=f"{url}/{container}/{blob_name}"),
            "name": protos.TypedData(string=blob_name),
        }
        return self.invoke(name, protos.TypedData(model_binding_data=data), metadata)

    def deliver_message(self, name: str, body: str, message: Any = None) -> Invocation:
        """A queue message and the metadata the host's queue trigger sends with it. `message` is the storage SDK's
        QueueMessage as received (or anything with its attributes); by default a first delivery of a new one."""
        message = message or QueuedMessage()
        metadata = {
            "Id": protos.TypedData(string=message.id),
            "DequeueCount": protos.TypedData(json=str(message.dequeue_count)),
            "InsertionTime": _time(message.inserted_on),
            "ExpirationTime": _time(message.expires_on),
            "NextVisibleTime": _time(message.next_visible_on),
            "PopReceipt": protos.TypedData(string=message.pop_receipt) if message.pop_receipt else None,
        }
        return self.invoke(name, protos.TypedData(string=body), metadata)

    def request(
        self,
        name: str,
        *,
        method: str = "GET",
        url: str,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> HttpResponse:
        """An HTTP request to an HTTP-triggered function; its response as the worker returns it."""
        http = protos.RpcHttp(
            method=method,
            url=url,
            headers=dict(headers or {}),
            query=dict(query or {}),
            params={},
            body=protos.TypedData(bytes=body),
        )
        result = self.invoke(name, protos.TypedData(http=http))
        if not result.ok or result.return_value is None:
            return HttpResponse(500, {"content-type": "text/plain"}, b"Internal Server Error")
        response = result.return_value
        payload = decode(response.body)
        payload = payload.encode("utf-8") if isinstance(payload, str) else (payload or b"")
        return HttpResponse(int(response.status_code or 200), dict(response.headers), payload)

    # -- queues ------------------------------------------------------------------------------------------------

    def queue(self, queue_name: str):
        client = self.queue_service.get_queue_client(queue_name)
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
        return client

    def send(self, queue_name: str, text: str) -> None:
        """Enqueue as the host's output binding does (messageEncoding from host.json)."""
        if self.encoding == "base64":
            text = base64.b64encode(text.encode()).decode()
        self.queue(queue_name).send_message(text)

    def decode(self, content: str) -> str:
        if self.encoding == "base64":
            return base64.b64decode(content).decode()
        return content

    def drain(self, queue_name: str, *, max_messages: int = 100, visibility_timeout: int = 1) -> int:
        """Deliver the messages now visible on a trigger queue to its function, like the host's queue listener:
        delete on success; on failure leave the message to reappear after the visibility timeout, and after
        maxDequeueCount failed deliveries move it to `<queue>-poison`. Returns the number of deliveries."""
        name = self.queue_triggers()[queue_name]
        client = self.queue(queue_name)
        delivered = 0
        for message in client.receive_messages(max_messages=min(32, max_messages), visibility_timeout=30):
            delivered += 1
            body = self.decode(message.content)
            result = self.deliver_message(name, body, message)
            if result.ok:
                client.delete_message(message)
            elif message.dequeue_count >= self.max_dequeue_count:
                self.send(f"{queue_name}-poison", body)
                client.delete_message(message)
                log.warning(
                    "message %s moved to %s-poison after %d attempts", message.id, queue_name, message.dequeue_count
                )
            else:
                client.update_message(message, visibility_timeout=visibility_timeout)
            if delivered >= max_messages:
                break
        return delivered

    def drain_all(self, *, rounds: int = 20, visibility_timeout: int = 0) -> int:
        """Drain every trigger queue until nothing is visible (bounded by `rounds`)."""
        total = 0
        for _ in range(rounds):
            moved = sum(self.drain(q, visibility_timeout=visibility_timeout) for q in self.queue_triggers())
            total += moved
            if not moved:
                break
        return total

    def peek(self, queue_name: str, limit: int = 32) -> list[str]:
        return [self.decode(m.content) for m in self.queue(queue_name).peek_messages(max_messages=limit)]

    def take(self, queue_name: str) -> list[str]:
        """Receive and delete every message of a queue (for reading alerts)."""
        client = self.queue(queue_name)
        found = []
        while True:
            batch = list(client.receive_messages(max_messages=32, visibility_timeout=30))
            if not batch:
                return found
            for message in batch:
                found.append(self.decode(message.content))
                client.delete_message(message)


def main(argv: list[str] | None = None) -> int:
    """Initialize a worker on an app directory; print its functions and bindings, or the worker's error."""
    args = sys.argv[1:] if argv is None else argv
    app_dir = Path(args[0]) if args else ROOT
    try:
        worker = Worker(app_dir)
    except WorkerInitError as exc:
        print(f"the worker refused the app in {app_dir}: {exc}", file=sys.stderr)
        return 1
    for name, bindings in worker.bindings.items():
        print(name)
        for binding in bindings:
            print("   ", json.dumps(binding, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
