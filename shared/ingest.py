"""Drop a zip, get a dataset: the decisions (pure) and the one routine that carries them out.

`{container}/{locale}/{kind}/{name}.zip` -> a Custom Speech dataset made from a short-lived read-only SAS of the
blob, after validating the zip by ranged reads. Exactly once per blob version: the blob's tags and the managed
datasets' customProperties (path + ETag) are looked up before anything is created, under the autopilot lock.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Literal, Mapping

from shared import managed
from shared.alerts import Alert, make_alert
from shared.speech import Dataset
from shared.storage import TAG_DATASET, TAG_ETAG, TAG_REASON, TAG_STATUS, ZipBlob

log = logging.getLogger("autopilot.ingest")

KIND_FOLDERS: dict[str, str] = {
    "acoustic": "Acoustic",
    "language": "Language",
    "pronunciation": "Pronunciation",
    "markdown": "LanguageMarkdown",
    "output-formatting": "OutputFormatting",
    "audio": "AudioFiles",
}
# language[-Script]-REGION, e.g. en-US, zh-CN, sr-Latn-RS; compared case-insensitively
LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}(-[a-z]{4})?-([a-z]{2}|\d{3})$", re.IGNORECASE)
MAX_SOURCE_PATH = managed.MAX_VALUE
HANDLED = frozenset({"submitted", "rejected", "succeeded", "failed"})


@dataclass(frozen=True)
class Target:
    locale: str
    kind: str  # DatasetKind
    name: str  # the file name without folders and .zip


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
            f"(for example en-US/acoustic/calls.zip); kind folders: {', '.join(KIND_FOLDERS)}"
        ]
    locale, folder, name = parts[0], parts[1], "/".join(parts[2:])
    reasons = []
    if not LOCALE_PATTERN.match(locale):
        reasons.append(f"'{locale}' is not a locale such as en-US (language-REGION)")
    kind = KIND_FOLDERS.get(folder.lower())
    if kind is None:
        reasons.append(f"unknown kind folder '{folder}'; use one of: {', '.join(KIND_FOLDERS)}")
    if not name.lower().endswith(".zip"):
        reasons.append(f"'{name}' is not a .zip file")
    if reasons:
        return reasons
    stem = name.rsplit("/", 1)[-1][: -len(".zip")]
    return Target(locale=canonical_locale(locale), kind=kind, name=stem)  # type: ignore[arg-type]


def locale_reasons(target: Target, supported: Mapping[str, Iterable[str]]) -> list[str]:
    locales = {loc.lower(): loc for loc in supported.get(target.kind, ())}
    if target.locale.lower() in locales:
        return []
    return [f"the Speech service does not support {target.kind} datasets in locale {target.locale}"]


def already_handled(blob: ZipBlob) -> bool:
    """The tags say this very version of the blob was submitted or rejected already."""
    return blob.tags.get(TAG_ETAG) == blob.etag and blob.tags.get(TAG_STATUS) in HANDLED


def datasets_for_path(datasets: Iterable[Dataset], path: str) -> list[Dataset]:
    return [d for d in datasets if managed.is_managed(d) and d.custom_properties.get(managed.SOURCE) == path]


@dataclass(frozen=True)
class Decision:
    action: Literal["create", "reject", "done"]
    target: Target | None = None
    reasons: tuple[str, ...] = ()
    existing: Dataset | None = None  # for "done": the dataset already made from this version
    supersede: tuple[Dataset, ...] = field(default_factory=tuple)  # older datasets of the same path


def decide(blob: ZipBlob, path: str, target: Target, datasets: Iterable[Dataset]) -> Decision:
    """Given a valid target and every dataset in the resource: create, or recognise the work as done."""
    # A dataset still being uploaded in blocks (DATASET_UPLOAD=blocks) holds no data yet: not done, not older;
    # "create" hands it back to the upload engine, which resumes it.
    same_path = [d for d in datasets_for_path(datasets, path) if not managed.upload_incomplete(d)]
    current = next((d for d in same_path if d.custom_properties.get(managed.SOURCE_ETAG) == blob.etag), None)
    older = tuple(
        d for d in same_path if d is not current and not d.custom_properties.get(managed.SUPERSEDED_BY)
    )  # marked again on a retry if an earlier attempt stopped between creating and marking
    if current is not None:
        return Decision("done", target, existing=current, supersede=older)
    return Decision("create", target, supersede=older)


def dataset_request(target: Target, blob: ZipBlob, path: str) -> dict:
    """The Datasets_Create fields (all but contentUrl) for this blob version."""
    return {
        "display_name": f"{target.name} ({target.kind}, {target.locale})",
        "locale": target.locale,
        "kind": target.kind,
        "description": f"Created by {managed.MANAGED_BY} from {path} (ETag {blob.etag}).",
        "custom_properties": managed.managed_properties(**{managed.SOURCE: path, managed.SOURCE_ETAG: blob.etag}),
    }


def rejection(
    path: str, locale: str | None, reasons: Iterable[str], warnings: Iterable[str], at: datetime, etag: str
) -> Alert:
    reasons = list(reasons)
    summary = reasons[0] if len(reasons) == 1 else f"{len(reasons)} problems, first: {reasons[0]}"
    return make_alert(
        "zip-rejected",
        resource=path,
        locale=locale,
        message=f"{path} was not turned into a dataset: {summary}",
        details={"reasons": reasons, "warnings": list(warnings), "etag": etag},
        at=at,
        key=etag,
    )


def rejected_tags(etag: str, reasons: list[str]) -> dict[str, str]:
    return {TAG_STATUS: "rejected", TAG_ETAG: etag, TAG_REASON: reasons[0] if reasons else "rejected"}


def submitted_tags(etag: str, dataset_id: str) -> dict[str, str]:
    return {TAG_STATUS: "submitted", TAG_ETAG: etag, TAG_DATASET: dataset_id}
