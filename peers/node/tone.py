# Strategy: the built-in test signal `tone:FREQ?seconds=S`, so the demo and
# the tests need no media files. It produces the same PCM blocks as a decoded
# file (48 kHz stereo s16le) and goes through the same encoders; the signal is
# computed from the absolute sample index, so seeking is exact.
from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs

from ..audio_format import BYTES_PER_SAMPLE, CHANNELS, SAMPLE_RATE

__all__ = ["TONE_SCHEME", "ToneSpec", "parse_tone_url", "tone_pcm"]

TONE_SCHEME = "tone:"
MAX_TONE_SECONDS = 24 * 3600.0  # a day: long-running soak tests, yet finite
AMPLITUDE = 0.5 * 32767  # -6 dBFS leaves headroom for the Opus encoder


class ToneUrlError(ValueError):
    """A tone: URL that cannot be played."""


@dataclass(frozen=True, slots=True)
class ToneSpec:
    frequency: float
    seconds: float

    @property
    def total_samples(self) -> int:
        return round(self.seconds * SAMPLE_RATE)


def parse_tone_url(url: str) -> ToneSpec:
    """``tone:440`` or ``tone:440?seconds=2.5`` (default 5 s)."""
    body = url[len(TONE_SCHEME) :]
    frequency_text, _, query = body.partition("?")
    try:
        frequency = float(frequency_text)
        params = parse_qs(query, strict_parsing=False)
        seconds = float(params.get("seconds", ["5"])[-1])
    except ValueError:
        raise ToneUrlError(f"bad tone URL {url!r}: use tone:FREQ?seconds=S") from None
    if not 1 <= frequency <= SAMPLE_RATE / 2 or not math.isfinite(frequency):
        raise ToneUrlError(f"tone frequency must be 1..{SAMPLE_RATE // 2} Hz, got {frequency_text}")
    if not 0 < seconds <= MAX_TONE_SECONDS:
        raise ToneUrlError(f"tone seconds must be in (0, {MAX_TONE_SECONDS:.0f}], got {seconds}")
    return ToneSpec(frequency, seconds)


@lru_cache(maxsize=64)
def _one_second(frequency: float) -> bytes:
    """One second of the tone, stereo s16le; exactly periodic for integer Hz."""
    step = 2 * math.pi * frequency / SAMPLE_RATE
    mono = array("h", (round(AMPLITUDE * math.sin(step * n)) for n in range(SAMPLE_RATE)))
    stereo = array("h", [0]) * (SAMPLE_RATE * CHANNELS)
    for channel in range(CHANNELS):
        stereo[channel::CHANNELS] = mono
    return stereo.tobytes()


def tone_pcm(spec: ToneSpec, start_sample: int, block_samples: int = 4800) -> Iterator[bytes]:
    """s16le stereo PCM of the tone from ``start_sample`` to its end, in blocks.

    Integer frequencies repeat exactly every second, so blocks are sliced from
    a cached one-second table (cheap, and it keeps the GIL free for the event
    loop); other frequencies are computed sample by sample.
    """
    end = spec.total_samples
    if spec.frequency.is_integer():
        table = _one_second(spec.frequency)
        for first in range(start_sample, end, block_samples):
            last = min(first + block_samples, end)
            yield _cyclic_slice(table, first, last)
        return
    step = 2 * math.pi * spec.frequency / SAMPLE_RATE
    for first in range(start_sample, end, block_samples):
        last = min(first + block_samples, end)
        mono = array("h", (round(AMPLITUDE * math.sin(step * n)) for n in range(first, last)))
        stereo = array("h", [0]) * (len(mono) * CHANNELS)
        for channel in range(CHANNELS):
            stereo[channel::CHANNELS] = mono
        yield stereo.tobytes()


def _cyclic_slice(table: bytes, first: int, last: int) -> bytes:
    """Samples [first, last) of the periodic signal whose one period is ``table``."""
    start = (first % SAMPLE_RATE) * BYTES_PER_SAMPLE
    length = (last - first) * BYTES_PER_SAMPLE
    if start + length <= len(table):
        return table[start : start + length]
    head = table[start:]
    return head + table[: length - len(head)]
