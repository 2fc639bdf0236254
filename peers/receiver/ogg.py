# Strategy: make an Ogg Opus recording that began mid-playback a file that
# starts at 0 (README "Recordings"). A receiver that joins late gets the
# header pages again and then pages whose granule positions and sequence
# numbers continue the playback's (SPEC.md [P5]); written as-is, ffprobe
# takes the last granule as the duration (3.0 s for 1.8 s of audio) and
# opusinfo reports a sequence gap. We subtract the first audio page's offset
# from every granule and renumber pages from 0, recomputing each page's CRC.
# The non-obvious decision: the offset is "first audio granule minus one
# frame", since [P4] puts exactly one 20 ms packet on each audio page; for a
# recording from the start that offset is 0, so the bytes stay unchanged.
# Pages that are not whole (a legacy node's 4 KiB reads) disable rewriting.
from __future__ import annotations

import struct

from ..audio_format import FRAME_SAMPLES

__all__ = ["OggRebaser", "ogg_crc"]

_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, segs
_NO_GRANULE = -1  # a page on which no packet ends


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04C11DB7, initial 0, not reflected, no final xor."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _TABLE[(crc >> 24) ^ byte]
    return crc


def _whole_page(payload: bytes) -> bool:
    if len(payload) < _HEADER.size or payload[:4] != b"OggS":
        return False
    segments = payload[_HEADER.size - 1]
    table_end = _HEADER.size + segments
    return len(payload) >= table_end and len(payload) == table_end + sum(
        payload[_HEADER.size : table_end]
    )


class OggRebaser:
    """Rewrites one playback's Ogg Opus pages so that the file starts at granule 0."""

    def __init__(self) -> None:
        self._pages = 0
        self._offset: int | None = None  # known at the first audio page
        self._enabled = True

    def page(self, payload: bytes) -> bytes:
        if not self._enabled:
            return payload
        if not _whole_page(payload):
            self._enabled = False  # not one page per payload: leave the bytes alone
            return payload
        capture, version, flags, granule, serial, _seq, _crc, segments = _HEADER.unpack_from(
            payload
        )
        body_start = _HEADER.size + segments
        is_header = payload[body_start : body_start + 8] in (b"OpusHead", b"OpusTags")
        if not is_header and granule != _NO_GRANULE:
            if self._offset is None:
                self._offset = max(0, granule - FRAME_SAMPLES)
            granule -= self._offset
        sequence = self._pages
        self._pages += 1
        header = _HEADER.pack(capture, version, flags, granule, serial, sequence, 0, segments)
        page = bytearray(header + payload[_HEADER.size :])
        struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
        return bytes(page)
