"""Three simulated years of hands-off operation (issue 9): the real functions, through the offline host, against
Azurite and the Speech emulator, on a simulated clock. Prints and writes a report and a timeline picture.

The simulation (seeded, so a run is reproducible):
- every locale drops an acoustic and a language zip at the start, with a test set (`{locale}/test/holdout.zip`,
  audio + transcript) for the quality gate, then a few language zips at random times (no two of a locale within a
  week). The first locale gets data all along; the others only in their first months, so only
  expiry retrains keep them alive later;
- every locale gets a base model each quarter (released Mar 1, Jun 1, Sep 1, Dec 1; two years of releases exist
  before the start). The emulator dates each by the documented quarter rule (quarters end Jan 15, Apr 15, Jul 15,
  Oct 15): adaptation one year after the release's quarter, transcription two years; it refuses to train on a base
  model past its adaptation date;
- incidents on the first locale, each with a zip dropped so that it matters: a training that fails; an hour in which
  every API call gets 429 with Retry-After; a day on which every PATCH of an endpoint gets 503 (the deploy message
  ends in the poison queue);
- a regression on the first locale: the model trained on one drop is worse on the test set than the serving model
  (the emulator's word error rates, otherwise a little better with every dataset); the quality gate holds it back;
- realistic durations on the emulator's clock: datasets 2 h, training 26 h, evaluations 2 h, endpoints 20 min;
- the host fires the timers on their NCRONTAB schedules: POLL_SCHEDULE hourly (production default: every 5 minutes,
  315,000 runs in three years) and EXPIRY_SCHEDULE daily at 06:00 (the default).

The clock moves from one timer firing to the next while anything is in flight. When nothing is (no entity processing,
no write and no failed function in the last round) it jumps to the next daily expiry run or scenario event: the hourly
polls in between would find nothing to do (time-based poll decisions then wait up to a day), and the API figures add
their calls back. The API client's backoff sleeps move the simulated clock, so Retry-After is honoured in simulated
time.

    python -m bench.soak [--years 3] [--locales en-US,de-DE] [--seed 7] [--out bench/out] [--docs]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Iterator, Sequence

from bench.soak_svg import timeline_svg
from local import samples
from local.azurite import Azurite
from local.host import LocalHost
from local.runtime import Invocation
from local.speech_emulator import SpeechEmulator
from local.webhook import WebhookReceiver
from shared import clock, context, managed
from shared.budget import RequestBudget
from shared.reconcile import managed_endpoints
from shared.speech import BaseModel, CustomModel, Dataset, Endpoint, Evaluation, entity_id

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
DURATIONS = {"dataset": 2 * 3600, "model": 26 * 3600, "endpoint": 20 * 60, "evaluation": 2 * 3600}
POLL_FUNCTION = "reconcile"
SCHEDULES = {"POLL_SCHEDULE": "0 0 * * * *", "EXPIRY_SCHEDULE": "0 0 6 * * *"}
POLLS_PER_DAY = 24
PRODUCTION_POLLS_PER_DAY = 288  # the default POLL_SCHEDULE, every 5 minutes
QUIET_STEP = timedelta(days=1)  # how far the clock may jump when nothing is in flight
NAMES = {"TRAINING_CONTAINER": "training", "DEPLOY_QUEUE": "speech-deployments", "ALERT_QUEUE": "speech-alerts"}

RELEASE_MONTHS = (3, 6, 9, 12)
HISTORY_YEARS = 2
LATER_DROPS = 3
FIRST_LATER_DAY = 14
MIN_DROP_GAP_DAYS = 7
DORMANT_AFTER_DAYS = 240  # locales after the first get no data after this day
LAST_DROP_MARGIN_DAYS = 45  # no drop so late that its model cannot be seen serving
OVERWRITE_ODDS = 0.25  # a later drop replaces the language zip of the start instead of adding one

INCIDENTS = {"fail-training": 0.25, "throttle": 0.5, "patch-outage": 0.75}  # kind -> where in the run
REGRESSION_AT = 0.4  # where in the run the first locale's drop trains a model worse than the serving one
REGRESSED_WER = 0.2  # its word error rate on the test set; the others' are 0.12 less 0.01 per dataset
TEST_SET_LINES = 20
THROTTLE_FOR = timedelta(hours=1)
OUTAGE_AFTER_DROP = timedelta(hours=20)  # the drop's model is trained and deployed inside the outage
OUTAGE_FOR = timedelta(days=1)
RETRY_AFTER_SECONDS = 30
UNTIL_CLEARED = 10**9
RATE_LIMIT_CALLS, RATE_LIMIT_SECONDS = 100, 10
IN_FLIGHT = ("NotStarted", "Running")
MAX_WEBHOOK_POSTS = 30  # goal: webhook posts in three years for two locales, at ALERT_WEBHOOK_MIN_SEVERITY=warning

# Alert kinds a person has to act on. endpoint-deployed is informational; model-expiring and model-expired depend on
# whether the model still served the endpoint at its expiry date (see classify_expiry).
ACTIONABLE = frozenset({
    "zip-rejected", "dataset-failed", "model-failed", "no-base-model", "endpoint-failed", "retrain-impossible",
    "deploy-rejected", "deploy-poisoned", "evaluation-failed", "evaluation-error",
})  # fmt: skip

log = logging.getLogger("autopilot.soak")


# -- the scenario ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # release | drop | clear-faults | regress | an INCIDENTS kind
    locale: str
    blob: str = ""  # drop: the blob name; incident: the blob of the zip dropped with it
    until: datetime | None = None  # incident: when its faults are cleared


def scenario(locales: Sequence[str], days: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    end = START + timedelta(days=days)
    events = incidents(locales[0], days) + regression(locales[0], days)
    for index, locale in enumerate(locales):
        last_day = days - LAST_DROP_MARGIN_DAYS if index == 0 else min(days - LAST_DROP_MARGIN_DAYS, DORMANT_AFTER_DAYS)
        taken = [(e.at - START).days for e in events if e.kind == "drop" and e.locale == locale]
        events += releases(locale, end) + first_drops(locale) + later_drops(rng, locale, last_day, taken)
    return sorted(events, key=lambda e: e.at)


def releases(locale: str, end: datetime) -> list[Event]:
    moments = [
        datetime(year, month, 1, tzinfo=UTC)
        for year in range(START.year - HISTORY_YEARS, end.year + 1)
        for month in RELEASE_MONTHS
    ]
    return [Event(at, "release", locale) for at in moments if START - timedelta(days=365 * HISTORY_YEARS) <= at < end]


def first_drops(locale: str) -> list[Event]:
    return [
        Event(START, "drop", locale, f"{locale}/acoustic/calls.zip"),
        Event(START, "drop", locale, f"{locale}/language/phrases.zip"),
        Event(START, "drop", locale, f"{locale}/test/holdout.zip"),
    ]


def regression(locale: str, days: int) -> list[Event]:
    """A drop whose model does worse on the test set than the one serving (the quality gate holds it back)."""
    day = round(days * REGRESSION_AT)
    at = START + timedelta(days=day, hours=2)
    blob = f"{locale}/language/day-{day:04d}.zip"
    return [Event(at, "regress", locale, blob), Event(at, "drop", locale, blob)]


def later_drops(rng: random.Random, locale: str, last_day: int, taken: list[int]) -> list[Event]:
    drops = []
    for day in spaced_days(rng, LATER_DROPS, last_day, taken):
        name = "phrases" if rng.random() < OVERWRITE_ODDS else f"day-{day:04d}"
        at = START + timedelta(days=day, minutes=rng.randrange(24 * 60))
        drops.append(Event(at, "drop", locale, f"{locale}/language/{name}.zip"))
    return drops


def spaced_days(rng: random.Random, count: int, last_day: int, taken: list[int]) -> list[int]:
    chosen: list[int] = []
    for _ in range(1000):
        if len(chosen) == count:
            return sorted(chosen)
        day = rng.randint(FIRST_LATER_DAY, last_day)
        if all(abs(day - other) >= MIN_DROP_GAP_DAYS for other in taken + chosen):
            chosen.append(day)
    raise ValueError(f"no room for {count} drops a week apart before day {last_day}: simulate more days")


def incidents(locale: str, days: int) -> list[Event]:
    events = []
    for kind, fraction in INCIDENTS.items():
        day = round(days * fraction)
        at = START + timedelta(days=day, hours=2)
        blob = f"{locale}/language/day-{day:04d}.zip"
        if kind == "fail-training":
            events += [Event(at, kind, locale, blob), Event(at, "drop", locale, blob)]
        elif kind == "throttle":
            until = at + THROTTLE_FOR
            events += [
                Event(at, kind, locale, blob, until),
                Event(at + timedelta(minutes=5), "drop", locale, blob),
                Event(until, "clear-faults", locale),
            ]
        else:
            start, until = at + OUTAGE_AFTER_DROP, at + OUTAGE_AFTER_DROP + OUTAGE_FOR
            events += [
                Event(at, "drop", locale, blob),
                Event(start, kind, locale, blob, until),
                Event(until, "clear-faults", locale),
            ]
    return events


def zip_for(event: Event) -> bytes:
    if "/test/" in event.blob:
        return samples.acoustic_zip(TEST_SET_LINES, seconds=0.1)
    if "/acoustic/" in event.blob:
        return samples.acoustic_zip(3)
    return samples.language_zip(20 + event.at.toordinal() % 40)


# -- the run -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One function invocation and the Speech API calls it made."""

    at: datetime
    function: str
    ok: bool
    calls: int
    writes: int


