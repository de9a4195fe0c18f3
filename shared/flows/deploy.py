"""Queue-triggered deployment: create the locale's endpoint, or PATCH its model (no downtime, same endpoint id).

Rejections (bad message, unusable model, the service refusing) finish the message with a `deploy-rejected`
alert. Transient failures raise, so the host retries; after maxDequeueCount the host moves the message to
`<DEPLOY_QUEUE>-poison`, where `deploy_poison` raises `deploy-poisoned` with the original message.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import clock, context, managed
from shared.alerts import Alert, deliver, make_alert
from shared.deploy import DeployRequest, Plan, decode_body, parse_message, plan_deploy
from shared.settings import Settings
from shared.speech import SpeechClient, SpeechError, entity_id
from shared.storage import autopilot_lock

log = logging.getLogger("autopilot.deploy")

# A reconcile pass over tens of thousands of resources holds the autopilot lock for about a minute under the request
# budget: a deployment waits it out (the host keeps the message invisible while the function runs) rather than
# failing with LockBusy five times into the poison queue. Well inside the 10-minute functionTimeout.
LOCK_WAIT_SECONDS = 300.0


def on_message(msg: func.QueueMessage, alerts: func.Out) -> None:
    config = context.settings()
    text = msg.get_body().decode("utf-8", errors="replace")
    request = parse_message(text)
    if isinstance(request, str):
        alert = _rejected(None, text, f"malformed deploy message: {request}", msg.id or "")
    else:
        alert = handle(config, request, msg.id or "")
    _deliver(config, [alert] if alert else [], alerts)


def on_poison(msg: func.QueueMessage, alerts: func.Out) -> None:
    """A message the host parked after maxDequeueCount failures: raise it, with the original message (bounded).
    Whatever the message holds, this raises its alert: a poison handler that fails would park it once more,
    silently, in `<queue>-poison-poison`."""
    config = context.settings()
    text = msg.get_body().decode("utf-8", errors="replace")
    try:
        original = decode_body(text)
    except ValueError:
        original = text
    locale = original.get("locale") if isinstance(original, dict) else None
    model = original.get("model") if isinstance(original, dict) else None
    alert = make_alert(
        "deploy-poisoned",
        resource=model if isinstance(model, str) and model else "deploy message",
        locale=locale if isinstance(locale, str) else None,
        message="A deploy request failed on every attempt and was parked in the poison queue; "
        "nothing was deployed. The reconcile timer asks again for an automatically trained model after "
        "2 days if nobody changed the endpoint; otherwise fix the cause and enqueue the message again.",
        details={"message": original, "messageId": msg.id, "dequeueCount": msg.dequeue_count},
        at=clock.now(),
        key=msg.id or text,
    )
    _deliver(config, [alert], alerts)


def _deliver(config: Settings, alerts: list[Alert], out: func.Out) -> None:
    """Alerts through the output binding: the host writes them before it completes the message."""
    deliver(alerts, out.set, config.alert_webhook_url, webhook_min_severity=config.alert_webhook_min_severity)


def handle(config: Settings, request: DeployRequest, message_id: str) -> Alert | None:
    """Carry out one request under the autopilot lock. Returns a rejection alert, or None when done."""
    speech = context.speech(config)
    with autopilot_lock(context.training_container(config), wait_seconds=LOCK_WAIT_SECONDS):
        model = _model(speech, request.model)
        endpoints = list(speech.list_endpoints())
        plan = plan_deploy(request, model, endpoints, clock.now(), quality_gate=config.quality_gate)
        log.info(
            "deploy model %s to %s (%s): %s, %s",
            entity_id(request.model),
            request.locale,
            request.reason,
            plan.action,
            plan.why,
        )
        if plan.action == "reject":
            return _rejected(request, request.as_dict(), plan.why, message_id, critical=plan.critical)
        if plan.action == "noop":
            return None
        assert model is not None
        try:
            _apply(speech, plan, request, model.self_uri)
        except SpeechError as exc:
            if exc.transient or exc.ambiguous or exc.denied or exc.status == 409:
                # the host retries (409: the endpoint is busy; denied: until access is fixed, then deploy-poisoned);
                # a retry looks up first, so nothing doubles
                raise
            return _rejected(
                request,
                request.as_dict(),
                f"the Speech service refused: {exc.message}",
                message_id,
                critical=exc.inner_code == "QuotaViolation",
            )
    return None


def _model(speech: SpeechClient, model: str):
    if "/models/base/" in model:
        return None
    try:  # by id under SPEECH_ENDPOINT: a URL in a message never decides where our credentials go
        return speech.get_model(entity_id(model))
    except SpeechError as exc:
        if exc.not_found or exc.status == 400:
            return None
        raise


def _apply(speech: SpeechClient, plan: Plan, request: DeployRequest, model_uri: str) -> None:
    if plan.action == "create":
        endpoint = speech.create_endpoint(
            display_name=f"autopilot-{request.locale}",
            locale=request.locale,
            model=model_uri,
            description=f"Managed by {managed.MANAGED_BY}: serves the newest custom model for {request.locale}.",
            custom_properties=managed.managed_properties(**{managed.REASON: request.reason}),
        )
        log.info("created endpoint %s for %s with model %s", endpoint.id, request.locale, entity_id(model_uri))
        return
    assert plan.endpoint is not None
    props = None  # an endpoint the app does not manage keeps its customProperties as they are
    if managed.is_managed(plan.endpoint):
        props = managed.with_properties(plan.endpoint.custom_properties, **{managed.REASON: request.reason})
        if plan.endpoint.model_id:  # what a rollback without a named model goes back to
            try:
                props = managed.with_properties(props, **{managed.PREVIOUS_MODEL: plan.endpoint.model_id})
            except ValueError:  # all 10 entries taken by others: deploy anyway, without the record
                log.warning("endpoint %s: no room to record its previous model", plan.endpoint.id)
    speech.update_endpoint(plan.endpoint.id, model=model_uri, custom_properties=props)
    log.info("endpoint %s now deploys model %s (%s)", plan.endpoint.id, entity_id(model_uri), request.reason)


def _rejected(request: DeployRequest | None, original, why: str, message_id: str, *, critical: bool = False) -> Alert:
    locale = request.locale if request else None
    return make_alert(
        "deploy-rejected",
        resource=request.model if request else "deploy message",
        locale=locale,
        message=f"Deploy request not carried out: {why}",
        details={"why": why, "message": original},
        severity="critical" if critical else None,
        at=clock.now(),
        key=message_id or why,
    )
