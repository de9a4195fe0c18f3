"""Speech calls one dropped zip costs, at N = 100 and N = 50,000 existing datasets (issue #16's harness for the
ingest lookup; the goal once the lookup is an exact `description eq` filter: <= 3 calls whatever N is).

Drives the real ingest (`shared.flows.ingest.ingest_blob`) against Azurite and the Speech emulator in its own
process, with the request budget as deployed, exactly as the blob trigger would, and counts what reaches the
emulator: list pages, other GETs, writes. It measures whatever the ingest code does when it runs: re-run it after
changing the lookup. Per N: a first upload of a zip (a new dataset), then a second version of the same zip (the
first one's dataset is marked superseded). The supported-locales list is fetched once beforehand, as a running
instance has it cached (one call per hour per instance).

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
from shared import managed


def seed_datasets(emulator: EmulatorProcess, container_name: str, n: int) -> None:
    """N finished managed datasets of other zips, over five locales."""
    locales = ("en-US", "de-DE", "fr-FR", "es-ES", "ja-JP")
    items = []
    for i in range(n):
        locale = locales[i % len(locales)]
        path = f"{container_name}/{locale}/language/old-{i:06d}.zip"
        items.append(
            {
                "displayName": f"old-{i:06d} (Language, {locale})",
                "locale": locale,
                "kind": "Language",
                "description": f"Created by {managed.MANAGED_BY} from {path} (ETag 0x1).",
                "customProperties": managed.managed_properties(**{managed.SOURCE: path, managed.SOURCE_ETAG: "0x1"}),
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
                    alerts = ingest_blob(config, blob)
                    elapsed = time.perf_counter() - started
                    calls = counter.snapshot() - before
                    assert not alerts, alerts
                    assert blob.get_blob_tags().get("autopilot-status") == "submitted"
                    total = sum(calls[k] for k in ("list", "get")) + writes(calls)
                    results[(n, upload)] = total
                    print(
                        f"{n:>9} {upload:<14} {total:>5} {calls['list']:>10} {calls['get']:>4} {writes(calls):>6} "
                        f"{elapsed:>6.1f}s",
                        flush=True,
                    )
                container.delete_container()
    worst = max(results.values())
    print(f"most calls for one dropped zip: {worst} (goal once the lookup is an exact filter: <= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
