"""Block upload of a 256 MiB zip: the engine at its defaults (8 MiB blocks, 4 in flight) against one thread with
4 MiB blocks, on a link with 20 ms of latency per request and a 10 MiB/s cap per connection; the wall time and the
growth of peak RSS of each, for a local file (the CLI's `upload`) and for a blob in Azurite (DATASET_UPLOAD=blocks).
Goals: the defaults at least 3x faster than one thread, peak RSS growth under 64 MB.

Why 10 MiB/s per connection: one TCP stream is bounded by its window over the round trip; a 256 KiB window over a
20 ms round trip carries at most 12.5 MiB/s, and a single stream to a service across a WAN commonly gets 5-15 MiB/s
whatever the link's total. Parallel connections each get their own window: that is what the engine exploits.

The Speech emulator runs in its own process with `--latency-ms 20 --bandwidth-mib 10` (it really receives, keeps
and checks every byte); each measured upload runs in a fresh Python process, so the RSS figures are the upload's
alone (imports and clients are warm before measuring).

    python -m bench.upload_bench [--size-mib 256] [--latency-ms 20] [--bandwidth-mib 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.ingest_bench import WAV, PeakRss
from local import samples
from local.azurite import Azurite, free_port

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
RUNS = (("engine defaults", None, None), ("one thread, 4 MiB blocks", 1, 4 * MiB))


def write_zip(path: Path, target_bytes: int) -> None:
    """An acoustic zip of at least `target_bytes`: stored WAVs (audio barely compresses) and their transcript."""
    count = max(1, -(-target_bytes // len(WAV)))
    names = [f"audio/utt{i:05d}.wav" for i in range(count)]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in names:
            archive.writestr(name, WAV)
        archive.writestr("trans.txt", "".join(f"{n}\t{samples.PHRASES[i % 6]}\n" for i, n in enumerate(names)))


def start_emulator(port: int, latency_ms: float, bandwidth_mib: float) -> subprocess.Popen:
    command = [sys.executable, "-m", "local.speech_emulator", "--port", str(port), "--fast"]
    command += ["--latency-ms", str(latency_ms), "--bandwidth-mib", str(bandwidth_mib)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import requests

    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the emulator did not start")


# -- one measured upload, in its own process -------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict:
    from shared import context, upload

    if args.parallel:
        upload.PARALLEL = args.parallel
    if args.block_bytes:
        upload.BLOCK_BYTES = args.block_bytes
    config = context.settings()
    speech = context.speech(config)
    context.supported_locales(config)  # warm: client, connection, locale cache
    if args.measure == "file":
        with PeakRss() as rss:
            started = time.perf_counter()
            result = upload.upload_file(speech, args.path, locale="en-US", kind="acoustic", name=args.name)
            elapsed = time.perf_counter() - started
        dataset, sent = result.dataset, result.sent
    else:
        import function_app  # noqa: F401 - index the app as the host would
        from shared.flows import ingest as flow
        from shared.storage import BlobState

        blob = context.training_container(config).get_blob_client(args.path)
        send = context.alert_sender(config)
        with PeakRss() as rss:
            started = time.perf_counter()
            alerts = flow.ingest_blob(config, blob, send)
            elapsed = time.perf_counter() - started
        assert not alerts, alerts
        assert BlobState.from_metadata(blob.get_blob_properties().metadata).status == "submitted"
        [dataset] = [d for d in speech.list_datasets() if d.custom_properties.get("sourcePath", "").endswith(args.path)]
        sent = len(speech.get_blocks(dataset.id).committed)
    assert dataset.custom_properties.get("blocks") == "committed", dataset.custom_properties
    return {"seconds": elapsed, "rss_growth": rss.growth, "blocks": sent, "dataset": dataset.id}


def run_child(source: str, path: str, name: str, parallel: int | None, block: int | None, env: dict) -> dict:
    command = [sys.executable, "-m", "bench.upload_bench", "--measure", source, "--path", path, "--name", name]
    if parallel:
        command += ["--parallel", str(parallel)]
    if block:
        command += ["--block-bytes", str(block)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"measured run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(title: str, size: int, results: list[tuple[str, dict]]) -> tuple[float, float]:
    print(title)
    print(f"  {'':<26} {'blocks':>6} {'time':>8} {'rate':>10} {'peak RSS growth':>16}")
    for label, figures in results:
        rate = size / figures["seconds"] / 1e6
        growth = figures["rss_growth"] / 1e6
        print(f"  {label:<26} {figures['blocks']:>6} {figures['seconds']:>7.1f}s {rate:>6.1f} MB/s {growth:>13.1f} MB")
    speedup = results[1][1]["seconds"] / results[0][1]["seconds"]
    growth = results[0][1]["rss_growth"] / 1e6
    verdict = "met" if speedup >= 3 and growth < 64 else "NOT MET"
    print(f"  speed-up {speedup:.1f}x (goal >= 3x), peak RSS growth {growth:.1f} MB (goal < 64 MB): {verdict}")
    return speedup, growth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--bandwidth-mib", type=float, default=10.0)
    parser.add_argument("--measure", choices=("file", "blob"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--parallel", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--block-bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args)))
        return 0

    port = free_port()
    emulator = start_emulator(port, args.latency_ms, args.bandwidth_mib)
    try:
        with Azurite() as azurite, tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "AzureWebJobsStorage": azurite.connection_string,
                "SPEECH_ENDPOINT": f"http://127.0.0.1:{port}",
                "SPEECH_KEY": "emulator-key",
                "TRAINING_CONTAINER": "training",
                "DATASET_UPLOAD": "blocks",
            }
            path = Path(tmp) / "bench.zip"
            write_zip(path, args.size_mib * MiB)
            size = path.stat().st_size
            print(
                f"{size / MiB:.0f} MiB acoustic zip; emulator link: {args.latency_ms:.0f} ms per request, "
                f"{args.bandwidth_mib:.0f} MiB/s per connection; {os.cpu_count()} CPU cores"
            )
            file_results = []
            for n, (label, parallel, block) in enumerate(RUNS):
                file_results.append((label, run_child("file", str(path), f"bench-file-{n}", parallel, block, env)))
            report("local file (speech-autopilot upload):", size, file_results)

            from azure.storage.blob import BlobServiceClient

            container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
                "training"
            )
            container.create_container()
            names = [f"en-US/acoustic/bench-blob-{n}.zip" for n in range(len(RUNS))]
            for name in names:
                with path.open("rb") as data:
                    container.get_blob_client(name).upload_blob(data, overwrite=True, max_concurrency=4)
            path.unlink()
            blob_results = [
                (label, run_child("blob", name, name, parallel, block, env))
                for name, (label, parallel, block) in zip(names, RUNS, strict=True)
            ]
            report("blob in Azurite (DATASET_UPLOAD=blocks, the ingest function):", size, blob_results)
    finally:
        emulator.terminate()
        emulator.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
