# Strategy: the tracks of a playback's queue (SPEC.md section 9, "Queue"),
# as the codec worker sees them. A TrackReader is one opened track giving its
# exact source PCM (48 kHz s16 stereo) from start_at to end_at, read ahead on
# demand: the chain keeps the current track's last `crossfade` samples in
# hand before it lets them go, so it knows where the fade starts without
# trusting a probed duration (mp3 and remote durations are estimates). A
# queued track is opened as soon as it is queued, in a background thread of
# the worker (prefetch): a slow remote open happens long before the current
# track ends, and it never stalls the worker's other playbacks meanwhile.
# The queue operations travel node -> worker inside QueueRequest.
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from ..audio_format import BYTES_PER_SAMPLE, SAMPLE_RATE
from .media import MediaSource
from .pipeline import DecodedAudio, MediaError
from .play_request import PlayRequest

__all__ = [
    "MAX_CROSSFADE_MS",
    "AppendTrack",
    "ClearQueue",
    "QueueOp",
    "QueuedTrack",
    "SkipTrack",
    "TrackReader",
]

MAX_CROSSFADE_MS = 12_000  # the API's bound; 12 s of lookahead is 2.3 MB of PCM per playback
PREFETCH_THREADS = 4  # opens at once per worker; more would only queue behind slow servers


@cache
def _prefetcher() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="snowmux-prefetch")


@dataclass(frozen=True, slots=True)
class QueuedTrack:
    """One queue entry: its index in the session's queue, what to open, and how."""

    index: int
    source: MediaSource
    play: PlayRequest


@dataclass(frozen=True, slots=True)
class AppendTrack:
    track: QueuedTrack


@dataclass(frozen=True, slots=True)
class ClearQueue:
    """Drop every upcoming track (the current one plays on)."""


@dataclass(frozen=True, slots=True)
class SkipTrack:
    """End the current track now (crossfading into the next one if set)."""


QueueOp = AppendTrack | ClearQueue | SkipTrack


class TrackReader:
    """Exact PCM of one track, read ahead on demand."""

    def __init__(self, track: QueuedTrack) -> None:
        self.track = track
        self.duration: float | None = None
        self.error: str | None = None  # the track failed to open or decode
        self.started = False  # its track_start went out
        self.reported = False  # its track_end went out
        self.skipped = False  # ended by a skip
        self._audio: DecodedAudio | None = None
        self._opening: Future[None] | None = None
        self._blocks: Iterator[bytes] = iter(())
        self._exhausted = False
        self._raw = bytearray()
        self.next_sample = round(track.play.start_at * SAMPLE_RATE)  # source index of _raw[0]
        self.end_sample = _end_sample(track.play.end_at)

    @property
    def index(self) -> int:
        return self.track.index

    def open(self, opened: DecodedAudio | None = None) -> float | None:
        """Open at start_at; a failure is kept in ``error`` (and raised).

        ``opened``: this track's source already past DecodedAudio.open_stream()
        (the codec worker looked at its stream first), which is adopted.
        """
        try:
            self._reopen(self.track.play.start_at, opened)
        except MediaError as exc:
            self.error = str(exc)
            self._exhausted = True
            raise
        return self.duration

    def prefetch(self) -> None:
        """Open in the background; the first read (or ``resolved``) waits for it."""
        self._opening = _prefetcher().submit(self._reopen, self.track.play.start_at)

    @property
    def resolved(self) -> bool:
        """Whether the track is open or known to have failed (no wait)."""
        if self._opening is not None and self._opening.done():
            self.wait_open()
        return self._opening is None

    def wait_open(self) -> None:
        opening, self._opening = self._opening, None
        if opening is None:
            return
        try:
            opening.result()
        except MediaError as exc:
            self.error = str(exc)
            self._exhausted = True
        except Exception as exc:  # an unexpected PyAV failure fails this track only
            self.error = f"cannot open {self.track.source.url}: {exc}"
            self._exhausted = True

    def _reopen(self, position: float, opened: DecodedAudio | None = None) -> None:
        if opened is None:
            audio = DecodedAudio(self.track.source, position)
            self.duration = audio.open()  # raises MediaError: the old source then stays
        else:
            audio = opened
            self.duration = audio.start_decoding()
        self._close_audio()  # not close(): this may run in the prefetch thread
        self._audio = audio
        self._blocks = audio.pcm()
        self._exhausted = False
        self._raw.clear()
        self.next_sample = round(position * SAMPLE_RATE)

    def seek(self, position: float) -> None:
        self._reopen(position)

    def close(self) -> None:
        self.wait_open()
        self._close_audio()

    def _close_audio(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None

    @property
    def buffered(self) -> int:
        """Samples in hand, already clipped at end_sample."""
        samples = len(self._raw) // BYTES_PER_SAMPLE
        if self.end_sample is not None:
            samples = min(samples, max(0, self.end_sample - self.next_sample))
        return samples

    @property
    def finished(self) -> bool:
        """Nothing more will come: the source is exhausted (or past end_at)."""
        if self.end_sample is not None and self.next_sample + self.buffered >= self.end_sample:
            return True
        return self._exhausted

    def fill(self, samples: int) -> None:
        """Read ahead until ``samples`` are in hand or the track is finished.

        A decode error ends the track: ``error`` is set and what was decoded
        before it still plays.
        """
        self.wait_open()
        while self.buffered < samples and not self.finished:
            try:
                block = next(self._blocks, None)
            except MediaError as exc:
                self.error = str(exc)
                block = None
            if block is None:
                self._exhausted = True
            else:
                self._raw += block

    def read(self, samples: int) -> bytes:
        """Up to ``samples`` samples (fewer only at the track's end)."""
        raw = self._raw
        take = samples * BYTES_PER_SAMPLE
        if len(raw) < take or self.end_sample is not None or self._opening is not None:
            self.fill(samples)  # the general case: read ahead, clip at end_sample
            take = min(samples, self.buffered) * BYTES_PER_SAMPLE
        # else all in hand and nothing to clip at: the common case, once per 20 ms
        with memoryview(raw) as view:
            data = bytes(view[:take])  # one copy (a bytearray slice would be two)
        del raw[:take]
        self.next_sample += take // BYTES_PER_SAMPLE
        return data

    def cut(self, keep: int) -> None:
        """End the track ``keep`` samples from now (skip, or a sooner end_at)."""
        self.fill(keep)
        self.end_sample = self.next_sample + min(keep, self.buffered)


def _end_sample(end_at: float | None) -> int | None:
    if end_at is None:
        return None
    return round(end_at * SAMPLE_RATE)
