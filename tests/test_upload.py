"""The block upload engine against the Speech emulator (every request and answer checked against the spec)."""

from __future__ import annotations

import base64
import zipfile

import pytest

from local import samples
from shared import managed, upload
from shared.speech import MAX_BLOCK_BYTES, SpeechClient, SpeechError

MiB = 1024 * 1024


@pytest.fixture
def speech(emulator) -> SpeechClient:
    return SpeechClient(emulator.url, key=emulator.key, sleep=lambda seconds: None)


def big_language_zip(lines: int) -> bytes:
    """A Language zip of about lines * 60 bytes, stored (not deflated) so its size is what we ask."""
    text = "".join(
        f"{samples.PHRASES[i % len(samples.PHRASES)]} and then some more words {i:08d}\n" for i in range(lines)
    )
    return samples.zip_bytes({"corpus.txt": text}, compression=zipfile.ZIP_STORED)


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def puts(emulator) -> list[dict]:
    return [r for r in emulator.requests if r["method"] == "PUT" and r["path"].endswith("/blocks")]


def creates(emulator) -> list[dict]:
    return [r for r in emulator.requests if r["method"] == "POST" and r["path"].endswith("/datasets")]


def test_a_multi_block_upload_commits_the_file_in_order(emulator, speech, tmp_path):
    data = big_language_zip(40_000)  # ~2.6 MiB: 3 blocks of 1 MiB
    path = write(tmp_path, "corpus.zip", data)
    seen = []
    result = upload.upload_file(
        speech, path, locale="en-us", kind="language", block_size=MiB, progress=lambda d, t: seen.append((d, t))
    )
    assert (result.blocks, result.sent, result.reused, result.bytes_sent) == (3, 3, 0, len(data))
    assert result.created and not result.resumed and result.source == "upload:en-US/language/corpus.zip"
    held = speech.get_blocks(result.dataset.id)
    assert held.uncommitted == ()
    assert [size for _, size in held.committed] == [MiB, MiB, len(data) - 2 * MiB]
    indexes = [base64.b64decode(name).decode().split("-")[0] for name, _ in held.committed]
    assert indexes == ["000000", "000001", "000002"]  # committed in file order, whatever order they landed in
    assert {len(name) for name, _ in held.committed} == {64}
    assert seen[-1] == (len(data), len(data)) and len(seen) == 3

    props = result.dataset.custom_properties
    assert props[managed.MANAGED] == managed.MANAGED_BY
    assert props[managed.SOURCE] == "upload:en-US/language/corpus.zip"
    assert props[managed.SOURCE_CONTENT] == result.content_id and result.content_id.startswith("zip1:")
    assert props[managed.BLOCKS] == managed.BLOCKS_COMMITTED
    emulator.advance(60)
    done = speech.get_dataset(result.dataset.id)
    assert done.status == "Succeeded" and done.raw["properties"]["acceptedLineCount"] == 40_000

    again = upload.upload_file(speech, path, locale="en-US", kind="Language", block_size=MiB)
    assert again.already_done and again.dataset.id == result.dataset.id and again.sent == 0
    assert len(creates(emulator)) == 1


def test_an_interrupted_upload_resumes_and_sends_only_the_missing_blocks(emulator, speech, tmp_path, monkeypatch):
    data = big_language_zip(80_000)  # ~5.2 MiB: 6 blocks of 1 MiB
    path = write(tmp_path, "calls.zip", data)
    real_read = upload.FileRangeReader.read
    reads = {"blocks": 0}

    def dying_read(self, offset, length):
        if length == MiB:  # a block, not the validation's small reads
            reads["blocks"] += 1
            if reads["blocks"] == 4:
                raise KeyboardInterrupt  # Ctrl-C (or a killed process) half-way
        return real_read(self, offset, length)

    monkeypatch.setattr(upload.FileRangeReader, "read", dying_read)
    with pytest.raises(KeyboardInterrupt):
        upload.upload_file(speech, path, locale="en-US", kind="language", block_size=MiB, parallel=2)
    monkeypatch.setattr(upload.FileRangeReader, "read", real_read)
    sent_first = len(puts(emulator))
    assert sent_first in (2, 3)  # 3 blocks read; the last may not have started when the interrupt came
    [dataset] = emulator.datasets.values()
    assert dataset["customProperties"][managed.BLOCKS] == managed.BLOCKS_UPLOADING
    assert dataset["status"] == "NotStarted"

    result = upload.upload_file(speech, path, locale="en-US", kind="language", block_size=MiB, parallel=2)
    assert result.resumed and not result.created
    assert (result.blocks, result.reused, result.sent) == (6, sent_first, 6 - sent_first)
    assert len(puts(emulator)) - sent_first == 6 - sent_first  # only the missing blocks went out
    assert len(creates(emulator)) == 1 and len(emulator.datasets) == 1
    emulator.advance(60)
    assert speech.get_dataset(result.dataset.id).status == "Succeeded"


