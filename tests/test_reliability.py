"""The reliability suite (issue #13): nothing lost, nothing stuck.

Each case drives the real functions through the worker rig (local.runtime) against Azurite and the Speech
emulator, injects one fault at the app's edges (tests/faults.py), states the outcome it expects (an alert, a retry,
a rejection, no action), then calls `check` once: the faults clear, the host keeps running until nothing changes,
and every invariant is checked in that one place (zips, duplicates, secrets, alerts, the locale's end state).
The suite prints a table of its cases at the end of the run.

    .venv/bin/python -m pytest -m reliability
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Callable

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from local import samples
from local.runtime import QueuedMessage
from shared import clock, context
from shared.guard import LockLost
from shared.speech import entity_id
from tests.faults import (
    RESULTS,
    START,
    Expect,
    FaultSession,
    Records,
    Result,
    StorageFaults,
    Webhook,
    World,
    answer,
    check,
    cut_body,
    first,
    lose_answer,
    loud_loggers,
    naive_times,
    refuse,
    rewrite,
    storage_clock,
    storage_error,
    storage_raise,
    without_dates,
)

pytestmark = pytest.mark.reliability

EN = "en-US"


@pytest.fixture(scope="module")
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def world(request, monkeypatch, app_env, runtime, container, emulator, webhook):
    import azure_functions_runtime

    from shared.flows import ingest as ingest_flow

    url = webhook.url()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", url)
    session = FaultSession()
    sleeps: list[float] = []
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"session": session, "sleep": sleeps.append})  # no real waits
    storage = StorageFaults(in_app=lambda: azure_functions_runtime.invocation_id_cv.get() is not None)
    storage.install(monkeypatch)
    sas_urls: list[str] = []
    original_sas = ingest_flow.content_sas_url

    def sas(*args, **kwargs):
        sas_urls.append(original_sas(*args, **kwargs))
        return sas_urls[-1]

    monkeypatch.setattr(ingest_flow, "content_sas_url", sas)
    context.reset()
    emulator.set_now(START)
    clock.use_clock(emulator.now)
    records = Records()
    logging.getLogger().addHandler(records)
    restore = loud_loggers()
    env = {**app_env, "ALERT_WEBHOOK_URL": url}
    case = World(request.node.name, runtime, container, emulator, env, webhook, records, session, storage, sas_urls)
    case.sleeps = sleeps
    try:
        yield case
    finally:
        restore()
        logging.getLogger().removeHandler(records)
        runtime.on_invocation = None
        if not case.checked:
            RESULTS.append(Result(case.name, handled=False, problems=["its expected outcome failed"]))


def ok(invocation):
    assert invocation.ok, invocation.error
    return invocation


def failed(invocation, fragment: str = ""):
    assert not invocation.ok, "the invocation was expected to fail (the host retries it)"
    assert fragment in str(invocation.error), invocation.error
    return invocation


def state(world: World, name: str):
    from shared.storage import BlobState

    return BlobState.from_metadata(world.container.get_blob_client(name).get_blob_properties().metadata)


def managed_datasets(world: World, name: str) -> list[dict]:
    path = world.path_prefix + name
    return [d for d in world.emulator.datasets.values() if d["customProperties"].get("sourcePath") == path]


def posts(world: World, fragment: str) -> list[dict]:
    return [r for r in world.emulator.requests if r["method"] == "POST" and r["path"].endswith(fragment)]


LANGUAGE = samples.language_zip()
NOT_A_ZIP = b"this is not a zip archive, just text" * 8


# -- the bad inputs already covered elsewhere (a few representative ones) ------------------------------------------


def test_bad_input_not_a_zip_is_rejected_once(world):
    world.drop("en-US/language/notes.zip", NOT_A_ZIP, valid=False)
    ok(world.event("en-US/language/notes.zip"))
    ok(world.event("en-US/language/notes.zip"))  # at-least-once delivery: the same event again
    [alert] = world.alerts()
    assert alert["kind"] == "zip-rejected" and "zip" in " ".join(alert["details"]["reasons"]).lower()
    assert state(world, "en-US/language/notes.zip").status == "rejected"
    check(world, alerts=[Expect("zip-rejected", "notes.zip")])


def test_bad_input_a_path_escaping_the_archive_is_rejected(world):
    data = samples.zip_bytes({"../escape.txt": "hello"})
    world.drop("en-US/language/evil.zip", data, valid=False)
    ok(world.event("en-US/language/evil.zip"))
    ok(world.reconcile())  # the sweep leaves a rejected zip alone
    [alert] = world.alerts()
    assert ".." in " ".join(alert["details"]["reasons"]) and not world.emulator.datasets
    check(world, alerts=[Expect("zip-rejected", "evil.zip")])


def test_bad_input_deploy_messages_that_are_not_requests_are_rejected_without_retry(world):
    base = f"{world.emulator.url}/speechtotext/models/base/abc?api-version=2025-10-15"
    ok(world.deploy("{this is not json"))
    ok(world.deploy(json.dumps({"locale": EN, "model": base, "reason": "manual"})))
    assert [a["kind"] for a in world.alerts()] == ["deploy-rejected", "deploy-rejected"]
    assert not [r for r in world.emulator.requests if r["method"] != "GET"]
    check(world, alerts=[Expect("deploy-rejected", "deploy message"), Expect("deploy-rejected", "models/base")])


# -- the thirteen reproduced failures of issue #13 ---------------------------------------------------------------


def test_01_tag_limit_and_zips_failing_every_time_starve_neither_the_sweep_nor_training(world):
    """A bad zip with 8 user tags is rejected (its state lives in metadata, not in the users' tag budget). Five bad
    zips whose state write is refused every time (the analog of TagsTooLarge: their users' metadata fill the
    blob's 8 KiB) and no event: a valid zip nobody reported still gets swept, and after PENDING_DEADLINE the five
    stop holding en-US's training back and raise one dataset-stuck alert each."""
    tags = {f"team{n}": f"value{n}" for n in range(8)}
    world.drop("en-US/acoustic/tagged.zip", NOT_A_ZIP, valid=False, tags=tags)
    ok(world.event("en-US/acoustic/tagged.zip"))
    assert state(world, "en-US/acoustic/tagged.zip").status == "rejected"
    assert [a["kind"] for a in world.alerts()] == ["zip-rejected"]

    for n in range(5):
        world.drop(f"en-US/acoustic/bad{n}.zip", NOT_A_ZIP, valid=False, tags=tags)
        world.storage.add(
            storage_error(400, "MetadataTooLarge"), method="PUT", url=f"bad{n}.zip?comp=metadata", count=-1
        )
    # and one fails in a way the sweep did not foresee (here its lock is lost while it is read)
    world.storage.add(storage_raise(LockLost("lease lost")), method="HEAD", url="bad4.zip", count=-1)
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.drop("en-US/language/zz-missed.zip", samples.language_zip(30))  # its event was missed
    for _ in range(4):
        ok(world.reconcile())
        world.settle(timedelta(minutes=5))
        if managed_datasets(world, "en-US/language/zz-missed.zip"):
            break
    assert managed_datasets(world, "en-US/language/zz-missed.zip"), "the missed zip never got a sweep slot"
    ok(world.reconcile())
    assert not world.emulator.models  # five zips still wait for their ingest

    world.settle(timedelta(hours=25))
    world.storage.add(storage_clock(timedelta(hours=25)), method="GET", url="comp=list", count=-1)
    ok(world.reconcile())
    [model] = world.emulator.models.values()
    assert len(model["datasets"]) == 2  # trained without the five
    stuck = [a for a in world.alerts() if a["kind"] == "dataset-stuck"]
    assert sorted(a["resource"].rsplit("/", 1)[-1] for a in stuck) == [f"bad{n}.zip" for n in range(5)]
    check(
        world,
        alerts=[Expect("zip-rejected", "tagged.zip")]
        + [Expect("zip-rejected", f"bad{n}.zip") for n in range(5)]
        + [Expect("dataset-stuck", f"bad{n}.zip") for n in range(5)],
    )


def test_02_an_alert_is_delivered_before_anything_records_it(world):
    """The dataset-failed alert: the pass dies while delivering it (the queue refuses, as when the host stops the
    worker), then a Retry-After: soon and a PATCH whose answer is cut short (the service recorded the token). The
    alert is delivered once the queue takes it, never recorded before."""
    world.emulator.fail_next("dataset", code="InvalidArchive", message="the archive is damaged")
    world.drop("en-US/language/damaged.zip", LANGUAGE, valid=False)
    ok(world.event("en-US/language/damaged.zip"))
    world.settle()
    world.storage.add(
        storage_error(503, "ServerBusy"), method="POST", url=world.env["ALERT_QUEUE"] + "/messages", count=-1
    )
    failed(world.reconcile(), "ServerBusy")
    [dataset] = world.emulator.datasets.values()
    assert "alerted" not in dataset["customProperties"]  # nothing recorded an alert that never left
    world.storage.clear()

    world.session.add(
        answer(429, {"code": "TooManyRequests", "message": "busy"}, {"Retry-After": "soon"}),
        method="GET",
        path="/datasets",
    )
    world.session.add(
        lose_answer(requests.exceptions.ChunkedEncodingError("IncompleteRead(12 bytes read)")),
        method="PATCH",
        path="/datasets/",
    )
    ok(world.reconcile())
    assert any(0 < s <= 0.5 for s in world.sleeps)  # "soon" fell back to the client's own backoff
    assert [a["kind"] for a in world.alerts()] == ["dataset-failed"]
    [dataset] = world.emulator.datasets.values()
    assert "failed" in dataset["customProperties"]["alerted"]
    ok(world.reconcile())
    assert world.alerts() == []
    check(world, alerts=[Expect("dataset-failed", "damaged.zip")])


def test_03_an_alert_quoting_a_huge_entry_name_stays_bounded(world):
    name = "../" + "a" * 60_000 + ".txt"
    world.drop("en-US/language/long.zip", samples.zip_bytes({name: "hello"}), valid=False)
    ok(world.event("en-US/language/long.zip"))
    [text] = world.runtime.peek(world.env["ALERT_QUEUE"])
    assert len(text.encode()) <= 16 * 1024
    assert json.loads(text)["kind"] == "zip-rejected" and state(world, "en-US/language/long.zip").status == "rejected"
    ok(world.event("en-US/language/long.zip"))  # the retry sees the zip handled: no second alert
    check(world, alerts=[Expect("zip-rejected", "long.zip")])


def test_04_a_pass_that_lost_its_lease_stops_before_its_next_write(world, monkeypatch):
    """The lease runs out while a pass waits (its renewals failing); storage lets another instance take the lock
    and train. The first pass, back, must not create a second model."""
    from azure.storage.blob import BlobLeaseClient

    from shared import storage as storage_module
    from shared.flows import timers as timers_flow
    from shared.reconcile import CreateModel

    monotonic = [1000.0]
    monkeypatch.setattr(
        timers_flow, "autopilot_lock", partial(storage_module.autopilot_lock, clock=lambda: monotonic[0])
    )
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    others = []

    def meanwhile(call):
        monotonic[0] += 61  # longer than the 60 s lease: this instance can no longer count on it
        BlobLeaseClient(world.container).break_lease(lease_break_period=0)
        config = context.settings()
        others.append(timers_flow.run(config, timers_flow.poll_plan(config)))

    world.session.add(first(meanwhile), method="GET", path="/endpoints")
    failed(world.reconcile(), "LockLost")
    [other] = others
    assert not other.skipped and any(isinstance(a, CreateModel) for a in other.actions)
    assert len(world.emulator.models) == 1
    check(world)


def test_05_a_dataset_stuck_in_not_started_holds_training_back_for_a_day_at_most(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.drop("en-US/language/late.zip", samples.language_zip(30))
    ok(world.event("en-US/language/late.zip"))
    [late] = [entity_id(d["self"]) for d in managed_datasets(world, "en-US/language/late.zip")]

    def never_fetched(body):  # its SAS expired before the service fetched it: NotStarted for good
        for entity in body.get("values", [body]) if isinstance(body, dict) else []:
            if isinstance(entity, dict) and late in entity.get("self", ""):
                entity["status"] = "NotStarted"

    world.session.add(rewrite(never_fetched), method="GET", path="/datasets", count=-1)
    world.settle()
    ok(world.reconcile())
    world.settle(timedelta(hours=23))
    ok(world.reconcile())
    assert not world.emulator.models and world.alerts() == []
    world.settle(timedelta(hours=2))
    ok(world.reconcile())
    [model] = world.emulator.models.values()
    assert [entity_id(d["self"]) for d in model["datasets"]] != [late] and len(model["datasets"]) == 1
    [alert] = world.alerts()
    assert (alert["kind"], alert["severity"]) == ("dataset-stuck", "warning") and late in alert["message"]
    world.settle()
    ok(world.reconcile())
    assert world.alerts() == []
    check(world, alerts=[Expect("dataset-stuck", late)])


def test_06_deeply_nested_json_is_a_rejection_not_a_crash(world):
    nested = "[" * 4000 + "]" * 4000  # as deep as a message within the 8 KiB bound can be
    encoded = base64.b64encode(nested.encode()).decode()
    for body in (nested, encoded):
        world.runtime.send(world.env["DEPLOY_QUEUE"], body)
    world.drain_deploys()
    assert [a["kind"] for a in world.alerts()] == ["deploy-rejected", "deploy-rejected"]
    ok(world.runtime.deliver_message("deploy_poison", nested))  # had it been parked, its handler must not fail
    assert [a["kind"] for a in world.alerts()] == ["deploy-poisoned"]
    assert world.runtime.peek(world.env["DEPLOY_QUEUE"] + "-poison") == []
    assert world.runtime.peek(world.env["DEPLOY_QUEUE"] + "-poison-poison") == []
    check(
        world,
        alerts=[Expect("deploy-rejected", "deploy message")] * 2 + [Expect("deploy-poisoned", "deploy message")],
    )


def test_07_an_undated_model_past_the_quarter_rule_is_never_deployed(world):
    not_base = lambda call: "/models/base" not in call.path  # noqa: E731
    world.session.add(rewrite(without_dates), path="/models", when=not_base, count=-1)
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    ok(world.reconcile())
    world.settle()
    [model] = world.emulator.models.values()
    created = datetime.fromisoformat(model["createdDateTime"].replace("Z", "+00:00"))
    from shared.quarters import custom_model_expiry

    world.emulator.set_now(custom_model_expiry(created) + timedelta(days=1))
    ok(world.reconcile())
    assert world.runtime.peek(world.env["DEPLOY_QUEUE"]) == []  # no request for a model the quarter rule expired
    ok(world.expiry())
    ok(world.deploy(json.dumps({"locale": EN, "model": model["self"], "reason": "manual"})))
    alerts = {a["kind"]: a for a in world.alerts()}
    assert alerts["model-expired"]["severity"] == "critical" and "expired" in alerts["deploy-rejected"]["message"]
    assert not world.emulator.endpoints
    check(world, alerts=[Expect("model-expired"), Expect("deploy-rejected")], served={EN: None})


def test_08_a_metadata_or_content_type_change_is_the_same_zip(world):
    from azure.storage.blob import ContentSettings

    world.train_and_deploy()
    blob = world.container.get_blob_client("en-US/language/corpus.zip")
    blob.set_blob_metadata({"owner": "team-a"})  # a new ETag, the same bytes (and our state erased with it)
    blob.set_http_headers(ContentSettings(content_type="application/x-zip-compressed"))
    world.user_changed("en-US/language/corpus.zip", metadata={"owner": "team-a"})
    ok(world.event("en-US/language/corpus.zip"))
    ok(world.reconcile())
    ok(world.reconcile())
    assert len(world.emulator.datasets) == 1 and len(world.emulator.models) == 1
    check(world)


def test_09_a_next_link_loop_ends_the_listing_and_starves_nothing(world):
    loop = f"{world.emulator.url}/speechtotext/models?skip=0&top=100&api-version=2025-10-15"
    world.session.add(
        rewrite(lambda body: body.update({"@nextLink": loop})),
        method="GET",
        when=lambda call: call.path.endswith("/models"),
        count=-1,
    )
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    before = len(world.session.calls)
    failed(world.reconcile(), "repeats a page")
    assert len(world.session.calls) - before < 10  # ended at once, lock released
    world.drop("en-US/language/more.zip", samples.language_zip(30))
    ok(world.event("en-US/language/more.zip"))  # the lock is free: no LockBusy
    assert managed_datasets(world, "en-US/language/more.zip")
    check(world)


def test_10_a_junk_locale_is_quoted_short(world):
    for junk in ("x" * 40_000, "y" * 6_000):
        ok(world.deploy(json.dumps({"locale": junk, "model": "m1", "reason": "manual"})))
    alerts = world.alerts()
    assert [a["kind"] for a in alerts] == ["deploy-rejected", "deploy-rejected"]
    for alert in alerts:
        assert len(json.dumps(alert)) < 4096 and "x" * 1100 not in json.dumps(alert)
        assert "y" * 200 not in alert["message"]
    check(world, alerts=[Expect("deploy-rejected", "deploy message")] * 2)


def test_11_debug_logging_never_shows_the_webhook_url(world):
    world.drop("en-US/language/notes.zip", NOT_A_ZIP, valid=False)
    ok(world.event("en-US/language/notes.zip"))
    [post] = world.posted()
    assert post["body"]["alert"]["kind"] == "zip-rejected"
    wire = [t for t in world.records.texts if t.startswith("urllib3") and "POST" in t and "<redacted>" in t]
    assert wire, "urllib3 logged no request line at DEBUG: the case would prove nothing"
    check(world, alerts=[Expect("zip-rejected", "notes.zip")])


def test_12_users_tags_and_metadata_survive_every_state_write(world):
    name = "en-US/language/corpus.zip"
    tags = {f"k{n}": f"v{n}" for n in range(10)}
    blob = world.drop(name, LANGUAGE, metadata={"owner": "team-a"}, tags=tags)
    ok(world.event(name))
    world.settle()
    edited_tags = {**tags, "k0": "changed"}

    def user_edits(call):  # after the pass listed the zips, before it records the dataset's outcome on this one
        blob.set_blob_metadata({"owner": "team-b", "reviewed": "yes"})
        blob.set_blob_tags(edited_tags)

    world.session.add(first(user_edits), method="GET", path="/endpoints")
    ok(world.reconcile())
    world.user_changed(name, metadata={"owner": "team-b", "reviewed": "yes"}, tags=edited_tags)
    assert state(world, name).status == "succeeded"
    check(world)


@pytest.fixture
def host_at_plus_14():
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Etc/GMT-14"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_13_naive_service_times_at_utc_plus_14_are_utc(world, host_at_plus_14):
    world.session.add(rewrite(naive_times), method="GET", count=-1)
    model = world.train_and_deploy()
    expires = datetime.fromisoformat(
        model["properties"]["deprecationDates"]["transcriptionDateTime"].replace("Z", "+00:00")
    )
    world.emulator.set_now(expires - timedelta(hours=6))
    world.emulator.add_base_model(EN, created=expires - timedelta(days=40))
    ok(world.expiry())
    alerts = world.alerts()
    # 6 hours left, not expired: every tier is crossed at once, so one alert for the tightest (issue #17)
    assert [a["details"]["tier"] for a in alerts if a["kind"] == "model-expiring"] == [1]
    assert "model-expired" not in [a["kind"] for a in alerts]
    ok(world.deploy(json.dumps({"locale": EN, "model": model["self"], "reason": "manual"})))
    assert world.alerts() == []  # not expired: already serving, nothing to do
    check(world, alerts=[Expect("model-expiring")])


# -- service faults -------------------------------------------------------------------------------------------------


def test_a_429_storm_with_retry_after_is_waited_out_as_told(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    world.emulator.inject(status=429, count=3, retry_after=7, method="GET", path_contains="/datasets")
    ok(world.event("en-US/language/corpus.zip"))
    assert world.sleeps == [7, 7, 7] and len(managed_datasets(world, "en-US/language/corpus.zip")) == 1
    check(world)


def test_a_429_storm_without_retry_after_longer_than_the_retries_fails_the_pass_and_the_next_one_recovers(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    world.emulator.inject(status=429, count=6, retry_after=None, method="GET", path_contains="/models")
    failed(world.reconcile(), "429")
    assert len(world.sleeps) == 4 and all(0 < s <= 30 for s in world.sleeps)  # the client's own capped backoff
    assert not world.emulator.models
    ok(world.reconcile())  # one 429 left, then the storm is over
    assert len(world.emulator.models) == 1
    check(world)


def test_retry_after_soon_on_a_create_falls_back_to_backoff_and_creates_once(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    busy = answer(429, {"code": "TooManyRequests", "message": "busy"}, {"Retry-After": "soon"})
    world.session.add(busy, method="POST", path="/models", count=2)
    ok(world.reconcile())
    assert len(world.sleeps) == 2 and all(0 < s <= 1 for s in world.sleeps)
    assert len(posts(world, "/models")) == 1 and len(world.emulator.models) == 1
    check(world)


def test_5xx_on_reads_is_retried_within_the_call(world):
    model = world.train_and_deploy(name="one")
    newer = world.train_and_deploy(name="two")
    world.emulator.inject(status=503, count=2, retry_after=None, method="GET", path_contains="/endpoints")
    world.emulator.inject(status=500, count=1, retry_after=None, method="GET", path_contains="/models/")
    ok(world.deploy(json.dumps({"locale": EN, "model": model["self"], "reason": "rollback"})))
    assert len(world.sleeps) >= 3
    [endpoint] = world.emulator.endpoints.values()
    assert entity_id(endpoint["model"]["self"]) == entity_id(model["self"]) != entity_id(newer["self"])
    # the rollback stays: the reconcile timer does not undo an operator's deployment
    check(world, served={EN: {"en-US/language/one.zip"}})


def test_5xx_on_a_create_is_not_repeated_blindly_and_the_retry_creates_once(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    world.emulator.inject(status=500, count=1, retry_after=None, method="POST", path_contains="/datasets")
    failed(world.event("en-US/language/corpus.zip"), "500")
    assert state(world, "en-US/language/corpus.zip").status is None  # not rejected: it waits for the retry
    ok(world.event("en-US/language/corpus.zip"))  # Event Grid delivers it again
    assert len(managed_datasets(world, "en-US/language/corpus.zip")) == 1
    check(world)


def test_a_dataset_create_whose_answer_timed_out_after_the_service_acted_is_found_not_made_again(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    world.session.add(lose_answer(requests.ReadTimeout("read timed out")), method="POST", path="/datasets")
    failed(world.event("en-US/language/corpus.zip"), "timed out")
    assert len(managed_datasets(world, "en-US/language/corpus.zip")) == 1  # the service made it
    ok(world.event("en-US/language/corpus.zip"))
    assert len(posts(world, "/datasets")) == 1 and state(world, "en-US/language/corpus.zip").status == "submitted"
    check(world)


def test_a_model_create_whose_connection_reset_after_the_service_acted_is_not_trained_twice(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    reset = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer")))
    world.session.add(lose_answer(reset), method="POST", path="/models")
    ok(world.reconcile())  # the action failed and is left to the next pass
    ok(world.reconcile())
    assert len(posts(world, "/models")) == 1 and len(world.emulator.models) == 1
    check(world)


def test_an_endpoint_create_whose_answer_was_lost_is_retried_by_the_host_and_finds_it(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    ok(world.reconcile())
    world.settle()
    ok(world.reconcile())  # queues the deploy request
    world.session.add(lose_answer(requests.ReadTimeout("read timed out")), method="POST", path="/endpoints")
    world.drain_deploys()  # the first delivery fails after the service created the endpoint
    world.drain_deploys()  # the host delivers it again
    assert len(posts(world, "/endpoints")) == 1 and len(world.emulator.endpoints) == 1
    check(world)


def test_a_refused_connection_is_retried_and_a_cut_short_body_is_read_again(world):
    refused = requests.ConnectionError(
        MaxRetryError(None, "/speechtotext/datasets", NewConnectionError(None, "Failed to establish a new connection"))
    )
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    world.session.add(refuse(refused), method="GET", path="/datasets", count=2)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    world.session.add(cut_body, method="GET", path="/models", count=1)
    broken = requests.exceptions.ChunkedEncodingError(ProtocolError("Response ended prematurely"))
    world.session.add(lose_answer(broken), method="GET", path="/endpoints", count=1)
    ok(world.reconcile())
    assert len(world.sleeps) == 4 and len(world.emulator.models) == 1
    check(world)


def test_slow_answers_past_the_read_timeout_are_retried_or_looked_up(world):
    context.CLIENT_OPTIONS["timeout"] = (2.0, 0.25)
    context.reset()
    model = world.train_and_deploy(name="one")
    newer = world.train_and_deploy(name="two")
    assert entity_id(next(iter(world.emulator.endpoints.values()))["model"]["self"]) == entity_id(newer["self"])
    world.emulator.inject(status=None, count=1, delay=0.5, method="GET", path_contains="/models/")
    world.emulator.inject(status=None, count=1, delay=0.5, method="PATCH", path_contains="/endpoints/")
    message = json.dumps({"locale": EN, "model": model["self"], "reason": "rollback"})
    world.runtime.send(world.env["DEPLOY_QUEUE"], message)
    world.drain_deploys()  # the slow GET is retried; so is the slow PATCH (it may have landed: PATCH is idempotent)
    assert len(world.sleeps) == 2
    [endpoint] = world.emulator.endpoints.values()
    assert entity_id(endpoint["model"]["self"]) == entity_id(model["self"])
    check(world, served={EN: {"en-US/language/one.zip"}})


# -- storage faults --------------------------------------------------------------------------------------------------


def test_503_on_reading_the_zip_fails_the_delivery_and_nothing_is_recorded(world):
    name = "en-US/language/corpus.zip"
    world.drop(name, LANGUAGE)
    world.storage.add(storage_error(503, "ServerBusy"), method="HEAD", url="corpus.zip", count=-1)
    failed(world.event(name), "ServerBusy")
    assert world.storage.sleeps and state(world, name).status is None and not world.emulator.datasets
    world.storage.clear()
    ok(world.reconcile())  # the sweep finds it
    assert len(managed_datasets(world, name)) == 1
    check(world)


def test_503_on_the_alert_queue_leaves_the_rejection_unrecorded_until_its_alert_leaves(world):
    name = "en-US/language/notes.zip"
    world.drop(name, NOT_A_ZIP, valid=False)
    world.storage.add(
        storage_error(503, "ServerBusy"), method="POST", url=world.env["ALERT_QUEUE"] + "/messages", count=-1
    )
    failed(world.event(name), "ServerBusy")
    assert state(world, name).status is None and world.alerts() == []
    world.storage.clear()
    ok(world.event(name))
    assert [a["kind"] for a in world.alerts()] == ["zip-rejected"] and state(world, name).status == "rejected"
    check(world, alerts=[Expect("zip-rejected", "notes.zip")])


def test_a_zip_deleted_before_or_during_its_ingest(world):
    world.drop("en-US/language/early.zip", LANGUAGE)
    world.container.delete_blob("en-US/language/early.zip")
    world.forget("en-US/language/early.zip")
    ok(world.event("en-US/language/early.zip"))  # its event arrives after the delete: nothing to do

    name = "en-US/language/during.zip"
    world.drop(name, LANGUAGE)
    world.session.add(first(lambda call: world.container.delete_blob(name)), method="POST", path="/datasets")
    ok(world.event(name))  # the service could not fetch it any more; no state to write on a blob that is gone
    world.forget(name)
    world.settle()
    ok(world.reconcile())
    assert [a["kind"] for a in world.alerts()] == ["dataset-failed"]
    check(world, alerts=[Expect("dataset-failed", "during.zip")])


def test_a_zip_replaced_during_its_ingest_ends_with_the_new_content_trained(world):
    name = "en-US/language/corpus.zip"
    world.drop(name, samples.language_zip(10))
    newer = samples.language_zip(40)
    world.session.add(first(lambda call: world.drop(name, newer)), method="POST", path="/datasets")
    ok(world.event(name))  # the dataset was made, but the zip now holds other content: no state describes it
    assert state(world, name).status is None
    ok(world.event(name))  # the upload's own event
    assert len(managed_datasets(world, name)) == 2
    check(world)


def test_503_on_taking_the_lock_fails_the_delivery_and_its_retry_succeeds(world):
    name = "en-US/language/corpus.zip"
    world.drop(name, LANGUAGE)
    world.storage.add(storage_error(503, "ServerBusy"), method="PUT", header=("x-ms-lease-action", "acquire"), count=-1)
    failed(world.event(name), "ServerBusy")
    assert not world.emulator.datasets
    world.storage.clear()
    ok(world.event(name))
    check(world)


def test_503_on_listing_the_zips_fails_the_pass_and_the_next_one_catches_up(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)  # no event: only the sweep can find it
    world.storage.add(storage_error(503, "ServerBusy"), method="GET", url="comp=list", count=-1)
    failed(world.reconcile(), "ServerBusy")
    world.storage.clear()
    ok(world.reconcile())
    assert len(managed_datasets(world, "en-US/language/corpus.zip")) == 1
    check(world)


# -- duplicate and concurrent deliveries ---------------------------------------------------------------------------


def test_an_event_and_the_sweep_at_once_make_one_dataset(world):
    from tests.helpers import concurrently

    name = "en-US/language/corpus.zip"
    world.drop(name, LANGUAGE)
    world.emulator.inject(status=None, count=2, delay=0.2, method="POST", path_contains="/datasets")
    results = concurrently(lambda: world.event(name), lambda: world.reconcile(), lambda: world.event(name))
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(managed_datasets(world, name)) == 1 and len(posts(world, "/datasets")) == 1
    check(world)


def test_the_same_deploy_message_twice_at_once_makes_one_endpoint(world):
    from tests.helpers import concurrently

    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    ok(world.reconcile())
    world.settle()
    [model] = world.emulator.models.values()
    body = json.dumps({"locale": EN, "model": model["self"], "reason": "manual"})
    results = concurrently(
        lambda: world.deploy(body, QueuedMessage(id="one")), lambda: world.deploy(body, QueuedMessage(id="two"))
    )
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(posts(world, "/endpoints")) == 1 and len(world.emulator.endpoints) == 1
    check(world)


# -- clock edges ---------------------------------------------------------------------------------------------------


def test_the_quarter_boundary_decides_to_the_second(world):
    """A model created on Jan 15 at 23:59 UTC belongs to the quarter ending that day: it transcribes until Jan 15
    two years later, 00:00 UTC. Deployed the minute before; refused the minute after."""
    world.emulator.set_now(datetime(2026, 1, 15, 23, 58, tzinfo=UTC))
    not_base = lambda call: "/models/base" not in call.path  # noqa: E731
    world.session.add(rewrite(without_dates), path="/models", when=not_base, count=-1)  # the rule decides
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    ok(world.reconcile())
    world.settle()
    [model] = world.emulator.models.values()
    assert model["createdDateTime"].startswith("2026-01-15T23:59")
    body = json.dumps({"locale": EN, "model": model["self"], "reason": "manual"})
    world.emulator.set_now(datetime(2028, 1, 14, 23, 59, tzinfo=UTC))
    ok(world.deploy(body, QueuedMessage(id="before")))
    assert len(world.emulator.endpoints) == 1 and world.alerts() == []
    world.emulator.set_now(datetime(2028, 1, 15, 0, 1, tzinfo=UTC))
    ok(world.deploy(body, QueuedMessage(id="after")))
    [alert] = world.alerts()
    assert alert["kind"] == "deploy-rejected" and "expired on 2028-01-15" in alert["message"]
    ok(world.expiry())
    kinds = world.kinds()
    assert "model-expired" in kinds and "model-expiring" not in kinds
    check(
        world,
        alerts=[Expect("deploy-rejected"), Expect("model-expired", severity="critical"), Expect("retrain-impossible")],
        allow=("endpoint-deployed",),
    )


def test_a_leap_day_lifecycle(world):
    world.emulator.set_now(datetime(2028, 2, 29, 23, 30, tzinfo=UTC))
    world.emulator.add_base_model(EN, created=datetime(2028, 1, 20, tzinfo=UTC))
    model = world.train_and_deploy()
    assert model["createdDateTime"].startswith("2028-02-29")
    assert model["properties"]["deprecationDates"]["transcriptionDateTime"].startswith("2030-04-15")
    world.alerts()
    ok(world.expiry())
    assert world.alerts() == []
    world.emulator.set_now(datetime(2030, 3, 16, 12, 0, tzinfo=UTC))  # 30 calendar days before, no Feb 29 between
    ok(world.expiry())
    alerts = world.alerts()
    assert [a["details"]["tier"] for a in alerts if a["kind"] == "model-expiring"] == [30]
    assert sorted(a["kind"] for a in alerts) == ["model-expiring", "retrain-impossible"]  # no base adapts in 2030
    check(world, alerts=[Expect("model-expiring"), Expect("retrain-impossible")])


# -- an expired SAS, and Speech refusing the app's credentials ------------------------------------------------------


def test_an_expired_sas_fails_the_dataset_with_one_alert_and_blocks_nothing_else(world, monkeypatch):
    from shared.flows import ingest as ingest_flow

    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    sas = ingest_flow.content_sas_url
    monkeypatch.setattr(
        ingest_flow, "content_sas_url", lambda blob, hours: sas(blob, hours, now=datetime.now(UTC) - timedelta(hours=3))
    )
    name = "en-US/language/late.zip"
    world.drop(name, samples.language_zip(30))
    ok(world.event(name))
    [download] = [d for d in world.emulator.downloads if d["status"] == 403]
    assert "sig=" not in download["url"] or "REDACTED" in download["url"]
    world.settle()
    ok(world.reconcile())
    [alert] = world.alerts()
    assert alert["kind"] == "dataset-failed" and "403" in alert["message"]
    [model] = world.emulator.models.values()  # the rest of en-US trains
    assert len(model["datasets"]) == 1 and state(world, name).status == "failed"
    monkeypatch.setattr(ingest_flow, "content_sas_url", sas)
    # the remedy the alert names: delete the dataset; the sweep ingests the zip again with a fresh SAS
    [failed_dataset] = managed_datasets(world, name)
    world.speech().delete_dataset(entity_id(failed_dataset["self"]))
    check(world, alerts=[Expect("dataset-failed", "late.zip")])


def test_speech_refusing_the_apps_credentials_never_rejects_a_zip(world):
    name = "en-US/language/corpus.zip"
    world.drop(name, LANGUAGE)
    world.emulator.inject(status=401, count=1000, retry_after=None)  # a rotated key
    failed(world.event(name), "401")
    failed(world.reconcile(), "401")
    assert state(world, name).status is None and world.alerts() == []
    world.emulator.clear_faults()
    world.emulator.inject(status=403, count=1000, retry_after=None, method="POST")  # a role that may only read
    failed(world.event(name), "403")
    assert state(world, name).status is None and world.alerts() == []
    world.emulator.clear_faults()
    ok(world.event(name))
    assert len(managed_datasets(world, name)) == 1
    check(world)


def test_a_deploy_refused_for_want_of_permission_is_retried_not_dropped(world):
    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    world.settle()
    ok(world.reconcile())
    world.settle()
    ok(world.reconcile())  # queues the deploy request
    world.emulator.inject(status=403, count=2, retry_after=None, method="POST", path_contains="/endpoints")
    world.drain_deploys()  # refused twice, retried by the host each time (no deploy-rejected), then carried out
    assert [r["status"] for r in world.emulator.requests if r["method"] == "POST" and "/endpoints" in r["path"]] == [
        403,
        403,
        201,
    ]
    assert len(world.emulator.endpoints) == 1 and world.alerts() == []
    check(world)


# -- the checker itself: each invariant notices its violation ---------------------------------------------------


def test_the_checker_notices_a_lost_zip_a_duplicate_a_leaked_secret_and_a_lost_alert(world):
    from tests import faults

    world.drop("en-US/language/corpus.zip", LANGUAGE)
    ok(world.event("en-US/language/corpus.zip"))
    assert not faults._zips(world) and not faults._duplicates(world) and not faults._secrets(world)
    world.container.get_blob_client("en-US/language/corpus.zip").upload_blob(b"other", overwrite=True)
    world.container.get_blob_client("en-US/language/corpus.zip").set_blob_tags({"user": "changed"})
    assert len(faults._zips(world)) == 2  # other bytes, tags changed
    [dataset] = world.emulator.datasets.values()
    world.speech().create_dataset(
        display_name="copy",
        locale=EN,
        kind="Language",
        content_url=world.sas_urls[0],
        custom_properties=dataset["customProperties"],
    )
    assert faults._duplicates(world)
    world.records.texts.append(f"oops {world.env['SPEECH_KEY']}")
    assert faults._secrets(world)
    assert faults._alerts(world, [Expect("zip-rejected")], {"endpoint-deployed"}) == [
        "missing zip-rejected alert about anything"
    ]
    world.checked = True  # not a case: it only shows the checks are not vacuous


# -- found in review ------------------------------------------------------------------------------------------------


def _echoing_the_content_url(status: int) -> Callable:
    """The service refuses Datasets_Create quoting the contentUrl it was given, SAS signature and all."""

    def act(session, call):
        url = call.body["contentUrl"]
        return answer(status, {"code": "InvalidRequest", "message": f"The contentUrl {url} could not be read."})(
            session, call
        )

    return act


def test_review_a_service_error_quoting_the_sas_reaches_no_alert_exception_or_zip_state(world):
    """A throttled-looking refusal (503: the host retries, its exception text goes to the host's logs, not through
    the log record factory) and a final one (400: a zip-rejected alert with the service's message, and the zip's
    state recording it): neither carries the SAS signature."""
    world.drop("en-US/language/corpus.zip", LANGUAGE, valid=False)
    world.session.add(_echoing_the_content_url(503), method="POST", path="/datasets")
    failed(world.event("en-US/language/corpus.zip"))
    world.session.add(_echoing_the_content_url(400), method="POST", path="/datasets")
    ok(world.event("en-US/language/corpus.zip"))
    [alert] = world.alerts()
    assert alert["kind"] == "zip-rejected" and "could not be read" in alert["message"]
    reason = state(world, "en-US/language/corpus.zip").reason or ""
    assert reason.startswith("the Speech service refused the dataset: The contentUrl")
    signatures = [s for s in world.secrets() if s in "".join(world.sas_urls)]
    assert signatures and not [s for s in signatures if s[:8] in reason]  # not even cut short (metadata is bounded)
    check(world, alerts=[Expect("zip-rejected", "corpus.zip")])
