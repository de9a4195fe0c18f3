"""The reconcile loop's decisions: pure functions from a snapshot (the zips, the Speech resource, a clock) to
actions. Desired state = the zips in the training container and the datasets uploaded in blocks from outside it
(`upload:` sources, the newest of each); actual state = datasets, models, endpoints.

Nothing here does I/O. The timers gather a Snapshot under the autopilot lock, call plan_poll / plan_expiry and
carry out the returned actions; running a plan twice on the state it produced returns nothing new.

Cost: linear in the snapshot. Every lookup goes through the snapshot's `index` (SnapshotIndex), built once per
snapshot in one pass over each collection: datasets by (sourcePath, sourceEtag), models by id, the managed
endpoint of each locale, base models by locale, the locales' states with their newest models. No planner step
scans a collection once per item of another.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Iterable, Mapping, Sequence, Union

from shared import managed, quality
from shared.alerts import Alert, make_alert
from shared.clock import utc
from shared.ingest import Target, parse_blob_name, source_path
from shared.quarters import custom_model_expiry
from shared.speech import BaseModel, CustomModel, Dataset, Endpoint, Evaluation, parse_time
from shared.storage import BlobState, ZipBlob

ACTIVE = frozenset({"NotStarted", "Running"})
MAX_SWEEP_PER_PASS = 5  # zips one pass ingests (each re-lists datasets under the lock); the rest wait for the next
MAX_RETRAIN_ATTEMPTS = 3  # expiry retrains of one serving model
RETRAIN_IMPOSSIBLE_HORIZON_DAYS = 90  # warn this far ahead when no base model can adapt the data any more
CRITICAL_TIER_DAYS = 7  # expiry warnings at or below this many days are critical
DEPLOY_RETRY_DAYS = 2  # a deploy request that has not reached an untouched endpoint by then is sent again
# A zip's dataset still NotStarted/Running this long after it was created, or a zip still without a dataset this long
# after it was last modified, stops holding its locale's training back and raises one `dataset-stuck` alert.
PENDING_DEADLINE = timedelta(hours=24)
STUCK = "stuck"  # the alert token of dataset-stuck (on the dataset's customProperties, or on the zip's state)


# -- snapshot and actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a pass saw. Immutable: make a changed copy with dataclasses.replace, never mutate its sequences (the
    index is built once, on first use)."""

    now: datetime
    container: str
    zips: Sequence[ZipBlob]
    datasets: Sequence[Dataset]
    models: Sequence[CustomModel]
    base_models: Sequence[BaseModel]
    endpoints: Sequence[Endpoint]
    evaluations: Sequence[Evaluation] = ()
    storage_now: datetime | None = None  # the storage service's time of the zip listing (zips' ages), else `now`

    @cached_property
    def index(self) -> SnapshotIndex:
        return SnapshotIndex(self)


@dataclass(frozen=True)
class Ingest:
    """Sweep: a zip that no event turned into a dataset or a rejection yet."""

    blob_name: str


@dataclass(frozen=True)
class RecordState:
    """Record the app's state on a zip (its metadata), written against the version the snapshot listed."""

    blob_name: str
    etag: str
    metadata: Mapping[str, str]
    state: BlobState


@dataclass(frozen=True)
class CreateModel:
    locale: str
    base_model_id: str
    dataset_ids: tuple[str, ...]
    display_name: str
    description: str
    custom_properties: Mapping[str, str]


@dataclass(frozen=True)
class CreateEvaluation:
    """The quality gate's evaluation of a candidate model (model2) against model1 on a test dataset."""

    locale: str
    model1: str  # self URI: the model the endpoint serves, or the candidate's base model
    model2: str  # self URI of the candidate
    dataset: str  # test dataset id
    display_name: str
    description: str
    custom_properties: Mapping[str, str]


@dataclass(frozen=True)
class UpdateProperties:
    collection: str  # "datasets" | "models" | "endpoints" | "evaluations"
    id: str
    custom_properties: Mapping[str, str]


@dataclass(frozen=True)
class RequestDeploy:
    locale: str
    model: str  # self URI
    reason: str

    def message(self) -> dict[str, str]:
        return {"locale": self.locale, "model": self.model, "reason": self.reason}


@dataclass(frozen=True)
class Raise:
    alert: Alert


Action = Union[Ingest, RecordState, CreateModel, CreateEvaluation, UpdateProperties, RequestDeploy, Raise]


# -- views over a snapshot -------------------------------------------------------------------------------------


def _newest(items: Iterable, key=lambda item: item.created):
    items = [item for item in items if key(item) is not None]
    return max(items, key=key, default=None)


@dataclass
class LocaleState:
    """What one locale looks like: its zips' datasets, the desired set, what is pending, its models."""

    locale: str
    desired: dict[str, Dataset] = field(default_factory=dict)  # dataset id -> dataset
    pending: list[str] = field(default_factory=list)  # blob names whose dataset is not ready yet
    stuck: list[str] = field(default_factory=list)  # pending past PENDING_DEADLINE: they hold nothing back any more
    models: list[CustomModel] = field(default_factory=list)  # managed, any status
    endpoint: Endpoint | None = None
    tests: dict[str, Dataset] = field(default_factory=dict)  # test zips' Succeeded datasets (never trained on)
    tests_pending: list[str] = field(default_factory=list)  # test zips whose dataset is not ready yet

    def ready(self, test: bool) -> dict[str, Dataset]:
        return self.tests if test else self.desired

    def waiting(self, test: bool) -> list[str]:
        return self.tests_pending if test else self.pending

    @property
    def newest_test(self) -> Dataset | None:
        return _newest(self.tests.values())

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(d.kind for d in self.desired.values())

    @property
    def training(self) -> bool:
        return any(m.status in ACTIVE for m in self.models)

    @property
    def newest_model(self) -> CustomModel | None:
        return _newest(self.models)

    @property
    def newest_succeeded(self) -> CustomModel | None:
        return _newest(m for m in self.models if m.status == "Succeeded")


