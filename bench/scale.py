"""Shared by the scale benchmarks: the Speech emulator in its own process (so the benchmark process's CPU time and
memory are the app's alone), N managed resources seeded in bulk (no create checks, no waiting), the zips they came
from in Azurite, and a counting HTTP session for the app's Speech client.

Seeded for N managed resources: 5% endpoints (at most 50, the service's quota), 35% models, the rest datasets, over
five locales, all finished and in a steady state: every dataset was made as the ingest makes it (its description
and customProperties sourcePath + sourceContent from `shared.ingest.dataset_request`, the content being the zip's
`content_id`); every dataset's zip is in the container (unless zips=False) with the state a pass would record in its
metadata (BlobState: succeeded, that content, the dataset's id), so the planner matches each zip to its dataset by
(sourcePath, the state's content); the newest model of each locale was trained on its locale's datasets, the
oldest endpoint of each locale serves it and its deployment was reported. A pass over it has nothing to do, so it
measures the cost of looking.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import psutil
import requests

from local.azurite import free_port
from shared import ingest, managed
from shared.storage import BlobState
from shared.zipcheck import BytesRangeReader, content_id

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "ja-JP")
EMPTY_ZIP = b"PK\x05\x06" + b"\0" * 18  # the pass never opens a zip; an empty archive is enough
EMPTY_ZIP_CONTENT = content_id(BytesRangeReader(EMPTY_ZIP))  # what the ingest computes for it
BATCH = 2000
STORAGE_THREADS = 16


class EmulatorProcess:
    """`python -m local.speech_emulator` in its own process; `control()` reaches its /_emulator/ operations."""

    def __init__(self, *, page_size: int = 100, rate_limit: str | None = None) -> None:
        self.page_size, self.rate_limit = page_size, rate_limit
        self.url, self.key = "", "emulator-key"
        self.proc: subprocess.Popen | None = None
        self.session = requests.Session()

    def __enter__(self) -> EmulatorProcess:
        port = free_port()
        args = [sys.executable, "-m", "local.speech_emulator", "--port", str(port), "--page-size", str(self.page_size)]
        args += ["--fast", "--key", self.key] + (["--rate-limit", self.rate_limit] if self.rate_limit else [])
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().split(" on ")[1].split()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.session.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def control(self, method: str, name: str, body: Any = None) -> Any:
        resp = self.session.request(
            method, f"{self.url}/_emulator/{name}", json=body, headers={"Ocp-Apim-Subscription-Key": self.key}
        )
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def api(self, path: str) -> Any:
        resp = self.session.get(
            f"{self.url}/speechtotext/{path}",
            params={"api-version": "2025-10-15"},
            headers={"Ocp-Apim-Subscription-Key": self.key},
        )
        resp.raise_for_status()
        return resp.json()

    def seed(self, collection: str, items: list[dict]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(items), BATCH):
            batch = {"collection": collection, "items": items[start : start + BATCH]}
            ids += self.control("POST", "seed", batch)["ids"]
        return ids

    def uri(self, collection: str, entity_id: str) -> str:
        return f"{self.url}/speechtotext/{collection}/{entity_id}?api-version=2025-10-15"


def split(n: int) -> dict[str, int]:
    endpoints = min(50, n // 20)
    models = int(n * 0.35)
    return {"datasets": n - models - endpoints, "models": models, "endpoints": endpoints}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(emulator: EmulatorProcess, container: Any, n: int, *, zips: bool = True) -> dict[str, int]:
    """N managed resources in a steady state (module docstring); the zips in `container` (a ContainerClient)."""
    counts = split(n)
    now = datetime.now(UTC)
    names = [f"{LOCALES[i % len(LOCALES)]}/language/z{i:06d}.zip" for i in range(counts["datasets"])]
    paths = [ingest.source_path(container.container_name, name) for name in names]
    created = _iso(now - timedelta(days=3))
    datasets = [
        {
            **_create_fields(ingest.dataset_request(ingest.parse_blob_name(name), path, EMPTY_ZIP_CONTENT)),
            "createdDateTime": created,
        }
        for name, path in zip(names, paths, strict=True)
    ]
    dataset_ids = emulator.seed("datasets", datasets)
    if zips:  # one call per zip: its bytes and its state together
        with ThreadPoolExecutor(STORAGE_THREADS) as pool:
            list(pool.map(_upload, [container] * len(names), names, dataset_ids))
    by_locale: dict[str, list[str]] = {locale: [] for locale in LOCALES}
    for item, dataset_id in zip(datasets, dataset_ids, strict=True):
        by_locale[item["locale"]].append(dataset_id)

    bases = {}
    for base in emulator.api("models/base")["values"]:
        if base["locale"] not in bases or base["createdDateTime"] > bases[base["locale"]]["createdDateTime"]:
            bases[base["locale"]] = base
    models = []
    for i in range(counts["models"]):
        locale = LOCALES[i % len(LOCALES)]
        mine = by_locale[locale]
        newest_of_locale = i >= counts["models"] - len(LOCALES)
        props = {managed.DEPLOY_REQUESTED: "2026-01-01T00:00:00Z", managed.REASON: "trained"}
        if newest_of_locale and zips:
            props[managed.DATASET_SET] = managed.dataset_set_digest(mine)  # trained on the locale's current data
        models.append(
            {
                "displayName": f"m{i:06d}",
                "locale": locale,
                "baseModel": {"self": bases[locale]["self"]},
                "datasets": [{"self": emulator.uri("datasets", mine[i % len(mine)])}],
                "customProperties": managed.managed_properties(**props),
                "createdDateTime": _iso(now - timedelta(days=2) + timedelta(seconds=i)),
            }
        )
    models_of: dict[str, list[str]] = {locale: [] for locale in LOCALES}  # oldest first
    for i, model_id in enumerate(emulator.seed("models", models)):
        models_of[LOCALES[i % len(LOCALES)]].append(model_id)
    endpoints = []
    for i in range(counts["endpoints"]):
        locale = LOCALES[i % len(LOCALES)]
        model_id = models_of[locale][-1 - i // len(LOCALES)]  # the oldest endpoint of each locale: the newest model
        endpoints.append(
            {
                "displayName": f"autopilot-{locale}" if i < len(LOCALES) else f"e{i:02d}",
                "locale": locale,
                "model": {"self": emulator.uri("models", model_id)},
                "customProperties": managed.managed_properties(**{managed.ALERTED: f"deployed:{model_id}"}),
                "createdDateTime": _iso(now - timedelta(days=1) + timedelta(seconds=i)),
            }
        )
    emulator.seed("endpoints", endpoints)
    return counts


def _create_fields(request: dict) -> dict:
    """A Datasets_Create body from shared.ingest.dataset_request's fields."""
    return {
        "displayName": request["display_name"],
        "locale": request["locale"],
        "kind": request["kind"],
        "description": request["description"],
        "customProperties": request["custom_properties"],
    }


