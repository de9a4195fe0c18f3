"""Ingest: a zip dropped in the training container becomes a Custom Speech dataset.

The function receives an SDK BlobClient (model binding data), never the zip's bytes, and validates the zip with
ranged reads of its central directory. Its content identity comes from those same reads, so a metadata or
Content-Type change (a new ETag, the same bytes) is recognised as the same zip.

Order of writes: an alert is delivered before the blob's state records it; a dataset is created before the state
names it. A crash between the two repeats the first (same alert id; the dataset is found by its description).
"""

from __future__ import annotations

import logging
from typing import Callable

from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from shared import clock, context, ingest, managed, upload
from shared.alerts import Alert, deliver
from shared.settings import Settings
from shared.speech import Dataset, SpeechClient, SpeechError
from shared.storage import (
    LEGACY_TAG_ETAG,
    LEGACY_TAG_STATUS,
    BlobState,
    clean_etag,
    content_sas_url,
    redact,
    source_lock,
    write_state,
)
from shared.zipcheck import BlobRangeReader, check_zip, content_id

log = logging.getLogger("autopilot.ingest")

Send = Callable[[list[str]], None]


def on_blob(blob: BlobClient) -> None:
    """The blob trigger's body: ingest the blob; its alerts are delivered as they arise."""
    config = context.settings()
    ingest_blob(config, blob, context.alert_sender(config))


class _MemoReader:
    """The blob's ranged reads, remembered (bounded), so the identity and the validation read them once."""

    MAX_BYTES = 4 * 1024 * 1024

    def __init__(self, reader: BlobRangeReader) -> None:
        self.reader = reader
        self.size = reader.size
        self._memo: dict[tuple[int, int], bytes] = {}
        self._held = 0

    def read(self, offset: int, length: int) -> bytes:
        key = (offset, length)
        if key not in self._memo:
            data = self.reader.read(offset, length)
            if self._held + len(data) > self.MAX_BYTES:
                return data
            self._memo[key] = data
            self._held += len(data)
        return self._memo[key]


def ingest_blob(config: Settings, blob: BlobClient, send: Send, *, trust_state: bool = True) -> list[Alert]:
    """Validate one blob and create its dataset, at most once per content. Returns the alerts it delivered.

    Safe to call for any blob, any number of times, concurrently: the event path and the reconcile sweep share it.
    `trust_state=False` (the sweep) looks the dataset up even where the blob's state says it was submitted.
    """
    name = blob.blob_name
    if not name.lower().endswith(".zip"):
        log.info("ignoring %s: not a .zip", name)
        return []
    try:
        props = blob.get_blob_properties()
        state = BlobState.from_metadata(props.metadata)
        reader = _MemoReader(BlobRangeReader(blob, props.size, props.etag))
        content = content_id(reader)
        if trust_state and ingest.already_handled(state, content):
            log.info("%s (content %s) was handled already", name, content)
            return []
        return _ingest(config, blob, send, props, state, reader, content)
    except ResourceNotFoundError:
        log.info("ignoring %s: deleted before it could be ingested", name)
        return []
    except ResourceModifiedError:  # replaced while it was read: the new version is delivered (or swept) on its own
        log.info("%s changed while it was read; its new version is ingested on its own", name)
        return []


def _ingest(config, blob, send, props, state, reader, content) -> list[Alert]:
    name = blob.blob_name
    path = ingest.source_path(blob.container_name, name)
    target = ingest.parse_blob_name(name)
    if isinstance(target, list):
        return _reject(config, blob, props, send, path, None, target, [], content)
    if len(path) > ingest.MAX_SOURCE_PATH:
        reason = f"the blob path is {len(path)} characters long; at most {ingest.MAX_SOURCE_PATH} are supported"
        return _reject(config, blob, props, send, path, target.locale, [reason], [], content)
    reasons = ingest.locale_reasons(target, context.supported_locales(config))
    if reasons:
        return _reject(config, blob, props, send, path, target.locale, reasons, [], content)
    verdict = check_zip(reader, target.kind)
    log.info("validated %s with %d ranged reads (%d bytes)", name, reader.reader.reads, reader.reader.bytes_read)
    if not verdict.ok:
        return _reject(config, blob, props, send, path, target.locale, verdict.reasons, verdict.warnings, content)
    return _create_dataset(config, blob, send, props, state, path, target, content, list(verdict.warnings))


