"""Validate a Custom Speech dataset zip by ranged reads, never downloading it.

`check_zip` reads the blob's tail (the last <= 65,557 bytes, which hold the End Of Central Directory record and,
for ZIP64, its locator), the ZIP64 end record if there is one, the central directory, and only then a few small
entries whole: the transcripts of an Acoustic dataset and the files of a Pronunciation dataset, found through
their local headers and inflated with zlib. What it reads and holds depends on the number of entries and on
those few small files, never on the archive's size: a 2 GB zip costs what a 2 MB zip with the same files costs.

Bad input never raises: it gives a ZipVerdict with ok=False and one full sentence per problem. Errors raised by
the reader (network, authorization, the blob changing under the ETag condition) propagate.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import posixpath
import re
import stat
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from azure.core import MatchConditions

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class KindLimits:
    """The documented service limits of one dataset kind; None where the docs set none."""

    max_zip_bytes: int  # the uploaded zip
    max_files: int | None = None  # files in it; directories and macOS metadata don't count
    max_file_bytes: int | None = None  # uncompressed size of any one file


# Sources, Microsoft Learn (Azure AI Speech, custom speech):
# [T] "Training and testing datasets",
#     https://learn.microsoft.com/azure/ai-services/speech-service/how-to-custom-speech-test-and-train:
#     audio + human-labeled transcript and audio-only zips: "2 GB or 10,000 files"; plain text: "Maximum file size
#     200 MB"; structured text (.md): "maximum file size is 200 MB"; pronunciation: "Maximum file size 1 MB (1 KB
#     for free tier)"; display format (.md): "maximum file size is 10 MB".
# [Q] "Speech service quotas and limits", Model customization, "dataset file size for data import",
#     https://learn.microsoft.com/azure/ai-services/speech-service/speech-services-quotas-and-limits:
#     acoustic 2 GB; language 200 MB (F0) / 1.5 GB (S0); pronunciation 1 KB (F0) / 1 MB (S0).
# This module doesn't know the resource's pricing tier, and must never reject what the service accepts, so it
# takes the larger (S0) values and reads "GB"/"MB" as GiB/MiB. LanguageMarkdown and OutputFormatting zips have
# no import limit of their own in [Q]; they get the language dataset's.
KIND_LIMITS: dict[str, KindLimits] = {
    "Acoustic": KindLimits(max_zip_bytes=2 * GiB, max_files=10_000),  # [T], [Q]
    "AudioFiles": KindLimits(max_zip_bytes=2 * GiB, max_files=10_000),  # [T]
    "Language": KindLimits(max_zip_bytes=1536 * MiB, max_file_bytes=200 * MiB),  # [Q] S0, [T]
    "LanguageMarkdown": KindLimits(max_zip_bytes=1536 * MiB, max_file_bytes=200 * MiB),  # [Q] S0, [T]
    "Pronunciation": KindLimits(max_zip_bytes=1 * MiB, max_file_bytes=1 * MiB),  # [Q] S0, [T]
    "OutputFormatting": KindLimits(max_zip_bytes=1536 * MiB, max_file_bytes=10 * MiB),  # [Q] S0, [T]
}

# Zip-bomb guard. Datasets hardly compress: deflate shrinks recorded PCM audio a little and text 3- to 5-fold. An
# entry (or the whole archive) inflating more than BOMB_RATIO-fold to more than BOMB_MIN_BYTES is therefore no
# dataset; nor is content adding up to more than BOMB_SIZE_FACTOR times the kind's zip limit.
BOMB_RATIO = 100
BOMB_MIN_BYTES = 10 * MiB
BOMB_SIZE_FACTOR = 4

# Reading budget. Entries inspected whole (transcripts, pronunciation files) must be at most MAX_INSPECT_BYTES
# compressed and MAX_INSPECT_TEXT inflated, and together at most INSPECT_BUDGET_BYTES compressed; larger ones get
# a warning, not a rejection. A central directory over MAX_CENTRAL_DIRECTORY_BYTES (10,000 entries take ~1 MB)
# is not read at all.
MAX_INSPECT_BYTES = 8 * MiB
MAX_INSPECT_TEXT = 64 * MiB
INSPECT_BUDGET_BYTES = 16 * MiB
MAX_CENTRAL_DIRECTORY_BYTES = 32 * MiB

EOCD_SEARCH_BYTES = 22 + 0xFFFF  # the record and the longest comment it may carry
LISTED = 10  # names quoted in one sentence before "and N more"
LISTED_LINES = 5

# Nested archives are rejected for every kind: the service doesn't unpack them, so their content would be
# silently missing from the dataset.
NESTED_ARCHIVES = (".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz")

_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL_ENTRY = struct.Struct("<4s6H3L5H2L")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD_SIG = b"PK\x06\x06"
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL_SIG = b"PK\x03\x04"
_ZIP64_EXTRA_ID = 0x0001
_MAX32 = 0xFFFFFFFF
_FLAG_ENCRYPTED = 0x0001
_FLAG_UTF8 = 0x0800
_STORED, _DEFLATED, _DEFLATE64 = 0, 8, 9
_UNIX_SYSTEMS = (3, 19)  # "version made by" hosts whose external attributes carry a Unix mode: Unix, OS X
_DRIVE = re.compile(r"[A-Za-z]:")

_SPLIT_ARCHIVE = "This is a split (multi-part) zip; upload the dataset as one single .zip file."
_NUL_NAME = "Entry names may not contain NUL characters: {}."
_ABSOLUTE_PATH = "Entries may not have absolute paths (starting with '/' or '\\'): {}."
_DRIVE_PATH = "Entries may not start with a drive letter such as 'C:': {}."
_PARENT_SEGMENT = "Entry paths may not contain '..' segments, which point outside the archive's folder: {}."
_SYMLINK = "Symbolic links are not allowed; put the real files in the zip instead: {}."
_ENCRYPTED = "Encrypted (password-protected) entries can't be read by the Speech service: {}."


class RangeReader(Protocol):
    """Random access to a blob of `size` bytes."""

    size: int

    def read(self, offset: int, length: int) -> bytes: ...


class BytesRangeReader:
    """A RangeReader over bytes in memory, for tests and benchmarks; counts what it serves."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.reads = 0
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        chunk = self.data[offset : offset + length]
        self.reads += 1
        self.bytes_read += len(chunk)
        return chunk


