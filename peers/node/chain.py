# Strategy: one playback's controllable PCM chain in its codec worker
# (SPEC.md section 9, PATCH /session/{id}). The encoder that consumes
# `frames()` lives as long as the playback (one Opus encoder, one Ogg logical
# stream) while what feeds it changes underneath:
#
#   source PCM --cut 960--> FilterStage --cut 960--> ramped gain --> encoder
#
# The source is cut into 20 ms blocks before the filters, so a seek lands on
# the exact sample (the new source opens at round(position x 48000)) and,
# without filters, output frame k is source block k. The filters' output is
# cut again, so timescale never breaks the 20 ms grid or the 3,840-byte
# frame. Controls are applied between two frames: the worker handles a
# control only while the encoder generator is suspended on a yield, i.e. at a
# frame boundary. A seek reopens the source and restarts the filter state;
# a filter change flushes the old graph's tail first; a volume change ramps
# linearly over the first frame after it (no click). `seeked` is queued with
# the first frame from the new position, so the node sends it before that
# frame.
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..audio_format import BYTES_PER_SAMPLE, FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from .controls import NO_END, PlaybackControl
from .encoders import StreamEvent
from .filters import FilterStage
from .media import MediaSource
from .pipeline import DecodedAudio
from .play_request import PlayRequest

__all__ = ["Chain"]

INT16_MAX = 32767


class Chain:
    """The PCM of one playback as exact 20 ms frames, controllable between frames."""

    def __init__(self, source: MediaSource, play: PlayRequest) -> None:
        self.source = source
        self._start = play.start_at
        self._volume = play.volume
        self._filters = play.filters
        self._end_sample = _end_sample(play.end_at)
        self._gain = self._target_gain  # the first frame starts at the requested level
        self._stage = FilterStage(self._filters)
        self._audio = DecodedAudio(source, play.start_at)
        self._blocks: Iterator[bytes] = iter(())
        self._blocks_done = False
        self._raw = bytearray()  # source PCM not yet filtered
        self._out = bytearray()  # filtered PCM not yet cut into a frame
        self._next_sample = round(play.start_at * SAMPLE_RATE)  # source index of _raw[0]
        self._source_done = False
        self._announce: list[StreamEvent] = []  # queued with the next frame
        self._events: list[StreamEvent] = []  # taken with the next payload

    @property
    def _target_gain(self) -> float:
        return self._volume * self._filters.volume

    @property
    def position(self) -> float:
        """Source position (seconds) after the last frame produced."""
        return self._next_sample / SAMPLE_RATE

    def open(self) -> float | None:
        duration = self._audio.open()
        self._blocks = self._audio.pcm()
        return duration

    def close(self) -> None:
        self._audio.close()

    def take_events(self) -> tuple[StreamEvent, ...]:
        events, self._events = tuple(self._events), []
        return events

    # -- controls (called between two frames) --------------------------------

    def control(self, control: PlaybackControl) -> None:
        """Apply a control; raises MediaError when a seek cannot reopen the source."""
        if control.filters is not None and control.filters != self._filters:
            self._out += self._stage.flush()
            self._filters = control.filters
            self._stage = FilterStage(control.filters)
        if control.volume is not None:
            self._volume = control.volume
        if control.end_at is not None:
            self._end_sample = _end_sample(control.end_at)
            if self._end_sample is None or self._end_sample > self._next_sample:
                self._source_done = False  # a later end lets a finished source go on
        if control.position is not None:
            self._seek(control.position)

    def _seek(self, position: float) -> None:
        audio = DecodedAudio(self.source, position)
        audio.open()  # raises MediaError: the old source then stays in place
        self._audio.close()
        self._audio = audio
        self._blocks = audio.pcm()
        self._blocks_done = False
        self._source_done = False
        self._raw.clear()
        self._out.clear()
        self._next_sample = round(position * SAMPLE_RATE)
        self._stage = FilterStage(self._filters)  # no filter state crosses a seek
        self._announce = [StreamEvent("seeked", {"position_secs": round(position, 6)})]

    # -- frames --------------------------------------------------------------

    def frames(self) -> Iterator[bytes]:
        """Exact 3,840-byte frames; the last one padded with silence."""
        while True:
            while len(self._out) < FRAME_BYTES and not self._source_done:
                block = self._next_block()
                if block is None:
                    self._source_done = True
                    self._out += self._stage.flush()
                else:
                    self._out += self._stage.process(block)
            if not self._out:
                return
            frame = bytes(self._out[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\x00")
            del self._out[:FRAME_BYTES]
            self._events.extend(self._announce)
            self._announce = []
            yield self._apply_gain(frame)

    def _next_block(self) -> bytes | None:
        """The next 20 ms (or shorter, at the end) of source PCM; None at the end."""
        while len(self._raw) < FRAME_BYTES and not self._blocks_done:
            block = next(self._blocks, None)
            if block is None:
                self._blocks_done = True
            else:
                self._raw += block
        take = min(FRAME_BYTES, len(self._raw))
        if self._end_sample is not None:
            take = min(take, max(0, self._end_sample - self._next_sample) * BYTES_PER_SAMPLE)
        if take == 0:
            return None
        block = bytes(self._raw[:take])
        del self._raw[:take]
        self._next_sample += take // BYTES_PER_SAMPLE
        return block

    def _apply_gain(self, frame: bytes) -> bytes:
        target = self._target_gain
        start, self._gain = self._gain, target
        if start == target == 1.0:
            return frame  # unity: byte-exact
        samples = np.frombuffer(frame, dtype="<i2").reshape(FRAME_SAMPLES, 2).astype(np.float32)
        if start == target:
            samples *= target
        else:  # ramp from the old level to the new one across this frame
            ramp = np.linspace(start, target, FRAME_SAMPLES + 1, dtype=np.float32)[1:]
            samples *= ramp[:, None]
        return np.clip(np.rint(samples), -INT16_MAX - 1, INT16_MAX).astype("<i2").tobytes()


def _end_sample(end_at: float | None) -> int | None:
    if end_at is None or end_at == NO_END:
        return None
    return round(end_at * SAMPLE_RATE)
