"""Ingest: a zip dropped in the training container becomes a Custom Speech dataset.

The function receives an SDK BlobClient (model binding data), never the zip's bytes, and validates the zip with
ranged reads of its central directory.
"""

from __future__ import annotations

import logging

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient

from shared import clock, context, ingest, managed, upload
from shared.alerts import Alert, deliver
from shared.settings import Settings
from shared.speech import SpeechError
from shared.storage import (
    ZipBlob,
    autopilot_lock,
    clean_etag,
    content_sas_url,
    redact,
    set_autopilot_tags,
)
from shared.zipcheck import BlobRangeReader, check_zip

log = logging.getLogger("autopilot.ingest")


def on_blob(blob: BlobClient, alerts) -> None:
    """The blob trigger's body: ingest the blob, raise what it found."""
    config = context.settings()
    deliver(ingest_blob(config, blob), alerts, config.alert_webhook_url)


def ingest_blob(config: Settings, blob: BlobClient, *, trust_tags: bool = True) -> list[Alert]:
    """Validate one blob and create its dataset, at most once per blob version. Returns the alerts to raise.

    Safe to call for any blob, any number of times, concurrently: the event path and the reconcile sweep share it.
    """
    name = blob.blob_name
    if not name.lower().endswith(".zip"):
        log.info("ignoring %s: not a .zip", name)
        return []
    try:
        props = blob.get_blob_properties()
        tags = blob.get_blob_tags()
    except ResourceNotFoundError:
        log.info("ignoring %s: deleted before it could be ingested", name)
        return []
    zip_blob = ZipBlob(
        name=name, etag=clean_etag(props.etag), size=props.size, last_modified=props.last_modified, tags=tags
    )
    if trust_tags and ingest.already_handled(zip_blob):
        log.info("%s (ETag %s) was handled already", name, zip_blob.etag)
        return []
    path = ingest.source_path(blob.container_name, name)
    target = ingest.parse_blob_name(name)
    if isinstance(target, list):
        return [_reject(blob, zip_blob, path, None, target, [])]
    if len(path) > ingest.MAX_SOURCE_PATH:
        reason = f"the blob path is {len(path)} characters long; at most {ingest.MAX_SOURCE_PATH} are supported"
        return [_reject(blob, zip_blob, path, target.locale, [reason], [])]
    reasons = ingest.locale_reasons(target, context.supported_locales(config))
    if reasons:
        return [_reject(blob, zip_blob, path, target.locale, reasons, [])]
    reader = BlobRangeReader(blob, zip_blob.size, props.etag)
    verdict = check_zip(reader, target.kind)
    log.info("validated %s with %d ranged reads (%d bytes)", name, reader.reads, reader.bytes_read)
    if not verdict.ok:
        return [_reject(blob, zip_blob, path, target.locale, verdict.reasons, verdict.warnings)]
    refused = _create_dataset(config, blob, zip_blob, path, target, verdict.warnings)
    return [refused] if refused else []


def _create_dataset(
    config: Settings, blob: BlobClient, zip_blob: ZipBlob, path: str, target: ingest.Target, warnings
) -> Alert | None:
    """Create the dataset unless this version has one; a service refusal is a rejection the user is told about."""
    speech = context.speech(config)
    with autopilot_lock(context.training_container(config)):
        decision = ingest.decide(zip_blob, path, target, speech.list_datasets())
        if decision.action == "done":
            assert decision.existing is not None
            log.info("%s (ETag %s) is dataset %s already", path, zip_blob.etag, decision.existing.id)
            dataset = decision.existing
            set_autopilot_tags(blob, zip_blob.tags, **ingest.submitted_tags(zip_blob.etag, dataset.id))
        else:
            try:
                if config.dataset_upload == "blocks":  # the Speech service cannot read this storage account
                    log.info("creating the %s dataset for %s from uploaded blocks", target.kind, path)
                    request = ingest.dataset_request(target, zip_blob, path)
                    dataset = upload.dataset_from_blob(speech, blob, zip_blob.size, zip_blob.etag, request)
                else:
                    url = content_sas_url(blob, config.sas_lifetime_hours)
                    log.info("creating the %s dataset for %s from %s", target.kind, path, redact(url))
                    dataset = speech.create_dataset(content_url=url, **ingest.dataset_request(target, zip_blob, path))
            except SpeechError as exc:
                if exc.transient or exc.ambiguous:
                    raise  # retried; the retry looks the dataset up before creating it
                reason = f"the Speech service refused the dataset: {exc.message} ({exc.code or exc.status})"
                return _reject(blob, zip_blob, path, target.locale, [reason], warnings)
            tags = ingest.submitted_tags(zip_blob.etag, dataset.id)
            if warnings:
                tags[ingest.TAG_REASON] = f"warning: {warnings[0]}"
            set_autopilot_tags(blob, zip_blob.tags, **tags)
            log.info(
                "dataset %s created from %s (%s, %s)%s",
                dataset.id,
                path,
                target.kind,
                target.locale,
                f"; warnings: {'; '.join(warnings)}" if warnings else "",
            )
        for old in decision.supersede:
            props = managed.with_properties(old.custom_properties, **{managed.SUPERSEDED_BY: dataset.id})
            speech.update_dataset(old.id, custom_properties=props)
            log.info("dataset %s (older upload of %s) superseded by %s", old.id, path, dataset.id)
    return None


def _reject(blob: BlobClient, zip_blob: ZipBlob, path: str, locale, reasons, warnings) -> Alert:
    reasons = list(reasons)
    set_autopilot_tags(blob, zip_blob.tags, **ingest.rejected_tags(zip_blob.etag, reasons))
    return ingest.rejection(path, locale, reasons, warnings, clock.now(), zip_blob.etag)
