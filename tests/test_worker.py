"""The rig runs functions through the real Python worker library, so it fails where Azure would.

Deliberate mistakes run in a subprocess each (tests/worker_probe.py): the worker library indexes one app per
process, as in Azure.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from local import samples
from local.runtime import ROOT, Worker
from tests.helpers import drop

PROBE_TIMEOUT = 120


def probe(tmp_path: Path, source: str, function: str, kind: str, azurite) -> dict:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "function_app.py").write_text(textwrap.dedent(source))
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "AzureWebJobsStorage": azurite.connection_string,
        "PROBE_QUEUE": "probe-out",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.worker_probe", str(app_dir), function, kind],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


TIMER_APP = """
    import typing

    import azure.functions as func

    app = func.FunctionApp()


    @app.timer_trigger(arg_name="timer", schedule="0 0 * * * *")
    @app.queue_output(arg_name="out", queue_name="%PROBE_QUEUE%", connection="AzureWebJobsStorage")
    def tick(timer: func.TimerRequest, out: {annotation}) -> None:
        out.set({value})
"""


def timer_app(annotation: str, value: str) -> str:
    return TIMER_APP.replace("{annotation}", annotation).replace("{value}", value)


def test_the_app_is_indexed_by_the_worker_with_the_bindings_the_host_reads():
    worker = Worker.get()
    assert {"ingest_zip", "reconcile", "expiry", "deploy", "deploy_poison"} <= set(worker.metadata)
    [blob] = [b for b in worker.bindings["ingest_zip"] if b["type"] == "blobTrigger"]
    assert blob["source"] == "EventGrid" and blob["properties"]["SupportsDeferredBinding"] is True
    assert all(f.properties.get("worker_indexed") == "True" for f in worker.metadata.values())
    assert any("Successfully indexed function app." in r.message for r in worker.logs())


def test_a_modern_generic_on_an_output_binding_fails_indexing_with_the_workers_message(tmp_path, azurite):
    found = probe(tmp_path, timer_app("func.Out[list[str]]", '["a"]'), "tick", "timer", azurite)
    assert "invalid non-type annotation" in found["init_error"]
    assert "Out[list[str]]" in found["init_error"]


def test_an_output_of_the_wrong_type_fails_the_invocation_with_the_workers_message(tmp_path, azurite):
    found = probe(tmp_path, timer_app("func.Out[typing.List[str]]", '[{"not": "a string"}]'), "tick", "timer", azurite)
    assert found["ok"] is False
    assert "unable to encode outgoing TypedData" in found["error"]


def test_a_list_on_a_queue_output_becomes_one_message_per_item(tmp_path, azurite):
    from azure.storage.queue import QueueClient

    found = probe(tmp_path, timer_app("func.Out[typing.List[str]]", '["one", "two"]'), "tick", "timer", azurite)
    assert found["ok"] is True and found["outputs"] == {"out": ["one", "two"]}
    queue = QueueClient.from_connection_string(azurite.connection_string, "probe-out")
    assert sorted(m.content for m in queue.receive_messages(max_messages=32)) == ["one", "two"]
    queue.delete_queue()


def test_a_queue_message_arrives_with_the_metadata_the_host_sends(tmp_path, azurite):
    app = """
        import logging

        import azure.functions as func

        app = func.FunctionApp()


        @app.queue_trigger(arg_name="msg", queue_name="probe-in", connection="AzureWebJobsStorage")
        def take(msg: func.QueueMessage) -> None:
            logging.info(
                "id=%s count=%s inserted=%s expires=%s visible=%s receipt=%s body=%s",
                bool(msg.id), msg.dequeue_count, msg.insertion_time.tzinfo is not None,
                msg.expiration_time > msg.insertion_time, msg.time_next_visible is not None,
                msg.pop_receipt, msg.get_json(),
            )
    """
    found = probe(tmp_path, app, "take", "queue", azurite)
    assert found["ok"] is True, found["error"]
    [line] = [message for level, name, message in found["logs"] if message.startswith("id=")]
    assert (
        line == "id=True count=1 inserted=True expires=True visible=True receipt=offline-host body={'hello': 'world'}"
    )


def test_an_http_function_answers_through_the_worker(tmp_path, azurite):
    app = """
        import azure.functions as func

        app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


        @app.route(route="probe", methods=["GET"])
        def probe(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse(f"hello {req.params.get('name')}", headers={"x-probe": "1"}, status_code=201)
    """
    found = probe(tmp_path, app, "probe", "http", azurite)
    assert found["status"] == 201 and found["body"] == "hello x" and found["headers"]["x-probe"] == "1"


def test_sdk_loggers_stay_at_warning_under_the_workers_info_root(runtime, container, emulator):
    """The worker sets the root logger to INFO: without care, azure-core would log every storage request."""
    drop(container, "en-US/language/corpus.zip", samples.language_zip())
    result = runtime.deliver_blob("ingest_zip", "en-US/language/corpus.zip")
    assert result.ok, result.error
    assert logging.getLogger().level == logging.INFO
    sdk = [r for r in result.logs if r.logger.startswith(("azure.core", "azure.storage", "urllib3", "azure.identity"))]
    assert [r for r in sdk if r.level < logging.WARNING] == []
    assert any(r.logger.startswith("autopilot.") for r in result.logs)  # the app's own records are surfaced


@pytest.mark.parametrize("name", ["deploy", "deploy_poison", "reconcile", "expiry", "ingest_zip", "status"])
def test_every_function_of_the_app_is_loaded_by_the_worker(name):
    assert Worker.get().metadata[name].function_id
