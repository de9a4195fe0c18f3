"""Start and stop Azurite (npm azurite@3.37.0, pinned in package.json) in memory on free loopback ports."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The well-known development account of Azurite (public, documented, not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite exited with code {proc.returncode}: {proc.stderr.read().decode()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout} s")


class Azurite:
    def __init__(self) -> None:
        self.blob_port = self.queue_port = 0
        self._proc: subprocess.Popen | None = None
        self._workdir: str | None = None

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{ACCOUNT};"
        )

    def start(self, timeout: float = 30.0) -> Azurite:
        binary = ROOT / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `npm ci` in {ROOT}")
        self._workdir = tempfile.mkdtemp(prefix="azurite-")
        self.blob_port, self.queue_port, table_port = free_port(), free_port(), free_port()
        args = [
            str(binary), "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent",
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(table_port),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args, cwd=self._workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        _wait_for(self.blob_port, self._proc, timeout)
        _wait_for(self.queue_port, self._proc, timeout)
        return self

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
