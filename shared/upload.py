"""Block upload engine: a zip that the Speech service cannot download becomes a dataset through Datasets_Create
(without contentUrl), Datasets_UploadBlock, Datasets_GetBlocks and Datasets_CommitBlocks.

The source is anything with `size` and ranged `read(offset, length)` (shared.zipcheck.RangeReader): a local file
(FileRangeReader, the CLI) or a blob read by ranged GETs under its ETag (BlobRangeReader, DATASET_UPLOAD=blocks).
It is cut into blocks of at most 8 MiB, read one after the other and sent `parallel` at a time (default 4), then
committed in order. Memory is bounded by the blocks in flight (`parallel` x `block_size`), never by the file.

- Retries: each block is a PUT through the Speech client, so it is retried on 408/429/5xx with Retry-After like
  every other call; a block whose last attempt got no answer is settled with Datasets_GetBlocks (it may have
  landed). The commit is a POST: an ambiguous or transient failure is settled by GetBlocks before committing again.
- Resumable: the dataset carries customProperties managedBy, sourcePath, sourceContent (the zip's content_id) and
  blocks=uploading until its blocks are committed. Run again with the same content, the engine finds it, asks
  GetBlocks what the service already holds, and sends only the blocks it lacks.
- A block is never committed from other bytes: its id is its index and a digest of its bytes
  (`{index:06d}-{sha256[:40]}`, Base64, one length for all), so a block of a changed file has another id and is
  sent again; before the commit the source's content identity is checked once more.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from shared import managed
from shared.ingest import (
    KIND_FOLDERS,
    LOCALE_PATTERN,
    MAX_SOURCE_PATH,
    Target,
    canonical_locale,
    locale_reasons,
    odata_string,
)
from shared.speech import MAX_BLOCK_BYTES, Dataset, SpeechClient, SpeechError
from shared.zipcheck import BlobRangeReader, RangeReader, check_zip, content_id

log = logging.getLogger("autopilot.upload")

BLOCK_BYTES = MAX_BLOCK_BYTES  # the 2025-10-15 limit: 8 MiB
PARALLEL = 4
MAX_PARALLEL = 16
MAX_BLOCKS = 10_000  # keeps the commit body under 1 MB (Azure block blobs allow 50,000 blocks)
DIGEST_CHARS = 40
COMMIT_ATTEMPTS = 3
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


class UploadError(SpeechError):
    """The upload did not finish; what is on the service is kept, and running it again resumes it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ZipRefused(ValueError):
    """The zip failed validation; nothing was created."""

    def __init__(self, path: str, kind: str, reasons: Iterable[str], warnings: Iterable[str] = ()) -> None:
        self.path, self.kind = path, kind
        self.reasons, self.warnings = tuple(reasons), tuple(warnings)
        first = self.reasons[0] if self.reasons else "rejected"
        more = f" (and {len(self.reasons) - 1} more problem(s))" if len(self.reasons) > 1 else ""
        super().__init__(f"{path} is not a valid {kind} dataset: {first}{more}")


@dataclass
class UploadResult:
    dataset: Dataset
    source: str  # sourcePath
    content_id: str
    size: int
    blocks: int  # in the committed list
    sent: int  # blocks this run sent
    reused: int  # blocks the service already held (a resumed upload)
    bytes_sent: int
    created: bool  # this run created the dataset
    resumed: bool  # this run continued an interrupted upload
    already_done: bool  # the same content was uploaded and committed before: nothing sent
    seconds: float
    warnings: tuple[str, ...] = field(default_factory=tuple)


# -- sources -----------------------------------------------------------------------------------------------------


