"""Storage edges: clients from the AzureWebJobsStorage connection, the contentUrl SAS, the lock, blob tags."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Iterator, Mapping

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    generate_blob_sas,
)

from shared.settings import StorageConnection

log = logging.getLogger("autopilot.storage")

SAS_START_SKEW = timedelta(minutes=15)
TAG_PREFIX = "autopilot-"
TAG_STATUS = "autopilot-status"  # submitted | rejected | succeeded | failed | superseded
TAG_DATASET = "autopilot-dataset"  # the dataset id made from this blob
TAG_ETAG = "autopilot-etag"  # the blob version the tags describe
TAG_REASON = "autopilot-reason"  # short reason for rejected / failed
_TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-./:=_")


def _credential(conn: StorageConnection) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if conn.client_id:
        return ManagedIdentityCredential(client_id=conn.client_id)
    return DefaultAzureCredential()


def blob_service(conn: StorageConnection) -> BlobServiceClient:
    if conn.connection_string:
        return BlobServiceClient.from_connection_string(conn.connection_string)
    return BlobServiceClient(account_url=conn.blob_service_uri, credential=_credential(conn))


def queue_service(conn: StorageConnection) -> Any:
    """A QueueServiceClient (azure-storage-queue: the operator CLI's, not the function app's dependency)."""
    from azure.storage.queue import QueueServiceClient

    if conn.connection_string:
        return QueueServiceClient.from_connection_string(conn.connection_string)
    if not conn.queue_service_uri:
        from shared.settings import SettingError

        raise SettingError("setting AzureWebJobsStorage__queueServiceUri (or __accountName) is required for queues")
    return QueueServiceClient(account_url=conn.queue_service_uri, credential=_credential(conn))


def clean_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


# -- contentUrl ------------------------------------------------------------------------------------------------


def content_sas_url(blob: BlobClient, lifetime_hours: int, now: datetime | None = None) -> str:
    """A read-only SAS URL for this one blob: start 15 minutes back, `lifetime_hours` long.

    Account-key SAS when the client holds a shared key (Azurite, key connection strings), otherwise a
    user-delegation SAS (managed identity in Azure). HTTPS only, except for a plain-http emulator endpoint.
    """
    now = now or datetime.now(UTC)
    start, expiry = now - SAS_START_SKEW, now + timedelta(hours=lifetime_hours)
    common = dict(
        account_name=blob.account_name,
        container_name=blob.container_name,
        blob_name=blob.blob_name,
        permission=BlobSasPermissions(read=True),
        start=start,
        expiry=expiry,
        protocol="https" if blob.scheme == "https" else "https,http",
    )
    credential = blob.credential
    account_key = getattr(credential, "account_key", None)
    if account_key:
        token = generate_blob_sas(account_key=account_key, **common)
    else:
        service = BlobServiceClient(account_url=f"{blob.scheme}://{blob.primary_hostname}", credential=credential)
        key = service.get_user_delegation_key(key_start_time=start, key_expiry_time=expiry)
        token = generate_blob_sas(user_delegation_key=key, **common)
    return f"{blob.url}?{token}"


def redact(url: str) -> str:
    """A URL safe to log: the query string (which may hold a SAS signature) is dropped."""
    return url.split("?", 1)[0] + ("?<redacted>" if "?" in url else "")


# -- the lock --------------------------------------------------------------------------------------------------


class LockBusy(RuntimeError):
    """Another instance holds the autopilot lock; try again later."""


@contextlib.contextmanager
def autopilot_lock(
    container: ContainerClient, *, wait_seconds: float = 45.0, lease_seconds: int = 60
) -> Iterator[None]:
    """Serialize every change to the Speech resource across instances: a lease on the training container.

    A container lease only guards against deleting the container, so users' uploads are never blocked. The
    holder renews it every lease_seconds/3 (a call waiting out a 429 storm keeps the lock); if the holder dies,
    the lease expires by itself.
    """
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            lease = container.acquire_lease(lease_duration=lease_seconds)
            break
        except (ResourceExistsError, HttpResponseError) as exc:
            if getattr(exc, "status_code", None) != 409:
                raise
            if time.monotonic() >= deadline:
                raise LockBusy(f"container {container.container_name} is leased by another run") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    done = threading.Event()
    renewer = threading.Thread(target=_keep_renewed, args=(lease, done, lease_seconds / 3), daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()
        try:
            lease.release()
        except HttpResponseError as exc:  # expired and taken by someone else: nothing to release
            log.warning("could not release the autopilot lock: %s", exc.error_code or exc.status_code)


def _keep_renewed(lease: Any, done: threading.Event, every: float) -> None:
    while not done.wait(every):
        try:
            lease.renew()
        except HttpResponseError as exc:
            log.warning("could not renew the autopilot lock: %s", exc.error_code or exc.status_code)
            return


# -- blobs -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZipBlob:
    """What the decisions need to know of a zip in the training container."""

    name: str  # blob name within the container, e.g. "en-US/acoustic/calls.zip"
    etag: str  # without quotes
    size: int
    last_modified: datetime | None
    tags: Mapping[str, str]


def tag_value(text: str) -> str:
    """Blob index tag values allow 0-256 characters of a small alphabet."""
    return "".join(c if c in _TAG_CHARS else "_" for c in text)[:256]


def set_autopilot_tags(blob: BlobClient, current: Mapping[str, str], **values: str | None) -> dict[str, str]:
    """Replace our tags on the blob, keeping the user's own tags."""
    tags = {k: v for k, v in current.items() if not k.startswith(TAG_PREFIX)}
    tags.update({k: tag_value(v) for k, v in values.items() if v is not None})
    try:
        blob.set_blob_tags(tags)
    except ResourceNotFoundError:
        log.info("blob %s disappeared before it could be tagged", blob.blob_name)
    return tags


def list_zips(container: ContainerClient) -> list[ZipBlob]:
    """Every .zip in the container, with its tags, in one paged listing."""
    zips = []
    for item in container.list_blobs(include=["tags"]):
        if item.name.lower().endswith(".zip"):
            zips.append(
                ZipBlob(
                    name=item.name,
                    etag=clean_etag(item.etag),
                    size=item.size or 0,
                    last_modified=item.last_modified,
                    tags=dict(item.tags or {}),
                )
            )
    return zips
