"""The status page: one self-contained HTML document from shared.status.build_status's rows.

Served by `GET /api/status` (shared/flows/status.py) and written by `speech-autopilot status --html FILE`. No
script, no external asset (styles inline, system fonts, inline SVG), so it works without JavaScript, offline and
under a strict Content-Security-Policy. Every name it shows (locales, models, endpoints, zips, reasons) is escaped,
in HTML and in SVG text alike. It shows ids and names only, never a key, SAS or URL.

Stable hooks for people and tests: `#summary` (the CLI's table), `section.locale#locale-<locale>`,
`#days-left-<locale>`, `#next-<locale>`, `#gate-<locale>`, `svg.timeline#timeline-<locale>` with
`line.today#today-<locale>` and `line.quarter`, `svg.wer#wer-<locale>`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any, Iterable, Mapping

from shared import quality
from shared.quarters import QUARTER_END_DAY, QUARTER_END_MONTHS
from shared.status import COLUMNS, cell

TITLE = "Custom Speech Autopilot: status"
TIMELINE_WIDTH = 1000
LABEL_WIDTH = 330
ROW_HEIGHT = 26
AXIS_HEIGHT = 44
MARGIN = timedelta(days=45)
NAME_CHARS = 34

STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
  --serving: #1a7f37; --served: #0969da; --held: #bc4c00; --expired: #cf222e; --life: #afb8c1; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: #fff; }
header, main, footer { max-width: 1280px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; border-bottom: 1px solid var(--line); }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 13px; margin: 0 0 4px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.as-of { color: var(--muted); margin: 0 0 12px; }
table.summary { border-collapse: collapse; width: 100%; margin: 14px 0 6px; font-size: 11.5px; }
table.summary th, table.summary td { border-bottom: 1px solid var(--line); padding: 3px 5px; text-align: left;
  vertical-align: top; }
table.summary td.col-modelName, table.summary td.col-baseModel, table.summary td.col-qualityGate,
table.summary td.col-next, table.summary td.col-pending { overflow-wrap: anywhere; }
table.summary td.col-next { min-width: 180px; }
table.summary td.col-modelName, table.summary td.col-qualityGate { min-width: 110px; }
.table-wrap { overflow-x: auto; }
table.summary th { background: var(--soft); font-weight: 600; white-space: nowrap; }
section.locale { border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; margin: 18px 0; }
.top { display: flex; gap: 22px; align-items: flex-start; flex-wrap: wrap; }
.days { min-width: 120px; text-align: center; border-radius: 8px; padding: 10px 12px; background: var(--soft); }
.days .value { display: block; font-size: 34px; font-weight: 700; line-height: 1.1; }
.days .label { color: var(--muted); font-size: 12px; }
.days.soon .value { color: var(--held); } .days.urgent .value, .days.expired .value { color: var(--expired); }
.days.ok .value { color: var(--serving); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; flex: 1 1 360px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.side { flex: 1 1 300px; }
.next-action { font-weight: 600; margin: 0 0 4px; }
ul.more { margin: 0 0 10px; padding-left: 18px; color: var(--muted); }
.kind { display: inline-block; font-size: 11px; font-weight: 600; border-radius: 10px; padding: 0 7px;
  margin-right: 6px; background: var(--soft); border: 1px solid var(--line); color: var(--muted); }
.kind.act { background: #fff1e5; border-color: #ffb77c; color: var(--held); }
figure { margin: 14px 0 0; } figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
svg { display: block; width: 100%; height: auto; font-family: inherit; }
.legend span { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 18px; height: 8px; vertical-align: middle; margin-right: 4px; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 24px; }
.empty { color: var(--muted); }
"""

ACT_KINDS = frozenset({"expired", "held-back", "dataset-stuck", "zip-rejected", "awaiting", "failed",
                       "retrain-impossible"})  # fmt: skip


def e(value: Any) -> str:
    """Escaped text for HTML and SVG, attributes included."""
    return escape("" if value is None else str(value), quote=True)