class FileRangeReader:
    """A RangeReader over a local file (positional reads; no shared file offset between threads). `changed()`
    tells whether the file was modified since it was opened."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        stat = os.fstat(self._fd)
        self._stamp = (stat.st_size, stat.st_mtime_ns)
        self.size = stat.st_size
        self.reads = 0
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            chunk = os.pread(self._fd, length, offset)
            if not chunk:
                break
            parts.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.reads += 1
        self.bytes_read += len(data)
        return data

    def changed(self) -> bool:
        stat = os.stat(self.path)
        return (stat.st_size, stat.st_mtime_ns) != self._stamp

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> FileRangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- pure helpers ------------------------------------------------------------------------------------------------


def block_id(index: int, data: bytes) -> str:
    """The block's id: its index and a digest of its bytes, Base64 (64 characters for every block)."""
    digest = hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]
    return base64.b64encode(f"{index:06d}-{digest}".encode()).decode()


def block_ranges(size: int, block_size: int) -> list[tuple[int, int]]:
    """(offset, length) of each block."""
    return [(offset, min(block_size, size - offset)) for offset in range(0, size, block_size)]


def identity(custom_properties: Mapping[str, str]) -> dict[str, str]:
    """The properties that say which upload a dataset is: managedBy, sourcePath, sourceEtag, sourceContent."""
    keys = (managed.MANAGED, managed.SOURCE, managed.SOURCE_ETAG, managed.SOURCE_CONTENT)
    return {key: custom_properties[key] for key in keys if key in custom_properties}


def find_upload(datasets: Iterable[Dataset], wanted: Mapping[str, str]) -> Dataset | None:
    """The dataset already made (or being made) from this content: a committed one first, else the newest
    unfinished one."""
    same = [d for d in datasets if all(d.custom_properties.get(k) == v for k, v in wanted.items())]
    done = [d for d in same if not managed.upload_incomplete(d)]
    candidates = done or same
    return max(candidates, key=lambda d: (d.created is not None, d.created, d.id), default=None)


def older_uploads(datasets: Iterable[Dataset], source: str, newer: Dataset) -> list[Dataset]:
    """Datasets of the same sourcePath that `newer` supersedes (created before it, not marked yet)."""
    return [
        d
        for d in datasets
        if managed.is_managed(d)
        and d.id != newer.id
        and d.custom_properties.get(managed.SOURCE) == source
        and not d.custom_properties.get(managed.SUPERSEDED_BY)
        and (d.created is None or newer.created is None or d.created <= newer.created)
    ]


# -- the engine --------------------------------------------------------------------------------------------------


