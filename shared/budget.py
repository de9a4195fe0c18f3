"""The Speech API request budget: the service allows 100 requests per 10 seconds per resource, so the app keeps
itself under that rather than relying on 429s.

One RequestBudget per Speech endpoint per process (`budget_for`), shared by every SpeechClient and thread; the
client asks it before every request it sends, retries included. A sliding window: at most `limit` requests in any
`window` seconds, counted over `window + margin` (requests reach the service later than they leave, and not
always in the order they left, so the app counts a little longer than the service does).

Priorities: each request is foreground (the default: ingest, deploy, status) or background (the reconcile and
expiry passes, tagged by `with speech_priority(BACKGROUND)`, a context variable, so it follows the pass through
calls without passing a flag around). Background requests may take at most `background_share` of the window, so
a long pass never takes the slots an ingest needs: foreground requests only wait when the whole window is full.

Per instance: on Flex Consumption each instance has its own budget. The passes are serialized across instances by
the autopilot lock, so background traffic stays within its share overall; foreground traffic (ingest on several
instances at once) can add up beyond the service's limit, and then the client's retries honouring Retry-After
take over (README, "The Speech API budget").
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterator

FOREGROUND, BACKGROUND = "foreground", "background"
PRIORITIES = (FOREGROUND, BACKGROUND)
SERVICE_RATE_LIMIT = (100, 10.0)  # requests, seconds: the Speech to text REST API's limit per resource
BACKGROUND_SHARE = 0.8  # of the window a pass may use; the rest is kept for foreground work
MARGIN_SECONDS = 0.5

_priority: ContextVar[str] = ContextVar("speech_priority", default=FOREGROUND)


@contextlib.contextmanager
def speech_priority(priority: str) -> Iterator[None]:
    """Tag the Speech requests made inside the block (this thread or task) as FOREGROUND or BACKGROUND."""
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}; known: {', '.join(PRIORITIES)}")
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> str:
    return _priority.get()


@dataclass
class Usage:
    """What one priority took from the budget: requests admitted and seconds spent waiting for a slot."""

    requests: int = 0
    waits: int = 0
    waited: float = 0.0


@dataclass
class RequestBudget:
    limit: int = SERVICE_RATE_LIMIT[0]
    window: float = SERVICE_RATE_LIMIT[1]
    background_share: float = BACKGROUND_SHARE
    margin: float = MARGIN_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    usage: dict[str, Usage] = field(default_factory=lambda: {p: Usage() for p in PRIORITIES})

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0 or not 0 < self.background_share <= 1:
            raise ValueError("a budget needs limit >= 1, window > 0 and 0 < background_share <= 1")
        self.span = self.window + self.margin
        self.background_limit = max(1, math.floor(self.limit * self.background_share))
        self._sent: deque[float] = deque()  # when each request in the span was admitted
        self._background: deque[float] = deque()  # the background ones among them
        self._lock = threading.Lock()

    def acquire(self, priority: str | None = None) -> float:
        """Wait until a request of this priority (default: the context's) fits, count it; the seconds waited."""
        priority = priority or current_priority()
        background = priority == BACKGROUND
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                delay = self._delay(now, background)
                if delay <= 0:
                    self._sent.append(now)
                    if background:
                        self._background.append(now)
                    usage = self.usage[priority]
                    usage.requests += 1
                    if waited:
                        usage.waits += 1
                        usage.waited += waited
                    return waited
            self.sleep(delay)
            waited += delay

    def _delay(self, now: float, background: bool) -> float:
        """Seconds until a slot frees (0: one is free now), after forgetting requests older than the span."""
        horizon = now - self.span
        for sent in (self._sent, self._background):
            while sent and sent[0] <= horizon:
                sent.popleft()
        delay = 0.0
        if len(self._sent) >= self.limit:
            delay = self._sent[0] - horizon
        if background and len(self._background) >= self.background_limit:
            delay = max(delay, self._background[0] - horizon)
        return delay

    def in_window(self) -> tuple[int, int]:
        """(requests, background requests) counted now."""
        with self._lock:
            self._delay(self.clock(), False)
            return len(self._sent), len(self._background)


_budgets: dict[tuple[str, int, float, float], RequestBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(
    endpoint: str, rate_limit: tuple[int, float] = SERVICE_RATE_LIMIT, background_share: float = BACKGROUND_SHARE
) -> RequestBudget:
    """The process-wide budget of one Speech endpoint (created on first use)."""
    limit, window = rate_limit
    key = (endpoint.rstrip("/").lower(), int(limit), float(window), float(background_share))
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None:
            budget = _budgets[key] = RequestBudget(int(limit), float(window), float(background_share))
        return budget
