"""Deploy requests: decode a queue message and decide what to do with the locale's endpoint (pure).

Message: {"locale": "en-US", "model": "<model self URI or id>", "endpoint": "<optional endpoint URI or id>",
          "reason": "trained" | "expiry" | "manual" | "rollback"}

`trained` and `expiry` are the reconcile timer's automatic requests; `manual` and `rollback` are a person's
decision and bypass the quality gate. An automatic request for a model whose recorded gate decision is a failure
is refused (unless QUALITY_GATE is off): the timer never sends one, so it is a stale or hand-made message.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Sequence

from shared import managed, quality
from shared.ingest import LOCALE_PATTERN, canonical_locale
from shared.reconcile import expiry_of, managed_endpoints
from shared.speech import CustomModel, Endpoint, entity_id

REASONS = ("trained", "expiry", "manual", "rollback")
AUTOMATIC = frozenset({"trained", "expiry"})  # the timer's requests; manual and rollback are a person's
MAX_ENDPOINTS = 50  # per Speech resource


@dataclass(frozen=True)
class DeployRequest:
    locale: str
    model: str
    endpoint: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"locale": self.locale, "model": self.model, "endpoint": self.endpoint, "reason": self.reason}


MAX_MESSAGE_CHARS = 8192  # a deploy request is a few hundred characters; anything far larger is not one
MAX_SHOWN_CHARS = 80  # of a field's value quoted back in an error
MAX_REFERENCE_CHARS = 512  # a model or endpoint self URI or id


def decode_body(text: str) -> Any:
    """JSON, or base64-encoded JSON (what `az storage message put` or a base64-encoding client sends).
    Anything else, too large or nested too deeply for the parser, is a ValueError with a short reason."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValueError(
            f"the message is {len(text):,} characters long; a deploy request is at most {MAX_MESSAGE_CHARS:,}"
        )
    for decoder in (_plain, _base64):
        try:
            return decoder(text)
        except RecursionError:
            raise ValueError("the message is JSON nested too deeply") from None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
    raise ValueError("the message is not JSON")


def _plain(text: str) -> Any:
    return json.loads(text)


def _base64(text: str) -> Any:
    return json.loads(base64.b64decode(text.strip(), validate=True).decode("utf-8"))


def shown(value: Any) -> str:
    """A field's value quoted back in an error: bounded, whatever it holds."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)[: MAX_SHOWN_CHARS * 2]
    return repr(text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…")


def parse_message(text: str) -> DeployRequest | str:
    """The request, or why the message is malformed."""
    try:
        body = decode_body(text)
    except ValueError as exc:
        return str(exc)
    if not isinstance(body, dict):
        return "the message must be a JSON object"
    problems = []
    for name in ("locale", "model"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            problems.append(f"'{name}' is required")
        elif len(body[name]) > MAX_REFERENCE_CHARS:
            problems.append(
                f"'{name}' is {len(body[name]):,} characters long; at most {MAX_REFERENCE_CHARS} are expected"
            )
    endpoint = body.get("endpoint")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not endpoint.strip() or len(endpoint) > MAX_REFERENCE_CHARS
    ):
        problems.append("'endpoint' must be an endpoint self URI or id")
    reason = body.get("reason")
    if reason not in REASONS:
        problems.append(f"'reason' must be one of {', '.join(REASONS)}, not {shown(reason)}")
    locale = body.get("locale")
    if isinstance(locale, str) and locale.strip() and not LOCALE_PATTERN.match(locale.strip()):
        problems.append(f"{shown(locale)} is not a locale such as en-US")
    if problems:
        return "; ".join(problems)
    return DeployRequest(
        locale=canonical_locale(body["locale"].strip()),
        model=body["model"].strip(),
        endpoint=endpoint.strip() if endpoint else None,
        reason=reason,
    )


def is_base_model_reference(model: str) -> bool:
    return "/models/base/" in model


@dataclass(frozen=True)
class Plan:
    action: Literal["reject", "noop", "create", "patch"]
    why: str
    endpoint: Endpoint | None = None
    critical: bool = False


def plan_deploy(
    request: DeployRequest,
    model: CustomModel | None,
    endpoints: Sequence[Endpoint],
    now: datetime,
    quality_gate: str = "off",
) -> Plan:
    """What to do for a request, given the model (None: it does not exist), every endpoint of the resource and
    QUALITY_GATE."""
    if is_base_model_reference(request.model):
        return Plan("reject", f"{request.model} is a base model; deployments take a trained custom model")
    if model is None:
        return Plan("reject", f"model {entity_id(request.model)} does not exist")
    if model.status != "Succeeded":
        return Plan("reject", f"model {model.id} is {model.status}, not Succeeded")
    if model.locale.lower() != request.locale.lower():
        return Plan("reject", f"model {model.id} is for {model.locale}, not {request.locale}")
    expiry = expiry_of(model)  # the service's date, or the documented quarter rule where it gives none
    if expiry is not None and expiry <= now:
        return Plan("reject", f"model {model.id} expired on {expiry:%Y-%m-%d} and can no longer transcribe")
    if request.reason in AUTOMATIC and quality_gate != "off" and quality.decision_of(model) == quality.FAILED:
        evaluation = model.custom_properties.get(managed.EVALUATION)
        return Plan(
            "reject",
            f"model {model.id} failed the quality gate"
            + (f" (evaluation {evaluation})" if evaluation else "")
            + f"; an automatic '{request.reason}' deployment of it is refused. A deploy message with reason "
            "manual deploys it anyway",
        )
    if request.endpoint:
        wanted = entity_id(request.endpoint)
        target = next((e for e in endpoints if e.id == wanted), None)
        if target is None:
            return Plan("reject", f"endpoint {wanted} does not exist")
        if target.locale.lower() != request.locale.lower():
            return Plan("reject", f"endpoint {target.id} is for {target.locale}, not {request.locale}")
    else:
        target = managed_endpoints(endpoints).get(model.locale)
    if target is None:
        if len(endpoints) >= MAX_ENDPOINTS:
            return Plan(
                "reject",
                f"the Speech resource already has {len(endpoints)} endpoints, the service's limit of "
                f"{MAX_ENDPOINTS}; delete unused endpoints to deploy {request.locale}",
                critical=True,
            )
        return Plan("create", f"no managed endpoint for {request.locale} yet")
    if target.model_id == model.id:
        return Plan("noop", f"endpoint {target.id} already serves model {model.id}", endpoint=target)
    return Plan("patch", f"endpoint {target.id} moves from model {target.model_id} to {model.id}", endpoint=target)
