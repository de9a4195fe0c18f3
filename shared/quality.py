"""The quality gate's pure pieces: its settings, the evaluations of a snapshot indexed once, the decision, its
alerts, and what a candidate model records. shared/reconcile.py (`Gate`) puts them together into actions.

A candidate (a model the app trained, on changed data or as an expiry retrain) is deployed hands-off only if
`wordErrorRate2 <= wordErrorRate1 + allowance`, from one evaluation on the locale's newest test dataset: model1 is
what the endpoint serves (or the candidate's base model), model2 the candidate. The service reports word error
rates as fractions (0.0289 = 2.89 %); the allowance is in percentage points, so the comparison is made in points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Iterable, Mapping

from shared import managed
from shared.alerts import Alert, make_alert
from shared.speech import CustomModel, Dataset, Evaluation, Recognition

GATE_MODES = ("auto", "required", "off")
PASSED, FAILED, ERROR, UNTESTED = "passed", "failed", "error", "untested"  # decisions a candidate records
HELD_BACK = frozenset({FAILED, ERROR, UNTESTED})  # decisions that keep a candidate off the endpoint
TESTING_KIND = "Evaluation"  # customProperties testingKind: the portal lists the evaluation as an accuracy test
EPSILON_POINTS = 1e-6  # float noise: 12.000000000000002 points is 12


@dataclass(frozen=True)
class Quality:
    """QUALITY_GATE and the two allowances (percentage points of word error rate a candidate may lose)."""

    gate: str = "auto"  # auto: gate where the locale has test data | required | off
    max_regression: float = 0.0  # QUALITY_MAX_WER_REGRESSION: a model trained on changed data
    expiry_max_regression: float = 2.0  # QUALITY_EXPIRY_MAX_WER_REGRESSION: an expiry retrain

    def __post_init__(self) -> None:
        if self.gate not in GATE_MODES:
            raise ValueError(f"unknown quality gate {self.gate!r}; one of {', '.join(GATE_MODES)}")

    @classmethod
    def from_settings(cls, config: Any) -> Quality:
        return cls(config.quality_gate, config.quality_max_wer_regression, config.quality_expiry_max_wer_regression)

    def allowance(self, candidate: CustomModel) -> float:
        return self.expiry_max_regression if is_expiry_retrain(candidate) else self.max_regression


DEFAULT = Quality()


def is_expiry_retrain(model: CustomModel) -> bool:
    return model.custom_properties.get(managed.REASON) == "expiry"


def decision_of(model: object) -> str | None:
    """The gate decision a model records (customProperties qualityGate), if any."""
    props = getattr(model, "custom_properties", None) or {}
    return props.get(managed.QUALITY_GATE)


def percent(rate: float | None) -> str:
    return "?" if rate is None else f"{rate * 100:.2f} %"


# -- the evaluations of a snapshot -----------------------------------------------------------------------------


def candidate_of(evaluation: Evaluation) -> str | None:
    return evaluation.custom_properties.get(managed.CANDIDATE) or evaluation.model2_id


def test_dataset_of(evaluation: Evaluation) -> str | None:
    return evaluation.custom_properties.get(managed.TEST_DATASET) or evaluation.dataset_id


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _order(evaluation: Evaluation) -> tuple[datetime, str]:
    return (evaluation.created or _EARLIEST, evaluation.id)


def _newer(a: Evaluation | None, b: Evaluation) -> bool:
    """b is newer than a (creation time, then id for a stable order)."""
    return a is None or _order(b) > _order(a)


class EvaluationView:
    """The managed evaluations of a snapshot, indexed once (linear in their number): by candidate and test
    dataset (the lookup before a create), and each model's newest measured word error rate (for status)."""

    def __init__(self, evaluations: Iterable[Evaluation]) -> None:
        self.by_pair: dict[tuple[str, str], Evaluation] = {}
        self.by_id: dict[str, Evaluation] = {}
        self._measured: dict[str, tuple[Evaluation, float]] = {}
        self.newest_by_locale: dict[str, Evaluation] = {}
        for evaluation in evaluations:
            if not managed.is_managed(evaluation):
                continue
            self.by_id[evaluation.id] = evaluation
            key = (candidate_of(evaluation) or "", test_dataset_of(evaluation) or "")
            if _newer(self.by_pair.get(key), evaluation):
                self.by_pair[key] = evaluation
            if _newer(self.newest_by_locale.get(evaluation.locale), evaluation):
                self.newest_by_locale[evaluation.locale] = evaluation
            if evaluation.status != "Succeeded":
                continue
            for model_id, recognition in (
                (evaluation.model1_id, evaluation.model1),
                (evaluation.model2_id, evaluation.model2),
            ):
                rate = recognition.word_error_rate
                if model_id and rate is not None:
                    known = self._measured.get(model_id)
                    if known is None or _newer(known[0], evaluation):
                        self._measured[model_id] = (evaluation, rate)

    def find(self, candidate_id: str, dataset_id: str) -> Evaluation | None:
        return self.by_pair.get((candidate_id, dataset_id))

    def word_error_rate(self, model_id: str) -> tuple[float, str] | None:
        """The model's word error rate in the newest Succeeded evaluation that measured it, and that evaluation's id."""
        found = self._measured.get(model_id)
        return (found[1], found[0].id) if found else None