def zip_dataset(snapshot: Snapshot, blob: ZipBlob) -> Dataset | None:
    """The managed dataset made from this zip's content (as its state records it), if any. A zip the previous
    release handled (datasets keyed on the ETag, no state yet) matches while its ETag is unchanged. A dataset still
    being uploaded in blocks does not count: the sweep hands the zip to the ingest again, which resumes it."""
    return snapshot.index.zip_dataset(snapshot.container, blob)


def current_uploads(datasets: Iterable[Dataset]) -> dict[str, Dataset]:
    """sourcePath -> the dataset of the newest upload to an `upload:` path (the CLI's block uploads): managed,
    blocks committed, not superseded by another committed upload of the same path. An upload still in progress
    is no data yet, so the dataset it would supersede stays until its blocks are committed."""
    by_source: dict[str, list[Dataset]] = {}
    for dataset in datasets:
        source = dataset.custom_properties.get(managed.SOURCE, "")
        if (
            managed.is_managed(dataset)
            and source.startswith(managed.UPLOAD_SOURCE_PREFIX)
            and not managed.upload_incomplete(dataset)
        ):
            by_source.setdefault(source, []).append(dataset)
    current: dict[str, Dataset] = {}
    for source, group in by_source.items():
        ids = {d.id for d in group}
        live = [d for d in group if d.custom_properties.get(managed.SUPERSEDED_BY) not in ids]
        current[source] = max(live or group, key=lambda d: (d.created is not None, d.created, d.id))
    return current


def overdue(since: datetime | None, now: datetime) -> bool:
    """Pending for PENDING_DEADLINE or longer since `since`."""
    return since is not None and now - since >= PENDING_DEADLINE


def zip_overdue(snapshot: Snapshot, blob: ZipBlob) -> bool:
    """A zip without a dataset that has waited too long: last modified PENDING_DEADLINE ago on the storage clock,
    or already reported stuck (recording that changed its last_modified)."""
    return STUCK in _tokens(blob.state.alerted) or overdue(blob.last_modified, snapshot.storage_now or snapshot.now)


def _tokens(value: str | None) -> frozenset[str]:
    return frozenset(token for token in (value or "").split(",") if token)


def managed_endpoints(endpoints: Iterable[Endpoint]) -> dict[str, Endpoint]:
    """locale -> the locale's managed endpoint (the oldest, should there ever be two)."""
    found: dict[str, Endpoint] = {}
    for endpoint in sorted(endpoints, key=lambda e: (e.created is None, e.created)):
        if managed.is_managed(endpoint):
            found.setdefault(endpoint.locale, endpoint)
    return found


def locale_states(snapshot: Snapshot) -> dict[str, LocaleState]:
    """locale -> its state; computed once per snapshot (treat the states as read-only)."""
    return snapshot.index.states


def _locale_states(snapshot: Snapshot, index: SnapshotIndex) -> dict[str, LocaleState]:
    """Built while the index is (so it uses the index's own lookups, never snapshot.index)."""
    states: dict[str, LocaleState] = {}

    def state(locale: str) -> LocaleState:
        return states.setdefault(locale, LocaleState(locale))

    for blob in snapshot.zips:
        target = parse_blob_name(blob.name)
        if not isinstance(target, Target):
            continue
        dataset = index.zip_dataset(snapshot.container, blob)
        if dataset is None:
            if not rejected_version(blob):
                waiting = state(target.locale)
                (waiting.stuck if zip_overdue(snapshot, blob) else waiting.waiting(target.test)).append(blob.name)
        elif dataset.status == "Succeeded":
            state(dataset.locale).ready(target.test)[dataset.id] = dataset
        elif dataset.status in ACTIVE:
            waiting = state(dataset.locale)
            bucket = waiting.stuck if overdue(dataset.created, snapshot.now) else waiting.waiting(target.test)
            bucket.append(blob.name)
    for source, dataset in current_uploads(snapshot.datasets).items():  # like zips: the newest version counts
        if dataset.status == "Succeeded":
            state(dataset.locale).desired[dataset.id] = dataset
        elif dataset.status in ACTIVE:
            state(dataset.locale).pending.append(source)
    for model in snapshot.models:
        if managed.is_managed(model):
            state(model.locale).models.append(model)
    for locale, endpoint in index.endpoints.items():
        state(locale).endpoint = endpoint
    return states