@dataclass(frozen=True)
class Seen:
    """What a locale's managed endpoint pointed at, at one moment."""

    at: datetime
    model: str
    status: str


@dataclass
class Result:
    locales: tuple[str, ...]
    seed: int
    start: datetime
    end: datetime
    events: list[Event]
    wall_seconds: float = 0.0
    ticks: int = 0
    runs: list[Run] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    posted: list[dict] = field(default_factory=list)  # the alerts the webhook received, one per POST
    seen: dict[str, list[Seen]] = field(default_factory=lambda: defaultdict(list))
    most_endpoints: Counter = field(default_factory=Counter)  # locale -> most managed endpoints seen at once
    requests: list[dict] = field(default_factory=list)
    datasets: list[Dataset] = field(default_factory=list)
    models: list[CustomModel] = field(default_factory=list)
    base_models: list[BaseModel] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)


class Soak:
    def __init__(self, emulator: SpeechEmulator, result: Result, names: dict[str, str]) -> None:

        self.emulator = emulator
        self.result = result
        self.alert_queue = names["ALERT_QUEUE"]
        self.host = LocalHost.from_env(clock=emulator.now)
        self.host.runtime.on_invocation = self._count
        # Azurite counts a failed message's visibility timeout (host.json: 30 s) in wall time, and 30 wall seconds
        # are weeks of simulated time here; on an hourly clock the host's 30 s are nothing, so retry at once.
        self.host.runtime.visibility_timeout = 0
        self.container = self.host.blob_service.get_container_client(names["TRAINING_CONTAINER"])
        self.container.create_container()
        self._mark = 0

    def now(self) -> datetime:
        return self.emulator.now()

    def run(self) -> None:
        pending = deque(self.result.events)
        while self.now() < self.result.end:
            while pending and pending[0].at <= self.now():
                self.apply(pending.popleft())
            first = len(self.result.runs)
            self.host.tick()
            self.result.ticks += 1
            self.observe()
            wake = self.next_wake(self.quiet(self.result.runs[first:]), pending[0].at if pending else self.result.end)
            self.emulator.set_now(max(wake, self.now()))

    def apply(self, event: Event) -> None:
        log.info("scenario: %s %s %s", event.kind, event.locale, event.blob)
        match event.kind:
            case "release":
                self.emulator.add_base_model(event.locale, created=event.at)
            case "drop":
                self.container.get_blob_client(event.blob).upload_blob(zip_for(event), overwrite=True)
            case "fail-training":
                self.emulator.fail_next("model", "InternalError", "Training failed (injected by the soak).")
            case "regress":
                self.emulator.set_next_quality(REGRESSED_WER)
            case "throttle":
                self.emulator.inject(429, count=UNTIL_CLEARED, retry_after=RETRY_AFTER_SECONDS)
            case "patch-outage":
                self.emulator.inject(
                    503, count=UNTIL_CLEARED, retry_after=None, method="PATCH", path_contains="/endpoints/"
                )
            case "clear-faults":
                self.emulator.clear_faults()
            case _:
                raise ValueError(f"unknown scenario event {event.kind!r}")

    def _count(self, invocation: Invocation) -> None:
        calls = self.emulator.requests[self._mark :]
        self._mark += len(calls)
        writes = sum(1 for call in calls if call["method"] != "GET")
        self.result.runs.append(Run(self.now(), invocation.function, invocation.ok, len(calls), writes))

    def observe(self) -> None:
        endpoints = [Endpoint.from_json(raw) for raw in self.emulator.endpoints.values()]
        for locale, endpoint in managed_endpoints(endpoints).items():
            self.result.seen[locale].append(Seen(self.now(), endpoint.model_id or "", endpoint.status))
        counts = Counter(e.locale for e in endpoints if managed.is_managed(e))
        for locale, count in counts.items():
            self.result.most_endpoints[locale] = max(self.result.most_endpoints[locale], count)
        self.result.alerts += [json.loads(text) for text in self.host.runtime.take(self.alert_queue)]

    def quiet(self, runs: list[Run]) -> bool:
        """Nothing in flight: every function of the round succeeded without writing, nothing is processing."""
        if any(not run.ok or run.writes for run in runs):
            return False
        collections = ("datasets", "models", "endpoints", "evaluations")
        views = (self.emulator.view(collection).values() for collection in collections)
        return not any(item["status"] in IN_FLIGHT for view in views for item in view)

    def next_wake(self, quiet: bool, next_event: datetime) -> datetime:
        fires = dict(self.host.next_fire)
        if quiet:
            fires[POLL_FUNCTION] = max(fires[POLL_FUNCTION], self.now() + QUIET_STEP)
        return min(*fires.values(), next_event)

    def collect(self) -> None:
        self.result.requests = list(self.emulator.requests)
        self.result.datasets = [Dataset.from_json(raw) for raw in self.emulator.datasets.values()]
        self.result.models = [CustomModel.from_json(raw) for raw in self.emulator.models.values()]
        self.result.base_models = [BaseModel.from_json(raw) for raw in self.emulator.base_models.values()]
        self.result.evaluations = [Evaluation.from_json(raw) for raw in self.emulator.view("evaluations").values()]