class BlobRangeReader:
    """A RangeReader over an azure.storage.blob BlobClient: one ranged GET per read.

    With an `etag`, every read carries If-Match, so a blob replaced during the check fails the read instead of
    mixing two versions. Counts reads and bytes for the logs and benchmarks.
    """

    def __init__(self, blob_client: BlobClient, size: int, etag: str | None = None) -> None:
        self.blob_client = blob_client
        self.size = size
        # Only with an ETag: the SDK passes an unconsumed etag=None on to the HTTP transport, which rejects it.
        self.conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        self.reads = 0
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        data = self.blob_client.download_blob(offset=offset, length=length, **self.conditions).readall()
        self.reads += 1
        self.bytes_read += len(data)
        return data


@dataclass(frozen=True)
class ZipVerdict:
    ok: bool
    kind: str  # the DatasetKind checked against
    reasons: tuple[str, ...]  # every reason to reject, each a full sentence naming the files concerned
    warnings: tuple[str, ...]  # doubtful but accepted
    file_count: int  # dataset files: directories and macOS metadata excluded
    uncompressed_bytes: int  # of those files
    audio_files: int  # .wav files among them
    content_id: str = ""  # see content_id(): the zip's identity, which follows its bytes, not its ETag


CONTENT_ID_PREFIX = "zip1:"


def content_id(reader: RangeReader) -> str:
    """The identity of the zip's content, from the bytes a check reads anyway (no download).

    A readable zip: a digest of its size and everything from the central directory to the end. The central
    directory holds every entry's name, CRC-32 and sizes, so the same files give the same identity however the
    blob is re-uploaded, and a blob whose metadata, tags or Content-Type change keeps it. Anything else (not a
    zip, truncated): a digest of its size and its tail. Errors raised by the reader propagate.
    """
    if reader.size == 0:
        return _identity(b"", 0)
    source = _Source(reader)
    try:
        return _read_archive(source, _Findings()).content_id
    except _Unreadable:
        return _identity(source.tail, source.size)


def _identity(data: bytes, size: int) -> str:
    digest = hashlib.sha256(b"%d:" % size + data).hexdigest()[:40]
    return CONTENT_ID_PREFIX + digest


def check_zip(reader: RangeReader, kind: str, *, limits: KindLimits | None = None) -> ZipVerdict:
    """Check the zip `reader` serves as a dataset of `kind` (a DatasetKind), reading as little as possible."""
    found = _Findings()
    spec = _KIND_SPECS.get(kind)
    if spec is None:
        found.reasons.append(f"Unknown dataset kind {kind!r}; the kinds are {', '.join(_KIND_SPECS)}.")
        return _verdict(kind, found, [])
    if reader.size == 0:
        found.reasons.append("The zip is empty (0 bytes).")
        return _verdict(kind, found, [], _identity(b"", 0))
    limits = limits or KIND_LIMITS[kind]
    _check_blob_size(reader.size, kind, limits, found)
    source = None
    try:
        source = _Source(reader)
        archive = _read_archive(source, found)
    except _Unreadable as exc:
        found.reasons.append(str(exc))
        identity = _identity(source.tail, source.size) if source is not None else ""
        return _verdict(kind, found, [], identity)
    identity = archive.content_id
    _check_entries(archive.entries, found)
    _check_layout(archive, found)
    _check_bomb(archive.entries, kind, limits, found)
    files = _dataset_files(archive.entries, found)
    if not files:
        found.reasons.append("The archive contains no files (directories and macOS metadata don't count).")
        return _verdict(kind, found, files, identity)
    _check_files(files, kind, spec, limits, found)
    spec.check_content(_TextReader(source, archive.cd_offset, found), files, found)
    return _verdict(kind, found, files, identity)


