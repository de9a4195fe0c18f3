"""The Speech API budget under load (issue #16): a reconcile pass over N managed resources (default 50,000) while
ten zips are dropped and ingested concurrently, against an emulator that enforces the service's limit (100
requests per 10 s, 429 with Retry-After beyond it). Goals: no 429 caused by the app, all ten datasets created.

The app runs in this process as it runs in one Functions instance: the reconcile timer's `run` in one thread
(background work), each dropped zip's `ingest_blob` in its own thread (foreground), one Speech client and one
request budget between them. The pass holds the autopilot lock (a lease on the training container) throughout; an
ingest takes only its own source's lock (a lease on a marker blob in `autopilot-locks`), so it is not expected to
wait for the pass. Should an ingest fail anyway (LockBusy or any error), it fails as the function would and the
host delivers the event again, which this bench does 10 s later (Event Grid retries with backoff, and the next
pass's sweep would pick the zip up anyway); every failure is counted and printed. Per zip it prints when it was
dropped, when its ingest ended, how long that took, its deliveries, its LockBusy failures and the Speech requests
its thread sent.

    python -m bench.budget_bench [--n 50000] [--zips 10] [--every 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.scale import CallCounter, EmulatorProcess, seed, writes
from local import samples
from local.azurite import Azurite

REDELIVERY_SECONDS = 10.0
MAX_DELIVERIES = 30


@dataclass
class Drop:
    name: str
    dropped: float = 0.0
    done: float | None = None
    deliveries: int = 0
    lock_busy: int = 0
    error: str | None = None
    alerts: list = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50_000, help="managed resources in the Speech resource")
    parser.add_argument("--zips", type=int, default=10, help="zips dropped during the pass")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between drops (the first 5 s in)")
    args = parser.parse_args()
    with Azurite() as azurite, EmulatorProcess(rate_limit="100/10") as emulator:
        from azure.storage.blob import BlobServiceClient

        container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client("training")
        container.create_container()
        started = time.perf_counter()
        counts = seed(emulator, container, args.n)
        print(f"seeded {counts} (and their zips) in {time.perf_counter() - started:.0f} s", flush=True)
        os.environ.update(
            {
                "AzureWebJobsStorage": azurite.connection_string,
                "SPEECH_ENDPOINT": emulator.url,
                "SPEECH_KEY": emulator.key,
                "TRAINING_CONTAINER": "training",
            }
        )
        from shared import context
        from shared.budget import BACKGROUND, FOREGROUND
        from shared.flows import timers
        from shared.flows.ingest import ingest_blob
        from shared.storage import LockBusy

        session, counter = CallCounter.session()
        by_thread: Counter = Counter()  # Speech requests per sending thread (each ingest has its own)
        session.hooks["response"].append(lambda *a, **k: by_thread.update([threading.current_thread().name]))
        context.CLIENT_OPTIONS = {"session": session}  # the request budget as deployed: 100 per 10 s
        config = context.settings()
        speech = context.speech(config)
        budget = speech.budget
        assert budget is not None
        throttled_before = emulator.control("GET", "state")["throttled"]
        t0 = time.monotonic()

        def at() -> float:
            return time.monotonic() - t0

        pass_figures: dict = {}

        def reconcile() -> None:
            before = budget.usage[BACKGROUND].requests
            began = at()
            result = timers.run(config, timers.poll_plan(config))
            foreground = budget.usage[FOREGROUND]
            pass_figures.update(
                foreground=(foreground.requests, foreground.waits, foreground.waited),
                began=began,
                ended=at(),
                requests=budget.usage[BACKGROUND].requests - before,
                waited=budget.usage[BACKGROUND].waited,
                actions=len(result.actions),
                skipped=result.skipped,
            )

        def ingest(drop: Drop) -> None:
            blob = container.get_blob_client(drop.name)
            while drop.deliveries < MAX_DELIVERIES:
                drop.deliveries += 1
                try:
                    drop.alerts = ingest_blob(config, blob, context.alert_sender(config))
                    drop.done = at()
                    return
                except LockBusy:
                    drop.lock_busy += 1
                    time.sleep(REDELIVERY_SECONDS)
                except Exception as exc:  # noqa: BLE001 - the host would retry; the bench reports it
                    drop.error = f"{type(exc).__name__}: {exc}"
                    time.sleep(REDELIVERY_SECONDS)
            drop.error = drop.error or "gave up"

        pass_thread = threading.Thread(target=reconcile)
        pass_thread.start()
        drops, threads = [], []
        for i in range(args.zips):
            time.sleep(max(0.0, 5.0 + i * args.every - at()))
            drop = Drop(f"en-US/language/dropped-{i:02d}.zip")
            container.get_blob_client(drop.name).upload_blob(samples.language_zip(), overwrite=True)
            drop.dropped = at()
            drops.append(drop)
            threads.append(threading.Thread(target=ingest, args=(drop,), name=drop.name))
            threads[-1].start()
        pass_thread.join()
        for thread in threads:
            thread.join()
        ended = at()
        # the app's figures, before this bench's own look-ups below add requests of their own
        totals, busiest = counter.snapshot(), counter.busiest(10.0)
        fg = budget.usage[FOREGROUND]
        foreground = (fg.requests, fg.waits, fg.waited)
        throttled = emulator.control("GET", "state")["throttled"] - throttled_before

        print(
            f"\nreconcile pass over N={args.n}: {pass_figures['requests']} Speech requests (background), "
            f"from {pass_figures['began']:.1f} s to {pass_figures['ended']:.1f} s, "
            f"{pass_figures['waited']:.0f} s of it waiting for the budget (background share: "
            f"{budget.background_limit} per {budget.span:g} s); {pass_figures['actions']} action(s) planned"
            + (" (skipped: the lock was held)" if pass_figures["skipped"] else "")
        )
        requests, waits, waited = pass_figures["foreground"]
        print(
            f"during the pass: {requests} foreground (ingest) request(s), {waits} of them waited for the budget "
            f"({waited:.1f} s)"
        )
        print(
            f"{'zip':<34} {'dropped':>8} {'ended':>8} {'took':>7} {'deliveries':>10} {'LockBusy':>8} "
            f"{'requests':>8}  outcome"
        )
        created = 0
        for drop in drops:
            found = list(speech.list_datasets(filter=f"description eq '{_description(drop, container)}'"))
            created += bool(found)
            took = f"{drop.done - drop.dropped:>6.2f}s" if drop.done is not None else "      -"
            outcome = f"dataset {found[0].id}" if found else "no dataset"
            if drop.error:
                outcome += f" ({'last ' if found else ''}error: {drop.error})"
            print(
                f"{drop.name:<34} {drop.dropped:>7.1f}s {drop.done or 0:>7.1f}s {took} {drop.deliveries:>10} "
                f"{drop.lock_busy:>8} {by_thread[drop.name]:>8}  {outcome}"
            )
        print(
            f"\nall done at {ended:.0f} s. Speech requests: {totals['list'] + totals['get']} GETs "
            f"({totals['list']} list pages), {writes(totals)} writes; busiest 10 s: "
            f"{busiest} requests (the service allows 100)"
        )
        print(
            f"foreground (ingest) requests: {foreground[0]}, {foreground[1]} of them waited for the budget, "
            f"{foreground[2]:.1f} s in all"
        )
        took = [drop.done - drop.dropped for drop in drops if drop.done is not None]
        print(
            f"ingests: {len(took)} of {len(drops)} ended, "
            + (f"each took {min(took):.2f}-{max(took):.2f} s; " if took else "")
            + f"LockBusy: {sum(drop.lock_busy for drop in drops)}; redeliveries: "
            f"{sum(drop.deliveries - 1 for drop in drops)}; Speech requests per ingest: "
            f"{min(by_thread[d.name] for d in drops)}-{max(by_thread[d.name] for d in drops)}"
        )
        print(
            f"429 answers from the emulator: {throttled} "
            f"(goal: 0); datasets created: {created} of {len(drops)} (goal: all)"
        )
    return 0


def _description(drop: Drop, container) -> str:
    """The description the ingest gives the dataset of the blob's current content (shared.ingest.description)."""
    from shared import ingest
    from shared.zipcheck import BlobRangeReader, content_id

    blob = container.get_blob_client(drop.name)
    props = blob.get_blob_properties()
    content = content_id(BlobRangeReader(blob, props.size, props.etag))
    path = ingest.source_path(container.container_name, drop.name)
    return ingest.description(path, content).replace("'", "''")


if __name__ == "__main__":
    sys.exit(main())
