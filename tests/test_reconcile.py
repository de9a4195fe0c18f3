"""The pure reconcile planner (shared/reconcile.py) on hand-built snapshots and a fixed clock.

Entities are built from raw JSON shaped like the Speech to text REST API 2025-10-15 answers, so the tests go
through the same `from_json` parsing as the timers. `apply` plays the part of the timers: it carries a plan's
actions out on the snapshot, so a second plan can show that nothing new is left to do.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import managed
from shared.ingest import KIND_FOLDERS
from shared.quarters import custom_model_expiry
from shared.reconcile import (
    CreateModel,
    Ingest,
    Raise,
    RecordState,
    RequestDeploy,
    Snapshot,
    UpdateProperties,
    adaptable_base,
    days_left,
    locale_states,
    plan_expiry,
    plan_poll,
    watched_models,
    zip_dataset,
)
from shared.speech import BaseModel, CustomModel, Dataset, Endpoint
from shared.storage import BlobState, ZipBlob, ours

NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
CONTAINER = "training"
SPEECH = "https://westeurope.api.cognitive.microsoft.com/speechtotext"
TIERS = (30, 14, 7, 1)
ALL_KINDS = ("Acoustic", "Language", "Pronunciation", "LanguageMarkdown", "OutputFormatting", "AudioFiles")


# -- factories ---------------------------------------------------------------------------------------------------


def days(n: float) -> timedelta:
    return timedelta(days=n)


def uri(collection: str, entity_id: str) -> str:
    return f"{SPEECH}/{collection}/{entity_id}?api-version=2025-10-15"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def props_with(base: dict[str, str], extra: dict[str, str | None] | None) -> dict[str, str]:
    merged = dict(base)
    for key, value in (extra or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def error_json(code: str | None, message: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}} if code else {}


def content(version: str) -> str:
    """The content identity of a zip version (the tests name versions like ETags)."""
    return f"zip1:{version}"


def zip_blob(
    name: str, etag: str = "0x8DE0001", status: str | None = None, dataset_id: str = "", reason: str = "", **meta: str
) -> ZipBlob:
    """A zip in the training container; `status` fills in the app's state (its metadata) for this content."""
    metadata = dict(meta)
    if status:
        state = BlobState(status=status, content=content(etag), dataset=dataset_id or None, reason=reason or None)
        metadata.update({k: v for k, v in state.values().items() if v})
    return ZipBlob(name=name, etag=etag, size=4096, last_modified=NOW - timedelta(hours=1), metadata=metadata)


def dataset(
    dataset_id: str,
    name: str = "en-US/acoustic/calls.zip",
    *,
    etag: str = "0x8DE0001",
    status: str = "Succeeded",
    created: datetime | None = None,
    error: tuple[str, str] | None = None,
    props: dict[str, str | None] | None = None,
    is_managed: bool = True,
) -> Dataset:
    """A dataset made from the zip `name` (locale and kind follow its folders); one still processing was created
    an hour ago, others two days ago."""
    created = created or NOW - (timedelta(hours=1) if status in ("NotStarted", "Running") else days(2))
    locale, folder = name.split("/")[:2]
    mine = managed.managed_properties(**{managed.SOURCE: f"{CONTAINER}/{name}", managed.SOURCE_CONTENT: content(etag)})
    if not is_managed:
        mine.pop(managed.MANAGED)
    return Dataset.from_json(
        {
            "self": uri("datasets", dataset_id),
            "kind": KIND_FOLDERS[folder],
            "links": {"files": uri("datasets", dataset_id).replace("?", "/files?")},
            "properties": {"acceptedLineCount": 12, "rejectedLineCount": 0, **error_json(*(error or (None, None)))},
            "lastActionDateTime": iso(created + timedelta(minutes=20)),
            "status": status,
            "createdDateTime": iso(created),
            "locale": locale,
            "displayName": f"{name} ({locale})",
            "description": f"from {name}",
            "customProperties": props_with(mine, props),
        }
    )


def pair(name: str, dataset_id: str, *, etag: str = "0x8DE0001", status: str = "Succeeded", **kwargs: Any):
    """A zip and its dataset, the zip's state already saying what the dataset's status says."""
    tag = {"Succeeded": "succeeded", "Failed": "failed"}.get(status, "submitted")
    return (
        zip_blob(name, etag, status=tag, dataset_id=dataset_id),
        dataset(dataset_id, name, etag=etag, status=status, **kwargs),
    )


def model(
    model_id: str,
    datasets: tuple[str, ...] = ("d1",),
    *,
    locale: str = "en-US",
    status: str = "Succeeded",
    base: str = "base-2025",
    created: datetime | None = None,
    expires: datetime | None = None,
    error: tuple[str, str] | None = None,
    props: dict[str, str | None] | None = None,
    is_managed: bool = True,
) -> CustomModel:
    """A custom model; managed ones carry the customProperties the planner gives the models it trains."""
    created = created or NOW - days(60)
    mine = (
        managed.managed_properties(
            **{
                managed.DATASET_SET: managed.dataset_set_digest(datasets),
                managed.BASE_MODEL: base,
                managed.REASON: "trained",
            }
        )
        if is_managed
        else {}
    )
    properties: dict[str, Any] = {
        "deprecationDates": {"transcriptionDateTime": iso(expires or custom_model_expiry(created))},
        "features": {"supportsTranscriptions": True, "supportsEndpoints": True, "supportsAdaptationsWith": []},
        **error_json(*(error or (None, None))),
    }
    return CustomModel.from_json(
        {
            "self": uri("models", model_id),
            "baseModel": {"self": uri("models/base", base)},
            "datasets": [{"self": uri("datasets", d)} for d in datasets],
            "links": {"manifest": uri("models", model_id).replace("?", "/manifest?")},
            "properties": properties,
            "lastActionDateTime": iso(created + days(1)),
            "status": status,
            "createdDateTime": iso(created),
            "locale": locale,
            "displayName": f"model {model_id}",
            "customProperties": props_with(mine, props),
        }
    )


