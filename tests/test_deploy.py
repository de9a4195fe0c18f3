"""Queue-triggered deploy and redeploy of endpoints, through Azurite queues and the Speech emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local.runtime import QueuedMessage
from shared import clock, context
from tests import helpers
from tests.conftest import alerts_of


@pytest.fixture
def deploy_env(monkeypatch, app_env, emulator):
    """Manual deploys only (no automatic deploy messages), the app on the emulator's clock, no real sleeps."""
    monkeypatch.setenv("AUTO_DEPLOY", "false")
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    context.reset()
    emulator.set_now(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    clock.use_clock(emulator.now)
    return app_env


def send(runtime, env, body: str) -> list[str]:
    """Enqueue a message, let the deploy function take it; returns the changing calls it made to /endpoints."""
    before = len(helpers.mutating_calls(runtime.emulator))
    runtime.send(env["DEPLOY_QUEUE"], body)
    runtime.drain(env["DEPLOY_QUEUE"], visibility_timeout=0)
    return [r["method"] for r in helpers.mutating_calls(runtime.emulator)[before:]]


@pytest.fixture
def runtime(runtime, emulator):
    runtime.emulator = emulator
    return runtime


def endpoints(emulator) -> list[dict]:
    return list(emulator.endpoints.values())


def test_first_message_creates_the_endpoint_then_a_newer_model_patches_it(runtime, container, emulator, deploy_env):
    first = helpers.train(runtime, container, emulator, name="one")
    assert send(runtime, deploy_env, helpers.deploy_message("en-US", first.self_uri, "trained")) == ["POST"]
    [endpoint] = endpoints(emulator)
    assert endpoint["model"]["self"].split("?")[0].endswith(first.id)
    assert endpoint["customProperties"]["managedBy"] == "speech-autopilot"
    assert endpoint["displayName"] == "autopilot-en-US" and endpoint["locale"] == "en-US"

    second = helpers.train(runtime, container, emulator, name="two")
    assert send(runtime, deploy_env, helpers.deploy_message("en-US", second.id, "trained")) == ["PATCH"]  # an id
    [patched] = endpoints(emulator)
    assert patched["self"] == endpoint["self"]
    assert patched["model"]["self"].split("?")[0].endswith(second.id)
    kinds = {a["kind"] for a in alerts_of(runtime, deploy_env["ALERT_QUEUE"])}
    assert kinds <= {"endpoint-deployed"}  # reported by the reconcile timer that trained the second model


def test_the_same_message_twice_creates_once_and_patches_once(runtime, container, emulator, deploy_env):
    first = helpers.train(runtime, container, emulator, name="one")
    message = helpers.deploy_message("en-US", first.self_uri)
    assert send(runtime, deploy_env, message) + send(runtime, deploy_env, message) == ["POST"]
    assert len(endpoints(emulator)) == 1
    second = helpers.train(runtime, container, emulator, name="two")
    message = helpers.deploy_message("en-US", second.self_uri)
    assert send(runtime, deploy_env, message) + send(runtime, deploy_env, message) == ["PATCH"]


def test_two_racing_messages_make_one_endpoint(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator)
    body = helpers.deploy_message("en-US", model.self_uri)
    results = helpers.concurrently(
        *(lambda n=n: runtime.deliver_message("deploy", body, QueuedMessage(id=f"race-{n}")) for n in range(3))
    )
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(endpoints(emulator)) == 1
    assert len([r for r in helpers.mutating_calls(emulator) if r["method"] == "POST"]) == 1


def _rejected(runtime, env) -> dict:
    [alert] = alerts_of(runtime, env["ALERT_QUEUE"])
    assert alert["kind"] == "deploy-rejected"
    return alert


def test_unusable_models_are_rejected_without_changing_anything(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator)
    emulator.fail_next("model", code="InternalError", message="training broke")
    helpers.ingest(runtime, container, "de-DE/language/corpus.zip")
    helpers.settle(emulator)
    runtime.fire_timer("reconcile")
    helpers.settle(emulator)
    failed = next(m for m in helpers.client().list_models() if m.status == "Failed")
    alerts_of(runtime, deploy_env["ALERT_QUEUE"])  # the model-failed alert is not what this test is about

    cases = {
        "failed": helpers.deploy_message("de-DE", failed.self_uri),
        "wrong locale": helpers.deploy_message("fr-FR", model.self_uri),
        "unknown": helpers.deploy_message("en-US", "00000000-0000-0000-0000-000000000000"),
        "not json": "{this is not json",
        "missing fields": '{"locale": "en-US"}',
        "base model": helpers.deploy_message("en-US", f"{emulator.url}/speechtotext/models/base/abc?api-version=x"),
    }
    for case, message in cases.items():
        send(runtime, deploy_env, message)
        alert = _rejected(runtime, deploy_env)
        assert alert["details"]["why"], case
    assert helpers.mutating_calls(emulator) == []
    assert runtime.peek(deploy_env["DEPLOY_QUEUE"]) == []  # finished, not retried


def test_an_expired_model_is_rejected(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator)
    emulator.advance(model.transcription_expiry - emulator.now() + timedelta(days=1))
    send(runtime, deploy_env, helpers.deploy_message("en-US", model.self_uri))
    alert = _rejected(runtime, deploy_env)
    assert "expired" in alert["message"]
    assert helpers.mutating_calls(emulator) == []


def test_a_503_storm_ends_in_the_poison_queue_with_an_alert(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator)
    emulator.inject(status=503, count=10_000, path_contains="/models/")
    message = helpers.deploy_message("en-US", model.self_uri)
    runtime.send(deploy_env["DEPLOY_QUEUE"], message)
    # visible again at once after each failure: the host retries it maxDequeueCount times, then parks it
    assert runtime.drain(deploy_env["DEPLOY_QUEUE"], visibility_timeout=0) == runtime.max_dequeue_count
    assert runtime.peek(deploy_env["DEPLOY_QUEUE"]) == []
    assert runtime.peek(deploy_env["DEPLOY_QUEUE"] + "-poison") == [message]
    emulator.clear_faults()
    runtime.drain(deploy_env["DEPLOY_QUEUE"] + "-poison")
    [alert] = alerts_of(runtime, deploy_env["ALERT_QUEUE"])
    assert alert["kind"] == "deploy-poisoned" and alert["severity"] == "critical"
    assert alert["details"]["message"]["model"] == model.self_uri
    assert endpoints(emulator) == []


def test_a_manual_rollback_redeploys_the_older_model(runtime, container, emulator, deploy_env):
    older = helpers.train(runtime, container, emulator, name="one")
    send(runtime, deploy_env, helpers.deploy_message("en-US", older.self_uri, "trained"))
    newer = helpers.train(runtime, container, emulator, name="two")
    send(runtime, deploy_env, helpers.deploy_message("en-US", newer.self_uri, "trained"))
    send(runtime, deploy_env, helpers.deploy_message("en-US", older.self_uri, "rollback"))
    [endpoint] = endpoints(emulator)
    assert endpoint["model"]["self"].split("?")[0].endswith(older.id)
    assert endpoint["customProperties"]["reason"] == "rollback"
    assert endpoint["customProperties"]["previousModel"] == newer.id  # the model it served before


def test_the_endpoint_limit_gives_a_clear_alert(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator)
    speech = helpers.client()
    for n in range(50):
        speech.create_endpoint(display_name=f"other-{n}", locale="en-US", model=model.self_uri)
    send(runtime, deploy_env, helpers.deploy_message("en-US", model.self_uri))
    alert = _rejected(runtime, deploy_env)
    assert alert["severity"] == "critical" and "50" in alert["message"]
    assert len(endpoints(emulator)) == 50


def test_an_explicit_endpoint_is_patched(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator, name="one")
    speech = helpers.client()
    other = speech.create_endpoint(display_name="hand-made", locale="en-US", model=model.self_uri)
    newer = helpers.train(runtime, container, emulator, name="two")
    send(runtime, deploy_env, helpers.deploy_message("en-US", newer.self_uri, endpoint=other.self_uri))
    assert len(endpoints(emulator)) == 1
    assert speech.get_endpoint(other.id).model_id == newer.id
    assert speech.get_endpoint(other.id).custom_properties == {}  # not ours: its properties are left alone


def test_a_model_url_on_another_host_is_looked_up_by_id_under_speech_endpoint(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator)
    elsewhere = f"http://127.0.0.1:9/speechtotext/v3.2/models/{model.id}"  # nothing listens there
    assert send(runtime, deploy_env, helpers.deploy_message("en-US", elsewhere, "manual")) == ["POST"]
    [endpoint] = endpoints(emulator)
    assert endpoint["model"]["self"].startswith(emulator.url)