# --- reading the archive ---------------------------------------------------------------------------------------


class _Unreadable(Exception):
    """The archive, or one entry of it, can't be read; the message is a full sentence for the verdict."""


@dataclass
class _Findings:
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    """One central directory record, with ZIP64 sizes and offset applied."""

    name: str
    name_length: int  # bytes of the stored name, which the local header repeats
    flags: int
    method: int
    crc: int
    compressed: int
    uncompressed: int
    offset: int  # of the local header
    made_by: int
    external_attr: int

    @cached_property
    def path(self) -> str:
        return self.name.replace("\\", "/")

    @cached_property
    def basename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @cached_property
    def ext(self) -> str:
        return posixpath.splitext(self.basename)[1].lower()

    @property
    def is_dir(self) -> bool:
        return self.path.endswith("/")

    @property
    def is_symlink(self) -> bool:
        return self.made_by >> 8 in _UNIX_SYSTEMS and stat.S_ISLNK(self.external_attr >> 16)

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & _FLAG_ENCRYPTED)


@dataclass(frozen=True)
class _Archive:
    entries: list[_Entry]
    cd_offset: int  # where the central directory starts: all entry data lies before it
    content_id: str  # see content_id()


class _Source:
    """The reader with bounds and length checks; the blob's tail, read first, is served from memory."""

    def __init__(self, reader: RangeReader) -> None:
        self.reader = reader
        self.size = reader.size
        length = min(self.size, EOCD_SEARCH_BYTES)
        self.tail_start = self.size - length
        self.tail = self._fetch(self.tail_start, length)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise _Unreadable(
                f"The archive is truncated or corrupt: it points to bytes {offset:,}-{offset + length:,}, "
                f"but the blob has only {self.size:,}."
            )
        if offset >= self.tail_start:
            start = offset - self.tail_start
            return self.tail[start : start + length]
        return self._fetch(offset, length)

    def _fetch(self, offset: int, length: int) -> bytes:
        data = self.reader.read(offset, length)
        if len(data) != length:
            raise _Unreadable(
                f"Reading {length:,} bytes at byte {offset:,} returned {len(data):,}: the blob is shorter than its "
                f"declared {self.size:,} bytes (truncated, or replaced during the check)."
            )
        return data


def _read_archive(source: _Source, found: _Findings) -> _Archive:
    pos = _find_eocd(source.tail)
    if pos is None:
        raise _Unreadable("This is not a zip file, or it is truncated: it has no end-of-central-directory record.")
    eocd_offset = source.tail_start + pos
    _, disk, cd_disk, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(source.tail, pos)
    end = eocd_offset
    locator_offset = eocd_offset - _ZIP64_LOCATOR.size
    if locator_offset >= 0 and source.read(locator_offset, 4) == _ZIP64_LOCATOR_SIG:
        count, cd_size, cd_offset, end = _read_zip64_end(source, locator_offset)
    elif disk or cd_disk:
        raise _Unreadable(_SPLIT_ARCHIVE)
    if cd_offset + cd_size > end:
        raise _Unreadable(
            f"The archive is truncated or corrupt: its central directory should span bytes {cd_offset:,}-"
            f"{cd_offset + cd_size:,}, but its end record starts at byte {end:,}."
        )
    if cd_size > MAX_CENTRAL_DIRECTORY_BYTES:
        raise _Unreadable(
            f"The archive's central directory is {_size(cd_size)}, more than the {_size(MAX_CENTRAL_DIRECTORY_BYTES)} "
            "this check reads; a dataset within the service's limits never needs that much."
        )
    directory = source.read(cd_offset, cd_size)
    entries = _parse_central_directory(directory)
    rest = cd_offset + cd_size
    identity = _identity(directory + source.read(rest, source.size - rest), source.size)
    if len(entries) != count:
        found.warnings.append(
            f"The zip's end record announces {_count(count, 'entry', 'entries')} but its central directory holds "
            f"{len(entries):,}; the tool that made it may be faulty."
        )
    return _Archive(entries, cd_offset, identity)


def _find_eocd(tail: bytes) -> int | None:
    """Where in `tail` the last complete end-of-central-directory record starts, or None."""
    pos = tail.rfind(_EOCD_SIG)
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            comment_length = _EOCD.unpack_from(tail, pos)[-1]
            if pos + _EOCD.size + comment_length <= len(tail):
                return pos
        pos = tail.rfind(_EOCD_SIG, 0, pos)
    return None