def base_model(
    base_id: str,
    *,
    locale: str = "en-US",
    created: datetime | None = None,
    adapt_until: datetime | None = None,
    kinds: tuple[str, ...] = ALL_KINDS,
) -> BaseModel:
    created = created or NOW - days(100)
    adapt_until = adapt_until or created + days(365)
    return BaseModel.from_json(
        {
            "self": uri("models/base", base_id),
            "links": {"manifest": uri("models/base", base_id).replace("?", "/manifest?")},
            "properties": {
                "deprecationDates": {
                    "adaptationDateTime": iso(adapt_until),
                    "transcriptionDateTime": iso(adapt_until + days(365)),
                },
                "features": {
                    "supportsTranscriptions": True,
                    "supportsEndpoints": True,
                    "supportsTranscriptionsOnSpeechContainers": False,
                    "supportsAdaptationsWith": list(kinds),
                    "supportedOutputFormats": ["Display", "Lexical"],
                },
                "chargeForAdaptation": True,
            },
            "lastActionDateTime": iso(created),
            "status": "Succeeded",
            "createdDateTime": iso(created),
            "locale": locale,
            "displayName": f"{locale} base {base_id}",
        }
    )


def endpoint(
    endpoint_id: str,
    model_id: str,
    *,
    locale: str = "en-US",
    status: str = "Succeeded",
    created: datetime | None = None,
    error: tuple[str, str] | None = None,
    props: dict[str, str | None] | None = None,
    is_managed: bool = True,
    last_action: datetime | None = None,
) -> Endpoint:
    created = created or NOW - days(50)
    mine = managed.managed_properties(**{managed.REASON: "trained"}) if is_managed else {}
    return Endpoint.from_json(
        {
            "self": uri("endpoints", endpoint_id),
            "model": {"self": uri("models", model_id)},
            "links": {"restInteractive": f"https://westeurope.stt.speech.microsoft.com/?cid={endpoint_id}"},
            "properties": {"loggingEnabled": False, **error_json(*(error or (None, None)))},
            "lastActionDateTime": iso(last_action or created + timedelta(minutes=5)),
            "status": status,
            "createdDateTime": iso(created),
            "locale": locale,
            "displayName": f"autopilot-{locale}",
            "customProperties": props_with(mine, props),
        }
    )


def deployed(endpoint_id: str, model_id: str, **kwargs: Any) -> Endpoint:
    """A managed endpoint serving `model_id` whose deployment was already reported."""
    return endpoint(endpoint_id, model_id, props={managed.ALERTED: f"deployed:{model_id}"}, **kwargs)


BASES = (
    base_model("base-2025", created=NOW - days(100)),
    base_model("base-2024", created=NOW - days(300)),
    base_model("de-base", locale="de-DE", created=NOW - days(100)),
)


def snap(*pairs, zips=(), datasets=(), models=(), base_models=BASES, endpoints=(), now=NOW) -> Snapshot:
    return Snapshot(
        now=now,
        container=CONTAINER,
        zips=[z for z, _ in pairs] + list(zips),
        datasets=[d for _, d in pairs] + list(datasets),
        models=list(models),
        base_models=list(base_models),
        endpoints=list(endpoints),
    )


# -- carrying a plan out, like the timers do -----------------------------------------------------------------------

_new_ids = itertools.count(1)


def _replace_properties(entity, properties):
    return type(entity).from_json({**entity.raw, "customProperties": dict(properties)})


def apply(snapshot: Snapshot, actions) -> Snapshot:
    """The snapshot after the timers carried out `actions` (a CreateModel becomes a NotStarted model)."""
    collections = {
        "datasets": {d.id: d for d in snapshot.datasets},
        "models": {m.id: m for m in snapshot.models},
        "endpoints": {e.id: e for e in snapshot.endpoints},
    }
    zips = {z.name: z for z in snapshot.zips}
    for action in actions:
        if isinstance(action, UpdateProperties):
            entities = collections[action.collection]
            entities[action.id] = _replace_properties(entities[action.id], action.custom_properties)
        elif isinstance(action, CreateModel):
            new_id = f"m-new-{next(_new_ids)}"
            collections["models"][new_id] = CustomModel.from_json(
                {
                    "self": uri("models", new_id),
                    "baseModel": {"self": uri("models/base", action.base_model_id)},
                    "datasets": [{"self": uri("datasets", d)} for d in action.dataset_ids],
                    "properties": {
                        "deprecationDates": {"transcriptionDateTime": iso(custom_model_expiry(snapshot.now))}
                    },
                    "status": "NotStarted",
                    "createdDateTime": iso(snapshot.now),
                    "lastActionDateTime": iso(snapshot.now),
                    "locale": action.locale,
                    "displayName": action.display_name,
                    "description": action.description,
                    "customProperties": dict(action.custom_properties),
                }
            )
        elif isinstance(action, RecordState):
            blob = zips[action.blob_name]
            kept = {k: v for k, v in blob.metadata.items() if not ours(k)}
            ours_now = {k: v for k, v in action.state.values().items() if v}
            zips[blob.name] = dataclasses.replace(blob, metadata={**kept, **ours_now})
    return dataclasses.replace(
        snapshot,
        zips=list(zips.values()),
        datasets=list(collections["datasets"].values()),
        models=list(collections["models"].values()),
        endpoints=list(collections["endpoints"].values()),
    )


def set_status(snapshot: Snapshot, model_id: str, status: str) -> Snapshot:
    models = [CustomModel.from_json({**m.raw, "status": status}) if m.id == model_id else m for m in snapshot.models]
    return dataclasses.replace(snapshot, models=models)


