"""The operator's command line: `speech-autopilot VERB` (installed) or `python -m shared.cli VERB`.

    upload FILE --locale L --kind K [--name N]   a local zip -> a dataset, in blocks (resumable); prints its id
    status [--json] [--html FILE]                 per locale: endpoint, model, expiry, next action; the page
    deploy --locale L --model M [--endpoint E]    queue a deploy request (reason manual)
    rollback --locale L [--to MODEL]              queue a deploy back to the model the endpoint served before
    alerts [--since DURATION] [--json]            peek at the alert queue (nothing is consumed)
    copy-model MODEL --to-endpoint URL            copy a model to another Speech resource or region

Settings come from the environment, or `--settings local.settings.json` (its Values; the environment wins), read
by shared.settings.load like the app's. Errors are one line on stderr and a non-zero exit (1; 2 for bad usage;
130 when interrupted), never a traceback. No key, SAS, token, connection string or webhook URL is ever printed or
logged: every line on stdout and stderr passes through a filter that masks the known secret values.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Iterable, NoReturn, TextIO

from shared import managed
from shared.settings import SettingError, Settings
from shared.settings import load as load_settings

PROG = "speech-autopilot"
PEEK_LIMIT = 32  # the queue service's most messages a peek returns
DEFAULT_TARGET_KEY_ENV = "SPEECH_TARGET_KEY"
SOURCE_RESOURCE_ENV = "SPEECH_RESOURCE_ID"
COPIED_PROPERTIES = (managed.MANAGED, managed.DATASET_SET, managed.BASE_MODEL, managed.REASON, managed.RETRAIN_OF)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kib|kb|k|mib|mb|m)?\s*$", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_SIG = re.compile(r"(?i)\b((?:sig|code)=)[^&\s\"']+")  # a SAS signature, a function key in a URL
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class CliError(Exception):
    """A failure the operator can act on; the message is the whole story, on one line."""


# -- secrets ---------------------------------------------------------------------------------------------------


class Secrets:
    """Known secret values (keys, connection strings and their account keys, webhook URLs) to mask in output."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= 6:
                self.values.add(value)
                if "AccountKey=" in value:  # a connection string: its key alone, too
                    key = value.split("AccountKey=", 1)[1].split(";", 1)[0]
                    self.values.add(key)

    def add_settings(self, config: Settings) -> None:
        self.add(config.speech_key, config.storage.connection_string, config.alert_webhook_url)

    def scrub(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "***")
        return _SIG.sub(r"\1***", text)


SECRETS = Secrets()


