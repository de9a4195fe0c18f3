"""Shared steps for the integration tests: drop zips, move the emulator's clock, train models."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from local import samples
from shared import context
from shared.speech import CustomModel, SpeechClient


def drop(container, name: str, data: bytes):
    blob = container.get_blob_client(name)
    blob.upload_blob(data, overwrite=True)
    return blob


def state_of(blob):
    """The app's state on a zip (its metadata)."""
    from shared.storage import BlobState

    return BlobState.from_metadata(blob.get_blob_properties().metadata)


def ingest(runtime, container, name: str, data: bytes | None = None) -> None:
    folder = name.split("/")[1]
    drop(container, name, data if data is not None else samples.sample_zip(folder))
    result = runtime.deliver_blob("ingest_zip", name)
    assert result.ok, result.error


def settle(emulator, hours: float = 1) -> None:
    """Let every pending dataset, model and endpoint finish on the emulator's clock."""
    emulator.advance(timedelta(hours=hours))


def client() -> SpeechClient:
    return context.speech(context.settings())


def train(runtime, container, emulator, locale: str = "en-US", name: str = "corpus") -> CustomModel:
    """A Succeeded custom model trained by the reconcile timer on one freshly dropped language zip."""
    ingest(runtime, container, f"{locale}/language/{name}.zip", samples.language_zip())
    settle(emulator)
    before = {m.id for m in client().list_models()}
    result = runtime.fire_timer("reconcile")
    assert result.ok, result.error
    settle(emulator)
    [model] = [m for m in client().list_models() if m.id not in before]
    assert model.status == "Succeeded", model
    return model


def deploy_message(locale: str, model: str, reason: str = "manual", endpoint: str | None = None) -> str:
    body = {"locale": locale, "model": model, "reason": reason}
    if endpoint:
        body["endpoint"] = endpoint
    return json.dumps(body)


def mutating_calls(emulator, fragment: str = "/endpoints") -> list[dict]:
    return [r for r in emulator.requests if r["method"] in ("POST", "PATCH", "PUT", "DELETE") and fragment in r["path"]]


def concurrently(*calls, times: int = 1) -> list:
    """Run the calls (each `times` times) in parallel threads; their results, in no particular order."""
    results: list = []
    threads = [threading.Thread(target=lambda c=c: results.append(c())) for c in calls for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
