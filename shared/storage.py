"""Storage edges: clients from the AzureWebJobsStorage connection, the contentUrl SAS, the lock, a zip's state."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import logging
import threading
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import unquote

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.rest import HttpRequest
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    generate_blob_sas,
)

from shared.guard import LockLost, before_write, guarded
from shared.settings import StorageConnection

log = logging.getLogger("autopilot.storage")

SAS_START_SKEW = timedelta(minutes=15)
# Azure refuses a user delegation key whose start or expiry is more than 7 days from the service's clock. The key's
# expiry is kept SAS_START_SKEW inside that, so a client clock up to that far ahead of the service still passes.
USER_DELEGATION_KEY_MAX = timedelta(days=7)
LEASE_CALL_TIMEOUT = 10  # seconds for one acquire/renew/release call
LOCKS_CONTAINER = "autopilot-locks"  # marker blobs whose leases serialize each source's ingests
RENEW_RETRY_SECONDS = 2.0
META_PREFIX = "autopilot_"  # the app's metadata keys on a zip (C# identifiers, as metadata names must be)
META_STATUS = "autopilot_status"  # submitted | rejected | succeeded | failed
META_CONTENT = "autopilot_content"  # the content identity the state describes
META_DATASET = "autopilot_dataset"  # the dataset id made from that content
META_REASON = "autopilot_reason"  # short reason for rejected / failed
META_ALERTED = "autopilot_alerted"  # alert tokens raised about this content ("stuck": no dataset for too long)
MAX_META_VALUE = 256
STATE_WRITE_ATTEMPTS = 5
# Blob index tags the previous release wrote (read once, to adopt its datasets; never written).
LEGACY_TAG_STATUS = "autopilot-status"
LEGACY_TAG_ETAG = "autopilot-etag"


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
    """The queue service of the app's storage (alerts and deploy requests are sent directly, before the state that
    records them is written)."""
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
    A user-delegation SAS never outlives its key, and the key is requested within 7 days of now (Azure's limit),
    so at the longest lifetime (168 hours) that SAS ends SAS_START_SKEW early.
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
        expiry = min(expiry, now + USER_DELEGATION_KEY_MAX - SAS_START_SKEW)
        service = BlobServiceClient(account_url=f"{blob.scheme}://{blob.primary_hostname}", credential=credential)
        key = service.get_user_delegation_key(key_start_time=start, key_expiry_time=expiry)
        token = generate_blob_sas(user_delegation_key=key, **{**common, "expiry": expiry})
    return f"{blob.url}?{token}"


def redact(url: str) -> str:
    """A URL safe to log: the query string (which may hold a SAS signature) is dropped."""
    return url.split("?", 1)[0] + ("?<redacted>" if "?" in url else "")


# -- the lock --------------------------------------------------------------------------------------------------


class LockBusy(RuntimeError):
    """Another instance holds the autopilot lock; try again later."""


class Lease:
    """The autopilot lock's lease, as this instance knows it: held until `lease_seconds` after the start of the
    last successful acquire or renew. `check()` refuses writes when less than `margin` of that is left, or once
    the service said the lease is gone."""

    def __init__(self, client: Any, lease_seconds: int, started: float, clock: Callable[[], float]) -> None:
        self.client = client
        self.lease_seconds = lease_seconds
        self.margin = lease_seconds / 3
        self._clock = clock
        self._valid_until = started + lease_seconds
        self._lost: str | None = None
        self._lock = threading.Lock()

    def renewed(self, started: float) -> None:
        with self._lock:
            self._valid_until = max(self._valid_until, started + self.lease_seconds)

    def lost(self, why: str) -> None:
        with self._lock:
            self._lost = why

    def remaining(self) -> float:
        return self._valid_until - self._clock()

    def check(self) -> None:
        if self._lost:
            raise LockLost(f"the autopilot lock was lost ({self._lost}); stopping before the next write")
        if self.remaining() < self.margin:
            raise LockLost(
                f"the autopilot lock could not be renewed ({max(0.0, self.remaining()):.0f} s of the lease left); "
                "stopping before the next write"
            )


@contextlib.contextmanager
def autopilot_lock(
    container: ContainerClient,
    *,
    wait_seconds: float = 45.0,
    lease_seconds: int = 60,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Lease]:
    """Serialize the passes and the deployments across instances: a lease on the training container.

    A container lease only guards against deleting the container, so users' uploads are never blocked. The
    holder renews it every lease_seconds/3 and retries a failed renewal until the lease would run out; every
    write made under the lock first checks that the lease is still held (shared.guard), so a pass that lost it
    stops instead of racing the instance that takes it over. If the holder dies, the lease expires by itself.
    """
    with _leased(
        container.acquire_lease, f"container {container.container_name}", wait_seconds, lease_seconds, clock
    ) as lease:
        yield lease


@contextlib.contextmanager
def source_lock(
    locks: ContainerClient,
    source: str,
    *,
    wait_seconds: float = 45.0,
    lease_seconds: int = 60,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Lease]:
    """Serialize what creates a dataset from one source (a zip's path): a lease on a small marker blob of its own
    in the `locks` container (LOCKS_CONTAINER), created on first use.

    Only the same source's ingests (an event, its redelivery, the sweep) wait for each other: an ingest never waits
    for a reconcile pass, however long the pass holds the autopilot lock. The marker's name is a digest of the
    source, so any path fits; the zip itself is never leased (a lease would block the user's overwrite).
    """
    marker = locks.get_blob_client(hashlib.sha256(source.encode()).hexdigest()[:40])
    _ensure_marker(locks, marker, source)
    with _leased(marker.acquire_lease, f"the lock of {source}", wait_seconds, lease_seconds, clock) as lease:
        yield lease


def _ensure_marker(locks: ContainerClient, marker: BlobClient, source: str) -> None:
    for _ in range(2):
        try:
            marker.upload_blob(b"", metadata={"source": meta_value(source)}, overwrite=False)
            return
        except ResourceExistsError:
            return
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):  # exists (possibly leased): nothing to create
                return
            if exc.status_code != 404:
                raise
            with contextlib.suppress(ResourceExistsError):
                locks.create_container()


@contextlib.contextmanager
def _leased(
    acquire: Callable[..., Any], what: str, wait_seconds: float, lease_seconds: int, clock: Callable[[], float]
) -> Iterator[Lease]:
    """Hold a lease (acquired with `acquire`), renewed in the background, with writes guarded by it."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        started = clock()
        try:
            client = acquire(lease_duration=lease_seconds, timeout=LEASE_CALL_TIMEOUT)
            break
        except (ResourceExistsError, HttpResponseError) as exc:
            if getattr(exc, "status_code", None) != 409:
                raise
            if time.monotonic() >= deadline:
                raise LockBusy(f"{what} is leased by another run") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    lease = Lease(client, lease_seconds, started, clock)
    done = threading.Event()
    renewer = threading.Thread(target=_keep_renewed, args=(lease, done), daemon=True)
    renewer.start()
    try:
        with guarded(lease.check):
            yield lease
    finally:
        done.set()
        renewer.join()
        try:
            client.release(timeout=LEASE_CALL_TIMEOUT)
        except AzureError as exc:  # expired and taken by someone else, or storage failing: it expires by itself
            log.warning("could not release %s: %s", what, getattr(exc, "error_code", None) or type(exc).__name__)


def _keep_renewed(lease: Lease, done: threading.Event) -> None:
    """Renew every lease_seconds/3; after a failure retry every few seconds while the lease may still be ours.
    A 409 means another instance holds it now: the lease is lost for good."""
    wait = lease.lease_seconds / 3
    while not done.wait(wait):
        started = lease._clock()
        try:
            lease.client.renew(timeout=LEASE_CALL_TIMEOUT)
        except AzureError as exc:
            status = getattr(exc, "status_code", None)
            log.warning(
                "could not renew the autopilot lock: %s",
                getattr(exc, "error_code", None) or status or type(exc).__name__,
            )
            if status == 409:
                lease.lost("another instance holds it now")
                return
            if lease.remaining() <= 0:
                lease.lost("the lease expired while renewals failed")
                return
            wait = min(RENEW_RETRY_SECONDS, max(0.1, lease.remaining() / 4))
            continue
        lease.renewed(started)
        wait = lease.lease_seconds / 3


# -- blobs and their state -------------------------------------------------------------------------------------
#
# What the app knows about a zip lives in the blob's metadata, under keys of its own: never in blob index tags,
# whose budget of 10 belongs to the users. Metadata is written read-merge-write with If-Match on the ETag just read,
# so a key a user writes meanwhile is never erased (the write is retried on the new version), and only our keys
# are ever replaced. Metadata and Content-Type changes do not change a zip's identity (shared.zipcheck.content_id).


@dataclass(frozen=True)
class BlobState:
    """The app's record on a zip: what it did with which content."""

    status: str | None = None  # submitted | rejected | succeeded | failed
    content: str | None = None  # the content identity the record is about
    dataset: str | None = None  # the dataset id made from that content
    reason: str | None = None  # short reason for rejected / failed, or a warning
    alerted: str | None = None  # alert tokens raised about the zip ("stuck"); a re-upload or a new state drops them

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str] | None) -> BlobState:
        meta = {k.lower(): v for k, v in (metadata or {}).items()}
        keys = (META_STATUS, META_CONTENT, META_DATASET, META_REASON, META_ALERTED)
        return cls(*(meta.get(key) or None for key in keys))

    def values(self) -> dict[str, str | None]:
        return {
            META_STATUS: self.status,
            META_CONTENT: self.content,
            META_DATASET: self.dataset,
            META_REASON: self.reason,
            META_ALERTED: self.alerted,
        }


