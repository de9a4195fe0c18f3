"""The pure parts of ingest (shared/ingest.py), alerts (shared/alerts.py) and the customProperties conventions
(shared/managed.py): no storage, no Speech service."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from shared import managed
from shared.alerts import KINDS, Alert, deliver, log_alert, make_alert, post_webhook, webhook_payload
from shared.ingest import (
    HANDLED,
    KIND_FOLDERS,
    MAX_SOURCE_PATH,
    Target,
    already_handled,
    dataset_request,
    description,
    first_made_from,
    locale_reasons,
    made_from,
    odata_string,
    parse_blob_name,
    rejected_state,
    rejection,
    source_path,
    submitted_state,
)
from shared.speech import Dataset
from shared.storage import BlobState

NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SPEECH = "https://westeurope.api.cognitive.microsoft.com/speechtotext"
SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/s3cr3tSlackToken"
TEAMS_URL = "https://prod-42.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/run?sig=s3cr3tTeamsSig"
SECRETS = ("s3cr3tSlackToken", "s3cr3tTeamsSig", "/services/T0000", "/workflows/abc")


# -- factories ---------------------------------------------------------------------------------------------------


CONTENT = "zip1:" + "c" * 40


def dataset(
    dataset_id: str,
    path: str = "training/en-US/acoustic/calls.zip",
    content: str = CONTENT,
    *,
    status: str = "Succeeded",
    props: dict[str, str] | None = None,
    is_managed: bool = True,
) -> Dataset:
    mine = {managed.SOURCE: path, managed.SOURCE_CONTENT: content}
    if is_managed:
        mine[managed.MANAGED] = managed.MANAGED_BY
    return Dataset.from_json(
        {
            "self": f"{SPEECH}/datasets/{dataset_id}?api-version=2025-10-15",
            "kind": "Acoustic",
            "properties": {"acceptedLineCount": 3, "rejectedLineCount": 0},
            "status": status,
            "createdDateTime": "2026-02-27T06:00:00Z",
            "lastActionDateTime": "2026-02-27T06:20:00Z",
            "locale": "en-US",
            "displayName": "calls (Acoustic, en-US)",
            "customProperties": {**mine, **(props or {})},
        }
    )


def alert(kind: str = "model-expiring", **overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "resource": f"{SPEECH}/models/m1?api-version=2025-10-15",
        "message": "Model m1 stops transcribing on 2026-03-31, in 30 day(s).",
        "at": NOW,
        "locale": "en-US",
        "details": {"tier": 30, "daysLeft": 30.0},
        "key": "m1:30",
    }
    fields.update(overrides)
    return make_alert(kind, **fields)


class Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class Recorder:
    """Stands in for the alert queue output binding and the webhook, recording what happened in which order."""

    def __init__(self, *answers: int | Exception) -> None:
        self.events: list[tuple[str, Any]] = []
        self.answers = list(answers)

    def set(self, value: list[str]) -> None:  # func.Out.set
        self.events.append(("queue", value))

    def post(self, url: str, *, json: Any, timeout: Any) -> Response:  # requests.post
        self.events.append(("webhook", json))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return Response(answer)

    def of(self, what: str) -> list[Any]:
        return [value for kind, value in self.events if kind == what]


# -- parse_blob_name --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("folder", "kind"), sorted(KIND_FOLDERS.items()))
def test_each_kind_folder_names_its_dataset_kind(folder, kind):
    assert parse_blob_name(f"en-US/{folder}/calls.zip") == Target(locale="en-US", kind=kind, name="calls")


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("EN-us/Acoustic/Calls.ZIP", Target("en-US", "Acoustic", "Calls")),
        ("sr-latn-rs/language/text.zip", Target("sr-Latn-RS", "Language", "text")),
        ("es-419/audio/clips.zip", Target("es-419", "AudioFiles", "clips")),
        ("en-US/acoustic/2026/q1/calls.zip", Target("en-US", "Acoustic", "calls")),
        ("en-US/output-formatting/rules.v2.zip", Target("en-US", "OutputFormatting", "rules.v2")),
    ],
)
def test_locales_folders_and_extensions_are_read_case_insensitively(name, target):
    assert parse_blob_name(name) == target


@pytest.mark.parametrize(
    "name",
    ["calls.zip", "en-US/calls.zip", "en-US//calls.zip", "/en-US/acoustic/calls.zip", "en-US/acoustic/", ""],
)
def test_a_blob_outside_the_folder_layout_is_explained(name):
    [reason] = parse_blob_name(name)

    assert "{locale}/{kind}/{name}.zip" in reason and "en-US/acoustic/calls.zip" in reason


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("english/acoustic/calls.zip", "'english' is not a locale"),
        ("en_US/acoustic/calls.zip", "'en_US' is not a locale"),
        ("en-USA/acoustic/calls.zip", "'en-USA' is not a locale"),
        ("en-US/audio-files/calls.zip", "unknown kind folder 'audio-files'"),
        ("en-US/acoustic/calls.tar.gz", "'calls.tar.gz' is not a .zip file"),
    ],
)
def test_each_problem_of_a_blob_name_is_explained(name, fragment):
    reasons = parse_blob_name(name)

    assert isinstance(reasons, list) and any(fragment in reason for reason in reasons)


def test_every_problem_of_a_blob_name_is_reported_at_once():
    reasons = parse_blob_name("english/videos/calls.mp4")

    assert isinstance(reasons, list) and len(reasons) == 3
    assert "acoustic, language, pronunciation, markdown, output-formatting, audio" in reasons[1]


# -- locale_reasons, already_handled ----------------------------------------------------------------------------


SUPPORTED = {"Acoustic": ["en-US", "de-DE"], "Language": ["en-US", "de-DE", "sr-Latn-RS"]}


@pytest.mark.parametrize(
    "target",
    [Target("en-US", "Acoustic", "a"), Target("de-DE", "Language", "a"), Target("sr-Latn-RS", "Language", "a")],
)
def test_a_locale_the_service_supports_for_the_kind_passes(target):
    assert locale_reasons(target, SUPPORTED) == []


def test_the_service_locale_list_is_compared_case_insensitively():
    assert locale_reasons(Target("en-US", "Acoustic", "a"), {"Acoustic": ["EN-us"]}) == []


@pytest.mark.parametrize(
    "target",
    [Target("sr-Latn-RS", "Acoustic", "a"), Target("fr-FR", "Language", "a"), Target("en-US", "Pronunciation", "a")],
)
def test_a_locale_unsupported_for_the_kind_is_rejected_naming_both(target):
    [reason] = locale_reasons(target, SUPPORTED)

    assert target.kind in reason and target.locale in reason


@pytest.mark.parametrize("status", sorted(HANDLED))
def test_content_recorded_as_handled_is_not_handled_again(status):
    assert already_handled(BlobState(status=status, content=CONTENT), CONTENT)


@pytest.mark.parametrize(
    "state",
    [
        BlobState(),
        BlobState(status="succeeded", content="zip1:other"),  # earlier content of the blob
        BlobState(status="submitted"),
        BlobState(status="superseded", content=CONTENT),
    ],
)
def test_content_without_a_matching_state_is_not_handled(state):
    assert not already_handled(state, CONTENT)


# -- finding a dataset, dataset_request -------------------------------------------------------------------------


TARGET = Target("en-US", "Acoustic", "calls")
PATH = "training/en-US/acoustic/calls.zip"


@pytest.mark.parametrize("status", ["NotStarted", "Running", "Succeeded", "Failed"])
def test_the_dataset_made_from_this_content_at_this_path_is_found(status):
    existing = dataset("d1", status=status)
    others = [dataset("d0", content="zip1:older"), dataset("x", "training/en-US/acoustic/other.zip")]

    assert first_made_from([*others, existing], PATH, CONTENT) is existing


def test_a_dataset_not_marked_managed_does_not_count():
    assert not made_from(dataset("theirs", is_managed=False), PATH, CONTENT)
    assert first_made_from([dataset("theirs", is_managed=False)], PATH, CONTENT) is None


def test_a_renamed_dataset_is_still_found_by_its_identity():
    renamed = Dataset.from_json({**dataset("d1").raw, "displayName": "renamed by a person"})

    assert made_from(renamed, PATH, CONTENT)


def test_the_dataset_request_marks_the_dataset_with_its_source():
    request = dataset_request(TARGET, PATH, CONTENT)

    assert request == {
        "display_name": "calls (Acoustic, en-US)",
        "locale": "en-US",
        "kind": "Acoustic",
        "description": f"Created by speech-autopilot from {PATH} (content {CONTENT}).",
        "custom_properties": {"managedBy": "speech-autopilot", "sourcePath": PATH, "sourceContent": CONTENT},
    }
    assert request["description"] == description(PATH, CONTENT)


def test_an_odata_literal_doubles_quotes():
    assert odata_string("it's") == "'it''s'"
    assert odata_string("plain") == "'plain'"


def test_the_longest_accepted_source_path_is_recorded_whole():
    path = source_path("training", "en-US/acoustic/" + "a" * (MAX_SOURCE_PATH - len("training/en-US/acoustic/.zip")))
    path += ".zip"
    assert len(path) == MAX_SOURCE_PATH

    props = dataset_request(TARGET, path, CONTENT)["custom_properties"]

    assert props[managed.SOURCE] == path


# -- rejection and state ----------------------------------------------------------------------------------------


def test_a_rejection_is_a_zip_rejected_alert_with_every_reason():
    reasons = ["The zip is empty (0 bytes).", "Another problem."]

    rejected = rejection(PATH, "en-US", reasons, ["a warning"], NOW, CONTENT)

    assert (rejected.kind, rejected.severity, rejected.locale, rejected.resource) == (
        "zip-rejected",
        "warning",
        "en-US",
        PATH,
    )
    assert rejected.message == f"{PATH} was not turned into a dataset: 2 problems, first: The zip is empty (0 bytes)."
    assert rejected.details == {"reasons": reasons, "warnings": ["a warning"], "content": CONTENT}


def test_a_rejection_with_one_reason_says_it_plainly():
    rejected = rejection(PATH, None, iter(["The zip is empty (0 bytes)."]), (), NOW, CONTENT)

    assert rejected.message == f"{PATH} was not turned into a dataset: The zip is empty (0 bytes)."
    assert rejected.locale is None


def test_a_rejection_has_one_id_per_content():
    first = rejection(PATH, "en-US", ["bad"], [], NOW, CONTENT)

    assert rejection(PATH, "en-US", ["other words"], [], NOW + timedelta(hours=1), CONTENT).id == first.id
    assert rejection(PATH, "en-US", ["bad"], [], NOW, "zip1:other").id != first.id


def test_the_state_records_the_outcome_for_this_content():
    assert rejected_state(CONTENT, ["first", "second"]) == BlobState("rejected", CONTENT, None, "first")
    assert rejected_state(CONTENT, []) == BlobState("rejected", CONTENT, None, "rejected")
    assert submitted_state(CONTENT, "d1") == BlobState("submitted", CONTENT, "d1", None)
    assert submitted_state(CONTENT, "d1", "odd file").reason == "warning: odd file"
    assert already_handled(rejected_state(CONTENT, ["bad"]), CONTENT)
    assert already_handled(submitted_state(CONTENT, "d1"), CONTENT)


# -- make_alert -------------------------------------------------------------------------------------------------


def test_an_alert_has_the_queue_shape():
    made = alert()

    body = json.loads(made.to_json())

    assert set(body) == {"id", "kind", "severity", "locale", "resource", "message", "details", "at"}
    assert body["kind"] == "model-expiring" and body["severity"] == "warning" and body["locale"] == "en-US"
    assert body["details"] == {"tier": 30, "daysLeft": 30.0}
    assert body["at"] == "2026-03-01T06:00:00Z"


def test_the_alert_time_is_utc_whatever_the_clock_zone():
    local = NOW.astimezone(timezone(timedelta(hours=-5)))

    assert alert(at=local).at == "2026-03-01T06:00:00Z"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_has_its_default_severity(kind):
    assert alert(kind).severity == KINDS[kind]


def test_a_severity_can_be_raised_for_one_alert():
    assert alert(severity="critical").severity == "critical"


@pytest.mark.parametrize(("field", "value"), [("kind", "model-exploded"), ("severity", "urgent")])
def test_unknown_kinds_and_severities_are_refused(field, value):
    with pytest.raises(ValueError, match=value):
        alert(**{field: value}) if field == "severity" else alert(value)


def test_the_alert_id_names_the_event_not_the_delivery():
    first = alert()

    assert alert(message="other words", at=NOW + timedelta(days=1), details={}).id == first.id
    assert alert(key="m1:14").id != first.id
    assert alert(resource=f"{SPEECH}/models/m2?api-version=2025-10-15").id != first.id
    assert alert("model-expired").id != first.id


# -- webhook payloads -------------------------------------------------------------------------------------------


def test_a_slack_webhook_gets_text():
    payload = webhook_payload(alert(), SLACK_URL)

    assert payload == {
        "text": "[WARNING] model-expiring (en-US): Model m1 stops transcribing on 2026-03-31, in 30 day(s).\n"
        f"Resource: {SPEECH}/models/m1?api-version=2025-10-15"
    }


def test_a_teams_webhook_gets_an_adaptive_card_carrying_the_alert():
    made = alert(details={"tier": 30, "note": "x" * 400, **{f"k{i}": i for i in range(10)}})

    payload = webhook_payload(made, TEAMS_URL)

    assert payload["type"] == "message" and payload["text"].startswith("[WARNING] model-expiring (en-US): ")
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, text, facts = card["body"]
    assert title["text"] == "[WARNING] model-expiring (en-US)" and text["text"] == made.message
    assert facts["facts"][:2] == [{"title": "Resource", "value": made.resource}, {"title": "At", "value": made.at}]
    assert len(facts["facts"]) == 2 + 8
    note = next(f["value"] for f in facts["facts"] if f["title"] == "note")
    assert len(note) == 300 and note.endswith("...")
    assert payload["alert"] == json.loads(made.to_json())


def test_a_look_alike_of_the_slack_host_is_not_slack():
    assert "attachments" in webhook_payload(alert(), "https://hooks.slack.com.example.net/services/x")


def test_an_alert_without_locale_has_no_locale_in_its_title():
    assert webhook_payload(alert(locale=None), SLACK_URL)["text"].startswith("[WARNING] model-expiring: ")


# -- delivery ---------------------------------------------------------------------------------------------------


def secrets_logged(caplog) -> list[str]:
    logged = [record.getMessage() + (record.exc_text or "") for record in caplog.records]
    return [line for line in logged if any(secret in line for secret in SECRETS)]


def test_the_queue_copy_is_set_before_the_webhook_is_called():
    first, second = alert(), alert("model-expired", severity="critical", key="m1")
    out = Recorder()

    deliver([first, second], out.set, TEAMS_URL, post=out.post)

    assert [kind for kind, _ in out.events] == ["queue", "webhook", "webhook"]
    assert out.of("queue") == [[first.to_json(), second.to_json()]]
    assert [payload["alert"]["id"] for payload in out.of("webhook")] == [first.id, second.id]


def test_without_a_webhook_only_the_queue_gets_the_alerts():
    out = Recorder()

    deliver([alert()], out.set, None, post=out.post)

    assert [kind for kind, _ in out.events] == ["queue"]


def test_no_alerts_sets_nothing():
    out = Recorder()

    deliver([], out.set, TEAMS_URL, post=out.post)

    assert out.events == []


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError(f"Max retries exceeded with url: {SLACK_URL}"),
        requests.Timeout(f"read timed out: {SLACK_URL}"),
        RuntimeError(f"unexpected {SLACK_URL}"),
        500,
        503,
    ],
)
def test_a_failing_webhook_keeps_the_queue_copy_and_never_logs_the_url(failure, caplog):
    caplog.set_level(logging.DEBUG)
    out = Recorder(failure, failure)
    made = alert()

    deliver([made], out.set, SLACK_URL, post=out.post)

    assert out.of("queue") == [[made.to_json()]]
    assert len(out.of("webhook")) == 2  # tried once more, then given up
    assert any("webhook" in record.getMessage() and made.id in record.getMessage() for record in caplog.records)
    assert secrets_logged(caplog) == []


def test_a_hanging_webhook_cannot_hold_a_delivery_past_its_time_budget(caplog):
    """A webhook that accepts connections and never answers costs each POST its read timeout (10 s), twice per
    alert. A pass delivering 40 alerts would hold the autopilot lock for 13 minutes, past the 10-minute
    functionTimeout: killed before it records any token, it raises the same alerts again on every pass and never
    reaches its other actions. The queue copy of every alert is what counts; the webhook gets a bounded time."""
    from shared import alerts as alerts_module

    caplog.set_level(logging.DEBUG)
    now = [0.0]
    out = Recorder()

    def hanging(url, *, json, timeout):
        out.events.append(("webhook", json))
        now[0] += timeout[1]
        raise requests.Timeout("read timed out")

    made = [alert(key=f"m{i}") for i in range(40)]
    deliver(made, out.set, TEAMS_URL, post=hanging, clock=lambda: now[0])

    assert out.of("queue") == [[a.to_json() for a in made]]
    assert now[0] <= alerts_module.WEBHOOK_BUDGET_SECONDS + 2 * 10  # at most the alert under way finishes its tries
    assert any("queue only" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(("answers", "posts", "ok"), [((200,), 1, True), ((429, 202), 2, True), ((400,), 1, False)])
def test_the_webhook_is_retried_only_when_worth_it(answers, posts, ok, caplog):
    caplog.set_level(logging.DEBUG)
    out = Recorder(*answers)

    assert post_webhook(alert(), TEAMS_URL, out.post) is ok
    assert len(out.of("webhook")) == posts
    assert secrets_logged(caplog) == []


@pytest.mark.parametrize(
    ("severity", "level"), [("info", logging.INFO), ("warning", logging.WARNING), ("critical", logging.ERROR)]
)
def test_each_alert_is_logged_at_its_severity(severity, level, caplog):
    caplog.set_level(logging.DEBUG, logger="autopilot.alerts")
    made = alert(severity=severity)

    log_alert(made)

    [record] = caplog.records
    assert record.levelno == level
    assert record.getMessage() == (
        f"ALERT severity={severity} kind=model-expiring locale=en-US resource={made.resource} id={made.id}: "
        f"{made.message}"
    )


# -- managed: the customProperties conventions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"managedBy": "speech-autopilot"}, True),
        ({"managedBy": "speech-autopilot", "sourcePath": "x"}, True),
        ({"managedBy": "someone-else"}, False),
        ({"sourcePath": "x"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_managed_entities_are_those_marked_by_the_app(props, expected):
    class Entity:
        custom_properties = props

    assert managed.is_managed(Entity()) is expected


def test_entities_without_custom_properties_are_not_managed():
    assert managed.is_managed(object()) is False


def test_the_dataset_set_digest_ignores_order_and_repeats():
    digest = managed.dataset_set_digest(["d2", "d1", "d3"])

    assert digest == managed.dataset_set_digest(("d1", "d3", "d2", "d1"))
    assert len(digest) == 32 and all(c in "0123456789abcdef" for c in digest)
    assert digest != managed.dataset_set_digest(["d1", "d2"])


def test_a_models_digest_is_the_recorded_one_else_that_of_its_datasets():
    class Model:
        def __init__(self, props, dataset_ids):
            self.custom_properties = props
            self.dataset_ids = dataset_ids

    assert managed.model_dataset_digest(Model({managed.DATASET_SET: "recorded"}, ("d1",))) == "recorded"
    assert managed.model_dataset_digest(Model({}, ("d2", "d1"))) == managed.dataset_set_digest(["d1", "d2"])


def test_alerted_tokens_are_read_from_a_comma_separated_list():
    class Entity:
        custom_properties = {managed.ALERTED: "failed,,30,expired"}

    assert managed.alerted(Entity()) == frozenset({"failed", "30", "expired"})
    assert managed.alerted(object()) == frozenset()


def test_with_properties_returns_the_full_map_without_changing_the_input():
    current = {"managedBy": "speech-autopilot", "reason": "trained", "owner": "team-a"}

    updated = managed.with_properties(current, reason="expiry", owner=None, deployRequested="2026-03-01T06:00:00Z")

    assert updated == {"managedBy": "speech-autopilot", "reason": "expiry", "deployRequested": "2026-03-01T06:00:00Z"}
    assert current == {"managedBy": "speech-autopilot", "reason": "trained", "owner": "team-a"}


def test_with_properties_keeps_values_within_the_service_limit():
    assert managed.with_properties({}, note="x" * 300)["note"] == "x" * managed.MAX_VALUE


def test_with_properties_allows_ten_entries_and_refuses_eleven():
    nine = {f"k{i}": "v" for i in range(9)}

    assert len(managed.with_properties(nine, tenth="v")) == managed.MAX_ENTRIES
    with pytest.raises(ValueError, match="11 entries"):
        managed.with_properties({**nine, "tenth": "v"}, eleventh="v")
    assert len(managed.with_properties({**nine, "tenth": "v"}, eleventh="v", k0=None)) == managed.MAX_ENTRIES


def test_with_alerted_adds_each_token_once_in_order():
    current = {managed.MANAGED: managed.MANAGED_BY, managed.ALERTED: "30"}

    updated = managed.with_alerted(current, "14", "30", "7")

    assert updated == {managed.MANAGED: managed.MANAGED_BY, managed.ALERTED: "30,14,7"}


def test_with_alerted_drops_the_oldest_tokens_to_stay_within_the_value_limit():
    old = ",".join(f"nobase-{i:08d}" for i in range(20))  # 20 x 15 characters + commas: over 256

    value = managed.with_alerted({managed.ALERTED: "failed"}, *old.split(","))[managed.ALERTED]

    assert len(value) <= managed.MAX_VALUE
    assert value.endswith(",nobase-00000019") and value.split(",")[0] != "failed"


def test_managed_properties_mark_the_entity():
    assert managed.managed_properties(reason="trained") == {"managedBy": "speech-autopilot", "reason": "trained"}


def test_info_alerts_skip_the_webhook_unless_the_floor_says_so():
    info = alert("endpoint-deployed", severity="info", key="e1")
    loud = alert("model-expired", severity="critical", key="m1")
    out = Recorder()

    deliver([info, loud], out.set, TEAMS_URL, post=out.post)

    assert out.of("queue") == [[info.to_json(), loud.to_json()]]
    assert [payload["alert"]["id"] for payload in out.of("webhook")] == [loud.id]
    out = Recorder()
    deliver([info], out.set, TEAMS_URL, webhook_min_severity="info", post=out.post)
    assert len(out.of("webhook")) == 1


def test_a_failing_queue_raises_before_the_webhook_so_nothing_is_recorded_as_sent():
    out = Recorder()

    def refuse(messages):
        raise RuntimeError("queue service unavailable")

    with pytest.raises(RuntimeError):
        deliver([alert()], refuse, TEAMS_URL, post=out.post)
    assert out.events == []


def test_an_alert_quoting_huge_input_stays_far_below_the_queue_limit():
    name = "x" * 200_000
    made = make_alert(
        "zip-rejected",
        resource=f"training/en-US/acoustic/{name}.zip",
        message=f"{name} is bad",
        details={"reasons": [f"entry {name} is bad"] * 500, "nested": [[[[[[name]]]]]], "blob": name},
        at=NOW,
    )

    text = made.to_json()

    assert len(text.encode()) <= 16 * 1024
    assert "more characters]" in text and json.loads(text)["kind"] == "zip-rejected"