def slug(locale: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", locale or "unknown")


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if "T" in text else datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _short(text: str | None, limit: int = NAME_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the document -------------------------------------------------------------------------------------------------


def render_page(rows: list[dict[str, Any]]) -> str:
    as_of = rows[0]["asOf"] if rows else None
    stamp = f"{as_of[:10]} {as_of[11:16]} UTC" if as_of else "now"
    body = [
        "<header>",
        "<h1>Custom Speech Autopilot</h1>",
        f'<p class="as-of">Status as of <time datetime="{e(as_of)}">{e(stamp)}</time> &middot; '
        f"{len(rows)} locale(s). Read-only; the same data as <code>speech-autopilot status --json</code>.</p>",
        "</header>",
        "<main>",
    ]
    if not rows:
        body.append(
            '<p class="empty" id="no-locales">No managed locales yet: drop a zip at '
            "<code>{locale}/{kind}/{name}.zip</code> in the training container.</p>"
        )
    else:
        body.append(summary_table(rows))
        body += [locale_section(row) for row in rows]
    body += [
        "</main>",
        "<footer><p>Served by the function app's <code>status</code> function (function key). In Azure, App Service "
        "Authentication can guard it with Microsoft Entra ID (Bicep parameter <code>enableAppServiceAuth</code>). "
        "Add <code>format=json</code> to the query for the data as JSON. No key, SAS or webhook URL is ever "
        "shown.</p></footer>",
    ]
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(TITLE)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The CLI's table, cell for cell (shared.status.cell)."""
    head = "".join(f'<th scope="col">{e(title)}</th>' for title, _ in COLUMNS)
    lines = []
    for row in rows:
        cells = "".join(f'<td class="col-{e(key)}">{e(cell(row, key))}</td>' for _, key in COLUMNS)
        lines.append(f'<tr data-locale="{e(row["locale"])}">{cells}</tr>')
    return (
        '<section aria-label="Summary" class="table-wrap"><table class="summary" id="summary">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table></section>"
    )


def _days_class(left: int | None) -> str:
    if left is None:
        return "none"
    if left < 0:
        return "expired"
    return "urgent" if left <= 7 else "soon" if left <= 30 else "ok"


def locale_section(row: Mapping[str, Any]) -> str:
    locale, key = row["locale"], slug(row["locale"])
    left = row.get("daysLeft")
    days_text = "-" if left is None else ("expired" if left < 0 else str(left))
    endpoint = (
        f"{e(row.get('endpointName') or '')} <small>({e(row['endpoint'])}, {e(row.get('endpointStatus'))})</small>"
        if row.get("endpoint")
        else "none yet"
    )
    model = (
        f"{e(row.get('modelName'))} <small>({e(row['model'])}, {e(row.get('modelStatus'))}"
        f"{'' if row.get('serving') else ', not deployed'})</small>"
        if row.get("model")
        else "none yet"
    )
    facts = [
        ("Endpoint", endpoint),
        ("Model", model),
        ("Base model", e(row.get("baseModel") or "-")),
        ("Created", e(row.get("created") or "-")),
        ("Expires", e(row.get("expires") or "-")),
        ("Data", f"{e(row.get('datasets'))} dataset(s), {e(row.get('testSets'))} test set(s)"),
        ("Word error rate", e(quality.percent(row["wordErrorRate"]) if row.get("wordErrorRate") is not None else "-")),
    ]
    dl = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return "\n".join(
        [
            f'<section class="locale" id="locale-{e(key)}" data-locale="{e(locale)}" aria-labelledby="h-{e(key)}">',
            f'<h2 id="h-{e(key)}">{e(locale)}</h2>',
            '<div class="top">',
            f'<div class="days {_days_class(left)}"><span class="value days-left" id="days-left-{e(key)}">'
            f'{e(days_text)}</span><span class="label">days left</span></div>',
            f'<dl class="facts">{dl}</dl>',
            '<div class="side">',
            next_block(row, key),
            gate_block(row, key),
            "</div>",
            "</div>",
            timeline_figure(row, key),
            wer_figure(row, key),
            "</section>",
        ]
    )


def _kind(kind: str) -> str:
    return f'<span class="kind{" act" if kind in ACT_KINDS else ""}">{e(kind)}</span>'


def next_block(row: Mapping[str, Any], key: str) -> str:
    actions = list(row.get("next") or [])
    if not actions:
        return f'<div class="next" id="next-{e(key)}"><h3>Next</h3><p class="next-action">-</p></div>'
    first, rest = actions[0], actions[1:]
    more = "".join(f"<li>{_kind(a['kind'])}{e(a['text'])}</li>" for a in rest)
    return (
        f'<div class="next" id="next-{e(key)}"><h3>Next</h3>'
        f'<p class="next-action" data-kind="{e(first["kind"])}">{_kind(first["kind"])}{e(first["text"])}</p>'
        + (f'<ul class="more">{more}</ul>' if more else "")
        + "</div>"
    )


def gate_block(row: Mapping[str, Any], key: str) -> str:
    gate = row.get("qualityGate")
    if not gate:
        text = "no decision yet" + ("" if row.get("testSets") else " (no test set: drop one at {locale}/test/)")
    else:
        text = f"{gate['decision']}: model {str(gate.get('model'))[:8]}"
        if gate.get("wordErrorRate2") is not None and gate.get("wordErrorRate1") is not None:
            text += (
                f", word error rate {quality.percent(gate['wordErrorRate2'])} against "
                f"{quality.percent(gate['wordErrorRate1'])}"
            )
        if gate.get("evaluation"):
            text += f" (evaluation {str(gate['evaluation'])[:8]})"
    return (
        f'<div class="gate" id="gate-{e(key)}"><h3>Last quality gate decision</h3>'
        f'<p class="gate-decision" data-decision="{e(gate["decision"] if gate else "")}">{e(text)}</p></div>'
    )


# -- the timeline ---------------------------------------------------------------------------------------------------


def quarter_ends(start: datetime, end: datetime) -> Iterable[datetime]:
    for year in range(start.year, end.year + 1):
        for month in QUARTER_END_MONTHS:
            moment = datetime(year, month, QUARTER_END_DAY, tzinfo=UTC)
            if start <= moment <= end:
                yield moment


ROLE_COLOURS = {"serving": "var(--serving)", "held-back": "var(--held)"}


def timeline_figure(row: Mapping[str, Any], key: str) -> str:
    timeline = row.get("timeline") or {}
    models = timeline.get("models") or []
    now = _time(row.get("asOf")) or datetime.now(UTC)
    if not models:
        return f'<figure class="timeline-figure"><p class="empty" id="timeline-{e(key)}">No models yet.</p></figure>'
    moments = [now]
    for model in models:
        moments += [m for m in (_time(model.get("created")), _time(model.get("expires"))) if m]
    start, end = min(moments) - MARGIN, max(moments) + MARGIN
    span = (end - start).total_seconds() or 1.0
    plot = TIMELINE_WIDTH - LABEL_WIDTH - 16

    def x(moment: datetime) -> float:
        return round(LABEL_WIDTH + (moment - start).total_seconds() / span * plot, 1)

    height = AXIS_HEIGHT + ROW_HEIGHT * len(models) + 8
    bottom = height - 4
    parts = [
        f'<svg class="timeline" id="timeline-{e(key)}" viewBox="0 0 {TIMELINE_WIDTH} {height}" '
        f'role="img" aria-label="Life of each model of {e(row["locale"])}: created, served, expires">',
        f"<title>Life of each model of {e(row['locale'])}</title>",
        f'<rect x="{LABEL_WIDTH}" y="{AXIS_HEIGHT - 6}" width="{plot}" height="{bottom - AXIS_HEIGHT + 6}" '
        'fill="#fbfcfd" stroke="var(--line)"/>',
    ]
    for year in range(start.year, end.year + 1):
        moment = datetime(year, 1, 1, tzinfo=UTC)
        if start <= moment <= end:
            parts.append(
                f'<line class="year" x1="{x(moment)}" y1="{AXIS_HEIGHT - 18}" x2="{x(moment)}" y2="{bottom}" '
                'stroke="#8c959f" stroke-width="1"/>'
                f'<text x="{x(moment) + 3}" y="{AXIS_HEIGHT - 9}" font-size="11" fill="var(--muted)">{year}</text>'
            )
    for moment in quarter_ends(start, end):
        parts.append(
            f'<line class="quarter" x1="{x(moment)}" y1="{AXIS_HEIGHT - 6}" x2="{x(moment)}" y2="{bottom}" '
            f'stroke="#c4cbd3" stroke-dasharray="3 3"><title>quarter end {moment:%Y-%m-%d}</title></line>'
        )
    for n, model in enumerate(models):
        parts.append(_model_row(model, AXIS_HEIGHT + n * ROW_HEIGHT + 4, x, now))
    parts.append(
        f'<line class="today" id="today-{e(key)}" x1="{x(now)}" y1="4" x2="{x(now)}" y2="{bottom}" '
        f'stroke="var(--expired)" stroke-width="2"><title>today, {now:%Y-%m-%d}</title></line>'
        f'<text class="today-label" x="{x(now) + (5 if x(now) < TIMELINE_WIDTH - 130 else -5)}" y="14" '
        f'font-size="11" font-weight="600" fill="var(--expired)" '
        f'text-anchor="{"start" if x(now) < TIMELINE_WIDTH - 130 else "end"}">today {now:%Y-%m-%d}</text>'
    )
    parts.append("</svg>")
    hidden = timeline.get("hidden") or 0
    legend = (
        '<figcaption class="legend">'
        '<span><i class="swatch" style="background:var(--life)"></i>life: created to expiry '
        "(transcriptionDateTime, or the quarter rule)</span>"
        '<span><i class="swatch" style="background:var(--serving)"></i>serving now</span>'
        '<span><i class="swatch" style="background:var(--served)"></i>served before (from its deploy request)</span>'
        '<span><i class="swatch" style="background:var(--held)"></i>held back by the quality gate</span>'
        "<span>dashed: quarter ends (Jan 15, Apr 15, Jul 15, Oct 15)</span>"
        + (f"<span>{hidden} older model(s) not shown</span>" if hidden else "")
        + "</figcaption>"
    )
    return f'<figure class="timeline-figure">{"".join(parts)}{legend}</figure>'


def _model_row(model: Mapping[str, Any], top: float, x, now: datetime) -> str:
    created, expires = _time(model.get("created")), _time(model.get("expires"))
    role = model.get("role") or ""
    name = model.get("name") or model.get("model")
    label = f"#{model.get('generation')} {_short(name)}"
    middle = top + ROW_HEIGHT / 2 - 4
    parts = [
        f'<g class="model role-{e(role)}" data-model="{e(model.get("model"))}">',
        f"<title>{e(name)} ({e(model.get('model'))}): {e(role)}, {e(model.get('status'))}</title>",
        f'<text class="model-name" x="8" y="{middle + 4}" font-size="12" fill="var(--ink)">{e(label)}</text>',
        f'<text class="model-role" x="{LABEL_WIDTH - 10}" y="{middle + 4}" font-size="10" fill="var(--muted)" '
        f'text-anchor="end">{e(role)}</text>',
    ]
    if created is not None:
        until = expires if expires is not None and model.get("status") == "Succeeded" else now
        colour = "var(--held)" if role == "held-back" else "var(--life)"
        dash = (
            ' stroke-dasharray="4 3" stroke="var(--muted)" fill-opacity="0.4"'
            if model.get("status") != "Succeeded"
            else ""
        )
        parts.append(
            f'<rect class="life" x="{x(created)}" y="{middle - 3}" width="{max(1.0, x(until) - x(created))}" '
            f'height="6" rx="3" fill="{colour}"{dash}><title>created {created:%Y-%m-%d}</title></rect>'
            f'<circle class="created" cx="{x(created)}" cy="{middle}" r="4" fill="var(--ink)">'
            f"<title>created {created:%Y-%m-%d}</title></circle>"
        )
    for stretch in model.get("served") or []:
        began, ended = _time(stretch.get("from")), _time(stretch.get("until")) or now
        if began is None:
            continue
        colour = "var(--serving)" if stretch.get("until") is None else "var(--served)"
        parts.append(
            f'<rect class="served" x="{x(began)}" y="{middle - 7}" width="{max(2.0, x(ended) - x(began))}" '
            f'height="14" rx="2" fill="{colour}" fill-opacity="0.85"><title>served {began:%Y-%m-%d} to '
            f"{'now' if stretch.get('until') is None else f'{ended:%Y-%m-%d}'}</title></rect>"
        )
    if expires is not None and model.get("status") == "Succeeded":
        past = expires <= now
        parts.append(
            f'<line class="expiry" x1="{x(expires)}" y1="{middle - 9}" x2="{x(expires)}" y2="{middle + 9}" '
            f'stroke="{"var(--expired)" if past else "var(--ink)"}" stroke-width="3"><title>expires '
            f"{expires:%Y-%m-%d} ({e(model.get('expiresBy'))})</title></line>"
        )
    parts.append("</g>")
    return "".join(parts)


# -- word error rate per generation -----------------------------------------------------------------------------


def wer_figure(row: Mapping[str, Any], key: str) -> str:
    points = list(row.get("wordErrorRates") or [])
    if not points:
        hint = "" if row.get("testSets") else f" Drop a test set at {row['locale']}/test/ to measure each model."
        return (
            f'<figure class="wer-figure"><p class="empty" id="wer-{e(key)}">No word error rates yet.{e(hint)}</p>'
            "</figure>"
        )
    bar, gap, left, top, plot_h = 46, 18, 52, 16, 120
    width = max(360, left + len(points) * (bar + gap) + 20)
    height = top + plot_h + 40
    peak = max(p["wordErrorRate"] for p in points) or 0.01
    ceiling = peak * 1.25

    def y(rate: float) -> float:
        return round(top + plot_h - rate / ceiling * plot_h, 1)

    parts = [
        f'<svg class="wer" id="wer-{e(key)}" viewBox="0 0 {width} {height}" style="max-width:{width}px" role="img" '
        f'aria-label="Word error rate per model generation of {e(row["locale"])}">',
        f"<title>Word error rate per model generation of {e(row['locale'])}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="var(--line)"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="10" text-anchor="end" fill="var(--muted)">'
        f"{e(quality.percent(ceiling))}</text>",
        f'<text x="{left - 6}" y="{top + plot_h}" font-size="10" text-anchor="end" fill="var(--muted)">0 %</text>',
    ]
    for n, point in enumerate(points):
        rate, role = point["wordErrorRate"], point.get("role") or ""
        bx = left + 10 + n * (bar + gap)
        colour = ROLE_COLOURS.get(role, "var(--served)")
        parts.append(
            f'<g class="wer-bar role-{e(role)}" data-model="{e(point.get("model"))}">'
            f"<title>#{e(point.get('generation'))} {e(point.get('name'))}: {e(quality.percent(rate))}"
            f"{', ' + e(point.get('gate')) if point.get('gate') else ''}</title>"
            f'<rect x="{bx}" y="{y(rate)}" width="{bar}" height="{round(top + plot_h - y(rate), 1)}" fill="{colour}" '
            'fill-opacity="0.85"/>'
            f'<text x="{bx + bar / 2}" y="{y(rate) - 4}" font-size="10" text-anchor="middle">'
            f"{e(quality.percent(rate))}</text>"
            f'<text x="{bx + bar / 2}" y="{top + plot_h + 14}" font-size="11" text-anchor="middle">'
            f"#{e(point.get('generation'))}</text>"
            f'<text x="{bx + bar / 2}" y="{top + plot_h + 27}" font-size="9" text-anchor="middle" '
            f'fill="var(--muted)">{e(role)}</text></g>'
        )
    parts.append("</svg>")
    return (
        f'<figure class="wer-figure">{"".join(parts)}<figcaption>Word error rate on the test set per model '
        "generation (#1 = the locale's first trained model), from the newest evaluation that measured it; lower "
        "is better.</figcaption></figure>"
    )
