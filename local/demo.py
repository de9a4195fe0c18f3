"""The whole lifecycle offline, in well under a minute: Azurite + the Speech emulator + the offline host.

zip validated -> dataset created -> processed -> model trained on both (not on the test set beside them) -> judged
against its base model on the test set (the quality gate) -> endpoint created; a second zip -> new model -> judged
against the serving model -> the same endpoint redeployed; a broken zip -> rejected; the clock moves toward
expiry -> one expiry alert (the tightest tier crossed) saying which retrain it started, hands-off retrain on a newer
base model, redeploy; the status table, and the status page when asked. Every process it starts is stopped.

    python -m local.demo [--status-html FILE]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Callable

from local import samples
from local.azurite import Azurite
from local.host import LocalHost
from local.runtime import log_volume
from local.speech_emulator import SpeechEmulator
from shared import clock, context
from shared.budget import RequestBudget
from shared.status import build_status, format_table, options
from shared.status_page import render_page
from shared.storage import BlobState

# Realistic durations on the emulator's clock (the demo moves that clock, so they cost no real time).
DURATIONS = {"dataset": 2 * 3600, "model": 26 * 3600, "endpoint": 20 * 60, "evaluation": 2 * 3600}
STEP = timedelta(hours=2)


class SimTimeFormatter(logging.Formatter):
    def __init__(self, now: Callable[[], datetime]) -> None:
        super().__init__()
        self.now = now

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.name == "autopilot.alerts" and isinstance(record.args, tuple) and len(record.args) == 6:
            severity, kind, _locale, _resource, _id, message = record.args
            text = f"ALERT {kind} ({severity}): {message}"
        return f"  [{self.now():%Y-%m-%d %H:%M}] {text}"


def _configure_logging(now: Callable[[], datetime]) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(SimTimeFormatter(now))
    handler.addFilter(
        lambda r: (
            r.name in ("autopilot.ingest", "autopilot.timers", "autopilot.deploy", "autopilot.alerts", "autopilot.host")
            and r.levelno >= logging.INFO
        )
    )
    app_logger = logging.getLogger("autopilot")
    app_logger.setLevel(logging.INFO)
    app_logger.addHandler(handler)  # records still propagate to the root, where the worker collects them


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


class Demo:
    def __init__(self, azurite: Azurite, emulator: SpeechEmulator, status_html: str | None = None) -> None:
        self.emulator = emulator
        self.status_html = status_html
        os.environ.update(
            {
                "AzureWebJobsStorage": azurite.connection_string,
                "SPEECH_ENDPOINT": emulator.url,
                "SPEECH_KEY": emulator.key,
                "TRAINING_CONTAINER": "training",
                "DEPLOY_QUEUE": "speech-deployments",
                "ALERT_QUEUE": "speech-alerts",
            }
        )
        context.reset()
        clock.use_clock(emulator.now)
        # The demo's time is the emulator's: the request budget counts its seconds too, and a wait passes them.
        budget = RequestBudget(clock=lambda: emulator.now().timestamp(), sleep=emulator.advance)
        context.CLIENT_OPTIONS = {"sleep": emulator.advance, "budget": budget}

        self.host = LocalHost.from_env(timer_interval=STEP.total_seconds(), clock=emulator.now)
        self.container = self.host.blob_service.get_container_client("training")
        self.container.create_container()
        self.speech = context.speech(context.settings())

    def drop(self, name: str, data: bytes) -> None:
        print(f"  drop training/{name} ({len(data):,} bytes)", flush=True)
        self.container.get_blob_client(name).upload_blob(data, overwrite=True)

    def until(self, done: Callable[[], bool], what: str, max_steps: int = 400) -> None:
        """Run the host, moving the emulator's clock by STEP between rounds, until `done`."""
        for _ in range(max_steps):
            self.host.tick()
            if done():
                return
            self.emulator.advance(STEP)
        raise RuntimeError(f"the demo did not reach: {what}")

    def endpoint(self):
        return next(iter(self.speech.list_endpoints()), None)

    def serving(self, predicate: Callable) -> bool:
        endpoint = self.endpoint()
        if endpoint is None or endpoint.status != "Succeeded":
            return False
        return predicate(self.speech.get_model(endpoint.model_id))

    def run(self) -> None:
        say(
            "1. Two zips for en-US: acoustic (real 16 kHz WAV + transcript) and language text; and a test set "
            "(audio + transcript) for the quality gate"
        )
        self.drop("en-US/acoustic/calls.zip", samples.acoustic_zip(4))
        self.drop("en-US/language/phrases.zip", samples.language_zip(40))
        self.drop("en-US/test/holdout.zip", samples.acoustic_zip(20, seconds=0.2))
        self.until(lambda: self.serving(lambda m: len(m.dataset_ids) == 2), "an endpoint serving both datasets")
        first = self.endpoint()

        say("2. A second language zip: a new model, judged against the serving one on the test set, then deployed")
        self.drop("en-US/language/more-phrases.zip", samples.language_zip(80))
        self.until(lambda: self.serving(lambda m: len(m.dataset_ids) == 3), "the endpoint serving three datasets")
        assert self.endpoint().id == first.id, "the endpoint id must not change"
        gate = self.speech.get_model(self.endpoint().model_id).custom_properties
        print(
            f"  endpoint {first.id} kept its id; the model passed the quality gate (evaluation "
            f"{gate.get('evaluation')}, word error rate {float(gate.get('wordErrorRate', 'nan')):.1%})",
            flush=True,
        )

        say("3. A broken zip: its transcript names a file that is not in it")
        self.drop("en-US/acoustic/broken.zip", samples.acoustic_zip(2, missing=("lost.wav",)))
        self.until(
            lambda: (
                BlobState.from_metadata(
                    self.container.get_blob_client("en-US/acoustic/broken.zip").get_blob_properties().metadata
                ).status
                == "rejected"
            ),
            "the broken zip rejected",
        )

        say("4. Years pass: a newer base model ships; the serving model nears expiry")
        serving = self.speech.get_model(self.endpoint().model_id)
        target = serving.transcription_expiry - timedelta(days=10)
        base = self.emulator.add_base_model("en-US", created=target - timedelta(days=30))
        print(
            f"  new base model {base['displayName']}; clock jumps to {target:%Y-%m-%d} "
            f"(model expires {serving.transcription_expiry:%Y-%m-%d})",
            flush=True,
        )
        self.emulator.advance(target - self.emulator.now())
        self.until(
            lambda: self.serving(lambda m: m.custom_properties.get("reason") == "expiry"),
            "the retrained model on the endpoint",
        )

        say("5. Status")
        from shared.flows.timers import snapshot

        config = context.settings()
        rows = build_status(snapshot(config, self.speech, self.container), **options(config))
        print(format_table(rows), flush=True)
        if self.status_html:
            with open(self.status_html, "w", encoding="utf-8") as page:
                page.write(render_page(rows))
            print(f"  status page (as GET /api/status serves it) written to {self.status_html}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The whole lifecycle offline: Azurite, the Speech emulator, the app.")
    parser.add_argument("--status-html", metavar="FILE", help="write the status page of the final state to FILE")
    args = parser.parse_args(argv)
    started = time.monotonic()
    logging.getLogger().addHandler(logging.NullHandler())  # keep library chatter out of the demo's output
    with Azurite() as azurite, SpeechEmulator(durations=DURATIONS) as emulator:
        emulator.set_now(datetime.now(UTC).replace(microsecond=0))
        _configure_logging(emulator.now)
        demo = Demo(azurite, emulator, args.status_html)
        demo.run()
        print(f"\n{log_volume(demo.host.runtime.worker.logs())}", flush=True)
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s of wall time; Azurite and the emulator stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
