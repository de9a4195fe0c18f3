"""Storage edges: clients from the AzureWebJobsStorage connection, the contentUrl SAS, the lock, blob tags."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import threading
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import unquote

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
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


@dataclass(frozen=True, slots=True)
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


LIST_PAGE_SIZE = 5000  # List Blobs' maximum


def list_zips(container: ContainerClient, page_size: int = LIST_PAGE_SIZE) -> list[ZipBlob]:
    """Every .zip in the container, with its tags, in one paged listing (List Blobs, include=tags).

    The listing's XML is parsed as it streams in, through the client's own pipeline (its credential, retries and
    logging policies), rather than by the SDK's models: with tags, those cost about 200 µs per blob, and reading a
    5,000-blob page whole peaks at ~40 MB, seconds and hundreds of MB for a container of tens of thousands of zips.
    Streamed: ~40 µs per blob, a few MB per page.
    """
    send = getattr(getattr(container, "_client", None), "_send_request", None)
    if send is None:  # not the SDK's ContainerClient as we know it: its public listing
        return [_zip_from_sdk(item) for item in container.list_blobs(include=["tags"]) if _is_zip(item.name)]
    zips: list[ZipBlob] = []
    marker: str | None = None
    while True:
        params = {"restype": "container", "comp": "list", "include": "tags", "maxresults": str(page_size)}
        if marker:
            params["marker"] = marker
        headers = {"x-ms-version": container.api_version, "Accept": "application/xml"}
        response = send(HttpRequest("GET", container.url, params=params, headers=headers), stream=True)
        try:
            if response.status_code != 200:
                response.read()
                raise HttpResponseError(response=response)
            marker = _parse_blob_list(response.iter_bytes(), zips)
        finally:
            response.close()
        if not marker:
            return zips


def _is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def _zip_from_sdk(item: Any) -> ZipBlob:
    return ZipBlob(
        name=item.name,
        etag=clean_etag(item.etag),
        size=item.size or 0,
        last_modified=item.last_modified,
        tags=dict(item.tags or {}),
    )


def _parse_blob_list(chunks: Iterable[bytes], zips: list[ZipBlob]) -> str | None:
    """Append the page's zips to `zips`; the NextMarker, if more pages follow."""
    marker = None
    # the storage service's own answer over the authenticated pipeline, parsed with xml.etree as the SDK does
    parser = ElementTree.XMLPullParser(events=("end",))  # noqa: S314
    for chunk in chunks:
        parser.feed(chunk)
        marker = _read_blobs(parser, zips) or marker
    parser.close()
    return _read_blobs(parser, zips) or marker


def _read_blobs(parser: ElementTree.XMLPullParser, zips: list[ZipBlob]) -> str | None:
    marker = None
    for _, element in parser.read_events():
        if element.tag == "Blob":
            name_element = element.find("Name")
            name = (name_element.text or "") if name_element is not None else ""
            if name_element is not None and name_element.get("Encoded") == "true":
                name = unquote(name)
            if _is_zip(name):
                props = element.find("Properties")
                modified = props.findtext("Last-Modified") if props is not None else None
                zips.append(
                    ZipBlob(
                        name=name,
                        etag=clean_etag(props.findtext("Etag") if props is not None else None),
                        size=int((props.findtext("Content-Length") if props is not None else None) or 0),
                        last_modified=email.utils.parsedate_to_datetime(modified) if modified else None,
                        tags={tag.findtext("Key") or "": tag.findtext("Value") or "" for tag in element.iter("Tag")},
                    )
                )
            element.clear()
        elif element.tag == "NextMarker":
            marker = element.text or None
    return marker
