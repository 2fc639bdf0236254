# Strategy: one playback's controllable PCM chain in its codec worker
# (SPEC.md section 9: PATCH /session/{id} and the queue). The encoder that
# consumes `frames()` lives as long as the playback (one Opus encoder, one
# Ogg logical stream) while what feeds it changes underneath:
#
#   tracks (TrackReader, queue.py) --mix--> FilterStage --cut 960--> gain --> encoder
#
# Source PCM goes through in 20 ms blocks, so a seek lands on the exact
# sample (the track reopens at round(position x 48000)) and, without
# filters, output frame k is source block k. The filters' output is cut
# again, so timescale never breaks the 20 ms grid or the 3,840-byte frame.
# Controls are applied between two frames: the worker handles a request only
# while the encoder generator is suspended on a yield, i.e. at a frame
# boundary. A seek reopens the current track and restarts the filter state; a
# filter change flushes the old graph's tail first; a volume change ramps
# linearly over the first frame after it (no click).
#
# Queue: when the current track runs out mid-block, the next track's first
# sample follows its last one in the same block (gapless, byte-exact without
# filters). With a crossfade of L samples the current track is read ahead by
# L samples; once its source is exhausted, the L samples left are mixed with
# the next track's first L samples under equal-power curves (cos/sin), so the
# total is len(A) + len(B) - L. Events are tied to the output sample they
# describe and go out with the frame that holds it: `seeked` and
# `track_start` (with that sample's offset in the frame) before it,
# `track_end` before the frame after the track's last sample. A seek during
# a crossfade seeks the incoming track (the current one for the node) and
# cuts the outgoing one off; a track whose track_end is out cannot be
# revived by a seek or an end_at.
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..audio_format import BYTES_PER_SAMPLE, FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE
from .controls import NO_END, PlaybackControl
from .encoders import StreamEvent
from .filters import FilterStage
from .media import MediaSource
from .pipeline import DecodedAudio, MediaError
from .play_request import PlayRequest
from .queue import AppendTrack, ClearQueue, QueuedTrack, QueueOp, SkipTrack, TrackReader

__all__ = ["Chain"]

INT16_MAX = 32767