def of(actions, kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


def alerts(actions) -> list:
    return [a.alert for a in of(actions, Raise)]


def only_training(actions) -> CreateModel:
    [create] = of(actions, CreateModel)
    return create


def poll(snapshot: Snapshot, auto_deploy: bool = True):
    return plan_poll(snapshot, auto_deploy=auto_deploy)


def expiry(snapshot: Snapshot, tiers=TIERS, auto_retrain: bool = True):
    return plan_expiry(snapshot, tiers=tiers, auto_retrain=auto_retrain)


# -- the desired dataset set --------------------------------------------------------------------------------------


def test_a_zips_dataset_is_the_managed_one_of_its_current_path_and_content():
    blob = zip_blob("en-US/acoustic/calls.zip", "0x2", status="submitted")
    older = dataset("d-old", "en-US/acoustic/calls.zip", etag="0x1", props={managed.SUPERSEDED_BY: "d-new"})
    other_path = dataset("d-other", "en-US/acoustic/other.zip", etag="0x2")
    foreign = dataset("d-foreign", "en-US/acoustic/calls.zip", etag="0x2", is_managed=False)
    current = dataset("d-new", "en-US/acoustic/calls.zip", etag="0x2")

    assert zip_dataset(snap(datasets=[older, other_path, foreign]), blob) is None
    assert zip_dataset(snap(datasets=[older, other_path, foreign, current]), blob) == current


def test_a_superseded_upload_leaves_the_set_and_the_new_version_is_trained():
    blob, current = pair("en-US/acoustic/calls.zip", "d-new", etag="0x2", created=NOW - days(1))
    older = dataset("d-old", "en-US/acoustic/calls.zip", etag="0x1", props={managed.SUPERSEDED_BY: "d-new"})
    snapshot = snap(
        (blob, current),
        datasets=[older],
        models=[model("m1", ("d-old",))],
        endpoints=[deployed("e1", "m1")],
    )

    assert set(locale_states(snapshot)["en-US"].desired) == {"d-new"}
    assert only_training(poll(snapshot)).dataset_ids == ("d-new",)


def test_deleting_a_zip_takes_its_dataset_out_of_the_set():
    a = pair("en-US/acoustic/a.zip", "d-a")
    _, b_dataset = pair("en-US/language/b.zip", "d-b")
    snapshot = snap(a, datasets=[b_dataset], models=[model("m1", ("d-a", "d-b"))], endpoints=[deployed("e1", "m1")])

    assert only_training(poll(snapshot)).dataset_ids == ("d-a",)


def test_an_empty_container_trains_nothing():
    snapshot = snap(datasets=[dataset("d1")], models=[model("m1", ("d1",))], endpoints=[deployed("e1", "m1")])

    assert poll(snapshot) == []


def test_a_dataset_with_our_properties_but_not_marked_managed_is_not_ours():
    blob = zip_blob("en-US/acoustic/calls.zip")
    foreign = dataset("d-foreign", "en-US/acoustic/calls.zip", is_managed=False)

    actions = poll(snap(zips=[blob], datasets=[foreign]))

    assert actions == [Ingest("en-US/acoustic/calls.zip")]


# -- when to train ----------------------------------------------------------------------------------------------


def test_zips_dropped_together_make_one_model_on_all_their_datasets():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        pair("en-US/language/sentences.zip", "d2"),
        pair("en-US/pronunciation/names.zip", "d3"),
    )

    actions = poll(snapshot)

    create = only_training(actions)
    assert (create.locale, create.base_model_id, create.dataset_ids) == ("en-US", "base-2025", ("d1", "d2", "d3"))
    assert create.custom_properties == {
        managed.MANAGED: managed.MANAGED_BY,
        managed.DATASET_SET: managed.dataset_set_digest(["d3", "d1", "d2"]),
        managed.BASE_MODEL: "base-2025",
        managed.REASON: "trained",
    }
    assert actions == [create]


@pytest.mark.parametrize("status", ["NotStarted", "Running"])
def test_nothing_trains_while_a_dataset_of_the_locale_is_processing(status):
    ready = pair("en-US/acoustic/calls.zip", "d1")
    processing = pair("en-US/language/sentences.zip", "d2", status=status)

    assert poll(snap(ready, processing)) == []
    assert only_training(poll(snap(ready, pair("en-US/language/sentences.zip", "d2")))).dataset_ids == ("d1", "d2")


def test_nothing_trains_while_a_zip_waits_for_its_dataset():
    ready = pair("en-US/acoustic/calls.zip", "d1")
    waiting = zip_blob("en-US/language/sentences.zip")

    assert poll(snap(ready, zips=[waiting])) == [Ingest("en-US/language/sentences.zip")]


def test_a_zip_rejected_in_this_version_does_not_hold_training_back():
    ready = pair("en-US/acoustic/calls.zip", "d1")
    rejected = zip_blob("en-US/language/sentences.zip", "0x5", status="rejected", reason="empty")

    assert only_training(poll(snap(ready, zips=[rejected]))).dataset_ids == ("d1",)


def test_a_zip_rejected_in_an_earlier_version_waits_for_its_new_version():
    ready = pair("en-US/acoustic/calls.zip", "d1")
    reuploaded = zip_blob("en-US/language/sentences.zip", "0x6")  # a re-upload replaces the metadata, state included

    assert poll(snap(ready, zips=[reuploaded])) == [Ingest("en-US/language/sentences.zip")]


@pytest.mark.parametrize("status", ["NotStarted", "Running"])
def test_nothing_trains_while_a_model_of_the_locale_is_training(status):
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        pair("en-US/language/sentences.zip", "d2"),
        models=[model("m1", ("d1",), status=status, created=NOW - days(1))],
    )

    assert of(poll(snapshot), CreateModel) == []


def test_a_set_the_newest_model_was_trained_on_trains_nothing():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        pair("en-US/language/sentences.zip", "d2"),
        models=[model("m0", ("d1",), created=NOW - days(90)), model("m1", ("d2", "d1"))],
        endpoints=[deployed("e1", "m1")],
    )

    assert poll(snapshot) == []


def test_the_set_is_compared_with_the_newest_model_only():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        pair("en-US/language/sentences.zip", "d2"),
        models=[model("m0", ("d1", "d2"), created=NOW - days(90)), model("m1", ("d1",))],
        endpoints=[deployed("e1", "m1")],
    )

    assert only_training(poll(snapshot)).dataset_ids == ("d1", "d2")


def test_models_the_app_does_not_manage_are_ignored():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        models=[
            model("theirs", ("d1",), created=NOW - days(1), is_managed=False),
            model("theirs-running", ("d1",), status="Running", is_managed=False),
        ],
    )

    assert only_training(poll(snapshot)).dataset_ids == ("d1",)


def test_a_failed_training_is_not_repeated_on_the_same_data_but_new_data_trains():
    data = pair("en-US/acoustic/calls.zip", "d1")
    first = model("m1", ("d1",), status="Failed", created=NOW - days(2), props={managed.ALERTED: "failed"})

    assert poll(snap(data, models=[first])) == []
    more = snap(data, pair("en-US/language/sentences.zip", "d2"), models=[first])
    assert only_training(poll(more)).dataset_ids == ("d1", "d2")


# -- which base model ---------------------------------------------------------------------------------------------


def test_a_locale_with_mixed_kinds_trains_from_the_newest_base_model_that_covers_all_of_them():
    bases = [
        base_model("language-only", created=NOW - days(10), kinds=("Language",)),
        base_model("both", created=NOW - days(100), kinds=("Acoustic", "Language")),
        base_model("both-older", created=NOW - days(200), kinds=("Acoustic", "Language")),
    ]
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"), pair("en-US/language/sentences.zip", "d2"), base_models=bases
    )

    assert only_training(poll(snapshot)).base_model_id == "both"
    assert adaptable_base(bases, "en-US", frozenset({"Language"}), NOW).id == "language-only"