class _ScrubbingStream:
    """stdout/stderr wrapper: every write is masked (progress bars included)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(SECRETS.scrub(text))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _ScrubbingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = SECRETS.scrub(record.getMessage())
        record.args = None
        return True


def one_line(text: str) -> str:
    return " ".join(str(text).split())


# -- parsing helpers -------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    """Bytes from `8MiB`, `256KiB`, `4194304` (MB/KB are read as MiB/KiB)."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 8MiB, 256KiB or 4194304")
    number, unit = float(match[1]), (match[2] or "b").lower()
    scale = 1024 * 1024 if unit.startswith("m") else 1024 if unit.startswith("k") else 1
    return int(number * scale)


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `24h`, `7d`, `2w`, or combined: `1d12h`."""
    compact = text.replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not compact or not parts or "".join(n + u for n, u in parts).lower() != compact.lower():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30m, 24h, 7d or 1d12h")
    return timedelta(seconds=sum(int(n) * _UNITS[u.lower()] for n, u in parts))


def read_settings(path: str | None, environ: dict[str, str] | None = None) -> Settings:
    """The app's settings from the environment, completed by a local.settings.json's Values."""
    env = dict(os.environ if environ is None else environ)
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                values = json.load(handle).get("Values", {})
        except OSError as exc:
            raise CliError(f"cannot read the settings file {path}: {exc.strerror or exc}") from None
        except (ValueError, AttributeError):
            raise CliError(f'the settings file {path} is not a local.settings.json (JSON with "Values")') from None
        for key, value in values.items():
            if value not in (None, "") and not env.get(key):
                env[key] = str(value)
    config = load_settings(env)
    SECRETS.add_settings(config)
    return config


# -- output ----------------------------------------------------------------------------------------------------


def _mb(count: float) -> str:
    return f"{count / 1e6:,.1f} MB"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class ProgressBar:
    """Bytes, rate and time left: a bar redrawn in place on a terminal, plain lines every 10% otherwise."""

    stream: TextIO
    tty: bool
    clock: Callable[[], float] = time.monotonic
    width: int = 0
    _samples: deque = field(default_factory=lambda: deque(maxlen=64))
    _drawn: float = float("-inf")
    _next_line: int = 10
    _done: bool = False

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        self._samples.append((now, done))
        rate = self._rate()
        left = (total - done) / rate if rate > 0 else None
        percent = 100.0 * done / total if total else 100.0
        summary = f"{_mb(done)} of {_mb(total)}, {rate / 1e6:.1f} MB/s, " + (
            f"{_clock(left)} left" if left is not None else "time left unknown"
        )
        if self.tty:
            if done < total and now - self._drawn < 0.1:
                return
            self._drawn = now
            columns = self.width or shutil.get_terminal_size((100, 20)).columns
            text = f" {percent:5.1f}%  {summary}"
            room = max(10, min(40, columns - len(text) - 3))
            filled = int(room * done / total) if total else room
            self.stream.write(f"\r[{'#' * filled}{'.' * (room - filled)}]{text}\033[K")
            if done >= total and not self._done:
                self._done = True
                self.stream.write("\n")
        else:
            if done >= total:
                if not self._done:
                    self._done = True
                    self.stream.write(f"uploaded {percent:.0f}%: {summary}\n")
            elif percent >= self._next_line:
                self._next_line = int(percent // 10) * 10 + 10
                self.stream.write(f"uploaded {percent:.0f}%: {summary}\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left half-drawn (a failed or interrupted upload), so the next line starts clean."""
        if self.tty and self._drawn != float("-inf") and not self._done:
            self._done = True
            self.stream.write("\n")
            self.stream.flush()

    def _rate(self) -> float:
        """Bytes per second over the last few seconds (at least the last two samples)."""
        if len(self._samples) < 2:
            return 0.0
        newest_time, newest = self._samples[-1]
        oldest_time, oldest = self._samples[0]
        for when, amount in self._samples:
            if newest_time - when <= 5.0:
                oldest_time, oldest = when, amount
                break
        if newest_time - oldest_time <= 0:
            oldest_time, oldest = self._samples[0]
        elapsed = newest_time - oldest_time
        return (newest - oldest) / elapsed if elapsed > 0 else 0.0


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


# -- clients ---------------------------------------------------------------------------------------------------


def _speech(config: Settings):
    from shared import context

    return context.speech(config)


def _queue(config: Settings, name: str):
    from shared.storage import queue_service

    try:
        return queue_service(config.storage).get_queue_client(name)
    except ImportError:
        raise CliError("azure-storage-queue is not installed (pip install azure-storage-queue)") from None


def _enqueue(config: Settings, queue_name: str, body: dict[str, Any]) -> str:
    """Put a deploy request on DEPLOY_QUEUE as plain JSON (host.json messageEncoding "none")."""
    from azure.core.exceptions import ResourceNotFoundError

    client = _queue(config, queue_name)
    text = json.dumps(body)
    try:
        sent = client.send_message(text)
    except ResourceNotFoundError:  # the app has not created it yet
        client.create_queue()
        sent = client.send_message(text)
    return str(getattr(sent, "id", "") or "")


# -- verbs -----------------------------------------------------------------------------------------------------