def upload_dataset(
    speech: SpeechClient,
    reader: RangeReader,
    *,
    content: str,
    display_name: str,
    locale: str,
    kind: str,
    custom_properties: Mapping[str, str],
    description: str | None = None,
    block_size: int | None = None,
    parallel: int | None = None,
    progress: Progress | None = None,
    supersede_older: bool = False,
) -> UploadResult:
    """Create (or find and resume) the dataset of this content and upload `reader` into it in blocks.

    `custom_properties` must hold managedBy and sourcePath (sourceEtag too for a blob); the engine adds
    sourceContent=`content` and the blocks marker. `supersede_older` marks the older datasets of the same
    sourcePath with supersededBy once this one is created (the CLI; the blob ingest marks them itself).
    """
    block_size = BLOCK_BYTES if block_size is None else block_size
    parallel = PARALLEL if parallel is None else parallel
    if not 0 < block_size <= MAX_BLOCK_BYTES:
        raise ValueError(f"block size must be 1 to {MAX_BLOCK_BYTES} bytes (8 MiB), not {block_size}")
    if not 1 <= parallel <= MAX_PARALLEL:
        raise ValueError(f"parallel uploads must be 1 to {MAX_PARALLEL}, not {parallel}")
    ranges = block_ranges(reader.size, block_size)
    if not ranges or len(ranges) > MAX_BLOCKS:
        raise ValueError(f"{reader.size} bytes make {len(ranges)} blocks of {block_size}; 1 to {MAX_BLOCKS} fit")
    source = custom_properties.get(managed.SOURCE, "")
    props = managed.with_properties(
        custom_properties,
        **{
            managed.MANAGED: managed.MANAGED_BY,
            managed.SOURCE_CONTENT: content,
            managed.BLOCKS: managed.BLOCKS_UPLOADING,
        },
    )
    wanted = identity(props)
    started = time.monotonic()

    dataset, created = _find_or_create(speech, wanted, display_name, locale, kind, description, props)
    result = UploadResult(
        dataset=dataset,
        source=source,
        content_id=content,
        size=reader.size,
        blocks=len(ranges),
        sent=0,
        reused=0,
        bytes_sent=0,
        created=created,
        resumed=not created,
        already_done=False,
        seconds=0.0,
    )
    if created and supersede_older:
        _supersede(speech, source, dataset, locale, kind)
    if not managed.upload_incomplete(dataset):
        log.info("%s (%s) is dataset %s already", source, content, dataset.id)
        result.resumed, result.already_done = False, True
        if progress:
            progress(reader.size, reader.size)
        return _finish(result, started)
    held = speech.get_blocks(dataset.id) if not created else None
    if held is not None and held.committed:  # committed by an earlier run that stopped before marking it
        log.info("dataset %s: its blocks were committed by an earlier run; marking it", dataset.id)
        result.dataset = _mark_committed(speech, dataset)
        result.resumed, result.already_done = False, True
        return _finish(result, started)
    have = dict(held.uncommitted) if held is not None else {}
    log.info(
        "uploading %s (%d bytes) to dataset %s: %d block(s) of up to %d bytes, %d in parallel%s",
        source,
        reader.size,
        dataset.id,
        len(ranges),
        block_size,
        parallel,
        f", resuming ({len(have)} block(s) on the service)" if not created else "",
    )
    ids = _send_blocks(speech, dataset.id, reader, ranges, have, parallel, progress, result)
    if content_id(reader) != content or getattr(reader, "changed", lambda: False)():
        raise UploadError(
            f"the source of {source} changed during the upload; nothing was committed: run the upload again"
        )
    _commit(speech, dataset.id, ids)
    result.dataset = _mark_committed(speech, dataset)
    log.info(
        "dataset %s: %d block(s) committed (%d sent, %d already there) from %s",
        dataset.id,
        len(ids),
        result.sent,
        result.reused,
        source,
    )
    return _finish(result, started)


def _finish(result: UploadResult, started: float) -> UploadResult:
    result.seconds = time.monotonic() - started
    return result


def _find_or_create(
    speech: SpeechClient,
    wanted: Mapping[str, str],
    display_name: str,
    locale: str,
    kind: str,
    description: str | None,
    props: Mapping[str, str],
) -> tuple[Dataset, bool]:
    def lookup() -> Dataset | None:
        return find_upload(speech.list_datasets(filter=_same_source(locale, kind, description)), wanted)

    existing = lookup()
    if existing is not None:
        return existing, False
    try:
        dataset = speech.create_dataset(
            display_name=display_name, locale=locale, kind=kind, description=description, custom_properties=props
        )
    except SpeechError as exc:
        if not exc.ambiguous:
            raise
        existing = lookup()  # the create may have landed: its lookup settles it
        if existing is None:
            raise
        return existing, False
    log.info("created dataset %s (%s, %s) for %s", dataset.id, kind, locale, wanted.get(managed.SOURCE))
    return dataset, True


def _same_source(locale: str, kind: str, description: str | None) -> str:
    """A filter the service answers with the few datasets of one source: the description names the source (and,
    for a dropped zip, its content), so the lookup costs a call or two whatever the resource holds."""
    if description:
        return f"description eq {odata_string(description)}"
    return f"locale eq {odata_string(locale)} and kind eq {odata_string(kind)}"


