"""Drop a zip, get a dataset: the decisions (pure) and the one routine that carries them out.

`{container}/{locale}/{kind}/{name}.zip` -> a Custom Speech dataset made from a short-lived read-only SAS of the
blob, after validating the zip by ranged reads. Exactly once per content: the zip's identity follows its bytes
(shared.zipcheck.content_id), not its ETag, so a metadata or Content-Type change is not a new version. The blob's
state (its metadata) and the managed datasets (an exact filter on the description, then the full identity in
customProperties) are looked up before anything is created, under the lock of that source (shared.storage.source_lock).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from shared import managed
from shared.alerts import Alert, make_alert
from shared.speech import Dataset
from shared.storage import BlobState

log = logging.getLogger("autopilot.ingest")

KIND_FOLDERS: dict[str, str] = {
    "acoustic": "Acoustic",
    "language": "Language",
    "pronunciation": "Pronunciation",
    "markdown": "LanguageMarkdown",
    "output-formatting": "OutputFormatting",
    "audio": "AudioFiles",
}
# Test data for the quality gate: audio + human-labeled transcript, checked like `acoustic`, never trained on.
TEST_FOLDER = "test"
TEST_KIND = "Acoustic"
# language[-Script]-REGION, e.g. en-US, zh-CN, sr-Latn-RS; compared case-insensitively
LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}(-[a-z]{4})?-([a-z]{2}|\d{3})$", re.IGNORECASE)
MAX_SOURCE_PATH = managed.MAX_VALUE
HANDLED = frozenset({"submitted", "rejected", "succeeded", "failed"})


@dataclass(frozen=True)
class Target:
    locale: str
    kind: str  # DatasetKind
    name: str  # the file name without folders and .zip
    test: bool = False  # test data (the `test` folder): evaluated against, never trained on


def source_path(container: str, blob_name: str) -> str:
    return f"{container}/{blob_name}"


def canonical_locale(locale: str) -> str:
    parts = locale.split("-")
    if len(parts) == 3:
        return f"{parts[0].lower()}-{parts[1].title()}-{parts[2].upper()}"
    return f"{parts[0].lower()}-{parts[1].upper()}"


def parse_blob_name(blob_name: str) -> Target | list[str]:
    """The target of `{locale}/{kind}/{name}.zip`, or the reasons it is not one."""
    parts = blob_name.split("/")
    if len(parts) < 3 or not all(parts):
        return [
            f"'{blob_name}' is not at {{locale}}/{{kind}}/{{name}}.zip "
            f"(for example en-US/acoustic/calls.zip); kind folders: {', '.join(KIND_FOLDERS)}, "
            f"or {TEST_FOLDER} for test data"
        ]
    locale, folder, name = parts[0], parts[1], "/".join(parts[2:])
    reasons = []
    if not LOCALE_PATTERN.match(locale):
        reasons.append(f"'{locale}' is not a locale such as en-US (language-REGION)")
    test = folder.lower() == TEST_FOLDER
    kind = TEST_KIND if test else KIND_FOLDERS.get(folder.lower())
    if kind is None:
        reasons.append(
            f"unknown kind folder '{folder}'; use one of: {', '.join(KIND_FOLDERS)} "
            f"(training data), or {TEST_FOLDER} (test data: audio + transcript)"
        )
    if not name.lower().endswith(".zip"):
        reasons.append(f"'{name}' is not a .zip file")
    if reasons:
        return reasons
    stem = name.rsplit("/", 1)[-1][: -len(".zip")]
    return Target(locale=canonical_locale(locale), kind=kind, name=stem, test=test)  # type: ignore[arg-type]


def is_test_zip(blob_name: str) -> bool:
    """A zip at {locale}/test/{name}.zip (test data for the quality gate)."""
    target = parse_blob_name(blob_name)
    return isinstance(target, Target) and target.test


def locale_reasons(target: Target, supported: Mapping[str, Iterable[str]]) -> list[str]:
    locales = {loc.lower(): loc for loc in supported.get(target.kind, ())}
    if target.locale.lower() in locales:
        return []
    return [f"the Speech service does not support {target.kind} datasets in locale {target.locale}"]


def already_handled(state: BlobState, content: str) -> bool:
    """The blob's state says this very content was submitted or rejected already."""
    return state.content == content and state.status in HANDLED


def description(path: str, content: str) -> str:
    """The dataset description; ingest looks a zip's dataset up by it (an exact filter the service supports)."""
    return f"Created by {managed.MANAGED_BY} from {path} (content {content})."


def legacy_description(path: str, etag: str) -> str:
    """The description the previous release gave a dataset (keyed on the blob's ETag), to adopt it."""
    return f"Created by {managed.MANAGED_BY} from {path} (ETag {etag})."


def odata_string(value: str) -> str:
    """An OData string literal: single-quoted, with quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def made_from(dataset: Dataset, path: str, content: str) -> bool:
    """The full identity check: a managed dataset made from this content at this path, holding its data (one
    still being uploaded in blocks holds none yet: the upload engine resumes it)."""
    props = dataset.custom_properties
    return (
        managed.is_managed(dataset)
        and props.get(managed.SOURCE) == path
        and props.get(managed.SOURCE_CONTENT) == content
        and not managed.upload_incomplete(dataset)
    )


def first_made_from(datasets: Iterable[Dataset], path: str, content: str) -> Dataset | None:
    return next((d for d in datasets if made_from(d, path, content)), None)


def dataset_request(target: Target, path: str, content: str) -> dict:
    """The Datasets_Create fields (all but contentUrl) for this content of the zip at `path`; a test zip's dataset
    is marked as test data (customProperties purpose=test)."""
    props = {managed.SOURCE: path, managed.SOURCE_CONTENT: content}
    if target.test:
        props[managed.PURPOSE] = managed.TEST_DATA
    return {
        "display_name": f"{target.name} ({target.kind}{' test data' if target.test else ''}, {target.locale})",
        "locale": target.locale,
        "kind": target.kind,
        "description": description(path, content),
        "custom_properties": managed.managed_properties(**props),
    }


def rejection(
    path: str, locale: str | None, reasons: Iterable[str], warnings: Iterable[str], at: datetime, content: str
) -> Alert:
    """The zip-rejected alert; its id follows the zip's path and content, so a repeat is recognisable."""
    reasons = list(reasons)
    summary = reasons[0] if len(reasons) == 1 else f"{len(reasons)} problems, first: {reasons[0]}"
    return make_alert(
        "zip-rejected",
        resource=path,
        locale=locale,
        message=f"{path} was not turned into a dataset: {summary}",
        details={"reasons": reasons, "warnings": list(warnings), "content": content},
        at=at,
        key=content,
    )


def rejected_state(content: str, reasons: list[str]) -> BlobState:
    return BlobState(status="rejected", content=content, reason=reasons[0] if reasons else "rejected")


def submitted_state(content: str, dataset_id: str, warning: str | None = None) -> BlobState:
    return BlobState(
        status="submitted", content=content, dataset=dataset_id, reason=f"warning: {warning}" if warning else None
    )