def cmd_upload(args: argparse.Namespace, config: Settings, out: TextIO, err: TextIO) -> int:
    from shared import upload

    speech = _speech(config)
    progress = ProgressBar(err, tty=err.isatty())
    print(f"validating {args.file} as {args.kind} data for {args.locale}", file=err)
    try:
        result = upload.upload_file(
            speech,
            args.file,
            locale=args.locale,
            kind=args.kind,
            name=args.name,
            block_size=args.block_size,
            parallel=args.parallel,
            progress=progress,
        )
    except upload.ZipRefused as exc:
        reasons = " ".join(exc.reasons)
        raise CliError(f"{exc.path} is not a valid {exc.kind} dataset, nothing was created: {reasons}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{args.file}: {exc.strerror or exc}") from None
    finally:
        progress.close()
    for warning in result.warnings:
        print(f"warning: {warning}", file=err)
    dataset = result.dataset
    if result.already_done:
        how = "this content was uploaded before: nothing sent"
    else:
        rate = result.bytes_sent / result.seconds if result.seconds else 0
        how = f"{result.sent} block(s), {_mb(result.bytes_sent)} sent in {result.seconds:.1f} s ({rate / 1e6:.1f} MB/s)"
        if result.resumed:
            how += f"; resumed: {result.reused} block(s) were already on the service"
    print(f"dataset {dataset.id} ({dataset.status}) from {result.source}: {how}", file=err)
    print(dataset.id, file=out)
    return 0


def cmd_status(args: argparse.Namespace, config: Settings, out: TextIO, err: TextIO) -> int:
    from shared import status

    rows = status.build_status(status.gather(config), **status.options(config))
    if args.html:
        from shared.status_page import render_page

        with open(args.html, "w", encoding="utf-8") as page:
            page.write(render_page(rows))
        print(f"status page written to {args.html}", file=err)
    print(json.dumps(rows, indent=2) if args.json else status.format_table(rows), file=out)
    return 0


def _locale(text: str) -> str:
    from shared.ingest import LOCALE_PATTERN, canonical_locale

    if not LOCALE_PATTERN.match(text.strip()):
        raise CliError(f"'{text}' is not a locale such as en-US (language-REGION)")
    return canonical_locale(text.strip())


def _usable_model(speech, model: str, locale: str):
    """The custom model, checked as the deploy function will (exists, Succeeded, this locale, not expired)."""
    from shared.deploy import is_base_model_reference
    from shared.speech import SpeechError, entity_id

    if is_base_model_reference(model):
        raise CliError(f"{model} is a base model; deployments take a trained custom model")
    try:
        found = speech.get_model(entity_id(model))
    except SpeechError as exc:
        if exc.not_found or exc.status == 400:
            raise CliError(f"model {entity_id(model)} does not exist in {config_endpoint(speech)}") from None
        raise
    if found.status != "Succeeded":
        raise CliError(f"model {found.id} is {found.status}, not Succeeded")
    if found.locale.lower() != locale.lower():
        raise CliError(f"model {found.id} is for {found.locale}, not {locale}")
    if found.transcription_expiry is not None and found.transcription_expiry <= datetime.now(UTC):
        raise CliError(f"model {found.id} expired on {found.transcription_expiry:%Y-%m-%d}")
    return found


def config_endpoint(speech) -> str:
    return speech.base.removesuffix("/speechtotext")


def cmd_deploy(args: argparse.Namespace, config: Settings, out: TextIO, err: TextIO) -> int:
    locale = _locale(args.locale)
    model = _usable_model(_speech(config), args.model, locale)
    body = {"locale": locale, "model": model.self_uri, "reason": "manual"}
    if args.endpoint:
        body["endpoint"] = args.endpoint
    message_id = _enqueue(config, config.deploy_queue, body)
    print(f"queued: deploy model {model.id} ({model.display_name}) to {locale} (manual)", file=err)
    print(json.dumps({**body, "messageId": message_id}) if args.json else message_id, file=out)
    return 0


