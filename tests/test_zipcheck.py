"""shared.zipcheck: zips built in memory with zipfile (real 16 kHz mono PCM WAV from `wave`), checked through
range readers that count what the check reads."""

from __future__ import annotations

import io
import random
import stat
import struct
import wave
import zipfile

import pytest
from azure.core import MatchConditions

from local import samples
from shared import zipcheck
from shared.zipcheck import (
    KIND_LIMITS,
    BlobRangeReader,
    BytesRangeReader,
    GiB,
    KindLimits,
    MiB,
    ZipVerdict,
    check_zip,
)

Files = dict[str, bytes | str]


def wav(frames: int = 800, seed: int = 0) -> bytes:
    """A 16 kHz mono 16-bit PCM WAV file of noise."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16000)
        audio.writeframes(random.Random(seed).randbytes(frames * 2))
    return buffer.getvalue()


def make_zip(files: Files, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def acoustic_files(count: int = 3, frames: int = 800) -> Files:
    transcript = "".join(f"utt{i:04}.wav\tsentence number {i}\n" for i in range(count))
    return {"transcript.txt": transcript} | {f"audio/utt{i:04}.wav": wav(frames, i) for i in range(count)}


def check(data: bytes, kind: str = "Acoustic", **kwargs) -> ZipVerdict:
    return check_zip(BytesRangeReader(data), kind, **kwargs)


def only_reason(verdict: ZipVerdict) -> str:
    assert not verdict.ok
    assert len(verdict.reasons) == 1, verdict.reasons
    return verdict.reasons[0]


def with_zip64_end_records(data: bytes) -> bytes:
    """The same archive, ending in a ZIP64 end record and locator, with the classic end record's fields maxed."""
    eocd = data.rindex(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack_from("<H2L", data, eocd + 10)
    zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd, 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:eocd] + zip64_end + locator + end


class ShiftedBytesIO(io.BytesIO):
    """Written as if `base` bytes preceded it: zipfile records every offset `base` bytes further on."""

    def __init__(self, base: int) -> None:
        super().__init__()
        self.base = base

    def tell(self) -> int:
        return super().tell() + self.base

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        return super().seek(pos - self.base if whence == io.SEEK_SET else pos, whence) + self.base


class VirtualBlobReader:
    """A blob of `size` bytes: zeros, never allocated, then `tail`."""

    def __init__(self, tail: bytes, size: int) -> None:
        self.tail = tail
        self.size = size
        self.start = size - len(tail)
        self.reads = 0
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        self.bytes_read += length
        zeros = bytes(max(0, min(self.start - offset, length)))
        return zeros + self.tail[max(0, offset - self.start) : offset - self.start + length]


