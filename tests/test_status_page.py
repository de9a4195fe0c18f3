"""build_status's rows for the page (next action, each model's life, word error rates) and the page rendered from
them, on hand-built snapshots (the factories of tests/test_reconcile.py) and a fixed clock."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from shared import managed
from shared.reconcile import Snapshot, locale_states
from shared.speech import CustomModel, Endpoint
from shared.status import (
    COLUMNS,
    DATASET_STUCK_AFTER,
    build_status,
    cell,
    dataset_stuck,
    format_table,
    served_stretches,
)
from shared.status_page import quarter_ends, render_page
from tests.dom import parse
from tests.test_reconcile import NOW, dataset, days, deployed, iso, model, pair, snap, zip_blob

HOSTILE = '<script>alert("x")</script>\'&"'


def row(snapshot: Snapshot, **options) -> dict:
    [only] = build_status(snapshot, **options)
    return only


def kinds(status_row: dict) -> list[str]:
    return [action["kind"] for action in status_row["next"]]


def serving(expires_in: float = 200, **kwargs) -> Snapshot:
    return snap(
        pair("en-US/acoustic/calls.zip", "d1"),
        models=[model("m1", created=NOW - days(300), expires=NOW + days(expires_in))],
        endpoints=[deployed("e1", "m1")],
        **kwargs,
    )


def with_models(snapshot: Snapshot, *models: CustomModel) -> Snapshot:
    return dataclasses.replace(snapshot, models=[*snapshot.models, *models])


# -- the next expected action ------------------------------------------------------------------------------------


def test_the_next_action_of_a_quiet_locale_is_the_retrain_before_expiry():
    quiet = row(serving(200))
    [retrain] = quiet["next"]
    assert retrain["kind"] == "retrain" and retrain["date"] == (NOW + days(170)).strftime("%Y-%m-%d")
    assert "retrain on " + retrain["date"] in retrain["text"]
    assert row(serving(200), tiers=(60, 7))["next"][0]["date"] == (NOW + days(140)).strftime("%Y-%m-%d")
    assert "by hand" in row(serving(200), auto_retrain=False)["next"][0]["text"]


def test_no_base_model_to_retrain_from_is_named():
    assert kinds(row(serving(200, base_models=[]))) == ["retrain-impossible"]


def test_a_dataset_pending_longer_than_the_deadline_is_stuck():
    def pending_since(hours: float) -> dict:
        blob, data = pair("en-US/language/new.zip", "d2", status="Running", created=NOW - timedelta(hours=hours))
        base = serving()
        return row(dataclasses.replace(base, zips=[*base.zips, blob], datasets=[*base.datasets, data]))

    assert DATASET_STUCK_AFTER == timedelta(hours=24)
    stuck = pending_since(25)
    assert kinds(stuck)[0] == "dataset-stuck" and "after 25 h" in stuck["next"][0]["text"]
    assert "dataset-stuck" not in kinds(pending_since(23)) and "processing" in kinds(pending_since(23))
    assert dataset_stuck(dataset("d", status="NotStarted", created=NOW - timedelta(hours=24, seconds=1)), NOW)
    assert not dataset_stuck(dataset("d", status="Succeeded", created=NOW - days(3)), NOW)


def test_a_rejected_zip_asks_for_a_fix_with_its_reason():
    base = serving()
    rejected = zip_blob("en-US/acoustic/bad.zip", "0x9", status="rejected", reason="not a zip file")
    status_row = row(dataclasses.replace(base, zips=[*base.zips, rejected]))
    assert kinds(status_row)[0] == "zip-rejected"
    assert (
        "en-US/acoustic/bad.zip" in status_row["next"][0]["text"] and "not a zip file" in status_row["next"][0]["text"]
    )
    assert status_row["rejectedZips"] == [{"zip": "en-US/acoustic/bad.zip", "reason": "not a zip file"}]


def test_a_model_the_gate_held_back_comes_first_and_one_on_its_way_is_named():
    held = model("m2", created=NOW - days(5), props={managed.QUALITY_GATE: "failed"})
    assert kinds(row(with_models(serving(), held)))[0] == "held-back"

    next_one = model("m2", created=NOW - days(5), props={managed.DEPLOY_REQUESTED: iso(NOW - days(1))})
    on_its_way = row(with_models(serving(), next_one))
    assert kinds(on_its_way)[0] == "deploying" and "on its way" in on_its_way["next"][0]["text"]
    assert kinds(on_its_way)[-1] == "replaced"  # the serving model needs no retrain: m2 replaces it
    assert "AUTO_DEPLOY is off" in row(with_models(serving(), next_one), auto_deploy=False)["next"][0]["text"]


def test_training_and_an_expired_serving_model():
    training = model("m2", created=NOW - days(1), status="Running")
    assert "training" in kinds(row(with_models(serving(), training)))
    assert kinds(row(serving(-3)))[0] == "expired"


def test_a_locale_with_nothing_yet_waits_for_data():
    blob, data = pair("fr-FR/language/a.zip", "d9", status="Running", created=NOW - timedelta(hours=1))
    assert kinds(row(snap((blob, data)))) == ["processing"]


# -- each model's life -----------------------------------------------------------------------------------------


def locale_of(snapshot: Snapshot):
    return locale_states(snapshot)["en-US"]


def test_served_stretches_run_from_one_deploy_request_to_the_next_and_the_current_model_until_now():
    requested = lambda at: {managed.DEPLOY_REQUESTED: iso(at)}  # noqa: E731
    models = [
        model("a", created=NOW - days(300), props=requested(NOW - days(290))),
        model("b", created=NOW - days(200), props=requested(NOW - days(190))),
        model("c", created=NOW - days(100), props=requested(NOW - days(90))),
    ]
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=models, endpoints=[deployed("e1", "c")])

    stretches = served_stretches(locale_of(snapshot), {m.id: m for m in models}, NOW)

    assert stretches == {
        "a": [(NOW - days(290), NOW - days(190))],
        "b": [(NOW - days(190), NOW - days(90))],
        "c": [(NOW - days(90), None)],
    }


def test_after_a_rollback_the_current_model_serves_since_the_endpoint_changed_and_the_previous_one_until_then():
    requested = lambda at: {managed.DEPLOY_REQUESTED: iso(at)}  # noqa: E731
    models = [
        model("a", created=NOW - days(300), props=requested(NOW - days(290))),
        model("b", created=NOW - days(200), props=requested(NOW - days(190))),
    ]
    endpoint = deployed("e1", "a", last_action=NOW - days(10))
    endpoint = Endpoint.from_json(
        {**endpoint.raw, "customProperties": {**endpoint.custom_properties, managed.PREVIOUS_MODEL: "b"}}
    )
    snapshot = snap(pair("en-US/acoustic/calls.zip", "d1"), models=models, endpoints=[endpoint])

    stretches = served_stretches(locale_of(snapshot), {m.id: m for m in models}, NOW)

    assert stretches == {
        "a": [(NOW - days(290), NOW - days(190)), (NOW - days(10), None)],
        "b": [(NOW - days(190), NOW - days(10))],
    }


def test_the_timeline_lists_each_model_with_its_role_generation_expiry_and_word_error_rate():
    no_date = CustomModel.from_json(
        {**model("m3", created=NOW - days(2)).raw, "properties": {}, "customProperties": {
            **model("m3").custom_properties, managed.QUALITY_GATE: "failed", managed.WORD_ERROR_RATE: "0.2"}}
    )  # fmt: skip
    snapshot = with_models(serving(), model("m0", created=NOW - days(400), expires=NOW - days(1)), no_date)

    timeline = row(snapshot)["timeline"]

    by_id = {m["model"]: m for m in timeline["models"]}
    assert [m["model"] for m in timeline["models"]] == ["m0", "m1", "m3"]  # oldest first
    assert {k: by_id[k]["role"] for k in by_id} == {"m0": "retired", "m1": "serving", "m3": "held-back"}
    assert [by_id[k]["generation"] for k in ("m0", "m1", "m3")] == [1, 2, 3]
    assert by_id["m3"]["expiresBy"] == "quarter rule" and by_id["m1"]["expiresBy"] == "transcriptionDateTime"
    assert by_id["m3"]["expires"] == "2028-04-15T00:00:00Z"  # created 2026-02-27: quarter ends Apr 15
    assert row(snapshot)["wordErrorRates"] == [
        {
            "model": "m3",
            "name": "model m3",
            "generation": 3,
            "wordErrorRate": 0.2,
            "gate": "failed",
            "role": "held-back",
        }
    ]


def test_quarter_ends_are_jan_apr_jul_oct_15():
    ends = [d.strftime("%m-%d") for d in quarter_ends(NOW, NOW + days(365))]
    assert ends == ["04-15", "07-15", "10-15", "01-15"]


# -- the page ------------------------------------------------------------------------------------------------------


def hostile_snapshot() -> Snapshot:
    base = serving(20)
    named = CustomModel.from_json({**base.models[0].raw, "displayName": HOSTILE})
    rejected = zip_blob(
        f"en-US/acoustic/{HOSTILE}.zip",
        "0x9",
        status="rejected",
        reason=f"bad {HOSTILE} at https://acct.blob.core.windows.net/c/x.zip?sv=2024&sig=SECRETSIG",
    )
    return dataclasses.replace(base, models=[named], zips=[*base.zips, rejected])


def test_every_name_is_escaped_and_no_sas_reaches_the_page():
    page = render_page(build_status(hostile_snapshot()))

    assert "<script" not in page.lower() and "SECRETSIG" not in page
    dom = parse(page)
    assert HOSTILE in dom.by_id("locale-en-US").text()  # shown as text, in HTML and in the SVG's labels
    assert any(HOSTILE[:20] in t.text() for t in dom.by_id("timeline-en-US").find_all("text"))
    assert "sig=***" in dom.by_id("next-en-US").text()


def test_the_page_shows_per_locale_the_days_left_next_action_gate_and_pictures():
    snapshot = hostile_snapshot()
    rows = build_status(snapshot)
    dom = parse(render_page(rows))

    section = dom.by_id("locale-en-US")
    assert dom.by_id("days-left-en-US").text() == "20" == str(rows[0]["daysLeft"])
    assert dom.by_id("next-en-US").find_all("p")[0].text().endswith(rows[0]["next"][0]["text"])
    today = dom.by_id("today-en-US")
    assert today.tag == "line" and "today" in today.classes
    assert section.find_all("line", "quarter")  # quarter ends drawn
    assert dom.by_id("gate-en-US")
    assert dom.by_id("wer-en-US").tag == "p"  # no evaluations in this snapshot: says so instead of a chart


def test_the_pages_summary_is_the_cli_table_cell_for_cell():
    rows = build_status(hostile_snapshot())
    dom = parse(render_page(rows))
    table = format_table(rows)

    header = [th.text() for th in dom.by_id("summary").find_all("th")]
    assert header == [title for title, _ in COLUMNS] and table.splitlines()[0].split()[:2] == ["LOCALE", "ENDPOINT"]
    cells = [td.text() for td in dom.by_id("summary").find_all("td")]
    assert cells == [cell(rows[0], key) for _, key in COLUMNS]
    assert all(value in table for value in cells)


def test_an_empty_resource_renders_a_page_that_says_so():
    assert "No managed locales yet" in parse(render_page([])).by_id("no-locales").text()


def test_a_word_error_rate_a_person_set_to_nan_or_inf_leaves_the_json_valid():
    """customProperties are strings anyone can edit: "nan" and "inf" parse as floats, which json.dumps writes as
    NaN/Infinity, not JSON (the status page's ?format=json and the CLI's --json)."""
    import json

    for bad in ("nan", "inf", "-inf", "1e400"):
        snapshot = snap(
            pair("en-US/acoustic/calls.zip", "d1"),
            models=[model("m1", created=NOW - days(100), props={managed.WORD_ERROR_RATE: bad})],
            endpoints=[deployed("e1", "m1")],
        )
        rows = build_status(snapshot)
        json.dumps(rows, allow_nan=False)
        render_page(rows)
