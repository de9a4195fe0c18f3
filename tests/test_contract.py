"""The official-spec contract checker: it must catch what is wrong and pass the spec's own examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.contract import SpecContract

CONTRACT, REASON = SpecContract.load_or_skip_reason()
pytestmark = pytest.mark.skipif(CONTRACT is None, reason=REASON)
EXAMPLES = SpecContract.spec_path().parent / "examples" / "2025-10-15"
BASE = "https://westus.api.cognitive.microsoft.com/speechtotext"
V = "api-version=2025-10-15"
DATASET = {"displayName": "d", "locale": "en-US", "kind": "Acoustic", "contentUrl": "https://contoso.com/a.zip"}


@pytest.fixture
def contract() -> SpecContract:
    assert CONTRACT is not None
    return CONTRACT


def test_a_valid_dataset_create_passes(contract):
    assert contract.check_request("POST", f"{BASE}/datasets?{V}", DATASET, "application/json") == []


def test_a_missing_required_property_is_caught(contract):
    body = {k: v for k, v in DATASET.items() if k != "kind"}
    [problem] = contract.check_request("POST", f"{BASE}/datasets?{V}", body)
    assert "'kind' is a required property" in problem and "Datasets_Create" in problem


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"displayName": 5}, "displayName: 5 is not of type 'string'"),
        ({"kind": "Video"}, "kind: 'Video' is not one of"),
        ({"customProperties": {"a": 1}}, "customProperties/a: 1 is not of type 'string'"),
        ({"contentUrl": "a.zip"}, "contentUrl: 'a.zip' is not a 'uri'"),
        ({"displayName": ""}, "displayName: '' should be non-empty"),
    ],
)
def test_wrong_values_are_caught(contract, change, fragment):
    problems = contract.check_request("POST", f"{BASE}/datasets?{V}", {**DATASET, **change})
    assert any(fragment in p for p in problems), problems


def test_read_only_properties_are_flagged_in_requests_only(contract):
    body = {**DATASET, "status": "Succeeded", "links": {"files": "https://x/files"}}
    problems = contract.check_request("POST", f"{BASE}/datasets?{V}", body)
    assert sorted(p.split(": ")[1] for p in problems) == ["links", "links/files", "status"]
    response = {**body, "self": f"{BASE}/datasets/1?{V}", "createdDateTime": "2026-01-01T00:00:00Z"}
    assert contract.check_response("POST", f"{BASE}/datasets?{V}", 201, response) == []


def test_unknown_paths_and_methods_are_caught(contract):
    [unknown] = contract.check_request("GET", f"{BASE}/recipes?{V}", None)
    assert unknown == "/speechtotext/recipes matches no path of the spec"
    [method] = contract.check_request("PUT", f"{BASE}/datasets?{V}", {})
    assert method == "PUT is not an operation of /speechtotext/datasets"
    assert "is not under /speechtotext/" in contract.check_request("GET", f"https://x/datasets?{V}", None)[0]


def test_the_api_version_is_required_and_must_be_the_specs(contract):
    assert contract.check_request("GET", f"{BASE}/datasets", None) == [
        "required query parameter 'api-version' is missing (Datasets_List)"
    ]
    assert contract.check_request("GET", f"{BASE}/datasets?api-version=v3.2", None) == [
        "api-version is 'v3.2', the spec's is '2025-10-15'"
    ]


def test_query_parameters_are_checked(contract):
    problems = contract.check_request("GET", f"{BASE}/datasets?{V}&top=ten&$skip=2", None)
    assert problems == [
        "query parameter 'top' must be an integer, got 'ten'",
        "query parameter '$skip' is not declared for Datasets_List",
    ]
    blocks = contract.check_request("PUT", f"{BASE}/datasets/1/blocks?{V}", None, "application/octet-stream")
    assert blocks == ["required query parameter 'blockid' is missing (Datasets_UploadBlock)"]


def test_bodies_and_content_types(contract):
    [missing] = contract.check_request("POST", f"{BASE}/datasets?{V}", None)
    assert missing == "Datasets_Create requires a JSON body (dataset)"
    assert contract.check_request("GET", f"{BASE}/datasets?{V}", {"x": 1}) == [
        "Datasets_List takes no body, but a JSON body was sent"
    ]
    problems = contract.check_request("POST", f"{BASE}/datasets?{V}", DATASET, "text/plain")
    assert problems == ["Content-Type 'text/plain' is not one of ['application/json'] (Datasets_Create)"]
    patch = f"{BASE}/datasets/1?{V}"
    assert contract.check_request("PATCH", patch, {"displayName": "x"}, "application/merge-patch+json") == []


def test_literal_path_segments_win_over_parameters(contract):
    assert contract.operation("GET", f"{BASE}/models/base?{V}").id == "Models_ListBaseModels"
    assert contract.operation("GET", f"{BASE}/models/locales?{V}").id == "Models_ListSupportedLocales"
    assert contract.operation("GET", f"{BASE}/models/1?{V}").id == "Models_GetCustomModel"
    assert contract.operation("POST", f"{BASE}/models/1:copy?{V}").id == "Models_Copy"
    assert contract.operation("POST", f"{BASE}/datasets/1/blocks:commit?{V}").id == "Datasets_CommitBlocks"


def test_response_statuses_and_bodies(contract):
    url = f"{BASE}/datasets/1?{V}"
    assert contract.check_response("GET", url, 201, {}) == [
        "status 201 is not declared for Datasets_Get (declared: 200, default)"
    ]
    assert contract.check_response("DELETE", url, 204, None) == []
    [extra] = contract.check_response("DELETE", url, 204, {"x": 1})
    assert extra == "Datasets_Delete 204 declares no body, but one was sent"
    assert contract.check_response("GET", url, 200, None) == ["Datasets_Get 200 body: missing (no JSON body)"]
    assert contract.check_response("GET", url, 404, {"code": "NotFound", "message": "gone"}) == []
    [problem] = contract.check_response("GET", url, 429, {"code": "SlowDown", "message": "x"})
    assert problem.startswith("Datasets_Get 429 body: code: 'SlowDown' is not one of")
    inner = {"code": "InvalidArgument", "message": "m", "innerError": {"code": "NoSuchDetail", "message": "m"}}
    assert "innerError/code" in contract.check_response("POST", f"{BASE}/models?{V}", 400, inner)[0]


def test_an_unknown_paths_error_answer_is_checked_against_the_error_shape(contract):
    assert contract.check_response("GET", f"{BASE}/recipes?{V}", 404, {"code": "NotFound", "message": "no"}) == []
    assert contract.check_response("GET", f"{BASE}/recipes?{V}", 404, None) == ["error body: missing (no JSON body)"]
    assert contract.check_response("GET", f"{BASE}/recipes?{V}", 200, {}) == [
        "200 answer to /speechtotext/recipes matches no path of the spec"
    ]


def test_items_of_a_page_are_validated(contract):
    page = {"values": [{"displayName": "only a name"}], "@nextLink": "datasets?skip=2"}
    problems = contract.check_response("GET", f"{BASE}/datasets?{V}", 200, page)
    assert problems == [
        "Datasets_List 200 body: @nextLink: 'datasets?skip=2' is not a 'uri'",
        "Datasets_List 200 body: values/0: 'kind' is a required property",
        "Datasets_List 200 body: values/0: 'locale' is a required property",
    ]


def _example_operations(contract: SpecContract) -> dict[str, tuple[str, str]]:
    """Example file name -> (path template, method), from the spec's x-ms-examples references."""
    found = {}
    for template, item in contract.spec["paths"].items():
        for method, op in item.items():
            for ref in (op.get("x-ms-examples") or {}).values() if isinstance(op, dict) else ():
                found[Path(ref["$ref"]).name] = (template, method)
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")) if CONTRACT else [])
def test_the_specs_own_examples_pass(contract, name):
    # Two upstream quirks that the schema cannot see, so these still pass: in create_web_hook.json the links
    # `test` and `ping` point at each other's URL; update_endpoint.json sends `properties.contentLoggingEnabled`,
    # which is right (EndpointPropertiesUpdate), while the Endpoint entity calls it `loggingEnabled`.
    example = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    template, method = _example_operations(contract)[name]
    params = example["parameters"]
    path = template.format(**{k: v for k, v in params.items() if "{" + k + "}" in template})
    url = f"{params['Endpoint'].rstrip('/')}/speechtotext{path}?api-version={params['api-version']}"
    op = contract.operation(method, url)
    assert op is not None
    body = params.get(op.body["name"]) if op.body else None
    assert contract.check_request(method, url, body, params.get("Content-Type")) == []
    for status, response in example["responses"].items():
        assert contract.check_response(method, url, int(status), response.get("body")) == []


def test_a_missing_spec_gives_a_reason_to_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("SPEECH_SPEC_PATH", str(tmp_path / "absent.json"))
    contract, reason = SpecContract.load_or_skip_reason()
    assert contract is None and str(tmp_path / "absent.json") in reason