@dataclass(frozen=True, slots=True)
class ZipBlob:
    """What the decisions need to know of a zip in the training container."""

    name: str  # blob name within the container, e.g. "en-US/acoustic/calls.zip"
    etag: str  # without quotes
    size: int
    last_modified: datetime | None
    metadata: Mapping[str, str] = field(default_factory=dict)
    state: BlobState = field(init=False, repr=False, compare=False)  # the app's record, read from the metadata once

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", BlobState.from_metadata(self.metadata))


def meta_value(text: str) -> str:
    """Metadata values travel in HTTP headers: printable ASCII, bounded."""
    cleaned = "".join(c if " " <= c <= "~" else "_" for c in text)
    return cleaned[:MAX_META_VALUE]


def ours(key: str) -> bool:
    return key.lower().startswith(META_PREFIX)


def write_state(
    blob: BlobClient, state: BlobState, *, etag: str | None = None, metadata: Mapping[str, str] | None = None
) -> bool:
    """Record our state on the blob, keeping every other metadata key. Returns False if it was not written because
    the blob is gone or now holds other content (that version is ingested on its own).

    Merge and write with If-Match on the version the caller read (`etag`, `metadata`), or on a fresh read. When
    the blob changed meanwhile (412), it is read again: a user's metadata written meanwhile is merged, never
    erased, and if the bytes changed (a re-upload) nothing is written, so a state never describes other content.
    A state that names no content (a stuck token on a zip without a state) is not written over a state recorded
    meanwhile. Under the autopilot lock the lock is checked first (shared.guard).
    """
    before_write()
    values = {key: meta_value(value) for key, value in state.values().items() if value}
    current = (etag, metadata) if etag and metadata is not None else None
    read_state = BlobState.from_metadata(metadata) if current is not None else None
    for attempt in range(STATE_WRITE_ATTEMPTS):
        if current is None:
            try:
                props = blob.get_blob_properties()
                if state.content and _content_of(blob, props) != state.content:
                    log.info("%s holds other content now; its state is left to that version", blob.blob_name)
                    return False
                if (
                    not state.content
                    and read_state is not None
                    and BlobState.from_metadata(props.metadata) != read_state
                ):
                    # a state naming no content cannot tell which version it is about: one recorded meanwhile (an
                    # ingest of a new version) is newer news, and is kept
                    log.info("%s got a state of its own meanwhile; it is kept", blob.blob_name)
                    return False
            except (ResourceNotFoundError, ResourceModifiedError):
                log.info("blob %s disappeared or changed before its state could be written", blob.blob_name)
                return False
            current = (props.etag, props.metadata or {})
        version, existing = current
        merged = {key: value for key, value in existing.items() if not ours(key)}
        merged.update(values)
        try:
            blob.set_blob_metadata(merged, etag=_quoted(version), match_condition=MatchConditions.IfNotModified)
            return True
        except ResourceModifiedError:
            log.info("blob %s changed while its state was written; reading it again (%d)", blob.blob_name, attempt + 1)
            current = None
        except ResourceNotFoundError:
            log.info("blob %s disappeared before its state could be written", blob.blob_name)
            return False
    raise StateConflict(f"blob {blob.blob_name} kept changing; its state was not written")


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _content_of(blob: BlobClient, props: Any) -> str:
    from shared.zipcheck import BlobRangeReader, content_id

    return content_id(BlobRangeReader(blob, props.size, props.etag))


