"""Timers that reconcile, through Azurite and the Speech emulator on a controlled clock."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from local import samples
from shared import clock, context
from tests import helpers
from tests.conftest import alerts_of

START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def timer_env(monkeypatch, app_env, emulator):
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    context.reset()
    emulator.set_now(START)
    clock.use_clock(emulator.now)
    return app_env


def models(emulator) -> list[dict]:
    return sorted(emulator.models.values(), key=lambda m: m["createdDateTime"])


def dataset_ids(model: dict) -> set[str]:
    return {d["self"].split("?")[0].rsplit("/", 1)[-1] for d in model.get("datasets", [])}


def reconcile(runtime):
    result = runtime.fire_timer("reconcile")
    assert result.ok, result.error
    return result


def test_zips_dropped_together_make_one_model_and_later_changes_retrain(runtime, container, emulator, timer_env):
    helpers.ingest(runtime, container, "en-US/acoustic/a.zip")
    helpers.ingest(runtime, container, "en-US/language/b.zip")
    reconcile(runtime)  # datasets still processing: nothing to train yet
    assert models(emulator) == []
    helpers.settle(emulator)
    reconcile(runtime)
    reconcile(runtime)  # a second pass while training adds nothing
    [first] = models(emulator)
    assert len(dataset_ids(first)) == 2 and first["customProperties"]["managedBy"] == "speech-autopilot"

    helpers.settle(emulator)
    helpers.ingest(runtime, container, "en-US/language/c.zip")
    helpers.settle(emulator)
    reconcile(runtime)
    second = models(emulator)[-1]
    assert len(models(emulator)) == 2 and dataset_ids(first) < dataset_ids(second) and len(dataset_ids(second)) == 3

    helpers.settle(emulator)
    container.delete_blob("en-US/language/b.zip")
    reconcile(runtime)
    third = models(emulator)[-1]
    assert len(models(emulator)) == 3 and len(dataset_ids(third)) == 2 and dataset_ids(third) < dataset_ids(second)


def test_a_trained_model_is_deployed_once(runtime, container, emulator, timer_env):
    model = helpers.train(runtime, container, emulator)
    reconcile(runtime)
    queued = [json.loads(m) for m in runtime.peek(timer_env["DEPLOY_QUEUE"])]
    assert queued == [{"locale": "en-US", "model": model.self_uri, "reason": "trained"}]
    runtime.drain(timer_env["DEPLOY_QUEUE"])
    helpers.settle(emulator)
    reconcile(runtime)
    assert runtime.peek(timer_env["DEPLOY_QUEUE"]) == []
    kinds = [a["kind"] for a in alerts_of(runtime, timer_env["ALERT_QUEUE"])]
    assert kinds == ["endpoint-deployed"]


def test_a_failed_dataset_alerts_with_the_service_message_and_blocks_nothing_else(
    runtime, container, emulator, timer_env
):
    emulator.fail_next("dataset", code="InvalidAudioFormat", message="utt0001.wav is not 16 kHz")
    helpers.ingest(runtime, container, "en-US/acoustic/bad.zip")
    helpers.settle(emulator)
    reconcile(runtime)
    reconcile(runtime)
    [alert] = alerts_of(runtime, timer_env["ALERT_QUEUE"])
    assert alert["kind"] == "dataset-failed" and "16 kHz" in alert["message"]
    assert alert["details"]["code"] == "InvalidAudioFormat"
    assert models(emulator) == []
    assert helpers.state_of(container.get_blob_client("en-US/acoustic/bad.zip")).status == "failed"


def test_the_sweep_ingests_zips_no_event_reported(runtime, container, emulator, timer_env):
    helpers.drop(container, "en-US/language/missed.zip", samples.language_zip())
    helpers.drop(container, "en-US/language/broken.zip", b"nope")
    reconcile(runtime)
    assert len(emulator.datasets) == 1
    [alert] = alerts_of(runtime, timer_env["ALERT_QUEUE"])
    assert alert["kind"] == "zip-rejected" and alert["resource"].endswith("broken.zip")
    reconcile(runtime)
    assert len(emulator.datasets) == 1 and alerts_of(runtime, timer_env["ALERT_QUEUE"]) == []


def test_timers_running_concurrently_create_no_duplicates(runtime, container, emulator, timer_env):
    for name in ("a", "b", "c"):
        helpers.ingest(runtime, container, f"en-US/language/{name}.zip")
    helpers.settle(emulator)
    results = helpers.concurrently(
        *(lambda n=n: runtime.fire_timer(n) for n in ("reconcile", "reconcile", "expiry", "reconcile"))
    )
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(models(emulator)) == 1


def test_an_expiring_serving_model_alerts_once_retrains_and_redeploys(runtime, container, emulator, timer_env):
    model = helpers.train(runtime, container, emulator)
    reconcile(runtime)
    runtime.drain(timer_env["DEPLOY_QUEUE"])
    helpers.settle(emulator)
    reconcile(runtime)
    alerts_of(runtime, timer_env["ALERT_QUEUE"])
    # a newer base model appears, then time runs to 10 days before the serving model expires
    target = model.transcription_expiry - timedelta(days=10)
    newest = emulator.add_base_model("en-US", created=target - timedelta(days=20))
    emulator.advance(target - emulator.now())
    assert runtime.fire_timer("expiry").ok
    assert runtime.fire_timer("expiry").ok  # once per tier, however often the timer runs
    alerts = alerts_of(runtime, timer_env["ALERT_QUEUE"])
    [expiring] = [a for a in alerts if a["kind"] == "model-expiring"]  # 30 and 14 crossed at once: one alert
    assert expiring["details"]["tier"] == 14 and expiring["details"]["handsOff"]["action"] == "retrain"
    assert emulator.models[model.id]["customProperties"]["alerted"].split(",")[-2:] == ["30", "14"]
    retrain = models(emulator)[-1]
    assert retrain["customProperties"]["reason"] == "expiry"
    assert retrain["baseModel"]["self"].split("?")[0].endswith(newest["self"].split("?")[0].rsplit("/", 1)[-1])
    helpers.settle(emulator)
    reconcile(runtime)
    queued = [json.loads(m) for m in runtime.peek(timer_env["DEPLOY_QUEUE"])]
    assert queued == [{"locale": "en-US", "model": retrain["self"], "reason": "expiry"}]


def test_past_due_timers_still_reconcile(runtime, container, emulator, timer_env):
    helpers.ingest(runtime, container, "en-US/language/a.zip")
    helpers.settle(emulator)
    assert runtime.fire_timer("reconcile", past_due=True).ok
    assert len(models(emulator)) == 1


def test_a_failing_sweep_does_not_lose_the_passs_deploy_request(runtime, container, emulator, timer_env):
    model = helpers.train(runtime, container, emulator)  # trained; its deploy request is due on the next pass
    helpers.drop(container, "en-US/language/missed.zip", samples.language_zip())  # no event: the sweep finds it
    emulator.inject(status=503, count=100, method="POST", path_contains="/datasets")
    reconcile(runtime)
    queued = [json.loads(m) for m in runtime.peek(timer_env["DEPLOY_QUEUE"])]
    assert queued == [{"locale": "en-US", "model": model.self_uri, "reason": "trained"}]


def test_the_daily_expiry_pass_waits_out_a_pass_holding_the_lock_where_a_poll_pass_skips(
    runtime, container, emulator, timer_env, monkeypatch
):
    """EXPIRY_SCHEDULE and POLL_SCHEDULE fire in the same second (06:00:00). At tens of thousands of resources the
    pass that wins the lock holds it for over a minute: a poll pass that loses has nothing to add (the next one
    comes in 5 minutes), but a skipped expiry pass loses the day's tiers and retrains. Here the other pass holds
    the lock twice as long as a poll pass waits (waits scaled down 50x)."""
    import threading

    from shared import storage
    from shared.flows import timers

    other_pass = container.acquire_lease(lease_duration=15)
    waits = []

    def lock(container_client, *, wait_seconds=45.0, **kwargs):
        waits.append(wait_seconds)
        if len(waits) == 2:  # the expiry pass: the other pass ends after twice a poll pass's wait
            threading.Timer(2 * waits[0] / 50, other_pass.release).start()
        return storage.autopilot_lock(container_client, wait_seconds=wait_seconds / 50, **kwargs)

    monkeypatch.setattr(timers, "autopilot_lock", lock)
    try:
        poll = runtime.fire_timer("reconcile")
        expiry = runtime.fire_timer("expiry")
    finally:
        with contextlib.suppress(Exception):
            other_pass.release()

    assert poll.ok and expiry.ok, (poll.error, expiry.error)
    skipped = [any("skipping" in r.message for r in run.logs) for run in (poll, expiry)]
    assert skipped == [True, False]
