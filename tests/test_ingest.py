"""Drop a zip, get a dataset: the blob-triggered ingest through Azurite and the Speech emulator."""

from __future__ import annotations

import logging

import pytest
import requests

from local import samples
from shared.ingest import KIND_FOLDERS
from shared.zipcheck import BytesRangeReader, content_id
from tests.conftest import alerts_of
from tests.helpers import concurrently, drop, state_of

KINDS = KIND_FOLDERS


def datasets(emulator) -> list[dict]:
    return list(emulator.datasets.values())


@pytest.fixture
def sas_urls(monkeypatch) -> list[str]:
    """The contentUrl values the ingest generated (the emulator only keeps redacted copies)."""
    from shared.flows import ingest as blueprint

    urls: list[str] = []
    original = blueprint.content_sas_url

    def capture(*args, **kwargs):
        urls.append(original(*args, **kwargs))
        return urls[-1]

    monkeypatch.setattr(blueprint, "content_sas_url", capture)
    return urls


@pytest.mark.parametrize("folder", sorted(KINDS))
def test_a_valid_zip_of_each_kind_becomes_one_dataset(runtime, container, emulator, app_env, folder):
    data = samples.sample_zip(folder)  # once: zipfile stamps entries with the current time, so a second call may differ
    blob = drop(container, f"en-US/{folder}/sample.zip", data)
    result = runtime.deliver_blob("ingest_zip", f"en-US/{folder}/sample.zip")
    assert result.ok, result.error
    [dataset] = datasets(emulator)
    assert (dataset["kind"], dataset["locale"]) == (KINDS[folder], "en-US")
    props = dataset["customProperties"]
    assert props["managedBy"] == "speech-autopilot"
    assert props["sourcePath"] == f"{app_env['TRAINING_CONTAINER']}/en-US/{folder}/sample.zip"
    assert props["sourceContent"] == content_id(BytesRangeReader(data))
    state = state_of(blob)
    assert state.status == "submitted" and state.dataset == dataset["self"].split("/")[-1].split("?")[0]
    assert state.content == props["sourceContent"] and blob.get_blob_tags() == {}  # users' tags are theirs
    assert alerts_of(runtime, app_env["ALERT_QUEUE"]) == []


def test_the_service_downloads_a_read_only_sas_of_that_blob(runtime, container, emulator, sas_urls):
    drop(container, "en-US/acoustic/calls.zip", samples.acoustic_zip())
    drop(container, "en-US/acoustic/other.zip", b"not this one")
    assert runtime.deliver_blob("ingest_zip", "en-US/acoustic/calls.zip").ok
    [download] = emulator.downloads
    assert download["status"] == 200 and download["bytes"] > 0
    [url] = sas_urls
    assert "sig=" in url and "sp=r" in url and "/en-US/acoustic/calls.zip?" in url
    # read-only: a write with the same SAS is refused; that one blob only: another blob is refused
    assert requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10).status_code == 403
    other = url.replace("/calls.zip?", "/other.zip?")
    assert requests.get(other, timeout=10).status_code == 403
    original = container.get_blob_client("en-US/acoustic/calls.zip").download_blob().readall()
    assert requests.get(url, timeout=10).content == original


