"""The test rig: real Azurite, the Speech emulator (every request and response checked against the official
spec), and a host stand-in that invokes the indexed functions with concrete trigger objects."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from typing import Iterator

import pytest

from local.azurite import Azurite
from local.runtime import Runtime
from local.speech_emulator import SpeechEmulator
from shared import clock, context
from tests.contract import SpecContract

FAST = {"dataset": 0.3, "model": 0.5, "endpoint": 0.3}


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as server:
        yield server


@pytest.fixture(scope="session")
def spec() -> SpecContract | None:
    contract, _reason = SpecContract.load_or_skip_reason()
    return contract


@pytest.fixture
def contract_problems(spec: SpecContract | None) -> Iterator[list[str]]:
    """Every request the client sends and every response the emulator gives, checked against the spec."""
    problems: list[str] = []
    yield problems
    assert not problems, "requests/responses that violate the official spec:\n" + "\n".join(problems)


@pytest.fixture
def emulator(spec: SpecContract | None, contract_problems: list[str]) -> Iterator[SpeechEmulator]:
    def observe(method, url, request_json, status, response_json, content_type=None):
        if spec is None or "/_emulator/" in url:
            return
        for problem in spec.check_request(method, url, request_json, content_type):
            contract_problems.append(f"request {method} {url}: {problem}")
        for problem in spec.check_response(method, url, status, response_json):
            contract_problems.append(f"response {status} to {method} {url}: {problem}")

    # a fresh key per test: a secret the logs must never show (the suite looks for it)
    server = SpeechEmulator(durations=dict(FAST), observer=observe, key=f"spk-{secrets.token_hex(12)}").start()
    yield server
    server.stop()


@pytest.fixture
def target_emulator(spec: SpecContract | None, contract_problems: list[str]) -> Iterator[SpeechEmulator]:
    """A second Speech resource (another region), for model copies; spec-checked like the first."""

    def observe(method, url, request_json, status, response_json, content_type=None):
        if spec is None or "/_emulator/" in url:
            return
        for problem in spec.check_request(method, url, request_json, content_type):
            contract_problems.append(f"target: request {method} {url}: {problem}")
        for problem in spec.check_response(method, url, status, response_json):
            contract_problems.append(f"target: response {status} to {method} {url}: {problem}")

    server = SpeechEmulator(durations=dict(FAST), observer=observe, key="target-key-0123", region="westeurope")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def names() -> dict[str, str]:
    """Unique container and queue names per test, so tests share one Azurite without seeing each other."""
    tag = uuid.uuid4().hex[:10]
    return {
        "TRAINING_CONTAINER": f"training-{tag}",
        "DEPLOY_QUEUE": f"deploy-{tag}",
        "ALERT_QUEUE": f"alerts-{tag}",
    }


@pytest.fixture
def app_env(monkeypatch, azurite: Azurite, emulator: SpeechEmulator, names: dict[str, str]) -> dict[str, str]:
    env = {
        "SPEECH_ENDPOINT": emulator.url,
        "SPEECH_KEY": emulator.key,
        "AzureWebJobsStorage": azurite.connection_string,
        "SAS_LIFETIME_HOURS": "2",
        **names,
    }
    for name in ("ALERT_WEBHOOK_URL", "SPEECH_PROJECT", "AUTO_DEPLOY", "AUTO_RETRAIN", "EXPIRY_WARNING_DAYS"):
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    context.reset()
    clock.use_clock(None)
    yield env
    context.reset()
    clock.use_clock(None)


@pytest.fixture
def container(app_env, azurite: Azurite):
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    box = client.get_container_client(app_env["TRAINING_CONTAINER"])
    box.create_container()
    return box


@pytest.fixture
def runtime(app_env, azurite: Azurite, container) -> Runtime:
    return Runtime(connection_string=azurite.connection_string)


def alerts_of(runtime: Runtime, queue: str) -> list[dict]:
    """Take every alert from the alert queue."""
    return [json.loads(text) for text in runtime.take(queue)]


@pytest.fixture
def captured_logs(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def pytest_terminal_summary(terminalreporter) -> None:
    """The reliability suite's table (tests/test_reliability.py), when any of its cases ran."""
    from tests.faults import RESULTS, summary_lines

    if RESULTS:
        terminalreporter.write_sep("=", "reliability (issue #13)")
        for line in summary_lines(RESULTS):
            terminalreporter.write_line(line)