class SnapshotIndex:
    """The lookups the planners make, built once per snapshot (Snapshot.index): one pass over each collection.
    It holds no reference to its snapshot, so a pass's snapshot is freed as soon as the pass drops it (a cycle
    would keep tens of thousands of entities alive until the garbage collector's next full run)."""

    def __init__(self, snapshot: Snapshot) -> None:
        # (sourcePath, sourceContent) -> the first listed managed dataset made from that content of the zip, and
        # (sourcePath, "etag:" + sourceEtag) for the previous release's datasets; unfinished block uploads hold no data
        self.by_source: dict[tuple[str, str], Dataset] = {}
        self.dataset_kinds: dict[str, set[str]] = {}  # dataset id -> its kind
        self.test_datasets: set[str] = set()
        for dataset in snapshot.datasets:
            self.dataset_kinds.setdefault(dataset.id, set()).add(dataset.kind)
            if managed.is_test_data(dataset):
                self.test_datasets.add(dataset.id)
            if managed.is_managed(dataset) and not managed.upload_incomplete(dataset):
                props = dataset.custom_properties
                path = props.get(managed.SOURCE)
                if path is None:
                    continue
                if props.get(managed.SOURCE_CONTENT):
                    self.by_source.setdefault((path, props[managed.SOURCE_CONTENT]), dataset)
                if props.get(managed.SOURCE_ETAG):
                    self.by_source.setdefault((path, "etag:" + props[managed.SOURCE_ETAG]), dataset)
        self.models_by_id = {m.id: m for m in snapshot.models}
        self.endpoints = managed_endpoints(snapshot.endpoints)  # locale -> the locale's managed endpoint
        self.bases_by_locale: dict[str, list[BaseModel]] = {}
        for base in snapshot.base_models:
            self.bases_by_locale.setdefault(base.locale, []).append(base)
        # (locale, id of the model replaced) -> expiry retrains of it among the locale's managed models
        self.retrain_tries = Counter(
            (m.locale, m.custom_properties[managed.RETRAIN_OF])
            for m in snapshot.models
            if managed.is_managed(m) and managed.RETRAIN_OF in m.custom_properties
        )
        self.states = _locale_states(snapshot, self)
        # locale -> its newest Succeeded managed model
        self.newest_succeeded = {locale: state.newest_succeeded for locale, state in self.states.items()}

    def zip_dataset(self, container: str, blob: ZipBlob) -> Dataset | None:
        path = source_path(container, blob.name)
        state = blob.state
        if state.content:
            found = self.by_source.get((path, state.content))
            if found is not None:
                return found
        return None if state.status else self.by_source.get((path, "etag:" + blob.etag))

    def bases(self, locale: str) -> list[BaseModel]:
        return self.bases_by_locale.get(locale, [])

    def kinds_of(self, dataset_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(kind for i in set(dataset_ids) for kind in self.dataset_kinds.get(i, ()))


def adaptable_base(
    base_models: Iterable[BaseModel], locale: str, kinds: frozenset[str], now: datetime
) -> BaseModel | None:
    """The newest base model of the locale that can still be trained with these kinds of data."""
    return _newest(
        b
        for b in base_models
        if b.locale == locale
        and kinds <= b.adapts_with
        and b.adaptation_expiry is not None
        and b.adaptation_expiry > now
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def train(
    state: LocaleState,
    dataset_ids: Sequence[str],
    base: BaseModel,
    now: datetime,
    reason: str,
    retrain_of: str | None = None,
) -> CreateModel:
    digest = managed.dataset_set_digest(dataset_ids)
    props = {managed.DATASET_SET: digest, managed.BASE_MODEL: base.id, managed.REASON: reason}
    if retrain_of:
        props[managed.RETRAIN_OF] = retrain_of
    why = "its data changed" if reason == "trained" else f"model {retrain_of} is about to expire"
    return CreateModel(
        locale=state.locale,
        base_model_id=base.id,
        dataset_ids=tuple(sorted(dataset_ids)),
        display_name=f"autopilot-{state.locale}-{now.strftime('%Y%m%d-%H%M%S')}",
        description=(
            f"Trained by {managed.MANAGED_BY} on {len(dataset_ids)} dataset(s) "
            f"from {base.display_name or base.id} because {why}."
        ),
        custom_properties=managed.managed_properties(**props),
    )


# -- the poll / reconcile timer --------------------------------------------------------------------------------


def plan_poll(
    snapshot: Snapshot, *, auto_deploy: bool, auto_retrain: bool = True, gate: quality.Quality = quality.DEFAULT
) -> list[Action]:
    """AUTO_DEPLOY deploys every newly trained model; AUTO_RETRAIN alone still deploys its expiry retrains. Either
    way through the quality gate (`gate`: QUALITY_GATE and its allowances)."""
    actions: list[Action] = []
    actions += _sweep(snapshot)
    actions += _supersede(snapshot)
    actions += _dataset_outcomes(snapshot)
    actions += _stuck(snapshot)
    judge = Gate(snapshot, gate)
    for state in locale_states(snapshot).values():
        actions += _train_on_change(snapshot, state)
        actions += _model_failures(snapshot, state)
        if auto_deploy or auto_retrain:
            actions += _deploy_newest(snapshot, state, expiry_only=not auto_deploy, gate=judge)
    actions += _endpoint_outcomes(snapshot)
    return actions


def rejected_version(blob: ZipBlob) -> bool:
    """The zip's state says its content was rejected (a re-upload replaces the metadata, and with it the state)."""
    return blob.state.status == "rejected"


def _sweep(snapshot: Snapshot) -> list[Action]:
    """Zips with no dataset for their current version and no rejection: events missed, late, or a dataset
    deleted by hand. The ingest looks up before creating, so a late event and the sweep never make two.
    At most MAX_SWEEP_PER_PASS a pass, from a window that moves with the pass time (sweep_start): zips whose
    ingest fails every time cannot keep the others out."""
    missing = [
        Ingest(blob.name)
        for blob in snapshot.zips
        if not rejected_version(blob) and zip_dataset(snapshot, blob) is None
    ]
    start = sweep_start(len(missing), snapshot.now)
    return [missing[(start + i) % len(missing)] for i in range(min(len(missing), MAX_SWEEP_PER_PASS))]


_GOLDEN = (5**0.5 - 1) / 2


def sweep_start(count: int, now: datetime) -> int:
    """Where this pass's window over `count` missing zips starts. The pass time (whole seconds) times the golden
    ratio, modulo 1, spreads the starts of successive passes evenly over the list whatever the schedule (no
    period of the timer lines up with it), so every missing zip gets a slot within a few passes."""
    if count <= MAX_SWEEP_PER_PASS:
        return 0
    return int((int(now.timestamp()) * _GOLDEN) % 1.0 * count)


def _supersede(snapshot: Snapshot) -> list[Action]:
    """A zip's other datasets (made from content it no longer holds) are marked supersededBy its current one; the
    current one loses a mark it may carry (the zip went back to older content)."""
    current = {}
    for blob in snapshot.zips:
        dataset = zip_dataset(snapshot, blob)
        if dataset is not None:
            current[source_path(snapshot.container, blob.name)] = dataset
    actions: list[Action] = []
    for dataset in snapshot.datasets:
        props = dataset.custom_properties
        newer = current.get(props.get(managed.SOURCE, "")) if managed.is_managed(dataset) else None
        if newer is None:
            continue
        marked = props.get(managed.SUPERSEDED_BY)
        if dataset.id == newer.id and marked:
            actions.append(
                UpdateProperties(
                    "datasets", dataset.id, managed.with_properties(props, **{managed.SUPERSEDED_BY: None})
                )
            )
        elif dataset.id != newer.id and not marked:
            try:
                props = managed.with_properties(props, **{managed.SUPERSEDED_BY: newer.id})
            except ValueError:  # a person filled all 10 entries: the mark is left out, the pass goes on
                continue
            actions.append(UpdateProperties("datasets", dataset.id, props))
    return actions


def _dataset_outcomes(snapshot: Snapshot) -> list[Action]:
    """Failed datasets raise one alert each; the zip's state follows its dataset's outcome."""
    actions: list[Action] = []
    for blob in snapshot.zips:
        dataset = zip_dataset(snapshot, blob)
        status = {"Succeeded": "succeeded", "Failed": "failed"}.get(dataset.status) if dataset else None
        if dataset is None or status is None:
            continue
        content = blob.state.content or dataset.custom_properties.get(managed.SOURCE_CONTENT)
        reason = f"{dataset.error.code}: {dataset.error.message}" if dataset.error else None
        state = BlobState(status=status, content=content, dataset=dataset.id, reason=reason)
        current = blob.state
        if (current.status, current.content, current.dataset) != (state.status, state.content, state.dataset):
            actions.append(RecordState(blob.name, blob.etag, blob.metadata, state))
    for dataset in snapshot.datasets:
        if managed.is_managed(dataset) and dataset.status == "Failed" and "failed" not in managed.alerted(dataset):
            error = dataset.error
            path = dataset.custom_properties.get(managed.SOURCE, dataset.id)
            actions.append(
                Raise(
                    make_alert(
                        "dataset-failed",
                        resource=path,
                        locale=dataset.locale,
                        message=f"Dataset {dataset.id} from {path} failed processing: "
                        f"{error.message if error else 'no reason given'}",
                        details={
                            "dataset": dataset.self_uri,
                            "code": error.code if error else None,
                            "error": error.message if error else None,
                        },
                        at=snapshot.now,
                        key=dataset.id,
                    )
                )
            )
            actions.append(
                UpdateProperties("datasets", dataset.id, managed.with_alerted(dataset.custom_properties, "failed"))
            )
    return actions


def _stuck(snapshot: Snapshot) -> list[Action]:
    """A zip's dataset still NotStarted/Running PENDING_DEADLINE after it was created (its SAS may have expired
    before the service fetched it), or a zip still without a dataset that long after it was modified (its ingest
    keeps failing): it no longer holds its locale's training back (locale_states) and raises one `dataset-stuck`
    alert, its token on the dataset, or on the zip's state when there is no dataset."""
    actions: list[Action] = []
    for blob in snapshot.zips:
        target = parse_blob_name(blob.name)
        if not isinstance(target, Target) or rejected_version(blob):
            continue
        path = source_path(snapshot.container, blob.name)
        dataset = zip_dataset(snapshot, blob)
        if dataset is None:
            if not zip_overdue(snapshot, blob) or STUCK in _tokens(blob.state.alerted):
                continue
            since = blob.last_modified
            alert = _stuck_alert(snapshot, target.locale, path, path, since, None, key=blob.state.content or blob.etag)
            state = dataclasses.replace(blob.state, alerted=",".join(sorted(_tokens(blob.state.alerted) | {STUCK})))
            actions += [Raise(alert), RecordState(blob.name, blob.etag, blob.metadata, state)]
        elif dataset.status in ACTIVE and overdue(dataset.created, snapshot.now):
            if STUCK in managed.alerted(dataset):
                continue
            alert = _stuck_alert(snapshot, dataset.locale, dataset.self_uri, path, dataset.created, dataset, dataset.id)
            props = managed.with_alerted(dataset.custom_properties, STUCK)
            actions += [Raise(alert), UpdateProperties("datasets", dataset.id, props)]
    return actions


def _stuck_alert(
    snapshot: Snapshot,
    locale: str,
    resource: str,
    path: str,
    since: datetime | None,
    dataset: Dataset | None,
    key: str,
) -> Alert:
    hours = int((snapshot.now - since).total_seconds() // 3600) if since else None
    waited = f"for {hours} hours" if hours is not None else "for too long"
    if dataset is None:
        message = (
            f"{path} has had no dataset {waited}: its ingest keeps failing (see the sweep's warnings). "
            f"Training of {locale} goes on without it; the sweep keeps trying."
        )
    else:
        message = (
            f"Dataset {dataset.id} from {path} has been {dataset.status} {waited} (its contentUrl SAS may have "
            f"expired before the service fetched it). Training of {locale} goes on without it; delete the dataset "
            "and the next pass ingests the zip again."
        )
    return make_alert(
        "dataset-stuck",
        resource=resource,
        locale=locale,
        message=message,
        details={
            "zip": path,
            "dataset": dataset.self_uri if dataset else None,
            "status": dataset.status if dataset else None,
            "since": _iso(since) if since else None,
            "deadlineHours": int(PENDING_DEADLINE.total_seconds() // 3600),
        },
        at=snapshot.now,
        key=key,
    )


def training_set(snapshot: Snapshot, state: LocaleState) -> tuple[list[str], BaseModel | None]:
    """The datasets to train on and the base model to train from. Audio without transcripts (AudioFiles) joins
    the set only where a base model adapts with it; otherwise the rest of the data still trains."""
    ids = sorted(state.desired)
    bases = snapshot.index.bases(state.locale)
    base = adaptable_base(bases, state.locale, state.kinds, snapshot.now)
    if base is None and "AudioFiles" in state.kinds:
        ids = sorted(i for i, d in state.desired.items() if d.kind != "AudioFiles")
        kinds = frozenset(state.desired[i].kind for i in ids)
        base = adaptable_base(bases, state.locale, kinds, snapshot.now) if ids else None
    return ids, base


def _train_on_change(snapshot: Snapshot, state: LocaleState) -> list[Action]:
    """A failed training is not repeated on the same data (model-failed tells a person); new data trains again."""
    if not state.desired or state.pending or state.training:
        return []
    ids, base = training_set(snapshot, state)
    digest = managed.dataset_set_digest(ids if base else state.desired)
    newest = state.newest_model
    if newest is not None and managed.model_dataset_digest(newest) == digest:
        return []
    if base is None:
        return _no_base_model(snapshot, state, digest)
    return [train(state, ids, base, snapshot.now, "trained")]


def _no_base_model(snapshot: Snapshot, state: LocaleState, digest: str) -> list[Action]:
    """Alert once per dataset set: the token sits on the set's newest dataset."""
    newest = _newest(state.desired.values())
    token = f"nobase-{digest[:8]}"
    if newest is None or token in managed.alerted(newest):
        return []
    kinds = ", ".join(sorted(state.kinds))
    alert = make_alert(
        "no-base-model",
        resource=state.locale,
        locale=state.locale,
        message=f"No base model for {state.locale} can still be trained with {kinds} data; "
        f"{len(state.desired)} dataset(s) wait for one.",
        details={"kinds": sorted(state.kinds), "datasets": sorted(state.desired)},
        at=snapshot.now,
        key=digest,
    )
    return [
        Raise(alert),
        UpdateProperties("datasets", newest.id, managed.with_alerted(newest.custom_properties, token)),
    ]


def _model_failures(snapshot: Snapshot, state: LocaleState) -> list[Action]:
    actions: list[Action] = []
    for model in state.models:
        if model.status == "Failed" and "failed" not in managed.alerted(model):
            error = model.error
            actions.append(
                Raise(
                    make_alert(
                        "model-failed",
                        resource=model.self_uri,
                        locale=model.locale,
                        message=f"Training of model {model.display_name} ({model.id}) failed: "
                        f"{error.message if error else 'no reason given'}",
                        details={
                            "model": model.self_uri,
                            "code": error.code if error else None,
                            "error": error.message if error else None,
                            "reason": model.custom_properties.get(managed.REASON),
                        },
                        at=snapshot.now,
                        key=model.id,
                    )
                )
            )
            actions.append(
                UpdateProperties("models", model.id, managed.with_alerted(model.custom_properties, "failed"))
            )
    return actions


def _deploy_newest(
    snapshot: Snapshot, state: LocaleState, *, expiry_only: bool = False, gate: Gate | None = None
) -> list[Action]:
    """The newest trained model goes to the locale's endpoint. A request that has not landed DEPLOY_RETRY_DAYS
    later, while nobody changed the endpoint, is sent again: its message may have ended in the poison queue, and
    an expiring model with an undeployed replacement is never retrained. An operator's rollback changes the
    endpoint after the request, so it is not undone."""
    model = state.newest_succeeded
    if model is None or (state.endpoint is not None and state.endpoint.model_id == model.id):
        return []
    expiry = expiry_of(model)  # the service's date, or the quarter rule where it gives none (as plan_deploy)
    if expiry is not None and expiry <= snapshot.now:
        return []
    if not _deploy_due(model, state.endpoint, snapshot.now):
        return []
    reason = model.custom_properties.get(managed.REASON, "trained")
    if expiry_only and reason != "expiry":
        return []
    step = gate.step(state, model) if gate is not None else GateStep(open=True)
    if not step.open:
        return step.actions
    try:
        props = managed.with_properties(model.custom_properties, **{managed.DEPLOY_REQUESTED: _iso(snapshot.now)})
    except ValueError:  # a person filled all 10 entries: the request goes out, and again each pass until it lands
        props = dict(model.custom_properties)
    props = quality.record(props, *step.record) if step.record else props
    record = [UpdateProperties("models", model.id, props)] if props != dict(model.custom_properties) else []
    return [*step.actions, RequestDeploy(state.locale, model.self_uri, reason), *record]


def _deploy_due(model: CustomModel, endpoint: Endpoint | None, now: datetime) -> bool:
    value = model.custom_properties.get(managed.DEPLOY_REQUESTED)
    if not value:
        return True
    try:
        requested = parse_time(value)
    except ValueError:  # not a time we wrote: leave the model alone
        return False
    if requested is None or now - requested < timedelta(days=DEPLOY_RETRY_DAYS):
        return False
    return endpoint is None or endpoint.last_action is None or endpoint.last_action <= requested


def _endpoint_outcomes(snapshot: Snapshot) -> list[Action]:
    """One info alert when a managed endpoint finishes deploying a model; one critical alert if it fails."""
    actions: list[Action] = []
    for endpoint in snapshot.endpoints:
        if not managed.is_managed(endpoint) or endpoint.status not in ("Succeeded", "Failed"):
            continue
        outcome = "deployed" if endpoint.status == "Succeeded" else "failed"
        token = f"{outcome}:{endpoint.model_id}"
        if token in managed.alerted(endpoint):
            continue
        error = endpoint.error
        kind = "endpoint-deployed" if outcome == "deployed" else "endpoint-failed"
        message = (
            f"Endpoint {endpoint.display_name} ({endpoint.id}) now serves model {endpoint.model_id}."
            if outcome == "deployed"
            else f"Endpoint {endpoint.display_name} ({endpoint.id}) failed to deploy model {endpoint.model_id}: "
            f"{error.message if error else 'no reason given'}"
        )
        actions.append(
            Raise(
                make_alert(
                    kind,
                    resource=endpoint.self_uri,
                    locale=endpoint.locale,
                    message=message,
                    details={
                        "endpoint": endpoint.self_uri,
                        "model": endpoint.model_uri,
                        **({"code": error.code, "error": error.message} if error else {}),
                    },
                    at=snapshot.now,
                    # a later deployment of the same model (a rollback) is another event: it needs another id
                    key=f"{token}@{_iso(endpoint.last_action)}" if endpoint.last_action else token,
                )
            )
        )
        props = managed.with_alerted(endpoint.custom_properties, token, replace=True)
        actions.append(UpdateProperties("endpoints", endpoint.id, props))
    return actions


# -- the expiry timer ------------------------------------------------------------------------------------------


def expiry_of(model: CustomModel) -> datetime | None:
    """The service's transcriptionDateTime, or, where it gives none, the documented quarter rule."""
    return model.transcription_expiry or (custom_model_expiry(model.created) if model.created else None)


def days_left(model: CustomModel, now: datetime) -> int | None:
    """Whole calendar days (UTC) until the model stops transcribing; 0 = today; negative once expired."""
    expiry = expiry_of(model)
    if expiry is None:
        return None
    expiry, now = utc(expiry), utc(now)  # calendar days in UTC, whatever zone the times were given in
    if expiry <= now:
        return min(-1, (expiry.date() - now.date()).days)
    return (expiry.date() - now.date()).days


def watched_models(
    snapshot: Snapshot,
    states: Mapping[str, LocaleState] | None = None,
    *,
    auto_deploy: bool = True,
    auto_retrain: bool = True,
) -> dict[str, tuple[CustomModel, Endpoint | None]]:
    """Models whose expiry is watched: the model each managed endpoint serves, and each locale's next model on its
    way to the endpoint (see on_its_way). A model nothing serves and the app will not deploy raises no expiry
    alert: nobody has to act on it. Linear: one look per locale."""
    states = locale_states(snapshot) if states is None else states
    by_id = snapshot.index.models_by_id
    watched: dict[str, tuple[CustomModel, Endpoint | None]] = {}
    for state in states.values():
        endpoint = state.endpoint
        serving = by_id.get(endpoint.model_id or "") if endpoint is not None else None
        if serving is not None:
            watched[serving.id] = (serving, endpoint)
        newest = state.newest_succeeded
        if newest is not None and newest is not serving and on_its_way(state, newest, auto_deploy, auto_retrain):
            watched[newest.id] = (newest, None)
    return watched


def on_its_way(state: LocaleState, model: CustomModel, auto_deploy: bool, auto_retrain: bool) -> bool:
    """The locale's newest trained model (not on the endpoint) is the next one the app deploys there: the quality
    gate has not held it back, a hands-off switch deploys it, and nobody changed the endpoint after its deploy
    request (a rollback, which the app does not undo)."""
    if quality.decision_of(model) in quality.HELD_BACK:
        return False
    reason = model.custom_properties.get(managed.REASON, "trained")
    if not (auto_deploy or (auto_retrain and reason == "expiry")):
        return False
    endpoint, requested = state.endpoint, model.custom_properties.get(managed.DEPLOY_REQUESTED)
    if requested and endpoint is not None and endpoint.last_action is not None:
        try:
            at = parse_time(requested)
        except ValueError:  # not a time we wrote: the poll leaves the model alone
            return False
        return at is None or endpoint.last_action <= at
    return True


def plan_expiry(
    snapshot: Snapshot, *, tiers: Sequence[int], auto_retrain: bool, auto_deploy: bool = True
) -> list[Action]:
    """Expiry tiers of the watched models (one alert per pass and model: the tightest tier crossed, every crossed
    tier's token recorded) and hands-off retrains of serving models."""
    actions: list[Action] = []
    states = locale_states(snapshot)
    largest = max(tiers) if tiers else 0
    bases = {b.id: b for b in snapshot.base_models}
    watched = watched_models(snapshot, states, auto_deploy=auto_deploy, auto_retrain=auto_retrain)
    for model, endpoint in watched.values():
        left = days_left(model, snapshot.now)
        if left is None:
            continue
        crossed = _expiry_tokens(left, tiers) - managed.alerted(model)
        state = states.get(model.locale) or LocaleState(model.locale)
        retrain: list[Action] = []
        alerts: list[Alert] = []
        tokens = set(crossed)
        if endpoint is not None and left <= max(largest, RETRAIN_IMPOSSIBLE_HORIZON_DAYS):
            retrain, alerts, extra_tokens = _retrain(snapshot, state, model, endpoint, left, largest, auto_retrain)
            tokens |= extra_tokens
        actions += retrain
        if crossed:
            tightest = max(crossed, key=_tier_order)
            hands_off = _hands_off(state, model, endpoint, retrain, bases)
            alerts.insert(0, _expiry_alert(snapshot, model, endpoint, left, tightest, hands_off))
        if tokens:
            actions += [Raise(a) for a in alerts]
            actions.append(
                UpdateProperties(
                    "models", model.id, managed.with_alerted(model.custom_properties, *sorted(tokens, key=_tier_order))
                )
            )
    return actions


def _expiry_tokens(left: int, tiers: Sequence[int]) -> set[str]:
    if left < 0:
        return {"expired"}
    return {str(tier) for tier in tiers if left <= tier}


def _tier_order(token: str) -> tuple[int, int]:
    return (1, 0) if not token.isdigit() else (0, -int(token))


def _hands_off(
    state: LocaleState,
    model: CustomModel,
    endpoint: Endpoint | None,
    retrain: Sequence[Action],
    bases: Mapping[str, BaseModel],
) -> dict[str, str] | None:
    """What the app does about an expiring model on its own, for its alert: a retrain started in this pass, a
    replacement already trained or on its way, or, for a model not deployed yet, its own way to the endpoint."""
    create = next((a for a in retrain if isinstance(a, CreateModel)), None)
    if create is not None:
        base = bases.get(create.base_model_id)
        return {
            "action": "retrain",
            "baseModel": create.base_model_id,
            "text": f"A retrain on {len(create.dataset_ids)} dataset(s) from base model "
            f"{base.display_name if base and base.display_name else create.base_model_id} was started hands-off; "
            "it replaces the model once it passes the quality gate.",
        }
    if endpoint is None:
        return {"action": "deploy", "text": "It is the locale's next model: the app deploys it hands-off."}
    replacement = replacement_of(state, model)
    if replacement is not None:
        gate = quality.decision_of(replacement)
        where = replacement.status if replacement.status in ACTIVE else f"quality gate {gate or 'pending'}"
        return {
            "action": "replacement",
            "model": replacement.id,
            "text": f"Its replacement {replacement.display_name} ({replacement.id}, {where}) is on its way to the "
            "endpoint.",
        }
    return None


def _expiry_alert(
    snapshot: Snapshot,
    model: CustomModel,
    endpoint: Endpoint | None,
    left: int,
    token: str,
    hands_off: Mapping[str, str] | None = None,
) -> Alert:
    ends = expiry_of(model)
    expiry = ends.strftime("%Y-%m-%d") if ends else "?"
    serving = (
        f"serving endpoint {endpoint.display_name} ({endpoint.id})" if endpoint else "not deployed yet, on its way"
    )
    details: dict[str, object] = {
        "model": model.self_uri,
        "endpoint": endpoint.self_uri if endpoint else None,
        "transcriptionDateTime": _iso(ends) if ends else None,
        "daysLeft": left,
    }
    follow = ""
    if hands_off:
        details["handsOff"] = {k: v for k, v in hands_off.items() if k != "text"}
        follow = " " + hands_off["text"]
    if token == "expired":
        consequence = (
            "its endpoint now silently serves the base model and batch jobs with it fail."
            if endpoint
            else "no managed endpoint serves it; batch jobs that name it fail."
        )
        return make_alert(
            "model-expired",
            resource=model.self_uri,
            locale=model.locale,
            message=f"Model {model.display_name} ({model.id}, {serving}) expired on {expiry}: {consequence}{follow}",
            details=details,
            at=snapshot.now,
            key=model.id,
        )
    tier = int(token)
    return make_alert(
        "model-expiring",
        resource=model.self_uri,
        locale=model.locale,
        message=f"Model {model.display_name} ({model.id}, {serving}) stops transcribing on {expiry}, "
        f"in {left} day(s) ({tier}-day warning).{follow}",
        details={**details, "tier": tier},
        severity="critical" if left <= CRITICAL_TIER_DAYS else "warning",
        at=snapshot.now,
        key=f"{model.id}:{tier}",
    )


def _retrain(
    snapshot: Snapshot,
    state: LocaleState,
    serving: CustomModel,
    endpoint: Endpoint,
    left: int,
    largest: int,
    auto_retrain: bool,
) -> tuple[list[Action], list[Alert], set[str]]:
    """Hands-off retrain of an expiring serving model, or an early alert when that will be impossible."""
    if _has_replacement(state, serving):
        return [], [], set()
    if state.desired:
        dataset_ids, base = training_set(snapshot, state)
        kinds = state.kinds
    else:  # no zip left: the serving model's own datasets (never a test set)
        dataset_ids = [i for i in serving.dataset_ids if i not in snapshot.index.test_datasets]
        kinds = snapshot.index.kinds_of(dataset_ids)
        base = adaptable_base(snapshot.index.bases(serving.locale), serving.locale, kinds, snapshot.now)
    if base is None:
        if "noretrain" in managed.alerted(serving):
            return [], [], set()
        alert = make_alert(
            "retrain-impossible",
            resource=serving.self_uri,
            locale=serving.locale,
            message=f"Model {serving.display_name} ({serving.id}) serving endpoint {endpoint.display_name} expires "
            f"in {max(0, left)} day(s) and no base model for {serving.locale} can still be trained "
            f"with {', '.join(sorted(kinds)) or 'its'} data: plan a replacement.",
            details={"model": serving.self_uri, "endpoint": endpoint.self_uri, "kinds": sorted(kinds)},
            at=snapshot.now,
            key=serving.id,
        )
        return [], [alert], {"noretrain"}
    # Due when the model enters the largest tier, or earlier (within the horizon) when the best base model stops
    # adapting before then: waiting would leave nothing to train from.
    serving_expiry = expiry_of(serving)
    closes_first = (
        base.adaptation_expiry is not None
        and serving_expiry is not None
        and base.adaptation_expiry <= serving_expiry - timedelta(days=largest)
    )
    if not auto_retrain or (left > largest and not closes_first) or state.pending or state.training:
        return [], [], set()
    tries = snapshot.index.retrain_tries[(state.locale, serving.id)]
    if tries >= MAX_RETRAIN_ATTEMPTS or not dataset_ids:
        return [], [], set()
    return [train(state, dataset_ids, base, snapshot.now, "expiry", retrain_of=serving.id)], [], set()


def _has_replacement(state: LocaleState, serving: CustomModel) -> bool:
    """A newer managed model that outlives the serving one is trained, training, or on its way to the endpoint."""
    return replacement_of(state, serving) is not None


def replacement_of(state: LocaleState, serving: CustomModel) -> CustomModel | None:
    """The newest such model, if any."""
    found: list[CustomModel] = []
    serving_expiry = expiry_of(serving)
    for model in state.models:
        if model.id == serving.id or model.status == "Failed" or _held_back(model, serving):
            continue
        newer = model.created and serving.created and model.created > serving.created
        expiry = expiry_of(model)
        outlives = model.status in ACTIVE or expiry is None or serving_expiry is None or expiry > serving_expiry
        if newer and outlives:
            found.append(model)
    return _newest(found)


# -- the quality gate ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateStep:
    """What the gate says about deploying a candidate now: `open` or not, the actions it needs first (an evaluation
    to create, an alert and its token), and the decision the candidate records with its deploy request."""

    open: bool
    actions: list[Action] = field(default_factory=list)
    record: tuple[str, Evaluation | None] | None = None


class Gate:
    """The quality gate of one pass: QUALITY_GATE and its allowances over the snapshot's evaluations, models and
    base models, each indexed once, so gating every locale stays linear in the size of the snapshot.

    A candidate is the locale's newest trained model on its way to the endpoint (shared/reconcile._deploy_newest).
    With a test dataset in the locale it is judged by one evaluation on the newest one (created here, looked up by
    candidate and dataset first); without one, `auto` lets it through, `required` holds it back with an alert."""

    def __init__(self, snapshot: Snapshot, settings: quality.Quality) -> None:
        self.snapshot = snapshot
        self.settings = settings
        self.evaluations = quality.EvaluationView(snapshot.evaluations)
        self.models = {m.id: m for m in snapshot.models}
        self.bases = {b.id: b for b in snapshot.base_models}

    def step(self, state: LocaleState, candidate: CustomModel) -> GateStep:
        if self.settings.gate == "off":
            return GateStep(open=True)
        test = state.newest_test
        if test is None:
            if state.tests_pending:
                return GateStep(open=False)  # a test set is being processed: the candidate waits to be judged on it
            if self.settings.gate == "auto":
                return GateStep(open=True)
            return self._cannot_judge(
                candidate, quality.untested_alert(candidate, self.snapshot.container, self.snapshot.now)
            )
        evaluation = self.evaluations.find(candidate.id, test.id)
        if evaluation is None:
            if quality.refused_token(test.id) in managed.alerted(candidate):
                return GateStep(open=False)  # the service refused this test set for it (evaluation-error said so)
            return self._evaluate(state, candidate, test)
        if evaluation.status not in ("Succeeded", "Failed"):
            return GateStep(open=False)
        result = quality.verdict(evaluation, self.settings.allowance(candidate))
        actions = self._announce(evaluation, candidate, result)
        if result.passed:
            return GateStep(open=True, actions=actions, record=(result.decision, evaluation))
        props = quality.record(candidate.custom_properties, result.decision, evaluation)
        if props != dict(candidate.custom_properties):
            actions.append(UpdateProperties("models", candidate.id, props))
        return GateStep(open=False, actions=actions)

    def _evaluate(self, state: LocaleState, candidate: CustomModel, test: Dataset) -> GateStep:
        baseline = self._baseline(state, candidate)
        if baseline is None:
            alert = make_alert(
                "evaluation-error",
                resource=candidate.self_uri,
                locale=candidate.locale,
                message=f"The quality gate has no model to compare model {candidate.display_name} ({candidate.id}) "
                "with: the endpoint serves no usable model and its base model is gone. It is not deployed; deploy "
                "it by hand (reason manual).",
                details={"model2": candidate.id, "dataset": test.id, "decision": quality.ERROR},
                at=self.snapshot.now,
                key=f"{candidate.id}:nobaseline",
            )
            return self._cannot_judge(candidate, alert, mark="nobaseline", decision=quality.ERROR)
        why = "retrain before expiry" if quality.is_expiry_retrain(candidate) else "trained on changed data"
        create = CreateEvaluation(
            locale=state.locale,
            model1=baseline,
            model2=candidate.self_uri,
            dataset=test.id,
            display_name=f"autopilot-{state.locale}-gate-{self.snapshot.now.strftime('%Y%m%d-%H%M%S')}",
            description=f"Quality gate by {managed.MANAGED_BY}: model {candidate.id} ({why}) against "
            f"{baseline.split('?')[0].rsplit('/', 1)[-1]} on test dataset {test.id}.",
            custom_properties=quality.evaluation_properties(candidate, test),
        )
        return GateStep(open=False, actions=[create])

    def _baseline(self, state: LocaleState, candidate: CustomModel) -> str | None:
        """model1: what the endpoint serves while it can still transcribe, else the candidate's base model."""
        now = self.snapshot.now
        endpoint = state.endpoint
        if endpoint is not None and endpoint.model_id:
            serving = self.models.get(endpoint.model_id)
            if serving is not None:
                ends = expiry_of(serving)
                if serving.status == "Succeeded" and (ends is None or ends > now):
                    return serving.self_uri
            base = self.bases.get(endpoint.model_id)
            if base is not None and (base.transcription_expiry is None or base.transcription_expiry > now):
                return base.self_uri
        base = self.bases.get(candidate.base_model_id or "")
        if base is not None:
            return base.self_uri
        ref = candidate.raw.get("baseModel")
        return ref.get("self") if isinstance(ref, Mapping) and ref.get("self") else None

    def _announce(self, evaluation: Evaluation, candidate: CustomModel, result: quality.Verdict) -> list[Action]:
        """The decision's alert, once per evaluation and outcome (the token sits on the evaluation)."""
        if result.decision in managed.alerted(evaluation):
            return []
        first = evaluation.model1_id or ""
        model = self.models.get(first)
        base = self.bases.get(first)
        if model is not None:
            name = f"model {model.display_name} ({first})"
        else:
            name = f"base model {base.display_name or first}" if base is not None else f"model {first}"
        days = None
        if quality.is_expiry_retrain(candidate):
            expiring = self.models.get(candidate.custom_properties.get(managed.RETRAIN_OF, "")) or model
            days = days_left(expiring, self.snapshot.now) if expiring is not None else None
        alert = quality.gate_alert(evaluation, candidate, result, self.snapshot.now, serving_name=name, days_left=days)
        props = managed.with_alerted(evaluation.custom_properties, result.decision, replace=True)
        return [Raise(alert), UpdateProperties("evaluations", evaluation.id, props)]

    def _cannot_judge(
        self, candidate: CustomModel, alert: Alert, *, mark: str = quality.UNTESTED, decision: str = quality.UNTESTED
    ) -> GateStep:
        """Held back without an evaluation: one alert (its token on the candidate) and the decision recorded."""
        actions: list[Action] = []
        props = dict(candidate.custom_properties)
        if mark not in managed.alerted(candidate):
            actions.append(Raise(alert))
            props = managed.with_alerted(props, mark)
        props = quality.record(props, decision)
        if props != dict(candidate.custom_properties):
            actions.append(UpdateProperties("models", candidate.id, props))
        return GateStep(open=False, actions=actions)


def _held_back(model: CustomModel, serving: CustomModel) -> bool:
    """The gate keeps `model` off the endpoint, so it replaces nothing. An expiry retrain of `serving` that the gate
    held back still counts: retraining the same data would not do better, and its alert tells a person."""
    return (
        quality.decision_of(model) in quality.HELD_BACK
        and model.custom_properties.get(managed.RETRAIN_OF) != serving.id
    )
