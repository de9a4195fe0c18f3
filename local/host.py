"""The offline host: runs `function_app.app` as the Functions host would, on Azurite and the Speech emulator.

- notices new or overwritten blobs in the training container (standing in for Event Grid's BlobCreated);
- fires timers on their NCRONTAB schedules, or every `timer_interval` seconds (so a demo need not wait);
- drains the queues with dequeue counts, visibility timeouts and poison queues, like the host.
- serves the HTTP triggers on a loopback port (`serve_http`), at `/api/<route>` as the host does; like Core Tools,
  it does not ask for function keys locally.
Everything goes through local.runtime.Runtime: the same indexed functions, no second code path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from azure.storage.blob import BlobServiceClient

from local.runtime import Runtime, resolve
from shared.storage import clean_etag

log = logging.getLogger("autopilot.host")

_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))  # sec min hour day month weekday


def _field(spec: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in spec.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if rng == "*":
            start, end = low, high
        elif "-" in rng:
            start, end = (int(x) for x in rng.split("-"))
        else:
            start = end = int(rng)
        values.update(range(start, end + 1, step))
    return values


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The next time a six-field NCRONTAB schedule ({second} {minute} {hour} {day} {month} {day-of-week}) fires."""
    fields = schedule.split()
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs six fields: {schedule!r}")
    sec, minute, hour, day, month, weekday = (_field(f, *r) for f, r in zip(fields, _RANGES, strict=True))
    moment = after.replace(microsecond=0) + timedelta(seconds=1)
    limit = moment + timedelta(days=366)
    while moment < limit:
        if moment.month not in month or moment.day not in day or (moment.isoweekday() % 7) not in weekday:
            moment = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        elif moment.hour not in hour:
            moment = (moment + timedelta(hours=1)).replace(minute=0, second=0)
        elif moment.minute not in minute:
            moment = (moment + timedelta(minutes=1)).replace(second=0)
        elif moment.second not in sec:
            moment += timedelta(seconds=1)
        else:
            return moment
    raise ValueError(f"schedule {schedule!r} never fires")


@dataclass
class LocalHost:
    runtime: Runtime
    blob_service: BlobServiceClient
    timer_interval: float | None = None  # override: fire every timer this often (seconds of the host's clock)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    seen: dict[str, str] = field(default_factory=dict)  # blob name -> ETag already delivered
    next_fire: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **kwargs) -> LocalHost:
        connection = os.environ["AzureWebJobsStorage"]
        return cls(
            Runtime(connection_string=connection), BlobServiceClient.from_connection_string(connection), **kwargs
        )

    # -- Event Grid stand-in -----------------------------------------------------------------------------------

    def blob_events(self) -> int:
        """Deliver every new or overwritten blob of each blob trigger's container once."""
        delivered = 0
        for name in self.runtime.functions_with("blobTrigger"):
            container = resolve(self.runtime.trigger(name)["path"]).split("/", 1)[0]
            for item in self.blob_service.get_container_client(container).list_blobs():
                etag = clean_etag(item.etag)
                if self.seen.get(item.name) != etag:
                    self.seen[item.name] = etag
                    log.info("BlobCreated %s/%s", container, item.name)
                    self.runtime.deliver_blob(name, item.name)
                    delivered += 1
        return delivered

    # -- HTTP -------------------------------------------------------------------------------------------------------

    def serve_http(self, port: int = 0) -> HttpServer:
        """Serve the app's HTTP triggers on 127.0.0.1:`port` (0: a free port) until `stop()`."""
        return HttpServer(self.runtime, port)

    # -- timers ------------------------------------------------------------------------------------------------

    def due_timers(self) -> list[str]:
        now = self.clock()
        due = []
        for name in self.runtime.functions_with("timerTrigger"):
            if name not in self.next_fire:
                self.next_fire[name] = self._after(name, now)
            if self.next_fire[name] <= now:
                due.append(name)
                self.next_fire[name] = self._after(name, now)
        return due

    def _after(self, name: str, now: datetime) -> datetime:
        if self.timer_interval:
            return now + timedelta(seconds=self.timer_interval)
        return next_occurrence(resolve(self.runtime.trigger(name)["schedule"]), now)

    def fire(self, name: str) -> None:
        log.debug("timer %s fires", name)
        self.runtime.fire_timer(name)

    # -- the loop ----------------------------------------------------------------------------------------------

    def tick(self) -> int:
        """One round: blob events, due timers, queues. Returns how much work it did."""
        work = self.blob_events()
        for name in self.due_timers():
            self.fire(name)
            work += 1
        return work + self.runtime.drain_all(visibility_timeout=self.runtime.visibility_timeout)

    def run(self, seconds: float, poll: float = 0.5) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.tick():
                time.sleep(poll)


class HttpServer:
    """The host's HTTP front for HTTP triggers: `/api/<route>` -> the function, through the worker."""

    def __init__(self, runtime: Runtime, port: int = 0) -> None:
        routes = {}
        for name in runtime.functions_with("httpTrigger"):
            trigger = runtime.trigger(name)
            methods = [m.upper() for m in trigger.get("methods") or ["GET", "POST"]]
            routes[(trigger.get("route") or name).strip("/")] = (name, methods)
        host = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                route = parts.path.removeprefix("/api/").strip("/") if parts.path.startswith("/api/") else None
                found = routes.get(route) if route is not None else None
                if found is None or self.command not in found[1]:
                    self._answer(404 if found is None else 405, {"content-type": "text/plain"}, b"not found\n")
                    return
                length = int(self.headers.get("content-length") or 0)
                response = runtime.request(
                    found[0],
                    method=self.command,
                    url=f"{host.url}{self.path}",
                    headers={k.lower(): v for k, v in self.headers.items()},
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    body=self.rfile.read(length) if length else b"",
                )
                self._answer(response.status, response.headers, response.body)

            def _answer(self, status: int, headers, body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve  # noqa: N815 - http.server's method names

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
                log.debug("http %s", format % args)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="local-http", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
