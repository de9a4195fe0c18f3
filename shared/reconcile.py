"""The reconcile loop's decisions: pure functions from a snapshot (the zips, the Speech resource, a clock) to
actions. Desired state = the zips in the training container; actual state = datasets, models, endpoints.

Nothing here does I/O. The timers gather a Snapshot under the autopilot lock, call plan_poll / plan_expiry and
carry out the returned actions; running a plan twice on the state it produced returns nothing new.

Cost: linear in the snapshot. Every lookup goes through the snapshot's `index` (SnapshotIndex), built once per
snapshot in one pass over each collection: datasets by (sourcePath, sourceEtag), models by id, the managed
endpoint of each locale, base models by locale, the locales' states with their newest models. No planner step
scans a collection once per item of another.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Iterable, Mapping, Sequence, Union

from shared import managed
from shared.alerts import Alert, make_alert
from shared.ingest import Target, parse_blob_name, source_path
from shared.quarters import custom_model_expiry
from shared.speech import BaseModel, CustomModel, Dataset, Endpoint, parse_time
from shared.storage import TAG_DATASET, TAG_ETAG, TAG_REASON, TAG_STATUS, ZipBlob

ACTIVE = frozenset({"NotStarted", "Running"})
MAX_SWEEP_PER_PASS = 5  # zips one pass ingests (each re-lists datasets under the lock); the rest wait for the next
MAX_RETRAIN_ATTEMPTS = 3  # expiry retrains of one serving model
RETRAIN_IMPOSSIBLE_HORIZON_DAYS = 90  # warn this far ahead when no base model can adapt the data any more
CRITICAL_TIER_DAYS = 7  # expiry warnings at or below this many days are critical
DEPLOY_RETRY_DAYS = 2  # a deploy request that has not reached an untouched endpoint by then is sent again


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

    @cached_property
    def index(self) -> SnapshotIndex:
        return SnapshotIndex(self)


@dataclass(frozen=True)
class Ingest:
    """Sweep: a zip that no event turned into a dataset or a rejection yet."""

    blob_name: str


@dataclass(frozen=True)
class TagBlob:
    blob_name: str
    etag: str  # only if the blob is still this version
    tags: Mapping[str, str]


@dataclass(frozen=True)
class CreateModel:
    locale: str
    base_model_id: str
    dataset_ids: tuple[str, ...]
    display_name: str
    description: str
    custom_properties: Mapping[str, str]


@dataclass(frozen=True)
class UpdateProperties:
    collection: str  # "datasets" | "models" | "endpoints"
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


Action = Union[Ingest, TagBlob, CreateModel, UpdateProperties, RequestDeploy, Raise]


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
    models: list[CustomModel] = field(default_factory=list)  # managed, any status
    endpoint: Endpoint | None = None

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
    """The managed dataset made from this very version of the zip, if any (the first listed, should there be two)."""
    return snapshot.index.zip_dataset(snapshot.container, blob)


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
                state(target.locale).pending.append(blob.name)
        elif dataset.status == "Succeeded":
            state(dataset.locale).desired[dataset.id] = dataset
        elif dataset.status in ACTIVE:
            state(dataset.locale).pending.append(blob.name)
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
        # (sourcePath, sourceEtag) -> the first listed managed dataset made from that zip version
        self.by_source: dict[tuple[str, str], Dataset] = {}
        self.dataset_kinds: dict[str, set[str]] = {}  # dataset id -> its kind
        for dataset in snapshot.datasets:
            self.dataset_kinds.setdefault(dataset.id, set()).add(dataset.kind)
            if managed.is_managed(dataset):
                props = dataset.custom_properties
                path, etag = props.get(managed.SOURCE), props.get(managed.SOURCE_ETAG)
                if path is not None and etag is not None:
                    self.by_source.setdefault((path, etag), dataset)
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
        return self.by_source.get((source_path(container, blob.name), blob.etag))

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


def plan_poll(snapshot: Snapshot, *, auto_deploy: bool, auto_retrain: bool = True) -> list[Action]:
    """AUTO_DEPLOY deploys every newly trained model; AUTO_RETRAIN alone still deploys its expiry retrains."""
    actions: list[Action] = []
    actions += _sweep(snapshot)
    actions += _dataset_outcomes(snapshot)
    for state in locale_states(snapshot).values():
        actions += _train_on_change(snapshot, state)
        actions += _model_failures(snapshot, state)
        if auto_deploy or auto_retrain:
            actions += _deploy_newest(snapshot, state, expiry_only=not auto_deploy)
    actions += _endpoint_outcomes(snapshot)
    return actions


def rejected_version(blob: ZipBlob) -> bool:
    return blob.tags.get(TAG_STATUS) == "rejected" and blob.tags.get(TAG_ETAG) == blob.etag


def _sweep(snapshot: Snapshot) -> list[Action]:
    """Zips with no dataset for their current version and no rejection: events missed, late, or a dataset
    deleted by hand. The ingest looks up before creating, so a late event and the sweep never make two."""
    missing = [
        Ingest(blob.name)
        for blob in snapshot.zips
        if not rejected_version(blob) and zip_dataset(snapshot, blob) is None
    ]
    return missing[:MAX_SWEEP_PER_PASS]


def _dataset_outcomes(snapshot: Snapshot) -> list[Action]:
    """Failed datasets raise one alert each; the zip's tags follow its dataset's outcome."""
    actions: list[Action] = []
    for blob in snapshot.zips:
        dataset = zip_dataset(snapshot, blob)
        if dataset is None:
            continue
        status = {"Succeeded": "succeeded", "Failed": "failed"}.get(dataset.status)
        tags = {TAG_STATUS: status, TAG_ETAG: blob.etag, TAG_DATASET: dataset.id}
        if status and any(blob.tags.get(name) != value for name, value in tags.items()):  # tags of another version
            if dataset.error:
                tags[TAG_REASON] = f"{dataset.error.code}: {dataset.error.message}"
            actions.append(TagBlob(blob.name, blob.etag, tags))
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


def _deploy_newest(snapshot: Snapshot, state: LocaleState, *, expiry_only: bool = False) -> list[Action]:
    """The newest trained model goes to the locale's endpoint. A request that has not landed DEPLOY_RETRY_DAYS
    later, while nobody changed the endpoint, is sent again: its message may have ended in the poison queue, and
    an expiring model with an undeployed replacement is never retrained. An operator's rollback changes the
    endpoint after the request, so it is not undone."""
    model = state.newest_succeeded
    if model is None or (state.endpoint is not None and state.endpoint.model_id == model.id):
        return []
    if model.transcription_expiry is not None and model.transcription_expiry <= snapshot.now:
        return []
    if not _deploy_due(model, state.endpoint, snapshot.now):
        return []
    reason = model.custom_properties.get(managed.REASON, "trained")
    if expiry_only and reason != "expiry":
        return []
    props = managed.with_properties(model.custom_properties, **{managed.DEPLOY_REQUESTED: _iso(snapshot.now)})
    return [RequestDeploy(state.locale, model.self_uri, reason), UpdateProperties("models", model.id, props)]


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
    if expiry <= now:
        return min(-1, (expiry.date() - now.date()).days)
    return (expiry.date() - now.date()).days


def watched_models(snapshot: Snapshot) -> dict[str, tuple[CustomModel, Endpoint | None]]:
    """Models whose expiry is watched: those serving a managed endpoint, and every trained managed model."""
    by_id = snapshot.index.models_by_id
    watched: dict[str, tuple[CustomModel, Endpoint | None]] = {}
    for endpoint in snapshot.index.endpoints.values():
        model = by_id.get(endpoint.model_id or "")
        if model is not None:
            watched[model.id] = (model, endpoint)
    for model in snapshot.models:
        if managed.is_managed(model) and model.status == "Succeeded" and model.id not in watched:
            watched[model.id] = (model, None)
    return watched


def plan_expiry(snapshot: Snapshot, *, tiers: Sequence[int], auto_retrain: bool) -> list[Action]:
    actions: list[Action] = []
    states = locale_states(snapshot)
    newest_succeeded = snapshot.index.newest_succeeded
    largest = max(tiers) if tiers else 0
    for model, endpoint in watched_models(snapshot).values():
        left = days_left(model, snapshot.now)
        if left is None:
            continue
        tokens = _expiry_tokens(left, tiers) - managed.alerted(model)
        state = states.get(model.locale) or LocaleState(model.locale)
        # A model that serves nothing and will not be deployed (a newer one exists) is reported quietly.
        retired = endpoint is None and newest_succeeded.get(model.locale) is not model
        alerts = [
            _expiry_alert(snapshot, model, endpoint, left, token, retired) for token in sorted(tokens, key=_tier_order)
        ]
        if endpoint is not None and left <= max(largest, RETRAIN_IMPOSSIBLE_HORIZON_DAYS):
            retrain, extra_alerts, extra_tokens = _retrain(
                snapshot, state, model, endpoint, left, largest, auto_retrain
            )
            actions += retrain
            alerts += extra_alerts
            tokens |= extra_tokens
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


def _expiry_alert(
    snapshot: Snapshot, model: CustomModel, endpoint: Endpoint | None, left: int, token: str, retired: bool
) -> Alert:
    ends = expiry_of(model)
    expiry = ends.strftime("%Y-%m-%d") if ends else "?"
    serving = f"serving endpoint {endpoint.display_name} ({endpoint.id})" if endpoint else "not deployed"
    details = {
        "model": model.self_uri,
        "endpoint": endpoint.self_uri if endpoint else None,
        "transcriptionDateTime": _iso(ends) if ends else None,
        "daysLeft": left,
    }
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
            message=f"Model {model.display_name} ({model.id}, {serving}) expired on {expiry}: {consequence}",
            details=details,
            severity="info" if retired else None,
            at=snapshot.now,
            key=model.id,
        )
    tier = int(token)
    return make_alert(
        "model-expiring",
        resource=model.self_uri,
        locale=model.locale,
        message=f"Model {model.display_name} ({model.id}, {serving}) stops transcribing on {expiry}, "
        f"in {left} day(s) ({tier}-day warning).",
        details={**details, "tier": tier},
        severity="info" if retired else "critical" if left <= CRITICAL_TIER_DAYS else "warning",
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
    else:  # no zip left: the serving model's own datasets
        dataset_ids = list(serving.dataset_ids)
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
    closes_first = (
        base.adaptation_expiry is not None
        and serving.transcription_expiry is not None
        and base.adaptation_expiry <= serving.transcription_expiry - timedelta(days=largest)
    )
    if not auto_retrain or (left > largest and not closes_first) or state.pending or state.training:
        return [], [], set()
    tries = snapshot.index.retrain_tries[(state.locale, serving.id)]
    if tries >= MAX_RETRAIN_ATTEMPTS or not dataset_ids:
        return [], [], set()
    return [train(state, dataset_ids, base, snapshot.now, "expiry", retrain_of=serving.id)], [], set()


def _has_replacement(state: LocaleState, serving: CustomModel) -> bool:
    """A newer managed model that outlives the serving one is trained, training, or on its way to the endpoint."""
    for model in state.models:
        if model.id == serving.id or model.status == "Failed":
            continue
        newer = model.created and serving.created and model.created > serving.created
        outlives = (
            model.status in ACTIVE
            or model.transcription_expiry is None
            or serving.transcription_expiry is None
            or model.transcription_expiry > serving.transcription_expiry
        )
        if newer and outlives:
            return True
    return False
