# Strategy: ready-made Opus packets -> Ogg Opus pages (RFC 7845), written by
# PyAV's Ogg muxer, one page per packet (page_duration 20 ms), OpusHead and
# OpusTags first: the payloads of `opus` and `web` (SPEC.md [P4]) for a
# playback whose packets are not made by our own encoder: Opus passthrough
# ([P8]), and the transcoding that takes over from a passthrough when a
# control arrives (codec_worker.py), so that both stay one logical stream.
# Granule positions: the muxer writes pts + duration + the stream's initial
# padding, so packets get pts = samples before them - that padding, which
# makes every granule the decoded sample count RFC 7845 asks for. The
# pre-skip is the OpusHead's (the caller's choice: see passthrough.py).
from __future__ import annotations

import struct
from fractions import Fraction
from typing import Any

import av

from ..audio_format import SAMPLE_RATE, split_ogg_pages
from .encoders import OGG_HEADER_PAGES, OggCapture, Payload

__all__ = ["OggPacketMuxer", "pre_skip_of", "with_pre_skip"]

_TIME_BASE = Fraction(1, SAMPLE_RATE)
_PRE_SKIP = struct.Struct("<H")
_PRE_SKIP_OFFSET = 10  # OpusHead: magic(8) version(1) channels(1) pre-skip(2) (RFC 7845, 5.1)
OPUS_HEAD_SIZE = 19  # mapping family 0


def pre_skip_of(opus_head: bytes) -> int:
    """The pre-skip field of an OpusHead."""
    return int(_PRE_SKIP.unpack_from(opus_head, _PRE_SKIP_OFFSET)[0])


def with_pre_skip(opus_head: bytes, pre_skip: int) -> bytes:
    """``opus_head`` with its pre-skip replaced."""
    head = bytearray(opus_head)
    _PRE_SKIP.pack_into(head, _PRE_SKIP_OFFSET, pre_skip)
    return bytes(head)


class OggPacketMuxer:
    """Opus packets in, Ogg pages out, as payloads (header pages flagged)."""

    def __init__(self, template: Any, opus_head: bytes) -> None:
        """``template``: the source's Opus stream; ``opus_head``: the OpusHead to write."""
        self._capture = OggCapture()
        self._container = av.open(
            self._capture, "w", format="ogg", options={"page_duration": "20000"}
        )
        self._stream = self._container.add_stream_from_template(template)
        self._stream.codec_context.extradata = opus_head
        self._padding = int(self._stream.codec_context.delay or 0)
        self._samples = 0  # decoded samples of the packets muxed so far
        self._pages_out = 0
        self._closed = False

    def mux(self, data: bytes, samples: int) -> list[Payload]:
        """Add one packet that decodes to ``samples`` samples; the pages now complete."""
        packet = av.Packet(data)
        packet.pts = packet.dts = self._samples - self._padding
        packet.duration = samples
        packet.time_base = _TIME_BASE
        packet.stream = self._stream
        self._container.mux(packet)
        self._samples += samples
        return self._drain()

    def close(self) -> list[Payload]:
        """The pages written at the end of the stream (idempotent)."""
        if self._closed:
            return []
        self._closed = True
        self._container.close()
        return self._drain()

    def _drain(self) -> list[Payload]:
        payloads = []
        for page in split_ogg_pages(self._capture.buffer):
            payloads.append(Payload(page, is_header=self._pages_out < OGG_HEADER_PAGES))
            self._pages_out += 1
        return payloads
