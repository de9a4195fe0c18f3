"""The soak's timeline as a hand-written SVG (standard library only), drawn from the JSON report.

Per locale: the base models that can still be adapted during the run (adaptation, then transcription only), every
custom model from its training to its expiry date with the stretches it served the endpoint, the zips dropped, the
alerts, and the incidents. The dashed lines are the quarter ends (Jan 15, Apr 15, Jul 15, Oct 15) the expiry rule
counts from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import escape

WIDTH, LEFT, RIGHT = 1400, 210, 30
ROW, BASE_ROW, GAP = 16, 5, 26
COLORS = {
    "trained": ("#c6dbef", "#2171b5"),  # (model alive, model serving)
    "retrain": ("#dadaeb", "#6a51a3"),
    "failed": "#cb181d",
    "held": "#fdd0a2",  # held back by the quality gate
    "adapt": "#41ab5d",
    "transcribe": "#c7e9c0",
    "drop": "#08519c",
    "actionable": "#d7301f",
    "informational": "#969696",
    "incident": "#fdae6b",
    "expiry": "#000000",
}
INCIDENT_LABELS = {"fail-training": "failed training", "throttle": "429 storm", "patch-outage": "PATCH outage"}


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Canvas:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self.parts: list[str] = []

    def x(self, moment: datetime) -> float:
        moment = min(max(moment, self.start), self.end)
        return LEFT + (moment - self.start) / (self.end - self.start) * (WIDTH - LEFT - RIGHT)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> None:
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 1):.1f}" height="{h:.1f}" fill="{fill}"{extra}/>'
        )

    def span(self, start: datetime, end: datetime, y: float, h: float, fill: str, title: str = "") -> None:
        x0, x1 = self.x(start), self.x(end)
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.parts.append(
            f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 1):.1f}" height="{h:.1f}" fill="{fill}">{tip}</rect>'
        )

    def line(self, x0: float, y0: float, x1: float, y1: float, stroke: str, extra: str = "") -> None:
        self.parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="{stroke}"{extra}/>')

    def text(self, x: float, y: float, text: str, size: int = 11, extra: str = "") -> None:
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}"{extra}>{escape(text)}</text>')

    def marker(self, moment: datetime, y: float, shape: str, fill: str, title: str) -> None:
        x = self.x(moment)
        points = {
            "down": f"{x - 4:.1f},{y - 5:.1f} {x + 4:.1f},{y - 5:.1f} {x:.1f},{y + 3:.1f}",
            "diamond": f"{x:.1f},{y - 5:.1f} {x + 4:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 4:.1f},{y:.1f}",
        }
        self.parts.append(f'<polygon points="{points[shape]}" fill="{fill}"><title>{escape(title)}</title></polygon>')


def timeline_svg(report: dict) -> str:
    p = report["parameters"]
    canvas = Canvas(parse(p["start"]), parse(p["end"]))
    canvas.text(
        8,
        22,
        "Soak timeline per locale: base models; custom models (light: can transcribe, dark: serving "
        "the endpoint, black tick: expiry); zips, alerts, incidents",
        14,
        ' font-weight="bold"',
    )
    y = 40
    axis_top = y
    y = axis(canvas, y)
    for locale, figures in report["locales"].items():
        y = locale_block(canvas, locale, figures, report, y + GAP)
    quarter_lines(canvas, axis_top + 18, y)
    y = legend(canvas, y + GAP)
    body = "\n".join(canvas.parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y + 10:.0f}" '
        f'viewBox="0 0 {WIDTH} {y + 10:.0f}" font-family="Helvetica, Arial, sans-serif">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n'
    )


def axis(canvas: Canvas, y: float) -> float:
    canvas.text(LEFT - 62, y + 12, f"{canvas.start:%Y-%m-%d}", 11, ' fill="#555"')
    for year in range(canvas.start.year, canvas.end.year + 1):
        for month in (1, 4, 7, 10):
            moment = datetime(year, month, 1, tzinfo=UTC)
            if canvas.start <= moment <= canvas.end:
                x = canvas.x(moment)
                canvas.line(x, y + 4, x, y + 12, "#555")
                label = str(year) if month == 1 else f"{moment:%b}"
                canvas.text(x + 2, y + 12, label, 11 if month == 1 else 9, ' fill="#555"')
    return y + 18


def quarter_lines(canvas: Canvas, top: float, bottom: float) -> None:
    for year in range(canvas.start.year, canvas.end.year + 1):
        for month in (1, 4, 7, 10):
            moment = datetime(year, month, 15, tzinfo=UTC)
            if canvas.start <= moment <= canvas.end:
                x = canvas.x(moment)
                canvas.line(x, top, x, bottom, "#bbb", ' stroke-dasharray="2,3"')


def locale_block(canvas: Canvas, locale: str, figures: dict, report: dict, y: float) -> float:
    top = y
    expired = len(figures["expiredDays"])
    canvas.text(8, y + 12, locale, 14, ' font-weight="bold"')
    canvas.text(
        8,
        y + 27,
        f"{expired} day(s) on an expired model",
        10,
        f' fill="{COLORS["actionable"] if expired else "#238b45"}"',
    )
    y = base_rows(canvas, figures["baseModels"], y + 36)
    for training in figures["trainings"]:
        model_row(canvas, training, y)
        y += ROW
    y = event_row(canvas, figures["drops"], [a for a in report["alerts"]["list"] if a["locale"] == locale], y + 4)
    for incident in (i for i in report["incidents"] if i["locale"] == locale):
        incident_band(canvas, incident, top, y)
    return y


def base_rows(canvas: Canvas, bases: list[dict], y: float) -> float:
    relevant = [b for b in bases if parse(b["adaptUntil"]) > canvas.start]
    canvas.text(8, y + 8, f"base models ({len(relevant)})", 10, ' fill="#555"')
    for base in relevant:
        released, adapt, transcribe = parse(base["released"]), parse(base["adaptUntil"]), parse(base["transcribeUntil"])
        canvas.span(
            released, adapt, y, BASE_ROW - 1, COLORS["adapt"], f"{base['name']}: adaptation until {adapt:%Y-%m-%d}"
        )
        canvas.span(
            adapt,
            transcribe,
            y,
            BASE_ROW - 1,
            COLORS["transcribe"],
            f"{base['name']}: transcription until {transcribe:%Y-%m-%d}",
        )
        y += BASE_ROW
    return y + 6


def model_row(canvas: Canvas, training: dict, y: float) -> None:
    created, expires = parse(training["created"]), parse(training["expires"])
    failed = training["status"] == "Failed"
    held = training.get("gate") in ("failed", "error", "untested") and not training["served"]
    label = ("expiry retrain" if training["reason"] == "expiry" else "data change") + (
        " (failed)" if failed else " (held back)" if held else ""
    )
    canvas.text(8, y + 11, f"{created:%Y-%m-%d} {label}", 10)
    title = f"model {training['model']} ({label}) on {training['baseModel']}, expires {expires:%Y-%m-%d}"
    if failed:
        canvas.span(created, parse(training["finished"]), y + 2, ROW - 5, COLORS["failed"], title)
        return
    alive, serving = COLORS["retrain" if training["reason"] == "expiry" else "trained"]
    canvas.span(created, expires, y + 2, ROW - 5, COLORS["held"] if held else alive, title)
    for served in training["served"]:
        canvas.span(parse(served["from"]), parse(served["until"]), y + 2, ROW - 5, serving, f"served {title}")
    if expires <= canvas.end:
        x = canvas.x(expires)
        canvas.line(x, y, x, y + ROW - 1, COLORS["expiry"], ' stroke-width="2"')


def event_row(canvas: Canvas, drops: list[dict], alerts: list[dict], y: float) -> float:
    canvas.text(8, y + 10, "zips / alerts", 10, ' fill="#555"')
    for drop in drops:
        canvas.marker(parse(drop["at"]), y + 4, "down", COLORS["drop"], f"{drop['at'][:16]} zip {drop['blob']}")
    for alert in alerts:
        fill = COLORS["actionable" if alert["actionable"] else "informational"]
        title = f"{alert['at'][:16]} {alert['kind']}: {alert['message']}"
        canvas.marker(parse(alert["at"]), y + 16, "diamond", fill, title)
    return y + 24


def incident_band(canvas: Canvas, incident: dict, top: float, bottom: float) -> None:
    start = parse(incident["from"])
    end = parse(incident["until"]) if incident["until"] else start
    x0 = canvas.x(start)
    canvas.rect(x0 - 1, top, canvas.x(end) - x0 + 2, bottom - top, COLORS["incident"], ' fill-opacity="0.55"')
    canvas.text(x0 + 3, top + 10, INCIDENT_LABELS[incident["kind"]], 9, ' fill="#a63603"')


def legend(canvas: Canvas, y: float) -> float:
    items = [
        (COLORS["adapt"], "base model: can be adapted"), (COLORS["transcribe"], "base model: transcription only"),
        (COLORS["trained"][1], "model from a data change (dark: serving)"),
        (COLORS["retrain"][1], "expiry retrain (dark: serving)"), (COLORS["failed"], "failed training"),
        (COLORS["held"], "held back by the quality gate"),
        (COLORS["drop"], "zip dropped"), (COLORS["actionable"], "actionable alert"),
        (COLORS["informational"], "informational alert"), (COLORS["incident"], "incident"),
    ]  # fmt: skip
    x = 8.0
    for color, label in items:
        canvas.rect(x, y, 12, 10, color)
        canvas.text(x + 16, y + 9, label, 10)
        x += 28 + 6 * len(label)
        if x > WIDTH - 260:
            x, y = 8.0, y + 16
    canvas.text(
        8,
        y + 30,
        "Black tick: a model's transcription expiry date. Dashed lines: quarter ends (Jan 15, Apr 15, Jul 15, Oct 15).",
        10,
        ' fill="#555"',
    )
    return y + 36
