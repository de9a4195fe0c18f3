"""The status command, against the emulator with the app's own settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared import clock, context, status
from tests import helpers


def test_status_shows_each_locale_with_its_endpoint_model_expiry_and_pending_work(
    runtime, container, emulator, app_env, monkeypatch, capsys
):
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    context.reset()
    emulator.set_now(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    clock.use_clock(emulator.now)
    assert "No managed locales yet" in status.format_table([])

    model = helpers.train(runtime, container, emulator)
    runtime.fire_timer("reconcile")
    runtime.drain(app_env["DEPLOY_QUEUE"])
    helpers.ingest(runtime, container, "de-DE/language/korpus.zip")  # still processing

    assert status.main(["--json"]) == 0
    rows = {row["locale"]: row for row in json.loads(capsys.readouterr().out)}
    en = rows["en-US"]
    assert en["model"] == model.id and en["endpoint"] and en["expires"] == "2029-01-15"
    assert en["daysLeft"] == (model.transcription_expiry.date() - emulator.now().date()).days
    assert en["datasets"] == 1 and [p.split()[0] for p in en["pending"]] == ["endpoint"]  # still deploying
    assert rows["de-DE"]["endpoint"] is None and rows["de-DE"]["pending"] == [
        "zip de-DE/language/korpus.zip processing"
    ]

    assert status.main([]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["LOCALE", "ENDPOINT", "STATE"]
    assert "en-US" in table and "de-DE" in table and "2029-01-15" in table
