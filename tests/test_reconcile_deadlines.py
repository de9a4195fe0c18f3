"""The planner's guarantees against things that never finish (issue #13, cases 1, 5 and 7), in the pure style of
tests/test_reconcile.py (its factories, a fixed clock, `apply` playing the timers):

- the sweep is fair: zips whose ingest fails every time cannot keep a missed zip out of the sweep;
- a dataset stuck in NotStarted/Running, or a zip whose ingest keeps failing, holds its locale's training back for
  PENDING_DEADLINE at most and raises one `dataset-stuck` alert;
- the quarter rule applies wherever a model's expiry matters, also for a model the service gives no date.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta

import pytest

from shared import managed
from shared.quarters import custom_model_expiry
from shared.reconcile import (
    MAX_SWEEP_PER_PASS,
    PENDING_DEADLINE,
    CreateModel,
    Ingest,
    RecordState,
    RequestDeploy,
    UpdateProperties,
    expiry_of,
    locale_states,
    sweep_start,
)
from shared.speech import CustomModel
from shared.status import build_status
from shared.storage import ZipBlob
from tests.test_reconcile import (
    NOW,
    alerts,
    apply,
    base_model,
    dataset,
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
    uri,
    zip_blob,
)

HOUR = timedelta(hours=1)


def aged(blob: ZipBlob, age: timedelta, *, now: datetime = NOW) -> ZipBlob:
    return dataclasses.replace(blob, last_modified=now - age)


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


# -- a dataset stuck in NotStarted / Running ----------------------------------------------------------------------


def stuck_locale(status: str, age: timedelta):
    ready = pair("en-US/acoustic/calls.zip", "d1")
    waiting = pair("en-US/language/sentences.zip", "d2", status=status, created=NOW - age)
    return snap(ready, waiting)


@pytest.mark.parametrize("status", ["NotStarted", "Running"])
def test_a_processing_dataset_holds_training_back_until_the_deadline(status):
    assert poll(stuck_locale(status, PENDING_DEADLINE - HOUR)) == []
    assert locale_states(stuck_locale(status, PENDING_DEADLINE - HOUR))["en-US"].pending == [
        "en-US/language/sentences.zip"
    ]


@pytest.mark.parametrize("status", ["NotStarted", "Running"])
def test_past_the_deadline_a_stuck_dataset_no_longer_holds_training_back_and_is_reported_once(status):
    snapshot = stuck_locale(status, PENDING_DEADLINE + HOUR)

    actions = poll(snapshot)

    assert only_training(actions).dataset_ids == ("d1",)
    [alert] = alerts(actions)
    assert (alert.kind, alert.severity, alert.locale) == ("dataset-stuck", "warning", "en-US")
    assert alert.resource == uri("datasets", "d2") and "d2" in alert.message and status in alert.message
    assert alert.details["zip"] == "training/en-US/language/sentences.zip"
    assert alert.details["status"] == status and alert.details["deadlineHours"] == 24
    [token] = [a for a in of(actions, UpdateProperties) if a.id == "d2"]
    assert "stuck" in managed.alerted(token)
    after = apply(snapshot, actions)
    assert alerts(poll(after)) == []  # one alert, however many passes
    assert locale_states(after)["en-US"].stuck == ["en-US/language/sentences.zip"]


def test_a_stuck_dataset_that_finally_succeeds_joins_the_next_training():
    snapshot = stuck_locale("NotStarted", PENDING_DEADLINE + HOUR)
    after = apply(snapshot, poll(snapshot))
    trained = apply(after, [])
    models = [dataclasses.replace(m, status="Succeeded") for m in trained.models]
    done = dataclasses.replace(trained, models=models)
    d2 = next(d for d in done.datasets if d.id == "d2")
    datasets = [d for d in done.datasets if d.id != "d2"] + [dataclasses.replace(d2, status="Succeeded")]

    assert only_training(poll(dataclasses.replace(done, datasets=datasets))).dataset_ids == ("d1", "d2")


def test_a_stuck_dataset_does_not_hold_the_expiry_retrain_back():
    expiring = serving(10)
    stuck = dataset("d-stuck", "en-US/language/sentences.zip", status="NotStarted", created=NOW - days(3))
    blob = zip_blob("en-US/language/sentences.zip", status="submitted", dataset_id="d-stuck")
    snapshot = dataclasses.replace(expiring, zips=[*expiring.zips, blob], datasets=[*expiring.datasets, stuck])

    assert of(expiry(snapshot), CreateModel) != []
    fresh = dataclasses.replace(stuck, created=NOW - HOUR)
    assert of(expiry(dataclasses.replace(snapshot, datasets=[*expiring.datasets, fresh])), CreateModel) == []


def test_a_superseded_or_failed_dataset_is_never_stuck():
    ready, old = pair("en-US/acoustic/calls.zip", "d1", etag="0x2")
    forgotten = dataset("d0", "en-US/acoustic/calls.zip", etag="0x1", status="NotStarted", created=NOW - days(9))
    failed = pair("en-US/language/sentences.zip", "d2", status="Failed", props={managed.ALERTED: "failed"})

    assert [a.kind for a in alerts(poll(snap((ready, old), failed, datasets=[forgotten])))] == []


# -- a zip whose ingest keeps failing ---------------------------------------------------------------------------


def failing_zip_locale(age: timedelta, *, storage_now: datetime | None = None):
    ready = pair("en-US/acoustic/calls.zip", "d1")
    failing = aged(zip_blob("en-US/language/sentences.zip", owner="team-a"), age, now=storage_now or NOW)
    return dataclasses.replace(snap(ready, zips=[failing]), storage_now=storage_now)


def test_a_zip_without_a_dataset_holds_training_back_until_the_deadline():
    assert poll(failing_zip_locale(PENDING_DEADLINE - HOUR)) == [Ingest("en-US/language/sentences.zip")]


def test_past_the_deadline_a_zip_without_a_dataset_is_still_swept_but_reported_once_and_not_waited_for():
    snapshot = failing_zip_locale(PENDING_DEADLINE + HOUR)

    actions = poll(snapshot)

    assert Ingest("en-US/language/sentences.zip") in actions  # the sweep keeps trying
    assert only_training(actions).dataset_ids == ("d1",)
    [alert] = alerts(actions)
    assert (alert.kind, alert.resource) == ("dataset-stuck", "training/en-US/language/sentences.zip")
    assert alert.details["dataset"] is None and "no dataset" in alert.message
    [record] = of(actions, RecordState)
    assert record.state.alerted == "stuck" and record.metadata["owner"] == "team-a"
    after = apply(snapshot, actions)
    # recording the token changes the zip's last_modified: the token alone keeps it out of the way
    after = dataclasses.replace(after, zips=[aged(z, HOUR) for z in after.zips])
    assert alerts(poll(after)) == [] and locale_states(after)["en-US"].stuck == ["en-US/language/sentences.zip"]


def test_a_zips_age_is_measured_on_the_storage_clock_when_the_listing_gives_one():
    """The app's clock may run ahead of storage (skew, or simulated time offline): a zip modified an hour ago by the
    storage service's own clock is not overdue, whatever `now` says."""
    storage_now = NOW - days(30)
    snapshot = failing_zip_locale(HOUR, storage_now=storage_now)

    assert poll(snapshot) == [Ingest("en-US/language/sentences.zip")]
    assert alerts(poll(failing_zip_locale(PENDING_DEADLINE, storage_now=storage_now))) != []


def test_a_re_upload_of_a_stuck_zip_is_waited_for_again():
    snapshot = failing_zip_locale(PENDING_DEADLINE + HOUR)
    after = apply(snapshot, poll(snapshot))
    reuploaded = [zip_blob("en-US/language/sentences.zip", "0x9")]  # an upload replaces the metadata, token included

    assert poll(dataclasses.replace(after, zips=[*after.zips[:1], *reuploaded])) == [
        Ingest("en-US/language/sentences.zip")
    ]


def test_a_rejected_zip_is_never_stuck():
    rejected = aged(zip_blob("en-US/language/sentences.zip", status="rejected"), days(9))
    ready = pair("en-US/acoustic/calls.zip", "d1")

    assert alerts(poll(snap(ready, zips=[rejected]))) == []


def test_status_shows_a_stuck_zip_apart_from_pending_work():
    [row] = build_status(failing_zip_locale(PENDING_DEADLINE + HOUR))

    assert row["pending"] == ["zip en-US/language/sentences.zip stuck (no dataset ready after 24 h; not waited for)"]


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
