"""list_zips reads the List Blobs XML itself (the SDK's models cost ~200 µs and ~20 KB per blob at scale): it must
give exactly what the SDK's listing gives, over several pages, with metadata and awkward names."""

from __future__ import annotations

import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from shared.storage import _list_zips_sdk, list_zips_at


@pytest.fixture
def box(azurite):
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = client.get_container_client(f"zips-{uuid.uuid4().hex[:10]}")
    container.create_container()
    yield container
    container.delete_container()


def test_the_listing_matches_the_sdks_over_pages_metadata_and_awkward_names(box):
    names = {
        "en-US/language/plain.zip": {"autopilot_status": "succeeded", "autopilot_content": "zip1:ab", "owner": "a b"},
        "en-US/acoustic/a & b <ü> 'q'.zip": {"autopilot_status": "rejected"},
        "de-DE/language/UPPER.ZIP": {},
        "de-DE/language/notes.txt": {"autopilot_status": "x"},
        "readme.md": {},
        "fr-FR/language/%41 encoded?.zip": {},
    }
    for name, metadata in names.items():
        box.get_blob_client(name).upload_blob(b"PK\x05\x06" + bytes(18), metadata=metadata or None)

    listed, storage_now = list_zips_at(box, page_size=2)
    expected, _ = _list_zips_sdk(box)

    assert listed == expected and storage_now is not None and storage_now.tzinfo is not None
    assert {z.name for z in listed} == {name for name in names if name.lower().endswith(".zip")}
    plain = next(z for z in listed if z.name == "en-US/language/plain.zip")
    assert plain.metadata == names[plain.name] and plain.size == 22 and plain.last_modified.tzinfo is not None
    assert plain.state.status == "succeeded" and plain.state.content == "zip1:ab"
    assert not plain.etag.startswith('"')


def test_an_empty_container_lists_nothing(box):
    assert list_zips_at(box)[0] == []


def test_a_state_naming_no_content_never_replaces_one_recorded_meanwhile(box):
    """The pass records a stuck token on a zip without a state (a state naming no content) against the version it
    listed. If an ingest recorded that zip's state meanwhile (a new version got its dataset), the token must not
    replace that record; a user's own key written meanwhile is merged as always."""
    from shared.storage import BlobState, write_state

    blob = box.get_blob_client("en-US/language/flaky.zip")
    blob.upload_blob(b"version 1")
    listed = blob.get_blob_properties()
    stuck = BlobState(alerted="stuck")

    blob.upload_blob(b"version 2", overwrite=True)  # a new version, ingested meanwhile
    recorded = {"autopilot_status": "submitted", "autopilot_content": "zip1:v2", "autopilot_dataset": "d2"}
    blob.set_blob_metadata({**recorded, "owner": "team"})
    assert write_state(blob, stuck, etag=listed.etag, metadata=listed.metadata) is False
    assert blob.get_blob_properties().metadata == {**recorded, "owner": "team"}

    other = box.get_blob_client("en-US/language/other.zip")
    other.upload_blob(b"version 1")
    listed = other.get_blob_properties()
    other.set_blob_metadata({"owner": "team"})  # only a user's key meanwhile
    assert write_state(other, stuck, etag=listed.etag, metadata=listed.metadata) is True
    assert other.get_blob_properties().metadata == {"owner": "team", "autopilot_alerted": "stuck"}