class StateConflict(RuntimeError):
    """A blob changed under every attempt to record our state on it (retried by a later delivery or pass)."""


LIST_PAGE_SIZE = 5000  # List Blobs' maximum


def list_zips_at(container: ContainerClient, page_size: int = LIST_PAGE_SIZE) -> tuple[list[ZipBlob], datetime | None]:
    """Every .zip in the container (List Blobs, include=metadata), and the storage service's time of the listing
    (its `Date` header; None if it sent none): the clock the zips' last_modified come from, so a zip's age never
    depends on the app's clock.

    The listing's XML is parsed as it streams in, through the client's own pipeline (its credential, retries and
    logging policies), rather than by the SDK's models: those cost about 200 µs per blob, and reading a
    5,000-blob page whole peaks at ~40 MB, seconds and hundreds of MB for a container of tens of thousands of zips.
    Streamed: ~40 µs per blob, a few MB per page.
    """
    send = getattr(getattr(container, "_client", None), "_send_request", None)
    if send is None:  # not the SDK's ContainerClient as we know it: its public listing
        return _list_zips_sdk(container)
    zips: list[ZipBlob] = []
    dates: list[datetime] = []
    marker: str | None = None
    while True:
        params = {"restype": "container", "comp": "list", "include": "metadata", "maxresults": str(page_size)}
        if marker:
            params["marker"] = marker
        headers = {"x-ms-version": container.api_version, "Accept": "application/xml"}
        response = send(HttpRequest("GET", container.url, params=params, headers=headers), stream=True)
        try:
            if response.status_code != 200:
                response.read()
                raise HttpResponseError(response=response)
            _record_date(response.headers.get("Date"), dates)
            marker = _parse_blob_list(response.iter_bytes(), zips)
        finally:
            response.close()
        if not marker:
            return zips, (min(dates) if dates else None)


