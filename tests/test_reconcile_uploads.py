"""Datasets uploaded in blocks from outside the container (`upload:` sources) in the pure planner, and datasets
still being uploaded in blocks in the ingest's decisions."""

from __future__ import annotations

from shared import managed
from shared.ingest import first_made_from, made_from
from shared.reconcile import CreateModel, Ingest, current_uploads, locale_states, zip_dataset
from tests.test_reconcile import NOW, apply, content, days, model, of, only_training, pair, poll, snap, zip_blob
from tests.test_reconcile import dataset as zip_made_dataset

SOURCE = "upload:en-US/language/corpus.zip"


def uploaded(dataset_id: str, source: str = SOURCE, *, status: str = "Succeeded", age_days: float = 2, **props):
    """A dataset the block upload made: sourcePath `upload:...`, no ETag, blocks committed unless told."""
    locale, folder = source.removeprefix(managed.UPLOAD_SOURCE_PREFIX).split("/")[:2]
    marks = {
        managed.SOURCE: source,
        managed.SOURCE_ETAG: None,
        managed.SOURCE_CONTENT: f"zip1:{dataset_id}",
        managed.BLOCKS: managed.BLOCKS_COMMITTED,
        **props,
    }
    return zip_made_dataset(
        dataset_id, f"{locale}/{folder}/x.zip", status=status, created=NOW - days(age_days), props=marks
    )


def test_a_succeeded_upload_joins_its_locales_desired_set_with_the_zips():
    state = locale_states(snap(pair("en-US/acoustic/calls.zip", "d-zip"), datasets=[uploaded("d-up")]))["en-US"]
    assert sorted(state.desired) == ["d-up", "d-zip"] and state.pending == []
    create = only_training(poll(snap(pair("en-US/acoustic/calls.zip", "d-zip"), datasets=[uploaded("d-up")])))
    assert create.dataset_ids == ("d-up", "d-zip")


def test_an_upload_alone_trains_a_model_once():
    snapshot = snap(datasets=[uploaded("d-up")])
    actions = poll(snapshot)
    assert only_training(actions).dataset_ids == ("d-up",)
    assert of(poll(apply(snapshot, actions)), CreateModel) == []


def test_a_superseded_upload_leaves_the_set_and_its_newer_version_trains():
    old = uploaded("d-old", age_days=5, **{managed.SUPERSEDED_BY: "d-new"})
    new = uploaded("d-new", age_days=1)
    trained_on_old = model("m1", ("d-old",))
    assert sorted(locale_states(snap(datasets=[old, new]))["en-US"].desired) == ["d-new"]
    assert only_training(poll(snap(datasets=[old, new], models=[trained_on_old]))).dataset_ids == ("d-new",)


def test_the_newest_committed_upload_wins_even_before_the_older_is_marked():
    old, new = uploaded("d-old", age_days=5), uploaded("d-new", age_days=1)  # stopped between creating and marking
    assert list(current_uploads([old, new]).values()) == [new]


def test_an_upload_still_sending_blocks_is_no_data_and_holds_nothing_back():
    old = uploaded("d-old", age_days=5, **{managed.SUPERSEDED_BY: "d-new"})  # marked when d-new was created
    sending = uploaded("d-new", status="NotStarted", age_days=0, **{managed.BLOCKS: managed.BLOCKS_UPLOADING})
    state = locale_states(snap(datasets=[old, sending], models=[model("m1", ("d-old",))]))["en-US"]
    assert sorted(state.desired) == ["d-old"] and state.pending == []
    assert of(poll(snap(datasets=[old, sending], models=[model("m1", ("d-old",))])), CreateModel) == []


def test_a_newer_upload_being_processed_holds_training_back_like_a_zip():
    old = uploaded("d-old", age_days=5, **{managed.SUPERSEDED_BY: "d-new"})
    running = uploaded("d-new", status="Running", age_days=0)
    state = locale_states(snap(datasets=[old, running]))["en-US"]
    assert state.desired == {} and state.pending == [SOURCE]
    assert of(poll(snap(datasets=[old, running], models=[model("m1", ("d-old",))])), CreateModel) == []


def test_a_failed_newer_upload_is_alerted_and_its_path_leaves_the_set_like_a_zips():
    old = uploaded("d-old", age_days=5, **{managed.SUPERSEDED_BY: "d-new"})
    failed = uploaded("d-new", status="Failed", age_days=0)
    assert "en-US" not in locale_states(snap(datasets=[old, failed]))  # neither desired nor pending
    kinds = [a.alert.kind for a in poll(snap(datasets=[old, failed])) if hasattr(a, "alert")]
    assert kinds == ["dataset-failed"]


def test_uploads_of_other_paths_and_locales_stay_apart():
    other = uploaded("d-other", "upload:en-US/language/other.zip")
    german = uploaded("d-de", "upload:de-DE/language/korpus.zip")
    states = locale_states(snap(datasets=[uploaded("d-up"), other, german]))
    assert sorted(states["en-US"].desired) == ["d-other", "d-up"] and sorted(states["de-DE"].desired) == ["d-de"]


def test_datasets_not_managed_or_not_uploaded_are_not_uploads():
    foreign = uploaded("d-foreign", **{managed.MANAGED: None})
    zip_made = zip_made_dataset("d-zip", "en-US/language/gone.zip")  # its zip is gone: not desired
    assert locale_states(snap(datasets=[foreign, zip_made])) == {}


def test_a_zip_whose_blocks_are_still_being_uploaded_is_swept_again():
    blob = zip_blob("en-US/acoustic/calls.zip", "0x1", status="submitted")
    sending = zip_made_dataset(
        "d1", "en-US/acoustic/calls.zip", etag="0x1", status="NotStarted", props={managed.BLOCKS: "uploading"}
    )
    snapshot = snap(zips=[blob], datasets=[sending])
    assert zip_dataset(snapshot, blob) is None
    assert of(poll(snapshot), Ingest) == [Ingest("en-US/acoustic/calls.zip")]
    committed = zip_made_dataset("d1", "en-US/acoustic/calls.zip", etag="0x1", props={managed.BLOCKS: "committed"})
    assert zip_dataset(snap(zips=[blob], datasets=[committed]), blob) == committed


def test_the_ingest_hands_an_unfinished_block_upload_back_to_the_engine():
    path = "training/en-US/acoustic/calls.zip"
    earlier = zip_made_dataset("d1", "en-US/acoustic/calls.zip", etag="0x1")
    sending = zip_made_dataset(
        "d2", "en-US/acoustic/calls.zip", etag="0x2", status="NotStarted", props={managed.BLOCKS: "uploading"}
    )
    assert not made_from(sending, path, content("0x2"))  # not done: the ingest hands it to the engine
    assert first_made_from([earlier, sending], path, content("0x2")) is None