@contextlib.contextmanager
def app_environment(
    azurite: Azurite, emulator: SpeechEmulator, names: dict[str, str], webhook_url: str = ""
) -> Iterator[None]:
    """The app's settings, its clock and its API client's sleep on the simulation; all restored afterwards.
    ALERT_WEBHOOK_MIN_SEVERITY keeps its default (warning)."""
    env = {
        "AzureWebJobsStorage": azurite.connection_string, "SPEECH_ENDPOINT": emulator.url, "SPEECH_KEY": emulator.key,
        "AUTO_DEPLOY": "true", "AUTO_RETRAIN": "true", "EXPIRY_WARNING_DAYS": "30,14,7,1",
        "ALERT_WEBHOOK_URL": webhook_url, "ALERT_WEBHOOK_MIN_SEVERITY": "", "SPEECH_PROJECT": "", **SCHEDULES, **names,
    }  # fmt: skip
    saved_env = {name: os.environ.get(name) for name in env}
    saved_options = context.CLIENT_OPTIONS
    os.environ.update(env)
    # a backoff sleep passes simulated time; the request budget counts simulated seconds too
    budget = RequestBudget(clock=lambda: emulator.now().timestamp(), sleep=emulator.advance)
    context.CLIENT_OPTIONS = {"sleep": emulator.advance, "budget": budget}
    context.reset()
    clock.use_clock(emulator.now)
    try:
        yield
    finally:
        clock.use_clock(None)
        context.CLIENT_OPTIONS = saved_options
        context.reset()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def sim_log(path: Path | None, now) -> Iterator[None]:
    """The app's log lines, stamped with simulated time, to a file (or nowhere): the report is the output."""
    root = logging.getLogger("autopilot")
    handler: logging.Handler = logging.FileHandler(path, mode="w") if path else logging.NullHandler()
    handler.setFormatter(SimTimeFormatter(now))
    handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name != "autopilot.speech")
    saved = root.level, root.propagate
    root.setLevel(logging.INFO)
    root.propagate = False
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(saved[0])
        root.propagate = saved[1]


