# Strategy: the one audio format every playback is converted to (SPEC.md
# [P4]): 48 kHz, stereo, signed 16-bit little-endian, cut into 20 ms frames.
from __future__ import annotations

__all__ = [
    "BYTES_PER_SAMPLE",
    "CHANNELS",
    "FRAME_BYTES",
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "SAMPLE_RATE",
]

SAMPLE_RATE = 48_000
CHANNELS = 2
BYTES_PER_SAMPLE = 2 * CHANNELS  # s16 interleaved, one sample per channel
FRAME_SECONDS = 0.020
FRAME_SAMPLES = 960  # 20 ms at 48 kHz: the Opus and Discord frame size
FRAME_BYTES = FRAME_SAMPLES * BYTES_PER_SAMPLE  # 3,840: one pcm payload
assert FRAME_SAMPLES == round(SAMPLE_RATE * FRAME_SECONDS)