def _supersede(speech: SpeechClient, source: str, dataset: Dataset, locale: str, kind: str) -> None:
    listed = speech.list_datasets(filter=_same_source(locale, kind, dataset.raw.get("description")))
    for old in older_uploads(listed, source, dataset):
        props = managed.with_properties(old.custom_properties, **{managed.SUPERSEDED_BY: dataset.id})
        speech.update_dataset(old.id, custom_properties=props)
        log.info("dataset %s (older upload of %s) superseded by %s", old.id, source, dataset.id)


def _send_blocks(
    speech: SpeechClient,
    dataset_id: str,
    reader: RangeReader,
    ranges: list[tuple[int, int]],
    have: Mapping[str, int],
    parallel: int,
    progress: Progress | None,
    result: UploadResult,
) -> list[str]:
    """Read the blocks in order (this thread), send the missing ones `parallel` at a time; their ids in order.
    A block is read only once a slot is free, so at most `parallel` blocks are in memory."""
    slots = threading.Semaphore(parallel)
    lock = threading.Lock()
    failed = threading.Event()
    done_bytes = 0
    total = reader.size

    def advance(count: int, sent: bool) -> None:
        nonlocal done_bytes
        with lock:
            done_bytes += count
            if sent:
                result.sent += 1
                result.bytes_sent += count
            else:
                result.reused += 1
            if progress:
                progress(done_bytes, total)

    def send(block: str, data: bytes) -> None:
        try:
            _put_block(speech, dataset_id, block, data)
            advance(len(data), sent=True)
        except BaseException:
            failed.set()
            raise
        finally:
            slots.release()

    ids: list[str] = []
    futures: list[Future[Any]] = []
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="upload") as pool:
        try:
            for index, (offset, length) in enumerate(ranges):
                slots.acquire()
                if failed.is_set():  # a block failed: read no more, let the others finish
                    slots.release()
                    break
                try:
                    data = reader.read(offset, length)
                except BaseException:
                    slots.release()
                    raise
                if len(data) != length:
                    slots.release()
                    raise UploadError(
                        f"reading {length} bytes at {offset} returned {len(data)}: the source is shorter than its "
                        f"{reader.size} bytes (changed during the upload?); run the upload again"
                    )
                block = block_id(index, data)
                ids.append(block)
                if have.get(block) == length:
                    slots.release()
                    advance(length, sent=False)
                    continue
                # each block in a copy of this context: under a lock, its PUT checks the lock too
                futures.append(pool.submit(contextvars.copy_context().run, send, block, data))
                del data
        except BaseException:
            failed.set()
            for future in futures:
                future.cancel()
            raise
    # the pool has finished every block it started
    for future in futures:
        if not future.cancelled() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]
    if len(ids) != len(ranges):
        raise UploadError("the upload stopped before every block was read; run it again")
    return ids


def _put_block(speech: SpeechClient, dataset_id: str, block: str, data: bytes) -> None:
    try:
        speech.upload_block(dataset_id, block, data)
    except SpeechError as exc:
        if not (exc.transient or exc.ambiguous):
            raise
        # The client retried already. Its last attempt may still have landed: the service's block list says.
        held = dict(speech.get_blocks(dataset_id).uncommitted)
        if held.get(block) != len(data):
            raise
        log.info("block %s of dataset %s landed despite %s", block[:12], dataset_id, exc.status or "no answer")


def _commit(speech: SpeechClient, dataset_id: str, ids: list[str]) -> None:
    """Commit. After a failure, GetBlocks tells whether a commit landed all the same (an answer lost, a slow
    first attempt); if none did and the failure was transient or ambiguous, commit again."""
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            speech.commit_blocks(dataset_id, ids)
            return
        except SpeechError as exc:
            held = speech.get_blocks(dataset_id)
            if [name for name, _ in held.committed] == ids:
                log.info("the commit of dataset %s landed despite %s", dataset_id, exc.status or "no answer")
                return
            if not (exc.transient or exc.ambiguous) or attempt + 1 == COMMIT_ATTEMPTS:
                raise
            time.sleep(min(10.0, 0.5 * 2**attempt))