def _upload(container: Any, name: str, dataset_id: str) -> None:
    state = BlobState(status="succeeded", content=EMPTY_ZIP_CONTENT, dataset=dataset_id)
    metadata = {key: value for key, value in state.values().items() if value}
    container.get_blob_client(name).upload_blob(EMPTY_ZIP, overwrite=True, metadata=metadata)


@dataclass
class CallCounter:
    """Speech requests by kind (list page, other GET, write, 429 answer) and when each was sent, from a
    requests.Session response hook (the session the app's client is given)."""

    counts: Counter
    sent: list[float]  # time.monotonic() of each request's sending

    @classmethod
    def session(cls) -> tuple[requests.Session, CallCounter]:
        counter = cls(Counter(), [])
        session = requests.Session()
        session.hooks["response"].append(lambda resp, *args, **kwargs: counter.record(resp))
        return session, counter

    def record(self, resp: requests.Response) -> None:
        self.sent.append(time.monotonic() - resp.elapsed.total_seconds())
        method, path = resp.request.method, urlsplit(resp.request.url).path.removeprefix("/speechtotext/")
        if method == "GET":
            kind = "list" if path in ("datasets", "models", "models/base", "endpoints") else "get"
        else:
            kind = method
        self.counts[kind] += 1
        if resp.status_code == 429:
            self.counts["429"] += 1

    def snapshot(self) -> Counter:
        return Counter(self.counts)

    def busiest(self, window: float) -> int:
        """The most requests sent within any `window` seconds."""
        times, most, first = sorted(self.sent), 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= window:
                first += 1
            most = max(most, last - first + 1)
        return most


def writes(counts: Counter) -> int:
    return sum(count for kind, count in counts.items() if kind in ("POST", "PATCH", "PUT", "DELETE"))


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def fit_exponent(points: list[tuple[float, float]]) -> float:
    """Least squares slope of log(y) on log(x): the growth exponent of y = c * x^k."""
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def emit(figures: dict) -> None:
    """The child's one line of results for the parent."""
    print("RESULT " + json.dumps(figures), flush=True)


def results(lines: Iterator[str]) -> dict:
    for line in lines:
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError("the measured process printed no result")


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
