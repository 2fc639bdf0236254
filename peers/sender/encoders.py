# Strategy: 20 ms PCM frames -> the payloads of each format (SPEC.md [P4]).
# pcm passes frames through; opus-packets gives one raw libopus packet per
# frame; opus/web mux those packets into Ogg with a 20 ms page duration so
# that each payload is exactly one Ogg page (PyAV writes the pages, we only
# split its output at page boundaries), headers first. Header pages are
# flagged: they are never dropped and are replayed to receivers that connect
# mid-playback.
from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from .audio_format import FRAME_SAMPLES, SAMPLE_RATE

__all__ = [
    "DEFAULT_BITRATES",
    "OPUS_SILENCE",
    "Payload",
    "encode_payloads",
    "split_ogg_pages",
]

DEFAULT_BITRATES = {"opus": 128_000, "web": 256_000, "opus-packets": 128_000}
OPUS_SILENCE = b"\xf8\xff\xfe"  # a 20 ms Opus silence frame, as Discord clients send
OGG_HEADER_PAGES = 2  # OpusHead and OpusTags (RFC 7845, section 3)
_TIME_BASE = Fraction(1, SAMPLE_RATE)
_OGG_PAGE_HEADER = struct.Struct(
    "<4sBBqIIIB"
)  # capture, version, flags, granule, serial, seq, crc, segments


@dataclass(frozen=True, slots=True)
class Payload:
    data: bytes
    is_header: bool = False  # Ogg header page: not paced, never dropped, replayed


def split_ogg_pages(buffer: bytearray) -> list[bytes]:
    """Remove and return the complete Ogg pages at the start of ``buffer``."""
    pages: list[bytes] = []
    while len(buffer) >= _OGG_PAGE_HEADER.size:
        capture, *_rest, segments = _OGG_PAGE_HEADER.unpack_from(buffer)
        if capture != b"OggS":
            raise ValueError("muxer output is not at an Ogg page boundary")
        table_end = _OGG_PAGE_HEADER.size + segments
        if len(buffer) < table_end:
            break
        page_end = table_end + sum(buffer[_OGG_PAGE_HEADER.size : table_end])
        if len(buffer) < page_end:
            break
        pages.append(bytes(buffer[:page_end]))
        del buffer[:page_end]
    return pages


class _Capture(io.RawIOBase):
    """A write-only file object that keeps what the Ogg muxer writes."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.buffer += data
        return len(data)


def _pcm_frame(block: bytes, index: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="stereo", samples=FRAME_SAMPLES)
    frame.planes[0].update(block)
    frame.sample_rate = SAMPLE_RATE
    frame.time_base = _TIME_BASE
    frame.pts = index * FRAME_SAMPLES
    return frame


def _opus_options(codec_context: Any, bitrate: int) -> None:
    codec_context.bit_rate = bitrate
    codec_context.options = {"frame_duration": "20", "application": "audio", "vbr": "on"}


def _opus_packets(frames: Iterator[bytes], bitrate: int) -> Iterator[Payload]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.time_base = _TIME_BASE
    _opus_options(codec, bitrate)
    for index, block in enumerate(frames):
        for packet in codec.encode(_pcm_frame(block, index)):
            yield Payload(bytes(packet))
    for packet in codec.encode(None):
        yield Payload(bytes(packet))


def _ogg_pages(frames: Iterator[bytes], bitrate: int) -> Iterator[Payload]:
    capture = _Capture()
    container = av.open(capture, "w", format="ogg", options={"page_duration": "20000"})
    stream = container.add_stream("libopus", rate=SAMPLE_RATE, layout="stereo")
    _opus_options(stream.codec_context, bitrate)
    pages_out = 0

    def drained() -> Iterator[Payload]:
        nonlocal pages_out
        for page in split_ogg_pages(capture.buffer):
            yield Payload(page, is_header=pages_out < OGG_HEADER_PAGES)
            pages_out += 1

    try:
        for index, block in enumerate(frames):
            for packet in stream.encode(_pcm_frame(block, index)):
                container.mux(packet)
            yield from drained()
        for packet in stream.encode(None):
            container.mux(packet)
    finally:
        container.close()
    yield from drained()


def encode_payloads(format: str, frames: Iterator[bytes], bitrate: int | None) -> Iterator[Payload]:
    """The payload sequence of one playback in ``format``."""
    if format == "pcm":
        return (Payload(frame) for frame in frames)
    rate = bitrate or DEFAULT_BITRATES[format]
    if format == "opus-packets":
        return _opus_packets(frames, rate)
    if format in ("opus", "web"):
        return _ogg_pages(frames, rate)
    raise ValueError(f"unknown format {format!r}")
