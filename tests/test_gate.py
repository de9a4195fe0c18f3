"""The quality gate in the pure planner (shared/reconcile.Gate, shared/quality.py), on hand-built snapshots in the
style of tests/test_reconcile.py (its factories; entities parsed from JSON shaped like the service's answers)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime
from typing import Any

import pytest

from shared import managed, quality
from shared.deploy import DeployRequest, plan_deploy
from shared.quality import Quality
from shared.reconcile import (
    CreateEvaluation,
    CreateModel,
    Raise,
    RequestDeploy,
    Snapshot,
    UpdateProperties,
    locale_states,
    plan_expiry,
    plan_poll,
)
from shared.speech import CustomModel, Dataset, Evaluation
from tests.test_reconcile import (
    NOW,
    alerts,
    apply,
    base_model,
    dataset,
    days,
    deployed,
    iso,
    model,
    of,
    only_training,
    pair,
    serving,
    snap,
    uri,
    zip_blob,
)

TEST_ZIP = "en-US/test/holdout.zip"
WORDS = 200


# -- factories ---------------------------------------------------------------------------------------------------


def held_out(
    dataset_id: str = "t1", name: str = TEST_ZIP, *, status: str = "Succeeded", created: datetime | None = None
):
    """A test zip and its dataset (Acoustic, marked purpose=test), the zip's state matching the dataset."""
    locale, _, rest = name.split("/", 2)
    made = dataset(dataset_id, f"{locale}/acoustic/{rest}", status=status, created=created)
    props = {**made.custom_properties, managed.SOURCE: f"training/{name}", managed.PURPOSE: managed.TEST_DATA}
    tag = {"Succeeded": "succeeded", "Failed": "failed"}.get(status, "submitted")
    return zip_blob(name, status=tag, dataset_id=dataset_id), Dataset.from_json({**made.raw, "customProperties": props})


def figures(n: str, wer: float | None) -> dict[str, Any]:
    if wer is None:
        return {f"wordErrorRate{n}": -1.0, f"wordCount{n}": -1}
    errors = round(wer * WORDS)
    return {
        f"wordErrorRate{n}": wer,
        f"sentenceCount{n}": WORDS // 10,
        f"wordCount{n}": WORDS,
        f"correctWordCount{n}": WORDS - errors,
        f"wordSubstitutionCount{n}": errors - 1 if errors else 0,
        f"wordDeletionCount{n}": 1 if errors else 0,
        f"wordInsertionCount{n}": 0,
    }


def evaluation(
    evaluation_id: str,
    candidate: str,
    *,
    model1: str | None = None,
    test: str = "t1",
    status: str = "Succeeded",
    wer1: float | None = 0.10,
    wer2: float | None = 0.08,
    created: datetime | None = None,
    error: tuple[str, str] | None = None,
    props: dict[str, str] | None = None,
    is_managed: bool = True,
) -> Evaluation:
    mine = managed.managed_properties(**{managed.CANDIDATE: candidate, managed.TEST_DATASET: test})
    properties = {**figures("1", wer1), **figures("2", wer2)} if status == "Succeeded" else {}
    if error:
        properties["error"] = {"code": error[0], "message": error[1]}
    return Evaluation.from_json(
        {
            "self": uri("evaluations", evaluation_id),
            "model1": {"self": model1 or uri("models", "m0")},
            "model2": {"self": uri("models", candidate)},
            "dataset": {"self": uri("datasets", test)},
            "properties": properties,
            "status": status,
            "createdDateTime": iso(created or NOW - days(1)),
            "lastActionDateTime": iso(created or NOW - days(1)),
            "locale": "en-US",
            "displayName": f"gate {evaluation_id}",
            "customProperties": {**(mine if is_managed else {}), **(props or {})},
        }
    )


def locale(*, candidate: dict | None = None, evaluations=(), tests=None, **kwargs) -> Snapshot:
    """en-US: one training zip, m0 serving its endpoint, candidate m1 trained on more data and Succeeded."""
    newest = model("m1", ("d1", "d2"), created=NOW - days(2), **(candidate or {}))
    tests = (held_out(),) if tests is None else tests
    return dataclasses.replace(
        snap(
            pair("en-US/acoustic/calls.zip", "d1"),
            pair("en-US/language/more.zip", "d2"),
            *tests,
            models=[model("m0", ("d1",), created=NOW - days(90)), newest],
            endpoints=[deployed("e1", "m0")],
            **kwargs,
        ),
        evaluations=list(evaluations),
    )


