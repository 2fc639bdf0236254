# Strategy: one session's frames as a discord.py AudioSource. The router calls
# our sink on the event loop; discord.py's AudioPlayer thread calls read()
# every 20 ms (SPEC.md section 9, [P4]: one 20 ms frame per payload). The two
# meet in a bounded deque behind a threading.Lock, held only for an append or a
# popleft, so read() never waits on the loop: an empty queue is an underrun,
# answered with silence at once. The non-obvious decision is how a playback
# ends (SPEC.md [P2]): its `finished` or `error` event is queued behind its
# frames, so read() plays every frame before it, then returns b"" (finished)
# or raises PlaybackError (error). Raising, rather than discord.py 2.7's
# `source._current_error` attribute, is what hands the error to `after` in
# every version from 2.4 to 2.7: AudioPlayer.run() catches an exception of
# read(), stops, and passes it to `after` (checked in the sources of 2.4.0,
# 2.5.2, 2.6.4 and 2.7.1).
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import discord

from snowmux.audio_format import FRAME_BYTES, OPUS_SILENCE
from snowmux.defaults import PREBUFFER_MS
from snowmux.protocol import (
    FINISH_REASONS,
    AudioFrame,
    Event,
    FinishReason,
    PayloadFormat,
    validate_session_id,
)
from snowmux.receiver import Router

__all__ = [
    "MAX_QUEUED_FRAMES",
    "EndReason",
    "FrameSource",
    "PlaybackError",
    "SessionAudioSource",
    "SourceStats",
]

log = logging.getLogger("snowmux.discord")

# The node bursts its prebuffer (PREBUFFER_MS of frames) at the start of a
# playback and paces in real time after it, so the queue normally holds about
# that much; twice that (1 s by default) leaves room for the loop and the player
# thread to stall a little. Beyond it the oldest frames go: after a long stall
# we catch up with the node instead of playing late forever.
MAX_QUEUED_FRAMES = 2 * PREBUFFER_MS // 20
PCM_SILENCE = bytes(FRAME_BYTES)  # 20 ms of s16le stereo zeros: what read() must return for pcm
FORMATS = (PayloadFormat.OPUS_PACKETS, PayloadFormat.PCM)  # the ones Discord can take as they are


class FrameSource(Protocol):
    """Whatever holds the sessions' frames and events: a ``Receiver`` or a ``NodePool``."""

    @property
    def router(self) -> Router: ...


class PlaybackError(Exception):
    """The node ended the playback with an ``error`` event (its message is the text)."""

    def __init__(self, session_id: str, message: str) -> None:
        super().__init__(f"session {session_id}: {message}")
        self.session_id = session_id
        self.message = message


@dataclass(frozen=True, slots=True)
class SourceStats:
    frames: int  # audio frames handed to discord.py
    underruns: int  # reads answered with silence because no frame had arrived
    dropped: int  # oldest frames discarded because the queue was full
    interruptions: int  # the receiver lost the node mid-playback (it reconnects)


class EndReason(StrEnum):
    """Why a source ended: the node's ``finished`` reasons, or one of its own."""

    FINISHED = FinishReason.FINISHED
    STOPPED = FinishReason.STOPPED
    REPLACED = FinishReason.REPLACED
    ERROR = "error"  # the node's error event, or a ready in a format Discord cannot take
    PLAYER_STOPPED = "player-stopped"  # discord.py stopped first (cleanup() before the end)
    RECEIVER_CLOSED = "receiver-closed"


class _EventType(StrEnum):
    READY = "ready"
    FINISHED = "finished"
    ERROR = "error"


class _State(StrEnum):
    WAITING = "waiting"  # for the ready of a play about to be requested
    PLAYING = "playing"
    ENDED = "ended"  # the end event is queued (or the source was cleaned up)


@dataclass(frozen=True, slots=True)
class _Ending:
    reason: EndReason
    error: PlaybackError | None


