"""How the app marks what it manages: customProperties on datasets, models and endpoints.

The Speech resource is the only state. The service allows at most 10 customProperties per entity, keys up to 64
and values up to 256 characters, so the vocabulary is small and values are short.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Mapping

MANAGED_BY = "speech-autopilot"

MANAGED = "managedBy"  # every entity: MANAGED_BY
SOURCE = "sourcePath"  # dataset: "<container>/<blob name>" of the zip
SOURCE_ETAG = "sourceEtag"  # dataset: the zip's ETag (without quotes) when it was ingested
SOURCE_CONTENT = "sourceContent"  # dataset: the zip's content identity (shared.zipcheck.content_id)
# sourcePath of a dataset uploaded from outside the container (CLI, block upload): "upload:{locale}/{kind}/{name}.zip".
# No container name holds a colon, so it never collides with "<container>/<blob name>".
UPLOAD_SOURCE_PREFIX = "upload:"
SUPERSEDED_BY = "supersededBy"  # dataset: id of the dataset made from a newer upload to the same path
# dataset uploaded in blocks (shared.upload): BLOCKS_UPLOADING from its creation until its blocks are committed, then
# BLOCKS_COMMITTED. Until then it holds no data: lookups and plans pass over it, and the upload engine resumes it.
# (A value that changes, never a key that goes away: right whether PATCH merges or replaces customProperties.)
BLOCKS = "blocks"
BLOCKS_UPLOADING = "uploading"
BLOCKS_COMMITTED = "committed"
DATASET_SET = "datasetSet"  # model: digest of the ids of the datasets it was trained on
BASE_MODEL = "baseModel"  # model: id of the base model it was trained from
REASON = "reason"  # model: why it was trained ("trained" = data changed, "expiry" = retrain before expiry)
RETRAIN_OF = "retrainOf"  # model: id of the expiring model an expiry retrain replaces
DEPLOY_REQUESTED = "deployRequested"  # model: ISO time a deploy message was queued for it
COPY_OF = "copyOf"  # model: "<source model id>" of a model copied here from another resource or region
PREVIOUS_MODEL = "previousModel"  # endpoint: id of the model it served before its last model change (rollback)
ALERTED = "alerted"  # any: comma-separated tokens of alerts already raised ("failed", "30", "expired", ...)
# The quality gate (shared/quality.py):
PURPOSE = "purpose"  # dataset: TEST_DATA for a test set (dropped under {locale}/test/); absent for training data
TEST_DATA = "test"
CANDIDATE = "candidate"  # evaluation: id of the model it judges (its model2)
TEST_DATASET = "testDataset"  # evaluation: id of the test dataset it ran on
TESTING_KIND = "testingKind"  # evaluation: "Evaluation", so the portal shows it as an accuracy test
QUALITY_GATE = "qualityGate"  # model: the gate's last decision on it (passed | failed | error | untested)
EVALUATION = "evaluation"  # model: id of the evaluation that decided it
WORD_ERROR_RATE = "wordErrorRate"  # model: its word error rate there, a fraction as the service reports it

MAX_VALUE = 256
MAX_ENTRIES = 10


def is_managed(entity: object) -> bool:
    props = getattr(entity, "custom_properties", None) or {}
    return props.get(MANAGED) == MANAGED_BY


def upload_incomplete(dataset: object) -> bool:
    """A dataset uploaded in blocks whose blocks are not committed yet: no data so far (see BLOCKS)."""
    props = getattr(dataset, "custom_properties", None) or {}
    return props.get(BLOCKS) == BLOCKS_UPLOADING


def upload_source(locale: str, kind_folder: str, name: str) -> str:
    """sourcePath of a dataset uploaded from outside the training container."""
    return f"{UPLOAD_SOURCE_PREFIX}{locale}/{kind_folder}/{name}.zip"


def is_test_data(entity: object) -> bool:
    """A dataset the app made from a test zip: evaluated against, never trained on."""
    props = getattr(entity, "custom_properties", None) or {}
    return is_managed(entity) and props.get(PURPOSE) == TEST_DATA


def dataset_set_digest(dataset_ids: Iterable[str]) -> str:
    """A short, order-independent fingerprint of a set of dataset ids."""
    joined = ",".join(sorted(set(dataset_ids)))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def model_dataset_digest(model: object) -> str:
    """The fingerprint of the set a model was trained on: ours if we recorded it, else from its datasets."""
    props = getattr(model, "custom_properties", None) or {}
    return props.get(DATASET_SET) or dataset_set_digest(getattr(model, "dataset_ids", ()))


def alerted(entity: object) -> frozenset[str]:
    props = getattr(entity, "custom_properties", None) or {}
    return frozenset(token for token in props.get(ALERTED, "").split(",") if token)


def with_properties(current: Mapping[str, str], **updates: str | None) -> dict[str, str]:
    """The full customProperties after an update (None removes a key), checked against the service limits.

    Always send the full map: whether the service merges or replaces customProperties on PATCH, the result is
    the same.
    """
    merged = {k: v for k, v in current.items()}
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value[:MAX_VALUE]
    if len(merged) > MAX_ENTRIES:
        raise ValueError(f"customProperties would have {len(merged)} entries; the service allows {MAX_ENTRIES}")
    return merged


def with_alerted(current: Mapping[str, str], *tokens: str, replace: bool = False) -> dict[str, str]:
    """Record alert tokens (`replace`: only these). Never raises: when someone else filled all 10 entries, the
    properties stay as they are and the alert may repeat (with the same id); nothing else stops."""
    existing = [] if replace else [t for t in current.get(ALERTED, "").split(",") if t]
    for token in tokens:
        if token not in existing:
            existing.append(token)
    value = ",".join(existing)
    while len(value) > MAX_VALUE and existing:  # keep the newest tokens
        existing.pop(0)
        value = ",".join(existing)
    try:
        return with_properties(current, **{ALERTED: value})
    except ValueError:  # someone else filled all 10 entries: the alert may repeat (same id), nothing else stops
        return dict(current)


def managed_properties(**values: str) -> dict[str, str]:
    return with_properties({MANAGED: MANAGED_BY}, **values)