def test_a_changed_file_with_the_same_name_is_a_new_upload_never_mixed_with_the_old_blocks(
    emulator, speech, tmp_path, monkeypatch
):
    path = write(tmp_path, "corpus.zip", big_language_zip(40_000))
    real_read = upload.FileRangeReader.read
    count = {"n": 0}

    def dying_read(self, offset, length):
        if length == MiB:
            count["n"] += 1
            if count["n"] == 2:
                raise KeyboardInterrupt
        return real_read(self, offset, length)

    monkeypatch.setattr(upload.FileRangeReader, "read", dying_read)
    with pytest.raises(KeyboardInterrupt):
        upload.upload_file(speech, path, locale="en-US", kind="language", block_size=MiB, parallel=1)
    monkeypatch.setattr(upload.FileRangeReader, "read", real_read)
    [first] = emulator.datasets.values()

    changed = big_language_zip(41_000)  # same name, other content: other content id, other blocks
    path.write_bytes(changed)
    result = upload.upload_file(speech, path, locale="en-US", kind="language", block_size=MiB, parallel=1)
    assert result.created and result.reused == 0 and result.sent == result.blocks
    assert result.dataset.id != first["self"].split("?")[0].rsplit("/", 1)[-1]
    emulator.advance(60)
    assert speech.get_dataset(result.dataset.id).raw["properties"]["acceptedLineCount"] == 41_000


def test_a_block_the_service_holds_from_other_bytes_is_sent_again(emulator, speech, tmp_path):
    data = big_language_zip(40_000)
    reader = upload.FileRangeReader(write(tmp_path, "c.zip", data))
    content = upload.content_id(reader)
    props = managed.managed_properties(**{managed.SOURCE: "upload:en-US/language/c.zip"})
    marked = {**props, managed.SOURCE_CONTENT: content, managed.BLOCKS: managed.BLOCKS_UPLOADING}
    dataset = speech.create_dataset(display_name="c", locale="en-US", kind="Language", custom_properties=marked)
    other = data[1:MiB] + b"x"  # block 0's size, other bytes (a file edited in place): another id
    speech.upload_block(dataset.id, upload.block_id(0, other), other)
    result = upload.upload_dataset(
        speech, reader, content=content, display_name="c", locale="en-US", kind="Language",
        custom_properties=props, block_size=MiB,
    )  # fmt: skip
    assert result.resumed and result.dataset.id == dataset.id and (result.reused, result.sent) == (0, 3)
    assert [name for name, _ in speech.get_blocks(dataset.id).committed][0] == upload.block_id(0, data[:MiB])
    emulator.advance(60)
    assert speech.get_dataset(dataset.id).status == "Succeeded"


def test_an_oversized_block_is_never_sent(emulator, speech, tmp_path):
    path = write(tmp_path, "c.zip", big_language_zip(1_000))
    with pytest.raises(ValueError, match="8 MiB"):
        upload.upload_file(speech, path, locale="en-US", kind="language", block_size=MAX_BLOCK_BYTES + 1)
    with pytest.raises(ValueError, match="at most"):
        speech.upload_block("00000000-0000-0000-0000-000000000000", "AAAA", b"\0" * (MAX_BLOCK_BYTES + 1))
    assert creates(emulator) == [] and puts(emulator) == []


def test_the_default_blocks_are_8_mib_at_most(emulator, speech, tmp_path):
    data = big_language_zip(260_000)  # ~16.8 MiB: 8 + 8 + 0.8 MiB
    result = upload.upload_file(speech, write(tmp_path, "big.zip", data), locale="en-US", kind="language")
    sizes = [r["bytes"] for r in puts(emulator)]
    assert sorted(sizes, reverse=True) == [MAX_BLOCK_BYTES, MAX_BLOCK_BYTES, len(data) - 2 * MAX_BLOCK_BYTES]
    assert result.blocks == 3


