"""The status page in a real browser: headless Chromium loads GET /api/status from the offline host (the real worker,
Azurite, the Speech emulator) and a person finds each locale, its days left, its next action and the timeline's
today line; hostile names stay text; the page, the CLI's table and `--json` agree.

Needs Debian's `chromium` (.ci/run installs it). Without it the test skips, saying so, except under CI (CI=1), where
it fails: the browser check must not silently vanish there."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from local import browser, samples
from local.host import LocalHost
from local.runtime import Runtime
from shared import cli, clock, context
from shared.status import COLUMNS, cell
from tests import helpers
from tests.dom import parse

START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
HOSTILE = '<script>alert("pwned")</script>\'&'
SCREENSHOT = Path(__file__).resolve().parents[1] / "bench" / "out" / "status-page-test.png"


@pytest.fixture
def chromium() -> str:
    found = browser.find_chromium()
    if found is None:
        message = "headless Chromium not found (apt-get install chromium, or set CHROMIUM): browser test not run"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run it (.ci/run installs Chromium)")
        pytest.skip(message)
    return found


@pytest.fixture
def resource(monkeypatch, runtime, container, emulator, app_env):
    """en-US: a model deployed through the quality gate, renamed to something hostile, and a rejected zip with a
    hostile name; de-DE: a zip still processing."""
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    context.reset()
    emulator.set_now(START)
    clock.use_clock(emulator.now)
    helpers.drop(container, "en-US/test/holdout.zip", samples.acoustic_zip(5, seconds=0.1))
    model = helpers.train(runtime, container, emulator)
    for _ in range(4):  # evaluate, judge, deploy, report
        assert runtime.fire_timer("reconcile").ok
        runtime.drain(app_env["DEPLOY_QUEUE"])
        helpers.settle(emulator)
    speech = context.speech(context.settings())
    speech.update_model(model.id, display_name=HOSTILE)
    broken = samples.acoustic_zip(2, missing=("lost.wav",))
    helpers.ingest(runtime, container, f"en-US/acoustic/{HOSTILE}.zip", broken)
    helpers.ingest(runtime, container, "de-DE/language/korpus.zip", samples.language_zip())
    return {"model": model, "speech": speech}


def cli_output(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["status", *args], stdout=out, stderr=err) == 0, err.getvalue()
    return out.getvalue()


def test_a_person_sees_each_locale_days_left_next_action_and_today_in_a_real_browser(
    chromium, resource, azurite, app_env, tmp_path
):
    host = LocalHost(
        Runtime(connection_string=azurite.connection_string),
        BlobServiceClient.from_connection_string(azurite.connection_string),
    )
    server = host.serve_http()
    try:
        served = requests.get(f"{server.url}/api/status", timeout=60)
        data = requests.get(f"{server.url}/api/status?format=json", timeout=60).json()
        dom = parse(browser.dump_dom(f"{server.url}/api/status"))
        shot = browser.screenshot(f"{server.url}/api/status", SCREENSHOT, 1320, 1600)
    finally:
        server.stop()

    # what the browser built: no script element, every locale, its days left and next action, today's line
    assert served.headers["content-security-policy"].startswith("default-src 'none'")
    assert not dom.find_all("script") and "<script" not in served.text.lower()
    rows = {row["locale"]: row for row in data}
    assert set(rows) == {"en-US", "de-DE"}
    for locale, row in rows.items():
        section = dom.by_id(f"locale-{locale}")
        assert "locale" in section.classes and section.find_all("h2")[0].text() == locale
        assert dom.by_id(f"next-{locale}").find_all("p")[0].text().endswith(row["next"][0]["text"])
    en = rows["en-US"]
    assert dom.by_id("days-left-en-US").text() == str(en["daysLeft"]) and en["daysLeft"] > 700
    assert dom.by_id("days-left-de-DE").text() == "-"
    today = dom.by_id("today-en-US")
    assert today.tag == "line" and "today" in today.classes
    assert dom.by_id("timeline-en-US").find_all("line", "quarter")
    assert [g.attrs["data-model"] for g in dom.by_id("wer-en-US").find_all("g", "wer-bar")] == [en["model"]]
    assert "passed" in dom.by_id("gate-en-US").text()
    # hostile names are text: in the facts, in the next action (the rejected zip), in the timeline's SVG labels
    assert HOSTILE in dom.by_id("locale-en-US").text()
    assert any(f"{HOSTILE}.zip" in li.text() for li in dom.by_id("next-en-US").walk() if li.tag in ("p", "li"))
    assert any(HOSTILE[:20] in t.text() for t in dom.by_id("timeline-en-US").find_all("text"))
    # no secret anywhere
    for secret in (app_env["SPEECH_KEY"], "AccountKey", "sig="):
        assert secret not in served.text and secret not in json.dumps(data)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the page, the CLI's table and --json agree
    assert json.loads(cli_output("--json")) == data
    page_file = tmp_path / "status.html"
    table = cli_output("--html", str(page_file))
    written = parse(page_file.read_text(encoding="utf-8"))
    for locale, row in rows.items():
        expected = [cell(row, key) for _, key in COLUMNS]
        for page in (dom, written):
            [tr] = [tr for tr in page.by_id("summary").find_all("tr") if tr.attrs.get("data-locale") == locale]
            assert [td.text() for td in tr.find_all("td")] == expected
        line = next(text for text in table.splitlines() if text.startswith(locale))
        assert all(value in line for value in expected), (line, expected)
