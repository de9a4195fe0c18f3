"""The documented Custom Speech expiry rule.

Quarters end on Jan 15, Apr 15, Jul 15 and Oct 15; a custom model transcribes for two years after the quarter in
which it was created, a date on a quarter's last day belonging to that quarter. The service states each model's
date (`transcriptionDateTime`); the app uses this rule only where a model lacks it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.clock import utc

QUARTER_END_MONTHS = (1, 4, 7, 10)
QUARTER_END_DAY = 15


def quarter_end(moment: datetime) -> datetime:
    """Midnight UTC of the last day (the 15th) of the quarter containing `moment` (a naive `moment` is UTC)."""
    moment = utc(moment)
    for year in (moment.year, moment.year + 1):
        for month in QUARTER_END_MONTHS:
            end = datetime(year, month, QUARTER_END_DAY, tzinfo=UTC)
            if moment.date() <= end.date():
                return end
    raise AssertionError("unreachable: Jan 15 of the next year always follows")


def _plus_years(moment: datetime, years: int) -> datetime:
    return moment.replace(year=moment.year + years)  # the 15th exists in every month


def custom_model_expiry(created: datetime) -> datetime:
    return _plus_years(quarter_end(created), 2)
