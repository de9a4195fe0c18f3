"""The operator CLI (shared/cli.py) against Azurite and the Speech emulator: every verb's happy path, its clear
one-line errors, and no secret in anything it prints."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local import samples
from shared import cli, context, managed
from shared.status import main as status_alias
from tests import helpers

REPO = Path(__file__).resolve().parents[1]
VERBS = ("upload", "status", "deploy", "rollback", "alerts", "copy-model")


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out + self.err

    def one_error_line(self) -> str:
        """The single line an error gives (stderr), after any progress output."""
        assert self.code != 0 and "Traceback" not in self.text, self.text
        lines = [line for line in self.err.splitlines() if line.startswith(cli.PROG)]
        assert len(lines) == 1, self.err
        return lines[0]


def run(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli_env(app_env, monkeypatch, emulator, container):
    monkeypatch.setattr(context, "CLIENT_OPTIONS", {"sleep": lambda seconds: None})
    monkeypatch.delenv("SPEECH_TARGET_KEY", raising=False)
    monkeypatch.delenv("SPEECH_RESOURCE_ID", raising=False)
    context.reset()
    return app_env


def stored_language_zip(lines: int) -> bytes:
    text = "".join(f"{samples.PHRASES[i % 6]} number {i:09d} of the corpus\n" for i in range(lines))
    return samples.zip_bytes({"corpus.txt": text}, compression=zipfile.ZIP_STORED)


def puts(emulator) -> list[dict]:
    return [r for r in emulator.requests if r["method"] == "PUT" and r["path"].endswith("/blocks")]


# -- every verb --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb, capsys):
    assert cli.main([verb, "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: {cli.PROG} {verb}") and "--settings" in shown


def test_usage_errors_are_one_line_with_exit_2(cli_env):
    for argv in ([], ["launch"], ["upload"], ["deploy", "--locale", "en-US"], ["alerts", "--since", "soon"]):
        result = run(*argv)
        assert result.code == 2 and "Traceback" not in result.text, result.text
        if argv:
            assert len(result.err.strip().splitlines()) == 1 and "--help" in result.err, result.err


def test_a_missing_setting_names_itself(cli_env, monkeypatch):
    monkeypatch.delenv("SPEECH_ENDPOINT")
    assert run("status").one_error_line() == "speech-autopilot status: setting SPEECH_ENDPOINT is required but not set"
    assert "SPEECH_ENDPOINT" in run("upload", "x.zip", "--locale", "en-US", "--kind", "language").one_error_line()


def test_settings_come_from_a_local_settings_file_too(cli_env, monkeypatch, tmp_path, emulator):
    values = {k: cli_env[k] for k in ("SPEECH_ENDPOINT", "SPEECH_KEY", "AzureWebJobsStorage", "TRAINING_CONTAINER")}
    for name in values:
        monkeypatch.delenv(name)
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    result = run("status", "--settings", str(settings), "--json")
    assert result.code == 0 and json.loads(result.out) == [], result.err
    assert run("--settings", str(settings), "status").code == 0  # before or after the verb
    assert "cannot read the settings file" in run("status", "--settings", str(tmp_path / "nope.json")).one_error_line()
    settings.write_text("{not json")
    assert "is not a local.settings.json" in run("status", "--settings", str(settings)).one_error_line()


def test_the_console_script_and_module_entry_points(cli_env):
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"speech-autopilot": "shared.cli:main"}
    shown = subprocess.run(
        [sys.executable, "-m", "shared.cli", "status", "--json"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and json.loads(shown.stdout) == [], shown.stderr


# -- upload ------------------------------------------------------------------------------------------------------


def test_upload_prints_the_dataset_id_with_plain_progress_lines(cli_env, emulator, tmp_path):
    path = tmp_path / "calls.zip"
    path.write_bytes(stored_language_zip(20_000))
    result = run("upload", str(path), "--locale", "en-US", "--kind", "language", "--block-size", "256KiB")
    assert result.code == 0, result.err
    dataset_id = result.out.strip()
    dataset = emulator.datasets[dataset_id]
    assert dataset["customProperties"][managed.SOURCE] == "upload:en-US/language/calls.zip"
    assert dataset["customProperties"][managed.BLOCKS] == managed.BLOCKS_COMMITTED
    progress = [line for line in result.err.splitlines() if line.startswith("uploaded")]
    assert progress[-1].startswith("uploaded 100%") and "MB/s" in progress[-1] and "left" in progress[-1]
    assert "\r" not in result.err  # not a terminal: plain lines
    assert max(r["bytes"] for r in puts(emulator)) == 256 * 1024

    again = run("upload", str(path), "--locale", "en-US", "--kind", "language", "--block-size", "256KiB")
    assert again.code == 0 and again.out.strip() == dataset_id and "nothing sent" in again.err


def test_the_progress_bar_on_a_terminal_shows_bytes_rate_and_time_left():
    stream = io.StringIO()
    ticks = iter([0.0, 1.0, 2.0, 3.0])
    bar = cli.ProgressBar(stream, tty=True, clock=lambda: next(ticks), width=100)
    for done in (8_000_000, 16_000_000, 24_000_000, 32_000_000):
        bar(done, 32_000_000)
    frames = stream.getvalue().split("\r")
    assert "[" in frames[2] and "50.0%" in frames[2] and "16.0 MB of 32.0 MB" in frames[2]
    assert "8.0 MB/s" in frames[2] and "0:02 left" in frames[2]
    assert frames[-1].rstrip("\n").endswith("0:00 left\033[K") and stream.getvalue().endswith("\n")
    broken = io.StringIO()
    half = cli.ProgressBar(broken, tty=True, clock=lambda: 0.0, width=100)
    half(1, 4)
    half.close()  # a failed upload: the error line that follows starts on a line of its own
    assert broken.getvalue().endswith("\n") and broken.getvalue().count("\n") == 1


def test_upload_errors_are_one_line_and_create_nothing(cli_env, emulator, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all" * 100)
    line = run("upload", str(bad), "--locale", "en-US", "--kind", "language").one_error_line()
    assert "is not a valid Language dataset, nothing was created" in line and "zip" in line
    good = tmp_path / "good.zip"
    good.write_bytes(samples.language_zip())
    cases = {
        ("--locale", "english", "--kind", "language"): "is not a locale such as en-US",
        ("--locale", "en-US", "--kind", "video"): "unknown kind 'video'",
        ("--locale", "xx-XX", "--kind", "language"): "does not support Language datasets in locale xx-XX",
        ("--locale", "en-US", "--kind", "language", "--block-size", "9MiB"): "block size must be",
        ("--locale", "en-US", "--kind", "language", "--name", "a/b"): "must be a plain file name",
    }
    for options, expected in cases.items():
        assert expected in run("upload", str(good), *options).one_error_line()
    missing = run("upload", str(tmp_path / "missing.zip"), "--locale", "en-US", "--kind", "language")
    assert "missing.zip: No such file or directory" in missing.one_error_line()
    assert emulator.datasets == {}


def test_an_upload_killed_half_way_resumes_and_sends_only_the_missing_blocks(cli_env, emulator, tmp_path):
    path = tmp_path / "corpus.zip"
    path.write_bytes(stored_language_zip(70_000))  # ~4 MiB: 8 blocks of 512 KiB
    blocks = -(-path.stat().st_size // (512 * 1024))
    argv = ["upload", str(path), "--locale", "en-US", "--kind", "language", "--block-size", "512KiB", "--parallel", "2"]
    emulator.shape(bandwidth=1024 * 1024)  # 1 MiB/s per connection: about 2 s in all
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while len([r for r in puts(emulator) if r["status"] == 201]) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no goodbye
    finally:
        proc.wait(timeout=30)
    emulator.shape(bandwidth=0)
    settled, seen = time.monotonic() + 10, -1
    while len(puts(emulator)) != seen and time.monotonic() < settled:  # a PUT in flight at the kill may still land
        seen = len(puts(emulator))
        time.sleep(0.5)
    landed = {r["query"]["blockid"] for r in puts(emulator) if r["status"] == 201}
    assert 3 <= len(landed) < blocks
    [dataset] = emulator.datasets.values()
    assert dataset["customProperties"][managed.BLOCKS] == managed.BLOCKS_UPLOADING

    before = len(puts(emulator))
    result = run(*argv)
    assert result.code == 0, result.err
    sent_now = {r["query"]["blockid"] for r in puts(emulator)[before:]}
    assert sent_now.isdisjoint(landed) and len(sent_now) == blocks - len(landed)  # only the missing ones
    assert f"resumed: {len(landed)} block(s) were already on the service" in result.err
    assert result.out.strip() == dataset["self"].split("?")[0].rsplit("/", 1)[-1] and len(emulator.datasets) == 1
    helpers.settle(emulator)
    assert emulator.datasets[result.out.strip()]["status"] == "Succeeded"


# -- status ------------------------------------------------------------------------------------------------------


def test_status_and_its_alias_show_an_uploaded_dataset(cli_env, emulator, tmp_path, capsys):
    path = tmp_path / "corpus.zip"
    path.write_bytes(samples.language_zip())
    assert run("upload", str(path), "--locale", "de-DE", "--kind", "language").code == 0
    result = run("status", "--json")
    [row] = json.loads(result.out)
    assert row["locale"] == "de-DE" and row["pending"] == ["zip upload:de-DE/language/corpus.zip processing"]
    helpers.settle(emulator)
    assert "de-DE" in run("status").out.splitlines()[1]
    assert status_alias(["--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["datasets"] == 1 and row["pending"] == []


def test_the_reconcile_timer_trains_on_an_uploaded_dataset_like_on_a_dropped_zip(runtime, emulator, cli_env, tmp_path):
    path = tmp_path / "corpus.zip"
    path.write_bytes(samples.language_zip(10))
    first = run("upload", str(path), "--locale", "en-US", "--kind", "language").out.strip()
    helpers.settle(emulator)
    assert runtime.fire_timer("reconcile").ok
    [model] = emulator.models.values()
    assert [d["self"].split("?")[0].rsplit("/", 1)[-1] for d in model["datasets"]] == [first]
    helpers.settle(emulator)

    path.write_bytes(samples.language_zip(30))  # a new version of the same name: supersedes, trains again
    second = run("upload", str(path), "--locale", "en-US", "--kind", "language").out.strip()
    assert runtime.fire_timer("reconcile").ok
    assert len(emulator.models) == 1  # still processing: pending, nothing trains yet
    helpers.settle(emulator)
    assert runtime.fire_timer("reconcile").ok
    [newest] = [m for m in emulator.models.values() if m["self"] != model["self"]]
    assert [d["self"].split("?")[0].rsplit("/", 1)[-1] for d in newest["datasets"]] == [second]


# -- deploy and rollback -----------------------------------------------------------------------------------------


@pytest.fixture
def deploy_env(cli_env, monkeypatch, emulator):
    monkeypatch.setenv("AUTO_DEPLOY", "false")
    context.reset()
    emulator.set_now(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
    from shared import clock

    clock.use_clock(emulator.now)
    return cli_env


def endpoint_model(emulator) -> str:
    [endpoint] = emulator.endpoints.values()
    return endpoint["model"]["self"].split("?")[0].rsplit("/", 1)[-1]


def test_deploy_queues_the_documented_message_and_the_function_carries_it_out(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator)
    result = run("deploy", "--locale", "en-us", "--model", model.id, "--json")
    assert result.code == 0, result.err
    [message] = [json.loads(m) for m in runtime.peek(deploy_env["DEPLOY_QUEUE"])]
    assert message == {"locale": "en-US", "model": model.self_uri, "reason": "manual"}
    assert json.loads(result.out)["messageId"]
    runtime.drain(deploy_env["DEPLOY_QUEUE"])
    assert endpoint_model(emulator) == model.id


def test_deploy_errors_are_one_line(runtime, container, emulator, deploy_env):
    model = helpers.train(runtime, container, emulator)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert f"model {unknown} does not exist" in run("deploy", "--locale", "en-US", "--model", unknown).one_error_line()
    assert "is for en-US, not de-DE" in run("deploy", "--locale", "de-DE", "--model", model.id).one_error_line()
    assert "not a locale" in run("deploy", "--locale", "english", "--model", model.id).one_error_line()
    assert runtime.peek(deploy_env["DEPLOY_QUEUE"]) == []


def test_rollback_goes_back_to_the_model_the_endpoint_served_before(runtime, container, emulator, deploy_env):
    queue = deploy_env["DEPLOY_QUEUE"]
    assert "has no managed endpoint" in run("rollback", "--locale", "en-US").one_error_line()
    first = helpers.train(runtime, container, emulator, name="one")
    assert run("deploy", "--locale", "en-US", "--model", first.id).code == 0
    runtime.drain(queue)
    assert "records no model it served before" in run("rollback", "--locale", "en-US").one_error_line()
    second = helpers.train(runtime, container, emulator, name="two")
    assert run("deploy", "--locale", "en-US", "--model", second.id).code == 0
    runtime.drain(queue)
    assert endpoint_model(emulator) == second.id

    result = run("rollback", "--locale", "en-US", "--json")
    assert result.code == 0, result.err
    assert f"from model {second.id} to {first.id}" in result.err
    [message] = [json.loads(m) for m in runtime.peek(queue)]
    assert message == {"locale": "en-US", "model": first.self_uri, "reason": "rollback"}
    runtime.drain(queue)
    assert endpoint_model(emulator) == first.id
    assert "already serves" in run("rollback", "--locale", "en-US", "--to", first.id).one_error_line()
    assert run("rollback", "--locale", "en-US").code == 0  # and back again: the rollback is recorded too
    runtime.drain(queue)
    assert endpoint_model(emulator) == second.id


# -- alerts ------------------------------------------------------------------------------------------------------


def alert(n: int, at: datetime, kind: str = "model-failed") -> str:
    return json.dumps(
        {
            "id": f"id-{n}",
            "kind": kind,
            "severity": "warning",
            "locale": "en-US",
            "resource": f"model-{n}",
            "message": f"alert number {n}",
            "details": {},
            "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


def test_alerts_are_peeked_not_consumed_and_filtered_by_age(runtime, cli_env):
    queue = cli_env["ALERT_QUEUE"]
    assert run("alerts").out.startswith(f"no alerts on {queue}")  # the queue does not even exist yet
    now = datetime.now(UTC)
    runtime.send(queue, alert(1, now - timedelta(days=3)))
    runtime.send(queue, alert(2, now - timedelta(minutes=5), "endpoint-failed"))
    table = run("alerts")
    assert table.code == 0 and table.out.splitlines()[0].split() == ["AT", "SEVERITY", "KIND", "LOCALE", "MESSAGE"]
    assert "alert number 1" in table.out and "alert number 2" in table.out
    recent = run("alerts", "--since", "1h", "--json")
    assert [a["id"] for a in json.loads(recent.out)] == ["id-2"]
    assert len(runtime.peek(queue)) == 2  # nothing consumed
    assert "note:" not in table.err


def test_alerts_say_what_the_peek_limit_means(runtime, cli_env):
    queue = cli_env["ALERT_QUEUE"]
    now = datetime.now(UTC)
    for n in range(cli.PEEK_LIMIT + 3):
        runtime.send(queue, alert(n, now))
    result = run("alerts", "--json")
    assert len(json.loads(result.out)) == cli.PEEK_LIMIT
    assert "peeks at most 32 messages" in result.err and "newer alerts may exist" in result.err


def test_durations_and_sizes_parse():
    assert cli.parse_duration("1d12h") == timedelta(hours=36) and cli.parse_duration("90s") == timedelta(seconds=90)
    assert cli.parse_size("8MiB") == 8 * 1024 * 1024 and cli.parse_size("256KiB") == 262144
    for bad in ("", "soon", "5", "1x"):
        with pytest.raises(Exception, match="not a duration"):
            cli.parse_duration(bad)


# -- copy-model --------------------------------------------------------------------------------------------------


def test_a_model_copied_to_a_second_resource_appears_there_marked(
    runtime, container, emulator, target_emulator, cli_env, monkeypatch
):
    model = helpers.train(runtime, container, emulator)
    monkeypatch.setenv("SPEECH_TARGET_KEY", target_emulator.key)
    monkeypatch.setenv("SPEECH_RESOURCE_ID", emulator.resource_id)
    result = run("copy-model", model.id, "--to-endpoint", target_emulator.url)
    assert result.code == 0, result.err
    copy_id = result.out.strip()
    copy = target_emulator.models[copy_id]
    assert copy["locale"] == "en-US" and copy["displayName"] == model.display_name
    props = copy["customProperties"]
    assert props[managed.MANAGED] == managed.MANAGED_BY and props[managed.COPY_OF] == model.id
    assert props[managed.DATASET_SET] == model.custom_properties[managed.DATASET_SET]
    assert managed.DEPLOY_REQUESTED not in props and managed.ALERTED not in props
    assert target_emulator.key not in result.text and emulator.key not in result.text


def test_copy_model_errors_are_one_line_and_never_show_the_target_key(
    runtime, container, emulator, target_emulator, cli_env, monkeypatch
):
    model = helpers.train(runtime, container, emulator)
    line = run("copy-model", model.id, "--to-endpoint", target_emulator.url).one_error_line()
    assert "--source-resource-id or SPEECH_RESOURCE_ID" in line
    monkeypatch.setenv("SPEECH_RESOURCE_ID", emulator.resource_id)
    monkeypatch.setenv("WRONG_KEY", "wrong-key-456789")
    wrong = run("copy-model", model.id, "--to-endpoint", target_emulator.url, "--to-key-env", "WRONG_KEY")
    assert "status 401" in wrong.one_error_line() and "wrong-key-456789" not in wrong.text
    monkeypatch.setenv("SPEECH_TARGET_KEY", target_emulator.key)
    assert (
        "must be the target resource's endpoint URL"
        in run("copy-model", model.id, "--to-endpoint", "westeurope").one_error_line()
    )
    other = run(
        "copy-model", model.id, "--to-endpoint", target_emulator.url, "--source-resource-id", "/subscriptions/x"
    )
    assert "status 403" in other.one_error_line() and target_emulator.key not in other.text
    assert target_emulator.models == {}


# -- secrets -----------------------------------------------------------------------------------------------------


def test_nothing_secret_is_ever_printed(cli_env, emulator):
    cli.SECRETS.add(emulator.key)
    leaked = RuntimeError(
        f"failed with key {emulator.key} at https://acct.blob.core.windows.net/c/b.zip?sv=2025&sig=SECRET%2Bsig"
    )
    line = cli.describe(leaked)
    assert emulator.key not in line and "SECRET" not in line and "sig=***" in line
    account_key = cli_env["AzureWebJobsStorage"].split("AccountKey=")[1].split(";")[0]
    for argv in (["status"], ["alerts"], ["status", "--json"], ["rollback", "--locale", "en-US"]):
        result = run(*argv)
        for secret in (emulator.key, account_key, cli_env["AzureWebJobsStorage"]):
            assert secret not in result.text