@pytest.mark.parametrize(
    ("adapt_until", "chosen"),
    [
        (NOW + timedelta(seconds=1), "newest"),
        (NOW, "older"),  # adaptationDateTime reached: no more training on it
        (NOW - timedelta(seconds=1), "older"),
        (NOW - days(30), "older"),
    ],
)
def test_a_base_model_whose_adaptation_date_has_passed_is_not_trained_from(adapt_until, chosen):
    bases = [
        base_model("newest", created=NOW - days(300), adapt_until=adapt_until),
        base_model("older", created=NOW - days(400), adapt_until=NOW + days(20)),
        base_model("oldest-expired", created=NOW - days(800), adapt_until=NOW - days(400)),
    ]

    assert only_training(poll(snap(pair("en-US/acoustic/calls.zip", "d1"), base_models=bases))).base_model_id == chosen


def test_without_an_adaptable_base_model_one_no_base_model_alert_per_set():
    bases = [
        base_model("language-only", kinds=("Language",)),
        base_model("expired", created=NOW - days(500), adapt_until=NOW - days(1)),
        base_model("german", locale="de-DE"),
    ]
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        pair("en-US/language/sentences.zip", "d2", created=NOW - days(1)),
        base_models=bases,
    )

    actions = poll(snapshot)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity, alert.locale) == ("no-base-model", "warning", "en-US")
    assert alert.details == {"kinds": ["Acoustic", "Language"], "datasets": ["d1", "d2"]}
    assert of(actions, CreateModel) == []
    after = apply(snapshot, actions)
    assert poll(after) == []

    more_zip, more_dataset = pair("en-US/acoustic/more.zip", "d3")
    grown = dataclasses.replace(after, zips=[*after.zips, more_zip], datasets=[*after.datasets, more_dataset])
    [again] = alerts(poll(grown))
    assert again.kind == "no-base-model" and again.id != alert.id


# -- processing and training outcomes -----------------------------------------------------------------------------


def test_a_failed_dataset_alerts_once_with_the_service_error_and_records_it_on_its_zip():
    blob = zip_blob("en-US/acoustic/calls.zip", "0x7", status="submitted", dataset_id="d1", owner="team-a")
    failed = dataset(
        "d1",
        "en-US/acoustic/calls.zip",
        etag="0x7",
        status="Failed",
        error=("InvalidAudioFormat", "calls/0001.wav is not 16 kHz mono PCM."),
    )
    snapshot = snap(zips=[blob], datasets=[failed])

    actions = poll(snapshot)

    [alert] = alerts(actions)
    assert (alert.kind, alert.locale) == ("dataset-failed", "en-US")
    assert alert.resource == "training/en-US/acoustic/calls.zip"
    assert alert.details["code"] == "InvalidAudioFormat"
    assert alert.details["error"] == "calls/0001.wav is not 16 kHz mono PCM."
    assert "calls/0001.wav is not 16 kHz mono PCM." in alert.message
    reason = "InvalidAudioFormat: calls/0001.wav is not 16 kHz mono PCM."
    state = BlobState("failed", content("0x7"), "d1", reason)
    assert RecordState("en-US/acoustic/calls.zip", "0x7", blob.metadata, state) in actions
    after = apply(snapshot, actions)
    assert after.zips[0].metadata["owner"] == "team-a"
    assert poll(after) == []


def test_a_failed_dataset_holds_back_nothing_else():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1", status="Failed", error=("InvalidData", "bad")),
        pair("en-US/language/sentences.zip", "d2"),
    )

    actions = poll(snapshot)

    assert [a.kind for a in alerts(actions)] == ["dataset-failed"]
    assert only_training(actions).dataset_ids == ("d2",)


def test_a_dataset_that_succeeded_is_recorded_on_its_zip():
    blob = zip_blob("en-US/acoustic/calls.zip", "0x7", status="submitted", dataset_id="d1")
    snapshot = snap(
        zips=[blob], datasets=[dataset("d1", etag="0x7")], models=[model("m1")], endpoints=[deployed("e1", "m1")]
    )

    assert poll(snapshot) == [
        RecordState("en-US/acoustic/calls.zip", "0x7", blob.metadata, BlobState("succeeded", content("0x7"), "d1"))
    ]


def test_a_zip_the_previous_release_handled_keeps_its_dataset_until_it_is_adopted():
    # The previous release keyed datasets on the ETag and kept no metadata state: same ETag, same dataset.
    blob = zip_blob("en-US/acoustic/calls.zip", "0x8")
    legacy = dataset("d2", props={managed.SOURCE_CONTENT: None, managed.SOURCE_ETAG: "0x8"})
    snapshot = snap(zips=[blob], datasets=[legacy], models=[model("m1", ("d2",))], endpoints=[deployed("e1", "m1")])

    assert set(locale_states(snapshot)["en-US"].desired) == {"d2"}
    assert not any(isinstance(a, Ingest) for a in poll(snapshot))


def test_datasets_and_models_the_app_does_not_manage_raise_nothing():
    snapshot = snap(
        datasets=[dataset("d1", status="Failed", error=("InvalidData", "bad"), is_managed=False)],
        models=[model("m1", status="Failed", error=("Internal", "boom"), is_managed=False)],
    )

    assert poll(snapshot) == []


def test_a_failed_model_alerts_once():
    data = pair("en-US/acoustic/calls.zip", "d1")
    good = model("m0", ("d1",), created=NOW - days(90))
    failed = model("m1", ("d1",), status="Failed", created=NOW - days(1), error=("InternalError", "Training failed."))
    snapshot = snap(data, models=[good, failed], endpoints=[deployed("e1", "m0")])

    actions = poll(snapshot)

    failures = [a for a in alerts(actions) if a.kind == "model-failed"]
    assert len(failures) == 1
    assert failures[0].resource == failed.self_uri
    assert (failures[0].details["code"], failures[0].details["error"]) == ("InternalError", "Training failed.")
    assert UpdateProperties("models", "m1", managed.with_alerted(failed.custom_properties, "failed")) in actions
    assert alerts(poll(apply(snapshot, actions))) == []


# -- deployments ------------------------------------------------------------------------------------------------


