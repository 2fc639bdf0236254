# Strategy: the audio facts of SPEC.md [P4] that the node, the receiver and
# the conformance harness all rely on: 48 kHz stereo s16le cut into 20 ms
# frames, the Opus silence frame, and where one Ogg page ends. Shared here so
# that no peer re-types them (and the receiver need not import the node).
from __future__ import annotations

import struct

__all__ = [
    "BYTES_PER_SAMPLE",
    "OPUS_SILENCE",
    "CHANNELS",
    "FRAME_BYTES",
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "SAMPLE_RATE",
    "split_ogg_pages",
]

SAMPLE_RATE = 48_000
CHANNELS = 2
BYTES_PER_SAMPLE = 2 * CHANNELS  # s16 interleaved, one sample per channel
FRAME_SECONDS = 0.020
FRAME_SAMPLES = 960  # 20 ms at 48 kHz: the Opus and Discord frame size
FRAME_BYTES = FRAME_SAMPLES * BYTES_PER_SAMPLE  # 3,840: one pcm payload
assert FRAME_SAMPLES == round(SAMPLE_RATE * FRAME_SECONDS)
OPUS_SILENCE = b"\xf8\xff\xfe"  # a 20 ms Opus silence frame, as Discord clients send

_OGG_PAGE_HEADER = struct.Struct(
    "<4sBBqIIIB"
)  # capture, version, flags, granule, serial, seq, crc, segments


def split_ogg_pages(buffer: bytearray) -> list[bytes]:
    """Remove and return the complete Ogg pages at the start of ``buffer``."""
    pages: list[bytes] = []
    while len(buffer) >= _OGG_PAGE_HEADER.size:
        capture, *_rest, segments = _OGG_PAGE_HEADER.unpack_from(buffer)
        if capture != b"OggS":
            raise ValueError("not at an Ogg page boundary")
        table_end = _OGG_PAGE_HEADER.size + segments
        if len(buffer) < table_end:
            break
        page_end = table_end + sum(buffer[_OGG_PAGE_HEADER.size : table_end])
        if len(buffer) < page_end:
            break
        pages.append(bytes(buffer[:page_end]))
        del buffer[:page_end]
    return pages
