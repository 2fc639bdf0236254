# Strategy: sessions and their playbacks (SPEC.md section 9). A session ID
# maps to its current playback; play on X ends only X's playback (finished
# "replaced") and starts a new one. Every end (finished, stopped, replaced,
# error) is decided synchronously on the event loop: the state flips, the
# closing frames and event are queued, the playback leaves the node's pacing
# clock and its task is cancelled, so once the end event is queued no frame
# of that playback can follow it. Paced playbacks send from the clock's tick
# (clock.py), not from a task per frame; --no-pace keeps a task loop.
# Decoding runs in codec worker processes (CodecPool); one playback's failure
# is caught in its own task and never reaches another session. Live
# controls (PATCH: seek, volume, filters, end_at) go to the playback's chain
# in its worker and apply at the next frame the worker makes; the events the
# chain attaches to a payload (`seeked`) are sent just before it. A playback
# whose next frame does not come for --stuck-threshold-ms sends `stuck`, and
# fails after STUCK_GIVE_UP_SECONDS more. A playback may hold a queue of
# tracks (queue.py): they play in its one chain, so the stream never
# restarts between them; the node learns which track is current from the
# track_start/track_end events that pass by with the payloads. Refills tell
# the codec worker when the playback would run dry, so a burst of new plays
# queues behind the refills that playing sessions need now ([P3]). A
# playback may pass its source's Opus packets through ([P8]); a control then
# switches it to transcoding in the worker (codec_worker.py). The play
# request waits for `opened()`: the worker has opened the media and decoded
# its first block, or failed with a MediaProblem the API turns into 404/422
# ([A4]); the `error` event goes to the receivers either way.
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from snowmux.protocol import FinishReason, PayloadFormat, encode_event, frame_encoder

from ..audio_format import FRAME_SECONDS, OPUS_SILENCE
from ..defaults import SILENCE_FRAMES, STUCK_THRESHOLD_MS
from .clock import GRID_EPSILON, PacingClock
from .codec_messages import PayloadTuple
from .codec_pool import CodecPool
from .controls import NO_END, PlaybackControl
from .hub import ReceiverHub
from .media import MediaSource
from .pacing import LATE_AFTER_SECONDS, LatenessWindow, Pacer
from .pipeline import MediaError
from .play_request import PlayRequest
from .queue import AppendTrack, ClearQueue, QueuedTrack, QueueOp, SkipTrack
from .source import PayloadSource

__all__ = [
    "NodeStats",
    "FormatMismatch",
    "NotActive",
    "PlayRequest",
    "Playback",
    "PlaybackState",
    "SessionManager",
    "TooManySessions",
    "UnknownSession",
]

log = logging.getLogger("snowmux.node.sessions")
T = TypeVar("T")


class PlaybackState(StrEnum):
    """Where a playback is in its life (the ``state`` of GET status)."""

    STARTING = "starting"
    PLAYING = "playing"
    PAUSED = "paused"
    FINISHED = "finished"
    STOPPED = "stopped"
    REPLACED = "replaced"
    ERROR = "error"


ACTIVE_STATES = frozenset({PlaybackState.STARTING, PlaybackState.PLAYING, PlaybackState.PAUSED})
KEEP_ENDED = 1024  # ended playbacks kept for /status; bounds the registry
STUCK_THRESHOLD_SECONDS = STUCK_THRESHOLD_MS / 1000  # Lavalink's default, in defaults.py
STUCK_GIVE_UP_SECONDS = 30.0  # after `stuck`, this much more silence ends the playback
# A paused playback needs no refill: its deadline is put far away, behind every
# playing session's (codec_schedule.py), but finite so it is still served.
PAUSED_DEADLINE_SECONDS = 60.0
# For its prebuffer and first second after it, a playback asks the codec workers
# without a deadline, so a burst of new plays queues behind the refills that
# playing sessions need now; its receiver still holds the prebuffer meanwhile.
STARTUP_FRAMES = round(1.0 / FRAME_SECONDS)
# Frames later than this may set late_max_ms; below it the hot path skips the
# bookkeeping (0.1 ms is under the LatenessWindow's 0.25 ms resolution).
LATE_MS_CHECK_SECONDS = 0.0001