def test_the_newest_trained_model_is_deployed_once():
    newest = model("m1", ("d1",), created=NOW - days(1))
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        models=[model("m0", ("d0",), created=NOW - days(90)), newest],
        endpoints=[deployed("e1", "m0")],
    )

    actions = poll(snapshot)

    [request] = of(actions, RequestDeploy)
    assert request.message() == {"locale": "en-US", "model": newest.self_uri, "reason": "trained"}
    [update] = of(actions, UpdateProperties)
    assert (update.collection, update.id) == ("models", "m1")
    assert update.custom_properties[managed.DEPLOY_REQUESTED] == "2026-03-01T06:00:00Z"
    assert update.custom_properties[managed.DATASET_SET] == newest.custom_properties[managed.DATASET_SET]
    assert poll(apply(snapshot, actions)) == []


def test_a_locale_without_an_endpoint_asks_for_one():
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=[model("m1")])

    assert [a.message() for a in of(poll(snapshot), RequestDeploy)] == [
        {"locale": "en-US", "model": uri("models", "m1"), "reason": "trained"}
    ]


def test_without_auto_deploy_nothing_is_deployed():
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=[model("m1")])

    assert poll(snapshot, auto_deploy=False) == []


def test_a_model_already_on_the_endpoint_is_not_deployed_again():
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=[model("m1")], endpoints=[deployed("e1", "m1")])

    assert poll(snapshot) == []


def test_an_expired_model_is_not_deployed():
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=[model("m1", expires=NOW)])

    assert of(poll(snapshot), RequestDeploy) == []


def test_an_operators_rollback_is_not_undone():
    requested = NOW - days(5)  # long past DEPLOY_RETRY_DAYS: only the later change of the endpoint holds it back
    newest = model("m1", created=NOW - days(6), props={managed.DEPLOY_REQUESTED: iso(requested)})
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        models=[model("m0", created=NOW - days(90)), newest],
        endpoints=[deployed("e1", "m0", last_action=requested + days(1))],
    )

    assert poll(snapshot) == []


def test_only_the_newest_trained_model_is_deployed_even_if_a_newer_one_failed():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        models=[
            model("m0", ("d0",), created=NOW - days(90)),
            model("m1", ("d1",), created=NOW - days(5)),
            model("m2", ("d1",), status="Failed", created=NOW - days(1), props={managed.ALERTED: "failed"}),
        ],
        endpoints=[deployed("e1", "m0")],
    )

    assert [a.model for a in of(poll(snapshot), RequestDeploy)] == [uri("models", "m1")]


# -- endpoint outcomes ------------------------------------------------------------------------------------------


def test_a_finished_deployment_raises_one_info_alert_per_model():
    snapshot = snap(models=[model("m1")], endpoints=[endpoint("e1", "m1", props={managed.DEPLOY_REQUESTED: None})])

    actions = poll(snapshot, auto_deploy=False)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity, alert.locale) == ("endpoint-deployed", "info", "en-US")
    assert alert.details["model"] == uri("models", "m1")
    after = apply(snapshot, actions)
    assert poll(after, auto_deploy=False) == []

    patched = Endpoint.from_json({**after.endpoints[0].raw, "model": {"self": uri("models", "m2")}})
    [next_alert] = alerts(poll(dataclasses.replace(after, endpoints=[patched]), auto_deploy=False))
    assert next_alert.kind == "endpoint-deployed" and next_alert.id != alert.id


def test_a_rollback_to_an_earlier_model_is_a_new_event_with_a_new_alert_id():
    def serving_at(model_id: str, moment: datetime, alerted: str | None) -> Snapshot:
        raw = endpoint("e1", model_id, props={managed.ALERTED: alerted}).raw
        return snap(endpoints=[Endpoint.from_json({**raw, "lastActionDateTime": iso(moment)})])

    [first] = alerts(poll(serving_at("m1", NOW - days(30), None)))
    [again] = alerts(poll(serving_at("m1", NOW - days(30), None)))  # the same event planned twice
    [rollback] = alerts(poll(serving_at("m1", NOW - days(1), "deployed:m2")))

    assert first.id == again.id
    assert rollback.kind == "endpoint-deployed" and rollback.id != first.id


def test_a_failed_deployment_raises_one_critical_alert():
    snapshot = snap(endpoints=[endpoint("e1", "m1", status="Failed", error=("ModelNotFound", "no such model"))])

    actions = poll(snapshot)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity) == ("endpoint-failed", "critical")
    assert (alert.details["code"], alert.details["error"]) == ("ModelNotFound", "no such model")
    assert poll(apply(snapshot, actions)) == []


@pytest.mark.parametrize(
    "ep",
    [
        endpoint("e1", "m1", status="NotStarted"),
        endpoint("e1", "m1", status="Running"),
        endpoint("e1", "m1", is_managed=False),
        endpoint("e1", "m1", status="Failed", is_managed=False),
    ],
)
def test_endpoints_still_deploying_or_not_managed_raise_nothing(ep):
    assert poll(snap(endpoints=[ep]), auto_deploy=False) == []


# -- locales and idempotence --------------------------------------------------------------------------------------


def test_an_endpoint_with_full_custom_properties_does_not_stop_other_locales():
    full = endpoint("e-en", "m-en", props={f"owner{i}": "platform-team" for i in range(8)})
    assert len(full.custom_properties) == managed.MAX_ENTRIES

    actions = poll(snap(pair("de-DE/acoustic/anrufe.zip", "d-de"), endpoints=[full]))

    assert only_training(actions).locale == "de-DE"


def test_a_superseded_dataset_whose_map_a_person_filled_does_not_stop_the_pass():
    theirs = {f"team{i}": "x" for i in range(7)}  # with managedBy, sourcePath, sourceContent: all 10 entries
    older = dataset("d0", etag="0x1", props=theirs)
    assert len(older.custom_properties) == managed.MAX_ENTRIES

    actions = poll(snap(pair("en-US/acoustic/calls.zip", "d1", etag="0x2"), datasets=[older]))

    assert only_training(actions).dataset_ids == ("d1",)
    assert all(a.id != "d0" for a in of(actions, UpdateProperties))  # no room for supersededBy: left unmarked


def test_a_new_model_whose_map_a_person_filled_is_still_deployed_and_nothing_crashes():
    theirs = {f"team{i}": "x" for i in range(6)}  # with managedBy, datasetSet, baseModel, reason: all 10 entries
    new = model("m1", ("d1",), props=theirs, created=NOW - days(1))
    assert len(new.custom_properties) == managed.MAX_ENTRIES
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=[new], endpoints=[deployed("e1", "m0")])

    actions = poll(snapshot)

    [request] = of(actions, RequestDeploy)
    assert request.model == new.self_uri
    assert [u for u in of(actions, UpdateProperties) if u.collection == "models"] == []  # nothing fits: no write


