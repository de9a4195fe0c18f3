"""Status: per locale, the managed endpoint, its model and status, base model, created, expires, days left,
datasets, test sets, the serving model's last word error rate, the quality gate's last decision and pending work.
Works against the emulator and a real Speech resource with the same settings.

The command is `speech-autopilot status` (shared/cli.py); `python -m shared.status [--json] [--settings FILE]`
stays as an alias of it.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from shared import managed, quality
from shared.reconcile import ACTIVE, PENDING_DEADLINE, LocaleState, Snapshot, days_left, expiry_of, locale_states


def _day(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d") if moment else None


def build_status(snapshot: Snapshot) -> list[dict[str, Any]]:
    """One row per locale the app manages (has zips, managed models or a managed endpoint)."""
    models = {m.id: m for m in snapshot.models}
    bases = {b.id: b for b in snapshot.base_models}
    evaluations = quality.EvaluationView(snapshot.evaluations)
    rows = []
    for locale, state in sorted(locale_states(snapshot).items()):
        endpoint = state.endpoint
        model = models.get(endpoint.model_id or "") if endpoint else None
        model = model or state.newest_succeeded
        base = bases.get(model.base_model_id or "") if model else None
        left = days_left(model, snapshot.now) if model else None
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
        rows.append(
            {
                "locale": locale,
                "endpoint": endpoint.id if endpoint else None,
                "endpointStatus": endpoint.status if endpoint else None,
                "model": model.id if model else None,
                "modelName": model.display_name if model else None,
                "modelStatus": model.status if model else None,
                "baseModel": (base.display_name or base.id) if base else (model.base_model_id if model else None),
                "created": _day(model.created) if model else None,
                "expires": _day(expiry_of(model)) if model else None,
                "daysLeft": left,
                "datasets": len(state.desired),
                "testSets": len(state.tests),
                "wordErrorRate": _word_error_rate(model, evaluations) if model else None,
                "qualityGate": _last_gate(state, evaluations),
                "managedModels": len(state.models),
                "pending": pending,
                "reason": model.custom_properties.get(managed.REASON) if model else None,
            }
        )
    return rows


def _word_error_rate(model, evaluations: quality.EvaluationView) -> float | None:
    """The model's word error rate in the newest evaluation that measured it, else the one it records."""
    measured = evaluations.word_error_rate(model.id)
    if measured is not None:
        return measured[0]
    try:
        return float(model.custom_properties.get(managed.WORD_ERROR_RATE, ""))
    except ValueError:
        return None


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
    ("PENDING", "pending"),
]  # fmt: skip


def cell(row: dict[str, Any], key: str) -> str:
    """One value of a status row as text."""
    value = row.get(key)
    if key == "endpoint" and value:
        value = str(value)[:8]
    if key == "wordErrorRate" and value is not None:
        value = quality.percent(value)
    if key == "qualityGate":
        value = _gate_cell(value)
    if isinstance(value, list):
        value = "; ".join(value) or "-"
    return "-" if value is None else str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No managed locales yet: drop a zip at {locale}/{kind}/{name}.zip in the training container."

    table = [[title for title, _ in COLUMNS]] + [[cell(r, key) for _, key in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip() for line in table)


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
