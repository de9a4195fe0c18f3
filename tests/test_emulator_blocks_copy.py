# ruff: noqa: F811 - pytest fixtures imported from tests.test_emulator are parameters here
"""The emulator's block uploads (id rules, size limit, commit order), model copy between two emulators and network
shaping, over real HTTP, every request and answer checked against the official spec."""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest

from local import samples
from tests.test_emulator import (  # noqa: F401 - fixtures
    SETTLE,
    api,
    check,
    content,
    contract,
    dataset,
    emulator,
    entity_id,
    error_of,
    make,
    trained_model,
)

OCTETS = {"Content-Type": "application/octet-stream"}


def block_id(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def put_block(emulator, made, block: str, data: bytes):
    return api(
        emulator, "PUT", f"datasets/{entity_id(made)}/blocks", params={"blockid": block}, data=data, headers=OCTETS
    )


def commit(emulator, made, entries):
    return api(emulator, "POST", f"datasets/{entity_id(made)}/blocks:commit", json=entries)


# -- blocks ------------------------------------------------------------------------------------------------------


def test_the_content_is_the_blocks_in_commit_order_not_upload_order(emulator):
    made = dataset(emulator, "Language")
    data = samples.language_zip(200)
    third = len(data) // 3
    parts = [data[:third], data[third : 2 * third], data[2 * third :]]
    ids = [block_id(f"block-{i}") for i in range(3)]
    for i in (2, 0, 1):  # uploaded out of order, as parallel uploads finish
        assert put_block(emulator, made, ids[i], parts[i]).status_code == 201
    assert commit(emulator, made, [{"kind": "Uncommitted", "id": i} for i in ids]).status_code == 200
    emulator.advance(SETTLE)
    done = emulator.datasets[entity_id(made)]
    assert done["status"] == "Succeeded" and done["properties"]["acceptedLineCount"] == 200


def test_a_commit_in_the_wrong_order_gives_other_content(emulator):
    made = dataset(emulator, "Language")
    data = samples.language_zip(200)
    ids = [block_id("block-0"), block_id("block-1")]
    put_block(emulator, made, ids[0], data[:500])
    put_block(emulator, made, ids[1], data[500:])
    assert commit(emulator, made, [{"kind": "Latest", "id": i} for i in reversed(ids)]).status_code == 200
    emulator.advance(SETTLE)
    assert emulator.datasets[entity_id(made)]["status"] == "Failed"


def test_block_ids_follow_the_spec(emulator, check):
    made = dataset(emulator, "Language")
    with check.deliberately_invalid():
        assert error_of(put_block(emulator, made, "not base64!", b"x"), 400)[1] == "InvalidParameterValue"
        assert error_of(put_block(emulator, made, block_id("x" * 65), b"x"), 400)[1] == "InvalidParameterValue"
        assert put_block(emulator, made, block_id("aaaa"), b"x").status_code == 201
        # every id of a dataset has one length
        assert error_of(put_block(emulator, made, block_id("aaaaaaaa"), b"x"), 400)[1] == "InvalidParameterValue"
        assert error_of(commit(emulator, made, [{"kind": "Committed", "id": block_id("aaaa")}]), 400)[0]
        assert error_of(commit(emulator, made, [{"kind": "Sideways", "id": block_id("aaaa")}]), 400)[0]
        assert error_of(commit(emulator, made, [{"kind": "Latest", "id": block_id("bbbb")}]), 400)[0]


def test_a_block_over_8_mib_is_refused(emulator):
    made = dataset(emulator, "Language")
    resp = put_block(emulator, made, block_id("big"), b"\0" * (8 * 1024 * 1024 + 1))
    assert error_of(resp, 413)[1] == "InvalidPayload"
    assert put_block(emulator, made, block_id("fit"), b"\0" * (8 * 1024 * 1024)).status_code == 201
    listed = api(emulator, "GET", f"datasets/{entity_id(made)}/blocks").json()
    assert listed["uncommittedBlocks"] == [{"name": block_id("fit"), "size": 8 * 1024 * 1024}]
    assert [r.get("bytes") for r in emulator.requests if r["method"] == "PUT"] == [8 * 1024 * 1024 + 1, 8 * 1024 * 1024]


# -- model copy --------------------------------------------------------------------------------------------------


def authorize(target, source) -> dict:
    resp = api(target, "POST", "models:authorizecopy", json={"sourceResourceId": source.resource_id})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_model_copied_to_another_resource_appears_there(make, content):
    source, target = make(), make(region="westeurope")
    model = trained_model(source, content)
    authorization = authorize(target, source)
    assert authorization["targetResourceId"] == target.resource_id
    assert authorization["targetResourceRegion"] == "westeurope"
    assert authorization["sourceResourceId"] == source.resource_id

    resp = api(source, "POST", f"models/{entity_id(model)}:copy", json=authorization)
    assert resp.status_code == 202, resp.text
    operation = resp.json()
    assert resp.headers["Operation-Location"] == operation["self"] and operation["status"] == "NotStarted"
    source.advance(SETTLE)
    done = api(source, "GET", operation["self"]).json()
    assert done["status"] == "Succeeded"
    copy_id = done["result"]["link"].split("?")[0].rsplit("/", 1)[-1]
    target.advance(SETTLE)
    copied = target.models[copy_id]
    assert copied["self"].startswith(target.url) and copied["status"] == "Succeeded"
    assert (copied["displayName"], copied["locale"]) == (model["displayName"], model["locale"])
    assert copied["properties"]["deprecationDates"] == model["properties"]["deprecationDates"]
    assert list(target.models) == [copy_id]


def test_a_copy_needs_an_authorization_for_this_source(make, content, check):
    source, target, other = make(), make(), make()
    model = trained_model(source, content)
    authorization = authorize(target, other)  # issued for another source resource
    resp = api(source, "POST", f"models/{entity_id(model)}:copy", json=authorization)
    assert error_of(resp, 403)[0] == "Forbidden"
    # an authorization the target never issued (or one expired) fails the operation
    forged = {**authorize(target, source), "id": "00000000-0000-0000-0000-000000000000"}
    operation = api(source, "POST", f"models/{entity_id(model)}:copy", json=forged).json()
    source.advance(SETTLE)
    failed = api(source, "GET", operation["self"]).json()
    assert failed["status"] == "Failed" and failed["error"]["code"] == "CopyFailed"
    expired = authorize(target, source)
    target.advance(timedelta(hours=25))
    operation = api(source, "POST", f"models/{entity_id(model)}:copy", json=expired).json()
    source.advance(SETTLE)
    assert api(source, "GET", operation["self"]).json()["status"] == "Failed"
    assert target.models == {}
    assert error_of(api(source, "GET", "operations/models/copy/00000000-0000-0000-0000-000000000001"), 404)


# -- network shaping ---------------------------------------------------------------------------------------------


def test_latency_and_a_bandwidth_cap_slow_answers_down(make):
    emulator = make(latency=0.05, bandwidth=2 * 1024 * 1024)
    made = dataset(emulator, "Language")
    started = time.monotonic()
    api(emulator, "GET", "datasets/locales")
    assert time.monotonic() - started >= 0.05
    started = time.monotonic()
    assert put_block(emulator, made, block_id("one"), b"\0" * (1024 * 1024)).status_code == 201
    assert time.monotonic() - started >= 0.5  # 1 MiB at 2 MiB/s
    emulator.shape(latency=0, bandwidth=0)
    started = time.monotonic()
    assert put_block(emulator, made, block_id("two"), b"\0" * (1024 * 1024)).status_code == 201
    assert time.monotonic() - started < 0.5
    with pytest.raises(ValueError):
        emulator.shape(latency=-1)
