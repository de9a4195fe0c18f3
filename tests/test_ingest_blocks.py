"""DATASET_UPLOAD=blocks: a dropped zip reaches the Speech service as uploaded blocks (Azurite + the emulator),
with the alerts, idempotency and lock of the contentUrl path."""

from __future__ import annotations

import zipfile

import pytest
from azure.core.exceptions import ServiceRequestError

from local import samples
from shared import context, managed, upload
from shared.zipcheck import BlobRangeReader
from tests import helpers
from tests.conftest import alerts_of
from tests.helpers import concurrently, drop, state_of

BLOCK = 64 * 1024


def acoustic_zip() -> bytes:
    """20 half-second WAVs and their transcript, stored: ~320 KB, 5 blocks of 64 KiB."""
    return samples.zip_bytes(samples.acoustic_files(20), compression=zipfile.ZIP_STORED)


BLOCKS = -(-len(acoustic_zip()) // BLOCK)


@pytest.fixture
def blocks_env(monkeypatch, app_env):
    """The blocks setting, small blocks (so small zips make several), no real sleeps between retries."""
    monkeypatch.setenv("DATASET_UPLOAD", "blocks")
    monkeypatch.setattr(upload, "BLOCK_BYTES", BLOCK)
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    context.reset()
    return app_env


def puts(emulator) -> list[dict]:
    return [r for r in emulator.requests if r["method"] == "PUT" and r["path"].endswith("/blocks")]


def test_a_dropped_zip_becomes_a_dataset_through_blocks_and_trains(runtime, container, emulator, blocks_env):
    data = acoustic_zip()
    blob = drop(container, "en-US/acoustic/calls.zip", data)
    result = runtime.deliver_blob("ingest_zip", "en-US/acoustic/calls.zip")
    assert result.ok, result.error
    [dataset] = emulator.datasets.values()
    dataset_id = dataset["self"].split("?")[0].rsplit("/", 1)[-1]
    assert "contentUrl" not in dataset and emulator.downloads == []  # the service never read the storage account
    props = dataset["customProperties"]
    assert props[managed.MANAGED] == managed.MANAGED_BY
    assert props[managed.SOURCE] == f"{blocks_env['TRAINING_CONTAINER']}/en-US/acoustic/calls.zip"
    assert props[managed.SOURCE_CONTENT].startswith("zip1:") and props[managed.BLOCKS] == managed.BLOCKS_COMMITTED
    assert len(puts(emulator)) == BLOCKS == 5
    state = state_of(blob)
    assert (state.status, state.dataset) == ("submitted", dataset_id)
    assert alerts_of(runtime, blocks_env["ALERT_QUEUE"]) == []

    helpers.settle(emulator)
    assert emulator.datasets[dataset_id]["status"] == "Succeeded"
    assert emulator.datasets[dataset_id]["properties"]["acceptedLineCount"] == 20
    assert runtime.fire_timer("reconcile").ok
    [model] = emulator.models.values()
    assert [d["self"] for d in model["datasets"]] == [dataset["self"]]
    assert state_of(blob).status == "succeeded"


def test_the_same_event_again_and_concurrent_deliveries_make_one_dataset(runtime, container, emulator, blocks_env):
    drop(container, "en-US/language/corpus.zip", samples.language_zip(3000))
    results = concurrently(lambda: runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip"), times=3)
    assert all(r.ok for r in results), [r.error for r in results]
    assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    assert len(emulator.datasets) == 1
    sent = len(puts(emulator))
    assert sent == len({r["query"]["blockid"] for r in puts(emulator)})  # no block sent twice


def test_a_delivery_that_dies_half_way_is_resumed_by_the_next_one(
    runtime, container, emulator, blocks_env, monkeypatch
):
    drop(container, "en-US/acoustic/calls.zip", acoustic_zip())
    real_read = BlobRangeReader.read
    count = {"blocks": 0}

    def flaky(self, offset, length):
        if length == BLOCK:
            count["blocks"] += 1
            if count["blocks"] == 4:
                raise ServiceRequestError("connection reset by peer")
        return real_read(self, offset, length)

    monkeypatch.setattr(BlobRangeReader, "read", flaky)
    first = runtime.deliver_blob("ingest_zip", "en-US/acoustic/calls.zip")
    assert not first.ok  # the host retries it (Event Grid redelivers)
    [dataset] = emulator.datasets.values()
    assert dataset["customProperties"][managed.BLOCKS] == managed.BLOCKS_UPLOADING
    sent_first = len(puts(emulator))
    assert 0 < sent_first < BLOCKS

    monkeypatch.setattr(BlobRangeReader, "read", real_read)
    assert runtime.deliver_blob("ingest_zip", "en-US/acoustic/calls.zip").ok
    assert len(emulator.datasets) == 1 and len(puts(emulator)) == BLOCKS  # only the missing blocks went out
    [dataset] = emulator.datasets.values()
    assert dataset["customProperties"][managed.BLOCKS] == managed.BLOCKS_COMMITTED
    helpers.settle(emulator)
    assert next(iter(emulator.datasets.values()))["status"] == "Succeeded"


def test_an_unfinished_upload_is_resumed_by_the_reconcile_sweep(runtime, container, emulator, blocks_env, monkeypatch):
    drop(container, "en-US/acoustic/calls.zip", acoustic_zip())
    real_read = BlobRangeReader.read
    monkeypatch.setattr(
        BlobRangeReader,
        "read",
        lambda self, o, n: (_ for _ in ()).throw(ServiceRequestError("reset")) if n == BLOCK else real_read(self, o, n),
    )
    assert not runtime.deliver_blob("ingest_zip", "en-US/acoustic/calls.zip").ok
    monkeypatch.setattr(BlobRangeReader, "read", real_read)
    assert runtime.fire_timer("reconcile").ok  # the sweep: this version has no finished dataset yet
    [dataset] = emulator.datasets.values()
    assert dataset["customProperties"][managed.BLOCKS] == managed.BLOCKS_COMMITTED


def test_a_dataset_the_service_refuses_is_a_rejection_the_user_is_told_about(runtime, container, emulator, blocks_env):
    emulator.inject(status=400, count=1, method="POST", path_contains="/datasets")
    blob = drop(container, "en-US/language/corpus.zip", samples.language_zip())
    assert runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip").ok
    [alert] = alerts_of(runtime, blocks_env["ALERT_QUEUE"])
    assert alert["kind"] == "zip-rejected" and "refused" in alert["details"]["reasons"][0]
    assert state_of(blob).status == "rejected" and emulator.datasets == {}


def test_a_bad_zip_is_rejected_before_anything_is_uploaded(runtime, container, emulator, blocks_env):
    drop(container, "en-US/acoustic/cut.zip", samples.acoustic_zip()[:-40])
    assert runtime.deliver_blob("ingest_zip", "en-US/acoustic/cut.zip").ok
    [alert] = alerts_of(runtime, blocks_env["ALERT_QUEUE"])
    assert alert["kind"] == "zip-rejected" and emulator.datasets == {} and puts(emulator) == []


def test_no_key_or_storage_secret_reaches_the_logs(runtime, container, emulator, blocks_env, captured_logs):
    drop(container, "en-US/acoustic/calls.zip", samples.acoustic_zip())
    assert runtime.deliver_blob("ingest_zip", "en-US/acoustic/calls.zip").ok
    text = captured_logs.text
    assert "uploaded blocks" in text
    for secret in (emulator.key, "Eby8vdM02xNOcqFlq", "sig="):
        assert secret not in text
