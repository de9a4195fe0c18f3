"""Cost of one reconcile cycle with N managed resources in the Speech emulator (page size 100): Speech API calls
(goal: <= ceil(N/100) + 5) and wall time (goal: < 2 s).

Seeds N managed resources (datasets, models trained on them, endpoints), runs the reconcile timer's pass once to
settle (it reports endpoint outcomes), then measures steady-state cycles of both timers.

    python -m bench.reconcile_bench [--n 2000]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
import zipfile
from datetime import timedelta

from local.azurite import Azurite
from local.speech_emulator import SpeechEmulator
from shared import managed

LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "ja-JP")


def language_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("corpus.txt", "turn on the lights\n")
    return buffer.getvalue()


def seed(speech, emulator: SpeechEmulator, n: int) -> dict[str, int]:
    """N managed resources: 5% endpoints (at most 50), 35% models, the rest datasets."""
    endpoints = min(50, n // 20)
    models = int(n * 0.35)
    datasets = n - models - endpoints
    content = language_zip()
    dataset_ids = []
    for i in range(datasets):
        locale = LOCALES[i % len(LOCALES)]
        props = managed.managed_properties(sourcePath=f"training/{locale}/language/old-{i}.zip", sourceEtag="0x1")
        dataset = speech.create_dataset(display_name=f"d{i}", locale=locale, kind="Language", custom_properties=props)
        speech.upload_block(dataset.id, "block-1", content)
        speech.commit_blocks(dataset.id, ["block-1"])
        dataset_ids.append((locale, dataset.id))
    emulator.advance(timedelta(hours=1))
    bases = {}
    for base in speech.list_base_models():
        if base.locale not in bases or base.created > bases[base.locale].created:
            bases[base.locale] = base
    model_ids = []
    for i in range(models):
        locale, dataset_id = dataset_ids[i % len(dataset_ids)]
        props = managed.managed_properties(deployRequested="2026-01-01T00:00:00Z", reason="trained")
        model = speech.create_model(
            display_name=f"m{i}",
            locale=locale,
            base_model=bases[locale].id,
            datasets=[dataset_id],
            custom_properties=props,
        )
        model_ids.append((locale, model.id))
    emulator.advance(timedelta(days=2))
    for i in range(endpoints):
        locale, model_id = model_ids[-1 - i]
        speech.create_endpoint(
            display_name=f"e{i}", locale=locale, model=model_id, custom_properties=managed.managed_properties()
        )
    emulator.advance(timedelta(hours=1))
    return {"datasets": datasets, "models": models, "endpoints": endpoints}


def measure(run, emulator: SpeechEmulator, label: str) -> tuple[int, float]:
    before = len(emulator.requests)
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    calls = emulator.requests[before:]
    gets = sum(1 for r in calls if r["method"] == "GET")
    print(f"{label:<28} {len(calls):>5} calls ({gets} list pages) {elapsed:>7.2f} s  actions={len(result.actions)}")
    return len(calls), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    with (
        Azurite() as azurite,
        SpeechEmulator(page_size=100, durations={"dataset": 1, "model": 1, "endpoint": 1}) as emulator,
    ):
        emulator.set_now(emulator.now())
        os.environ.update(
            {
                "AzureWebJobsStorage": azurite.connection_string,
                "SPEECH_ENDPOINT": emulator.url,
                "SPEECH_KEY": emulator.key,
                "TRAINING_CONTAINER": "training",
            }
        )
        from azure.storage.blob import BlobServiceClient

        from shared import clock, context
        from shared.flows.timers import expiry_plan, poll_plan, run

        clock.use_clock(emulator.now)
        BlobServiceClient.from_connection_string(azurite.connection_string).create_container("training")
        config = context.settings()
        speech = context.speech(config)
        started = time.perf_counter()
        counts = seed(speech, emulator, args.n)
        print(f"seeded {counts} in {time.perf_counter() - started:.1f} s")

        def poll():
            return run(config, poll_plan(config))

        def expiry():
            return run(config, expiry_plan(config))

        measure(poll, emulator, "reconcile (first, settles)")
        calls, elapsed = measure(poll, emulator, "reconcile (steady state)")
        measure(expiry, emulator, "expiry (steady state)")
        goal = math.ceil(args.n / 100) + 5
        print(f"N={args.n}: {calls} calls per reconcile cycle (goal <= {goal}), {elapsed:.2f} s (goal < 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
