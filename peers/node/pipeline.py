# Strategy: media -> 48 kHz stereo s16le PCM cut into exact 20 ms frames
# (SPEC.md [P4]). Runs in the codec worker processes, never on the
# event loop. PyAV opens and decodes the first audio stream whatever its
# codec, rate or layout; swresample converts; our own cutter makes the
# 960-sample frames so the last one can be padded with silence. Seeking is
# sample-accurate: FFmpeg seeks to a keyframe before start_at, then the
# samples before start_at are dropped using the resampler's output pts.
# Local files are opened by media.open_inside and given to PyAV as a file
# object with a demuxer whitelist and no nested opens ([M1]); remote URLs get
# the http(s)-only protocol whitelist ([M2]). Open failures carry a
# MediaProblem so the API can answer 404 / 422 / 403 ([A4]).
from __future__ import annotations

import errno
from collections.abc import Generator, Iterator
from enum import StrEnum
from fractions import Fraction
from typing import Any

import av

from ..audio_format import BYTES_PER_SAMPLE, FRAME_BYTES, SAMPLE_RATE
from ..defaults import MEDIA_OPEN_TIMEOUT_SECONDS
from .media import (
    LOCAL_FORMATS,
    REMOTE_FORMATS,
    REMOTE_PROTOCOLS,
    MediaKind,
    MediaRefused,
    MediaSource,
    open_inside,
    refuse_nested_open,
)
from .tone import tone_pcm

__all__ = ["DecodedAudio", "MediaError", "MediaProblem", "VolumeStage", "cut_frames"]

_TIME_BASE = Fraction(1, SAMPLE_RATE)
# How much of a local file FFmpeg may read to find its streams' parameters.
# FFmpeg's 5 MB default made a 44.1 kHz WAV cost ~50 ms of CPU per open (it
# reads PCM up to the limit), which a burst of plays multiplies; 64 KiB finds
# the same parameters in every whitelisted local format we play (WAV, MP3,
# FLAC, Ogg/WebM Opus, M4A AAC) in under 10 ms (bench.sender (e)).
LOCAL_PROBE_BYTES = 64 * 1024


class MediaProblem(StrEnum):
    """Why media cannot be played; the API maps it to a status code ([A4])."""

    MISSING = "missing"  # 404: no such local file
    REFUSED = "refused"  # 403: outside the media root after all (a swapped symlink)
    UNPLAYABLE = "unplayable"  # 422: not decodable, not an allowed container, no audio


class MediaError(Exception):
    """The media cannot be played: the message goes into the `error` event."""

    def __init__(self, message: str, problem: MediaProblem = MediaProblem.UNPLAYABLE) -> None:
        super().__init__(message)
        self.problem = problem


class DecodedAudio:
    """One playback's source, opened once, decoded lazily from ``start_at``."""

    def __init__(self, source: MediaSource, start_at: float = 0.0) -> None:
        self.source = source
        self.start_at = start_at
        self.duration: float | None = None
        self._file: Any = None
        self._container: Any = None
        self._stream: Any = None
        self._blocks: Iterator[bytes] | None = None
        self._first: bytes | None = None

    def open(self) -> float | None:
        """Open, probe and decode the first block; return the duration in seconds when known.

        Decoding the first block here is the probe of [A4]: media that opens but
        does not decode fails now, before the play request is answered.
        """
        if self.source.tone is not None:
            self.duration = self.source.tone.seconds
            return self.duration
        self.open_stream()
        return self.start_decoding()

    def open_stream(self) -> float | None:
        """The first half of open(): the container and its first audio stream, nothing decoded.

        Opus passthrough (passthrough.py) reads packets from here; otherwise
        start_decoding() completes what open() does.
        """
        self._container = self._open_container()
        audio = self._container.streams.audio
        if not audio:
            self.close()
            raise MediaError(f"no audio stream in {self.source.url}")
        self._stream = audio[0]
        self.duration = _duration(self._container, self._stream)
        return self.duration

    @property
    def container(self) -> Any:
        """The open PyAV input container (None for a tone or before open)."""
        return self._container

    @property
    def stream(self) -> Any:
        """The first audio stream, which is what plays (None for a tone or before open)."""
        return self._stream

    def start_decoding(self) -> float | None:
        """The second half of open(): decode the first block (the probe of [A4])."""
        target = round(self.start_at * SAMPLE_RATE)
        self._blocks = self._decoded(target)
        try:
            self._first = next(self._blocks)
        except StopIteration:
            if target == 0:
                self.close()
                raise MediaError(f"no decodable audio in {self.source.url}") from None
        except MediaError:
            self.close()
            raise
        return self.duration

    def _open_container(self) -> Any:
        source = self.source
        if source.kind is MediaKind.REMOTE:
            try:
                return av.open(
                    source.target,
                    options={"protocol_whitelist": REMOTE_PROTOCOLS},
                    container_options={"format_whitelist": REMOTE_FORMATS},
                    timeout=MEDIA_OPEN_TIMEOUT_SECONDS,
                )
            except (av.FFmpegError, OSError) as exc:
                raise MediaError(_cannot_open(source.url, exc)) from None
        try:
            file = open_inside(source.root, source.target)
        except FileNotFoundError:
            raise MediaError(f"no such file: {source.url}", MediaProblem.MISSING) from None
        except MediaRefused as exc:
            raise MediaError(str(exc), MediaProblem.REFUSED) from None
        except OSError as exc:
            raise MediaError(f"cannot open {source.url}: {_reason(exc)}") from None
        self._file = file
        try:
            return av.open(
                file,
                container_options={
                    "format_whitelist": LOCAL_FORMATS,
                    "probesize": str(LOCAL_PROBE_BYTES),
                },
                io_open=refuse_nested_open,
            )
        except (av.FFmpegError, OSError) as exc:
            self.close()
            raise MediaError(_cannot_open(source.url, exc)) from None

    def pcm(self) -> Iterator[bytes]:
        """s16le stereo 48 kHz PCM blocks of any size, from start_at to the end."""
        if self.source.tone is not None:
            yield from tone_pcm(self.source.tone, round(self.start_at * SAMPLE_RATE))
            return
        if self._blocks is None:
            raise RuntimeError("open() first")
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._blocks

    def _decoded(self, target: int) -> Iterator[bytes]:
        container, stream = self._container, self._stream
        if target > 0:
            try:
                container.seek(int(self.start_at * av.time_base), backward=True, any_frame=False)
            except av.FFmpegError as exc:
                raise MediaError(f"cannot seek to {self.start_at}s: {_reason(exc)}") from None
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=SAMPLE_RATE)
        position: int | None = None  # sample index (48 kHz) of the next output sample
        try:
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    if position is not None and position >= target:
                        # past start_at: the whole frame, without a nested
                        # generator (the common case, once per decoded frame)
                        position += out.samples
                        if out.samples:
                            yield _pcm_bytes(out)
                    else:
                        position = yield from _trimmed(out, position, target)
            for out in resampler.resample(None):
                position = yield from _trimmed(out, position, target)
        except av.FFmpegError as exc:
            at = "" if position is None else f" at {position / SAMPLE_RATE:.2f}s"
            raise MediaError(f"decode error{at} in {self.source.url}: {_reason(exc)}") from None

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._file is not None:  # PyAV never closes a file object it was given
            self._file.close()
            self._file = None