class SimTimeFormatter(logging.Formatter):
    def __init__(self, now) -> None:
        super().__init__()
        self.now = now

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.now():%Y-%m-%d %H:%M:%S} {record.levelname:<7} {record.name}: {record.getMessage()}"


def simulate(
    azurite: Azurite,
    *,
    locales: Sequence[str] = ("en-US", "de-DE"),
    days: int = 1096,
    seed: int = 7,
    names: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> Result:
    """Run the scenario through the real functions; the raw observations and the final state of the resource.
    ALERT_WEBHOOK_URL points at a receiver on loopback, so the webhook figures count real POSTs."""
    names = names or NAMES
    result = Result(tuple(locales), seed, START, START + timedelta(days=days), scenario(locales, days, seed))
    started = time.monotonic()
    with SpeechEmulator(durations=DURATIONS, locales=list(locales), now=START) as emulator, WebhookReceiver() as hook:
        for base_id in list(emulator.base_models):  # the scenario's quarterly releases replace the seeded ones
            emulator.remove_base_model(base_id)
        with app_environment(azurite, emulator, names, hook.url), sim_log(log_path, emulator.now):
            soak = Soak(emulator, result, names)
            soak.run()
            soak.collect()
        result.posted = hook.alerts
    result.wall_seconds = time.monotonic() - started
    return result


# -- the figures -------------------------------------------------------------------------------------------------


@dataclass
class Segment:
    """A model serving a locale's endpoint from `start` until `end` (the first round that saw the next one)."""

    model: str
    start: datetime
    end: datetime


def segments(seen: list[Seen], end: datetime) -> list[Segment]:
    """A model serves once its deployment succeeded; until then the previous one is counted as serving."""
    out: list[Segment] = []
    for observation in seen:
        if observation.status != "Succeeded" or (out and out[-1].model == observation.model):
            continue
        if out:
            out[-1].end = observation.at
        out.append(Segment(observation.model, observation.at, end))
    return out


def expired_days(served: list[Segment], models: dict[str, CustomModel]) -> list[date]:
    days: set[date] = set()
    for segment in served:
        expiry = models[segment.model].transcription_expiry if segment.model in models else None
        if expiry is None or expiry >= segment.end:
            continue
        day, last = max(segment.start, expiry).date(), (segment.end - timedelta(microseconds=1)).date()
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return sorted(days)


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def day_of(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d") if moment else None


def training_rows(models: list[CustomModel], bases: dict[str, BaseModel], served: list[Segment]) -> list[dict]:
    rows = []
    for model in sorted(models, key=lambda m: m.created or START):
        props = model.custom_properties
        base = bases.get(model.base_model_id or "")
        reason = props.get(managed.REASON, "?")
        retrain_of = props.get(managed.RETRAIN_OF)
        rows.append({
            "model": model.id,
            "created": iso(model.created),
            "finished": model.raw.get("lastActionDateTime"),
            "expires": iso(model.transcription_expiry),
            "reason": reason,
            "why": "data changed" if reason == "trained" else f"model {retrain_of} was about to expire",
            "retrainOf": retrain_of,
            "status": model.status,
            "gate": props.get(managed.QUALITY_GATE),
            "wordErrorRate": props.get(managed.WORD_ERROR_RATE),
            "baseModel": base.display_name if base else model.base_model_id,
            "datasets": len(model.dataset_ids),
            "served": [{"from": iso(s.start), "until": iso(s.end)} for s in served if s.model == model.id],
        })  # fmt: skip
    return rows


def duplicate_models(models: list[CustomModel]) -> list[list[str]]:
    """Models (not failed) with the same locale, dataset set, base model and reason created on the same day."""
    groups = defaultdict(list)
    for model in models:
        if model.status != "Failed":
            props = model.custom_properties
            key = (
                model.locale,
                managed.model_dataset_digest(model),
                model.base_model_id,
                props.get(managed.REASON),
                day_of(model.created),
            )
            groups[key].append(model.id)
    return [ids for ids in groups.values() if len(ids) > 1]


def duplicate_datasets(datasets: list[Dataset]) -> list[list[str]]:
    groups = defaultdict(list)
    for dataset in datasets:
        if managed.is_managed(dataset):
            props = dataset.custom_properties
            groups[(props.get(managed.SOURCE), props.get(managed.SOURCE_CONTENT))].append(dataset.id)
    return [ids for ids in groups.values() if len(ids) > 1]


def locale_figures(result: Result, locale: str, served: list[Segment]) -> dict:
    models = [m for m in result.models if m.locale == locale and managed.is_managed(m)]
    by_id = {m.id: m for m in result.models}
    bases = {b.id: b for b in result.base_models}
    batches = len({e.at for e in result.events if e.kind == "drop" and e.locale == locale})
    data = [m for m in models if m.custom_properties.get(managed.REASON) == "trained"]
    retrains = Counter(m.custom_properties.get(managed.RETRAIN_OF) for m in models if m.status != "Failed")
    retrains.pop(None, None)
    return {
        "expiredDays": [d.isoformat() for d in expired_days(served, by_id)],
        "dropBatches": batches,
        "dataTrainings": len(data),
        "expectedDataTrainings": batches,
        "expiryRetrains": sum(retrains.values()),
        "mostExpiryRetrainsOfOneModel": max(retrains.values(), default=0),
        "failedTrainings": sum(1 for m in models if m.status == "Failed"),
        "gatePassed": sum(1 for m in models if m.custom_properties.get(managed.QUALITY_GATE) == "passed"),
        "heldBack": [
            {
                "model": m.id,
                "gate": m.custom_properties.get(managed.QUALITY_GATE),
                "created": iso(m.created),
                "served": any(s.model == m.id for s in served),
            }
            for m in models
            if m.custom_properties.get(managed.QUALITY_GATE) in ("failed", "error", "untested")
        ],  # fmt: skip
        "regressions": sum(1 for e in result.events if e.kind == "regress" and e.locale == locale),
        "evaluations": sum(1 for e in result.evaluations if e.locale == locale),
        "mostManagedEndpoints": result.most_endpoints[locale],
        "trainings": training_rows(models, bases, served),
        "baseModels": [
            {
                "name": b.display_name,
                "released": iso(b.created),
                "adaptUntil": iso(b.adaptation_expiry),
                "transcribeUntil": iso(b.transcription_expiry),
            }
            for b in sorted(result.base_models, key=lambda b: b.created or START)
            if b.locale == locale
        ],  # fmt: skip
        "drops": [{"at": iso(e.at), "blob": e.blob} for e in result.events if e.kind == "drop" and e.locale == locale],
    }


def classify(alert: dict, models: dict[str, CustomModel], served: list[Segment]) -> tuple[bool, str]:
    """Whether a person had to act on the alert, and what followed it."""
    kind = alert["kind"]
    if kind in ("model-expiring", "model-expired"):
        return classify_expiry(models.get(entity_id(alert["resource"])), models, served)
    if kind == "deploy-poisoned":
        wanted = entity_id(str(alert["details"].get("message", {}).get("model", "")))
        landed = next((s for s in served if s.model == wanted), None)
        return True, f"the model reached the endpoint on {iso(landed.start)}" if landed else "the model never served"
    return kind in ACTIONABLE, ""


def classify_expiry(
    model: CustomModel | None, models: dict[str, CustomModel], served: list[Segment]
) -> tuple[bool, str]:
    """An expiry alert needs a person only if the model still served the endpoint when it expired (or when the run
    ended); about a model the endpoint had moved on from, it is informational."""
    stretches = [s for s in served if model is not None and s.model == model.id]
    if model is None or model.transcription_expiry is None or not stretches:
        return False, "the model never served the endpoint"
    last = stretches[-1]
    successor = next((s for s in served if s.start >= last.end), None)
    if successor is None or last.end > model.transcription_expiry:
        return True, "the model still served the endpoint at its expiry or when the run ended"
    retrain = models[successor.model].custom_properties.get(managed.RETRAIN_OF) == model.id
    how = "an automatic retrain of it" if retrain else "a newer model"
    return False, f"the endpoint moved on to {how} on {day_of(successor.start)}"


def classify_post(alert: dict, models: dict[str, CustomModel], served: list[Segment]) -> tuple[str, str]:
    """What an alert the webhook received was worth to the person reading it: `actionable` (a person has to act),
    `hands-off` (it reports what the app did on its own about a model serving the endpoint when it was raised), or
    `other` (neither: noise on the webhook)."""
    actionable, note = classify(alert, models, served)
    if actionable:
        return "actionable", note
    if alert["kind"] in ("model-expiring", "model-expired") and alert["details"].get("handsOff"):
        model_id = entity_id(alert["resource"])
        at = datetime.fromisoformat(alert["at"].replace("Z", "+00:00"))
        if any(s.model == model_id and s.start <= at < s.end for s in served):
            action = alert["details"]["handsOff"].get("action")
            return "hands-off", f"{action} reported; {note}"
    return "other", note


def webhook_figures(result: Result, served_by_locale: dict[str, list[Segment]]) -> dict:
    """Every POST the webhook received (duplicates included: each is a message someone reads), classified."""
    models = {m.id: m for m in result.models}
    kinds: dict[str, Counter] = defaultdict(Counter)
    rows = []
    for alert in result.posted:
        worth, note = classify_post(alert, models, served_by_locale.get(alert.get("locale") or "", []))
        kinds[alert["kind"]][worth] += 1
        kinds[alert["kind"]]["posted"] += 1
        rows.append({"at": alert["at"], "kind": alert["kind"], "severity": alert["severity"],
                     "locale": alert["locale"], "worth": worth, "note": note})  # fmt: skip
    worth_reading = sum(1 for row in rows if row["worth"] != "other")
    return {
        "minSeverity": "warning",
        "posts": len(rows),
        "worthReading": worth_reading,
        "ratio": round(worth_reading / len(rows), 3) if rows else 1.0,
        "byKind": {kind: dict(counts) for kind, counts in sorted(kinds.items())},
        "list": sorted(rows, key=lambda r: r["at"]),
    }


def alert_figures(result: Result, served_by_locale: dict[str, list[Segment]]) -> dict:
    models = {m.id: m for m in result.models}
    unique = list({a["id"]: a for a in result.alerts}.values())
    rows, kinds = [], defaultdict(Counter)
    for alert in unique:
        actionable, note = classify(alert, models, served_by_locale.get(alert.get("locale") or "", []))
        kinds[alert["kind"]]["actionable" if actionable else "informational"] += 1
        rows.append(
            {
                "at": alert["at"],
                "kind": alert["kind"],
                "severity": alert["severity"],
                "locale": alert["locale"],
                "actionable": actionable,
                "note": note,
                "message": alert["message"],
            }
        )
    return {
        "delivered": len(result.alerts),
        "distinct": len(unique),
        "byKind": {kind: dict(counts) for kind, counts in sorted(kinds.items())},
        "list": sorted(rows, key=lambda r: r["at"]),
    }


def max_in_window(times: list[datetime], seconds: float) -> int:
    times = sorted(times)
    best, first = 0, 0
    for last, moment in enumerate(times):
        while (moment - times[first]).total_seconds() >= seconds:
            first += 1
        best = max(best, last - first + 1)
    return best


def api_figures(result: Result) -> dict:
    per_day = Counter(r["time"].date() for r in result.requests)
    days = [result.start.date() + timedelta(days=n) for n in range((result.end - result.start).days)]
    polls = [r for r in result.runs if r.function == POLL_FUNCTION]
    poll_days = Counter(r.at.date() for r in polls)
    quiet_poll = round(statistics.median([r.calls for r in polls if r.ok and not r.writes] or [0]))
    measured = [per_day[d] for d in days]
    scheduled = [per_day[d] + max(0, POLLS_PER_DAY - poll_days[d]) * quiet_poll for d in days]
    return {
        "total": len(result.requests),
        "perDayMax": max(measured),
        "perDayMean": round(statistics.mean(measured), 1),
        "perDayMaxAsScheduled": max(scheduled),
        "perDayMeanAsScheduled": round(statistics.mean(scheduled), 1),
        "quietPollCalls": quiet_poll,
        "productionQuietPollsPerDay": PRODUCTION_POLLS_PER_DAY * quiet_poll,
        "maxIn10Seconds": max_in_window([r["time"] for r in result.requests], RATE_LIMIT_SECONDS),
        "maxInOneRun": max((r.calls for r in result.runs), default=0),
        "answered429": sum(1 for r in result.requests if r["status"] == 429),
        "answered5xx": sum(1 for r in result.requests if r["status"] >= 500),
        "functionRuns": len(result.runs),
        "failedFunctionRuns": sum(1 for r in result.runs if not r.ok),
        "pollRuns": len(polls),
    }


def incident_figures(result: Result, served_by_locale: dict[str, list[Segment]]) -> list[dict]:
    """Per incident: its window, what failed in it, and when the zip dropped with it reached the endpoint."""
    rows = []
    for event in (e for e in result.events if e.kind in INCIDENTS):
        until = event.until or event.at
        datasets = {d.id for d in result.datasets if d.custom_properties.get(managed.SOURCE, "").endswith(event.blob)}
        models = {m.id for m in result.models if datasets & set(m.dataset_ids)}
        landed = next((s for s in served_by_locale.get(event.locale, []) if s.model in models), None)
        drop = next(e.at for e in result.events if e.kind == "drop" and e.blob == event.blob)
        rows.append({
            "kind": event.kind,
            "locale": event.locale,
            "from": iso(event.at),
            "until": iso(event.until),
            "zip": event.blob,
            "faultAnswers": sum(1 for r in result.requests if event.at <= r["time"] < until and r["status"] >= 429),
            "failedRuns": sum(1 for r in result.runs if event.at <= r.at <= until and not r.ok),
            "failedTrainings": sum(1 for m in result.models if m.id in models and m.status == "Failed"),
            "servedFrom": iso(landed.start) if landed else None,
            "hoursFromDrop": round((landed.start - drop).total_seconds() / 3600, 1) if landed else None,
        })  # fmt: skip
    return rows


def build_report(result: Result) -> dict:
    served = {locale: segments(result.seen[locale], result.end) for locale in result.locales}
    locales = {locale: locale_figures(result, locale, served[locale]) for locale in result.locales}
    api = api_figures(result)
    report = {
        "parameters": {
            "locales": list(result.locales),
            "seed": result.seed,
            "start": iso(result.start),
            "end": iso(result.end),
            "days": (result.end - result.start).days,
            "schedules": SCHEDULES,
            "durationsSeconds": DURATIONS,
            "quietStepHours": QUIET_STEP / timedelta(hours=1),
        },  # fmt: skip
        "wallSeconds": round(result.wall_seconds, 1),
        "ticks": result.ticks,
        "locales": locales,
        "alerts": alert_figures(result, served),
        "webhook": webhook_figures(result, served),
        "api": api,
        "incidents": incident_figures(result, served),
        "duplicates": {"models": duplicate_models(result.models), "datasets": duplicate_datasets(result.datasets)},
    }
    report["goals"] = goals(report, sum(1 for e in result.events if e.kind == "fail-training"))
    return report


def goals(report: dict, injected_failures: int) -> list[dict]:
    locales = report["locales"].values()
    failed = sum(f["failedTrainings"] for f in locales)
    checks = [
        ("days an endpoint served an expired model", sum(len(f["expiredDays"]) for f in locales), 0,
         lambda v: v == 0),
        ("data-change trainings (expected: one per drop batch; a failed one is not retried)",
         sum(f["dataTrainings"] for f in locales), sum(f["expectedDataTrainings"] for f in locales),
         lambda v: v == sum(f["expectedDataTrainings"] for f in locales)),
        ("most expiry retrains of one model", max(f["mostExpiryRetrainsOfOneModel"] for f in locales), 1,
         lambda v: v <= 1),
        ("failed trainings (injected)", failed, injected_failures, lambda v: v == injected_failures),
        ("most managed endpoints of one locale", max(f["mostManagedEndpoints"] for f in locales), 1,
         lambda v: v <= 1),
        ("regressing candidates the quality gate held back (never served)",
         sum(1 for f in locales for h in f["heldBack"] if h["gate"] == "failed" and not h["served"]),
         sum(f["regressions"] for f in locales), lambda v: v == sum(f["regressions"] for f in locales)),
        ("duplicate models or datasets", len(report["duplicates"]["models"]) + len(report["duplicates"]["datasets"]),
         0, lambda v: v == 0),
        ("webhook posts (ALERT_WEBHOOK_MIN_SEVERITY=warning, the default)", report["webhook"]["posts"],
         f"< {MAX_WEBHOOK_POSTS}", lambda v: v < MAX_WEBHOOK_POSTS),
        ("webhook posts that are actionable or report a hands-off action on a serving model",
         f"{report['webhook']['worthReading']} of {report['webhook']['posts']}", "all",
         lambda v: report["webhook"]["worthReading"] == report["webhook"]["posts"]),
        ("incidents whose zip never reached the endpoint", sum(1 for i in report["incidents"] if not i["servedFrom"]),
         0, lambda v: v == 0),
        (f"most API calls in any {RATE_LIMIT_SECONDS} s", report["api"]["maxIn10Seconds"],
         f"far below {RATE_LIMIT_CALLS}", lambda v: v < RATE_LIMIT_CALLS // 2),
    ]  # fmt: skip
    return [{"goal": name, "value": value, "target": target, "met": met(value)} for name, value, target, met in checks]


# -- the report --------------------------------------------------------------------------------------------------


def render_markdown(report: dict) -> str:
    p, api = report["parameters"], report["api"]
    lines = [
        f"# Soak: {p['days']} simulated days of hands-off operation",
        "",
        f"{p['days']} simulated days ({p['start'][:10]} to {p['end'][:10]}), locales {', '.join(p['locales'])}, "
        f"seed {p['seed']}; POLL_SCHEDULE `{p['schedules']['POLL_SCHEDULE']}` (hourly), EXPIRY_SCHEDULE "
        f"`{p['schedules']['EXPIRY_SCHEDULE']}` (daily); datasets {p['durationsSeconds']['dataset'] // 3600} h, "
        f"training {p['durationsSeconds']['model'] // 3600} h, evaluations "
        f"{p['durationsSeconds']['evaluation'] // 3600} h, endpoints {p['durationsSeconds']['endpoint'] // 60} "
        f"min; a test set per locale, one regressing candidate. {report['ticks']} host rounds in "
        f"{report['wallSeconds']} s of wall time.",
        "",
        "![timeline](soak-timeline.svg)",
        "",
        "## Goals",
        "",
        "| goal | result | target | met |",
        "|---|---|---|---|",
        *[
            f"| {g['goal']} | {g['value']} | {g['target']} | {'yes' if g['met'] else '**no**'} |"
            for g in report["goals"]
        ],
        "",
        "## Per locale",
        "",
        "| locale | days on an expired model | drop batches | data-change trainings | expiry retrains | failed "
        "trainings | evaluations | passed the gate | held back by the gate | managed endpoints |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for locale, f in report["locales"].items():
        lines.append(
            f"| {locale} | {len(f['expiredDays'])} | {f['dropBatches']} | {f['dataTrainings']} (expected "
            f"{f['expectedDataTrainings']}) | {f['expiryRetrains']} | {f['failedTrainings']} | {f['evaluations']} | "
            f"{f['gatePassed']} | {len(f['heldBack'])} (regressions injected: {f['regressions']}) | "
            f"{f['mostManagedEndpoints']} |"
        )
    lines += ["", "## Trainings", ""]
    for locale, f in report["locales"].items():
        lines += [
            f"**{locale}**",
            "",
            "| created | why | base model | datasets | status | quality gate (word error rate) | served |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in f["trainings"]:
            served = ", ".join(f"{s['from'][:10]} to {s['until'][:10]}" for s in t["served"]) or "-"
            gate = t["gate"] or "-"
            if t["wordErrorRate"]:
                gate += f" ({float(t['wordErrorRate']):.1%})"
            lines.append(
                f"| {t['created'][:16]} | {t['why']} | {t['baseModel']} | {t['datasets']} | {t['status']} | {gate} | "
                f"{served} |"
            )
        lines.append("")
    lines += webhook_section(report["webhook"])
    lines += alert_section(report["alerts"])
    lines += [
        "## API calls",
        "",
        f"- per simulated day, as run: max {api['perDayMax']}, mean {api['perDayMean']} ({api['total']} calls, "
        f"{api['pollRuns']} poll runs, {api['functionRuns']} function runs, {api['failedFunctionRuns']} failed)",
        f"- per simulated day with every hourly poll the quiet stretches skipped ({api['quietPollCalls']} calls "
        f"each): max {api['perDayMaxAsScheduled']}, mean {api['perDayMeanAsScheduled']}",
        f"- most calls in any {RATE_LIMIT_SECONDS} s of simulated time: {api['maxIn10Seconds']} (the service allows "
        f"{RATE_LIMIT_CALLS}; the calls of one round share one simulated instant, so this is an upper bound); most "
        f"in one function run: {api['maxInOneRun']}",
        f"- at the production POLL_SCHEDULE (every 5 minutes) quiet polls alone cost "
        f"{api['productionQuietPollsPerDay']} calls a day",
        f"- answered 429: {api['answered429']}, answered 5xx: {api['answered5xx']} (injected)",
        "",
        "## Incidents",
        "",
        "| incident | from | until | fault answers | failed function runs | failed trainings | its zip served from |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in report["incidents"]:
        served = f"{i['servedFrom'][:16]} ({i['hoursFromDrop']} h after the drop)" if i["servedFrom"] else "never"
        lines.append(
            f"| {i['kind']} ({i['locale']}) | {i['from'][:16]} | {(i['until'] or '-')[:16]} | "
            f"{i['faultAnswers']} | {i['failedRuns']} | {i['failedTrainings']} | {served} |"
        )
    return "\n".join(lines) + "\n"


def webhook_section(webhook: dict) -> list[str]:
    posts, worth = webhook["posts"], webhook["worthReading"]
    lines = [
        "## Webhook",
        "",
        f"**{posts} posts** to ALERT_WEBHOOK_URL in the whole run (a receiver on "
        f"loopback; ALERT_WEBHOOK_MIN_SEVERITY={webhook['minSeverity']}, the default: informational alerts stay on the "
        f"queue and in the log). **{worth} of {posts} ({webhook['ratio']:.0%})** are worth reading: actionable (a "
        "person has to act) or reporting a hands-off action the app took on a model serving the endpoint (an "
        "expiry warning that says which retrain it started).",
        "",
        "| kind | posts | actionable | hands-off action reported | neither |",
        "|---|---|---|---|---|",
        *[
            f"| {kind} | {c.get('posted', 0)} | {c.get('actionable', 0)} | {c.get('hands-off', 0)} | "
            f"{c.get('other', 0)} |"
            for kind, c in webhook["byKind"].items()
        ],
        "",
        "| at | kind | severity | locale | worth | what followed |",
        "|---|---|---|---|---|---|",
        *[
            f"| {p['at'][:16]} | {p['kind']} | {p['severity']} | {p['locale']} | {p['worth']} | {p['note'] or '-'} |"
            for p in webhook["list"]
        ],
        "",
    ]
    return lines


def alert_section(alerts: dict) -> list[str]:
    lines = [
        "## Alerts on the queue",
        "",
        f"{alerts['distinct']} distinct alerts ({alerts['delivered']} delivered to ALERT_QUEUE, every severity). "
        "Actionable: a person has to do "
        "something (zip-rejected, dataset-failed, model-failed, deploy-poisoned, retrain-impossible, ...); "
        "informational: endpoint-deployed, and model-expiring / model-expired about a model the endpoint had moved "
        "on from before its expiry date.",
        "",
        "| kind | actionable | informational |",
        "|---|---|---|",
        *[
            f"| {kind} | {c.get('actionable', 0)} | {c.get('informational', 0)} |"
            for kind, c in alerts["byKind"].items()
        ],
        "",
        "| at | kind | locale | actionable | what followed |",
        "|---|---|---|---|---|",
    ]
    for a in alerts["list"]:
        if a["kind"] != "endpoint-deployed":
            lines.append(
                f"| {a['at'][:16]} | {a['kind']} | {a['locale']} | {'yes' if a['actionable'] else 'no'} | "
                f"{a['note'] or '-'} |"
            )
    return lines + ["", "endpoint-deployed alerts are left out of the list.", ""]


def write_outputs(report: dict, out: Path, docs: Path | None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    markdown, svg = render_markdown(report), timeline_svg(report)
    written = [out / "soak-report.md", out / "soak-report.json", out / "soak-timeline.svg"]
    written[0].write_text(markdown, encoding="utf-8")
    written[1].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    written[2].write_text(svg, encoding="utf-8")
    if docs:
        docs.mkdir(parents=True, exist_ok=True)
        (docs / "soak-report.md").write_text(markdown, encoding="utf-8")
        (docs / "soak-timeline.svg").write_text(svg, encoding="utf-8")
        written += [docs / "soak-report.md", docs / "soak-timeline.svg"]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Three simulated years of the autopilot against the Speech emulator.")
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--locales", default="en-US,de-DE", help="comma-separated; the first one gets the incidents")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--docs", action="store_true", help="also write docs/soak-report.md and docs/soak-timeline.svg")
    args = parser.parse_args(argv)
    started = time.monotonic()
    logging.getLogger().addHandler(logging.NullHandler())  # keep library chatter off the console
    args.out.mkdir(parents=True, exist_ok=True)
    with Azurite() as azurite:
        result = simulate(
            azurite,
            locales=[x.strip() for x in args.locales.split(",") if x.strip()],
            days=round(args.years * 365.25),
            seed=args.seed,
            log_path=args.out / "soak.log",
        )
    report = build_report(result)
    written = write_outputs(report, args.out, ROOT / "docs" if args.docs else None)
    print(render_markdown(report))
    print("Wrote " + ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in written))
    print(
        f"Soak: {result.wall_seconds:.1f} s of wall time for {report['parameters']['days']} simulated days "
        f"({time.monotonic() - started:.1f} s with Azurite's start and stop)."
    )
    return 0 if all(g["met"] for g in report["goals"]) else 1


if __name__ == "__main__":
    sys.exit(main())
