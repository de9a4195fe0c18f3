"""Ingest cost for a 10 MB and a 1 GB acoustic zip in Azurite: bytes the ingest reads from storage and the growth
of its peak RSS (goal: <= 1 MiB read and < 30 MB RSS growth, for both sizes).

Every ranged reader the ingest opens on the blob is counted: the one it validates and identifies the zip with, and
the one `write_state` uses to check the blob still holds that content before recording the state on it.

The Speech emulator runs in its own process (it really downloads the SAS URL, like the service), so the figures
are the function's alone.

    python -m bench.ingest_bench [--sizes-mb 10,1024]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import psutil

from local import samples
from local.azurite import Azurite, free_port

ROOT = Path(__file__).resolve().parents[1]
WAV = samples.wav_bytes(seconds=30.0)  # ~960 KB of 16 kHz mono PCM


def write_zip(path: Path, target_bytes: int) -> int:
    """An acoustic zip of about `target_bytes`: stored WAVs (audio barely compresses) and their transcript."""
    count = max(1, target_bytes // len(WAV))
    names = [f"audio/utt{i:05d}.wav" for i in range(count)]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in names:
            archive.writestr(name, WAV)
        archive.writestr("trans.txt", "".join(f"{n}\t{samples.PHRASES[i % 6]}\n" for i, n in enumerate(names)))
    return count


class PeakRss:
    """Samples this process's RSS every few milliseconds while the measured block runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.base


def start_emulator(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.speech_emulator", "--port", str(port), "--fast"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import requests

    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=0.2)
            return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the emulator did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mb", default="10,1024")
    args = parser.parse_args()
    port = free_port()
    emulator = start_emulator(port)
    try:
        with Azurite() as azurite, tempfile.TemporaryDirectory() as tmp:
            os.environ.update(
                {
                    "AzureWebJobsStorage": azurite.connection_string,
                    "SPEECH_ENDPOINT": f"http://127.0.0.1:{port}",
                    "SPEECH_KEY": "emulator-key",
                    "TRAINING_CONTAINER": "training",
                }
            )
            from azure.storage.blob import BlobServiceClient

            import function_app  # noqa: F401 - index the app as the host would before measuring
            from shared import context, zipcheck
            from shared.flows import ingest as flow
            from shared.storage import BlobState

            readers = []
            real_reader = zipcheck.BlobRangeReader

            def counting_reader(*a, **k):
                readers.append(real_reader(*a, **k))
                return readers[-1]

            # the ingest's own reader, and the one write_state opens (it imports it from shared.zipcheck when called)
            flow.BlobRangeReader = zipcheck.BlobRangeReader = counting_reader
            service = BlobServiceClient.from_connection_string(azurite.connection_string)
            container = service.get_container_client("training")
            container.create_container()
            config = context.settings()
            context.supported_locales(config)  # warm the locale cache and client, as a running app would be
            print(
                f"{'zip':>9} {'files':>6} {'readers':>7} {'reads':>6} {'bytes read':>11} {'RSS growth':>11} {'time':>7}"
            )
            for size_mb in (int(s) for s in args.sizes_mb.split(",")):
                path = Path(tmp) / f"{size_mb}.zip"
                files = write_zip(path, size_mb * 1024 * 1024)
                name = f"en-US/acoustic/bench-{size_mb}mb.zip"
                with path.open("rb") as data:
                    container.get_blob_client(name).upload_blob(data, overwrite=True, max_concurrency=4)
                path.unlink()
                blob = container.get_blob_client(name)
                readers.clear()
                started = time.perf_counter()
                with PeakRss() as rss:
                    alerts = flow.ingest_blob(config, blob, context.alert_sender(config))
                elapsed = time.perf_counter() - started
                reads, read = sum(r.reads for r in readers), sum(r.bytes_read for r in readers)
                status = BlobState.from_metadata(blob.get_blob_properties().metadata).status
                assert status == "submitted" and not alerts, (status, alerts)
                print(
                    f"{size_mb:>6} MB {files:>6} {len(readers):>7} {reads:>6} {read:>11,} "
                    f"{rss.growth / 2**20:>8.1f} MB {elapsed:>6.2f}s"
                )
            print("goal: <= 1 MiB read and < 30 MB RSS growth for every size")
    finally:
        emulator.terminate()
        emulator.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
