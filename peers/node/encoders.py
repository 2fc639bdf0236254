# Strategy: 20 ms PCM frames -> the payloads of each format (SPEC.md [P4]).
# pcm passes frames through; opus-packets gives one raw libopus packet per
# frame; opus/web mux those packets into Ogg with a 20 ms page duration so
# that each payload is exactly one Ogg page (PyAV writes the pages, we only
# split its output at page boundaries), headers first. Header pages are
# flagged: they are never dropped and are replayed to receivers that connect
# mid-playback.
from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, NamedTuple

import av

from snowmux.protocol import PayloadFormat

from ..audio_format import FRAME_SAMPLES, SAMPLE_RATE, split_ogg_pages

__all__ = [
    "DEFAULT_BITRATES",
    "OGG_HEADER_PAGES",
    "OPUS_ENCODER_DELAY",
    "OggCapture",
    "Payload",
    "StreamEvent",
    "encode_payloads",
    "opus_packets",
]

# SPEC.md [P4]: opus 128 kb/s; web 256 kb/s, transparent for music in a browser.
DEFAULT_BITRATES = {
    PayloadFormat.OPUS: 128_000,
    PayloadFormat.WEB: 256_000,
    PayloadFormat.OPUS_PACKETS: 128_000,
}
# libopus's lookahead at 48 kHz (its initial padding): decoded sample n of the
# packets is input sample n - 312 (tests/test_sender_passthrough.py checks it).
OPUS_ENCODER_DELAY = 312
OGG_HEADER_PAGES = 2  # OpusHead and OpusTags (RFC 7845, section 3)
_TIME_BASE = Fraction(1, SAMPLE_RATE)


class StreamEvent(NamedTuple):
    """An event the node sends just before a payload (``seeked``, ...)."""

    type: str
    fields: dict[str, Any]


class Payload(NamedTuple):
    """One payload of a playback. A NamedTuple, not a dataclass: the node makes
    one per frame from the worker's tuples (Payload._make), and a tuple of
    atoms is cheap to make and left alone by the garbage collector."""

    data: bytes
    is_header: bool = False  # Ogg header page: not paced, never dropped, replayed
    position: float | None = None  # source position (s) after this payload, when known
    events: tuple[StreamEvent, ...] = ()  # sent before this payload


class OggCapture(io.RawIOBase):
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


def opus_packets(frames: Iterator[bytes], bitrate: int) -> Iterator[bytes]:
    """One raw 20 ms libopus packet per frame (and the encoder's tail at the end).

    The decoded packets lag the frames by OPUS_ENCODER_DELAY samples, which an
    Ogg stream's pre-skip hides and a raw packet stream does not.
    """
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.time_base = _TIME_BASE
    _opus_options(codec, bitrate)
    for index, block in enumerate(frames):
        for packet in codec.encode(_pcm_frame(block, index)):
            yield bytes(packet)
    for packet in codec.encode(None):
        yield bytes(packet)


def _opus_packets(frames: Iterator[bytes], bitrate: int) -> Iterator[Payload]:
    return (Payload(packet) for packet in opus_packets(frames, bitrate))


def _ogg_pages(frames: Iterator[bytes], bitrate: int) -> Iterator[Payload]:
    capture = OggCapture()
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


def encode_payloads(
    format: PayloadFormat, frames: Iterator[bytes], bitrate: int | None
) -> Iterator[Payload]:
    """The payload sequence of one playback in ``format``."""
    if format == PayloadFormat.PCM:
        return (Payload(frame) for frame in frames)
    rate = bitrate or DEFAULT_BITRATES[format]
    if format == PayloadFormat.OPUS_PACKETS:
        return _opus_packets(frames, rate)
    if format in (PayloadFormat.OPUS, PayloadFormat.WEB):
        return _ogg_pages(frames, rate)
    raise ValueError(f"unknown format {format!r}")
