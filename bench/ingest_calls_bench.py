"""Speech calls one dropped zip costs, at N = 100 and N = 50,000 existing datasets (issue #16's harness for the
ingest lookup, an exact `description eq` filter; goal: <= 3 calls whatever N is).

Drives the real ingest (`shared.flows.ingest.ingest_blob`) against Azurite and the Speech emulator in its own
process, with the request budget as deployed, exactly as the blob trigger would, and counts what reaches the
emulator: list pages, other GETs, writes. It measures whatever the ingest code does when it runs: re-run it after
changing the lookup. Per N: a first upload of a zip (a new dataset), then a second version of the same zip (the
first one's dataset is superseded by the next reconcile pass, not by the ingest). The existing datasets are made as
the ingest makes them (description and sourcePath + sourceContent of other zips). The supported-locales list is
fetched once beforehand, as a running instance has it cached (one call per hour per instance).

    python -m bench.ingest_calls_bench [--existing 100,50000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench.scale import CallCounter, EmulatorProcess, writes
from local import samples
from local.azurite import Azurite
from shared import ingest
from shared.storage import BlobState


def seed_datasets(emulator: EmulatorProcess, container_name: str, n: int) -> None:
    """N finished managed datasets of other zips, over five locales, each made from its own content."""
    locales = ("en-US", "de-DE", "fr-FR", "es-ES", "ja-JP")
    items = []
    for i in range(n):
        name = f"{locales[i % len(locales)]}/language/old-{i:06d}.zip"
        content = f"zip1:{i:040x}"
        request = ingest.dataset_request(
            ingest.parse_blob_name(name), ingest.source_path(container_name, name), content
        )
        items.append(
            {
                "displayName": request["display_name"],
                "locale": request["locale"],
                "kind": request["kind"],
                "description": request["description"],
                "customProperties": request["custom_properties"],
            }
        )
    emulator.seed("datasets", items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--existing", default="100,50000", help="comma-separated numbers of existing datasets")
    args = parser.parse_args()
    sizes = [int(n) for n in args.existing.split(",")]
    from azure.storage.blob import BlobServiceClient

    print(f"{'existing':>9} {'upload':<14} {'calls':>5} {'list pages':>10} {'GETs':>4} {'writes':>6} {'wall':>7}")
    results = {}
    with Azurite() as azurite:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        for n in sizes:
            with EmulatorProcess() as emulator:
                container = service.get_container_client(f"ingest-{n}")
                container.create_container()
                seed_datasets(emulator, container.container_name, n)
                os.environ.update(
                    {
                        "AzureWebJobsStorage": azurite.connection_string,
                        "SPEECH_ENDPOINT": emulator.url,
                        "SPEECH_KEY": emulator.key,
                        "TRAINING_CONTAINER": container.container_name,
                    }
                )
                from shared import context
                from shared.flows.ingest import ingest_blob

                context.reset()
                session, counter = CallCounter.session()
                context.CLIENT_OPTIONS = {"session": session}
                config = context.settings()
                context.supported_locales(config)  # cached by a running instance
                blob = container.get_blob_client("en-US/language/bench.zip")
                for upload, lines in (("first version", 20), ("second version", 30)):
                    blob.upload_blob(samples.language_zip(lines), overwrite=True)
                    before = counter.snapshot()
                    started = time.perf_counter()
                    alerts = ingest_blob(config, blob, context.alert_sender(config))
                    elapsed = time.perf_counter() - started
                    calls = counter.snapshot() - before
                    assert not alerts, alerts
                    state = BlobState.from_metadata(blob.get_blob_properties().metadata)
                    assert state.status == "submitted" and state.dataset, state
                    total = sum(calls[k] for k in ("list", "get")) + writes(calls)
                    results[(n, upload)] = total
                    print(
                        f"{n:>9} {upload:<14} {total:>5} {calls['list']:>10} {calls['get']:>4} {writes(calls):>6} "
                        f"{elapsed:>6.1f}s",
                        flush=True,
                    )
                container.delete_container()
    worst = max(results.values())
    print(f"most calls for one dropped zip: {worst} (goal: <= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