def _record_date(value: str | None, dates: list[datetime]) -> None:
    if value:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            moment = email.utils.parsedate_to_datetime(value)
            dates.append(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC))


def _list_zips_sdk(container: ContainerClient) -> tuple[list[ZipBlob], datetime | None]:
    dates: list[datetime] = []

    def hook(response: Any) -> None:
        _record_date(response.http_response.headers.get("Date"), dates)

    zips = [
        ZipBlob(
            name=item.name,
            etag=clean_etag(item.etag),
            size=item.size or 0,
            last_modified=item.last_modified,
            metadata=dict(item.metadata or {}),
        )
        for item in container.list_blobs(include=["metadata"], raw_response_hook=hook)
        if _is_zip(item.name)
    ]
    return zips, (min(dates) if dates else None)


def _is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


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
                metadata = element.find("Metadata")
                zips.append(
                    ZipBlob(
                        name=name,
                        etag=clean_etag(props.findtext("Etag") if props is not None else None),
                        size=int((props.findtext("Content-Length") if props is not None else None) or 0),
                        last_modified=email.utils.parsedate_to_datetime(modified) if modified else None,
                        metadata={item.tag: item.text or "" for item in metadata} if metadata is not None else {},
                    )
                )
            element.clear()
        elif element.tag == "NextMarker":
            marker = element.text or None
    return marker