class WriteOnlyStream(io.RawIOBase):
    """Not seekable, so zipfile writes sizes and CRC in data descriptors after the data (flag bit 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        self.data += chunk
        return len(chunk)


VALID: dict[str, Files] = {
    "Acoustic": acoustic_files(),
    "AudioFiles": {"clips/a.wav": wav(seed=1), "clips/b.wav": wav(seed=2)},
    "Language": {"corpus.txt": "turn the lights on\nturn the lights off\n".encode("utf-8-sig")},
    "LanguageMarkdown": {"classes.md": "@ list pet =\n- cat\n- dog\n\n#Sentences\n- my {@pet} sleeps\n"},
    "Pronunciation": {"pronunciation.txt": "3CPO\tthree c p o\nCNTK\tc n t k\n"},
    "OutputFormatting": {"format.md": "#rewrite\ncovered 19\tCOVID-19\n"},
}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_valid_zip_of_each_kind_passes(kind: str) -> None:
    files = VALID[kind]
    verdict = check(make_zip(files), kind)
    assert verdict.ok, verdict.reasons
    assert verdict.warnings == ()
    assert verdict.kind == kind
    assert verdict.file_count == len(files)
    assert verdict.audio_files == sum(name.endswith(".wav") for name in files)
    assert verdict.uncompressed_bytes == sum(len(c.encode() if isinstance(c, str) else c) for c in files.values())


def test_the_limits_are_the_documented_ones() -> None:
    assert KIND_LIMITS == {
        "Acoustic": KindLimits(max_zip_bytes=2 * GiB, max_files=10_000),
        "AudioFiles": KindLimits(max_zip_bytes=2 * GiB, max_files=10_000),
        "Language": KindLimits(max_zip_bytes=1536 * MiB, max_file_bytes=200 * MiB),
        "LanguageMarkdown": KindLimits(max_zip_bytes=1536 * MiB, max_file_bytes=200 * MiB),
        "Pronunciation": KindLimits(max_zip_bytes=1 * MiB, max_file_bytes=1 * MiB),
        "OutputFormatting": KindLimits(max_zip_bytes=1536 * MiB, max_file_bytes=10 * MiB),
    }


def test_an_unknown_kind_is_a_reason_not_an_error() -> None:
    assert "Unknown dataset kind 'Video'" in only_reason(check(make_zip(acoustic_files()), "Video"))


# --- not a zip, truncated, empty ---------------------------------------------------------------------------------


def test_zero_bytes() -> None:
    assert only_reason(check(b"")) == "The zip is empty (0 bytes)."


def test_not_a_zip() -> None:
    assert "not a zip file" in only_reason(check(b"RIFF....WAVEfmt " * 100))


@pytest.mark.parametrize("cut", [1, 10, 22, 1000])
def test_cutting_the_end_off_is_reported(cut: int) -> None:
    data = make_zip(acoustic_files())
    assert "truncated" in only_reason(check(data[:-cut]))


def test_cutting_out_the_middle_is_reported() -> None:
    data = make_zip(acoustic_files())
    assert "truncated or corrupt" in only_reason(check(data[:1000] + data[3000:]))


def test_a_blob_shorter_than_its_declared_size_is_a_reason_not_an_error() -> None:
    reader = BytesRangeReader(make_zip(acoustic_files()))
    reader.size += 100
    assert "shorter than its declared" in only_reason(check_zip(reader, "Acoustic"))


def test_a_corrupt_central_directory_is_reported() -> None:
    data = bytearray(make_zip(acoustic_files()))
    data[data.rindex(b"PK\x01\x02")] = ord("X")
    assert "central directory record 4 doesn't parse" in only_reason(check(bytes(data)))


@pytest.mark.parametrize("files", [{}, {"audio/": b"", "audio/more/": b""}])
def test_an_archive_without_files_is_empty(files: Files) -> None:
    assert "contains no files" in only_reason(check(make_zip(files)))


# --- unsafe entries ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../evil.wav", "'..' segments"),
        ("audio/../../evil.wav", "'..' segments"),
        ("/etc/evil.wav", "absolute paths"),
        ("\\evil.wav", "absolute paths"),
        ("C:/evil.wav", "drive letter"),
        ("d:evil.wav", "drive letter"),
    ],
)
def test_unsafe_paths_are_rejected_by_name(name: str, words: str) -> None:
    files = acoustic_files() | {name: wav()}
    reason = only_reason(check(make_zip(files)))
    assert words in reason
    assert repr(name) in reason


def test_a_nul_in_a_name_is_rejected() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in acoustic_files().items():
            archive.writestr(name, content)
        info = zipfile.ZipInfo("placeholder")
        info.filename = "audio/bad\x00name.wav"  # ZipInfo() itself cuts names at NUL
        archive.writestr(info, wav())
    reason = only_reason(check(buffer.getvalue()))
    assert "NUL" in reason
    assert repr("audio/bad\x00name.wav") in reason


def test_a_symlink_is_rejected() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in acoustic_files().items():
            archive.writestr(name, content)
        link = zipfile.ZipInfo("audio/link.wav")
        link.create_system = 3  # Unix
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "utt0000.wav")
    reason = only_reason(check(buffer.getvalue()))
    assert "Symbolic links" in reason
    assert "'audio/link.wav'" in reason


def test_an_encrypted_entry_is_rejected() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in acoustic_files().items():
            archive.writestr(name, content)
        archive.getinfo("audio/utt0001.wav").flag_bits |= 0x1  # written to the central directory on close
    reason = only_reason(check(buffer.getvalue()))
    assert "Encrypted" in reason
    assert "'audio/utt0001.wav'" in reason


@pytest.mark.parametrize(
    ("kind", "files"),
    [("Acoustic", acoustic_files()), ("Language", VALID["Language"]), ("AudioFiles", VALID["AudioFiles"])],
)
@pytest.mark.parametrize("nested", ["more/inner.zip", "inner.tar.gz", "INNER.7Z"])
def test_nested_archives_are_rejected_for_every_kind(kind: str, files: Files, nested: str) -> None:
    reason = only_reason(check(make_zip(files | {nested: make_zip({"x.txt": "x"})}), kind))
    assert "doesn't unpack archives" in reason
    assert repr(nested) in reason


def test_overlapping_entries_are_rejected() -> None:
    data = bytearray(make_zip(acoustic_files()))
    first = data.index(b"PK\x01\x02")  # the transcript's central directory record
    second = data.index(b"PK\x01\x02", first + 1)
    struct.pack_into("<L", data, second + 42, struct.unpack_from("<L", data, first + 42)[0])  # same local header
    assert "Entries overlap one another ('transcript.txt' and 'audio/utt0000.wav')" in only_reason(check(bytes(data)))


# --- limits and zip bombs ------------------------------------------------------------------------------------------


def test_too_many_files() -> None:
    verdict = check(make_zip(acoustic_files(3)), limits=KindLimits(max_zip_bytes=GiB, max_files=3))
    assert only_reason(verdict) == (
        "The archive holds 4 files; Acoustic datasets may hold at most 3. Split it into several zips."
    )


@pytest.mark.parametrize("base", [1 * GiB, 5 * GiB])
def test_blob_size_limit_with_a_virtual_multi_gigabyte_blob(base: int) -> None:
    """The entries sit `base` bytes into the blob, after bytes no entry claims (as after a self-extractor's
    stub): zipfile records their true offsets, with ZIP64 records past 2 GiB. The check reads only the tail."""
    stream = ShiftedBytesIO(base)
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in acoustic_files().items():
            archive.writestr(name, content)
    assert (b"PK\x06\x06" in stream.getvalue()) == (base > 2 * GiB)  # the ZIP64 end record
    reader = VirtualBlobReader(stream.getvalue(), base + len(stream.getvalue()))
    verdict = check_zip(reader, "Acoustic")
    assert verdict.file_count == 4
    assert verdict.audio_files == 3
    assert reader.bytes_read < 100 * 1024
    if base < 2 * GiB:
        assert verdict.ok, verdict.reasons
    else:
        assert only_reason(verdict) == (
            f"The zip is {reader.size:,} bytes (5 GiB); Acoustic zips may be at most 2,147,483,648 bytes (2 GiB). "
            "Split it into several smaller zips."
        )


def test_an_entry_inflating_like_a_bomb_is_rejected() -> None:
    files = VALID["Language"] | {"zeros.txt": bytes(20 * MiB)}
    reason = only_reason(check(make_zip(files), "Language"))
    assert "inflate more than 100-fold" in reason
    assert "'zeros.txt'" in reason


def test_an_archive_inflating_like_a_bomb_is_rejected() -> None:
    files = {f"part{i}.txt": b"a" * MiB for i in range(12)}  # each entry under 10 MiB, together over it
    reason = only_reason(check(make_zip(files), "Language"))
    assert "The archive inflates from" in reason


def test_content_over_four_times_the_zip_limit_is_rejected() -> None:
    data = make_zip({"corpus.txt": b"a" * MiB})
    reason = only_reason(check(data, "Language", limits=KindLimits(max_zip_bytes=len(data))))
    assert "over 4 times" in reason


def test_a_file_over_the_per_file_limit_is_rejected() -> None:
    big = "".join(f"word{i}\tw o r d {i}\n" for i in range(60_000)).encode()
    assert len(big) > MiB
    reason = only_reason(check(make_zip({"pronunciation.txt": big}), "Pronunciation"))
    assert "Pronunciation dataset files may be at most 1 MiB each, uncompressed" in reason
    assert "'pronunciation.txt'" in reason


# --- ZIP64, data descriptors, bytes read ---------------------------------------------------------------------------


def test_a_zip64_archive_passes() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in acoustic_files().items():
            with archive.open(name, "w", force_zip64=True) as entry:  # ZIP64 extra in every local header
                entry.write(content.encode() if isinstance(content, str) else content)
    data = with_zip64_end_records(buffer.getvalue())
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None  # a well-formed ZIP64 archive
    verdict = check(data)
    assert verdict.ok, verdict.reasons
    assert (verdict.file_count, verdict.warnings) == (4, ())


def test_entries_with_data_descriptors_pass() -> None:
    stream = WriteOnlyStream()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in acoustic_files().items():
            archive.writestr(name, content)
    data = bytes(stream.data)
    assert all(info.flag_bits & 0x08 for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    verdict = check(data)
    assert verdict.ok, verdict.reasons
    assert verdict.warnings == ()


def test_bytes_read_do_not_grow_with_the_archive() -> None:
    """200 stored WAVs of 10 kB and of 100 kB (a ~2 MB and a ~20 MB zip): same reads, same bytes, well under 1 MiB."""
    readers = []
    for frames in (5_000, 50_000):
        reader = BytesRangeReader(make_zip(acoustic_files(200, frames), zipfile.ZIP_STORED))
        verdict = check_zip(reader, "Acoustic")
        assert verdict.ok, verdict.reasons
        readers.append(reader)
    small, large = readers
    assert large.size > 9 * small.size > 18_000_000
    assert (small.reads, small.bytes_read) == (large.reads, large.bytes_read)
    assert large.bytes_read < MiB


def test_blob_range_reader_pins_every_read_to_the_etag() -> None:
    class Downloader:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readall(self) -> bytes:
            return self.data

    class FakeBlobClient:
        def __init__(self, data: bytes) -> None:
            self.data = data
            self.calls: list[dict] = []

        def download_blob(self, offset: int, length: int, **kwargs) -> Downloader:
            self.calls.append({"offset": offset, "length": length, **kwargs})
            return Downloader(self.data[offset : offset + length])

    data = make_zip(VALID["Acoustic"])
    client = FakeBlobClient(data)
    reader = BlobRangeReader(client, len(data), '"0x8DC0FFEE"')
    assert check_zip(reader, "Acoustic").ok
    assert reader.reads == len(client.calls) > 0
    assert reader.bytes_read == sum(call["length"] for call in client.calls)
    assert {(c["etag"], c["match_condition"]) for c in client.calls} == {
        ('"0x8DC0FFEE"', MatchConditions.IfNotModified)
    }
    unpinned = FakeBlobClient(data)
    BlobRangeReader(unpinned, len(data)).read(0, 4)
    assert unpinned.calls == [{"offset": 0, "length": 4}]  # etag=None would reach the HTTP transport and fail


# --- Acoustic content ----------------------------------------------------------------------------------------------


def test_acoustic_without_transcript() -> None:
    files = {name: content for name, content in acoustic_files().items() if name.endswith(".wav")}
    assert "has no transcript" in only_reason(check(make_zip(files)))


def test_acoustic_without_audio() -> None:
    assert check(make_zip({"transcript.txt": "a.wav\thello\n"})).reasons == (
        "The archive holds no .wav audio files.",
        "The transcript 'transcript.txt' names 1 audio file missing from the zip: 'a.wav'.",
    )


def test_a_transcript_naming_a_missing_wav_names_it() -> None:
    files = acoustic_files()
    files["transcript.txt"] += "ghost.wav\tnobody recorded this\n"
    assert only_reason(check(make_zip(files))) == (
        "The transcript 'transcript.txt' names 1 audio file missing from the zip: 'ghost.wav'."
    )


def test_many_missing_wavs_are_listed_up_to_ten() -> None:
    files = acoustic_files()
    files["transcript.txt"] += "".join(f"ghost{i:02}.wav\tboo\n" for i in range(15))
    reason = only_reason(check(make_zip(files)))
    assert reason.startswith("The transcript 'transcript.txt' names 15 audio files missing from the zip: 'ghost00.wav'")
    assert reason.endswith("'ghost09.wav' and 5 more.")


def test_lines_without_a_tab_are_reported_by_number() -> None:
    files = acoustic_files()
    files["transcript.txt"] = "utt0000.wav\thello\nutt0001.wav hello\n\nutt0002.wav\tthere\n\tno name\n"
    reason = only_reason(check(make_zip(files)))
    assert "has 2 lines not of the form '<audio file name><TAB><transcription>'" in reason
    assert reason.endswith("lines 2, 5.")


def test_wavs_the_transcript_does_not_name_are_a_warning() -> None:
    files = acoustic_files() | {"audio/extra.wav": wav(seed=9)}
    verdict = check(make_zip(files))
    assert verdict.ok
    assert verdict.warnings == (
        "No transcript line names 1 .wav file; the service can't use audio without a transcription: 'audio/extra.wav'.",
    )


def test_names_match_by_relative_path_and_by_case_with_a_warning() -> None:
    files = acoustic_files()
    files["transcript.txt"] = "audio/utt0000.wav\ta\n./audio/utt0001.wav\tb\nUTT0002.WAV\tc\n"
    verdict = check(make_zip(files))
    assert verdict.ok, verdict.reasons
    assert verdict.warnings == (
        "The transcript 'transcript.txt' names 1 audio file whose letter case differs from the zip's, which the "
        "service may not match: 'UTT0002.WAV'.",
    )


def test_a_transcript_in_a_folder_names_files_relative_to_it() -> None:
    files = {"set/transcript.txt": "clips/a.wav\thello\n", "set/clips/a.wav": wav()}
    assert check(make_zip(files)).ok


def test_each_of_several_transcripts_is_checked() -> None:
    files = acoustic_files() | {"more.tsv": "ghost.wav\tboo\n"}
    verdict = check(make_zip(files))
    assert only_reason(verdict) == "The transcript 'more.tsv' names 1 audio file missing from the zip: 'ghost.wav'."
    assert "single transcript file, but the zip has 2" in verdict.warnings[0]


def test_an_empty_transcript_is_rejected() -> None:
    files = acoustic_files() | {"transcript.txt": "\n\n"}
    assert only_reason(check(make_zip(files))) == "The transcript 'transcript.txt' is empty."


def test_a_corrupt_transcript_is_rejected() -> None:
    data = bytearray(make_zip(acoustic_files(), zipfile.ZIP_STORED))
    at = data.index(b"sentence number 1")
    data[at] = ord("S")
    assert "'transcript.txt' is corrupt" in only_reason(check(bytes(data)))


@pytest.mark.parametrize(
    ("encode", "warning"),
    [
        (lambda text: text.encode("utf-8-sig"), None),
        (lambda text: text.encode("utf-8"), "has non-ASCII characters but no UTF-8 byte-order mark"),
        (lambda text: text.encode("latin-1"), "is not valid UTF-8 (first bad byte on line 1)"),
        (lambda text: text.encode("utf-16"), "is UTF-16"),
    ],
)
def test_transcript_encoding_problems_are_warnings(encode, warning: str | None) -> None:
    files = acoustic_files(2)
    files["transcript.txt"] = encode("utt0000.wav\tgrüß gott\nutt0001.wav\tcafé crème\n")
    verdict = check(make_zip(files))
    assert verdict.ok, verdict.reasons
    if warning is None:
        assert verdict.warnings == ()
    else:
        assert len(verdict.warnings) == 1
        assert verdict.warnings[0].startswith("'transcript.txt' ")
        assert warning in verdict.warnings[0]


def test_crlf_transcripts_pass() -> None:
    files = acoustic_files()
    files["transcript.txt"] = files["transcript.txt"].replace("\n", "\r\n")
    verdict = check(make_zip(files))
    assert (verdict.ok, verdict.warnings) == (True, ())


def test_a_transcript_too_large_to_inspect_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipcheck, "MAX_INSPECT_BYTES", 16)
    files = acoustic_files() | {"audio/extra.wav": wav(seed=9)}  # not named, but the transcript isn't read
    verdict = check(make_zip(files))
    assert verdict.ok
    assert len(verdict.warnings) == 1
    assert verdict.warnings[0].startswith("'transcript.txt' is too large to inspect here")


def test_a_transcript_in_an_unusual_compression_is_a_warning() -> None:
    files = acoustic_files()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            method = zipfile.ZIP_BZIP2 if name.endswith(".txt") else zipfile.ZIP_DEFLATED
            archive.writestr(name, content, compress_type=method)
    verdict = check(buffer.getvalue())
    assert verdict.ok
    assert "Could not inspect 'transcript.txt': it is compressed with method 12" in verdict.warnings[1]
    assert "which the service may not read: 'transcript.txt'" in verdict.warnings[0]


def test_macos_metadata_and_directories_are_ignored_with_a_warning() -> None:
    files = acoustic_files() | {"audio/": b"", "__MACOSX/audio/._utt0000.wav": b"\0\5\26\7", ".DS_Store": b"\0"}
    verdict = check(make_zip(files))
    assert verdict.ok, verdict.reasons
    assert verdict.file_count == 4
    assert verdict.warnings[0].startswith("Ignored 2 macOS metadata entries (__MACOSX/, .DS_Store, ._*)")


def test_duplicate_names_are_a_warning() -> None:
    buffer = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(buffer, "w") as archive:
        for name, content in acoustic_files().items():
            archive.writestr(name, content)
        archive.writestr("audio/utt0000.wav", wav(seed=7))
    verdict = check(buffer.getvalue())
    assert verdict.ok
    assert verdict.warnings == (
        "These names occur more than once in the zip; the service may keep only one of each: 'audio/utt0000.wav'.",
    )


# --- the other kinds -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "stray"),
    [
        ("Language", "notes.docx"),
        ("Pronunciation", "words.csv"),
        ("LanguageMarkdown", "classes.txt"),
        ("AudioFiles", "transcript.txt"),
        ("Acoustic", "audio/utt9.mp3"),
    ],
)
def test_files_of_other_types_are_rejected_by_name(kind: str, stray: str) -> None:
    reason = only_reason(check(make_zip(VALID[kind] | {stray: "x"}), kind))
    assert reason.startswith(f"{kind} datasets hold only ")
    assert reason.endswith(f"these files don't belong: {stray!r}.")


def test_a_text_kind_needs_its_text_files() -> None:
    assert check(make_zip({"corpus.txt": ""}), "Language").reasons == ("All .txt files in the archive are empty.",)
    verdict = check(make_zip({"a.wav": wav()}), "LanguageMarkdown")
    assert "The archive holds no .md files." in verdict.reasons


def test_pronunciation_lines_without_a_tab_are_a_warning() -> None:
    verdict = check(make_zip({"pronunciation.txt": "3CPO\tthree c p o\nCNTK c n t k\n"}), "Pronunciation")
    assert verdict.ok
    assert verdict.warnings == (
        "'pronunciation.txt' has 1 line without a TAB between the word and its pronunciation, which the service may "
        "skip: line 2.",
    )


def test_output_formatting_in_a_txt_file_is_a_warning() -> None:
    verdict = check(make_zip({"format.txt": "#rewrite\ncovered 19\tCOVID-19\n"}), "OutputFormatting")
    assert verdict.ok
    assert verdict.warnings == ("The docs ask for a display-format file with an .md extension: 'format.txt'.",)


def test_an_extra_text_note_beside_the_transcript_is_a_warning_not_a_rejection():
    files = samples.acoustic_files(2)
    files["readme.txt"] = "Recorded in the Contoso call centre, November 2026.\nAsk Ana for details.\n"
    verdict = check_zip(BytesRangeReader(samples.zip_bytes(files)), "Acoustic")
    assert verdict.ok, verdict.reasons
    assert any("readme.txt" in w for w in verdict.warnings)
