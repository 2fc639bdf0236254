# Strategy: the file sink (SPEC.md section 9, [P4] formats): each playback goes
# to its own file under DIR/<session_id>/, opened by `ready` and closed by
# `finished`, `error` or an interruption. The format is the one `ready`
# names; a legacy `ready` without one is resolved from the first payload
# (`OggS` = Ogg pages, anything else = PCM). pcm becomes a WAV (stdlib
# `wave` fixes the header sizes on close), opus/web pages are written as-is,
# opus-packets are remuxed into Ogg Opus by PyAV (no re-encoding).
# Recordings are never overwritten (README "Recordings"): numbering continues
# after the highest NNN already in the directory, and every file is created
# with open(..., "x"), so a file that appeared meanwhile (another route on the
# same DIR) makes us take the next number instead of truncating it. Ogg pages
# of a playback joined late are rebased to granule 0 (ogg.OggRebaser).
from __future__ import annotations

import logging
import re
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import av

from snowmux.protocol import AudioFrame, Event

from ..audio_format import FRAME_SAMPLES, SAMPLE_RATE
from .ogg import OggRebaser

__all__ = ["FileSink", "safe_dirname"]

log = logging.getLogger("snowmux.receiver.files")

_NUMBERED = re.compile(r"^(\d+)-")  # NNN-<format>.<ext>, as written by FileSink
# Attempts to find a free number when other writers keep taking them: far
# more than two routes racing on one directory can need.
MAX_NUMBER_ATTEMPTS = 1000

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def safe_dirname(session_id: str) -> str:
    """A directory name for an ID: IDs may hold '/', '.' or '..' (all printable ASCII)."""
    return "".join(c if c in _SAFE else f"%{ord(c):02X}" for c in session_id)


class _Writer(Protocol):
    path: Path

    def write(self, payload: bytes | memoryview) -> None: ...

    def close(self) -> None: ...


class _WavWriter:
    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self._file = file
        self._wave = wave.open(file, "wb")
        self._wave.setnchannels(2)
        self._wave.setsampwidth(2)
        self._wave.setframerate(SAMPLE_RATE)

    def write(self, payload: bytes | memoryview) -> None:
        self._wave.writeframesraw(payload)

    def close(self) -> None:
        self._wave.close()  # patches the RIFF and data sizes
        self._file.close()  # wave leaves a file object it was given open


class _OggPageWriter:
    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self._file = file
        self._rebaser = OggRebaser()

    def write(self, payload: bytes | memoryview) -> None:
        self._file.write(self._rebaser.page(bytes(payload)))

    def close(self) -> None:
        self._file.close()


class _OpusRemuxer:
    def __init__(self, path: Path, file: BinaryIO) -> None:
        self.path = path
        self._file = file
        self._container: Any = av.open(file, "w", format="ogg")
        self._stream: Any = self._container.add_stream("libopus", rate=SAMPLE_RATE, layout="stereo")
        self._time_base = Fraction(1, SAMPLE_RATE)
        self._packets = 0

    def write(self, payload: bytes | memoryview) -> None:
        packet = av.Packet(bytes(payload))
        packet.pts = packet.dts = self._packets * FRAME_SAMPLES
        packet.duration = FRAME_SAMPLES
        packet.time_base = self._time_base
        packet.stream = self._stream
        self._container.mux(packet)
        self._packets += 1

    def close(self) -> None:
        self._container.close()
        self._file.close()


_EXTENSIONS = {"pcm": "wav", "opus": "opus", "web": "opus", "opus-packets": "opus"}


class FileSink:
    """Writes each playback of one session to DIR/<session_id>/NNN-<format>.<ext>."""

    def __init__(self, root: Path, session_id: str) -> None:
        self.session_id = session_id
        self.directory = root / safe_dirname(session_id)
        self.files: list[Path] = []
        self._writer: _Writer | None = None
        self._format: str | None = None

    def _next_number(self) -> int:
        highest = 0
        for entry in self.directory.iterdir():
            match = _NUMBERED.match(entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
        return highest + 1

    def _create(self, audio_format: str) -> tuple[Path, BinaryIO]:
        """A new file after the highest numbered one; never one that already exists."""
        self.directory.mkdir(parents=True, exist_ok=True)
        number = self._next_number()
        for _ in range(MAX_NUMBER_ATTEMPTS):
            path = self.directory / f"{number:03d}-{audio_format}.{_EXTENSIONS[audio_format]}"
            try:
                return path, open(path, "xb")
            except FileExistsError:
                number += 1
        raise FileExistsError(f"no free file number in {self.directory}")

    def _open(self, audio_format: str) -> _Writer:
        path, file = self._create(audio_format)
        writer: _Writer
        if audio_format == "pcm":
            writer = _WavWriter(path, file)
        elif audio_format == "opus-packets":
            writer = _OpusRemuxer(path, file)
        else:
            writer = _OggPageWriter(path, file)
        self.files.append(path)
        log.info("session %s: writing %s", self.session_id, path)
        return writer

    def on_frame(self, frame: AudioFrame) -> None:
        if self._writer is None:
            audio_format = self._format
            if audio_format is None:  # legacy node: no format in ready (or no ready at all)
                audio_format = "opus" if bytes(frame.payload[:4]) == b"OggS" else "pcm"
            self._writer = self._open(audio_format)
        self._writer.write(frame.payload)

    def on_event(self, event: Event) -> None:
        if event.type == "ready":
            self._finish()
            fmt = event.data.get("format")
            self._format = fmt if isinstance(fmt, str) and fmt in _EXTENSIONS else None
            self._writer = self._open(self._format) if self._format else None
        elif event.type in ("finished", "error"):
            self._finish()

    def on_interrupted(self, reason: str) -> None:
        self._finish()

    def close(self) -> None:
        self._finish()

    def _finish(self) -> None:
        writer, self._writer = self._writer, None
        self._format = None
        if writer is not None:
            writer.close()
