"""The planner's guarantees against things that never finish (issue #13, cases 1 and 7), in the pure style of
tests/test_reconcile.py (its factories, a fixed clock, `apply` playing the timers):

- the sweep is fair: zips whose ingest fails every time cannot keep a missed zip out of the sweep;
- the quarter rule applies wherever a model's expiry matters, also for a model the service gives no date.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import pytest

from shared import managed
from shared.quarters import custom_model_expiry
from shared.reconcile import (
    MAX_SWEEP_PER_PASS,
    CreateModel,
    Ingest,
    RequestDeploy,
    expiry_of,
    sweep_start,
)
from shared.speech import CustomModel
from shared.status import build_status
from tests.test_reconcile import (
    NOW,
    base_model,
    days,
    deployed,
    expiry,
    model,
    of,
    only_training,
    pair,
    poll,
    serving,
    snap,
    zip_blob,
)


def undated(m: CustomModel) -> CustomModel:
    """The model as a service answer without deprecationDates would show it."""
    raw = dict(m.raw)
    raw["properties"] = {k: v for k, v in raw["properties"].items() if k != "deprecationDates"}
    return CustomModel.from_json(raw)


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


# -- the quarter rule wherever expiry matters ---------------------------------------------------------------------


def test_an_undated_model_past_the_quarter_rule_is_not_deployed_by_the_poll():
    created = NOW - days(800)  # its quarter rule date has passed
    old = undated(model("m1", created=created))
    assert expiry_of(old) == custom_model_expiry(created) < NOW

    assert of(poll(snap(pair("en-US/acoustic/calls.zip", "d1"), models=[old])), RequestDeploy) == []
    recent = undated(model("m1", created=NOW - days(20)))
    assert of(poll(snap(pair("en-US/acoustic/calls.zip", "d1"), models=[recent])), RequestDeploy) != []


def test_an_undated_serving_model_is_retrained_early_when_its_only_base_closes_before_the_largest_tier():
    """closes_first compared the serving model's transcriptionDateTime: without one, the early retrain never came."""
    created = NOW - days(730)  # 2024-03-01: the quarter rule says it transcribes until 2026-04-15, 44 days from now
    closing = base_model("closing", created=NOW - days(300), adapt_until=NOW + days(10))
    snapshot = serving(44, base_models=[closing])
    models = [undated(model("m-en-US", ("d-en-US",), created=created))]
    snapshot = dataclasses.replace(snapshot, models=models)
    assert (expiry_of(models[0]) - NOW).days == 44

    assert only_training(expiry(snapshot)).base_model_id == "closing"


def test_a_newer_undated_model_that_the_quarter_rule_lets_outlive_the_serving_one_is_its_replacement():
    snapshot = serving(10, props={managed.ALERTED: "30,14"})
    newer = undated(model("m-next", ("d-en-US",), created=NOW - days(1)))
    assert of(expiry(dataclasses.replace(snapshot, models=[*snapshot.models, newer])), CreateModel) == []


def test_status_shows_the_quarter_rule_date_of_an_undated_model():
    created = NOW - days(20)
    m = undated(model("m1", created=created))
    [row] = build_status(snap(pair("en-US/acoustic/calls.zip", "d1"), models=[m], endpoints=[deployed("e1", "m1")]))

    assert row["expires"] == custom_model_expiry(created).strftime("%Y-%m-%d")