def test_two_locales_are_independent():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d-en1"),
        pair("en-US/language/sentences.zip", "d-en2", status="Running"),
        pair("de-DE/acoustic/anrufe.zip", "d-de1"),
        pair("fr-FR/acoustic/appels.zip", "d-fr1"),  # no French base model
    )

    actions = poll(snapshot)

    create = only_training(actions)
    assert (create.locale, create.base_model_id, create.dataset_ids) == ("de-DE", "de-base", ("d-de1",))
    assert [(a.kind, a.locale) for a in alerts(actions)] == [("no-base-model", "fr-FR")]


def test_a_busy_poll_has_nothing_left_to_do_once_its_actions_are_applied():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1", etag="0x2", created=NOW - days(1)),
        pair("en-US/language/sentences.zip", "d2"),
        pair("en-US/pronunciation/names.zip", "d3", status="Failed", error=("InvalidData", "bad")),
        pair("de-DE/acoustic/anrufe.zip", "d-de1"),
        pair("fr-FR/acoustic/appels.zip", "d-fr1"),
        zips=[zip_blob("it-IT/acoustic/chiamate.zip", status="rejected")],
        datasets=[dataset("d0", etag="0x1", props={managed.SUPERSEDED_BY: "d1"})],
        models=[
            model("m0", ("d0", "d2")),
            model("m-de", ("d-de1",), locale="de-DE", base="de-base", created=NOW - days(3)),
            model("m-failed", ("d0",), status="Failed", created=NOW - days(20)),
        ],
        endpoints=[endpoint("e1", "m0"), endpoint("e-de", "m-old", locale="de-DE", status="Failed")],
    )

    first = poll(snapshot)
    assert {type(a) for a in first} == {Raise, UpdateProperties, CreateModel, RequestDeploy}
    assert len(of(first, CreateModel)) == 1
    after = apply(snapshot, first)

    assert poll(after) == []

    trained = set_status(after, after.models[-1].id, "Succeeded")
    second = poll(trained)
    assert [a.model for a in of(second, RequestDeploy)] == [trained.models[-1].self_uri]
    assert poll(apply(trained, second)) == []


# -- the expiry timer -------------------------------------------------------------------------------------------


def serving(left: float, *, base_models=BASES, locale: str = "en-US", **model_kwargs: Any) -> Snapshot:
    """A locale whose one zip trained model m-<locale>; it serves the locale's endpoint and expires in `left` days."""
    expires = NOW + days(left)
    folder = "acoustic"
    return snap(
        pair(f"{locale}/{folder}/calls.zip", f"d-{locale}", created=expires - days(800)),
        models=[
            model(
                f"m-{locale}",
                (f"d-{locale}",),
                locale=locale,
                created=expires - days(730),
                expires=expires,
                **model_kwargs,
            )
        ],
        base_models=base_models,
        endpoints=[deployed(f"e-{locale}", f"m-{locale}", locale=locale)],
    )


def expiring(actions) -> list[tuple[str, int | None, str]]:
    return [(a.kind, a.details.get("tier"), a.severity) for a in alerts(actions)]


def test_exactly_30_days_left_raises_the_30_day_tier_and_retrains():
    snapshot = serving(30)

    actions = expiry(snapshot)

    assert expiring(actions) == [("model-expiring", 30, "warning")]
    create = only_training(actions)
    assert (create.base_model_id, create.dataset_ids) == ("base-2025", ("d-en-US",))
    assert create.custom_properties[managed.REASON] == "expiry"
    assert create.custom_properties[managed.RETRAIN_OF] == "m-en-US"
    assert create.custom_properties[managed.DATASET_SET] == managed.dataset_set_digest(["d-en-US"])
    assert (
        UpdateProperties("models", "m-en-US", managed.with_alerted(snapshot.models[0].custom_properties, "30"))
        in actions
    )


@pytest.mark.parametrize("left", [31, 31.9, 89])
def test_more_days_left_than_the_largest_tier_does_nothing(left):
    assert expiry(serving(left)) == []


@pytest.mark.parametrize("left", [30, 30 + 1 / 86400, 30.5])
def test_thirty_calendar_days_before_expiry_is_the_30_day_tier_whatever_the_hour(left):
    assert [tier for _, tier, _ in expiring(expiry(serving(left)))] == [30]


def test_a_serving_model_at_10_days_raises_one_alert_for_the_tightest_tier_and_retrains_from_the_newest_base():
    bases = [
        base_model("newest-closed", created=NOW - days(380), adapt_until=NOW - days(15)),
        base_model("adaptable", created=NOW - days(400), adapt_until=NOW + days(5)),
        base_model("adaptable-older", created=NOW - days(500), adapt_until=NOW + days(50)),
    ]
    snapshot = serving(10, base_models=bases)

    actions = expiry(snapshot)

    assert expiring(actions) == [("model-expiring", 14, "warning")]  # 30 and 14 crossed at once: one alert
    [alert] = alerts(actions)
    assert "(14-day warning)" in alert.message and "retrain" in alert.message and "adaptable" in alert.message
    assert alert.details["handsOff"] == {"action": "retrain", "baseModel": "adaptable"}
    assert only_training(actions).base_model_id == "adaptable"
    [update] = of(actions, UpdateProperties)
    assert update.custom_properties[managed.ALERTED] == "30,14"  # both tiers: neither fires later
    assert expiry(apply(snapshot, actions)) == []


def test_a_model_expiring_today_raises_one_critical_alert_and_records_every_tier():
    snapshot = serving(0.5)  # stops transcribing at 18:00 today

    actions = expiry(snapshot)

    assert expiring(actions) == [("model-expiring", 1, "critical")]  # severity follows the days left
    assert "in 0 day(s)" in alerts(actions)[0].message
    assert len(of(actions, CreateModel)) == 1
    [update] = of(actions, UpdateProperties)
    assert update.custom_properties[managed.ALERTED] == "30,14,7,1"
    assert expiry(apply(snapshot, actions)) == []


def test_tiers_crossed_earlier_are_not_raised_again_when_a_tighter_one_is_crossed():
    snapshot = serving(6, props={managed.ALERTED: "30"})

    actions = expiry(snapshot, auto_retrain=False)

    assert expiring(actions) == [("model-expiring", 7, "critical")]
    [update] = of(actions, UpdateProperties)
    assert update.custom_properties[managed.ALERTED] == "30,14,7"