def poll(snapshot: Snapshot, gate: Quality = quality.DEFAULT, auto_deploy: bool = True):
    return plan_poll(snapshot, auto_deploy=auto_deploy, gate=gate)


_ids = itertools.count(1)


def carry_out(snapshot: Snapshot, actions) -> Snapshot:
    """tests/test_reconcile.apply, plus what the gate adds: evaluations created (NotStarted) and their tokens."""
    evaluations = {e.id: e for e in snapshot.evaluations}
    rest = []
    for action in actions:
        if isinstance(action, CreateEvaluation):
            new_id = f"ev-new-{next(_ids)}"
            evaluations[new_id] = Evaluation.from_json(
                {
                    "self": uri("evaluations", new_id),
                    "model1": {"self": action.model1},
                    "model2": {"self": action.model2},
                    "dataset": {"self": uri("datasets", action.dataset)},
                    "properties": figures("1", None) | figures("2", None),
                    "status": "NotStarted",
                    "createdDateTime": iso(snapshot.now),
                    "lastActionDateTime": iso(snapshot.now),
                    "locale": action.locale,
                    "displayName": action.display_name,
                    "customProperties": dict(action.custom_properties),
                }
            )
        elif isinstance(action, UpdateProperties) and action.collection == "evaluations":
            raw = evaluations[action.id].raw
            evaluations[action.id] = Evaluation.from_json({**raw, "customProperties": dict(action.custom_properties)})
        else:
            rest.append(action)
    return dataclasses.replace(apply(snapshot, rest), evaluations=list(evaluations.values()))


def finish(snapshot: Snapshot, evaluation_id: str, **kwargs: Any) -> Snapshot:
    """The evaluation has finished as `kwargs` say (evaluation() arguments)."""
    old = next(e for e in snapshot.evaluations if e.id == evaluation_id)
    done = evaluation(evaluation_id, old.model2_id or "", model1=old.model1_uri, test=old.dataset_id or "", **kwargs)
    done = Evaluation.from_json({**done.raw, "customProperties": dict(old.custom_properties)})
    return dataclasses.replace(
        snapshot, evaluations=[done if e.id == evaluation_id else e for e in snapshot.evaluations]
    )


def recorded(snapshot: Snapshot, model_id: str) -> dict[str, str]:
    return dict(next(m for m in snapshot.models if m.id == model_id).custom_properties)


# -- test data is never trained on ------------------------------------------------------------------------------


def test_a_test_dataset_is_kept_apart_from_the_training_set():
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), held_out("t1"), zips=[zip_blob("en-US/test/new.zip")])

    state = locale_states(snapshot)["en-US"]

    assert set(state.desired) == {"d1"} and set(state.tests) == {"t1"}
    assert state.pending == [] and state.tests_pending == ["en-US/test/new.zip"]  # a test zip holds no training back
    assert only_training(poll(snapshot)).dataset_ids == ("d1",)


def test_adding_or_changing_a_test_set_does_not_retrain():
    trained = snap(
        pair("en-US/acoustic/calls.zip", "d1"), models=[model("m1", ("d1",))], endpoints=[deployed("e1", "m1")]
    )
    assert poll(trained) == []

    with_test = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        held_out("t2", created=NOW - days(1)),
        datasets=[held_out("t1")[1]],  # the test zip's earlier content
        models=[model("m1", ("d1",))],
        endpoints=[deployed("e1", "m1")],
    )
    actions = poll(with_test)
    assert of(actions, CreateModel) == [] and of(actions, CreateEvaluation) == []
    assert [(a.collection, a.id) for a in of(actions, UpdateProperties)] == [("datasets", "t1")]  # supersededBy