def _frames(container: Any, stream: Any) -> Iterator[Any]:
    for packet in container.demux(stream):
        yield from packet.decode()


def _trimmed(out: Any, position: int | None, target: int) -> Generator[bytes, None, int]:
    """Yield the part of a resampled frame at or after ``target``; return the new position."""
    data = _pcm_bytes(out)
    if position is None:
        position = target if out.pts is None else int(out.pts * out.time_base * SAMPLE_RATE)
    start = position
    position += out.samples
    if position <= target:
        return position
    if start < target:
        data = data[(target - start) * BYTES_PER_SAMPLE :]
    if data:
        yield data
    return position


def _pcm_bytes(out: Any) -> bytes:
    """A resampled frame's s16 stereo samples, one copy (its plane may be padded)."""
    with memoryview(out.planes[0]) as plane:
        return bytes(plane[: out.samples * BYTES_PER_SAMPLE])


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None


def _cannot_open(url: str, exc: BaseException) -> str:
    if (
        getattr(exc, "errno", None) == errno.EINVAL
    ):  # FFmpeg's answer to a format not on the whitelist
        return f"cannot open {url}: not an audio container this node plays"
    return f"cannot open {url}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def cut_frames(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Exact 3,840-byte (20 ms) frames; the last one padded with silence."""
    pending = bytearray()
    for block in blocks:
        pending += block
        usable = len(pending) - len(pending) % FRAME_BYTES
        for start in range(0, usable, FRAME_BYTES):
            yield bytes(pending[start : start + FRAME_BYTES])
        del pending[:usable]
    if pending:
        yield bytes(pending.ljust(FRAME_BYTES, b"\x00"))


class VolumeStage:
    """FFmpeg's volume filter on 48 kHz stereo s16 PCM blocks (0.0 .. 2.0)."""

    def __init__(self, volume: float) -> None:
        self.volume = volume
        self._graph = av.filter.Graph()
        source = self._graph.add_abuffer(
            format="s16", sample_rate=SAMPLE_RATE, layout="stereo", time_base=_TIME_BASE
        )
        gain = self._graph.add("volume", f"volume={volume}:precision=fixed")
        sink = self._graph.add("abuffersink")
        source.link_to(gain)
        gain.link_to(sink)
        self._graph.configure()
        self._pts = 0

    def apply(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        for block in blocks:
            samples = len(block) // BYTES_PER_SAMPLE
            frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
            frame.planes[0].update(block)
            frame.sample_rate = SAMPLE_RATE
            frame.time_base = _TIME_BASE
            frame.pts = self._pts
            self._pts += samples
            self._graph.push(frame)
            out = self._graph.pull()
            if not isinstance(out, av.AudioFrame):
                raise MediaError("the volume filter returned a video frame")
            yield bytes(out.planes[0])[: out.samples * BYTES_PER_SAMPLE]
