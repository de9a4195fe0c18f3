"""Status: per locale, the managed endpoint, its model and status, base model, created, expires, days left,
datasets, test sets, the serving model's last word error rate, the quality gate's last decision, pending work, the
next expected action, each model's life (created, served, expires) and the word error rate per model generation.

`build_status` is the one function that produces it: the CLI table (`format_table`), `status --json`, the status
page (shared/status_page.py, `GET /api/status` and `status --html FILE`) all come from its rows. It reads a snapshot
only (pure, linear in the snapshot's size). Works against the emulator and a real Speech resource with the same
settings.

The command is `speech-autopilot status` (shared/cli.py); `python -m shared.status [--json] [--settings FILE]`
stays as an alias of it.
"""

from __future__ import annotations

import math
import re
import sys
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from shared import managed, quality
from shared.ingest import Target, parse_blob_name
from shared.reconcile import (
    ACTIVE,
    PENDING_DEADLINE,
    RETRAIN_IMPOSSIBLE_HORIZON_DAYS,
    LocaleState,
    Snapshot,
    days_left,
    expiry_of,
    locale_states,
    on_its_way,
    overdue,
    replacement_of,
)
from shared.speech import BaseModel, CustomModel, Dataset, Endpoint, parse_time

# A dataset still processing after this long is stuck: the reconcile timer's deadline (alert kind `dataset-stuck`).
DATASET_STUCK_AFTER = PENDING_DEADLINE
DEFAULT_TIERS = (30, 14, 7, 1)  # EXPIRY_WARNING_DAYS' default
MAX_TIMELINE_MODELS = 12  # newest models drawn per locale (the serving one always); the rest are counted
MAX_CELL = 90  # characters of a free-text table cell
_SECRET_QUERY = re.compile(r"(?i)\b((?:sig|code|se|sv|skoid|sktid|sks|skv|skt|ske)=)[^&\s\"'<>]+")


def dataset_stuck(dataset: Dataset, now: datetime) -> bool:
    """A dataset still processing (NotStarted, Running) for longer than DATASET_STUCK_AFTER."""
    return dataset.status in ACTIVE and overdue(dataset.created, now)


def safe_text(text: str | None) -> str:
    """Text from the service or a zip's state with anything shaped like a SAS or function key masked."""
    return _SECRET_QUERY.sub(r"\1***", text or "")