def test_a_bad_local_zip_is_refused_before_anything_is_created(emulator, speech, tmp_path):
    cases = {
        "notes.zip": (b"plain text, not an archive" * 10, "language", "zip"),
        "escape.zip": (samples.zip_bytes({"../x.txt": "hello"}), "language", ".."),
        "audio-only.zip": (samples.zip_bytes({"a.wav": samples.wav_bytes()}), "acoustic", "transcript"),
    }
    for name, (data, kind, why) in cases.items():
        with pytest.raises(upload.ZipRefused) as refused:
            upload.upload_file(speech, write(tmp_path, name, data), locale="en-US", kind=kind)
        assert why in " ".join(refused.value.reasons).lower() and name in str(refused.value)
    with pytest.raises(ValueError, match="locale"):
        upload.upload_file(speech, write(tmp_path, "ok.zip", samples.language_zip()), locale="english", kind="language")
    with pytest.raises(ValueError, match="unknown kind"):
        upload.upload_file(speech, tmp_path / "ok.zip", locale="en-US", kind="video")
    with pytest.raises(ValueError, match="does not support"):
        upload.upload_file(speech, tmp_path / "ok.zip", locale="xx-XX", kind="language")
    assert creates(emulator) == [] and puts(emulator) == [] and emulator.datasets == {}


def test_failed_blocks_are_retried_and_an_ambiguous_commit_is_settled_by_the_block_list(emulator, tmp_path):
    speech = SpeechClient(emulator.url, key=emulator.key, sleep=lambda s: None, timeout=(2, 0.5))
    path = write(tmp_path, "c.zip", big_language_zip(40_000))
    emulator.inject(status=503, count=2, retry_after=0, method="PUT", path_contains="/blocks")
    emulator.inject(status=None, count=1, delay=1.0, method="POST", path_contains="blocks:commit")
    result = upload.upload_file(speech, path, locale="en-US", kind="language", block_size=MiB)
    assert result.sent == result.blocks == 3
    assert [r["status"] for r in puts(emulator)].count(503) == 2
    assert speech.get_dataset(result.dataset.id).custom_properties[managed.BLOCKS] == managed.BLOCKS_COMMITTED


def test_a_block_the_service_refuses_stops_the_upload_without_a_commit(emulator, speech, tmp_path):
    path = write(tmp_path, "c.zip", big_language_zip(40_000))
    emulator.inject(status=400, count=1, method="PUT", path_contains="/blocks")
    with pytest.raises(SpeechError) as failed:
        upload.upload_file(speech, path, locale="en-US", kind="language", block_size=MiB)
    assert failed.value.status == 400
    assert not [r for r in emulator.requests if r["path"].endswith("blocks:commit")]


def test_a_newer_upload_of_the_same_name_supersedes_the_older(emulator, speech, tmp_path):
    path = write(tmp_path, "corpus.zip", samples.language_zip(10))
    first = upload.upload_file(speech, path, locale="en-US", kind="language")
    path.write_bytes(samples.language_zip(30))
    second = upload.upload_file(speech, path, locale="en-US", kind="language")
    assert second.dataset.id != first.dataset.id
    assert speech.get_dataset(first.dataset.id).custom_properties[managed.SUPERSEDED_BY] == second.dataset.id
    assert managed.SUPERSEDED_BY not in speech.get_dataset(second.dataset.id).custom_properties
    other = upload.upload_file(speech, path, locale="en-US", kind="language", name="other")
    assert managed.SUPERSEDED_BY not in speech.get_dataset(second.dataset.id).custom_properties
    assert other.source == "upload:en-US/language/other.zip"


def test_block_ids_have_one_length_and_follow_the_bytes():
    ids = {upload.block_id(i, b"same bytes") for i in range(0, 1000, 7)}
    assert {len(i) for i in ids} == {64} and len(ids) == len(range(0, 1000, 7))
    assert upload.block_id(3, b"a") != upload.block_id(3, b"b") != upload.block_id(4, b"b")
    assert len(base64.b64decode(upload.block_id(999_999, b""))) <= 64
    assert upload.block_ranges(10, 4) == [(0, 4), (4, 4), (8, 2)]