def _read_zip64_end(source: _Source, locator_offset: int) -> tuple[int, int, int, int]:
    """(entry count, central directory size, its offset, the ZIP64 end record's offset)."""
    _, _, record_offset, _ = _ZIP64_LOCATOR.unpack(source.read(locator_offset, _ZIP64_LOCATOR.size))
    if record_offset + _ZIP64_EOCD.size > locator_offset:
        raise _Unreadable("The archive is corrupt: its ZIP64 locator points past itself.")
    record = _ZIP64_EOCD.unpack(source.read(record_offset, _ZIP64_EOCD.size))
    signature, _, _, _, disk, cd_disk, _, count, cd_size, cd_offset = record
    if signature != _ZIP64_EOCD_SIG:
        raise _Unreadable("The archive is truncated or corrupt: its ZIP64 end-of-central-directory record is missing.")
    if disk or cd_disk:
        raise _Unreadable(_SPLIT_ARCHIVE)
    return count, cd_size, cd_offset, record_offset


def _parse_central_directory(data: bytes) -> list[_Entry]:
    entries: list[_Entry] = []
    pos = 0
    while pos < len(data):
        entry, pos = _parse_entry(data, pos, len(entries) + 1)
        entries.append(entry)
    return entries


def _parse_entry(data: bytes, pos: int, number: int) -> tuple[_Entry, int]:
    """The central directory record at `pos` and where the next one starts."""
    corrupt = f"The archive is truncated or corrupt: central directory record {number:,} doesn't parse."
    if pos + _CENTRAL_ENTRY.size > len(data) or data[pos : pos + 4] != _CENTRAL_SIG:
        raise _Unreadable(corrupt)
    (
        _,
        made_by,
        _,
        flags,
        method,
        _,
        _,
        crc,
        compressed,
        uncompressed,
        name_length,
        extra_length,
        comment_length,
        _,
        _,
        external_attr,
        offset,
    ) = _CENTRAL_ENTRY.unpack_from(data, pos)
    name_start = pos + _CENTRAL_ENTRY.size
    extra_start = name_start + name_length
    end = extra_start + extra_length + comment_length
    if end > len(data):
        raise _Unreadable(corrupt)
    widened = _widen((uncompressed, compressed, offset), data[extra_start : extra_start + extra_length])
    if widened is None:
        raise _Unreadable(corrupt)
    encoding = "utf-8" if flags & _FLAG_UTF8 else "cp437"
    entry = _Entry(
        name=data[name_start:extra_start].decode(encoding, errors="replace"),
        name_length=name_length,
        flags=flags,
        method=method,
        crc=crc,
        compressed=widened[1],
        uncompressed=widened[0],
        offset=widened[2],
        made_by=made_by,
        external_attr=external_attr,
    )
    return entry, end


def _widen(values: tuple[int, int, int], extra: bytes) -> tuple[int, int, int] | None:
    """(uncompressed, compressed, offset) with each 0xFFFFFFFF taken, in order, from the ZIP64 extra field;
    None if that field lacks one."""
    wide = _zip64_values(extra)
    if sum(value == _MAX32 for value in values) > len(wide):
        return None
    taken = iter(wide)
    uncompressed, compressed, offset = (next(taken) if value == _MAX32 else value for value in values)
    return uncompressed, compressed, offset