# -- the decision ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    decision: str  # PASSED | FAILED | ERROR
    allowance: float  # percentage points
    regression: float | None = None  # percentage points the candidate is worse by (negative: better)
    why: str = ""  # ERROR: what went wrong

    @property
    def passed(self) -> bool:
        return self.decision == PASSED


def verdict(evaluation: Evaluation, allowance: float) -> Verdict:
    """The gate's decision on a finished evaluation (Succeeded or Failed)."""
    if evaluation.status == "Failed":
        error = evaluation.error
        why = f"evaluation {evaluation.id} failed: " + (
            f"{error.code}: {error.message}" if error else "no reason given"
        )
        return Verdict(ERROR, allowance, why=why)
    first, second = evaluation.model1, evaluation.model2
    if first.word_error_rate is None or second.word_error_rate is None:
        return Verdict(ERROR, allowance, why=f"evaluation {evaluation.id} reported no word error rate")
    if not first.word_count or not second.word_count:
        return Verdict(ERROR, allowance, why=f"the test set of evaluation {evaluation.id} holds no words to judge by")
    regression = round((second.word_error_rate - first.word_error_rate) * 100, 6)
    decision = PASSED if regression <= allowance + EPSILON_POINTS else FAILED
    return Verdict(decision, allowance, regression)


# -- what a candidate records ---------------------------------------------------------------------------------


def record(current: Mapping[str, str], decision: str, evaluation: Evaluation | None = None) -> dict[str, str]:
    """The candidate's customProperties with the gate's decision, the evaluation's id and the candidate's word
    error rate there, as many of them as fit (in that order). The service allows 10 entries; one stays free for
    `alerted` where the model has none yet, so its alerts are still recorded. Never raises: a map a person filled
    keeps what it holds (the evaluations still carry the decision's facts)."""
    values: list[tuple[str, str | None]] = [(managed.QUALITY_GATE, decision)]
    if evaluation is not None:
        rate = evaluation.model2.word_error_rate
        values += [
            (managed.EVALUATION, evaluation.id),
            (managed.WORD_ERROR_RATE, f"{rate:.6g}" if rate is not None else None),
        ]
    merged = dict(current)
    for key, value in values:
        if value is None:
            continue
        room = managed.MAX_ENTRIES - (0 if managed.ALERTED in merged else 1)
        if key not in merged and len(merged) >= room:
            break
        try:
            merged = managed.with_properties(merged, **{key: value})
        except ValueError:
            break
    return merged


def evaluation_properties(candidate: CustomModel, test: Dataset) -> dict[str, str]:
    return managed.managed_properties(
        **{managed.CANDIDATE: candidate.id, managed.TEST_DATASET: test.id, managed.TESTING_KIND: TESTING_KIND}
    )


# -- alerts ---------------------------------------------------------------------------------------------------


def _counts(recognition: Recognition, n: str) -> dict[str, Any]:
    return {
        f"wordErrorRate{n}": recognition.word_error_rate,
        f"wordCount{n}": recognition.word_count,
        f"wordInsertionCount{n}": recognition.insertions,
        f"wordDeletionCount{n}": recognition.deletions,
        f"wordSubstitutionCount{n}": recognition.substitutions,
    }


