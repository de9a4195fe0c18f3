"""Small, real training data made with the standard library: 16 kHz mono 16-bit PCM WAV audio, transcripts and
text. Used by the offline demo, the tests and the benchmarks."""

from __future__ import annotations

import io
import math
import struct
import wave
import zipfile

SAMPLE_RATE = 16_000
PHRASES = (
    "turn on the lights in the kitchen",
    "what is the weather like tomorrow",
    "call the support line for contoso",
    "book a table for two at seven",
    "play the latest episode of the podcast",
    "set a timer for twelve minutes",
)


def wav_bytes(seconds: float = 0.5, frequency: float = 440.0) -> bytes:
    """A sine tone as 16 kHz mono 16-bit PCM WAV."""
    frames = int(SAMPLE_RATE * seconds)
    samples = (int(12000 * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)) for i in range(frames))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content.encode("utf-8") if isinstance(content, str) else content)
    return buffer.getvalue()


def acoustic_files(count: int = 3, *, seconds: float = 0.5, missing: tuple[str, ...] = ()) -> dict[str, bytes | str]:
    """`count` WAVs plus a transcript naming each (and also naming `missing` files that are not in the zip)."""
    names = [f"utt{i:04d}.wav" for i in range(count)]
    files: dict[str, bytes | str] = {name: wav_bytes(seconds, 300 + 40 * i) for i, name in enumerate(names)}
    lines = [f"{name}\t{PHRASES[i % len(PHRASES)]}" for i, name in enumerate(names + list(missing))]
    files["trans.txt"] = "\n".join(lines) + "\n"
    return files


def acoustic_zip(count: int = 3, **kwargs) -> bytes:
    return zip_bytes(acoustic_files(count, **kwargs))


def language_zip(lines: int = 20) -> bytes:
    text = "\n".join(f"{PHRASES[i % len(PHRASES)]} number {i}" for i in range(lines)) + "\n"
    return zip_bytes({"corpus.txt": text})


def sample_zip(kind_folder: str) -> bytes:
    """A small valid zip for each kind folder of the drop convention."""
    if kind_folder == "acoustic":
        return acoustic_zip()
    if kind_folder == "audio":
        return zip_bytes({"a.wav": wav_bytes(), "b.wav": wav_bytes(0.3, 600)})
    if kind_folder == "markdown":
        return zip_bytes({"domain.md": "## Phrases\n- turn on the lights\n- call contoso support\n"})
    if kind_folder == "pronunciation":
        return zip_bytes({"pron.txt": "contoso\tk ah n t oh s oh\nfabrikam\tf ae b r ih k ae m\n"})
    if kind_folder == "output-formatting":
        return zip_bytes({"rules.txt": "#rewrite\ncontoso support\tContoso Support\n"})
    return language_zip()
