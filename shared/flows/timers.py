"""Timers that reconcile: gather a snapshot under the autopilot lock, ask the pure planner, carry out the actions.

`reconcile` (POLL_SCHEDULE): sweep zips no event handled, follow processing and training, train when a locale's
data change, evaluate candidates against the locale's test set (the quality gate), request deployments, report
endpoint outcomes. `expiry` (EXPIRY_SCHEDULE): expiry tiers, hands-off retrains. Cost per run: one container
listing plus one paged list per collection; no GET per resource. A pass's Speech requests are background work: they
take at most the background share of the request budget, so ingests running meanwhile keep theirs
(shared/budget.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Callable

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from shared import clock, context, managed, quality, reconcile
from shared.alerts import Alert, deliver
from shared.budget import BACKGROUND, speech_priority
from shared.flows.ingest import ingest_blob
from shared.ingest import is_test_zip
from shared.settings import Settings
from shared.speech import SpeechClient, SpeechError, entity_id
from shared.storage import LockBusy, StateConflict, autopilot_lock, list_zips_at, write_state

log = logging.getLogger("autopilot.timers")

# How long a pass waits for the autopilot lock. A poll pass that finds another pass running has nothing to add: it
# gives up and the next one comes within POLL_SCHEDULE. The expiry pass runs once a day and, by default, in the same
# second as a poll pass (06:00:00); at tens of thousands of resources the pass that wins the lock holds it for over a
# minute, so the expiry pass waits that pass out instead of losing the day (within the 10-minute functionTimeout).
POLL_LOCK_WAIT_SECONDS = 45.0
EXPIRY_LOCK_WAIT_SECONDS = 300.0


def poll_plan(config: Settings) -> Callable[[reconcile.Snapshot], list[reconcile.Action]]:
    gate = quality.Quality.from_settings(config)
    return lambda snap: reconcile.plan_poll(
        snap, auto_deploy=config.auto_deploy, auto_retrain=config.auto_retrain, gate=gate
    )


def expiry_plan(config: Settings) -> Callable[[reconcile.Snapshot], list[reconcile.Action]]:
    return lambda snap: reconcile.plan_expiry(
        snap, tiers=config.expiry_warning_days, auto_retrain=config.auto_retrain, auto_deploy=config.auto_deploy
    )


def on_reconcile(timer) -> None:
    _on_timer(poll_plan, timer, POLL_LOCK_WAIT_SECONDS)


def on_expiry(timer) -> None:
    _on_timer(expiry_plan, timer, EXPIRY_LOCK_WAIT_SECONDS)


def _on_timer(plan_for, timer, lock_wait: float) -> None:
    config = context.settings()
    run(config, plan_for(config), past_due=timer.past_due, lock_wait=lock_wait)


@dataclass
class RunResult:
    alerts: list[Alert] = field(default_factory=list)  # delivered
    deployments: list[dict] = field(default_factory=list)  # sent to the deploy queue
    actions: list[reconcile.Action] = field(default_factory=list)
    failed: int = 0
    skipped: bool = False


@dataclass(frozen=True)
class Outbox:
    """Where a pass sends what must leave before anything records it as sent."""

    alerts: Callable[[list[str]], None]
    deployments: Callable[[list[str]], None]
    webhook_url: str | None
    webhook_min_severity: str

    @classmethod
    def for_settings(cls, config: Settings) -> Outbox:
        return cls(
            context.alert_sender(config),
            context.queue_sender(config, config.deploy_queue),
            config.alert_webhook_url,
            config.alert_webhook_min_severity,
        )

    def deliver(self, alerts: list[Alert]) -> None:
        deliver(alerts, self.alerts, self.webhook_url, webhook_min_severity=self.webhook_min_severity)


def snapshot(config: Settings, speech: SpeechClient, container: ContainerClient) -> reconcile.Snapshot:
    """Evaluations are listed only where the container holds a test set: the gate evaluates nothing without one, so
    a resource without test data pays no extra call per pass."""
    zips, storage_now = list_zips_at(container)
    return reconcile.Snapshot(
        now=clock.now(),
        container=container.container_name,
        zips=zips,
        datasets=list(speech.list_datasets()),
        models=list(speech.list_models()),
        base_models=list(speech.list_base_models()),
        endpoints=list(speech.list_endpoints()),
        evaluations=list(speech.list_evaluations()) if any(is_test_zip(z.name) for z in zips) else [],
        storage_now=storage_now,
    )


def run(
    config: Settings,
    plan: Callable[[reconcile.Snapshot], list[reconcile.Action]],
    *,
    past_due: bool = False,
    outbox: Outbox | None = None,
    lock_wait: float = POLL_LOCK_WAIT_SECONDS,
) -> RunResult:
    """One reconcile pass, as background work. Another pass holding the lock for longer than `lock_wait` means
    this one has nothing to add: it is skipped."""
    if past_due:
        log.info("timer is past due; reconciling now")
    speech = context.speech(config)
    usage = speech.budget.usage[BACKGROUND] if speech.budget is not None else None
    before = (usage.requests, usage.waited) if usage else (0, 0.0)
    with speech_priority(BACKGROUND):
        result = _run(config, plan, speech, outbox or Outbox.for_settings(config), lock_wait)
    if usage is not None:
        log.info(
            "pass: %d Speech request(s), %.1f s waiting for the request budget",
            usage.requests - before[0],
            usage.waited - before[1],
        )
    return result


def _run(
    config: Settings,
    plan: Callable[[reconcile.Snapshot], list[reconcile.Action]],
    speech: SpeechClient,
    outbox: Outbox,
    lock_wait: float = POLL_LOCK_WAIT_SECONDS,
) -> RunResult:
    container = context.training_container(config)
    result = RunResult()
    try:
        with autopilot_lock(container, wait_seconds=lock_wait):
            snap = snapshot(config, speech, container)
            result.actions = plan(snap)
            _execute(result, snap, speech, container, outbox)
    except LockBusy:
        log.info("another run holds the autopilot lock; skipping this one")
        result.skipped = True
        return result
    for action in result.actions:  # the sweep takes the lock per blob, so it runs after releasing it
        if isinstance(action, reconcile.Ingest):
            log.info("sweep: %s has no dataset yet; ingesting it", action.blob_name)
            blob = container.get_blob_client(action.blob_name)
            try:
                result.alerts += ingest_blob(config, blob, outbox.alerts, trust_state=False)
            except Exception as exc:  # noqa: BLE001 - one zip's failure, whatever it is, never stops the others
                result.failed += 1
                log.warning(
                    "sweep of %s failed; the next pass retries it: %s: %s", action.blob_name, type(exc).__name__, exc
                )
    return result


def _execute(
    result: RunResult, snap: reconcile.Snapshot, speech: SpeechClient, container: ContainerClient, outbox: Outbox
) -> None:
    """Carry out the plan. What must leave goes first: every alert is delivered and every deploy request sent
    before any action records it (a token on an entity, `deployRequested`); if that fails, the pass stops and
    nothing is recorded, so the next pass raises them again (same ids). Then each other action; one that fails is
    logged and retried by a later pass (the plan is idempotent). A lost lock stops the pass (LockLost)."""
    result.alerts = [action.alert for action in result.actions if isinstance(action, reconcile.Raise)]
    outbox.deliver(result.alerts)
    requests = [action for action in result.actions if isinstance(action, reconcile.RequestDeploy)]
    for action in requests:
        log.info("requesting deployment of model %s to %s (%s)", entity_id(action.model), action.locale, action.reason)
    outbox.deployments([json.dumps(action.message()) for action in requests])
    result.deployments = [action.message() for action in requests]
    for action in result.actions:
        try:
            if isinstance(action, reconcile.CreateModel):
                model = speech.create_model(
                    display_name=action.display_name,
                    locale=action.locale,
                    base_model=action.base_model_id,
                    datasets=list(action.dataset_ids),
                    description=action.description,
                    custom_properties=action.custom_properties,
                )
                log.info(
                    "training model %s for %s on %d dataset(s) from base %s",
                    model.id,
                    action.locale,
                    len(action.dataset_ids),
                    action.base_model_id,
                )
            elif isinstance(action, reconcile.CreateEvaluation):
                try:
                    evaluation = speech.create_evaluation(
                        display_name=action.display_name,
                        locale=action.locale,
                        model1=action.model1,
                        model2=action.model2,
                        dataset=action.dataset,
                        description=action.description,
                        custom_properties=action.custom_properties,
                    )
                except SpeechError as exc:
                    if not _refused(exc):
                        raise
                    result.alerts += _evaluation_refused(snap, speech, outbox, action, exc)
                    continue
                log.info(
                    "evaluating model %s against %s on test dataset %s for %s: evaluation %s",
                    entity_id(action.model2),
                    entity_id(action.model1),
                    action.dataset,
                    action.locale,
                    evaluation.id,
                )
            elif isinstance(action, reconcile.UpdateProperties):
                update = {
                    "datasets": speech.update_dataset,
                    "models": speech.update_model,
                    "endpoints": speech.update_endpoint,
                    "evaluations": speech.update_evaluation,
                }[action.collection]
                update(action.id, custom_properties=dict(action.custom_properties))
            elif isinstance(action, reconcile.RecordState):
                blob = container.get_blob_client(action.blob_name)
                if write_state(blob, action.state, etag=action.etag, metadata=action.metadata):
                    log.info("%s: dataset %s %s", action.blob_name, action.state.dataset, action.state.status)
        except (SpeechError, AzureError, StateConflict) as exc:
            result.failed += 1
            log.warning("action %s failed; a later pass retries it: %s", type(action).__name__, exc)


def _refused(exc: SpeechError) -> bool:
    """The service refused the request for good (not a throttle, an outage or a lost answer)."""
    return not exc.transient and not exc.ambiguous and exc.status is not None and 400 <= exc.status < 500


def _evaluation_refused(
    snap: reconcile.Snapshot,
    speech: SpeechClient,
    outbox: Outbox,
    action: reconcile.CreateEvaluation,
    exc: SpeechError,
) -> list[Alert]:
    """Evaluations_Create refused (the test set or a model unusable for it): evaluation-error, delivered, then its
    token recorded on the candidate so the next pass does not ask again for this test set (a new one is tried)."""
    candidate = next((m for m in snap.models if m.id == entity_id(action.model2)), None)
    if candidate is None:
        log.warning("evaluation of model %s refused: %s", entity_id(action.model2), exc)
        return []
    alert = quality.refused_alert(candidate, action.dataset, f"{exc.message} ({exc.inner_code or exc.code})", snap.now)
    outbox.deliver([alert])
    props = managed.with_alerted(candidate.custom_properties, quality.refused_token(action.dataset))
    speech.update_model(candidate.id, custom_properties=quality.record(props, quality.ERROR))
    log.warning("evaluation of model %s on test dataset %s refused: %s", candidate.id, action.dataset, exc)
    return [alert]
