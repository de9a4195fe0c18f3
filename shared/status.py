"""Status: per locale, the managed endpoint, its model and status, base model, created, expires, days left,
datasets and pending work. Works against the emulator and a real Speech resource with the same settings.

    python -m shared.status [--json] [--settings local.settings.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from typing import Any

from shared import managed
from shared.reconcile import ACTIVE, PENDING_DEADLINE, Snapshot, days_left, expiry_of, locale_states


def _day(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d") if moment else None


def build_status(snapshot: Snapshot) -> list[dict[str, Any]]:
    """One row per locale the app manages (has zips, managed models or a managed endpoint)."""
    models = {m.id: m for m in snapshot.models}
    bases = {b.id: b for b in snapshot.base_models}
    rows = []
    for locale, state in sorted(locale_states(snapshot).items()):
        endpoint = state.endpoint
        model = models.get(endpoint.model_id or "") if endpoint else None
        model = model or state.newest_succeeded
        base = bases.get(model.base_model_id or "") if model else None
        left = days_left(model, snapshot.now) if model else None
        pending = [f"zip {name} processing" for name in state.pending]
        hours = int(PENDING_DEADLINE.total_seconds() // 3600)
        pending += [f"zip {name} stuck (no dataset ready after {hours} h; not waited for)" for name in state.stuck]
        pending += [f"model {m.id} {m.status}" for m in state.models if m.status in ACTIVE]
        if endpoint is not None and endpoint.status in ACTIVE:
            pending.append(f"endpoint {endpoint.status}")
        newest = state.newest_succeeded
        if newest is not None and (endpoint is None or endpoint.model_id != newest.id):
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
                "managedModels": len(state.models),
                "pending": pending,
                "reason": model.custom_properties.get(managed.REASON) if model else None,
            }
        )
    return rows


COLUMNS = [
    ("LOCALE", "locale"), ("ENDPOINT", "endpoint"), ("STATE", "endpointStatus"), ("MODEL", "modelName"),
    ("MODEL STATE", "modelStatus"),
    ("BASE MODEL", "baseModel"), ("CREATED", "created"), ("EXPIRES", "expires"), ("DAYS", "daysLeft"),
    ("DATASETS", "datasets"), ("PENDING", "pending"),
]  # fmt: skip


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No managed locales yet: drop a zip at {locale}/{kind}/{name}.zip in the training container."

    def cell(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        if key == "endpoint" and value:
            value = str(value)[:8]
        if isinstance(value, list):
            value = "; ".join(value) or "-"
        return "-" if value is None else str(value)

    table = [[title for title, _ in COLUMNS]] + [[cell(r, key) for _, key in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip() for line in table)


def gather() -> Snapshot:
    from shared import context
    from shared.flows.timers import snapshot

    config = context.settings()
    return snapshot(config, context.speech(config), context.training_container(config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Status of the locales managed by Custom Speech Autopilot.")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("--settings", help="read settings from a local.settings.json file")
    args = parser.parse_args(argv)
    if args.settings:
        with open(args.settings, encoding="utf-8") as handle:
            for key, value in json.load(handle).get("Values", {}).items():
                if value:
                    os.environ.setdefault(key, str(value))
    rows = build_status(gather())
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