def test_an_expiry_retrain_from_the_serving_models_own_datasets_leaves_a_test_set_out():
    snapshot = serving(10)
    _, test = held_out("t1")
    no_zips = dataclasses.replace(
        snapshot,
        zips=[],
        datasets=[*snapshot.datasets, test],
        models=[
            CustomModel.from_json(
                {**snapshot.models[0].raw, "datasets": [{"self": uri("datasets", i)} for i in ("d-en-US", "t1")]}
            )
        ],
    )

    assert only_training(plan_expiry(no_zips, tiers=(30, 14, 7, 1), auto_retrain=True)).dataset_ids == ("d-en-US",)


# -- when the gate evaluates ------------------------------------------------------------------------------------


def test_a_succeeded_candidate_is_evaluated_against_the_serving_model_on_the_newest_test_set():
    snapshot = locale(tests=(held_out("t-old", "en-US/test/old.zip", created=NOW - days(30)), held_out("t1")))

    actions = poll(snapshot)

    [create] = actions
    assert isinstance(create, CreateEvaluation)
    assert (create.model1, create.model2, create.dataset) == (uri("models", "m0"), uri("models", "m1"), "t1")
    assert create.custom_properties == {
        managed.MANAGED: managed.MANAGED_BY,
        managed.CANDIDATE: "m1",
        managed.TEST_DATASET: "t1",
        managed.TESTING_KIND: "Evaluation",
    }
    running = carry_out(snapshot, actions)
    assert poll(running) == []  # looked up before created: never a second one
    assert poll(finish(running, running.evaluations[0].id, status="Running")) == []


def test_without_an_endpoint_the_candidate_is_compared_with_its_base_model():
    snapshot = dataclasses.replace(locale(), endpoints=[])

    [create] = of(poll(snapshot), CreateEvaluation)

    assert create.model1 == uri("models/base", "base-2025")


def test_an_expired_serving_model_is_no_baseline_the_candidates_base_model_is():
    snapshot = locale()
    expired = model("m0", ("d1",), created=NOW - days(900), expires=NOW - days(1))
    snapshot = dataclasses.replace(snapshot, models=[expired, snapshot.models[1]])

    [create] = of(poll(snapshot), CreateEvaluation)

    assert create.model1 == uri("models/base", "base-2025")


def test_an_evaluation_someone_else_made_is_not_the_gates():
    theirs = evaluation("ev-theirs", "m1", is_managed=False)

    assert len(of(poll(locale(evaluations=[theirs])), CreateEvaluation)) == 1


# -- the decision -----------------------------------------------------------------------------------------------


def test_a_better_candidate_passes_is_deployed_and_records_its_evaluation():
    snapshot = locale(evaluations=[evaluation("ev1", "m1", wer1=0.10, wer2=0.085)])

    actions = poll(snapshot)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity, alert.resource) == ("evaluation-passed", "info", uri("models", "m1"))
    assert "8.50 %" in alert.message and "10.00 %" in alert.message
    assert [a.message() for a in of(actions, RequestDeploy)] == [
        {"locale": "en-US", "model": uri("models", "m1"), "reason": "trained"}
    ]
    assert isinstance(actions[0], Raise)  # delivered before anything records it
    after = carry_out(snapshot, actions)
    props = recorded(after, "m1")
    assert props[managed.QUALITY_GATE] == "passed" and props[managed.EVALUATION] == "ev1"
    assert props[managed.WORD_ERROR_RATE] == "0.085" and props[managed.DEPLOY_REQUESTED] == iso(NOW)
    assert managed.alerted(after.evaluations[0]) == {"passed"}
    assert poll(after) == []


def test_an_equal_candidate_passes_at_allowance_zero():
    actions = poll(locale(evaluations=[evaluation("ev1", "m1", wer1=0.10, wer2=0.10)]))

    assert [a.kind for a in alerts(actions)] == ["evaluation-passed"] and len(of(actions, RequestDeploy)) == 1