def _zip64_values(extra: bytes) -> list[int]:
    """The 8-byte values of the ZIP64 extended-information field in `extra`, or [] if there is none."""
    pos = 0
    while pos + 4 <= len(extra):
        header_id, length = struct.unpack_from("<2H", extra, pos)
        if header_id == _ZIP64_EXTRA_ID:
            body = extra[pos + 4 : pos + 4 + length]
            return [value for (value,) in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
        pos += 4 + length
    return []


# --- rules for every kind ----------------------------------------------------------------------------------------


def _check_blob_size(size: int, kind: str, limits: KindLimits, found: _Findings) -> None:
    if size > limits.max_zip_bytes:
        found.reasons.append(
            f"The zip is {size:,} bytes ({_size(size)}); {kind} zips may be at most "
            f"{limits.max_zip_bytes:,} bytes ({_size(limits.max_zip_bytes)}). Split it into several smaller zips."
        )


def _check_entries(entries: list[_Entry], found: _Findings) -> None:
    """Unsafe names, symbolic links and encryption: one reason per kind of problem, naming the entries."""
    problems: dict[str, list[str]] = {}
    for entry in entries:
        for template in _entry_problems(entry):
            problems.setdefault(template, []).append(entry.name)
    for template, names in problems.items():
        found.reasons.append(template.format(_quoted(names)))


def _entry_problems(entry: _Entry) -> Iterator[str]:
    path = entry.path
    if "\x00" in path:
        yield _NUL_NAME
    if path.startswith("/"):
        yield _ABSOLUTE_PATH
    if _DRIVE.match(path):
        yield _DRIVE_PATH
    if ".." in path.split("/"):
        yield _PARENT_SEGMENT
    if entry.is_symlink:
        yield _SYMLINK
    if entry.encrypted:
        yield _ENCRYPTED


def _check_layout(archive: _Archive, found: _Findings) -> None:
    """Entries may neither overlap (a zip-bomb technique) nor run into the central directory (truncation)."""
    ordered = sorted(archive.entries, key=lambda entry: entry.offset)
    overlapping = [
        f"{entry.name!r} and {following.name!r}"
        for entry, following in itertools.pairwise(ordered)
        if _data_end(entry) > following.offset
    ]
    if overlapping:
        found.reasons.append(
            f"Entries overlap one another ({_listing(overlapping)}): the archive is corrupt or a zip bomb."
        )
    if ordered and _data_end(ordered[-1]) > archive.cd_offset:
        found.reasons.append(
            f"{ordered[-1].name!r} runs into the central directory: the archive is truncated or corrupt."
        )


def _data_end(entry: _Entry) -> int:
    """The least offset at which the entry's local header and data can end."""
    return entry.offset + _LOCAL_HEADER.size + entry.name_length + entry.compressed


def _check_bomb(entries: list[_Entry], kind: str, limits: KindLimits, found: _Findings) -> None:
    inflating = [entry for entry in entries if _inflates_like_bomb(entry.uncompressed, entry.compressed)]
    if inflating:
        listed = [f"{e.name!r} ({_size(e.compressed)} to {_size(e.uncompressed)})" for e in inflating]
        found.reasons.append(
            f"These entries inflate more than {BOMB_RATIO}-fold to over {_size(BOMB_MIN_BYTES)}, "
            f"like a zip bomb: {_listing(listed)}."
        )
    uncompressed = sum(entry.uncompressed for entry in entries)
    compressed = sum(entry.compressed for entry in entries)
    if not inflating and _inflates_like_bomb(uncompressed, compressed):
        found.reasons.append(
            f"The archive inflates from {_size(compressed)} to {_size(uncompressed)}, more than {BOMB_RATIO}-fold, "
            "like a zip bomb."
        )
    ceiling = BOMB_SIZE_FACTOR * limits.max_zip_bytes
    if uncompressed > ceiling:
        found.reasons.append(
            f"The archive's files add up to {_size(uncompressed)} uncompressed, over {BOMB_SIZE_FACTOR} times the "
            f"{_size(limits.max_zip_bytes)} limit for {kind} zips: it looks like a zip bomb."
        )


def _inflates_like_bomb(uncompressed: int, compressed: int) -> bool:
    return uncompressed > BOMB_MIN_BYTES and uncompressed > BOMB_RATIO * compressed


def _dataset_files(entries: list[_Entry], found: _Findings) -> list[_Entry]:
    """The entries that make up the dataset: not directories, and not macOS metadata, which is ignored with a
    warning."""
    files = [entry for entry in entries if not entry.is_dir]
    metadata = [entry.name for entry in files if _is_macos_metadata(entry)]
    if metadata:
        found.warnings.append(
            f"Ignored {_count(len(metadata), 'macOS metadata entry', 'macOS metadata entries')} "
            f"(__MACOSX/, .DS_Store, ._*): {_quoted(metadata)}. "
            "The service receives them too; remove them if it rejects the dataset."
        )
    return [entry for entry in files if not _is_macos_metadata(entry)]


def _is_macos_metadata(entry: _Entry) -> bool:
    return "__MACOSX" in entry.path.split("/") or entry.basename == ".DS_Store" or entry.basename.startswith("._")


def _check_files(files: list[_Entry], kind: str, spec: _KindSpec, limits: KindLimits, found: _Findings) -> None:
    if limits.max_files is not None and len(files) > limits.max_files:
        found.reasons.append(
            f"The archive holds {len(files):,} files; {kind} datasets may hold at most {limits.max_files:,}. "
            "Split it into several zips."
        )
    nested = [entry.name for entry in files if entry.ext in NESTED_ARCHIVES]
    if nested:
        found.reasons.append(
            f"The Speech service doesn't unpack archives inside the zip; put their files in the zip itself: "
            f"{_quoted(nested)}."
        )
    foreign = [entry.name for entry in files if entry.ext not in spec.extensions + NESTED_ARCHIVES]
    if foreign:
        found.reasons.append(
            f"{kind} datasets hold only {spec.description}; these files don't belong: {_quoted(foreign)}."
        )
    if limits.max_file_bytes is not None:
        _check_file_sizes(files, kind, limits.max_file_bytes, found)
    _warn_methods(files, found)
    _warn_duplicates(files, found)


def _check_file_sizes(files: list[_Entry], kind: str, max_file_bytes: int, found: _Findings) -> None:
    large = [f"{entry.name!r} ({_size(entry.uncompressed)})" for entry in files if entry.uncompressed > max_file_bytes]
    if large:
        found.reasons.append(
            f"{kind} dataset files may be at most {_size(max_file_bytes)} each, uncompressed; these are larger: "
            f"{_listing(large)}."
        )


def _warn_methods(files: list[_Entry], found: _Findings) -> None:
    unusual = [entry.name for entry in files if entry.method not in (_STORED, _DEFLATED, _DEFLATE64)]
    if unusual:
        found.warnings.append(
            "These files are compressed with a method other than deflate (such as bzip2, LZMA or Zstandard), "
            f"which the service may not read: {_quoted(unusual)}. Re-create the zip with standard settings."
        )


def _warn_duplicates(files: list[_Entry], found: _Findings) -> None:
    repeated = [path for path, count in Counter(entry.path for entry in files).items() if count > 1]
    if repeated:
        found.warnings.append(
            f"These names occur more than once in the zip; the service may keep only one of each: {_quoted(repeated)}."
        )


# --- rules by kind -----------------------------------------------------------------------------------------------


class _TextReader:
    """Reads small text entries whole (local header, then data, inflated and CRC-checked), within a budget."""

    def __init__(self, source: _Source, data_end: int, found: _Findings) -> None:
        self.source = source
        self.data_end = data_end
        self.found = found
        self.budget = INSPECT_BUDGET_BYTES

    def read(self, entry: _Entry) -> str | None:
        """The entry's text; None, with a warning or a reason saying why, when it isn't read."""
        if entry.encrypted:  # rejected already
            return None
        if entry.method not in (_STORED, _DEFLATED):
            self.found.warnings.append(
                f"Could not inspect {entry.name!r}: it is compressed with method {entry.method}, not stored or "
                "deflate, so its lines were not checked."
            )
            return None
        if entry.compressed > min(MAX_INSPECT_BYTES, self.budget) or entry.uncompressed > MAX_INSPECT_TEXT:
            self.found.warnings.append(
                f"{entry.name!r} is too large to inspect here ({_size(entry.compressed)} compressed, "
                f"{_size(entry.uncompressed)} uncompressed), so its lines were not checked."
            )
            return None
        self.budget -= entry.compressed
        try:
            data = _entry_data(self.source, entry, self.data_end)
        except _Unreadable as exc:
            self.found.reasons.append(str(exc))
            return None
        return _decode(data, entry.name, self.found)


def _entry_data(source: _Source, entry: _Entry, data_end: int) -> bytes:
    header = _LOCAL_HEADER.unpack(source.read(entry.offset, _LOCAL_HEADER.size))
    signature, name_length, extra_length = header[0], header[-2], header[-1]
    if signature != _LOCAL_SIG:
        raise _Unreadable(f"{entry.name!r} is corrupt: there is no local file header at byte {entry.offset:,}.")
    start = entry.offset + _LOCAL_HEADER.size + name_length + extra_length
    if start + entry.compressed > data_end:
        raise _Unreadable(f"{entry.name!r} is truncated or corrupt: its data runs into the central directory.")
    raw = source.read(start, entry.compressed)
    data = raw if entry.method == _STORED else _inflate(raw, entry)
    if len(data) != entry.uncompressed or zlib.crc32(data) != entry.crc:
        raise _Unreadable(f"{entry.name!r} is corrupt: its content doesn't match the size and CRC-32 recorded for it.")
    return data


def _inflate(raw: bytes, entry: _Entry) -> bytes:
    """At most one byte more than the recorded size, so a lying entry can't inflate without bound."""
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, entry.uncompressed + 1)
    except zlib.error as exc:
        raise _Unreadable(f"{entry.name!r} is corrupt: its deflate data is invalid ({exc}).") from exc


