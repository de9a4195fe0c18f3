"""The Speech emulator's evaluations: word error rates a test controls, and the Evaluations_Create body check.

Nothing is recognized: a model's word error rate (a fraction, as the REST API reports it) is what a test set with
`set_quality(model or base model id, wer)`, or `set_next_quality(wer)` for the next custom model created;
otherwise a base model's is DEFAULT_BASE_WER and a custom model's its base model's less DATASET_GAIN per training
dataset (up to MAX_GAIN_DATASETS), so more data does a little better and a retrain on the same data does the same.

An evaluation reports, per model, counts consistent with that rate on its test set: WORDS_PER_SENTENCE words per
accepted transcript line, round(wer x words) errors split into substitutions, deletions and insertions. The
reported rate is errors / words, so it is the set rate quantized to 1/words (a 20-line test set: 0.5 points).
Until it has Succeeded the service reports -1 for every figure; so does the emulator.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Mapping
from urllib.parse import urlsplit

DEFAULT_BASE_WER = 0.12
DATASET_GAIN = 0.01
MAX_GAIN_DATASETS = 6
MIN_WER = 0.01
MAX_WER = 10.0  # insertions can take a word error rate past 1
WORDS_PER_SENTENCE = 10
SUBSTITUTION_SHARE, DELETION_SHARE = 0.6, 0.25  # of a model's errors; the rest are insertions
FIGURES = (
    "wordErrorRate",
    "sentenceErrorRate",
    "sentenceCount",
    "wordCount",
    "correctWordCount",
    "wordSubstitutionCount",
    "wordDeletionCount",
    "wordInsertionCount",
)
NOT_YET: dict[str, Any] = {
    f"{name}{n}": -1.0 if name.endswith("Rate") else -1 for n in ("1", "2") for name in FIGURES
}  # what the service shows until an evaluation has Succeeded
REFERENCES = ("model1", "model2", "dataset", "transcription1", "transcription2", "project")
STRINGS = ("displayName", "description", "locale")
READ_ONLY = ("self", "createdDateTime", "lastActionDateTime", "links", "properties", "status")


class Qualities:
    """Word error rates per model id (custom or base), as tests set them."""

    def __init__(self) -> None:
        self._rates: dict[str, float] = {}
        self._next: deque[float] = deque()

    def set(self, model_id: str, wer: float) -> None:
        self._rates[model_id] = _checked(wer)

    def set_next(self, wer: float) -> None:
        self._next.append(_checked(wer))

    def created(self, model_id: str) -> None:
        """A custom model was created: it takes the next rate set with set_next, if any."""
        if self._next:
            self._rates[model_id] = self._next.popleft()

    def of_base(self, base_id: str) -> float:
        return self._rates.get(base_id, DEFAULT_BASE_WER)

    def of_model(self, model_id: str, base_id: str | None, datasets: int) -> float:
        if model_id in self._rates:
            return self._rates[model_id]
        base = self.of_base(base_id) if base_id else DEFAULT_BASE_WER
        return max(MIN_WER, round(base - DATASET_GAIN * min(datasets, MAX_GAIN_DATASETS), 6))

    def clear(self) -> None:
        self._rates.clear()
        self._next.clear()


def _checked(wer: float) -> float:
    value = float(wer)
    if not 0 <= value <= MAX_WER:
        raise ValueError(f"a word error rate is a fraction between 0 and {MAX_WER:g}, not {wer!r}")
    return value


def metrics(wer1: float, wer2: float, sentences: int) -> dict[str, Any]:
    """EvaluationProperties of a Succeeded evaluation: both models' figures on a test set of `sentences` lines."""
    sentences = max(sentences, 1)
    words = sentences * WORDS_PER_SENTENCE
    out: dict[str, Any] = {}
    for n, wer in (("1", wer1), ("2", wer2)):
        errors = math.floor(wer * words + 0.5 + 1e-9)
        substitutions = min(words, math.floor(errors * SUBSTITUTION_SHARE + 0.5))
        deletions = min(words - substitutions, math.floor(errors * DELETION_SHARE + 0.5))
        insertions = errors - substitutions - deletions
        wrong_sentences = min(sentences, errors)
        out.update(
            {
                f"wordErrorRate{n}": round(errors / words, 6),
                f"sentenceErrorRate{n}": round(wrong_sentences / sentences, 6),
                f"sentenceCount{n}": sentences,
                f"wordCount{n}": words,
                f"correctWordCount{n}": words - substitutions - deletions,
                f"wordSubstitutionCount{n}": substitutions,
                f"wordDeletionCount{n}": deletions,
                f"wordInsertionCount{n}": insertions,
            }
        )
    return out


def check_body(body: Mapping[str, Any]) -> None:
    """Evaluations_Create's body against the spec's Evaluation schema: strings where it says string, entity
    references ({"self": absolute URI}) where it says EntityReference, and none of its read-only properties.
    Raises ValueError with the first problem (the emulator answers 400)."""
    for name in READ_ONLY:
        if name in body:
            raise ValueError(f"'{name}' is read-only and cannot be sent.")
    for name in STRINGS:
        if name in body and not isinstance(body[name], str):
            raise ValueError(f"'{name}' must be a string.")
    for name in REFERENCES:
        if name not in body:
            continue
        ref = body[name]
        target = ref.get("self") if isinstance(ref, dict) else None
        parts = urlsplit(target) if isinstance(target, str) else None
        if parts is None or not (parts.scheme and parts.netloc):
            raise ValueError(f'\'{name}\' must be an entity reference: {{"self": "<absolute URI>"}}.')
