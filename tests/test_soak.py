"""A shortened soak (bench/soak.py): 400 simulated days of one locale through the real functions, the offline host,
Azurite and the Speech emulator, with the same scenario and incidents as the three-year bench."""

from __future__ import annotations

import pytest

from bench import soak

DAYS = 400
LOCALE = "en-US"


@pytest.fixture(scope="module")
def report(azurite) -> dict:
    names = {"TRAINING_CONTAINER": "soak-training", "DEPLOY_QUEUE": "soak-deploy", "ALERT_QUEUE": "soak-alerts"}
    return soak.build_report(soak.simulate(azurite, locales=[LOCALE], days=DAYS, seed=7, names=names))


@pytest.mark.slow
def test_no_endpoint_ever_serves_an_expired_model(report):
    assert report["locales"][LOCALE]["expiredDays"] == []


@pytest.mark.slow
def test_nothing_is_created_twice(report):
    assert report["locales"][LOCALE]["mostManagedEndpoints"] == 1
    assert report["duplicates"] == {"models": [], "datasets": []}


@pytest.mark.slow
def test_one_training_per_data_change_and_the_injected_failure_is_not_retried(report):
    figures = report["locales"][LOCALE]
    assert figures["failedTrainings"] == 1
    assert figures["dataTrainings"] == figures["dropBatches"]
    assert figures["mostExpiryRetrainsOfOneModel"] <= 1


@pytest.mark.slow
def test_every_incident_heals_without_a_person(report):
    incidents = {i["kind"]: i for i in report["incidents"]}
    assert set(incidents) == set(soak.INCIDENTS)
    assert all(i["servedFrom"] for i in incidents.values()), incidents
    assert incidents["throttle"]["faultAnswers"] > 0 and incidents["patch-outage"]["faultAnswers"] > 0
    kinds = [a["kind"] for a in report["alerts"]["list"]]
    assert kinds.count("model-failed") == 1 and kinds.count("deploy-poisoned") == 1


@pytest.mark.slow
def test_api_calls_stay_far_below_the_rate_limit(report):
    assert report["api"]["maxIn10Seconds"] < soak.RATE_LIMIT_CALLS // 2
    assert all(goal["met"] for goal in report["goals"]), report["goals"]


@pytest.mark.slow
def test_a_regressing_candidate_is_held_back_and_no_day_is_spent_on_an_expired_model(report):
    figures = report["locales"][LOCALE]
    assert figures["regressions"] == 1
    [held] = figures["heldBack"]
    assert held["gate"] == "failed" and not held["served"]
    succeeded = sum(1 for t in figures["trainings"] if t["status"] == "Succeeded")
    assert figures["gatePassed"] + 1 == succeeded  # every other trained model passed the gate
    assert figures["expiredDays"] == []
    kinds = [a["kind"] for a in report["alerts"]["list"]]
    assert kinds.count("evaluation-failed") == 1 and "evaluation-error" not in kinds
    assert kinds.count("evaluation-passed") == figures["gatePassed"]


@pytest.mark.slow
def test_every_webhook_post_is_actionable_or_reports_a_hands_off_action(report):
    webhook = report["webhook"]
    assert 0 < webhook["posts"] < soak.MAX_WEBHOOK_POSTS
    assert webhook["worthReading"] == webhook["posts"], webhook["list"]
    assert {p["severity"] for p in webhook["list"]} <= {"warning", "critical"}  # the default floor: no info
    assert webhook["byKind"]["model-failed"]["posted"] == 1 and "endpoint-deployed" not in webhook["byKind"]
    queued = {a["kind"] for a in report["alerts"]["list"]}
    assert {"evaluation-passed", "endpoint-deployed"} & queued  # informational alerts still reach the queue