def _decode(data: bytes, name: str, found: _Findings) -> str:
    """The text, with warnings where the encoding isn't the UTF-8 with byte-order mark (BOM) the docs ask for.

    The docs require "UTF-8 BOM" for text datasets and for transcripts in languages other than English and
    Mandarin Chinese, and plain ASCII for en-US transcripts; pure ASCII without a BOM is therefore fine.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        found.warnings.append(f"{name!r} is UTF-16; the service expects UTF-8 (with BOM), so re-save it as UTF-8.")
        return data.decode("utf-16", errors="replace")
    has_bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8) :] if has_bom else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        found.warnings.append(
            f"{name!r} is not valid UTF-8 (first bad byte on line {line:,}); the service expects UTF-8 (with BOM), "
            "so re-save it as UTF-8."
        )
        return body.decode("utf-8", errors="replace")
    if not has_bom and not text.isascii():
        found.warnings.append(
            f"{name!r} has non-ASCII characters but no UTF-8 byte-order mark (BOM); the docs ask for UTF-8 with BOM."
        )
    return text


def _tab_lines(text: str) -> tuple[list[str], list[int]]:
    """The first column of each '<name><TAB><rest>' line, and the numbers of the other non-blank lines."""
    names: list[str] = []
    malformed: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        name, tab, _ = line.partition("\t")
        if tab and name.strip():
            names.append(name.strip())
        else:
            malformed.append(number)
    return names, malformed


class _AudioIndex:
    """Finds the .wav entries a transcript line names: by relative path (from the zip's root or from the
    transcript's folder) or by base name; exactly, else ignoring letter case."""

    def __init__(self, wavs: list[_Entry]) -> None:
        self.exact: dict[str, list[str]] = {}
        self.folded: dict[str, list[str]] = {}
        for wav in wavs:
            for key in {wav.path, wav.basename}:
                self.exact.setdefault(key, []).append(wav.path)
                self.folded.setdefault(key.casefold(), []).append(wav.path)

    def find(self, reference: str, folder: str) -> tuple[list[str], bool]:
        """The paths of the .wav files `reference` names, and whether the letter case matched exactly."""
        reference = reference.replace("\\", "/").removeprefix("./")
        keys = [reference, f"{folder}/{reference}"] if folder else [reference]
        for key in keys:
            if key in self.exact:
                return self.exact[key], True
        for key in keys:
            if key.casefold() in self.folded:
                return self.folded[key.casefold()], False
        return [], False


def _check_acoustic(texts: _TextReader, files: list[_Entry], found: _Findings) -> None:
    """WAV audio plus a transcript naming it. The docs want all transcriptions in "a single plain-text file (.txt
    or .tsv)"; with several, each is checked as a transcript and a warning says so."""
    wavs = _require_audio(files, found)
    transcripts = _with_ext(files, ".txt", ".tsv")
    if not transcripts:
        found.reasons.append(
            "The archive has no transcript: an Acoustic dataset needs a .txt (or .tsv) file with one "
            "'<audio file name><TAB><transcription>' line per .wav file."
        )
        return
    if len(transcripts) > 1:
        found.warnings.append(
            f"The docs expect a single transcript file, but the zip has {len(transcripts)}: "
            f"{_quoted([t.name for t in transcripts])}; each was checked as a transcript."
        )
    index = _AudioIndex(wavs)
    named: set[str] = set()
    complete = True
    read = [(transcript, texts.read(transcript)) for transcript in transcripts]
    if len(read) > 1:  # with several text files, one without a single '<file><TAB>' line is a note, not a transcript
        notes = [t for t, text in read if text is not None and not _tab_lines(text)[0]]
        if len(notes) < len(read):
            for note in notes:
                found.warnings.append(
                    f"{note.name!r} has no '<audio file><TAB><text>' line; it was not read as a "
                    "transcript (the service may reject extra files)."
                )
            read = [(t, text) for t, text in read if t not in notes]
    for transcript, text in read:
        if text is None:
            complete = False
        else:
            named |= _check_transcript(transcript, text, index, found)
    unnamed = [wav.name for wav in wavs if wav.path not in named]
    if complete and unnamed:
        found.warnings.append(
            f"No transcript line names {_count(len(unnamed), '.wav file')}; the service can't use audio without "
            "a transcription: "
            f"{_quoted(unnamed)}."
        )


def _check_transcript(transcript: _Entry, text: str, index: _AudioIndex, found: _Findings) -> set[str]:
    """Check one transcript's lines; return the paths of the .wav files it names."""
    references, malformed = _tab_lines(text)
    if not references and not malformed:
        found.reasons.append(f"The transcript {transcript.name!r} is empty.")
        return set()
    if malformed:
        found.reasons.append(
            f"The transcript {transcript.name!r} has {_count(len(malformed), 'line')} not of the form "
            f"'<audio file name><TAB><transcription>' (no TAB, or nothing before it): {_line_numbers(malformed)}."
        )
    named: set[str] = set()
    missing: list[str] = []
    case_only: list[str] = []
    folder = posixpath.dirname(transcript.path)
    for reference in dict.fromkeys(references):
        paths, exact = index.find(reference, folder)
        if not paths:
            missing.append(reference)
        elif not exact:
            case_only.append(reference)
        named.update(paths)
    if missing:
        found.reasons.append(
            f"The transcript {transcript.name!r} names {_count(len(missing), 'audio file')} missing from the zip: "
            f"{_quoted(missing)}."
        )
    if case_only:
        found.warnings.append(
            f"The transcript {transcript.name!r} names {_count(len(case_only), 'audio file')} whose letter case "
            f"differs from the zip's, which the service may not match: {_quoted(case_only)}."
        )
    return named


def _check_audio_files(texts: _TextReader, files: list[_Entry], found: _Findings) -> None:
    _require_audio(files, found)


def _check_language(texts: _TextReader, files: list[_Entry], found: _Findings) -> None:
    _require_text(files, (".txt",), found)


def _check_markdown(texts: _TextReader, files: list[_Entry], found: _Findings) -> None:
    _require_text(files, (".md",), found)


def _check_pronunciation(texts: _TextReader, files: list[_Entry], found: _Findings) -> None:
    """Lines are '<displayed form><TAB><spoken form>'; the docs say "should", so other lines only warn."""
    documents = _require_text(files, (".txt",), found)
    _warn_several(documents, "The docs describe a single pronunciation file", found)
    for document in documents:
        text = texts.read(document)
        malformed = _tab_lines(text)[1] if text is not None else []
        if malformed:
            found.warnings.append(
                f"{document.name!r} has {_count(len(malformed), 'line')} without a TAB between the word and its "
                f"pronunciation, which the service may skip: {_line_numbers(malformed)}."
            )


def _check_output_formatting(texts: _TextReader, files: list[_Entry], found: _Findings) -> None:
    """The docs: "The Display Format file should have an .md extension"; .txt is accepted with a warning."""
    documents = _require_text(files, (".md", ".txt"), found)
    plain = [document.name for document in documents if document.ext == ".txt"]
    if plain:
        found.warnings.append(f"The docs ask for a display-format file with an .md extension: {_quoted(plain)}.")
    _warn_several(documents, "The docs describe a single display-format file", found)


def _require_audio(files: list[_Entry], found: _Findings) -> list[_Entry]:
    wavs = _with_ext(files, ".wav")
    if not wavs:
        found.reasons.append("The archive holds no .wav audio files.")
    empty = [wav.name for wav in wavs if wav.uncompressed == 0]
    if empty:
        found.warnings.append(f"The zip has {_count(len(empty), 'empty (0-byte) .wav file')}: {_quoted(empty)}.")
    return wavs


def _require_text(files: list[_Entry], extensions: tuple[str, ...], found: _Findings) -> list[_Entry]:
    documents = _with_ext(files, *extensions)
    wanted = " or ".join(extensions)
    if not documents:
        found.reasons.append(f"The archive holds no {wanted} files.")
    elif not any(document.uncompressed for document in documents):
        found.reasons.append(f"All {wanted} files in the archive are empty.")
    return documents


def _warn_several(documents: list[_Entry], rule: str, found: _Findings) -> None:
    if len(documents) > 1:
        found.warnings.append(f"{rule}, but the zip has {len(documents)}: {_quoted([d.name for d in documents])}.")


def _with_ext(files: list[_Entry], *extensions: str) -> list[_Entry]:
    return [entry for entry in files if entry.ext in extensions]


@dataclass(frozen=True)
class _KindSpec:
    extensions: tuple[str, ...]  # of the files a dataset of the kind may hold
    description: str  # of those files, for messages
    check_content: Callable[[_TextReader, list[_Entry], _Findings], None]


_KIND_SPECS: dict[str, _KindSpec] = {
    "Acoustic": _KindSpec((".wav", ".txt", ".tsv"), ".wav audio files and a .txt or .tsv transcript", _check_acoustic),
    "AudioFiles": _KindSpec((".wav",), ".wav audio files", _check_audio_files),
    "Language": _KindSpec((".txt",), ".txt plain-text files", _check_language),
    "LanguageMarkdown": _KindSpec((".md",), ".md structured-text files", _check_markdown),
    "Pronunciation": _KindSpec((".txt",), ".txt pronunciation files", _check_pronunciation),
    "OutputFormatting": _KindSpec((".md", ".txt"), ".md display-format files", _check_output_formatting),
}


# --- the verdict and its sentences -------------------------------------------------------------------------------


def _verdict(kind: str, found: _Findings, files: list[_Entry], identity: str = "") -> ZipVerdict:
    return ZipVerdict(
        ok=not found.reasons,
        kind=kind,
        reasons=tuple(found.reasons),
        warnings=tuple(found.warnings),
        file_count=len(files),
        uncompressed_bytes=sum(entry.uncompressed for entry in files),
        audio_files=len(_with_ext(files, ".wav")),
        content_id=identity,
    )


def _quoted(names: Sequence[str]) -> str:
    return _listing([repr(name) for name in names])


def _listing(items: Sequence[str], limit: int = LISTED) -> str:
    """'a, b, c' or, past `limit` items, 'a, b, c and 7 more'."""
    shown = ", ".join(items[:limit])
    more = len(items) - limit
    return f"{shown} and {more:,} more" if more > 0 else shown


def _count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 line', '3 lines'."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def _line_numbers(numbers: Sequence[int]) -> str:
    """'line 4', 'lines 3, 5, 8, 9, 12 and 2 more'."""
    return ("line " if len(numbers) == 1 else "lines ") + _listing([str(n) for n in numbers], LISTED_LINES)


def _size(count: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= scale:
            return f"{count / scale:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{count:,} bytes"
