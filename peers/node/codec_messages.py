# Strategy: the typed messages between the node and its codec worker processes
# (see codec_pool.py and codec_worker.py). They cross a multiprocessing pipe,
# so they are module-level NamedTuples: picklable, cheap, and read by name.
# Every request but Quit carries a sequence number that its reply echoes, so
# the node can match replies to the futures waiting for them. The node sends
# lists of requests (those of one event-loop step), the worker single replies.
from __future__ import annotations

from typing import NamedTuple

from .controls import PlaybackControl
from .encoders import StreamEvent
from .media import MediaSource
from .pipeline import MediaProblem
from .play_request import PlayRequest
from .queue import QueueOp

__all__ = [
    "Batch",
    "CloseRequest",
    "Closed",
    "ControlRequest",
    "Controlled",
    "OpenFailed",
    "OpenRequest",
    "Opened",
    "QueueRequest",
    "Quit",
    "Reply",
    "Request",
    "TakeRequest",
]


class OpenRequest(NamedTuple):
    """Open and probe ``source`` for ``playback``; its payloads are made per ``play``."""

    seq: int
    playback: int
    source: MediaSource
    play: PlayRequest
    crossfade_ms: int = 0
    queued: bool = False  # a queue playback: track_start/track_end events


class TakeRequest(NamedTuple):
    """Up to ``max_payloads`` next payloads of ``playback``.

    ``deadline``: the monotonic time at which the playback's buffer runs dry,
    or None for a starting playback's prebuffer (see codec_schedule.py).
    """

    seq: int
    playback: int
    max_payloads: int
    deadline: float | None = None


class ControlRequest(NamedTuple):
    """Apply ``control`` to ``playback`` at its next frame boundary (seek, volume, filters, end)."""

    seq: int
    playback: int
    control: PlaybackControl
    resume_at: float | None = None  # a passthrough restarts here (see Opened.restartable)


class QueueRequest(NamedTuple):
    """Append / clear / skip on ``playback``'s queue, at its next frame boundary."""

    seq: int
    playback: int
    op: QueueOp
    resume_at: float | None = None  # a passthrough restarts here (see Opened.restartable)


class CloseRequest(NamedTuple):
    seq: int
    playback: int


class Quit(NamedTuple):
    """The node is shutting down: the worker returns."""


class Opened(NamedTuple):
    """The playback is open; ``passthrough``: its Opus packets are forwarded ([P8]).

    ``restartable``: its payloads carry no state from one to the next (raw
    passthrough packets), so the node may drop what it has buffered and have a
    control restart them at the position of the first payload it dropped.
    """

    seq: int
    duration: float | None
    passthrough: bool = False
    restartable: bool = False


class OpenFailed(NamedTuple):
    """The media cannot be played; ``problem`` decides the HTTP status of the play."""

    seq: int
    message: str
    problem: MediaProblem


# data, is_header, source position after it, events to send before it
PayloadTuple = tuple[bytes, bool, float | None, tuple[StreamEvent, ...]]


class Batch(NamedTuple):
    """Up to the payloads asked for, column by column; none at the end; ``error`` ended
    the playback. Columns, not a tuple per payload: a 4 s passthrough batch is 200
    payloads, and 300 sessions' worth of young tuples made the node's garbage
    collector pause its pacing clock for ~15 ms every few seconds.
    """

    seq: int
    data: list[bytes]
    positions: list[float | None]  # source position after each payload, when known
    headers: tuple[int, ...]  # indices of Ogg header pages
    events: dict[int, tuple[StreamEvent, ...]]  # index -> events to send before it
    error: str | None

    def payload(self, index: int) -> PayloadTuple:
        return (
            self.data[index],
            index in self.headers,
            self.positions[index],
            self.events.get(index, ()),
        )


class Controlled(NamedTuple):
    """The control was applied (``error``: it could not be, e.g. a seek failed)."""

    seq: int
    error: str | None


class Closed(NamedTuple):
    seq: int


Request = OpenRequest | TakeRequest | ControlRequest | QueueRequest | CloseRequest | Quit
Reply = Opened | OpenFailed | Batch | Controlled | Closed
