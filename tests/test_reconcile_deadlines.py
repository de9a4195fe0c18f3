"""The planner's guarantees against things that never finish (issue #13, case 1), in the pure style of
tests/test_reconcile.py (its factories, a fixed clock, `apply` playing the timers):

- the sweep is fair: zips whose ingest fails every time cannot keep a missed zip out of the sweep;
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from shared.reconcile import (
    MAX_SWEEP_PER_PASS,
    Ingest,
    sweep_start,
)
from tests.test_reconcile import (
    NOW,
    of,
    poll,
    snap,
    zip_blob,
)

# -- the sweep is fair --------------------------------------------------------------------------------------------


def swept(snapshot) -> list[str]:
    return [a.blob_name for a in of(poll(snapshot), Ingest)]


def test_with_few_missing_zips_every_one_is_swept_each_pass():
    zips = [zip_blob(f"en-US/language/z{n}.zip") for n in range(MAX_SWEEP_PER_PASS)]
    for minutes in range(0, 60, 7):
        assert sorted(swept(snap(zips=zips, now=NOW + timedelta(minutes=minutes)))) == sorted(z.name for z in zips)


def test_zips_that_fail_every_time_cannot_keep_a_missed_zip_out_of_the_sweep():
    """Five zips whose ingest fails every pass (they stay missing) listed before a valid zip nobody reported: with a
    fixed window the valid one never got a slot. Passes every five minutes reach it within a few passes."""
    failing = [zip_blob(f"en-US/acoustic/bad{n}.zip") for n in range(5)]
    missed = zip_blob("en-US/language/zz-missed.zip")
    passes = [swept(snap(zips=[*failing, missed], now=NOW + timedelta(minutes=5 * k))) for k in range(4)]

    assert all(len(names) == MAX_SWEEP_PER_PASS for names in passes)
    assert any(missed.name in names for names in passes)


@pytest.mark.parametrize("count", [6, 7, 11, 25, 40])
@pytest.mark.parametrize("every", [60, 300, 3600, 86400], ids=["1min", "5min", "hourly", "daily"])
def test_every_missing_zip_gets_a_slot_within_a_few_passes_whatever_the_schedule(count, every):
    windows = math.ceil(count / MAX_SWEEP_PER_PASS)
    seen: set[int] = set()
    for k in range(4 * windows + 2):
        start = sweep_start(count, NOW + timedelta(seconds=every * k))
        seen |= {(start + i) % count for i in range(MAX_SWEEP_PER_PASS)}
    assert seen == set(range(count))


def test_a_pass_sweeps_distinct_zips():
    zips = [zip_blob(f"en-US/language/z{n:02d}.zip") for n in range(12)]
    for k in range(20):
        names = swept(snap(zips=zips, now=NOW + timedelta(minutes=5 * k)))
        assert len(names) == len(set(names)) == MAX_SWEEP_PER_PASS
