"""A webhook receiver on loopback: stands in for a Teams Workflows URL, keeps every alert POSTed to it.

The URL carries a path and a `sig` like a real one (a secret the app must never log). Used by the tests and the
soak to count what `ALERT_WEBHOOK_URL` really receives.

    with WebhookReceiver() as hook:
        os.environ["ALERT_WEBHOOK_URL"] = hook.url
        ...
        hook.alerts  # the alerts it received, in order
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self) -> None:
        self.posts: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    @property
    def alerts(self) -> list[dict]:
        """The alert each POST carried (the Teams form includes it), in the order they arrived."""
        with self._lock:
            return [post["alert"] for post in self.posts if isinstance(post.get("alert"), dict)]

    def clear(self) -> None:
        with self._lock:
            self.posts.clear()

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's method name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unparsed": body.decode("utf-8", "replace")}
                with receiver._lock:
                    receiver.posts.append(payload)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self._server.server_address[1]
        self.url = (
            f"http://127.0.0.1:{port}/workflows/{secrets.token_hex(8)}/triggers/manual/run?sig={secrets.token_hex(16)}"
        )
        threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