def _day(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d") if moment else None


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


# -- per-snapshot indexes (each one pass) ----------------------------------------------------------------------


class _Index:
    """What the rows need beyond locale_states, each gathered in one pass over the snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.container_prefix = f"{snapshot.container}/"
        self.models = {m.id: m for m in snapshot.models}
        self.bases = {b.id: b for b in snapshot.base_models}
        self.datasets = {d.id: d for d in snapshot.datasets}
        self.bases_by_locale: dict[str, list[BaseModel]] = {}
        for base in snapshot.base_models:
            self.bases_by_locale.setdefault(base.locale, []).append(base)
        self.rejected: dict[str, list[dict[str, str]]] = {}
        for blob in snapshot.zips:
            target = parse_blob_name(blob.name)
            if isinstance(target, Target) and blob.state.status == "rejected":
                self.rejected.setdefault(target.locale, []).append(
                    {"zip": blob.name, "reason": safe_text(blob.state.reason) or "see the zip-rejected alert"}
                )
        self.processing: dict[str, list[Dataset]] = {}
        for dataset in snapshot.datasets:
            if (
                managed.is_managed(dataset)
                and dataset.status in ACTIVE
                and not managed.upload_incomplete(dataset)
                and not dataset.custom_properties.get(managed.SUPERSEDED_BY)
            ):
                self.processing.setdefault(dataset.locale, []).append(dataset)
        self.evaluations = quality.EvaluationView(snapshot.evaluations)

    def source(self, dataset: Dataset) -> str:
        """Where a dataset came from: its zip's name in the training container, or its upload: path."""
        path = dataset.custom_properties.get(managed.SOURCE) or dataset.display_name or dataset.id
        return safe_text(path.removeprefix(self.container_prefix))


# -- the rows -------------------------------------------------------------------------------------------------


def build_status(
    snapshot: Snapshot,
    *,
    tiers: Sequence[int] = DEFAULT_TIERS,
    auto_retrain: bool = True,
    auto_deploy: bool = True,
) -> list[dict[str, Any]]:
    """One row per locale the app manages (has zips, managed models or a managed endpoint). `tiers`,
    `auto_retrain` and `auto_deploy` are the app's settings (EXPIRY_WARNING_DAYS, AUTO_RETRAIN, AUTO_DEPLOY): they
    decide when a retrain is due and which model is on its way."""
    index = _Index(snapshot)
    now = snapshot.now
    rows = []
    for locale, state in sorted(locale_states(snapshot).items()):
        endpoint = state.endpoint
        serving = index.models.get(endpoint.model_id or "") if endpoint else None
        model = serving or state.newest_succeeded
        base = index.bases.get(model.base_model_id or "") if model else None
        left = days_left(model, now) if model else None
        pending = [f"zip {name} processing" for name in state.pending]
        pending += [f"test zip {name} processing" for name in state.tests_pending]
        hours = int(PENDING_DEADLINE.total_seconds() // 3600)
        pending += [f"zip {name} stuck (no dataset ready after {hours} h; not waited for)" for name in state.stuck]
        pending += [f"model {m.id} {m.status}" for m in state.models if m.status in ACTIVE]
        if endpoint is not None and endpoint.status in ACTIVE:
            pending.append(f"endpoint {endpoint.status}")
        newest = state.newest_succeeded
        if newest is not None and (endpoint is None or endpoint.model_id != newest.id):
            decision = quality.decision_of(newest)
            if decision in quality.HELD_BACK:
                pending.append(f"model {newest.id} held back by the quality gate ({decision})")
            else:
                pending.append(f"model {newest.id} awaiting deployment")
        gate = _last_gate(state, index.evaluations)
        timeline = _timeline(state, serving, index, now)
        rows.append(
            {
                "locale": locale,
                "asOf": _iso(now),
                "endpoint": endpoint.id if endpoint else None,
                "endpointName": endpoint.display_name if endpoint else None,
                "endpointStatus": endpoint.status if endpoint else None,
                "model": model.id if model else None,
                "modelName": model.display_name if model else None,
                "modelStatus": model.status if model else None,
                "serving": serving is not None,
                "baseModel": (base.display_name or base.id) if base else (model.base_model_id if model else None),
                "created": _day(model.created) if model else None,
                "expires": _day(expiry_of(model)) if model else None,
                "daysLeft": left,
                "datasets": len(state.desired),
                "testSets": len(state.tests),
                "wordErrorRate": _word_error_rate(model, index.evaluations) if model else None,
                "qualityGate": gate,
                "managedModels": len(state.models),
                "pending": pending,
                "next": _next_actions(
                    state, serving, gate, index, now, tiers=tiers, auto_retrain=auto_retrain, auto_deploy=auto_deploy
                ),
                "rejectedZips": index.rejected.get(locale, []),
                "reason": model.custom_properties.get(managed.REASON) if model else None,
                "timeline": timeline,
                "wordErrorRates": [
                    {k: m[k] for k in ("model", "name", "generation", "wordErrorRate", "gate", "role")}
                    for m in timeline["models"]
                    if m["wordErrorRate"] is not None
                ],
            }
        )
    return rows


def _word_error_rate(model, evaluations: quality.EvaluationView) -> float | None:
    """The model's word error rate in the newest evaluation that measured it, else the one it records."""
    measured = evaluations.word_error_rate(model.id)
    if measured is not None:
        return measured[0]
    try:
        rate = float(model.custom_properties.get(managed.WORD_ERROR_RATE, ""))
    except ValueError:
        return None
    return rate if math.isfinite(rate) else None  # "nan" or "inf" a person wrote: no JSON number


def _last_gate(state: LocaleState, evaluations: quality.EvaluationView) -> dict[str, Any] | None:
    """The quality gate's last decision in the locale: an evaluation still running, else the newest model with a
    recorded decision (with both word error rates of its evaluation)."""
    running = evaluations.newest_by_locale.get(state.locale)
    if running is not None and running.status in ACTIVE:
        return {"decision": "evaluating", "model": quality.candidate_of(running), "evaluation": running.id}
    decided = [m for m in state.models if quality.decision_of(m) and m.created is not None]
    model = max(decided, key=lambda m: m.created, default=None)
    if model is None:
        return None
    found = evaluations.by_id.get(model.custom_properties.get(managed.EVALUATION, ""))
    return {
        "decision": quality.decision_of(model),
        "model": model.id,
        "evaluation": found.id if found else model.custom_properties.get(managed.EVALUATION),
        "wordErrorRate1": found.model1.word_error_rate if found else None,
        "wordErrorRate2": found.model2.word_error_rate if found else None,
    }


# -- the next expected action ---------------------------------------------------------------------------------


def _action(kind: str, text: str, date: datetime | None = None) -> dict[str, Any]:
    return {"kind": kind, "text": text, "date": _day(date)}


def _named(model: CustomModel) -> str:
    return f"{model.display_name or model.id} ({model.id[:8]})"


def _next_actions(
    state: LocaleState,
    serving: CustomModel | None,
    gate: Mapping[str, Any] | None,
    index: _Index,
    now: datetime,
    *,
    tiers: Sequence[int],
    auto_retrain: bool,
    auto_deploy: bool,
) -> list[dict[str, Any]]:
    """What happens next in the locale, most urgent first: what a person must do (an expired or held-back model, a
    stuck dataset, a rejected zip), then what the app is doing (evaluating, training, processing, deploying), then
    the next scheduled step (the retrain before expiry). Never empty."""
    actions: list[dict[str, Any]] = []
    endpoint = state.endpoint
    ends = expiry_of(serving) if serving else None
    if serving is not None and ends is not None and ends <= now:
        actions.append(
            _action(
                "expired",
                f"{_named(serving)} expired on {_day(ends)}: the endpoint serves the base model; deploy a newer model",
                ends,
            )  # fmt: skip
        )
    newest = state.newest_succeeded
    serving_id = serving.id if serving is not None else None
    if newest is not None and newest.id != serving_id and quality.decision_of(newest) in quality.HELD_BACK:
        decision = quality.decision_of(newest)
        rates = ""
        if gate and gate.get("model") == newest.id and gate.get("wordErrorRate2") is not None:
            rates = f": {quality.percent(gate['wordErrorRate2'])} vs {quality.percent(gate.get('wordErrorRate1'))}"
        actions.append(
            _action(
                "held-back",
                f"{_named(newest)} held back by the quality gate ({decision}{rates}): deploy it by "
                "hand (reason manual) or drop better data",
                newest.created,
            )  # fmt: skip
        )
    for dataset in index.processing.get(state.locale, []):
        if dataset_stuck(dataset, now):
            hours = int((now - dataset.created).total_seconds() // 3600) if dataset.created else 0
            actions.append(
                _action(
                    "dataset-stuck",
                    f"dataset {dataset.id[:8]} from {index.source(dataset)} still {dataset.status} "
                    f"after {hours} h: check it in Speech Studio",
                    dataset.created,
                )  # fmt: skip
            )
    for rejected in index.rejected.get(state.locale, []):
        actions.append(
            _action(
                "zip-rejected",
                f"zip {rejected['zip']} rejected ({rejected['reason']}): fix it and upload it again, or delete it",
            )  # fmt: skip
        )
    if gate and gate.get("decision") == "evaluating":
        actions.append(_action("evaluating", f"evaluation of model {str(gate.get('model'))[:8]} on the test set"))
    for model in state.models:
        if model.status in ACTIVE:
            actions.append(_action("training", f"{_named(model)} training since {_day(model.created)}", model.created))
    stuck = {d.id for d in index.processing.get(state.locale, []) if dataset_stuck(d, now)}
    for dataset in index.processing.get(state.locale, []):
        if dataset.id not in stuck:
            actions.append(_action("processing", f"dataset from {index.source(dataset)} processing", dataset.created))
    waiting = newest is not None and newest.id != serving_id and quality.decision_of(newest) not in quality.HELD_BACK
    if waiting and on_its_way(state, newest, auto_deploy, auto_retrain):
        requested = _requested(newest)
        text = f"{_named(newest)} on its way to the endpoint" + (
            f" (deploy requested {_day(requested)})" if requested else ""
        )
        actions.append(_action("deploying", text, requested))
    elif waiting:
        why = "AUTO_DEPLOY is off" if not auto_deploy else "the endpoint was changed by hand after its deploy request"
        actions.append(_action("awaiting", f"{_named(newest)} waits for a person ({why}): deploy it by hand to use it"))
    elif endpoint is not None and endpoint.status in ACTIVE:
        actions.append(_action("deploying", f"endpoint {endpoint.status}: deploying model {endpoint.model_id}"))
    if serving is not None and ends is not None and ends > now:
        actions.append(_retrain_action(state, serving, ends, index, now, tiers, auto_retrain))
    failed = state.newest_model
    if failed is not None and failed.status == "Failed":
        actions.append(
            _action(
                "failed",
                f"training of {_named(failed)} failed (see its model-failed alert): new data trains again",
                failed.created,
            )  # fmt: skip
        )
    if not actions:
        actions.append(_action("waiting", f"waiting for data: drop a zip at {state.locale}/{{kind}}/{{name}}.zip"))
    return actions


def _retrain_action(
    state: LocaleState,
    serving: CustomModel,
    ends: datetime,
    index: _Index,
    now: datetime,
    tiers: Sequence[int],
    auto_retrain: bool,
) -> dict[str, Any]:
    """When the expiry timer retrains the serving model (shared/reconcile._retrain): as it enters the largest tier,
    or at the horizon when the best base model stops adapting before then."""
    replacement = replacement_of(state, serving)
    if replacement is not None:
        return _action("replaced", f"{_named(replacement)} replaces it before it expires on {_day(ends)}", ends)
    largest = max(tiers) if tiers else 0
    if state.desired:
        kinds = state.kinds
    else:
        kinds = frozenset(d.kind for i in serving.dataset_ids if (d := index.datasets.get(i)) is not None)
    base = _adaptable(index.bases_by_locale.get(serving.locale, ()), kinds, now)
    if base is None:
        return _action(
            "retrain-impossible",
            f"no base model of {serving.locale} can adapt its data any more: plan a replacement before {_day(ends)}",
            ends,
        )
    due = ends - timedelta(days=largest)
    if not auto_retrain:
        return _action("retrain", f"retrain by hand (AUTO_RETRAIN is off) before it expires on {_day(ends)}", due)
    if due <= now:
        return _action("retrain", f"retrain now: it expires on {_day(ends)}", now)
    if base.adaptation_expiry is not None and base.adaptation_expiry <= due:
        early = max(now, ends - timedelta(days=max(largest, RETRAIN_IMPOSSIBLE_HORIZON_DAYS)))
        return _action(
            "retrain",
            f"retrain between {_day(early)} and {_day(due)}, before it expires on {_day(ends)} (today's newest base "
            f"model, {base.display_name or base.id}, stops adapting on {_day(base.adaptation_expiry)})",
            early,
        )
    return _action("retrain", f"retrain on {_day(due)}, {largest} days before it expires on {_day(ends)}", due)


def _adaptable(bases: Iterable[BaseModel], kinds: frozenset[str], now: datetime) -> BaseModel | None:
    usable = [
        b
        for b in bases
        if kinds <= b.adapts_with and b.adaptation_expiry is not None and b.adaptation_expiry > now and b.created
    ]
    return max(usable, key=lambda b: b.created, default=None)


# -- each model's life ----------------------------------------------------------------------------------------


def _requested(model: CustomModel) -> datetime | None:
    try:
        return parse_time(model.custom_properties.get(managed.DEPLOY_REQUESTED))
    except ValueError:
        return None


def served_stretches(
    state: LocaleState, models: Mapping[str, CustomModel], now: datetime
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """model id -> when it served the locale's endpoint (end None: still), from what the Speech resource records:
    the endpoint's current model and lastActionDateTime, its previousModel, and each model's deployRequested. The
    resource keeps no full history, so a past stretch runs from one deploy request to the next (approximate)."""
    endpoint: Endpoint | None = state.endpoint
    if endpoint is None or not endpoint.model_id:
        return {}
    current = endpoint.model_id
    requests = sorted((t, m.id) for m in state.models if (t := _requested(m)) is not None and t <= now)
    own = [t for t, model_id in requests if model_id == current]
    overridden = bool(own) and any(t > own[-1] and model_id != current for t, model_id in requests)
    if own and not overridden:
        start = own[-1]
    elif requests:  # deployed by hand, or rolled back to after a newer request: since the endpoint last changed
        start = endpoint.last_action or now
    else:
        start = endpoint.created or endpoint.last_action or now
    history = [(t, model_id) for t, model_id in requests if t < start]
    previous = endpoint.custom_properties.get(managed.PREVIOUS_MODEL)
    if previous and previous != current and previous in models and (not history or history[-1][1] != previous):
        # deployed without a request of ours (by hand): it served until `start`, since a moment the resource does not
        # record; drawn from when its training finished, or the last request before, whichever is later
        finished = parse_time(models[previous].raw.get("lastActionDateTime")) or models[previous].created or start
        began_at = max(finished, history[-1][0]) if history else finished
        history.append((min(began_at, start), previous))
    stretches: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for i, (began_at, model_id) in enumerate(history):
        ended = history[i + 1][0] if i + 1 < len(history) else start
        _add_stretch(stretches, model_id, began_at, ended)
    _add_stretch(stretches, current, start, None)
    return stretches


def _add_stretch(
    stretches: dict[str, list[tuple[datetime, datetime | None]]], model_id: str, start: datetime, end: datetime | None
) -> None:
    if end is not None and end <= start:
        return
    mine = stretches.setdefault(model_id, [])
    if mine and mine[-1][1] == start:  # a request sent again for the model serving: one stretch
        mine[-1] = (mine[-1][0], end)
    else:
        mine.append((start, end))


def _role(model: CustomModel, serving: CustomModel | None, state: LocaleState, previous: str | None) -> str:
    if serving is not None and model.id == serving.id:
        return "serving"
    if model.status in ACTIVE:
        return "training"
    if model.status == "Failed":
        return "failed"
    if quality.decision_of(model) in quality.HELD_BACK:
        return "held-back"
    if model is state.newest_succeeded:
        return "next"
    return "previous" if model.id == previous else "retired"


def _timeline(state: LocaleState, serving: CustomModel | None, index: _Index, now: datetime) -> dict[str, Any]:
    """Each model's life for the page's picture: created, served, expires (transcriptionDateTime or the quarter
    rule), newest first up to MAX_TIMELINE_MODELS (the serving model always), with its generation (1 = the
    locale's first trained model) and word error rate."""
    models = sorted((m for m in state.models if m.status != "Failed"), key=lambda m: (m.created is None, m.created))
    if serving is not None and serving not in models:  # an unmanaged model on the managed endpoint
        models.append(serving)
    generation = {m.id: n for n, m in enumerate(models, start=1)}
    shown = models[-MAX_TIMELINE_MODELS:]
    if serving is not None and serving not in shown:
        shown = [serving, *shown[1:]]
    stretches = served_stretches(state, {m.id: m for m in models}, now)
    previous = state.endpoint.custom_properties.get(managed.PREVIOUS_MODEL) if state.endpoint else None
    rows = []
    for model in shown:
        ends = expiry_of(model)
        rows.append(
            {
                "model": model.id,
                "name": model.display_name,
                "generation": generation[model.id],
                "status": model.status,
                "reason": model.custom_properties.get(managed.REASON),
                "role": _role(model, serving, state, previous),
                "created": _iso(model.created),
                "expires": _iso(ends),
                "expiresBy": "transcriptionDateTime" if model.transcription_expiry else "quarter rule",
                "served": [{"from": _iso(a), "until": _iso(b)} for a, b in stretches.get(model.id, [])],
                "gate": quality.decision_of(model),
                "wordErrorRate": _word_error_rate(model, index.evaluations),
            }
        )
    return {"models": rows, "hidden": len(models) - len(shown)}


# -- the table --------------------------------------------------------------------------------------------------


def _gate_cell(gate: dict[str, Any] | None) -> str | None:
    if not gate:
        return None
    text = f"{gate['decision']} ({str(gate['model'])[:8]})"
    if gate.get("wordErrorRate2") is not None and gate.get("wordErrorRate1") is not None:
        text += f" {quality.percent(gate['wordErrorRate2'])} vs {quality.percent(gate['wordErrorRate1'])}"
    return text


COLUMNS = [
    ("LOCALE", "locale"), ("ENDPOINT", "endpoint"), ("STATE", "endpointStatus"), ("MODEL", "modelName"),
    ("MODEL STATE", "modelStatus"),
    ("BASE MODEL", "baseModel"), ("CREATED", "created"), ("EXPIRES", "expires"), ("DAYS", "daysLeft"),
    ("DATASETS", "datasets"), ("TEST SETS", "testSets"), ("WER", "wordErrorRate"), ("GATE", "qualityGate"),
    ("NEXT", "next"), ("PENDING", "pending"),
]  # fmt: skip


def _short(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def cell(row: dict[str, Any], key: str) -> str:
    """One value of a status row as text (the CLI table and the page's summary table)."""
    value = row.get(key)
    if key == "endpoint" and value:
        value = str(value)[:8]
    if key == "wordErrorRate" and value is not None:
        value = quality.percent(value)
    if key == "qualityGate":
        value = _gate_cell(value)
    if key == "next":
        value = _short(value[0]["text"]) if value else None
    if isinstance(value, list):
        value = _short("; ".join(value)) if value else "-"
    return "-" if value is None else str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No managed locales yet: drop a zip at {locale}/{kind}/{name}.zip in the training container."

    table = [[title for title, _ in COLUMNS]] + [[cell(r, key) for _, key in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip() for line in table)


def options(config) -> dict[str, Any]:
    """build_status's keyword arguments from the app's settings."""
    return {
        "tiers": config.expiry_warning_days,
        "auto_retrain": config.auto_retrain,
        "auto_deploy": config.auto_deploy,
    }


def gather(config=None) -> Snapshot:
    from shared import context
    from shared.flows.timers import snapshot

    config = config or context.settings()
    return snapshot(config, context.speech(config), context.training_container(config))


def main(argv: list[str] | None = None) -> int:
    """`python -m shared.status` is an alias of `python -m shared.cli status` (same options)."""
    from shared.cli import main as cli_main

    return cli_main(["status", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
