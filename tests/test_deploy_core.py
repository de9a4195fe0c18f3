"""Deploy requests (shared/deploy.py): decoding a queue message and deciding what to do with the endpoint."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import managed
from shared.deploy import MAX_ENDPOINTS, DeployRequest, parse_message, plan_deploy
from shared.speech import CustomModel, Endpoint

NOW = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
SPEECH = "https://westeurope.api.cognitive.microsoft.com/speechtotext"


# -- factories ---------------------------------------------------------------------------------------------------


def uri(collection: str, entity_id: str) -> str:
    return f"{SPEECH}/{collection}/{entity_id}?api-version=2025-10-15"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def message(**fields: Any) -> str:
    body = {"locale": "en-US", "model": uri("models", "m1"), "reason": "trained", **fields}
    return json.dumps({k: v for k, v in body.items() if v is not ...})


def request(model: str = "m1", locale: str = "en-US", endpoint: str | None = None, reason: str = "manual"):
    return DeployRequest(locale=locale, model=uri("models", model), endpoint=endpoint, reason=reason)


def model(
    model_id: str = "m1",
    *,
    locale: str = "en-US",
    status: str = "Succeeded",
    expires: datetime | None = NOW + timedelta(days=400),
) -> CustomModel:
    properties: dict[str, Any] = {}
    if expires is not None:
        properties["deprecationDates"] = {"transcriptionDateTime": iso(expires)}
    return CustomModel.from_json(
        {
            "self": uri("models", model_id),
            "baseModel": {"self": uri("models/base", "base-2025")},
            "datasets": [{"self": uri("datasets", "d1")}],
            "properties": properties,
            "status": status,
            "createdDateTime": iso(NOW - timedelta(days=10)),
            "lastActionDateTime": iso(NOW - timedelta(days=9)),
            "locale": locale,
            "displayName": f"model {model_id}",
            "customProperties": managed.managed_properties(),
        }
    )


def endpoint(
    endpoint_id: str,
    model_id: str = "m0",
    *,
    locale: str = "en-US",
    is_managed: bool = True,
    created: datetime = NOW - timedelta(days=30),
) -> Endpoint:
    return Endpoint.from_json(
        {
            "self": uri("endpoints", endpoint_id),
            "model": {"self": uri("models", model_id)},
            "links": {"restInteractive": f"https://westeurope.stt.speech.microsoft.com/?cid={endpoint_id}"},
            "properties": {"loggingEnabled": False},
            "status": "Succeeded",
            "createdDateTime": iso(created),
            "lastActionDateTime": iso(created),
            "locale": locale,
            "displayName": f"endpoint {endpoint_id}",
            "customProperties": managed.managed_properties() if is_managed else {},
        }
    )


def others(count: int) -> list[Endpoint]:
    """Endpoints of other locales, not managed by the app."""
    return [endpoint(f"other-{i}", locale="de-DE", is_managed=False) for i in range(count)]


# -- parse_message ----------------------------------------------------------------------------------------------


def test_a_full_message_is_parsed():
    text = message(endpoint=uri("endpoints", "e1"), reason="rollback")

    assert parse_message(text) == DeployRequest(
        locale="en-US", model=uri("models", "m1"), endpoint=uri("endpoints", "e1"), reason="rollback"
    )


@pytest.mark.parametrize("reason", ["trained", "expiry", "manual", "rollback"])
def test_every_reason_of_the_contract_is_accepted(reason):
    parsed = parse_message(message(reason=reason))

    assert isinstance(parsed, DeployRequest) and parsed.reason == reason and parsed.endpoint is None


def test_ids_locales_and_whitespace_are_normalised():
    parsed = parse_message(json.dumps({"locale": " EN-us ", "model": " m1 ", "endpoint": " e1 ", "reason": "manual"}))

    assert parsed == DeployRequest(locale="en-US", model="m1", endpoint="e1", reason="manual")


@pytest.mark.parametrize(("raw", "canonical"), [("sr-latn-rs", "sr-Latn-RS"), ("es-419", "es-419"), ("zh-cn", "zh-CN")])
def test_locales_with_script_or_numeric_region_are_accepted(raw, canonical):
    parsed = parse_message(message(locale=raw))

    assert isinstance(parsed, DeployRequest) and parsed.locale == canonical


def test_a_base64_encoded_message_is_accepted():
    text = base64.b64encode(message().encode()).decode()

    assert parse_message(text) == DeployRequest("en-US", uri("models", "m1"), None, "trained")


def test_a_message_without_reason_is_malformed():
    assert "'reason' must be one of" in parse_message(message(reason=...))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("deploy en-US please", "not JSON"),
        ("", "not JSON"),
        ("{'locale': 'en-US'}", "not JSON"),
        ("bm90IGpzb24=", "not JSON"),  # base64 of "not json"
        ("[1, 2]", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('"en-US"', "must be a JSON object"),
        (base64.b64encode(b"[]").decode(), "must be a JSON object"),
        (message(locale=...), "'locale' is required"),
        (message(model=...), "'model' is required"),
        (message(locale="  "), "'locale' is required"),
        (message(model=""), "'model' is required"),
        (message(model=42), "'model' is required"),
        (message(locale=["en-US"]), "'locale' is required"),
        (message(endpoint=""), "'endpoint' must be"),
        (message(endpoint=7), "'endpoint' must be"),
        (message(reason="because"), "'reason' must be one of trained, expiry, manual, rollback"),
        (message(reason=None), "'reason' must be one of"),
        (message(reason="Trained"), "'reason' must be one of"),
        (message(locale="english"), "'english' is not a locale"),
        (message(locale="en_US"), "'en_US' is not a locale"),
    ],
)
def test_a_malformed_message_is_rejected_with_why(text, why):
    parsed = parse_message(text)

    assert isinstance(parsed, str) and why in parsed


def test_every_problem_of_a_message_is_named():
    parsed = parse_message(json.dumps({"reason": "soon", "endpoint": ""}))

    assert isinstance(parsed, str)
    for part in ("'locale' is required", "'model' is required", "'endpoint' must be", "'reason' must be one of"):
        assert part in parsed


# -- plan_deploy: is the model usable? -----------------------------------------------------------------------------


def test_a_base_model_is_rejected():
    base = DeployRequest("en-US", uri("models/base", "base-2025"), None, "manual")

    plan = plan_deploy(base, model(), [], NOW)

    assert plan.action == "reject" and "base model" in plan.why


def test_a_model_that_does_not_exist_is_rejected():
    plan = plan_deploy(request("missing"), None, [endpoint("e1")], NOW)

    assert (plan.action, plan.why) == ("reject", "model missing does not exist")


@pytest.mark.parametrize("status", ["NotStarted", "Running", "Failed"])
def test_a_model_that_has_not_succeeded_is_rejected(status):
    plan = plan_deploy(request(), model(status=status), [endpoint("e1")], NOW)

    assert plan.action == "reject" and status in plan.why and not plan.critical


def test_a_model_of_another_locale_is_rejected():
    plan = plan_deploy(request(locale="de-DE"), model(locale="en-US"), [], NOW)

    assert plan.action == "reject" and "en-US" in plan.why and "de-DE" in plan.why


@pytest.mark.parametrize("expires", [NOW, NOW - timedelta(seconds=1), NOW - timedelta(days=300)])
def test_an_expired_model_is_rejected(expires):
    plan = plan_deploy(request(), model(expires=expires), [endpoint("e1")], NOW)

    assert plan.action == "reject" and "expired on" in plan.why


@pytest.mark.parametrize("expires", [NOW + timedelta(seconds=1), None])
def test_a_model_not_yet_expired_is_deployed(expires):
    assert plan_deploy(request(), model(expires=expires), [endpoint("e1")], NOW).action == "patch"


# -- plan_deploy: which endpoint --------------------------------------------------------------------------------


def test_the_locales_managed_endpoint_is_patched():
    target = endpoint("e-en", "m0")
    endpoints = [endpoint("e-de", locale="de-DE"), endpoint("theirs", is_managed=False), target]

    plan = plan_deploy(request(), model(), endpoints, NOW)

    assert (plan.action, plan.endpoint) == ("patch", target)
    assert "m0" in plan.why and "m1" in plan.why


def test_an_endpoint_already_on_the_model_is_left_alone():
    target = endpoint("e-en", "m1")

    plan = plan_deploy(request(), model(), [target], NOW)

    assert (plan.action, plan.endpoint) == ("noop", target)


def test_without_a_managed_endpoint_for_the_locale_one_is_created():
    endpoints = [endpoint("e-de", locale="de-DE"), endpoint("theirs", "m1", is_managed=False)]

    plan = plan_deploy(request(), model(), endpoints, NOW)

    assert (plan.action, plan.endpoint) == ("create", None)


def test_of_two_managed_endpoints_of_a_locale_the_oldest_is_used():
    older = endpoint("older", created=NOW - timedelta(days=90))
    newer = endpoint("newer", created=NOW - timedelta(days=1))

    assert plan_deploy(request(), model(), [newer, older], NOW).endpoint == older


@pytest.mark.parametrize("reference", [uri("endpoints", "theirs"), "theirs"])
def test_an_explicit_endpoint_is_patched_even_if_not_managed(reference):
    theirs = endpoint("theirs", is_managed=False)
    endpoints = [endpoint("e-en"), theirs]

    plan = plan_deploy(request(endpoint=reference), model(), endpoints, NOW)

    assert (plan.action, plan.endpoint) == ("patch", theirs)


def test_an_explicit_endpoint_already_on_the_model_is_left_alone():
    plan = plan_deploy(request(endpoint="e-en"), model(), [endpoint("e-en", "m1")], NOW)

    assert plan.action == "noop"


def test_an_explicit_endpoint_that_does_not_exist_is_rejected():
    plan = plan_deploy(request(endpoint=uri("endpoints", "gone")), model(), [endpoint("e-en")], NOW)

    assert (plan.action, plan.why) == ("reject", "endpoint gone does not exist")


def test_an_explicit_endpoint_of_another_locale_is_rejected():
    plan = plan_deploy(request(endpoint="e-de"), model(), [endpoint("e-de", locale="de-DE")], NOW)

    assert plan.action == "reject" and "de-DE" in plan.why


# -- plan_deploy: the resource's endpoint limit -------------------------------------------------------------------


def test_below_the_endpoint_limit_an_endpoint_is_created():
    assert plan_deploy(request(), model(), others(MAX_ENDPOINTS - 1), NOW).action == "create"


def test_at_the_endpoint_limit_the_request_is_rejected_clearly():
    plan = plan_deploy(request(), model(), others(MAX_ENDPOINTS), NOW)

    assert (plan.action, plan.critical) == ("reject", True)
    assert "50 endpoints" in plan.why and "en-US" in plan.why


def test_at_the_endpoint_limit_an_existing_endpoint_is_still_patched():
    endpoints = [*others(MAX_ENDPOINTS - 1), endpoint("e-en")]

    assert plan_deploy(request(), model(), endpoints, NOW).action == "patch"
