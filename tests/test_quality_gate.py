"""The quality gate end to end: Azurite, the Speech emulator (every request and answer checked against the spec)
and the functions run by the worker rig, on the emulator's clock. The emulator's word error rates are set per
model (emulator.set_quality), so a test makes a candidate better, equal or worse than what the endpoint serves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from local import samples
from shared import clock, context, managed, status
from shared.speech import CustomModel, entity_id
from tests import helpers
from tests.conftest import alerts_of

START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TEST_ZIP = "en-US/test/holdout.zip"
TEST_LINES = 20  # 200 words: the emulator's word error rates come in steps of 0.5 points


@pytest.fixture
def gate_env(monkeypatch, app_env, emulator):
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    for name in ("QUALITY_GATE", "QUALITY_MAX_WER_REGRESSION", "QUALITY_EXPIRY_MAX_WER_REGRESSION"):
        monkeypatch.delenv(name, raising=False)
    context.reset()
    emulator.set_now(START)
    clock.use_clock(emulator.now)
    return app_env


@pytest.fixture
def models_created(emulator) -> list[dict]:
    """The body of every Models_Create request (the emulator's observer sees them; its log keeps no bodies)."""
    bodies: list[dict] = []
    original = emulator.observer

    def observe(method, url, body, status_code, answer, content_type=None):
        if method == "POST" and urlsplit(url).path.endswith("/speechtotext/models"):
            bodies.append(body)
        original(method, url, body, status_code, answer, content_type)

    emulator.observer = observe
    return bodies


def reconcile(runtime) -> None:
    result = runtime.fire_timer("reconcile")
    assert result.ok, result.error


def deploy(runtime, env, emulator) -> None:
    """Let the deploy function take what the timer queued, the endpoint finish, and the timer report it."""
    runtime.drain(env["DEPLOY_QUEUE"])
    helpers.settle(emulator)
    reconcile(runtime)


def serving_model(emulator) -> str:
    [endpoint] = emulator.endpoints.values()
    return entity_id(endpoint["model"]["self"])


def drop_test_set(runtime, container, emulator, name: str = TEST_ZIP, lines: int = TEST_LINES) -> str:
    helpers.ingest(runtime, container, name, samples.acoustic_zip(lines, seconds=0.1))
    helpers.settle(emulator)
    return helpers.state_of(container.get_blob_client(name)).dataset


def serving_locale(runtime, container, emulator, env, *, test_set: bool = True) -> CustomModel:
    """en-US: a model trained on one zip, serving the locale's endpoint (deployed before any test set existed),
    then a test set dropped."""
    first = helpers.train(runtime, container, emulator, name="first")
    reconcile(runtime)
    deploy(runtime, env, emulator)
    assert serving_model(emulator) == first.id
    if test_set:
        drop_test_set(runtime, container, emulator)
    alerts_of(runtime, env["ALERT_QUEUE"])
    return first


def candidate(runtime, container, emulator, wer: float | None = None, name: str = "more") -> CustomModel:
    """A model trained because a new zip changed the locale's data; `wer`: its word error rate in evaluations."""
    before = set(emulator.models)
    helpers.ingest(runtime, container, f"en-US/language/{name}.zip", samples.language_zip(30))
    helpers.settle(emulator)
    reconcile(runtime)
    [new_id] = set(emulator.models) - before
    if wer is not None:
        emulator.set_quality(new_id, wer)
    helpers.settle(emulator)
    return helpers.client().get_model(new_id)


def judge(runtime, env, emulator) -> list[dict]:
    """The poll that creates the evaluation, the evaluation's run, the poll that decides; the alerts raised."""
    reconcile(runtime)
    helpers.settle(emulator)
    reconcile(runtime)
    return alerts_of(runtime, env["ALERT_QUEUE"])


def queued(runtime, env) -> list[dict]:
    return [json.loads(m) for m in runtime.peek(env["DEPLOY_QUEUE"])]


def test_a_better_model_passes_the_gate_and_is_deployed(runtime, container, emulator, gate_env, capsys):
    first = serving_locale(runtime, container, emulator, gate_env)
    emulator.set_quality(first.id, 0.12)
    better = candidate(runtime, container, emulator, wer=0.095)

    [alert] = judge(runtime, gate_env, emulator)

    assert (alert["kind"], alert["severity"]) == ("evaluation-passed", "info")
    details = alert["details"]
    assert (details["model1"], details["model2"]) == (first.id, better.id)
    assert (details["wordErrorRate1"], details["wordErrorRate2"], details["allowancePoints"]) == (0.12, 0.095, 0.0)
    [evaluation] = emulator.view("evaluations").values()
    assert evaluation["customProperties"] == {
        "managedBy": "speech-autopilot",
        "candidate": better.id,
        "testDataset": details["dataset"],
        "testingKind": "Evaluation",
        "alerted": "passed",
    }
    assert queued(runtime, gate_env) == [{"locale": "en-US", "model": better.self_uri, "reason": "trained"}]
    deploy(runtime, gate_env, emulator)
    assert serving_model(emulator) == better.id
    props = emulator.models[better.id]["customProperties"]
    assert (props["qualityGate"], props["evaluation"], props["wordErrorRate"]) == (
        "passed",
        entity_id(evaluation["self"]),
        "0.095",
    )

    assert status.main(["--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["wordErrorRate"] == 0.095 and row["qualityGate"]["decision"] == "passed"
    assert row["qualityGate"]["model"] == better.id


def test_a_worse_model_is_held_back_and_the_alert_says_by_how_much(runtime, container, emulator, gate_env):
    first = serving_locale(runtime, container, emulator, gate_env)
    emulator.set_quality(first.id, 0.12)
    worse = candidate(runtime, container, emulator, wer=0.135)

    [alert] = judge(runtime, gate_env, emulator)

    assert (alert["kind"], alert["severity"]) == ("evaluation-failed", "warning")
    assert "13.50 % against 12.00 %" in alert["message"] and "1.50 point(s) worse" in alert["message"]
    assert alert["details"]["regressionPoints"] == 1.5
    assert queued(runtime, gate_env) == [] and serving_model(emulator) == first.id
    assert emulator.models[worse.id]["customProperties"]["qualityGate"] == "failed"
    helpers.settle(emulator)
    reconcile(runtime)
    assert alerts_of(runtime, gate_env["ALERT_QUEUE"]) == [] and len(emulator.view("evaluations")) == 1

    # an automatic request for it (stale or hand-made) is refused; a person's manual one deploys it
    runtime.send(gate_env["DEPLOY_QUEUE"], helpers.deploy_message("en-US", worse.self_uri, "trained"))
    runtime.drain(gate_env["DEPLOY_QUEUE"])
    [refused] = alerts_of(runtime, gate_env["ALERT_QUEUE"])
    assert refused["kind"] == "deploy-rejected" and "failed the quality gate" in refused["message"]
    runtime.send(gate_env["DEPLOY_QUEUE"], helpers.deploy_message("en-US", worse.self_uri, "manual"))
    deploy(runtime, gate_env, emulator)
    assert serving_model(emulator) == worse.id


def test_an_equal_model_is_deployed_at_allowance_zero(runtime, container, emulator, gate_env):
    first = serving_locale(runtime, container, emulator, gate_env)
    emulator.set_quality(first.id, 0.1)
    equal = candidate(runtime, container, emulator, wer=0.1)

    [alert] = judge(runtime, gate_env, emulator)

    assert alert["kind"] == "evaluation-passed" and alert["details"]["regressionPoints"] == 0
    assert [m["model"] for m in queued(runtime, gate_env)] == [equal.self_uri]


def test_without_a_test_set_auto_deploys_as_before(runtime, container, emulator, gate_env):
    serving_locale(runtime, container, emulator, gate_env, test_set=False)
    newer = candidate(runtime, container, emulator)

    reconcile(runtime)

    assert [m["model"] for m in queued(runtime, gate_env)] == [newer.self_uri]
    assert emulator.view("evaluations") == {} and alerts_of(runtime, gate_env["ALERT_QUEUE"]) == []


def test_without_a_test_set_required_deploys_nothing_and_says_why(runtime, container, emulator, gate_env, monkeypatch):
    serving_locale(runtime, container, emulator, gate_env, test_set=False)
    monkeypatch.setenv("QUALITY_GATE", "required")
    held = candidate(runtime, container, emulator)

    reconcile(runtime)
    reconcile(runtime)

    [alert] = alerts_of(runtime, gate_env["ALERT_QUEUE"])
    assert alert["kind"] == "evaluation-error" and "QUALITY_GATE is required" in alert["message"]
    assert queued(runtime, gate_env) == []
    assert emulator.models[held.id]["customProperties"]["qualityGate"] == "untested"

    drop_test_set(runtime, container, emulator)  # the test set arrives: the candidate is judged on it
    [passed] = judge(runtime, gate_env, emulator)
    assert passed["kind"] == "evaluation-passed"
    assert [m["model"] for m in queued(runtime, gate_env)] == [held.self_uri]


def test_a_failed_evaluation_alerts_and_deploys_nothing(runtime, container, emulator, gate_env):
    first = serving_locale(runtime, container, emulator, gate_env)
    candidate(runtime, container, emulator)
    emulator.fail_next("evaluation", code="InvalidAudio", message="No audio in the test set could be recognized.")

    [alert] = judge(runtime, gate_env, emulator)

    assert (alert["kind"], alert["severity"]) == ("evaluation-error", "warning")
    assert "No audio in the test set could be recognized" in alert["message"]
    reconcile(runtime)
    assert queued(runtime, gate_env) == [] and serving_model(emulator) == first.id
    assert alerts_of(runtime, gate_env["ALERT_QUEUE"]) == []


@pytest.mark.parametrize(("wer", "deployed"), [(0.115, True), (0.135, False)])
def test_an_expiry_retrain_deploys_within_its_allowance_and_alerts_critically_beyond(
    runtime, container, emulator, gate_env, wer, deployed
):
    first = serving_locale(runtime, container, emulator, gate_env)
    emulator.set_quality(first.id, 0.10)
    target = first.transcription_expiry - timedelta(days=10)
    emulator.add_base_model("en-US", created=target - timedelta(days=20))
    emulator.advance(target - emulator.now())
    before = set(emulator.models)
    emulator.set_next_quality(wer)
    assert runtime.fire_timer("expiry").ok
    [retrain] = set(emulator.models) - before
    assert emulator.models[retrain]["customProperties"]["reason"] == "expiry"
    alerts_of(runtime, gate_env["ALERT_QUEUE"])
    helpers.settle(emulator)

    [alert] = judge(runtime, gate_env, emulator)

    if deployed:
        assert alert["kind"] == "evaluation-passed" and alert["details"]["allowancePoints"] == 2.0
        assert queued(runtime, gate_env) == [
            {"locale": "en-US", "model": emulator.models[retrain]["self"], "reason": "expiry"}
        ]
    else:
        assert (alert["kind"], alert["severity"]) == ("evaluation-failed", "critical")
        assert alert["details"]["daysLeft"] == 10 and "expires in 10 day(s)" in alert["message"]
        assert queued(runtime, gate_env) == []
        assert runtime.fire_timer("expiry").ok  # the held-back retrain is not retrained again
        assert set(emulator.models) - before == {retrain}


def test_a_test_set_is_never_trained_on(runtime, container, emulator, gate_env, models_created):
    test_dataset = drop_test_set(runtime, container, emulator)  # before any training data: nothing to train
    reconcile(runtime)
    assert models_created == []
    helpers.ingest(runtime, container, "en-US/acoustic/calls.zip", samples.acoustic_zip(3))
    helpers.settle(emulator)
    reconcile(runtime)
    helpers.settle(emulator)
    reconcile(runtime)  # the first model is judged against its base model
    helpers.settle(emulator)
    reconcile(runtime)
    deploy(runtime, gate_env, emulator)
    changed = drop_test_set(runtime, container, emulator, lines=TEST_LINES + 2)  # a changed test set
    reconcile(runtime)

    assert len(models_created) == 1 and len(emulator.models) == 1
    trained_on = {entity_id(d["self"]) for body in models_created for d in body["datasets"]}
    assert test_dataset not in trained_on and changed not in trained_on and len(trained_on) == 1
    [evaluation] = emulator.view("evaluations").values()
    assert entity_id(evaluation["model1"]["self"]) == entity_id(
        emulator.models[serving_model(emulator)]["baseModel"]["self"]
    )
    test_props = emulator.datasets[changed]["customProperties"]
    assert test_props["purpose"] == "test" and emulator.datasets[changed]["kind"] == "Acoustic"
    assert emulator.datasets[test_dataset]["customProperties"][managed.SUPERSEDED_BY] == changed


def test_an_evaluation_the_service_refuses_alerts_once_and_a_new_test_set_is_tried(
    runtime, container, emulator, gate_env
):
    first = serving_locale(runtime, container, emulator, gate_env)
    held = candidate(runtime, container, emulator)
    refusal = {
        "code": "InvalidArgument",
        "message": "The dataset holds no audio that can be evaluated.",
        "innerError": {"code": "InvalidDataset", "message": "The dataset holds no audio that can be evaluated."},
    }
    emulator.inject(status=400, count=1, retry_after=None, method="POST", path_contains="/evaluations", body=refusal)

    reconcile(runtime)
    reconcile(runtime)  # not asked again for this test set

    [alert] = alerts_of(runtime, gate_env["ALERT_QUEUE"])
    assert (alert["kind"], alert["severity"]) == ("evaluation-error", "warning")
    assert "refused to evaluate" in alert["message"] and "no audio that can be evaluated" in alert["message"]
    assert [r["status"] for r in emulator.requests if r["method"] == "POST" and "/evaluations" in r["path"]] == [400]
    assert emulator.models[held.id]["customProperties"]["qualityGate"] == "error"
    assert queued(runtime, gate_env) == [] and serving_model(emulator) == first.id

    drop_test_set(runtime, container, emulator, name="en-US/test/usable.zip")
    [passed] = judge(runtime, gate_env, emulator)
    assert passed["kind"] == "evaluation-passed"
    assert [m["model"] for m in queued(runtime, gate_env)] == [held.self_uri]