BAD = {
    "not-a-zip": ("en-US/language/notes.zip", b"just some text, not an archive" * 10, "zip"),
    "zero-bytes": ("en-US/language/empty.zip", b"", "empty"),
    "truncated": ("en-US/acoustic/cut.zip", samples.acoustic_zip()[:-40], "truncat"),
    "dot-dot": ("en-US/language/evil.zip", samples.zip_bytes({"../escape.txt": "hello"}), ".."),
    "no-transcript": ("en-US/acoustic/audio-only.zip", samples.zip_bytes({"a.wav": samples.wav_bytes()}), "transcript"),
    "missing-wav": ("en-US/acoustic/missing.zip", samples.acoustic_zip(2, missing=("ghost.wav",)), "ghost.wav"),
    "unknown-kind": ("en-US/video/clip.zip", samples.language_zip(), "video"),
    "bad-locale": ("english/language/corpus.zip", samples.language_zip(), "english"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_rejected_with_a_reason_and_nothing_is_lost(runtime, container, emulator, app_env, case):
    name, data, reason_fragment = BAD[case]
    blob = drop(container, name, data)
    result = runtime.deliver_blob("ingest_zip", name)
    assert result.ok, result.error
    assert datasets(emulator) == []
    [alert] = alerts_of(runtime, app_env["ALERT_QUEUE"])
    assert alert["kind"] == "zip-rejected" and alert["severity"] == "warning"
    assert alert["resource"] == f"{app_env['TRAINING_CONTAINER']}/{name}"
    assert set(alert) == {"id", "kind", "severity", "locale", "resource", "message", "details", "at"}
    reasons = " ".join(alert["details"]["reasons"]).lower()
    assert reason_fragment.lower() in reasons, reasons
    assert blob.download_blob().readall() == data  # the zip is still there, untouched
    state = state_of(blob)
    assert state.status == "rejected" and state.content == content_id(BytesRangeReader(data))
    # the same event again: no second alert
    assert runtime.deliver_blob("ingest_zip", name).ok
    assert alerts_of(runtime, app_env["ALERT_QUEUE"]) == []


def test_over_size_by_blob_properties_is_rejected_without_reading_it(
    runtime, container, emulator, app_env, monkeypatch
):
    from shared import zipcheck

    limits = zipcheck.KIND_LIMITS["Language"]
    monkeypatch.setitem(zipcheck.KIND_LIMITS, "Language", limits.__class__(**{**vars(limits), "max_zip_bytes": 100}))
    drop(container, "en-US/language/big.zip", samples.language_zip(200))
    assert runtime.deliver_blob("ingest_zip", "en-US/language/big.zip").ok
    assert datasets(emulator) == []
    [alert] = alerts_of(runtime, app_env["ALERT_QUEUE"])
    assert "bytes" in " ".join(alert["details"]["reasons"]) or "size" in " ".join(alert["details"]["reasons"])


def test_unsupported_locale_is_rejected(runtime, container, emulator, app_env):
    drop(container, "xx-XX/language/corpus.zip", samples.language_zip())
    assert runtime.deliver_blob("ingest_zip", "xx-XX/language/corpus.zip").ok
    [alert] = alerts_of(runtime, app_env["ALERT_QUEUE"])
    assert "xx-XX" in alert["message"] and datasets(emulator) == []


def test_the_same_event_three_times_makes_one_dataset(runtime, container, emulator):
    drop(container, "en-US/language/corpus.zip", samples.language_zip())
    for _ in range(3):
        assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    assert len(datasets(emulator)) == 1


def test_three_concurrent_deliveries_make_one_dataset(runtime, container, emulator):
    drop(container, "en-US/language/corpus.zip", samples.language_zip())
    results = concurrently(lambda: runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip"), times=3)
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(datasets(emulator)) == 1


def test_a_new_upload_to_the_same_path_supersedes_the_old_dataset(runtime, container, emulator):
    drop(container, "en-US/language/corpus.zip", samples.language_zip(10))
    assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    [first] = datasets(emulator)
    drop(container, "en-US/language/corpus.zip", samples.language_zip(30))
    assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    assert len(datasets(emulator)) == 2
    assert runtime.fire_timer("reconcile").ok  # the pass marks the older dataset
    second = next(d for d in datasets(emulator) if d["self"] != first["self"])
    old = emulator.datasets[first["self"].split("/")[-1].split("?")[0]]
    assert old["customProperties"]["supersededBy"] == second["self"].split("/")[-1].split("?")[0]
    assert "supersededBy" not in second["customProperties"]


def test_no_sas_signature_or_key_reaches_the_logs(runtime, container, emulator, captured_logs, sas_urls):
    drop(container, "en-US/acoustic/calls.zip", samples.acoustic_zip())
    assert runtime.deliver_blob("ingest_zip", "en-US/acoustic/calls.zip").ok
    [url] = sas_urls
    signature = url.split("sig=")[1].split("&")[0]
    text = captured_logs.text
    assert "creating a Acoustic dataset" in text or "creating" in text
    for secret in (signature, requests.utils.unquote(signature), emulator.key, "Eby8vdM02xNOcqFlq"):
        assert secret not in text


def test_non_zip_blobs_and_vanished_blobs_are_ignored(runtime, container, emulator, app_env):
    drop(container, "en-US/language/readme.txt", b"hello")
    assert runtime.deliver_blob("ingest_zip", "en-US/language/readme.txt").ok
    assert runtime.deliver_blob("ingest_zip", "en-US/language/gone.zip").ok
    assert datasets(emulator) == [] and alerts_of(runtime, app_env["ALERT_QUEUE"]) == []


def test_the_function_is_an_event_grid_blob_trigger_taking_a_client(runtime):
    trigger = runtime.trigger("ingest_zip")
    assert trigger["type"] == "blobTrigger" and trigger["source"] == "EventGrid"
    assert trigger["path"] == "%TRAINING_CONTAINER%/{name}"
    logging.getLogger(__name__).debug("trigger %s", trigger)


def test_a_dataset_the_service_refuses_is_a_rejection_the_user_is_told_about(runtime, container, emulator, app_env):
    emulator.inject(status=400, count=1, method="POST", path_contains="/datasets")
    blob = drop(container, "en-US/language/corpus.zip", samples.language_zip())
    assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    [alert] = alerts_of(runtime, app_env["ALERT_QUEUE"])
    assert alert["kind"] == "zip-rejected" and "refused" in alert["details"]["reasons"][0]
    assert state_of(blob).status == "rejected" and datasets(emulator) == []


def test_a_metadata_or_content_type_change_is_the_same_zip(runtime, container, emulator, app_env):
    """A new ETag with the same bytes: no second dataset, no alert (identity follows content)."""
    from azure.storage.blob import ContentSettings

    blob = drop(container, "en-US/language/corpus.zip", samples.language_zip())
    assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    etag = blob.get_blob_properties().etag
    blob.set_blob_metadata({"owner": "team-a"})  # replaces every key, ours included
    blob.set_http_headers(ContentSettings(content_type="application/x-zip-compressed"))
    assert blob.get_blob_properties().etag != etag
    for _ in range(2):
        assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
        assert runtime.fire_timer("reconcile").ok
    assert len(datasets(emulator)) == 1 and alerts_of(runtime, app_env["ALERT_QUEUE"]) == []
    metadata = blob.get_blob_properties().metadata
    assert metadata["owner"] == "team-a" and state_of(blob).status == "submitted"


def test_users_tags_are_never_touched_even_a_full_set_of_ten(runtime, container, emulator, app_env):
    tags = {f"user{n}": f"value{n}" for n in range(10)}
    blob = drop(container, "en-US/language/bad.zip", b"not a zip at all" * 10)
    blob.set_blob_tags(tags)
    assert runtime.deliver_blob("ingest_zip", "en-US/language/bad.zip").ok
    [alert] = alerts_of(runtime, app_env["ALERT_QUEUE"])
    assert alert["kind"] == "zip-rejected" and state_of(blob).status == "rejected"
    assert blob.get_blob_tags() == tags


def test_an_ingest_never_waits_for_a_pass_holding_the_autopilot_lock(runtime, container, emulator):
    """Ingests serialize per source (a lease on a marker blob of their own), not on the passes' lock."""
    drop(container, "en-US/language/corpus.zip", samples.language_zip())
    pass_lease = container.acquire_lease(lease_duration=60)  # a long reconcile pass holds the autopilot lock
    try:
        result = runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip")
    finally:
        pass_lease.release()
    assert result.ok, result.error
    assert len(datasets(emulator)) == 1


def test_the_same_source_waits_for_its_own_lock(runtime, container, emulator, monkeypatch):
    from shared import context
    from shared.flows import ingest as flow
    from shared.storage import source_lock

    drop(container, "en-US/language/corpus.zip", samples.language_zip())
    path = f"{container.container_name}/en-US/language/corpus.zip"
    monkeypatch.setattr(flow, "source_lock", lambda locks, source: source_lock(locks, source, wait_seconds=0.5))
    with source_lock(context.locks_container(context.settings()), path):
        busy = runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip")
    assert not busy.ok and "LockBusy" in str(busy.error) and datasets(emulator) == []
    assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    assert len(datasets(emulator)) == 1


def test_a_dataset_a_person_renamed_or_redescribed_is_still_found_no_duplicate(runtime, container, emulator):
    """The lookup is an exact description filter, then the dataset the zip's state names: a person renaming the
    dataset, or editing its description, after the zip was handled never makes a second one."""
    from shared import context

    drop(container, "en-US/language/corpus.zip", samples.language_zip())
    assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    [dataset] = datasets(emulator)
    speech = context.speech(context.settings())
    dataset_id = dataset["self"].split("?")[0].rsplit("/", 1)[-1]
    speech.update_dataset(dataset_id, display_name="renamed by a person")
    assert runtime.fire_timer("reconcile").ok  # the sweep looks it up again (state not trusted)
    from shared.flows.ingest import ingest_blob

    config = context.settings()
    blob = container.get_blob_client("en-US/language/corpus.zip")
    assert ingest_blob(config, blob, context.alert_sender(config), trust_state=False) == []
    speech.update_dataset(dataset_id, description="a person's own words")
    assert ingest_blob(config, blob, context.alert_sender(config), trust_state=False) == []
    assert len(datasets(emulator)) == 1
    lookups = [r for r in emulator.requests if r["method"] == "GET" and r["path"].endswith("/datasets")]
    assert lookups and all("description eq" in (r["query"].get("filter") or "") for r in lookups[-2:])