def _create_dataset(config, blob, send, props, state, path, target, content, warnings) -> list[Alert]:
    """Create the dataset unless this content has one; a service refusal is a rejection the user is told about,
    unless it refuses the app's credentials (401/403): that is no fault of the zip, which is retried."""
    speech = context.speech(config)
    with source_lock(context.locks_container(config), path):
        existing = find_dataset(speech, path, content, state) or _adopt_legacy(speech, blob, props, path, content)
        if existing is not None:
            log.info("%s (content %s) is dataset %s already", path, content, existing.id)
            _record(blob, props, ingest.submitted_state(content, existing.id))
            return []
        request = ingest.dataset_request(target, path, content)
        try:
            dataset = _submit(config, speech, blob, props, request)
        except SpeechError as exc:
            if exc.transient or exc.ambiguous or exc.denied:
                raise  # retried; the retry looks the dataset up before creating it (denied: once access is fixed)
            reason = f"the Speech service refused the dataset: {exc.message} ({exc.code or exc.status})"
            return _reject(config, blob, props, send, path, target.locale, [reason], warnings, content)
        _record(blob, props, ingest.submitted_state(content, dataset.id, warnings[0] if warnings else None))
        log.info(
            "dataset %s created from %s (%s, %s)%s",
            dataset.id,
            path,
            target.kind,
            target.locale,
            f"; warnings: {'; '.join(warnings)}" if warnings else "",
        )
    return []


def _submit(config: Settings, speech: SpeechClient, blob: BlobClient, props, request: dict) -> Dataset:
    """Hand the zip to the service: a read-only SAS it downloads (contentUrl), or, with DATASET_UPLOAD=blocks for
    storage the service cannot reach, the upload engine streaming it in blocks (resuming an earlier attempt)."""
    if config.dataset_upload == "blocks":
        log.info("creating the %s dataset for %s from uploaded blocks", request["kind"], blob.blob_name)
        return upload.dataset_from_blob(speech, blob, props.size, props.etag, request)
    url = content_sas_url(blob, config.sas_lifetime_hours)
    log.info("creating the %s dataset for %s from %s", request["kind"], blob.blob_name, redact(url))
    return speech.create_dataset(content_url=url, **request)


def find_dataset(speech: SpeechClient, path: str, content: str, state: BlobState) -> Dataset | None:
    """The managed dataset made from this content at this path, in at most two calls whatever the resource holds:
    an exact filter on the description (full identity checked on the few results), then the dataset the blob's
    state names (found even if a person edited its name or description)."""
    query = f"description eq {ingest.odata_string(ingest.description(path, content))}"
    found = ingest.first_made_from(speech.list_datasets(filter=query), path, content)
    if found is not None or not state.dataset or state.content != content:
        return found
    try:
        named = speech.get_dataset(state.dataset)
    except SpeechError as exc:
        if exc.not_found:
            return None
        raise
    return named if ingest.made_from(named, path, content) else None


def _adopt_legacy(speech: SpeechClient, blob: BlobClient, props, path: str, content: str) -> Dataset | None:
    """A dataset the previous release made from this very blob version (it kept its state in blob index tags and
    keyed datasets on the ETag): gains the content identity instead of being made again."""
    if BlobState.from_metadata(props.metadata).status:
        return None
    try:
        tags = blob.get_blob_tags()
    except AzureError:
        return None
    etag = clean_etag(props.etag)
    if tags.get(LEGACY_TAG_ETAG) != etag or tags.get(LEGACY_TAG_STATUS) not in ("submitted", "succeeded", "failed"):
        return None
    query = f"description eq {ingest.odata_string(ingest.legacy_description(path, etag))}"
    for dataset in speech.list_datasets(filter=query):
        props_ = dataset.custom_properties
        if (
            managed.is_managed(dataset)
            and props_.get(managed.SOURCE) == path
            and props_.get(managed.SOURCE_ETAG) == etag
        ):
            updated = managed.with_properties(props_, **{managed.SOURCE_CONTENT: content})
            log.info("adopting dataset %s of the previous release for %s", dataset.id, path)
            return speech.update_dataset(dataset.id, custom_properties=updated)
    return None


def _record(blob: BlobClient, props, state: BlobState) -> None:
    """The blob's state, written against the version this ingest read (its content is the one we checked)."""
    write_state(blob, state, etag=props.etag, metadata=props.metadata or {})


def _reject(config, blob, props, send, path, locale, reasons, warnings, content) -> list[Alert]:
    """Deliver the zip-rejected alert, then record the rejection on the blob (so a crash between the two repeats
    the alert, never loses it)."""
    reasons = list(reasons)
    alert = ingest.rejection(path, locale, reasons, warnings, clock.now(), content)
    deliver([alert], send, config.alert_webhook_url, webhook_min_severity=config.alert_webhook_min_severity)
    _record(blob, props, ingest.rejected_state(content, reasons))
    return [alert]