@pytest.mark.parametrize("left", [0, -1, -200])
def test_an_expired_model_raises_one_critical_model_expired_alert(left):
    snapshot = serving(left, props={managed.ALERTED: "30,14,7,1"} if left == 0 else None)

    actions = expiry(snapshot, auto_retrain=False)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity, alert.resource) == ("model-expired", "critical", uri("models", "m-en-US"))
    assert expiry(apply(snapshot, actions), auto_retrain=False) == []


def test_severity_rises_as_the_days_fall_and_each_tier_alerts_once():
    rank = {"info": 0, "warning": 1, "critical": 2}
    snapshot = serving(40)
    seen = []
    for day in range(42):
        today = dataclasses.replace(snapshot, now=NOW + days(day))
        actions = expiry(today, auto_retrain=False)
        seen += [(day, *entry) for entry in expiring(actions)]
        snapshot = apply(today, actions)

    assert [(day, kind, tier) for day, kind, tier, _ in seen] == [
        (10, "model-expiring", 30),
        (26, "model-expiring", 14),
        (33, "model-expiring", 7),
        (39, "model-expiring", 1),
        (40, "model-expired", None),
    ]
    severities = [rank[severity] for *_, severity in seen]
    assert severities == sorted(severities) and severities[0] < severities[-1] == rank["critical"]


def test_custom_tiers_retrain_at_the_largest_one():
    actions = expiry(serving(45), tiers=(60, 5))

    assert expiring(actions) == [("model-expiring", 60, "warning")]
    assert only_training(actions).custom_properties[managed.REASON] == "expiry"


def test_a_retrain_of_mixed_kinds_uses_a_base_model_that_adapts_all_of_them():
    bases = [
        base_model("acoustic-only", created=NOW - days(10), kinds=("Acoustic",)),
        base_model("both", created=NOW - days(200), kinds=("Acoustic", "Language")),
    ]
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        pair("en-US/language/sentences.zip", "d2"),
        models=[model("m1", ("d1", "d2"), expires=NOW + days(20))],
        base_models=bases,
        endpoints=[deployed("e1", "m1")],
    )

    create = only_training(expiry(snapshot))

    assert (create.base_model_id, create.dataset_ids) == ("both", ("d1", "d2"))


def test_retrain_impossible_is_raised_once_ahead_of_time():
    closed = [base_model("closed", created=NOW - days(500), adapt_until=NOW - days(1))]
    snapshot = serving(60, base_models=closed)

    actions = expiry(snapshot)

    [alert] = alerts(actions)
    assert (alert.kind, alert.severity, alert.locale) == ("retrain-impossible", "critical", "en-US")
    assert of(actions, CreateModel) == []
    after = apply(snapshot, actions)
    assert expiry(after) == []
    later = dataclasses.replace(after, now=NOW + days(31))
    assert expiring(expiry(later)) == [("model-expiring", 30, "warning")]


def test_retrain_impossible_when_no_base_model_adapts_every_kind():
    snapshot = serving(20, base_models=[base_model("language-only", kinds=("Language",))])

    assert [a.kind for a in alerts(expiry(snapshot))] == ["model-expiring", "retrain-impossible"]


def test_retrain_impossible_is_not_raised_long_before_expiry():
    assert expiry(serving(200, base_models=[])) == []


def test_without_auto_retrain_only_alerts_are_raised():
    actions = expiry(serving(10), auto_retrain=False)

    assert [a.kind for a in alerts(actions)] == ["model-expiring"]
    assert "handsOff" not in alerts(actions)[0].details  # nothing is done about it: a person has to act
    assert of(actions, CreateModel) == []


def test_no_retrain_while_a_newer_model_is_training_or_trained():
    training = serving(10, props={managed.ALERTED: "30,14"})
    training = dataclasses.replace(
        training, models=[*training.models, model("m-next", ("d-en-US",), status="Running", created=NOW - days(1))]
    )
    assert expiry(training) == []

    trained = set_status(training, "m-next", "Succeeded")
    assert of(expiry(trained), CreateModel) == []


def test_an_expiry_retrain_is_deployed_by_the_poll_with_reason_expiry():
    snapshot = serving(10)
    retrained = apply(snapshot, expiry(snapshot))
    new_model = retrained.models[-1]
    assert of(poll(retrained), RequestDeploy) == []  # still training

    done = set_status(retrained, new_model.id, "Succeeded")

    assert [a.message() for a in of(poll(done), RequestDeploy)] == [
        {"locale": "en-US", "model": new_model.self_uri, "reason": "expiry"}
    ]


def test_the_newest_model_not_yet_deployed_is_watched_but_not_retrained():
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=[model("m1", expires=NOW + days(10))])

    actions = expiry(snapshot)

    assert expiring(actions) == [("model-expiring", 14, "warning")]
    assert "not deployed yet, on its way" in alerts(actions)[0].message
    assert alerts(actions)[0].details["handsOff"] == {"action": "deploy"}
    assert of(actions, CreateModel) == []


def test_a_model_nothing_serves_and_the_app_will_not_deploy_raises_no_expiry_alert():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        models=[
            model("old", created=NOW - days(700), expires=NOW + days(3)),
            model("older", created=NOW - days(800), expires=NOW - days(3)),
            model("unmanaged", created=NOW - days(1), expires=NOW + days(3), is_managed=False),
            model("current", created=NOW - days(20)),
        ],
        endpoints=[deployed("e1", "current")],
    )

    assert set(watched_models(snapshot)) == {"current"}
    assert expiry(snapshot) == []  # nothing is written either: a rollback to "old" later still alerts


@pytest.mark.parametrize("decision", ["failed", "error", "untested"])
def test_a_newest_model_the_quality_gate_held_back_is_not_on_its_way(decision):
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        models=[
            model("serving", created=NOW - days(700), expires=NOW + days(200)),
            model("held", created=NOW - days(600), expires=NOW + days(10), props={managed.QUALITY_GATE: decision}),
        ],
        endpoints=[deployed("e1", "serving")],
    )

    assert set(watched_models(snapshot)) == {"serving"}
    assert expiry(snapshot) == []


def test_a_newest_model_is_on_its_way_only_if_the_app_will_deploy_it():
    trained = model("next", created=NOW - days(600), expires=NOW + days(10))
    retrain = model("next", created=NOW - days(600), expires=NOW + days(10), props={managed.REASON: "expiry"})

    def watched(newest, **switches) -> set[str]:
        snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=[newest])
        return set(watched_models(snapshot, **switches))

    assert watched(trained) == {"next"}
    assert watched(trained, auto_deploy=False) == set()  # waits for a person
    assert watched(retrain, auto_deploy=False) == {"next"}  # AUTO_RETRAIN alone deploys its retrains
    assert watched(retrain, auto_deploy=False, auto_retrain=False) == set()