class Chain:
    """The PCM of one playback as exact 20 ms frames, controllable between frames."""

    def __init__(
        self, source: MediaSource, play: PlayRequest, crossfade_ms: int = 0, queued: bool = False
    ) -> None:
        self.source = source
        self._volume = play.volume
        self._filters = play.filters
        self._gain = self._target_gain  # the first frame starts at the requested level
        self._stage = FilterStage(self._filters)
        self._current = TrackReader(QueuedTrack(0, source, play))
        self._upcoming: deque[TrackReader] = deque()
        self._queued = queued  # track events only for playbacks with a queue
        self._crossfade = _samples(crossfade_ms)
        self._fade: _Fade | None = None
        self._out = bytearray()  # filtered PCM not yet cut into a frame
        self._out_start = 0  # output sample index of _out[0]
        self._done = False  # no more source PCM
        self._ended = False  # frames() returned: nothing can be added any more
        self._pending: list[tuple[int, StreamEvent]] = []  # (output sample, event)
        self._events: list[StreamEvent] = []  # taken with the next payload

    @property
    def _target_gain(self) -> float:
        return self._volume * self._filters.volume

    @property
    def position(self) -> float:
        """The current track's source position (seconds) after the last block taken."""
        return self._current.next_sample / SAMPLE_RATE

    def open(self, opened: DecodedAudio | None = None) -> float | None:
        """Open the first track (``opened``: its source past open_stream(), adopted)."""
        duration = self._current.open(opened)
        if self._queued:
            self._announce_start(self._current, 0)
        return duration

    def close(self) -> None:
        self._current.close()
        if self._fade is not None:
            self._fade.incoming.close()
        for reader in self._upcoming:
            reader.close()

    def take_events(self) -> tuple[StreamEvent, ...]:
        if not self._events:
            return ()  # nearly every frame: no allocation
        events, self._events = tuple(self._events), []
        return events

    # -- controls (called between two frames) --------------------------------

    def control(self, control: PlaybackControl) -> None:
        """Apply a control; raises MediaError when a seek cannot reopen the source."""
        if control.position is not None:
            self._seek(control.position)
        if control.filters is not None and control.filters != self._filters:
            self._out += self._stage.flush()
            self._filters = control.filters
            self._stage = FilterStage(control.filters)
        if control.volume is not None:
            self._volume = control.volume
        if control.end_at is not None and not self._current.reported:
            end = None if control.end_at == NO_END else round(control.end_at * SAMPLE_RATE)
            self._current.end_sample = end
            self._done = False
        if control.crossfade_ms is not None:
            self._crossfade = _samples(control.crossfade_ms)

    def _seek(self, position: float) -> None:
        """Seek the current track; during a crossfade that is the incoming one."""
        fade = self._fade
        target = fade.incoming if fade is not None else self._current
        if target.reported:  # its track_end is out: the queue has moved past it
            raise MediaError("the track has ended: nothing to seek in")
        target.seek(position)  # raises MediaError: nothing changed
        if fade is not None:  # the outgoing track is cut off here
            self._fade = None
            fade.outgoing.skipped = True
            self._announce_end(fade.outgoing, self._out_start, "skipped")
            fade.outgoing.close()
            self._current = target
        self._done = False
        self._out.clear()
        self._stage = FilterStage(self._filters)  # no filter state crosses a seek
        # events tied to output that was just dropped go out with the next frame
        self._pending = [(min(at, self._out_start), event) for at, event in self._pending]
        self._tie(self._out_start, StreamEvent("seeked", {"position_secs": round(position, 6)}))

    def queue(self, op: QueueOp) -> None:
        """Apply a queue operation; MediaError once the queue has run out."""
        if self._ended:
            raise MediaError("the queue ran out: this playback is ending (queue again after it)")
        if isinstance(op, AppendTrack):
            self._queued = True
            reader = TrackReader(op.track)
            self._upcoming.append(reader)
            self._done = False
            reader.prefetch()  # opened and probed now, in the background (its track_start
            return  # carries the probed duration)
        if isinstance(op, ClearQueue):
            for reader in self._upcoming:
                reader.close()
            self._upcoming.clear()
        elif isinstance(op, SkipTrack):
            self._skip()

    def _skip(self) -> None:
        if self._fade is not None:
            self._fade.outgoing.skipped = True
            self._fade.outgoing.cut(0)  # the incoming track takes over at once
            return
        self._current.skipped = True
        has_next = bool(self._upcoming)
        self._current.cut(self._crossfade if has_next else 0)

    # -- frames --------------------------------------------------------------

    def frames(self) -> Iterator[bytes]:
        """Exact 3,840-byte frames; the last one padded with silence."""
        while True:
            if not self._out and not self._done and self._stage.passthrough:
                # the common case, once per 20 ms: no filter and nothing left
                # over, so a whole source block is the frame (no copy, no cut)
                block = self._next_block(self._out_start)
                if block is not None and len(block) == FRAME_BYTES:
                    self._out_start += FRAME_SAMPLES
                    if self._pending:
                        self._release(self._out_start)
                    yield self._apply_gain(block)
                    continue
                if block is None:
                    self._done = True  # a passthrough stage has nothing to flush
                else:
                    self._out += block  # a short block: cut below, as the stage would
            while len(self._out) < FRAME_BYTES and not self._done:
                before = len(self._out) // BYTES_PER_SAMPLE
                block = self._next_block(self._out_start + before)
                if block is None:
                    self._done = True
                    self._out += self._stage.flush()
                else:
                    self._out += self._stage.process(block)
            if not self._out:
                self._release(None)  # events of an empty tail (a skip at the very end)
                self._ended = True
                return
            frame = bytes(self._out[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\x00")
            del self._out[:FRAME_BYTES]
            self._out_start += FRAME_SAMPLES
            last = self._done and not self._out
            self._release(None if last else self._out_start)
            if last:
                self._ended = True  # a track queued now would never be heard
            yield self._apply_gain(frame)

    def _release(self, before: int | None) -> None:
        """Move the events tied to output samples before ``before`` (None: all) to this frame."""
        keep = []
        for at, event in self._pending:
            if before is None or at < before:
                self._events.append(event)
            else:
                keep.append((at, event))
        self._pending = keep

    def _tie(self, at: int, event: StreamEvent) -> None:
        self._pending.append((at, event))

    def _announce_start(self, reader: TrackReader, at: int) -> None:
        reader.started = True
        track = reader.track
        fields: dict[str, Any] = {"index": track.index, "url": track.source.url}
        if reader.duration is not None:
            fields["duration"] = round(reader.duration, 6)
        fields["sample_offset"] = at % FRAME_SAMPLES
        self._tie(at, StreamEvent("track_start", fields))

    def _announce_end(self, reader: TrackReader, at: int, reason: str) -> None:
        if reader.reported:
            return  # a track ends once
        reader.reported = True
        if not self._queued:
            return
        fields: dict[str, Any] = {"index": reader.index, "reason": reason}
        if reason == "error" and reader.error is not None:
            fields["message"] = reader.error
        # before the frame after the one holding the track's last sample
        frame_end = (max(at, 1) + FRAME_SAMPLES - 1) // FRAME_SAMPLES * FRAME_SAMPLES
        self._tie(frame_end, StreamEvent("track_end", fields))

    def _next_block(self, at: int) -> bytes | None:
        """The next (up to 20 ms) source PCM block, starting at output sample ``at``."""
        if self._fade is not None:
            return self._fading(at)
        current = self._current
        if self._crossfade and self._next_ready() is not None:
            current.fill(self._crossfade + FRAME_SAMPLES)
            if current.finished and 0 < current.buffered <= self._crossfade:
                return self._start_fade(at)
            plain = min(FRAME_SAMPLES, current.buffered - self._crossfade)
            if current.finished and plain > 0:
                return current.read(plain)  # up to the fade's first sample
        block = current.read(FRAME_SAMPLES)
        while len(block) < FRAME_BYTES:  # the track ended inside this block
            ended_at = at + len(block) // BYTES_PER_SAMPLE
            if not self._advance(ended_at):
                return block or None
            block += self._current.read(FRAME_SAMPLES - len(block) // BYTES_PER_SAMPLE)
        return block

    def _next_ready(self) -> TrackReader | None:
        """The next playable track if it is open already (failed ones are passed over)."""
        for reader in self._upcoming:
            if not reader.resolved:
                return None  # still opening: no fade planned yet
            if reader.error is None:
                return reader
        return None

    def _advance(self, at: int) -> bool:
        """The current track ended at output sample ``at``: move to the next playable one."""
        ended = self._current
        if ended.error is not None and not self._queued:
            raise MediaError(ended.error)  # a single track's decode error ends the playback
        self._announce_end(ended, at, self._end_reason(ended))
        ended.close()
        while self._upcoming:
            reader = self._upcoming.popleft()
            reader.wait_open()  # prefetched long ago, normally
            if reader.error is not None:
                if self._queued:
                    self._announce_start(reader, at)
                self._announce_end(reader, at, "error")
                reader.close()
                continue
            self._current = reader
            if self._queued:
                self._announce_start(reader, at)
            return True
        return False

    @staticmethod
    def _end_reason(reader: TrackReader) -> str:
        if reader.error is not None:
            return "error"
        return "skipped" if reader.skipped else "finished"

    def _start_fade(self, at: int) -> bytes | None:
        while self._upcoming and self._upcoming[0].error is not None:
            failed = self._upcoming.popleft()
            if self._queued:
                self._announce_start(failed, at)
            self._announce_end(failed, at, "error")
        incoming = self._upcoming.popleft()
        self._fade = _Fade(self._current, incoming, self._current.buffered)  # > 0
        if self._queued:
            self._announce_start(incoming, at)
        return self._fading(at)

    def _fading(self, at: int) -> bytes | None:
        fade = self._fade
        assert fade is not None
        n = min(FRAME_SAMPLES, fade.outgoing.buffered)
        a = _as_float(fade.outgoing.read(n), n)
        b = _as_float(fade.incoming.read(n), n)
        t = (fade.done + np.arange(n, dtype=np.float64) + 0.5) / fade.length
        mixed = a * np.cos(t * math.pi / 2)[:, None] + b * np.sin(t * math.pi / 2)[:, None]
        fade.done += n
        if fade.outgoing.buffered == 0:  # the fade is over: the incoming track is current
            self._fade = None
            self._announce_end(fade.outgoing, at + n, self._end_reason(fade.outgoing))
            fade.outgoing.close()
            self._current = fade.incoming
            if n == 0:  # skipped at the fade's first sample
                return self._next_block(at)
        # a short block at the fade's end is fine: the output is cut into frames again
        return np.clip(np.rint(mixed), -INT16_MAX - 1, INT16_MAX).astype("<i2").tobytes()

    def _apply_gain(self, frame: bytes) -> bytes:
        target = self._volume * self._filters.volume  # _target_gain, without a property call
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


class _Fade:
    def __init__(self, outgoing: TrackReader, incoming: TrackReader, length: int) -> None:
        self.outgoing = outgoing
        self.incoming = incoming
        self.length = length
        self.done = 0


def _samples(milliseconds: int) -> int:
    return round(milliseconds * SAMPLE_RATE / 1000)


def _as_float(data: bytes, samples: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """s16 stereo -> float (samples, 2), zero-padded to ``samples``."""
    out = np.zeros((samples, 2), dtype=np.float64)
    got = np.frombuffer(data, dtype="<i2").reshape(-1, 2)
    out[: len(got)] = got
    return out
