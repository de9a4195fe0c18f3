"""The app's notion of "now". Real UTC time in Azure; the offline host and the soak swap in a simulated clock
(so the app and the Speech emulator agree on dates). SAS lifetimes always use real time: storage checks them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Callable

_clock: Callable[[], datetime] | None = None


def now() -> datetime:
    """Aware UTC, whatever the clock in use returns (a naive time is UTC, never the host's local time)."""
    return utc(_clock()) if _clock else datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime; a naive one is taken to be UTC already (the app never uses local time:
    `astimezone` on a naive datetime would read it in the host's time zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def use_clock(clock: Callable[[], datetime] | None) -> None:
    """Replace the clock (None restores real time). For the offline host, the soak and tests."""
    global _clock
    _clock = clock