def test_a_worse_candidate_is_held_back_and_the_alert_says_by_how_much():
    snapshot = locale(evaluations=[evaluation("ev1", "m1", wer1=0.10, wer2=0.125)])

    actions = poll(snapshot)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity) == ("evaluation-failed", "warning")
    assert "2.50 point(s) worse" in alert.message and "allowance 0 point(s)" in alert.message
    assert of(actions, RequestDeploy) == []
    d = alert.details
    assert (d["wordErrorRate1"], d["wordErrorRate2"], d["regressionPoints"], d["allowancePoints"]) == (
        0.1,
        0.125,
        2.5,
        0,
    )
    assert (d["evaluation"], d["model1"], d["model2"], d["dataset"]) == ("ev1", "m0", "m1", "t1")
    assert (d["wordSubstitutionCount2"], d["wordDeletionCount2"], d["wordInsertionCount2"]) == (24, 1, 0)
    assert (d["wordSubstitutionCount1"], d["wordDeletionCount1"], d["wordInsertionCount1"]) == (19, 1, 0)
    after = carry_out(snapshot, actions)
    assert recorded(after, "m1")[managed.QUALITY_GATE] == "failed"
    assert managed.DEPLOY_REQUESTED not in recorded(after, "m1")
    assert poll(after) == []


def test_the_allowance_of_a_data_change_training_is_quality_max_wer_regression():
    snapshot = locale(evaluations=[evaluation("ev1", "m1", wer1=0.10, wer2=0.105)])

    assert of(poll(snapshot), RequestDeploy) == []
    assert len(of(poll(snapshot, Quality(max_regression=0.5)), RequestDeploy)) == 1


@pytest.mark.parametrize(
    ("status", "wer2", "fragment"),
    [("Failed", None, "failed: InvalidAudio: nothing recognized"), ("Succeeded", None, "no word error rate")],
)
def test_an_evaluation_that_failed_or_gave_no_rate_alerts_and_deploys_nothing(status, wer2, fragment):
    error = ("InvalidAudio", "nothing recognized") if status == "Failed" else None
    snapshot = locale(evaluations=[evaluation("ev1", "m1", status=status, wer2=wer2, error=error)])

    actions = poll(snapshot)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity) == ("evaluation-error", "warning") and fragment in alert.message
    assert of(actions, RequestDeploy) == []
    after = carry_out(snapshot, actions)
    assert recorded(after, "m1")[managed.QUALITY_GATE] == "error"
    assert poll(after) == []


def test_a_new_test_set_judges_a_held_back_candidate_again():
    failed = evaluation("ev1", "m1", wer2=0.2, props={managed.ALERTED: "failed"})
    held = {"props": {managed.QUALITY_GATE: "failed", managed.EVALUATION: "ev1"}}
    newer = held_out("t2", "en-US/test/new.zip", created=NOW - days(1))

    [create] = poll(locale(candidate=held, evaluations=[failed], tests=(held_out("t1"), newer)))

    assert isinstance(create, CreateEvaluation) and create.dataset == "t2"


# -- QUALITY_GATE -----------------------------------------------------------------------------------------------


def test_auto_without_test_data_deploys_as_before_required_holds_back_with_one_alert():
    snapshot = locale(tests=())

    assert len(of(poll(snapshot), RequestDeploy)) == 1

    required = Quality(gate="required")
    actions = poll(snapshot, required)
    [alert] = alerts(actions)
    assert (alert.kind, alert.severity) == ("evaluation-error", "warning")
    assert "QUALITY_GATE is required" in alert.message and "training/en-US/test/{name}.zip" in alert.message
    assert of(actions, RequestDeploy) == []
    after = carry_out(snapshot, actions)
    assert recorded(after, "m1")[managed.QUALITY_GATE] == "untested"
    assert poll(after, required) == []


def test_a_test_set_still_processing_holds_the_candidate_until_it_can_be_judged():
    snapshot = locale(tests=(held_out("t1", status="Running"),))

    assert poll(snapshot) == []
    assert poll(snapshot, Quality(gate="required")) == []


def test_off_deploys_without_evaluating():
    actions = poll(locale(), Quality(gate="off"))

    assert of(actions, CreateEvaluation) == [] and len(of(actions, RequestDeploy)) == 1


def test_without_auto_deploy_a_data_change_model_is_not_evaluated():
    assert poll(locale(), auto_deploy=False) == []


# -- expiry retrains --------------------------------------------------------------------------------------------


def retrained(wer2: float, left: float = 10) -> Snapshot:
    """m-en-US serves and expires in `left` days; its expiry retrain m-r has Succeeded and been evaluated."""
    base = serving(left)
    retrain = model(
        "m-r",
        ("d-en-US",),
        created=NOW - days(1),
        props={managed.REASON: "expiry", managed.RETRAIN_OF: "m-en-US"},
    )
    judged = evaluation("ev1", "m-r", model1=uri("models", "m-en-US"), wer1=0.10, wer2=wer2)
    return dataclasses.replace(
        base,
        zips=[*base.zips, held_out()[0]],
        datasets=[*base.datasets, held_out()[1]],
        models=[*base.models, retrain],
        evaluations=[judged],
    )