class SessionAudioSource(discord.AudioSource):
    """Plays session ``session_id`` of ``frames_from`` into a discord.py voice client.

    Create it on the event loop that runs the receiver. ``format`` must be the
    payload format the session plays: ``opus-packets`` (``is_opus()``; each
    read is one Opus packet, sent to Discord as it is) or ``pcm`` (each read is
    3,840 bytes, encoded by discord.py). With ``wait_for_ready`` the source
    ignores the session until its next ``ready`` event (what :func:`play` uses,
    so the end of a playback being replaced does not end this one); otherwise
    it takes the frames of the playback in progress at once.
    """

    def __init__(
        self,
        frames_from: FrameSource,
        session_id: str,
        *,
        format: PayloadFormat | str = PayloadFormat.OPUS_PACKETS,
        wait_for_ready: bool = False,
        max_frames: int = MAX_QUEUED_FRAMES,
    ) -> None:
        # First what cleanup() needs: discord.py's AudioSource.__del__ calls it
        # even when this constructor raised.
        self._lock = threading.Lock()
        self._queue: collections.deque[bytes] = collections.deque()
        self._ending: _Ending | None = None  # read() reaches it once the queue is empty
        self._state = _State.WAITING if wait_for_ready else _State.PLAYING
        self._attached = False
        validate_session_id(session_id)
        payload_format = PayloadFormat(format)
        if payload_format not in FORMATS:
            raise ValueError(
                f"format {payload_format} cannot go to Discord as it is; use one of "
                + ", ".join(FORMATS)
            )
        if max_frames < 1:
            raise ValueError("max_frames must be at least 1")
        self.session_id = session_id
        self.format = payload_format
        self.max_frames = max_frames
        self._silence = (
            OPUS_SILENCE if payload_format is PayloadFormat.OPUS_PACKETS else PCM_SILENCE
        )
        self._router = frames_from.router
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[Event] = self._loop.create_future()
        self._frames = 0
        self._underruns = 0
        self._dropped = 0
        self._interruptions = 0
        self._attached = True
        self._router.attach(session_id, self)

    # -- discord.AudioSource (the player thread) --------------------------------

    def is_opus(self) -> bool:
        return self.format is PayloadFormat.OPUS_PACKETS

    def read(self) -> bytes:
        with self._lock:
            if self._queue:
                self._frames += 1
                return self._queue.popleft()
            ending = self._ending
            if ending is None:
                self._underruns += 1
                return self._silence
        if ending.error is not None:
            raise ending.error
        return b""

    def cleanup(self) -> None:
        """Unsubscribe (from any thread: discord.py calls this on its player thread)."""
        with self._lock:
            self._state = _State.ENDED
            if self._ending is None:
                self._ending = _Ending(EndReason.PLAYER_STOPPED, None)
            self._queue.clear()
        if not self._attached:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._detach()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to detach from
                self._loop.call_soon_threadsafe(self._detach)

    # -- the library API (the event loop) ---------------------------------------

    @property
    def stats(self) -> SourceStats:
        with self._lock:
            return SourceStats(self._frames, self._underruns, self._dropped, self._interruptions)

    @property
    def queued(self) -> int:
        """Frames received and not yet read."""
        with self._lock:
            return len(self._queue)

    @property
    def ended(self) -> bool:
        """The playback's end event arrived (its frames may still be queued)."""
        return self._state is _State.ENDED

    @property
    def end_reason(self) -> EndReason | None:
        """Why the playback ended; None while it plays."""
        ending = self._ending
        return None if ending is None else ending.reason

    async def wait_ready(self, timeout: float | None = None) -> Event:
        """The ``ready`` event that started this source's playback.

        Raises PlaybackError when the playback failed before it was ready,
        TimeoutError after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._ready)

    # -- the sink (the event loop) ----------------------------------------------

    def on_frame(self, frame: AudioFrame) -> None:
        if self._state is not _State.PLAYING:
            return
        payload = bytes(frame.payload)  # the decoder's buffer may be reused
        with self._lock:
            if len(self._queue) >= self.max_frames:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(payload)

    def on_event(self, event: Event) -> None:
        kind = event.type
        if kind == _EventType.READY:
            self._on_ready(event)
        elif kind == _EventType.ERROR:
            message = event.data.get("message")
            self._end(
                EndReason.ERROR, PlaybackError(self.session_id, str(message or "playback failed"))
            )
        elif kind == _EventType.FINISHED and self._state is _State.PLAYING:
            # While waiting for our ready, a `finished` is the end of the
            # playback ours replaces, not of ours.
            reason = str(event.data.get("reason", FinishReason.FINISHED))
            known = reason in FINISH_REASONS  # a newer node may add reasons
            self._end(EndReason(reason) if known else EndReason.FINISHED, None)

    def on_interrupted(self, reason: str) -> None:
        # The receiver reconnects and the node keeps playing meanwhile: we
        # underrun (silence) until frames flow again, and the node's ready
        # re-announcement (SPEC.md [P5]) changes nothing here.
        with self._lock:
            self._interruptions += 1
        log.info("session %s interrupted: %s", self.session_id, reason)

    def close(self) -> None:
        self._end(
            EndReason.RECEIVER_CLOSED, PlaybackError(self.session_id, "the receiver was closed")
        )

    # -- internals ----------------------------------------------------------------

    def _on_ready(self, event: Event) -> None:
        if self._state is _State.ENDED:
            return
        announced = event.data.get("format")
        if announced is not None and announced != self.format:
            # Ogg pages or PCM fed to Discord as Opus packets would be noise.
            self._end(
                EndReason.ERROR,
                PlaybackError(
                    self.session_id, f"the node plays {announced}, this source needs {self.format}"
                ),
            )
            return
        self._state = _State.PLAYING  # a later ready (reconnect, move) continues the playback
        if not self._ready.done():
            self._ready.set_result(event)

    def _end(self, reason: EndReason, error: PlaybackError | None) -> None:
        if self._state is _State.ENDED:
            return
        with self._lock:
            self._state = _State.ENDED
            self._ending = _Ending(reason, error)
        if not self._ready.done():
            if error is not None:
                self._ready.set_exception(error)
            else:
                self._ready.set_exception(
                    PlaybackError(self.session_id, f"the playback ended ({reason}) before ready")
                )
            self._ready.exception()  # retrieved: no "never retrieved" warning if nobody waits

    def _detach(self) -> None:
        if self._attached:
            self._attached = False
            self._router.detach(self.session_id, self)