def test_a_newest_model_whose_deploy_request_an_operator_overrode_is_not_on_its_way():
    models = [
        model("old", created=NOW - days(700), expires=NOW + days(200)),
        model(
            "new", created=NOW - days(600), expires=NOW + days(10), props={managed.DEPLOY_REQUESTED: iso(NOW - days(5))}
        ),
    ]

    def watched(endpoint_changed: datetime) -> set[str]:
        endpoints = [deployed("e1", "old", last_action=endpoint_changed)]
        return set(watched_models(snap(pair("en-US/acoustic/calls.zip", "d1"), models=models, endpoints=endpoints)))

    assert watched(NOW - days(4)) == {"old"}  # rolled back after the request: the app leaves it
    assert watched(NOW - days(6)) == {"old", "new"}  # requested, not landed yet: still on its way


def test_a_model_serving_the_managed_endpoint_is_watched_even_if_not_managed():
    snapshot = snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        models=[model("theirs", expires=NOW + days(10), is_managed=False), model("ours", created=NOW - days(90))],
        endpoints=[deployed("e1", "theirs")],
    )

    assert set(watched_models(snapshot)) == {"theirs", "ours"}
    assert {a.resource for a in alerts(expiry(snapshot))} == {uri("models", "theirs")}


def test_expiry_of_two_locales_is_independent():
    en = serving(10)
    de = serving(60, locale="de-DE", base_models=[])
    fr = serving(300, locale="fr-FR")
    snapshot = snap(
        zips=[*en.zips, *de.zips, *fr.zips],
        datasets=[*en.datasets, *de.datasets, *fr.datasets],
        models=[*en.models, *de.models, *fr.models],
        endpoints=[*en.endpoints, *de.endpoints, *fr.endpoints],
        base_models=[base_model("en-base")],
    )

    actions = expiry(snapshot)

    assert [(a.kind, a.locale) for a in alerts(actions)] == [
        ("model-expiring", "en-US"),
        ("retrain-impossible", "de-DE"),
    ]
    create = only_training(actions)
    assert (create.locale, create.base_model_id) == ("en-US", "en-base")
    assert expiry(apply(snapshot, actions)) == []


def test_a_deploy_request_that_never_landed_is_sent_again_unless_the_endpoint_changed_since():
    """Found by the soak: a deploy message that ended in the poison queue left the newest model undeployed for good,
    and the expiry timer does not retrain a serving model that has a newer replacement."""
    from shared.reconcile import DEPLOY_RETRY_DAYS

    requested = NOW - days(DEPLOY_RETRY_DAYS) - timedelta(hours=1)
    newest = model("m1", created=requested - days(1), props={managed.DEPLOY_REQUESTED: iso(requested)})
    untouched = deployed("e1", "m0")
    older = model("m0", created=NOW - days(90))
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=[older, newest], endpoints=[untouched])

    actions = poll(snapshot)

    assert [a.model for a in of(actions, RequestDeploy)] == [newest.self_uri]
    [update] = of(actions, UpdateProperties)
    assert update.custom_properties[managed.DEPLOY_REQUESTED] == iso(NOW)
    assert poll(apply(snapshot, actions)) == []
    rolled_back = Endpoint.from_json({**untouched.raw, "lastActionDateTime": iso(requested + timedelta(hours=3))})
    assert poll(dataclasses.replace(snapshot, endpoints=[rolled_back])) == []
    assert of(poll(dataclasses.replace(snapshot, endpoints=[])), RequestDeploy) != []


def test_a_retrain_comes_early_when_the_only_adaptable_base_closes_before_the_largest_tier():
    bases = [base_model("closing", created=NOW - days(300), adapt_until=NOW + days(20))]
    early = expiry(serving(80, base_models=bases))
    assert only_training(early).base_model_id == "closing"
    later = [base_model("open", created=NOW - days(30), adapt_until=NOW + days(300))]
    assert of(expiry(serving(80, base_models=later)), CreateModel) == []  # it can wait for the 30-day tier


def test_a_model_without_a_transcription_date_is_held_to_the_quarter_rule():
    created = NOW - days(720)  # 2024-03-12: its quarter ends 2024-04-15, so it transcribes until 2026-04-15
    raw = dict(model("m1", created=created).raw)
    raw["properties"] = {k: v for k, v in raw["properties"].items() if k != "deprecationDates"}
    undated = CustomModel.from_json(raw)
    assert undated.transcription_expiry is None
    assert days_left(undated, NOW) == 45


# -- cost ----------------------------------------------------------------------------------------------------------


class CountingList(list):
    """A list that counts how often the planner walks it (iteration or indexing of the whole)."""

    def __init__(self, items) -> None:
        super().__init__(items)
        self.walks = 0

    def __iter__(self):
        self.walks += 1
        return super().__iter__()


def _big_snapshot(n: int) -> Snapshot:
    locales = ("en-US", "de-DE")
    pairs = [pair(f"{locales[i % 2]}/language/z{i}.zip", f"d{i}", created=NOW - days(3)) for i in range(n)]
    models = [
        model(f"m{i}", (f"d{i}",), locale=locales[i % 2], created=NOW - days(10) + timedelta(minutes=i))
        for i in range(n)
    ]
    endpoints = [deployed(f"e{i}", f"m{n - 1 - i}", locale=locales[i % 2]) for i in range(2)]
    bases = [*BASES, base_model("de-base-2", locale="de-DE", created=NOW - days(10))]
    return Snapshot(
        now=NOW,
        container=CONTAINER,
        zips=CountingList(z for z, _ in pairs),
        datasets=CountingList(d for _, d in pairs),
        models=CountingList(models),
        base_models=CountingList(bases),
        endpoints=CountingList(endpoints),
    )


@pytest.mark.parametrize("plan", [poll, expiry], ids=["poll", "expiry"])
def test_a_plan_walks_each_collection_a_bounded_number_of_times_whatever_its_size(plan):
    """Linear by construction: the walks over each collection do not grow with the number of items (a planner
    step that scanned the datasets once per zip, or the models once per model, would walk them n times)."""
    walks = {}
    for n in (10, 40):
        snapshot = _big_snapshot(n)
        plan(snapshot)
        walks[n] = {name: getattr(snapshot, name).walks for name in ("zips", "datasets", "models", "endpoints")}
        assert all(count <= 6 for count in walks[n].values()), walks[n]  # a few steps, each one walk
    assert walks[10] == walks[40]
