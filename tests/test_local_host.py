"""The offline host drives the same indexed functions end to end: the demo cannot silently rot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from azure.storage.blob import BlobServiceClient

from local import samples
from local.host import LocalHost, next_occurrence
from local.runtime import Runtime
from shared import clock, context


def test_next_occurrence_follows_ncrontab():
    at = datetime(2026, 11, 22, 9, 3, 7, tzinfo=UTC)
    assert next_occurrence("0 */5 * * * *", at) == datetime(2026, 11, 22, 9, 5, 0, tzinfo=UTC)
    assert next_occurrence("0 0 6 * * *", at) == datetime(2026, 11, 23, 6, 0, 0, tzinfo=UTC)
    assert next_occurrence("30 15 10 * * 1", at) == datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)


def test_dropped_zips_end_on_an_endpoint_serving_a_model_trained_on_them(
    azurite, emulator, app_env, container, monkeypatch
):
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    context.reset()
    emulator.set_now(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    clock.use_clock(emulator.now)
    host = LocalHost(
        Runtime(connection_string=azurite.connection_string),
        BlobServiceClient.from_connection_string(azurite.connection_string),
        timer_interval=3600,
        clock=emulator.now,
    )
    container.get_blob_client("en-US/acoustic/calls.zip").upload_blob(samples.acoustic_zip(3))
    container.get_blob_client("en-US/language/phrases.zip").upload_blob(samples.language_zip())
    speech = context.speech(context.settings())
    for _ in range(60):
        host.tick()
        endpoints = list(speech.list_endpoints())
        if endpoints and endpoints[0].status == "Succeeded":
            break
        emulator.advance(timedelta(hours=1))
    [endpoint] = endpoints
    model = speech.get_model(endpoint.model_id)
    dropped = {d.id for d in speech.list_datasets()}
    assert set(model.dataset_ids) == dropped and len(dropped) == 2
    assert endpoint.status == "Succeeded" and model.status == "Succeeded"


def test_the_offline_host_serves_the_status_page_through_the_worker(azurite, emulator, app_env, container):
    host = LocalHost(
        Runtime(connection_string=azurite.connection_string),
        BlobServiceClient.from_connection_string(azurite.connection_string),
    )
    container.get_blob_client("en-US/language/phrases.zip").upload_blob(samples.language_zip())
    host.tick()
    server = host.serve_http()
    try:
        page = requests.get(f"{server.url}/api/status", timeout=30)
        data = requests.get(f"{server.url}/api/status?format=json", timeout=30)
        missing = requests.get(f"{server.url}/api/nothing", timeout=30)
    finally:
        server.stop()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "en-US" in page.text and "<script" not in page.text
    assert data.status_code == 200 and [row["locale"] for row in data.json()] == ["en-US"]
    assert missing.status_code == 404


def test_status_page_views_share_one_background_listing(azurite, emulator, app_env, container):
    """Loading the page again and again lists the Speech resource at most once per FRESH_SECONDS, as background
    work: a hammered status page never eats the request budget's share for ingests and deployments."""
    from shared.flows import status as status_flow

    host = LocalHost(
        Runtime(connection_string=azurite.connection_string),
        BlobServiceClient.from_connection_string(azurite.connection_string),
    )
    server = host.serve_http()
    try:
        for _ in range(5):
            assert requests.get(f"{server.url}/api/status?format=json", timeout=30).status_code == 200
    finally:
        server.stop()
        status_flow._cache.clear()
    listings = [r for r in emulator.requests if r["method"] == "GET" and r["path"].endswith("/models")]
    assert len(listings) == 1
