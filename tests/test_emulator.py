"""The Speech emulator over real HTTP, every request and answer checked against the official spec."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from local import samples
from local.speech_emulator import API_VERSION, SpeechEmulator, deprecation_dates
from tests.contract import SpecContract

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SETTLE = 60  # seconds of emulator time after which everything has finished
FOLDER_KINDS = {
    "acoustic": "Acoustic",
    "audio": "AudioFiles",
    "language": "Language",
    "markdown": "LanguageMarkdown",
    "pronunciation": "Pronunciation",
    "output-formatting": "OutputFormatting",
}


class SpecCheck:
    """An emulator observer: every request and response against the spec. Requests a test sends wrong on purpose
    go inside `deliberately_invalid()`: their request problems are collected in `flagged`, not reported."""

    def __init__(self, contract: SpecContract | None) -> None:
        self.contract = contract
        self.problems: list[str] = []
        self.flagged: list[str] = []
        self._invalid = False

    def __call__(
        self, method: str, url: str, request_json: Any, status: int, response_json: Any, content_type: str | None = None
    ) -> None:
        if self.contract is None or "/_emulator/" in url:
            return
        request_problems = self.contract.check_request(method, url, request_json, content_type)
        (self.flagged if self._invalid else self.problems).extend(f"{method} {url}: {p}" for p in request_problems)
        self.problems += [
            f"{status} to {method} {url}: {p}" for p in self.contract.check_response(method, url, status, response_json)
        ]

    @contextlib.contextmanager
    def deliberately_invalid(self) -> Iterator[None]:
        self._invalid = True
        try:
            yield
        finally:
            self._invalid = False


class ContentServer:
    """Serves `files` (path -> (status, bytes)) over HTTP, like a storage account behind SAS URLs."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes]] = {}
        content = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, data = content.files.get(self.path.split("?")[0], (404, b"<Error>BlobNotFound</Error>"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, name: str, data: bytes, status: int = 200) -> str:
        self.files[f"/{name}"] = (status, data)
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}?sv=2025-01-01&sp=r&sig=SECRETSIG%3D"


@pytest.fixture(scope="module")
def contract() -> SpecContract | None:
    return SpecContract.load_or_skip_reason()[0]


@pytest.fixture
def check(contract: SpecContract | None) -> Iterator[SpecCheck]:
    checker = SpecCheck(contract)
    yield checker
    assert not checker.problems, "violations of the official spec:\n" + "\n".join(checker.problems)


@pytest.fixture
def make(check: SpecCheck) -> Iterator[Callable[..., SpeechEmulator]]:
    """Start an emulator (frozen at START unless told otherwise) observed by the spec check."""
    started: list[SpeechEmulator] = []

    def start(**kwargs: Any) -> SpeechEmulator:
        emulator = SpeechEmulator(**{"now": START, "observer": check, **kwargs}).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make: Callable[..., SpeechEmulator]) -> SpeechEmulator:
    return make()


@pytest.fixture(scope="module")
def content() -> Iterator[ContentServer]:
    server = ContentServer()
    yield server
    server.server.shutdown()


def api(
    emulator: SpeechEmulator, method: str, path: str, *, key: str | None = None, **kwargs: Any
) -> requests.Response:
    """One call: path relative to /speechtotext/ (or an absolute URL such as a @nextLink)."""
    url = path if path.startswith("http") else f"{emulator.url}/speechtotext/{path}"
    params = {} if "api-version=" in url else {"api-version": API_VERSION}
    headers = {"Ocp-Apim-Subscription-Key": key or emulator.key, **kwargs.pop("headers", {})}
    return requests.request(
        method,
        url,
        params={**params, **kwargs.pop("params", {})},
        headers=headers,
        timeout=kwargs.pop("timeout", 10),
        **kwargs,
    )