class UnknownSession(KeyError):
    """No playback was ever started on this session ID (HTTP 404)."""


class NotActive(Exception):
    """The session's playback has ended (HTTP 409)."""


class FormatMismatch(Exception):
    """A queued track asks for another format than the playback's (HTTP 409)."""


class TooManySessions(Exception):
    """--max-sessions active sessions already (HTTP 429)."""


@dataclass
class NodeStats:
    started: float = field(default_factory=time.monotonic)
    playbacks_started: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_dropped: int = 0
    frames_late: int = 0
    lateness: LatenessWindow = field(default_factory=LatenessWindow)
    # Set by the node's metrics (snowmux.node.metrics) to feed its histogram.
    observe_first_frame: Callable[[float], None] | None = None


@dataclass
class NodeContext:
    hub: ReceiverHub
    codecs: CodecPool
    pace: bool
    prebuffer_frames: int
    progress_every_frames: int
    stats: NodeStats
    stuck_threshold: float = STUCK_THRESHOLD_SECONDS
    clock: PacingClock = field(default_factory=PacingClock)
    background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


class Playback:
    def __init__(
        self,
        session_id: str,
        request: PlayRequest,
        source: MediaSource,
        node: NodeContext,
        crossfade_ms: int = 0,
        queued: bool = False,
    ) -> None:
        self.session_id = session_id
        self.request = request
        self.source = source
        self.node = node
        self.state = PlaybackState.STARTING
        self.duration: float | None = request.duration
        self.error: str | None = None
        self.frames_sent = 0
        self.bytes_sent = 0
        self.frames_dropped = 0
        self.frames_late = 0
        self.late_max_ms = 0.0
        self.audio_frames = 0
        self.header_pages: list[bytes] = []
        self.passthrough = False  # SPEC.md [P8]: source Opus packets forwarded as they are
        self.created = time.monotonic()
        self.ready_sent = False
        self._silent_since_pause = False
        self._resume = asyncio.Event()
        self._resume.set()
        self._pacer = Pacer(node.prebuffer_frames, grid=node.clock.period)
        self._task: asyncio.Task[None] | None = None
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._position = request.start_at  # source position after the last frame sent
        self.volume = request.volume
        self.filters = request.filters
        self.end_at = request.end_at
        self._source: PayloadSource | None = None
        self._early_controls: list[PlaybackControl | QueueOp] = []  # before the source opened
        self.crossfade_ms = crossfade_ms
        self.queued = queued
        self.tracks: list[dict[str, Any]] = [_track_info(0, request, self.duration, "playing")]
        self.current_track = 0
        self._give_up: asyncio.TimerHandle | None = None  # armed by `stuck`
        self._stuck_timer: asyncio.TimerHandle | None = None  # armed while starved (paced)
        # Paced by the node's clock (clock.py): the payload not yet due, and the
        # future that the end of the source resolves.
        self._pending: PayloadTuple | None = None
        self._done: asyncio.Future[None] | None = None
        # progress every N frames; 0 (off) becomes a period no playback reaches
        self._progress_every = node.progress_every_frames or 1 << 62
        self._encode = frame_encoder(session_id)

    # -- state --------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def position_secs(self) -> float:
        return self._position

    def status(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "state": self.state,
            "url": self.request.url,
            "format": self.request.format,
            "bitrate": self.request.bitrate,
            "position_secs": round(self.position_secs, 3),
            "duration": self.duration,
            "volume": self.volume,
            "filters": self.filters.to_json(),
            "end_at": self.end_at,
            "crossfade_ms": self.crossfade_ms,
            "frames_sent": self.frames_sent,
            "bytes_sent": self.bytes_sent,
            "frames_dropped": self.frames_dropped,
            "frames_late": self.frames_late,
            "late_max_ms": round(self.late_max_ms, 2),
            "passthrough": self.passthrough,
            "error": self.error,
        }

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def opened(self) -> None:
        """Return once the media is open and its first block decoded; raise MediaError if not.

        A playback stopped or replaced while opening returns normally: the
        request that started it succeeded, and its end event tells the rest.
        """
        await asyncio.shield(self._opened)

    def _settle_open(self, error: MediaError | None = None) -> None:
        if self._opened.done():
            return
        if error is None:
            self._opened.set_result(None)
        else:
            self._opened.set_exception(error)

    def pause(self) -> None:
        if self.state is PlaybackState.PLAYING:
            self.state = PlaybackState.PAUSED
            self._resume.clear()
            self._fed()  # a paused playback is not stuck
            self._send_silence()
            log.info("session %s paused at %.2fs", self.session_id, self.position_secs)

    def resume(self) -> None:
        if self.state is PlaybackState.PAUSED:
            self.state = PlaybackState.PLAYING
            self._pacer.restart(self.audio_frames)
            self._silent_since_pause = False
            self._resume.set()
            self._pump()  # the new prebuffer burst goes now, not at the next tick
            log.info("session %s resumed at %.2fs", self.session_id, self.position_secs)

    async def update(self, control: PlaybackControl) -> None:
        """Apply a PATCH: the chain's controls first (awaited), then pause/resume.

        Raises MediaError when the worker could not apply it (a seek that
        cannot reopen the source); the playback then goes on unchanged.
        """
        if control.for_worker:
            source = self._source
            if source is None:
                self._early_controls.append(control)
            else:
                await source.control(control, self._restart_point)
            self.passthrough = False  # the worker transcodes from now on ([P8])
        if control.volume is not None:
            self.volume = control.volume
        if control.filters is not None:
            self.filters = control.filters
        if control.end_at is not None:
            self.end_at = None if control.end_at == NO_END else control.end_at
        if control.crossfade_ms is not None:
            self.crossfade_ms = control.crossfade_ms
        if control.paused is True:
            self.pause()
        elif control.paused is False:
            self.resume()

    def end(self, reason: FinishReason) -> None:
        """finished / stopped / replaced: queue the closing frames and event, stop the task."""
        if not self.active:
            return
        self._close("finished", PlaybackState(reason.value), reason=reason)

    def fail(self, message: str) -> None:
        if not self.active:
            return
        self.error = message
        self._close("error", PlaybackState.ERROR, message=message)

    def _close(self, event_type: str, state: PlaybackState, **fields: Any) -> None:
        started = self.ready_sent
        self.state = state
        if started:
            self._send_silence()
        self._event(event_type, **fields)
        self._settle_open()
        self.node.clock.discard(self)
        self._fed()
        self._resume.set()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        log.info(
            "session %s %s (%s) after %d frames, %.2fs",
            self.session_id,
            event_type,
            fields.get("reason") or fields.get("message"),
            self.frames_sent,
            self.position_secs,
        )

    # -- output -------------------------------------------------------------

    def _event(self, event_type: str, **fields: Any) -> None:
        self.node.hub.send_event(encode_event(event_type, self.session_id, **fields))

    def _send(self, data: bytes, droppable: bool = True) -> None:
        self.node.hub.send_frame(self._encode(data), self.session_id, droppable)
        self.frames_sent += 1
        self.bytes_sent += len(data)
        stats = self.node.stats
        stats.frames_sent += 1
        stats.bytes_sent += len(data)

    def _send_silence(self) -> None:
        if self.request.format is PayloadFormat.OPUS_PACKETS and not self._silent_since_pause:
            for _ in range(SILENCE_FRAMES):
                self._send(OPUS_SILENCE, droppable=False)
            self._silent_since_pause = True

    def ready_event(self) -> bytes:
        fields: dict[str, Any] = {"format": self.request.format}
        if self.duration is not None:
            fields["duration"] = round(self.duration, 6)
        fields["position_secs"] = round(self.position_secs, 6)
        return encode_event("ready", self.session_id, **fields)

    def announcement(self) -> Iterator[bytes]:
        """What a receiver joining mid-playback needs to start a valid file ([P5])."""
        if self.active and self.ready_sent:
            yield self.ready_event()
            for page in self.header_pages:
                yield self._encode(page)

    # -- the task -----------------------------------------------------------

    async def _run(self) -> None:
        try:
            pipeline, probed = await self._watched(
                self.node.codecs.open(self.source, self.request, self.crossfade_ms, self.queued)
            )
        except Exception as exc:
            error = exc if isinstance(exc, MediaError) else MediaError(f"cannot open: {exc}")
            self._settle_open(error)  # first, so the request gets the problem, not a plain end
            self.fail(str(error))
            return
        self._settle_open()
        if not self.active:
            self.node.spawn(pipeline.aclose())
            return
        if probed is not None:
            self.duration = probed
        self.passthrough = pipeline.passthrough
        source = PayloadSource(pipeline, self._refill_deadline)
        try:
            for early in self._early_controls:
                if isinstance(early, PlaybackControl):
                    await source.control(early)
                else:
                    await source.queue(early)
            if self._early_controls:
                self.passthrough = False  # they switched it to transcoding ([P8])
            self._early_controls.clear()
            self._source = source
            await self._play(source)
        except MediaError as exc:
            self.fail(str(exc))
        except asyncio.CancelledError:
            pass  # ended by stop/replace/shutdown, which already queued the events
        except Exception as exc:
            log.exception("session %s: playback failed", self.session_id)
            self.fail(f"playback failed: {exc}")
        else:
            self.end(FinishReason.FINISHED)
        finally:
            self.node.spawn(source.aclose())

    async def _play(self, source: PayloadSource) -> None:
        first = await self._next(source)  # decode errors surface before ready
        if self.state is PlaybackState.STARTING:
            self.state = PlaybackState.PLAYING
        self.node.hub.send_event(self.ready_event())
        self.ready_sent = True
        self.node.stats.playbacks_started += 1
        log.info(
            "session %s playing %s as %s from %.2fs",
            self.session_id,
            self.request.url,
            self.request.format,
            self.request.start_at,
        )
        if self.node.pace:
            await self._play_paced(source, first)
            return
        payload = first
        while payload is not None:
            if payload[0] and not payload[1]:  # audio (data, not a header): wait for room
                await self._wait_for_room()
                if not self.active:  # belt and braces: cancellation normally stops us first
                    return
            self._deliver(payload, None, 0.0)
            payload = await self._next(source)

    async def _play_paced(self, source: PayloadSource, first: PayloadTuple | None) -> None:
        """Hand the playback to the node's clock until its source ends."""
        self._pending = first
        self._done = asyncio.get_running_loop().create_future()
        source.on_arrival = self._pump
        self._pacer.offset = self.node.clock.add(self)
        self._pacer.restart(0)
        try:
            self._pump()  # the prebuffer burst goes now
            await self._done
        finally:
            self.node.clock.discard(self)
            source.on_arrival = None

    def _pump(self) -> None:
        """send_due now, outside the clock's tick (start, resume, a refill's arrival)."""
        try:
            self.send_due(time.monotonic())
        except Exception as exc:
            log.exception("session %s: pacing failed", self.session_id)
            self.crashed(exc)

    def send_due(self, now: float) -> None:
        """Send every payload due at ``now`` that is in hand (PacingClock member)."""
        if self.state is not PlaybackState.PLAYING:
            return
        source, done = self._source, self._done
        if source is None or done is None or done.done():
            return
        # The hot path of the node: every paced frame of every session passes
        # here. A plain audio frame is sent inline (what _deliver does, minus
        # its branches for events, headers and milestones); the rest goes
        # through _deliver.
        pacer = self._pacer
        anchor, first_timed = pacer.anchor, pacer.first_timed  # Pacer.due(), inlined
        limit = now + GRID_EPSILON
        sent_at = 0.0  # one clock reading for the frames of this call, taken lazily
        session_id, encode, send = self.session_id, self._encode, self.node.hub.send_frame
        stats, window = self.node.stats, self.node.stats.lateness
        payload, self._pending = self._pending, None
        while True:
            if payload is None:
                payload = source.pop()
                if payload is None:
                    if source.ended:
                        error = source.take_error()
                        if error is None:
                            done.set_result(None)
                        else:
                            done.set_exception(error)
                    else:
                        self._starved()  # a refill is in flight: its arrival pumps again
                    return
                if self._stuck_timer is not None:
                    self._fed()
            data, is_header, position, events = payload
            if not data or is_header:
                self._deliver(payload, None, 0.0)
                payload = None
                continue
            index = self.audio_frames
            ahead = index - first_timed
            due = anchor + ahead * FRAME_SECONDS if ahead > 0 else anchor
            if due > limit and ahead >= 0:  # burst frames go at once
                self._pending = payload
                return
            if not sent_at:
                sent_at = time.monotonic()
            lateness = sent_at - due if ahead >= 0 else None
            if events or index == 0 or (index + 1) % self._progress_every == 0:
                self._deliver(payload, lateness, sent_at)
                if not self.active:  # an event handler ended it (never, today): stop here
                    return
                payload = None
                continue
            send(encode(data), session_id)
            size = len(data)
            self.frames_sent += 1
            self.bytes_sent += size
            stats.frames_sent += 1
            stats.bytes_sent += size
            self.audio_frames = index + 1
            self._position = position if position is not None else self._position + FRAME_SECONDS
            if lateness is not None:
                if lateness < 0.0:
                    lateness = 0.0
                window.add(lateness, sent_at)
                if lateness > LATE_MS_CHECK_SECONDS:
                    self._note_late(lateness)
            payload = None

    def crashed(self, error: Exception) -> None:
        """send_due raised: this playback ends with an error event, nobody else."""
        self.fail(f"playback failed: {error}")

    def _deliver(self, payload: PayloadTuple, lateness: float | None, now: float) -> None:
        """Send one payload, its events first, and account for it.

        ``lateness``: how late a paced frame with a deadline is (None: a burst
        frame, unpaced, or not audio), ``now`` when that was measured.
        """
        data, is_header, position, events = payload
        for event in events:
            self._track_event(event.type, event.fields)
            self._event(event.type, **event.fields)
        if not data:
            return  # events only (a track_end after the last frame)
        if is_header:
            self.header_pages.append(data)
            self._send(data, droppable=False)
            return
        self._send(data)
        self.audio_frames += 1
        if self.audio_frames == 1 and self.node.stats.observe_first_frame is not None:
            self.node.stats.observe_first_frame(time.monotonic() - self.created)
        if position is not None:
            self._position = position
        else:
            self._position += FRAME_SECONDS
        if lateness is not None:
            self._record_lateness(max(0.0, lateness), now)
        if self.audio_frames % self._progress_every == 0:
            self._event(
                "progress",
                bytes=self.bytes_sent,
                playback_secs=round(self.position_secs, 3),
            )

    # -- the queue ----------------------------------------------------------

    async def enqueue(self, request: PlayRequest, source: MediaSource) -> int:
        """Append a track; answers its index (its position in the queue)."""
        index = len(self.tracks)
        self.queued = True
        self.tracks.append(_track_info(index, request, request.duration, "queued"))
        op = AppendTrack(QueuedTrack(index, source, request))
        await self._queue_op(op)
        return index

    async def clear_queue(self) -> int:
        """Drop the upcoming tracks; answers how many."""
        upcoming = [t for t in self.tracks if t["state"] == "queued"]
        for track in upcoming:
            track["state"] = "cleared"
        await self._queue_op(ClearQueue())
        return len(upcoming)

    async def skip(self) -> None:
        await self._queue_op(SkipTrack())

    async def _queue_op(self, op: QueueOp) -> None:
        source = self._source
        if source is None:
            self._early_controls.append(op)
        else:
            await source.queue(op, self._restart_point)
        self.passthrough = False  # the worker transcodes from now on ([P8])

    def _restart_point(self) -> float:
        """Where a restartable passthrough restarts: after the last frame sent.

        Called as the source drops its buffer; the payload held back for its
        due time goes too (the worker makes it again).
        """
        self._pending = None
        return self._position

    def queue_status(self) -> dict[str, Any]:
        return {
            "tracks": [t for t in self.tracks if t["state"] != "cleared"],
            "current": self.current_track,
            "crossfade_ms": self.crossfade_ms,
        }

    def _track_event(self, event_type: str, fields: dict[str, Any]) -> None:
        index = fields.get("index")
        if not isinstance(index, int) or not 0 <= index < len(self.tracks):
            return
        if event_type == "track_start":
            self.current_track = index
            self.tracks[index]["state"] = "playing"
            if isinstance(fields.get("duration"), int | float):
                self.tracks[index]["duration"] = fields["duration"]
        elif event_type == "track_end":
            self.tracks[index]["state"] = fields.get("reason", "finished")

    async def _next(self, source: PayloadSource) -> PayloadTuple | None:
        if source.buffered:
            return await source.next()
        return await self._watched(source.next())

    async def _watched(self, awaitable: Awaitable[T]) -> T:
        """Await the next audio; `stuck` after the threshold, an error 30 s later.

        Timers, not a timeout: nothing is cancelled on the way (a cancelled
        open or batch request would orphan the playback in its worker); an
        error ends the playback through fail(), which cancels this task.
        """
        loop = asyncio.get_running_loop()
        stuck = loop.call_later(self.node.stuck_threshold, self._on_stuck)
        try:
            return await awaitable
        finally:
            stuck.cancel()
            if self._give_up is not None:
                self._give_up.cancel()
                self._give_up = None

    def _starved(self) -> None:
        """Paced: no payload in hand while a refill is in flight; `stuck` if it stays so."""
        if self._stuck_timer is None and self._give_up is None:
            loop = asyncio.get_running_loop()
            self._stuck_timer = loop.call_later(self.node.stuck_threshold, self._on_stuck)

    def _fed(self) -> None:
        """A payload came (or the playback paused or ended): not stuck."""
        if self._stuck_timer is not None:
            self._stuck_timer.cancel()
            self._stuck_timer = None
        if self._give_up is not None:
            self._give_up.cancel()
            self._give_up = None

    def _on_stuck(self) -> None:
        self._stuck_timer = None
        if not self.active:
            return
        threshold = self.node.stuck_threshold
        log.warning("session %s: no audio for %.1fs, stuck", self.session_id, threshold)
        self._event("stuck", threshold_ms=round(threshold * 1000))
        message = f"stuck: no audio for {threshold + STUCK_GIVE_UP_SECONDS:g} s"
        self._give_up = asyncio.get_running_loop().call_later(
            STUCK_GIVE_UP_SECONDS, self.fail, message
        )

    async def _wait_for_room(self) -> None:
        """Unpaced (--no-pace): wait while paused and until the receivers have room."""
        while True:
            await self._resume.wait()
            await self.node.hub.wait_for_room()
            if self._resume.is_set():
                return

    def _refill_deadline(self, buffered: int) -> float | None:
        """When this playback runs dry with ``buffered`` payloads in hand (None: starting)."""
        if not self.node.pace or self.state is PlaybackState.STARTING:
            return None
        if self.state is PlaybackState.PAUSED:
            return time.monotonic() + PAUSED_DEADLINE_SECONDS
        index = self.audio_frames + buffered
        if self._pacer.since_start(index) < self.node.prebuffer_frames + STARTUP_FRAMES:
            return None  # still starting: served after every playing session's due refill
        return self._pacer.due(index)

    def _record_lateness(self, lateness: float, now: float) -> None:
        self.node.stats.lateness.add(lateness, now)
        if lateness > LATE_MS_CHECK_SECONDS:
            self._note_late(lateness)

    def _note_late(self, lateness: float) -> None:
        """late_max_ms, and frames_late past LATE_AFTER_SECONDS."""
        ms = lateness * 1000
        if ms > self.late_max_ms:
            self.late_max_ms = ms
        if lateness > LATE_AFTER_SECONDS:
            self.frames_late += 1
            self.node.stats.frames_late += 1


