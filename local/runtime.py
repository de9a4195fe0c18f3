"""A stand-in for the Functions host: index `app.get_functions()` and invoke the very same functions with the
concrete `azure.functions` trigger objects, pushing output-binding values to real (Azurite) queues as the host does.

Used by the tests and by the offline host (local/host.py): there is no second code path.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueServiceClient

from shared.settings import binding_value

log = logging.getLogger("autopilot.host")

ROOT = Path(__file__).resolve().parents[1]
_EXPR = re.compile(r"%([A-Za-z0-9_]+)%")


class Out(func.Out):
    """What the worker hands a function for an output binding."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


@dataclass
class Invocation:
    function: str
    ok: bool
    error: BaseException | None
    outputs: dict[str, Any]


_indexed: dict[int, list] = {}


def index(app: func.FunctionApp) -> list:
    """The app's functions, indexed once per process as the host does (FunctionApp allows only one indexing)."""
    if id(app) not in _indexed:
        _indexed[id(app)] = app.get_functions()
    return _indexed[id(app)]


def resolve(expression: str, env: Mapping[str, str] | None = None) -> str:
    """Resolve %SETTING% parts of a binding expression from app settings (with the app's defaults)."""
    return _EXPR.sub(lambda m: binding_value(m.group(1), env), expression)


class Runtime:
    def __init__(self, app: func.FunctionApp, *, connection_string: str, host_json: Path = ROOT / "host.json"):
        self.functions = {fn.get_function_name(): fn for fn in index(app)}
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

    def bindings(self, name: str) -> list[dict[str, Any]]:
        return [b.get_dict_repr() for b in self.functions[name].get_bindings()]

    def trigger(self, name: str) -> dict[str, Any]:
        return next(b for b in self.bindings(name) if b["type"].endswith("Trigger"))

    def functions_with(self, trigger_type: str) -> list[str]:
        return [name for name in self.functions if self.trigger(name)["type"] == trigger_type]

    def queue_triggers(self) -> dict[str, str]:
        """Resolved queue name -> function name."""
        return {resolve(self.trigger(n)["queueName"]): n for n in self.functions_with("queueTrigger")}

    # -- invoking ----------------------------------------------------------------------------------------------

    def invoke(self, name: str, trigger_value: Any) -> Invocation:
        """Call a function as the host would: trigger argument plus fresh Out objects; on success, flush the
        outputs. An exception is recorded and returned (the host would log it and retry where it retries)."""
        trigger = self.trigger(name)
        outputs = {b["name"]: Out() for b in self.bindings(name) if getattr(b["direction"], "name", "") == "OUT"}
        kwargs = {trigger["name"]: trigger_value, **outputs}
        try:
            self.functions[name].get_user_function()(**kwargs)
        except Exception as exc:  # noqa: BLE001 - the host catches everything a function raises
            log.warning("function %s failed: %s: %s", name, type(exc).__name__, exc)
            result = Invocation(name, False, exc, {})
        else:
            values = {key: out.get() for key, out in outputs.items()}
            self._flush(name, values)
            result = Invocation(name, True, None, values)
        self.invocations.append(result)
        if self.on_invocation:
            self.on_invocation(result)
        return result

    def _flush(self, name: str, values: dict[str, Any]) -> None:
        for binding in self.bindings(name):
            value = values.get(binding["name"])
            if binding["type"] != "queue" or value is None:
                continue
            queue = resolve(binding["queueName"])
            for message in [value] if isinstance(value, (str, bytes)) else list(value):
                self.send(queue, message if isinstance(message, str) else message.decode())

    def fire_timer(self, name: str, *, past_due: bool = False) -> Invocation:
        return self.invoke(name, TimerRequest(past_due=past_due))

    def deliver_blob(self, name: str, blob_name: str) -> Invocation:
        """A BlobCreated delivery: the extension builds the SDK BlobClient from model binding data, exactly as
        the worker does, so the function gets a client and never the bytes."""
        from azurefunctions.extensions.base import Datum
        from azurefunctions.extensions.bindings.blob import BlobClient, BlobClientConverter

        trigger = self.trigger(name)
        container = resolve(trigger["path"]).split("/", 1)[0]
        content = json.dumps({"Connection": trigger["connection"], "ContainerName": container, "BlobName": blob_name})
        data = _ModelBindingData(content=content)
        client = BlobClientConverter.decode(
            Datum(type="model_binding_data", value=data), trigger_metadata={}, pytype=BlobClient
        )
        return self.invoke(name, client)

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
            import base64

            text = base64.b64encode(text.encode()).decode()
        self.queue(queue_name).send_message(text)

    def decode(self, content: str) -> str:
        if self.encoding == "base64":
            import base64

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
            trigger = QueueMessage(
                id=message.id,
                body=body.encode(),
                dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            result = self.invoke(name, trigger)
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


@dataclass
class _ModelBindingData:
    """The shape of the worker's ModelBindingData for blob SDK types."""

    content: str
    version: str = "1.0"
    source: str = "AzureStorageBlobs"
    content_type: str = "application/json"
