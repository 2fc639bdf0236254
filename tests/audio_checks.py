"""Independent checks on audio: decode with PyAV/ffprobe, find the dominant frequency."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from snowmux.testing import write_tone_file

__all__ = [
    "SAMPLE_RATE",
    "decode_ogg_opus",
    "decode_opus_packets",
    "dominant_frequency",
    "ffprobe",
    "frame_to_mono",
    "opusinfo",
    "write_tone_file",  # lives in snowmux.testing (bench/ uses it too)
]

SAMPLE_RATE = 48_000


def dominant_frequency(pcm: bytes | np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """The strongest frequency (Hz) of s16le stereo PCM (or a float mono array)."""
    if isinstance(pcm, bytes | bytearray | memoryview):
        samples = np.frombuffer(bytes(pcm), dtype="<i2").reshape(-1, 2).mean(axis=1)
    else:
        samples = np.asarray(pcm, dtype=float)
    samples = samples - samples.mean()
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def decode_ogg_opus(data: bytes) -> np.ndarray:
    """Decode an Ogg Opus file (bytes) to a mono float array at 48 kHz."""
    with av.open(io.BytesIO(data), format="ogg") as container:
        return _decode_all(container)


def frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    array = frame.to_ndarray().astype(float)
    channels = frame.layout.nb_channels
    if frame.format.is_planar:
        return array.mean(axis=0)
    return array.reshape(-1, channels).mean(axis=1)


def _decode_all(container: av.container.InputContainer) -> np.ndarray:
    chunks = [frame_to_mono(frame) for frame in container.decode(audio=0)]
    return np.concatenate(chunks) if chunks else np.zeros(0)


def decode_opus_packets(packets: list[bytes]) -> tuple[np.ndarray, list[int]]:
    """Decode raw Opus packets; return mono samples and each packet's sample count."""
    codec = av.CodecContext.create("opus", "r")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "stereo"
    samples: list[np.ndarray] = []
    counts: list[int] = []
    for data in packets:
        frames = codec.decode(av.Packet(data))
        counts.append(sum(f.samples for f in frames))
        samples.extend(frame_to_mono(frame) for frame in frames)
    return (np.concatenate(samples) if samples else np.zeros(0)), counts


def opusinfo(path: Path) -> str:
    """opusinfo's report on an Ogg Opus file (skips the test when opus-tools is missing)."""
    if not shutil.which("opusinfo"):
        pytest.skip("opusinfo is missing: install Debian's opus-tools (.ci/run does)")
    return subprocess.run(
        ["opusinfo", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def ffprobe(path: Path, *extra: str) -> dict:
    """ffprobe's JSON view of a file (streams and format)."""
    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe is missing: install Debian's ffmpeg (.ci/run does)")
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "-count_packets",
            *extra,
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)