def _track_info(
    index: int, request: PlayRequest, duration: float | None, state: str
) -> dict[str, Any]:
    return {
        "index": index,
        "url": request.url,
        "duration": duration,
        "start_at": request.start_at,
        "end_at": request.end_at,
        "state": state,
    }


class SessionManager:
    def __init__(self, node: NodeContext, max_sessions: int) -> None:
        self.node = node
        self.max_sessions = max_sessions
        self.playbacks: dict[str, Playback] = {}

    def active(self) -> list[Playback]:
        return [p for p in self.playbacks.values() if p.active]

    def play(
        self,
        session_id: str,
        request: PlayRequest,
        source: MediaSource,
        crossfade_ms: int = 0,
        queued: bool = False,
    ) -> Playback:
        current = self.playbacks.get(session_id)
        replacing = current is not None and current.active
        if not replacing and len(self.active()) >= self.max_sessions:
            raise TooManySessions(
                f"{self.max_sessions} sessions are active (--max-sessions); stop one first"
            )
        if current is not None:
            current.end(FinishReason.REPLACED)
            del self.playbacks[session_id]  # re-insert: dict order = recency, for pruning
        playback = Playback(session_id, request, source, self.node, crossfade_ms, queued)
        self.playbacks[session_id] = playback
        playback.start()
        self._prune()
        return playback

    def get(self, session_id: str) -> Playback:
        try:
            return self.playbacks[session_id]
        except KeyError:
            raise UnknownSession(session_id) from None

    def stop(self, session_id: str) -> Playback | None:
        playback = self.playbacks.get(session_id)
        if playback is not None:
            playback.end(FinishReason.STOPPED)
        return playback

    def pause(self, session_id: str) -> Playback:
        playback = self._active(session_id)
        playback.pause()
        return playback

    def resume(self, session_id: str) -> Playback:
        playback = self._active(session_id)
        playback.resume()
        return playback

    async def enqueue(
        self,
        session_id: str,
        request: PlayRequest,
        source: MediaSource,
        crossfade_ms: int | None,
        format_given: bool = True,
    ) -> int:
        """Queue a track; an idle or ended session starts playing it. Answers its position.

        Later tracks inherit the playback's format; asking for another is a
        FormatMismatch (one encoder, one stream).
        """
        current = self.playbacks.get(session_id)
        if current is None or not current.active:
            self.play(session_id, request, source, crossfade_ms or 0, queued=True)
            return 0
        if not format_given:
            request = replace(request, format=current.request.format)
        elif request.format != current.request.format:
            raise FormatMismatch(
                f"session {session_id} plays format {current.request.format}; "
                f"a queued track cannot change the format to {request.format}"
            )
        if crossfade_ms is not None:
            await current.update(PlaybackControl(crossfade_ms=crossfade_ms))
        return await current.enqueue(request, source)

    async def clear_queue(self, session_id: str) -> int:
        return await self._active(session_id).clear_queue()

    async def skip(self, session_id: str) -> Playback:
        playback = self._active(session_id)
        await playback.skip()
        return playback

    async def update(self, session_id: str, control: PlaybackControl) -> Playback:
        playback = self._active(session_id)
        await playback.update(control)
        return playback

    def _active(self, session_id: str) -> Playback:
        playback = self.get(session_id)
        if not playback.active:
            raise NotActive(f"session {session_id} is not playing (state: {playback.state})")
        return playback

    def announce(self) -> Iterator[bytes]:
        for playback in self.playbacks.values():
            yield from playback.announcement()

    def count_drop(self, session_id: str) -> None:
        self.node.stats.frames_dropped += 1
        playback = self.playbacks.get(session_id)
        if playback is not None:
            playback.frames_dropped += 1

    def _prune(self) -> None:
        ended = [sid for sid, p in self.playbacks.items() if not p.active]
        for session_id in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self.playbacks[session_id]

    async def stop_all(self) -> None:
        """End every playback (finished: stopped) and wait for their tasks to wind up."""
        for playback in self.active():
            playback.end(FinishReason.STOPPED)
        tasks = [p.task for p in self.playbacks.values() if p.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