def _mark_committed(speech: SpeechClient, dataset: Dataset) -> Dataset:
    props = managed.with_properties(dataset.custom_properties, **{managed.BLOCKS: managed.BLOCKS_COMMITTED})
    return speech.update_dataset(dataset.id, custom_properties=props)


# -- the two users: a dropped blob (DATASET_UPLOAD=blocks) and a local file (the CLI) -----------------------------


def dataset_from_blob(speech: SpeechClient, blob: Any, size: int, etag: str, request: Mapping[str, Any]) -> Dataset:
    """The ingest's blocks path: stream the (validated) blob to a new dataset with the ingest's Datasets_Create
    fields (`request`: shared.ingest.dataset_request), reading it by ranged GETs under its ETag. An interrupted
    upload of this blob version is resumed by the next delivery or sweep."""
    reader = BlobRangeReader(blob, size, f'"{etag.strip(chr(34))}"')  # If-Match on every read: this version only
    content = content_id(reader)
    step = max(size // 4, 1)
    marks = {"next": step}

    def progress(done: int, total: int) -> None:
        if done >= marks["next"] or done == total:
            log.info("%s: %d of %d bytes uploaded", blob.blob_name, done, total)
            marks["next"] = done + step

    result = upload_dataset(speech, reader, content=content, progress=progress, **dict(request))
    return result.dataset


def kind_of(name: str) -> tuple[str, str]:
    """(kind folder, DatasetKind) for a kind folder (`acoustic`) or a DatasetKind (`Acoustic`), any case."""
    lowered = name.strip().lower()
    for folder, kind in KIND_FOLDERS.items():
        if lowered in (folder, kind.lower()):
            return folder, kind
    raise ValueError(f"unknown kind {name!r}; use one of: {', '.join(KIND_FOLDERS)}")


def upload_file(
    speech: SpeechClient,
    path: str | os.PathLike[str],
    *,
    locale: str,
    kind: str,
    name: str | None = None,
    block_size: int | None = None,
    parallel: int | None = None,
    progress: Progress | None = None,
) -> UploadResult:
    """Validate a local zip like a dropped one, then upload it as `upload:{locale}/{kind folder}/{name}.zip`.
    Raises ZipRefused (nothing created), ValueError (bad arguments), OSError (the file), SpeechError."""
    folder, dataset_kind = kind_of(kind)
    if not LOCALE_PATTERN.match(locale.strip()):
        raise ValueError(f"'{locale}' is not a locale such as en-US (language-REGION)")
    locale = canonical_locale(locale.strip())
    file = Path(path)
    name = file.name[: -len(".zip")] if name is None and file.name.lower().endswith(".zip") else (name or file.stem)
    if not name or any(c in name for c in "/\\") or name.strip() != name:
        raise ValueError(f"the name {name!r} must be a plain file name (no folders, no surrounding spaces)")
    source = managed.upload_source(locale, folder, name)
    if len(source) > MAX_SOURCE_PATH:
        raise ValueError(f"the source path {source!r} is {len(source)} characters; at most {MAX_SOURCE_PATH} fit")
    reasons = locale_reasons(Target(locale, dataset_kind, name), speech.dataset_locales())
    if reasons:
        raise ValueError(reasons[0])
    with FileRangeReader(file) as reader:
        verdict = check_zip(reader, dataset_kind)
        if not verdict.ok:
            raise ZipRefused(str(file), dataset_kind, verdict.reasons, verdict.warnings)
        result = upload_dataset(
            speech,
            reader,
            content=verdict.content_id,
            display_name=f"{name} ({dataset_kind}, {locale})",
            locale=locale,
            kind=dataset_kind,
            description=f"Uploaded in blocks by {managed.MANAGED_BY} as {source}.",
            custom_properties=managed.managed_properties(**{managed.SOURCE: source}),
            block_size=block_size,
            parallel=parallel,
            progress=progress,
            supersede_older=True,
        )
    result.warnings = verdict.warnings
    return result