def test_an_expiry_retrain_slightly_worse_than_the_serving_model_deploys_within_its_allowance():
    actions = poll(retrained(0.115))

    assert [a.kind for a in alerts(actions)] == ["evaluation-passed"]
    assert [a.message()["reason"] for a in of(actions, RequestDeploy)] == ["expiry"]


def test_an_expiry_retrain_beyond_its_allowance_alerts_critically_with_the_days_left():
    snapshot = retrained(0.13)

    actions = poll(snapshot)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity) == ("evaluation-failed", "critical")
    assert alert.details["daysLeft"] == 10 and alert.details["allowancePoints"] == 2.0
    assert "expires in 10 day(s)" in alert.message and "falls back to the base model" in alert.message
    assert of(actions, RequestDeploy) == []
    after = carry_out(snapshot, actions)
    # the held-back retrain is its replacement all the same: retraining the same data would not do better
    assert of(plan_expiry(after, tiers=(30, 14, 7, 1), auto_retrain=True), CreateModel) == []


def test_a_held_back_data_change_model_does_not_stop_the_serving_models_expiry_retrain():
    snapshot = serving(10)
    held = model("m-held", ("d-en-US",), created=NOW - days(3), props={managed.QUALITY_GATE: "failed"})
    waiting = model("m-waiting", ("d-en-US",), created=NOW - days(3))

    held_back = dataclasses.replace(snapshot, models=[*snapshot.models, held])
    on_its_way = dataclasses.replace(snapshot, models=[*snapshot.models, waiting])

    assert (
        only_training(plan_expiry(held_back, tiers=(30, 14, 7, 1), auto_retrain=True)).custom_properties[
            managed.RETRAIN_OF
        ]
        == "m-en-US"
    )
    assert of(plan_expiry(on_its_way, tiers=(30, 14, 7, 1), auto_retrain=True), CreateModel) == []


# -- customProperties limits ------------------------------------------------------------------------------------


def test_a_candidate_whose_map_a_person_filled_is_still_gated_and_nothing_crashes():
    theirs = {f"team{i}": "x" for i in range(4)}  # with managedBy, datasetSet, baseModel, reason: 8 of 10
    snapshot = locale(candidate={"props": theirs}, evaluations=[evaluation("ev1", "m1", wer2=0.2)])

    actions = poll(snapshot)

    assert [a.kind for a in alerts(actions)] == ["evaluation-failed"]
    after = carry_out(snapshot, actions)
    props = recorded(after, "m1")
    assert props[managed.QUALITY_GATE] == "failed" and len(props) == managed.MAX_ENTRIES - 1  # one left for alerted
    assert poll(after) == []  # the alert's token sits on the evaluation: not raised again

    passing = locale(candidate={"props": theirs}, evaluations=[evaluation("ev1", "m1", wer2=0.05)])
    [update] = [a for a in of(poll(passing), UpdateProperties) if a.collection == "models"]
    assert update.custom_properties[managed.DEPLOY_REQUESTED] == iso(NOW)  # deployRequested comes first
    assert len(update.custom_properties) <= managed.MAX_ENTRIES


def test_record_keeps_a_slot_for_alerted_and_never_raises():
    full = {f"k{i}": "v" for i in range(managed.MAX_ENTRIES)}
    judged = evaluation("ev1", "m1")

    assert quality.record(full, "failed", judged) == full
    assert quality.record({"a": "b"}, "passed", judged) == {
        "a": "b",
        managed.QUALITY_GATE: "passed",
        managed.EVALUATION: "ev1",
        managed.WORD_ERROR_RATE: "0.08",
    }
    eight = {f"k{i}": "v" for i in range(8)}
    assert set(quality.record(eight, "failed", judged)) - set(eight) == {managed.QUALITY_GATE}
    assert len(quality.record({**eight, managed.ALERTED: "30"}, "failed", judged)) == managed.MAX_ENTRIES


