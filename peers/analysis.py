# Strategy: "which tone is in this file?" without numpy (a test-only
# dependency): PyAV decodes any output file and resamples it to 8 kHz mono,
# then the Goertzel algorithm measures the power at each candidate
# frequency. The demo uses it to show that each session's file holds only its
# own tone.
from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import av

__all__ = ["ToneReport", "analyse_tones", "decode_mono_8k"]

ANALYSIS_RATE = 8_000  # plenty for tones below 4 kHz, and 6x less work than 48 kHz


def decode_mono_8k(path: Path) -> array[int]:
    """Every sample of the file's first audio stream, as 8 kHz mono s16."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=ANALYSIS_RATE)
    samples: array[int] = array("h")
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
        for out in resampler.resample(None):
            samples.frombytes(bytes(out.planes[0])[: out.samples * 2])
    return samples


def goertzel_power(samples: array[int], frequency: float, rate: int = ANALYSIS_RATE) -> float:
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    previous = before = 0.0
    for sample in samples:
        previous, before = sample + coefficient * previous - before, previous
    return previous * previous + before * before - coefficient * previous * before


@dataclass(frozen=True)
class ToneReport:
    seconds: float
    dominant: float
    share: float  # the dominant tone's share of the power at all candidates


def analyse_tones(path: Path, candidates: Iterable[float]) -> ToneReport:
    samples = decode_mono_8k(path)
    powers = {f: goertzel_power(samples, f) for f in candidates}
    total = sum(powers.values()) or 1.0
    dominant = max(powers, key=lambda f: powers[f])
    return ToneReport(len(samples) / ANALYSIS_RATE, dominant, powers[dominant] / total)