def created(emulator: SpeechEmulator, collection: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = api(emulator, "POST", collection, json=body)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == resp.json()["self"]
    return resp.json()


def entity_id(entity: dict[str, Any]) -> str:
    return entity["self"].split("?")[0].rsplit("/", 1)[-1]


def ref(entity: dict[str, Any]) -> dict[str, str]:
    return {"self": entity["self"]}


def error_of(resp: requests.Response, status: int) -> tuple[str, str | None]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["message"]
    uuid.UUID(resp.headers["apim-request-id"])
    return body["code"], (body.get("innerError") or {}).get("code")


def dataset(emulator: SpeechEmulator, kind: str = "Language", url: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"displayName": f"{kind} data", "locale": "en-US", "kind": kind, **extra}
    return created(emulator, "datasets", {**body, "contentUrl": url} if url else body)


def adaptable_base(emulator: SpeechEmulator, locale: str = "en-US") -> dict[str, Any]:
    models = [m for m in emulator.base_models.values() if m["locale"] == locale]
    return max(models, key=lambda m: m["createdDateTime"])


def trained_model(emulator: SpeechEmulator, content: ContentServer, locale: str = "en-US") -> dict[str, Any]:
    data = dataset(emulator, "Language", content.put(f"{uuid.uuid4()}.zip", samples.language_zip()), locale=locale)
    emulator.advance(SETTLE)
    base = adaptable_base(emulator, locale)
    body = {"displayName": "m", "locale": locale, "baseModel": ref(base), "datasets": [ref(data)]}
    model = created(emulator, "models", body)
    emulator.advance(SETTLE)
    return api(emulator, "GET", f"models/{entity_id(model)}").json()


# -- datasets ----------------------------------------------------------------------------------------------------


def test_an_acoustic_dataset_from_a_content_url_succeeds_after_its_duration(make, content):
    emulator = make(durations={"dataset": 8})
    data = samples.acoustic_zip(3, seconds=0.5)
    url = content.put("calls.zip", data)
    leftovers = set(os.listdir(tempfile.gettempdir()))
    first = dataset(emulator, "Acoustic", url)
    assert first["status"] == "NotStarted" and "uploadBlocks" not in first["links"]
    assert first["contentUrl"].endswith("sig=REDACTED")
    assert [d for d in emulator.downloads] == [
        {"url": url.replace("SECRETSIG%3D", "REDACTED"), "status": 200, "bytes": len(data), "error": None}
    ]
    assert {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("speech-emulator-")} <= leftovers
    emulator.advance(3)
    assert api(emulator, "GET", f"datasets/{entity_id(first)}").json()["status"] == "Running"
    emulator.advance(5)
    done = api(emulator, "GET", f"datasets/{entity_id(first)}").json()
    assert done["status"] == "Succeeded"
    assert done["lastActionDateTime"] == "2026-11-22T09:00:08Z" and done["createdDateTime"] == "2026-11-22T09:00:00Z"
    props = done["properties"]
    assert (props["acceptedLineCount"], props["rejectedLineCount"], props["durationMilliseconds"]) == (3, 0, 1500)
    assert "SECRETSIG" not in repr(emulator.requests) + repr(emulator.downloads)


@pytest.mark.parametrize("folder", sorted(FOLDER_KINDS))
def test_the_sample_zip_of_every_kind_is_accepted(emulator, content, folder):
    made = dataset(emulator, FOLDER_KINDS[folder], content.put(f"{folder}.zip", samples.sample_zip(folder)))
    emulator.advance(SETTLE)
    done = emulator.datasets[entity_id(made)]
    assert done["status"] == "Succeeded", done
    assert done["properties"]["acceptedLineCount"] > 0


@pytest.mark.parametrize(("status", "why"), [(403, "HTTP 403 (an expired or invalid SAS"), (404, "HTTP 404")])
def test_a_url_storage_refuses_gives_a_failed_dataset(emulator, content, status, why):
    made = dataset(emulator, "Language", content.put(f"refused-{status}.zip", b"<Error/>", status=status))
    emulator.advance(SETTLE)
    done = emulator.datasets[entity_id(made)]
    assert done["status"] == "Failed"
    assert done["properties"]["error"]["code"] == "InvalidDataUrl" and why in done["properties"]["error"]["message"]
    assert emulator.downloads[0]["status"] == status and emulator.downloads[0]["error"].startswith(f"HTTP {status}")


def test_an_unreachable_url_gives_a_failed_dataset(emulator):
    made = dataset(emulator, "Language", "http://127.0.0.1:9/nothing.zip?sig=abc")
    emulator.advance(SETTLE)
    assert emulator.datasets[entity_id(made)]["properties"]["error"]["code"] == "InvalidDataUrl"
    assert emulator.downloads[0]["url"] == "http://127.0.0.1:9/nothing.zip?sig=REDACTED"


@pytest.mark.parametrize(
    ("kind", "data", "why"),
    [
        ("Acoustic", samples.acoustic_zip(2, missing=("gone.wav",)), "missing from the zip: gone.wav"),
        ("Acoustic", samples.zip_bytes({"a.wav": samples.wav_bytes()}), "needs .wav audio files and a .txt"),
        ("Acoustic", samples.zip_bytes({"a.wav": b"RIFF????", "t.txt": "a.wav\thi\n"}), "not a readable PCM WAV"),
        ("Acoustic", samples.zip_bytes({"a.wav": samples.wav_bytes(), "t.txt": "a.wav hi\n"}), "No transcript line"),
        ("Language", b"plain text, not a zip", "not a zip archive"),
        ("Language", samples.zip_bytes({"notes.md": "# x"}), "no .txt file"),
        ("LanguageMarkdown", samples.zip_bytes({"notes.txt": "x"}), "no .md file"),
        ("AudioFiles", samples.zip_bytes({"a.wav": samples.wav_bytes(), "t.txt": "x"}), ".wav files only"),
        ("Pronunciation", samples.zip_bytes({"p.txt": "no tab here\n"}), "no usable line"),
        ("OutputFormatting", samples.zip_bytes({}), "holds no files"),
    ],
)
def test_content_the_service_would_refuse_gives_a_failed_dataset(emulator, content, kind, data, why):
    made = dataset(emulator, kind, content.put(f"{uuid.uuid4()}.zip", data))
    emulator.advance(SETTLE)
    done = emulator.datasets[entity_id(made)]
    assert done["status"] == "Failed" and done["properties"]["error"]["code"] == "DataImportFailed"
    assert why in done["properties"]["error"]["message"]


def test_a_dataset_from_blocks_waits_for_the_commit(emulator):
    made = dataset(emulator, "Acoustic")
    assert {"uploadBlocks", "commitBlocks", "listBlocks"} <= set(made["links"])
    emulator.advance(SETTLE)
    assert emulator.datasets[entity_id(made)]["status"] == "NotStarted"
    data = samples.acoustic_zip(2)
    blocks = {"YmxvY2sx": data[:1000], "YmxvY2sy": data[1000:]}
    for block, part in blocks.items():
        resp = api(
            emulator,
            "PUT",
            f"datasets/{entity_id(made)}/blocks",
            params={"blockid": block},
            data=part,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert resp.status_code == 201 and resp.content == b""
    listed = api(emulator, "GET", f"datasets/{entity_id(made)}/blocks").json()
    assert listed == {
        "committedBlocks": [],
        "uncommittedBlocks": [{"name": "YmxvY2sx", "size": 1000}, {"name": "YmxvY2sy", "size": len(data) - 1000}],
    }
    commit = [{"kind": "Latest", "id": block} for block in blocks]
    assert api(emulator, "POST", f"datasets/{entity_id(made)}/blocks:commit", json=commit).status_code == 200
    emulator.advance(SETTLE)
    assert emulator.datasets[entity_id(made)]["status"] == "Succeeded"
    assert len(api(emulator, "GET", f"datasets/{entity_id(made)}/blocks").json()["committedBlocks"]) == 2
    resp = api(
        emulator,
        "PUT",
        f"datasets/{entity_id(made)}/blocks",
        params={"blockid": "eA=="},
        data=b"x",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert error_of(resp, 400) == ("InvalidArgument", "InvalidPrerequisite")


@pytest.mark.parametrize(
    ("body", "inner"),
    [
        ({"locale": "en-US", "kind": "Language"}, "InvalidParameterValue"),
        ({"displayName": "d", "kind": "Language"}, "InvalidParameterValue"),
        ({"displayName": "d", "locale": "en-US"}, "InvalidParameterValue"),
        ({"displayName": "d", "locale": "en-US", "kind": "Video"}, "InvalidParameterValue"),
        ({"displayName": "d", "locale": "xx-XX", "kind": "Language"}, "InvalidLocale"),
        (
            {
                "displayName": "d",
                "locale": "en-US",
                "kind": "Language",
                "customProperties": {str(i): "v" for i in range(11)},
            },
            "InvalidParameterValue",
        ),
        (
            {"displayName": "d", "locale": "en-US", "kind": "Language", "customProperties": {"k" * 65: "v"}},
            "InvalidParameterValue",
        ),
        (
            {"displayName": "d", "locale": "en-US", "kind": "Language", "customProperties": {"k": "v" * 257}},
            "InvalidParameterValue",
        ),
        (
            {"displayName": "d", "locale": "en-US", "kind": "Language", "contentUrl": "ftp://x/a.zip"},
            "InvalidParameterValue",
        ),
    ],
)
def test_invalid_datasets_are_refused(emulator, check, body, inner):
    with check.deliberately_invalid():
        resp = api(emulator, "POST", "datasets", json=body)
    assert error_of(resp, 400) == ("InvalidArgument", inner)
    assert emulator.datasets == {}


def test_the_contract_check_agrees_where_the_schema_can_tell(emulator, check):
    if check.contract is None:
        pytest.skip("the official spec is absent")
    with check.deliberately_invalid():
        api(emulator, "POST", "datasets", json={"displayName": "d", "locale": "en-US"})
    [flagged] = check.flagged
    assert "'kind' is a required property" in flagged


def test_limits_at_the_boundary_are_accepted(emulator):
    props = {f"{i:064d}": "v" * 256 for i in range(10)}
    assert dataset(emulator, customProperties=props)["customProperties"] == props


def test_dataset_patch_delete_and_locales(emulator):
    made = dataset(emulator, customProperties={"a": "1"})
    patched = api(emulator, "PATCH", f"datasets/{entity_id(made)}", json={"customProperties": {"b": "2"}})
    assert patched.json()["customProperties"] == {"b": "2"} and patched.json()["displayName"] == made["displayName"]
    assert api(emulator, "DELETE", f"datasets/{entity_id(made)}").status_code == 204
    assert api(emulator, "DELETE", f"datasets/{entity_id(made)}").status_code == 204  # "or did not exist"
    assert error_of(api(emulator, "GET", f"datasets/{entity_id(made)}"), 404) == ("NotFound", None)
    locales = api(emulator, "GET", "datasets/locales").json()
    assert set(locales) == set(FOLDER_KINDS.values()) and "ja-JP" in locales["Acoustic"]
    for collection in ("models", "endpoints", "evaluations"):
        assert api(emulator, "GET", f"{collection}/locales").json() == ["de-DE", "en-US", "es-ES", "fr-FR", "ja-JP"]


def test_forced_failures_win_over_good_content(emulator, content):
    emulator.fail_next("dataset", code="InvalidAudioFormat", message="utt0001.wav is not 16 kHz")
    made = dataset(emulator, "Acoustic", content.put("good.zip", samples.acoustic_zip()))
    again = dataset(emulator, "Acoustic", content.put("good.zip", samples.acoustic_zip()))
    emulator.advance(SETTLE)
    error = emulator.datasets[entity_id(made)]["properties"]["error"]
    assert error == {"code": "InvalidAudioFormat", "message": "utt0001.wav is not 16 kHz"}
    assert emulator.datasets[entity_id(again)]["status"] == "Succeeded"


# -- paging ------------------------------------------------------------------------------------------------------


def test_lists_page_with_next_links(make):
    emulator = make(page_size=2)
    made = [dataset(emulator, kind) for kind in ("Language", "Acoustic", "Language", "Language", "Acoustic")]
    pages, url = [], "datasets"
    while url:
        page = api(emulator, "GET", url).json()
        pages.append([entity_id(d) for d in page["values"]])
        url = page.get("@nextLink")
        assert url is None or url.startswith(f"{emulator.url}/speechtotext/datasets?skip=")
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == [entity_id(d) for d in reversed(made)]  # newest first
    page = api(emulator, "GET", "datasets", params={"filter": "kind eq 'Language'", "top": 5}).json()
    assert len(page["values"]) == 2 and "filter=kind+eq+%27Language%27" in page["@nextLink"]
    rest = api(emulator, "GET", page["@nextLink"]).json()
    assert [d["kind"] for d in rest["values"]] == ["Language"] and "@nextLink" not in rest
    assert api(emulator, "GET", "datasets", params={"filter": "createdDateTime gt 2020-01-01"}).json()["values"]
    bad_top = api(emulator, "GET", "datasets", params={"top": 0})
    assert error_of(bad_top, 400) == ("InvalidArgument", "UnsupportedPagination")


# -- models ------------------------------------------------------------------------------------------------------


def test_seeded_base_models_span_generations(emulator):
    en = sorted(
        (m for m in emulator.base_models.values() if m["locale"] == "en-US"), key=lambda m: m["createdDateTime"]
    )
    assert len(en) == 4 and len(emulator.base_models) == 20
    adaptable = [m["properties"]["deprecationDates"]["adaptationDateTime"] > "2026-11-22" for m in en]
    assert adaptable == [False, False, True, True]
    assert all(m["properties"]["features"]["supportsAdaptationsWith"] for m in en)
    one = api(emulator, "GET", f"models/base/{entity_id(en[0])}").json()
    assert one == en[0] and "/models/base/" in one["self"]
    assert (
        api(emulator, "GET", "models/base", params={"filter": "locale eq 'de-DE'"}).json()["values"][0]["locale"]
        == "de-DE"
    )


@pytest.mark.parametrize(
    ("created", "expires"),
    [
        (datetime(2026, 1, 15, 23, 59, tzinfo=UTC), datetime(2028, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 16, tzinfo=UTC), datetime(2028, 4, 15, tzinfo=UTC)),
        (datetime(2026, 4, 15, 12, tzinfo=UTC), datetime(2028, 4, 15, tzinfo=UTC)),
        (datetime(2026, 4, 16, tzinfo=UTC), datetime(2028, 7, 15, tzinfo=UTC)),
        (datetime(2026, 7, 15, tzinfo=UTC), datetime(2028, 7, 15, tzinfo=UTC)),
        (datetime(2026, 10, 15, tzinfo=UTC), datetime(2028, 10, 15, tzinfo=UTC)),
        (datetime(2026, 10, 16, tzinfo=UTC), datetime(2029, 1, 15, tzinfo=UTC)),
        (datetime(2026, 11, 22, tzinfo=UTC), datetime(2029, 1, 15, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2029, 1, 15, tzinfo=UTC)),
        (datetime(2027, 1, 1, tzinfo=UTC), datetime(2029, 1, 15, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), datetime(2030, 4, 15, tzinfo=UTC)),
    ],
)
def test_the_quarter_rule(created, expires):
    assert deprecation_dates(created, base_model=False) == {"transcriptionDateTime": expires}
    base = deprecation_dates(created, base_model=True)
    assert base == {"transcriptionDateTime": expires, "adaptationDateTime": expires.replace(year=expires.year - 1)}


def test_the_quarter_rule_uses_utc():
    tokyo = datetime(2026, 1, 16, 8, 0, tzinfo=timezone(timedelta(hours=9)))  # Jan 15, 23:00 UTC
    assert deprecation_dates(tokyo, base_model=False)["transcriptionDateTime"] == datetime(2028, 1, 15, tzinfo=UTC)


def test_a_custom_model_trains_and_expires_by_the_quarter_rule(emulator, content):
    model = trained_model(emulator, content)
    assert model["status"] == "Succeeded" and model["createdDateTime"] == "2026-11-22T09:01:00Z"
    assert model["properties"]["deprecationDates"] == {"transcriptionDateTime": "2029-01-15T00:00:00Z"}
    assert model["properties"]["features"]["supportsEndpoints"] is True
    assert {"manifest", "copy", "files"} == set(model["links"])
    listed = api(emulator, "GET", "models").json()["values"]
    assert [entity_id(m) for m in listed] == [entity_id(model)]  # custom models only


def test_model_creation_rules(emulator, content, check):
    language = dataset(emulator, "Language", content.put("lang.zip", samples.language_zip()))
    acoustic = dataset(emulator, "Acoustic", content.put("ac.zip", samples.acoustic_zip()))
    base = adaptable_base(emulator)
    body = {"displayName": "m", "locale": "en-US", "baseModel": ref(base), "datasets": [ref(language)]}
    assert error_of(api(emulator, "POST", "models", json=body), 400) == ("InvalidArgument", "InvalidDataset")
    emulator.advance(SETTLE)
    old = min((m for m in emulator.base_models.values() if m["locale"] == "en-US"), key=lambda m: m["createdDateTime"])
    german = adaptable_base(emulator, "de-DE")
    language_only = emulator.add_base_model("en-US", created=START - timedelta(days=10), kinds=["Language"])
    missing = {"self": f"{emulator.url}/speechtotext/models/base/{uuid.uuid4()}?api-version={API_VERSION}"}
    cases = [
        ({"baseModel": ref(old)}, "ModelDeprecated"),
        ({"baseModel": missing}, "InvalidBaseModel"),
        ({"baseModel": ref(german)}, "InvalidBaseModel"),
        ({"baseModel": ref(language_only), "datasets": [ref(acoustic)]}, "InvalidAdaptationMapping"),
        ({"datasets": []}, "InvalidDataset"),
        ({"datasets": [{"self": language["self"].replace(entity_id(language), str(uuid.uuid4()))}]}, "InvalidDataset"),
    ]
    for change, inner in cases:
        assert error_of(api(emulator, "POST", "models", json={**body, **change}), 400) == ("InvalidArgument", inner)
    with check.deliberately_invalid():
        assert error_of(api(emulator, "POST", "models", json={"locale": "en-US"}), 400)[0] == "InvalidArgument"
    model = created(emulator, "models", {**body, "datasets": [ref(language), ref(acoustic)]})
    assert model["status"] == "NotStarted" and model["baseModel"] == ref(base)
    default_base = created(emulator, "models", {k: v for k, v in body.items() if k != "baseModel"})
    assert default_base["baseModel"] == ref(language_only)  # the newest base model of the locale


def test_a_forced_model_failure(emulator, content):
    emulator.fail_next("model", code="InternalError", message="training broke")
    model = trained_model(emulator, content)
    assert model["status"] == "Failed"
    assert model["properties"]["error"] == {"code": "InternalError", "message": "training broke"}


# -- endpoints ---------------------------------------------------------------------------------------------------


def test_an_endpoint_is_deployed_and_patching_its_model_keeps_its_id(emulator, content):
    model = trained_model(emulator, content)
    endpoint = created(
        emulator,
        "endpoints",
        {"displayName": "e", "locale": "en-US", "model": ref(model), "properties": {"loggingEnabled": True}},
    )
    assert endpoint["status"] == "NotStarted" and endpoint["links"]["webSocket"].startswith("ws://127.0.0.1:")
    emulator.advance(SETTLE)
    assert emulator.endpoints[entity_id(endpoint)]["status"] == "Succeeded"
    newer = trained_model(emulator, content)
    emulator.advance(1)
    patched = api(
        emulator,
        "PATCH",
        f"endpoints/{entity_id(endpoint)}",
        json={"model": ref(newer), "properties": {"contentLoggingEnabled": False}},
    ).json()
    assert patched["self"] == endpoint["self"] and patched["model"] == ref(newer)
    assert patched["status"] == "Running" and patched["properties"]["loggingEnabled"] is False
    assert patched["lastActionDateTime"] == "2026-11-22T09:05:01Z"
    emulator.advance(SETTLE)
    assert emulator.endpoints[entity_id(endpoint)]["status"] == "Succeeded"
    in_use = api(emulator, "DELETE", f"models/{entity_id(newer)}")
    assert error_of(in_use, 400) == ("InvalidArgument", "InUseViolation")
    assert api(emulator, "DELETE", f"endpoints/{entity_id(endpoint)}").status_code == 204
    assert error_of(api(emulator, "DELETE", f"endpoints/{entity_id(endpoint)}"), 404)[0] == "NotFound"
    assert api(emulator, "DELETE", f"models/{entity_id(newer)}").status_code == 204


def test_endpoint_rules(emulator, content, check):
    model = trained_model(emulator, content)
    expired = emulator.add_base_model("en-US", created=START - timedelta(days=3 * 365))
    running = created(emulator, "models", {"displayName": "m", "locale": "en-US", "datasets": model["datasets"]})
    body = {"displayName": "e", "locale": "en-US"}
    cases = [
        ({"model": ref(expired)}, "ModelDeprecated"),
        ({"model": ref(running)}, "InvalidModel"),
        ({"model": ref(model), "locale": "de-DE"}, "InvalidModel"),
        ({"model": {"self": f"{emulator.url}/speechtotext/models/{uuid.uuid4()}"}}, "InvalidModel"),
        ({}, "InvalidParameterValue"),
    ]
    for change, inner in cases:
        assert error_of(api(emulator, "POST", "endpoints", json={**body, **change}), 400) == ("InvalidArgument", inner)
    endpoint = created(emulator, "endpoints", {**body, "model": ref(adaptable_base(emulator))})
    resp = api(emulator, "PATCH", f"endpoints/{entity_id(endpoint)}", json={"model": ref(expired)})
    assert error_of(resp, 400)[1] == "ModelDeprecated"
    emulator.advance(timedelta(days=800))  # past the custom model's transcription date
    resp = api(emulator, "PATCH", f"endpoints/{entity_id(endpoint)}", json={"model": ref(model)})
    assert error_of(resp, 400)[1] == "ModelDeprecated"


def test_the_51st_endpoint_is_refused(emulator):
    base = ref(adaptable_base(emulator))
    for i in range(50):
        created(emulator, "endpoints", {"displayName": f"e{i}", "locale": "en-US", "model": base})
    resp = api(emulator, "POST", "endpoints", json={"displayName": "one too many", "locale": "en-US", "model": base})
    assert error_of(resp, 403) == ("Forbidden", "QuotaViolation")
    assert len(emulator.endpoints) == 50


# -- evaluations and web hooks -----------------------------------------------------------------------------------


def test_an_evaluation_compares_two_models(emulator, content):
    model = trained_model(emulator, content)
    audio = dataset(emulator, "Acoustic", content.put("eval.zip", samples.acoustic_zip(4)))
    emulator.advance(SETTLE)
    body = {
        "displayName": "ev",
        "locale": "en-US",
        "model1": ref(adaptable_base(emulator)),
        "model2": ref(model),
        "dataset": ref(audio),
    }
    evaluation = created(emulator, "evaluations", body)
    emulator.advance(SETTLE)
    done = api(emulator, "GET", f"evaluations/{entity_id(evaluation)}").json()
    assert done["status"] == "Succeeded" and done["properties"]["sentenceCount1"] == 4
    assert done["properties"]["wordErrorRate2"] < done["properties"]["wordErrorRate1"]
    assert [entity_id(e) for e in api(emulator, "GET", "evaluations").json()["values"]] == [entity_id(done)]


def test_web_hooks(emulator, check):
    body = {"displayName": "w", "webUrl": "https://contoso.com/hook", "events": {"datasetCompletion": True}}
    hook = created(emulator, "webhooks", body)
    assert hook["links"]["test"].split("?")[0].endswith(":test") and hook["properties"]["apiVersion"] == API_VERSION
    assert [entity_id(h) for h in api(emulator, "GET", "webhooks").json()["values"]] == [entity_id(hook)]
    no_event = api(emulator, "POST", "webhooks", json={**body, "events": {"ping": False}})
    assert error_of(no_event, 400) == ("InvalidArgument", "InvalidWebHookEventKind")
    assert api(emulator, "DELETE", f"webhooks/{entity_id(hook)}").status_code == 204
    assert api(emulator, "GET", "webhooks").json() == {"values": []}


# -- faults, auth, routing ---------------------------------------------------------------------------------------


def test_injected_429s_carry_retry_after(emulator):
    emulator.inject(status=429, count=2, retry_after=3, retry_after_ms=2500, method="GET", path_contains="/datasets")
    for _ in range(2):
        resp = api(emulator, "GET", "datasets")
        assert error_of(resp, 429)[0] == "TooManyRequests"
        assert resp.headers["Retry-After"] == "3" and resp.headers["retry-after-ms"] == "2500"
    assert api(emulator, "GET", "models/base").status_code == 200  # another path: not counted
    assert api(emulator, "GET", "datasets").status_code == 200
    emulator.inject(status=503, count=5)
    assert error_of(api(emulator, "GET", "datasets"), 503)[0] == "ServiceUnavailable"
    emulator.clear_faults()
    assert api(emulator, "GET", "datasets").status_code == 200
    assert [r["status"] for r in emulator.requests] == [429, 429, 200, 200, 503, 200]


def test_a_delayed_post_still_creates_its_entity(emulator):
    emulator.inject(status=None, count=1, delay=0.6, method="POST")
    with pytest.raises(requests.ReadTimeout):
        api(
            emulator,
            "POST",
            "datasets",
            json={"displayName": "d", "locale": "en-US", "kind": "Language"},
            timeout=(2, 0.2),
        )
    deadline = time.monotonic() + 5
    while not emulator.datasets and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(emulator.datasets) == 1


def test_auth(make):
    emulator = make(key="right-key")
    assert error_of(api(emulator, "GET", "datasets", key="wrong-key"), 401) == ("Unauthorized", None)
    resp = requests.get(f"{emulator.url}/speechtotext/datasets", params={"api-version": API_VERSION}, timeout=5)
    assert error_of(resp, 401)[0] == "Unauthorized"
    bearer = {"Authorization": "Bearer token-1"}
    resp = requests.get(
        f"{emulator.url}/speechtotext/datasets", params={"api-version": API_VERSION}, headers=bearer, timeout=5
    )
    assert resp.status_code == 200
    strict = make(accept_bearer=False)
    resp = requests.get(
        f"{strict.url}/speechtotext/datasets", params={"api-version": API_VERSION}, headers=bearer, timeout=5
    )
    assert error_of(resp, 401)[0] == "Unauthorized"
    assert "right-key" not in repr(emulator.requests) and "token-1" not in repr(emulator.requests)


def test_unknown_paths_and_api_versions(emulator, check):
    with check.deliberately_invalid():
        assert error_of(api(emulator, "GET", "recipes"), 404) == ("NotFound", None)
        assert (
            error_of(api(emulator, "GET", f"{emulator.url}/datasets?api-version={API_VERSION}"), 404)[0] == "NotFound"
        )
        no_version = requests.get(
            f"{emulator.url}/speechtotext/datasets", headers={"Ocp-Apim-Subscription-Key": emulator.key}, timeout=5
        )
        assert error_of(no_version, 400) == ("InvalidRequest", "InvalidParameterValue")
        assert error_of(api(emulator, "GET", f"{emulator.url}/speechtotext/datasets?api-version=v3.2"), 400)
        assert error_of(api(emulator, "PUT", "datasets", json={}), 405)[0] == "NotAllowed"
        assert error_of(
            api(emulator, "POST", "datasets", data="{not json", headers={"Content-Type": "application/json"}), 400
        ) == ("InvalidRequest", "InvalidRequestBodyFormat")


def test_control_over_http(emulator):
    def control(method: str, name: str, body: Any = None, key: str | None = None) -> requests.Response:
        return requests.request(
            method,
            f"{emulator.url}/_emulator/{name}",
            json=body,
            timeout=5,
            headers={"Ocp-Apim-Subscription-Key": key or emulator.key},
        )

    assert control("GET", "state", key="wrong").status_code == 401
    assert control("POST", "clock", {"now": "2027-01-01T00:00:00Z"}).json() == {"now": "2027-01-01T00:00:00Z"}
    assert control("POST", "clock", {"advance_seconds": 90}).json() == {"now": "2027-01-01T00:01:30Z"}
    assert control("POST", "faults", {"status": 503, "count": 1, "retry_after": 2}).status_code == 201
    resp = api(emulator, "GET", "datasets")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "2"
    control("POST", "faults", {"status": 500, "count": 9})
    assert control("DELETE", "faults").status_code == 204
    base = control("POST", "base-models", {"locale": "it-IT", "created": "2026-12-01T00:00:00Z", "kinds": ["Language"]})
    assert base.status_code == 201 and base.json()["locale"] == "it-IT"
    assert api(emulator, "GET", "datasets/locales").json()["Language"].count("it-IT") == 1
    assert "it-IT" not in api(emulator, "GET", "datasets/locales").json()["Acoustic"]
    assert control("POST", "durations", {"model": 30}).json()["model"] == 30
    assert control("POST", "fail-next", {"type": "endpoint", "code": "X", "message": "no"}).status_code == 204
    endpoint = created(emulator, "endpoints", {"displayName": "e", "locale": "it-IT", "model": ref(base.json())})
    emulator.advance(SETTLE)
    assert emulator.endpoints[entity_id(endpoint)]["properties"]["error"] == {"code": "X", "message": "no"}
    assert error_of(control("POST", "fail-next", {"type": "cake"}), 400)[0] == "InvalidArgument"
    state = control("GET", "state").json()
    assert state["now"] == "2027-01-01T00:02:30Z" and state["counts"]["endpoints"] == 1 and state["requests"] == 4
    assert control("DELETE", f"base-models/{entity_id(base.json())}").status_code == 204
    assert control("POST", "reset").status_code == 204
    assert emulator.endpoints == {} and len(emulator.base_models) == 20 and emulator.requests == []


def test_runs_alone_until_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.speech_emulator", "--port", "0", "--fast", "--key", "k1"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" on ")[1].split()[0]
        assert proc.stdout.readline().strip() == f"SPEECH_ENDPOINT={url}"
        assert proc.stdout.readline().strip() == "SPEECH_KEY=k1"
        state = requests.get(f"{url}/_emulator/state", headers={"Ocp-Apim-Subscription-Key": "k1"}, timeout=5).json()
        assert state["durations"]["model"] < 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
