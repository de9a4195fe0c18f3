"""Timers that reconcile: gather a snapshot under the autopilot lock, ask the pure planner, carry out the actions.

`reconcile` (POLL_SCHEDULE): sweep zips no event handled, follow processing and training, train when a locale's
data change, request deployments, report endpoint outcomes. `expiry` (EXPIRY_SCHEDULE): expiry tiers, hands-off
retrains. Cost per run: one container listing plus one paged list per collection; no GET per resource. A pass's
Speech requests are background work: they take at most the background share of the request budget, so ingests
running meanwhile keep theirs (shared/budget.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Callable

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from shared import clock, context, reconcile
from shared.alerts import Alert, deliver
from shared.budget import BACKGROUND, speech_priority
from shared.flows.ingest import ingest_blob
from shared.settings import Settings
from shared.speech import SpeechClient, SpeechError, entity_id
from shared.storage import TAG_DATASET, TAG_STATUS, LockBusy, autopilot_lock, list_zips, set_autopilot_tags

log = logging.getLogger("autopilot.timers")


def poll_plan(config: Settings) -> Callable[[reconcile.Snapshot], list[reconcile.Action]]:
    return lambda snap: reconcile.plan_poll(snap, auto_deploy=config.auto_deploy, auto_retrain=config.auto_retrain)


def expiry_plan(config: Settings) -> Callable[[reconcile.Snapshot], list[reconcile.Action]]:
    return lambda snap: reconcile.plan_expiry(snap, tiers=config.expiry_warning_days, auto_retrain=config.auto_retrain)


def on_reconcile(timer, alerts, deployments) -> None:
    _on_timer(poll_plan, timer, alerts, deployments)


def on_expiry(timer, alerts, deployments) -> None:
    _on_timer(expiry_plan, timer, alerts, deployments)


def _on_timer(plan_for, timer, alerts, deployments) -> None:
    """Reconcile once with the planner for these settings, then emit the alerts and deploy messages."""
    config = context.settings()
    result = run(config, plan_for(config), past_due=timer.past_due)
    deliver(result.alerts, alerts, config.alert_webhook_url)
    if result.deployments:
        deployments.set([json.dumps(message) for message in result.deployments])


@dataclass
class RunResult:
    alerts: list[Alert] = field(default_factory=list)
    deployments: list[dict] = field(default_factory=list)
    actions: list[reconcile.Action] = field(default_factory=list)
    failed: int = 0
    skipped: bool = False


def snapshot(config: Settings, speech: SpeechClient, container: ContainerClient) -> reconcile.Snapshot:
    return reconcile.Snapshot(
        now=clock.now(),
        container=container.container_name,
        zips=list_zips(container),
        datasets=list(speech.list_datasets()),
        models=list(speech.list_models()),
        base_models=list(speech.list_base_models()),
        endpoints=list(speech.list_endpoints()),
    )


def run(
    config: Settings, plan: Callable[[reconcile.Snapshot], list[reconcile.Action]], *, past_due: bool = False
) -> RunResult:
    """One reconcile pass, as background work. Another pass holding the lock means this one has nothing to add:
    it is skipped."""
    if past_due:
        log.info("timer is past due; reconciling now")
    speech = context.speech(config)
    usage = speech.budget.usage[BACKGROUND] if speech.budget is not None else None
    before = (usage.requests, usage.waited) if usage else (0, 0.0)
    with speech_priority(BACKGROUND):
        result = _run(config, plan, speech)
    if usage is not None:
        log.info(
            "pass: %d Speech request(s), %.1f s waiting for the request budget",
            usage.requests - before[0],
            usage.waited - before[1],
        )
    return result


def _run(
    config: Settings, plan: Callable[[reconcile.Snapshot], list[reconcile.Action]], speech: SpeechClient
) -> RunResult:
    container = context.training_container(config)
    result = RunResult()
    try:
        with autopilot_lock(container):
            snap = snapshot(config, speech, container)
            result.actions = plan(snap)
            _execute(result, snap, speech, container)
    except LockBusy:
        log.info("another run holds the autopilot lock; skipping this one")
        result.skipped = True
        return result
    for action in result.actions:  # the sweep takes the lock per blob, so it runs after releasing it
        if isinstance(action, reconcile.Ingest):
            log.info("sweep: %s has no dataset yet; ingesting it", action.blob_name)
            try:
                result.alerts += ingest_blob(config, container.get_blob_client(action.blob_name), trust_tags=False)
            except (SpeechError, AzureError, LockBusy) as exc:  # the next pass sweeps it again
                result.failed += 1
                log.warning("sweep of %s failed; the next pass retries it: %s", action.blob_name, exc)
    return result


def _execute(result: RunResult, snap: reconcile.Snapshot, speech: SpeechClient, container: ContainerClient) -> None:
    """Carry out each action; one that fails is logged and retried by a later pass (the plan is idempotent)."""
    zips = {z.name: z for z in snap.zips}
    for action in result.actions:
        try:
            if isinstance(action, reconcile.Raise):
                result.alerts.append(action.alert)
            elif isinstance(action, reconcile.RequestDeploy):
                log.info(
                    "requesting deployment of model %s to %s (%s)",
                    entity_id(action.model),
                    action.locale,
                    action.reason,
                )
                result.deployments.append(action.message())
            elif isinstance(action, reconcile.CreateModel):
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
            elif isinstance(action, reconcile.UpdateProperties):
                update = {
                    "datasets": speech.update_dataset,
                    "models": speech.update_model,
                    "endpoints": speech.update_endpoint,
                }[action.collection]
                update(action.id, custom_properties=dict(action.custom_properties))
            elif isinstance(action, reconcile.TagBlob):
                blob = zips.get(action.blob_name)
                if blob is not None and blob.etag == action.etag:
                    set_autopilot_tags(container.get_blob_client(action.blob_name), blob.tags, **action.tags)
                    tags = action.tags
                    log.info("%s: dataset %s %s", action.blob_name, tags.get(TAG_DATASET), tags[TAG_STATUS])
        except (SpeechError, AzureError) as exc:
            result.failed += 1
            log.warning("action %s failed; a later pass retries it: %s", type(action).__name__, exc)