# -- the verdict ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wer1", "wer2", "allowance", "decision"),
    [
        (0.10, 0.10, 0, "passed"),
        (0.10, 0.12, 2, "passed"),  # 12.000000000000002 points is 12
        (0.10, 0.1201, 2, "failed"),
        (0.30, 0.05, 0, "passed"),
        (0.10, 0.1001, 0, "failed"),
    ],
)
def test_the_verdict_compares_in_percentage_points(wer1, wer2, allowance, decision):
    assert quality.verdict(evaluation("ev", "m1", wer1=wer1, wer2=wer2), allowance).decision == decision


def test_the_evaluation_view_keeps_the_newest_per_candidate_and_test_set():
    older = evaluation("ev-old", "m1", created=NOW - days(5), wer2=0.2)
    newer = evaluation("ev-new", "m1", created=NOW - days(1), wer2=0.05)
    view = quality.EvaluationView([newer, older, evaluation("ev-other", "m2", test="t2", created=NOW - days(9))])

    assert view.find("m1", "t1") is newer and view.find("m1", "t2") is None
    assert view.word_error_rate("m1") == (0.05, "ev-new") and view.word_error_rate("m0") == (0.10, "ev-new")


# -- the deploy handler -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "gate", "action"),
    [("trained", "auto", "reject"), ("expiry", "required", "reject"), ("manual", "auto", "patch"),
     ("rollback", "auto", "patch"), ("trained", "off", "patch")],
)  # fmt: skip
def test_the_deploy_handler_refuses_an_automatic_request_for_a_model_that_failed_the_gate(reason, gate, action):
    failed = model("m1", props={managed.QUALITY_GATE: "failed", managed.EVALUATION: "ev1"})
    request = DeployRequest(locale="en-US", model=failed.self_uri, endpoint=None, reason=reason)

    plan = plan_deploy(request, failed, [deployed("e1", "m0")], NOW, quality_gate=gate)

    assert plan.action == action
    if action == "reject":
        assert "failed the quality gate (evaluation ev1)" in plan.why and "reason manual" in plan.why


def test_the_deploy_handler_lets_a_passed_or_ungated_model_through():
    for props in ({managed.QUALITY_GATE: "passed"}, {}):
        request = DeployRequest(locale="en-US", model=uri("models", "m1"), endpoint=None, reason="trained")
        assert plan_deploy(request, model("m1", props=props), [deployed("e1", "m0")], NOW, "auto").action == "patch"


def test_base_models_in_the_snapshot_are_the_fallback_baseline():
    snapshot = dataclasses.replace(locale(), endpoints=[], base_models=[base_model("base-2025")])
    [create] = of(poll(snapshot), CreateEvaluation)
    assert create.model1 == uri("models/base", "base-2025")


def test_a_test_set_the_service_refused_for_a_candidate_is_not_asked_again_a_newer_one_is():
    refused = {"props": {managed.ALERTED: quality.refused_token("t1"), managed.QUALITY_GATE: "error"}}

    assert poll(locale(candidate=refused)) == []
    newer = held_out("t2", "en-US/test/new.zip", created=NOW - days(1))
    [create] = poll(locale(candidate=refused, tests=(held_out("t1"), newer)))
    assert isinstance(create, CreateEvaluation) and create.dataset == "t2"


# -- the drop convention's test folder ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["en-US/test/holdout.zip", "EN-us/Test/holdout.ZIP", "en-US/test/2026/holdout.zip"])
def test_the_test_folder_makes_acoustic_test_data(name):
    from shared.ingest import Target, dataset_request, is_test_zip, parse_blob_name

    target = parse_blob_name(name)

    assert target == Target("en-US", "Acoustic", "holdout", test=True) and is_test_zip(name)
    request = dataset_request(target, f"training/{name}", "zip1:abc")
    assert request["kind"] == "Acoustic" and request["custom_properties"][managed.PURPOSE] == managed.TEST_DATA
    assert request["display_name"] == "holdout (Acoustic test data, en-US)"
    assert not is_test_zip("en-US/acoustic/holdout.zip")
    assert (
        managed.PURPOSE not in dataset_request(parse_blob_name("en-US/acoustic/a.zip"), "p", "c")["custom_properties"]
    )
