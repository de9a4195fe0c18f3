"""A write of ours happens only while the lock that serializes writes is held, or not at all.

The autopilot lock (a lease, shared.storage.autopilot_lock) installs a check for the code running under it; every
write to the Speech resource and to a blob's state calls `before_write()` first, which raises LockLost once the
lease can no longer be trusted. A pass that lost its lock stops before its next write instead of racing the
instance that took the lock over.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator

_check: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "autopilot_write_guard", default=None
)


class LockLost(RuntimeError):
    """The autopilot lock is no longer held (renewal failed long enough, or another instance took it)."""


def before_write() -> None:
    """Raise LockLost if the code runs under a lock that is no longer held; nothing outside a lock."""
    check = _check.get()
    if check is not None:
        check()


@contextlib.contextmanager
def guarded(check: Callable[[], None]) -> Iterator[None]:
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)
