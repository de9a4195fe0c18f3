"""ALERT_WEBHOOK_MIN_SEVERITY end to end: every function that raises alerts (ingest, the timers, deploy, the poison
handler) puts all of them on the queue and POSTs only those at or above the setting to a real webhook receiver."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from local import samples
from local.webhook import WebhookReceiver
from shared import clock, context
from tests import helpers
from tests.conftest import alerts_of

START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def hook(monkeypatch, app_env, emulator):
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    emulator.set_now(START)
    clock.use_clock(emulator.now)
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url)
        context.reset()
        yield receiver
    context.reset()


def raise_one_of_each_path(runtime, container, emulator, env) -> None:
    """zip-rejected (ingest, warning), evaluation-passed and endpoint-deployed (timers, info), deploy-rejected
    (deploy, warning), deploy-poisoned (poison handler, critical)."""
    helpers.drop(container, "en-US/test/holdout.zip", samples.acoustic_zip(5, seconds=0.1))
    helpers.ingest(runtime, container, "en-US/acoustic/broken.zip", samples.acoustic_zip(2, missing=("lost.wav",)))
    helpers.train(runtime, container, emulator)
    for _ in range(4):  # evaluate, judge, request the deployment, report it
        assert runtime.fire_timer("reconcile").ok
        runtime.drain(env["DEPLOY_QUEUE"])
        helpers.settle(emulator)
    runtime.send(env["DEPLOY_QUEUE"], helpers.deploy_message("en-US", "no-such-model"))
    runtime.drain(env["DEPLOY_QUEUE"])
    runtime.send(env["DEPLOY_QUEUE"] + "-poison", helpers.deploy_message("en-US", "parked-model"))
    runtime.drain(env["DEPLOY_QUEUE"] + "-poison")


def kinds(alerts: list[dict]) -> set[tuple[str, str]]:
    return {(a["kind"], a["severity"]) for a in alerts}


EVERY = {
    ("zip-rejected", "warning"),
    ("evaluation-passed", "info"),
    ("endpoint-deployed", "info"),
    ("deploy-rejected", "warning"),
    ("deploy-poisoned", "critical"),
}


def test_by_default_only_warning_and_critical_alerts_reach_the_webhook(runtime, container, emulator, app_env, hook):
    raise_one_of_each_path(runtime, container, emulator, app_env)

    queued = alerts_of(runtime, app_env["ALERT_QUEUE"])
    assert kinds(queued) == EVERY  # the queue gets every alert
    assert kinds(hook.alerts) == {k for k in EVERY if k[1] != "info"}
    assert len(hook.alerts) == len([a for a in queued if a["severity"] != "info"])


@pytest.mark.parametrize(("floor", "posted"), [("info", EVERY), ("critical", {("deploy-poisoned", "critical")})])
def test_the_setting_moves_the_floor_on_every_path(
    runtime, container, emulator, app_env, hook, monkeypatch, floor, posted
):
    monkeypatch.setenv("ALERT_WEBHOOK_MIN_SEVERITY", floor)
    context.reset()

    raise_one_of_each_path(runtime, container, emulator, app_env)

    assert kinds(alerts_of(runtime, app_env["ALERT_QUEUE"])) == EVERY
    assert kinds(hook.alerts) == posted