def cmd_rollback(args: argparse.Namespace, config: Settings, out: TextIO, err: TextIO) -> int:
    from shared.reconcile import managed_endpoints

    locale = _locale(args.locale)
    speech = _speech(config)
    endpoint = managed_endpoints(speech.list_endpoints()).get(locale)
    if endpoint is None:
        raise CliError(f"{locale} has no managed endpoint: there is nothing to roll back")
    target = args.to or endpoint.custom_properties.get(managed.PREVIOUS_MODEL)
    if not target:
        raise CliError(
            f"endpoint {endpoint.id} records no model it served before (it never changed model since this was "
            f"recorded); name one: rollback --locale {locale} --to MODEL"
        )
    model = _usable_model(speech, target, locale)
    if model.id == endpoint.model_id:
        raise CliError(f"endpoint {endpoint.id} already serves model {model.id}")
    body = {"locale": locale, "model": model.self_uri, "reason": "rollback"}
    message_id = _enqueue(config, config.deploy_queue, body)
    print(f"queued: roll {locale} back from model {endpoint.model_id} to {model.id} ({model.display_name})", file=err)
    print(json.dumps({**body, "messageId": message_id}) if args.json else message_id, file=out)
    return 0


def _alert_of(content: str) -> dict[str, Any] | None:
    from shared.deploy import decode_body

    try:
        body = decode_body(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def cmd_alerts(args: argparse.Namespace, config: Settings, out: TextIO, err: TextIO) -> int:
    from azure.core.exceptions import ResourceNotFoundError

    client = _queue(config, config.alert_queue)
    try:
        messages = list(client.peek_messages(max_messages=PEEK_LIMIT))
    except ResourceNotFoundError:
        messages = []
    since = datetime.now(UTC) - args.since if args.since else None
    alerts = []
    for message in messages:
        alert = _alert_of(message.content) or {"kind": "?", "message": one_line(message.content)[:200]}
        at = _parse_time(alert.get("at")) or message.inserted_on
        if since is None or (at is not None and at >= since):
            alerts.append(alert)
    if args.json:
        print(json.dumps(alerts, indent=2), file=out)
    elif not alerts:
        print(f"no alerts on {config.alert_queue}" + (f" in the last {args.since}" if since else ""), file=out)
    else:
        rows = [["AT", "SEVERITY", "KIND", "LOCALE", "MESSAGE"]]
        rows += [
            [
                str(a.get("at") or "-"),
                str(a.get("severity") or "-"),
                str(a.get("kind") or "-"),
                str(a.get("locale") or "-"),
                _short(one_line(str(a.get("message") or "")), 100),
            ]
            for a in alerts
        ]
        print(_table(rows), file=out)
    if len(messages) >= PEEK_LIMIT:
        print(
            f"note: showing the {PEEK_LIMIT} oldest visible messages of {config.alert_queue}. The queue service peeks "
            f"at most {PEEK_LIMIT} messages, always from the front, and cannot page further without receiving (and "
            "so hiding) them: newer alerts may exist. Messages a consumer holds right now are not visible either.",
            file=err,
        )
    return 0


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def cmd_copy_model(args: argparse.Namespace, config: Settings, out: TextIO, err: TextIO) -> int:
    from shared.speech import SpeechClient, SpeechError, entity_id

    source_id = args.source_resource_id or os.environ.get(SOURCE_RESOURCE_ENV, "").strip()
    if not source_id:
        raise CliError(
            f"the source Speech resource's Azure resource id is required: --source-resource-id or {SOURCE_RESOURCE_ENV}"
            " (/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.CognitiveServices/accounts/<name>)"
        )
    target_url = args.to_endpoint.strip()
    if not re.match(r"^https?://[^/\s]+", target_url):
        raise CliError(f"--to-endpoint must be the target resource's endpoint URL, got {target_url!r}")
    target_key = os.environ.get(args.to_key_env, "").strip() or None
    SECRETS.add(target_key)
    source = _speech(config)
    model = source.get_model(entity_id(args.model))
    if model.status != "Succeeded":
        raise CliError(f"model {model.id} is {model.status}; only a Succeeded custom model can be copied")
    credential = None
    if not target_key:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    target = SpeechClient(target_url, api_version=config.speech_api_version, key=target_key, credential=credential)
    authorization = target.authorize_copy(source_id)
    print(f"authorized on {target_url} (region {authorization.target_resource_region or '?'})", file=err)
    try:
        operation = source.copy_model(model.id, authorization)
    except SpeechError as exc:
        if exc.ambiguous:
            raise CliError(
                f"the copy request for model {model.id} got no answer and may have started; check the target's "
                "models before running it again"
            ) from None
        raise
    deadline = time.monotonic() + args.timeout
    wait = 2.0
    last = ""
    while not operation.done:
        if operation.status != last:
            print(f"copy {operation.id}: {operation.status}", file=err)
            last = operation.status
        if time.monotonic() >= deadline:
            raise CliError(f"copy operation {operation.id} is still {operation.status} after {args.timeout:.0f} s")
        time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        wait = min(wait * 1.5, 15.0)
        operation = source.get_model_copy_operation(operation.id)
    if operation.status != "Succeeded" or not operation.result_uri:
        why = operation.error.message if operation.error else "no reason given"
        raise CliError(f"copy operation {operation.id} failed: {why}")
    copy = target.get_model(entity_id(operation.result_uri))
    marks = {k: model.custom_properties[k] for k in COPIED_PROPERTIES if k in model.custom_properties}
    marks[managed.COPY_OF] = model.id
    copy = target.update_model(copy.id, custom_properties=managed.with_properties(copy.custom_properties, **marks))
    print(f"model {model.id} copied to {target_url} as model {copy.id} ({copy.status})", file=err)
    print(copy.id, file=out)
    return 0


# -- the parser ------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


VERBS: dict[str, Callable[[argparse.Namespace, Settings, TextIO, TextIO], int]] = {
    "upload": cmd_upload,
    "status": cmd_status,
    "deploy": cmd_deploy,
    "rollback": cmd_rollback,
    "alerts": cmd_alerts,
    "copy-model": cmd_copy_model,
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--settings",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="read settings from a local.settings.json (its Values; the environment wins)",
    )
    common.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="log what happens")
    parser = _Parser(
        prog=PROG,
        description="Operate Custom Speech Autopilot: upload data, see status, deploy, roll back, read alerts, "
        "copy models. Settings: the app's (environment or --settings local.settings.json).",
        parents=[common],
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    up = verbs.add_parser(
        "upload",
        parents=[common],
        help="upload a local zip as a dataset, in blocks (resumable)",
        description="Validate a local zip like a dropped one, then upload it in blocks of at most 8 MiB, 4 at a "
        "time, as the dataset upload:{locale}/{kind}/{name}.zip (the reconcile timer trains on it like on a dropped "
        "zip; a newer upload of the same name supersedes it). Interrupted? Run the same command again: only the "
        "missing blocks are sent. Prints the dataset id.",
    )
    up.add_argument("file", help="the .zip file")
    up.add_argument("--locale", required=True, help="e.g. en-US")
    up.add_argument(
        "--kind", required=True, help="acoustic, language, pronunciation, markdown, output-formatting, audio"
    )
    up.add_argument("--name", help="the dataset's name (default: the file name without .zip)")
    up.add_argument("--parallel", type=int, default=None, help="blocks in flight (default 4)")
    up.add_argument("--block-size", type=parse_size, default=None, help="at most 8MiB (the default)")

    st = verbs.add_parser("status", parents=[common], help="per locale: endpoint, model, expiry, pending work")
    st.add_argument("--json", action="store_true", help="print JSON for scripts")
    st.add_argument("--html", metavar="FILE", help="also write the status page (as GET /api/status serves it) to FILE")

    dep = verbs.add_parser(
        "deploy",
        parents=[common],
        help="queue a deploy request (reason manual)",
        description="Check the model (exists, Succeeded, this locale, not expired), then put "
        '{"locale", "model", "reason": "manual"[, "endpoint"]} on DEPLOY_QUEUE; the deploy function carries it out.',
    )
    dep.add_argument("--locale", required=True)
    dep.add_argument("--model", required=True, help="model id or self URI")
    dep.add_argument("--endpoint", help="endpoint id or self URI (default: the locale's managed endpoint)")
    dep.add_argument("--json", action="store_true", help="print the queued message as JSON")

    rb = verbs.add_parser(
        "rollback",
        parents=[common],
        help="queue a deploy of the model the endpoint served before (reason rollback)",
        description="Without --to: the model the locale's managed endpoint served before its last model change "
        "(recorded by the deploy function as previousModel). The reconcile timer does not undo a rollback.",
    )
    rb.add_argument("--locale", required=True)
    rb.add_argument("--to", metavar="MODEL", help="model id or self URI to go back to")
    rb.add_argument("--json", action="store_true", help="print the queued message as JSON")

    al = verbs.add_parser(
        "alerts",
        parents=[common],
        help="peek at the alert queue without consuming it",
        description=f"Show the alerts on ALERT_QUEUE without receiving them. The queue service peeks at most "
        f"{PEEK_LIMIT} messages, from the front of the queue (the oldest): with more waiting, newer ones cannot be "
        "seen this way.",
    )
    al.add_argument("--since", type=parse_duration, help="only alerts from the last DURATION (30m, 24h, 7d, 1d12h)")
    al.add_argument("--json", action="store_true", help="print JSON for scripts")

    cp = verbs.add_parser(
        "copy-model",
        parents=[common],
        help="copy a model to another Speech resource or region",
        description="Models_AuthorizeCopy on the target, Models_Copy on this resource (SPEECH_ENDPOINT), then follow "
        "the copy to its end. The copy gets the model's managed marking (customProperties) and copyOf. Prints the "
        "new model's id. The target key is read from an environment variable, never from the command line.",
    )
    cp.add_argument("model", help="model id or self URI on this resource")
    cp.add_argument("--to-endpoint", required=True, metavar="URL", help="the target resource's endpoint URL")
    cp.add_argument(
        "--to-key-env",
        default=DEFAULT_TARGET_KEY_ENV,
        metavar="VAR",
        help=f"environment variable holding the target's key (default {DEFAULT_TARGET_KEY_ENV}); "
        "unset: a Microsoft Entra token (DefaultAzureCredential)",
    )
    cp.add_argument(
        "--source-resource-id",
        metavar="ID",
        help=f"this resource's Azure resource id (default: ${SOURCE_RESOURCE_ENV})",
    )
    cp.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow the copy (default 3600)")
    return parser


def main(argv: Iterable[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = _ScrubbingStream(stdout or sys.stdout)
    err = _ScrubbingStream(stderr or sys.stderr)
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return int(exc.code or 0)
    if not args.verb:
        parser.print_help(err)
        return 2
    handler = logging.StreamHandler(err)
    handler.addFilter(_ScrubbingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    where = f"{PROG} {args.verb}"
    try:
        config = read_settings(getattr(args, "settings", None))
        return VERBS[args.verb](args, config, out, err)
    except KeyboardInterrupt:
        again = " (run the same command again: the upload resumes where it stopped)" if args.verb == "upload" else ""
        print(f"{where}: interrupted{again}", file=err)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line, never a traceback
        print(f"{where}: {describe(exc)}", file=err)
        return 1
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def describe(exc: BaseException) -> str:
    """One line for any failure, secrets masked."""
    from azure.core.exceptions import AzureError

    from shared.speech import SpeechError

    if isinstance(exc, (CliError, SettingError)):
        text = str(exc)
    elif isinstance(exc, SpeechError):
        text = f"the Speech service: {exc}"
    elif isinstance(exc, AzureError):
        first = (str(getattr(exc, "message", "") or exc).strip().splitlines() or [""])[0]
        code = getattr(exc, "error_code", None)
        text = f"storage: {first}" + (f" ({code})" if code and code not in first else "")
    elif isinstance(exc, OSError):
        text = f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
    else:
        text = f"unexpected error ({type(exc).__name__}): {exc}"
    return SECRETS.scrub(one_line(text))


if __name__ == "__main__":
    sys.exit(main())