def details(evaluation: Evaluation, candidate: CustomModel, result: Verdict, days_left: int | None) -> dict:
    """Both word error rates (fractions, as the service gives them), the allowance, both models' insertion,
    deletion and substitution counts, and the ids of the evaluation, both models and the test dataset."""
    out: dict[str, Any] = {
        "evaluation": evaluation.id,
        "model1": evaluation.model1_id,
        "model2": evaluation.model2_id,
        "dataset": evaluation.dataset_id,
        "reason": candidate.custom_properties.get(managed.REASON),
        **_counts(evaluation.model1, "1"),
        **_counts(evaluation.model2, "2"),
        "regressionPoints": result.regression,
        "allowancePoints": result.allowance,
        "decision": result.decision,
    }
    if result.why:
        out["error"] = result.why
    if days_left is not None:
        out["daysLeft"] = days_left
    return out


def gate_alert(
    evaluation: Evaluation,
    candidate: CustomModel,
    result: Verdict,
    now: datetime,
    *,
    serving_name: str,
    days_left: int | None = None,
) -> Alert:
    """evaluation-passed (info), evaluation-failed (warning; critical for an expiry retrain, with the days the
    serving model has left) or evaluation-error (warning)."""
    who = f"Model {candidate.display_name} ({candidate.id})"
    expiry = is_expiry_retrain(candidate)
    info = details(evaluation, candidate, result, days_left if expiry else None)
    first, second = evaluation.model1.word_error_rate, evaluation.model2.word_error_rate
    rates = f"word error rate {percent(second)} against {percent(first)} for {serving_name}"
    allowance = f"allowance {result.allowance:g} point(s)"
    if result.decision == PASSED:
        kind, severity = "evaluation-passed", None
        message = f"{who} passed the quality gate: {rates} ({allowance}). It is deployed."
    elif result.decision == FAILED:
        kind, severity = "evaluation-failed", "critical" if expiry else None
        message = (
            f"{who} failed the quality gate: {rates}, {result.regression:.2f} point(s) worse ({allowance}). "
            "It is not deployed; a deploy message with reason manual deploys it anyway."
        )
        if expiry:
            left = f"in {days_left} day(s)" if days_left is not None else "soon"
            message += f" The serving model expires {left}; then the endpoint falls back to the base model."
    else:
        kind, severity = "evaluation-error", None
        message = (
            f"The quality gate could not judge {who}: {result.why}. It is not deployed; delete the evaluation to run "
            "it again, drop a new test set, or deploy it by hand (reason manual)."
        )
    return make_alert(
        kind,
        resource=candidate.self_uri,
        locale=candidate.locale,
        message=message,
        details=info,
        severity=severity,
        at=now,
        key=f"{evaluation.id}:{result.decision}",
    )


def untested_alert(candidate: CustomModel, container: str, now: datetime) -> Alert:
    """QUALITY_GATE=required and the locale has no test dataset."""
    return make_alert(
        "evaluation-error",
        resource=candidate.self_uri,
        locale=candidate.locale,
        message=f"QUALITY_GATE is required and {candidate.locale} has no test dataset, so model "
        f"{candidate.display_name} ({candidate.id}) is not deployed. Drop audio + transcript at "
        f"{container}/{candidate.locale}/test/{{name}}.zip, or deploy it by hand (reason manual).",
        details={
            "model2": candidate.id,
            "reason": candidate.custom_properties.get(managed.REASON),
            "decision": UNTESTED,
        },
        at=now,
        key=f"{candidate.id}:{UNTESTED}",
    )


def refused_token(dataset_id: str) -> str:
    """The token on a candidate whose evaluation on this test set the service refused (Evaluations_Create)."""
    return f"refused-{dataset_id[:8]}"


def refused_alert(candidate: CustomModel, dataset_id: str, why: str, now: datetime) -> Alert:
    return make_alert(
        "evaluation-error",
        resource=candidate.self_uri,
        locale=candidate.locale,
        message=f"The Speech service refused to evaluate model {candidate.display_name} ({candidate.id}) on test "
        f"dataset {dataset_id}: {why}. It is not deployed; drop a usable test set (audio + transcript) or deploy it "
        "by hand (reason manual).",
        details={"model2": candidate.id, "dataset": dataset_id, "error": why, "decision": ERROR},
        at=now,
        key=f"{candidate.id}:{dataset_id}:refused",
    )
