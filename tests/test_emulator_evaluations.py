# ruff: noqa: F811 - the fixtures imported from tests.test_emulator are parameters here, as pytest passes them
"""The emulator's evaluations (Evaluations_Create/Get/List/Update/Delete) over real HTTP, every request and answer
checked against the official spec: their progression on the emulator's clock, the word error rates a test sets,
the service's -1 figures until Succeeded, and the body checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from local import evaluations, samples
from tests.test_emulator import (  # noqa: F401 - check, contract, content, emulator and make are fixtures
    SETTLE,
    adaptable_base,
    api,
    check,
    content,
    contract,
    created,
    dataset,
    emulator,
    entity_id,
    error_of,
    make,
    ref,
    trained_model,
)

LINES = 20  # a test set of 20 transcript lines: 200 words, word error rates in steps of 0.5 points


def make_test_set(emulator, content, lines: int = LINES, locale: str = "en-US") -> dict:
    url = content.put(f"test-{lines}-{locale}.zip", samples.acoustic_zip(lines, seconds=0.1))
    data = dataset(emulator, "Acoustic", url, locale=locale)
    emulator.advance(SETTLE)
    return data


def body_for(model1: dict, model2: dict, data: dict) -> dict:
    return {
        "displayName": "gate",
        "locale": "en-US",
        "model1": ref(model1),
        "model2": ref(model2),
        "dataset": ref(data),
    }


def test_an_evaluation_goes_not_started_running_succeeded_with_the_rates_a_test_set(make, content):
    emulator = make(durations={"evaluation": 8})
    model = trained_model(emulator, content)
    base = adaptable_base(emulator)
    data = make_test_set(emulator, content)
    emulator.set_quality(entity_id(base), 0.12)
    emulator.set_quality(entity_id(model), 0.095)

    evaluation = created(emulator, "evaluations", {**body_for(base, model, data), "customProperties": {"a": "b"}})
    path = f"evaluations/{entity_id(evaluation)}"
    assert evaluation["status"] == "NotStarted"
    assert evaluation["properties"] == evaluations.NOT_YET  # the service's "not yet": -1 everywhere
    emulator.advance(timedelta(seconds=4))
    assert api(emulator, "GET", path).json()["status"] == "Running"
    emulator.advance(timedelta(seconds=5))
    done = api(emulator, "GET", path).json()

    props = done["properties"]
    assert done["status"] == "Succeeded" and done["customProperties"] == {"a": "b"}
    assert (props["wordErrorRate1"], props["wordErrorRate2"]) == (0.12, 0.095)
    for n, errors in (("1", 24), ("2", 19)):
        words = props[f"wordCount{n}"]
        assert (props[f"sentenceCount{n}"], words) == (LINES, LINES * evaluations.WORDS_PER_SENTENCE)
        counted = props[f"wordSubstitutionCount{n}"] + props[f"wordDeletionCount{n}"] + props[f"wordInsertionCount{n}"]
        assert counted == errors and props[f"wordErrorRate{n}"] == errors / words
        assert (
            props[f"correctWordCount{n}"] == words - props[f"wordSubstitutionCount{n}"] - props[f"wordDeletionCount{n}"]
        )
    assert (done["model1"], done["model2"], done["dataset"]) == (ref(base), ref(model), ref(data))

    assert [entity_id(e) for e in api(emulator, "GET", "evaluations").json()["values"]] == [entity_id(done)]
    patched = api(emulator, "PATCH", path, json={"customProperties": {"alerted": "passed"}}).json()
    assert patched["customProperties"] == {"alerted": "passed"}
    assert api(emulator, "DELETE", path).status_code == 204
    assert error_of(api(emulator, "GET", path), 404)[0] == "NotFound"
    assert api(emulator, "GET", "evaluations").json() == {"values": []}


def test_default_rates_favour_more_data_and_set_next_quality_marks_the_next_model(emulator, content):
    data = make_test_set(emulator, content)
    base = adaptable_base(emulator)
    first = trained_model(emulator, content)
    emulator.set_next_quality(0.15)
    worse = trained_model(emulator, content)

    default = created(emulator, "evaluations", body_for(base, first, data))
    regressed = created(emulator, "evaluations", body_for(first, worse, data))
    emulator.advance(SETTLE)

    default = api(emulator, "GET", f"evaluations/{entity_id(default)}").json()["properties"]
    regressed = api(emulator, "GET", f"evaluations/{entity_id(regressed)}").json()["properties"]
    assert (default["wordErrorRate1"], default["wordErrorRate2"]) == (0.12, 0.11)  # one dataset: a point better
    assert (regressed["wordErrorRate1"], regressed["wordErrorRate2"]) == (0.11, 0.15)


def test_a_failed_evaluation_reports_its_error_and_no_figures(emulator, content):
    model = trained_model(emulator, content)
    data = make_test_set(emulator, content)
    emulator.fail_next("evaluation", code="InvalidAudio", message="No audio could be recognized.")

    evaluation = created(emulator, "evaluations", body_for(adaptable_base(emulator), model, data))
    emulator.advance(SETTLE)

    failed = api(emulator, "GET", f"evaluations/{entity_id(evaluation)}").json()
    assert failed["status"] == "Failed"
    assert failed["properties"]["error"] == {"code": "InvalidAudio", "message": "No audio could be recognized."}
    assert failed["properties"]["wordErrorRate2"] == -1.0


def test_the_body_is_checked_like_the_spec_and_the_service_say(emulator, content, check):
    model = trained_model(emulator, content)
    base = adaptable_base(emulator)
    data = make_test_set(emulator, content)
    text = dataset(emulator, "Language", content.put("text.zip", samples.language_zip()))
    german = make_test_set(emulator, content, lines=2, locale="de-DE")
    emulator.advance(SETTLE)
    good = body_for(base, model, data)
    cases = [
        ({"status": "Succeeded"}, "read-only"),
        ({"properties": {"wordErrorRate1": 0.1}}, "read-only"),
        ({"model1": entity_id(base)}, "'model1'"),
        ({"dataset": {"self": "datasets/x"}}, "entity reference"),
        ({"description": 7}, "string"),
        ({"dataset": ref(text)}, "Acoustic"),
        ({"dataset": ref(german)}, "de-DE"),
        ({"model2": {"self": model["self"].replace(entity_id(model), "missing")}}, "does not exist"),
    ]
    with check.deliberately_invalid():
        for change, fragment in cases:
            resp = api(emulator, "POST", "evaluations", json={**good, **change})
            assert error_of(resp, 400)[0] == "InvalidArgument", change
            assert fragment in resp.json()["message"], (change, resp.json())
        missing = {k: v for k, v in good.items() if k != "model2"}
        assert error_of(api(emulator, "POST", "evaluations", json=missing), 400)[0] == "InvalidArgument"
    assert api(emulator, "GET", "evaluations").json() == {"values": []}


def test_qualities_can_be_set_over_http(emulator, content):
    model = trained_model(emulator, content)
    data = make_test_set(emulator, content)

    def control(body: dict) -> requests.Response:
        headers = {"Ocp-Apim-Subscription-Key": emulator.key}
        return requests.post(f"{emulator.url}/_emulator/quality", json=body, headers=headers, timeout=5)

    assert control({"model": entity_id(model), "wer": 0.2}).status_code == 204
    assert error_of(control({"model": entity_id(model), "wer": -1}), 400)[0] == "InvalidArgument"
    assert control({"next": 0.3}).status_code == 204

    evaluation = created(emulator, "evaluations", body_for(adaptable_base(emulator), model, data))
    emulator.advance(SETTLE)

    assert api(emulator, "GET", f"evaluations/{entity_id(evaluation)}").json()["properties"]["wordErrorRate2"] == 0.2


@pytest.mark.parametrize(("wer", "errors"), [(0.0, 0), (0.0125, 3), (1.5, 300)])
def test_metrics_stay_consistent_whatever_the_rate(wer, errors):
    figures = evaluations.metrics(0.1, wer, sentences=LINES)
    words = figures["wordCount2"]
    counted = figures["wordSubstitutionCount2"] + figures["wordDeletionCount2"] + figures["wordInsertionCount2"]
    assert counted == errors and figures["wordErrorRate2"] == round(errors / words, 6)
    assert 0 <= figures["correctWordCount2"] <= words and min(figures.values()) >= 0
