# Strategy: the typed messages between the node and its codec worker processes
# (see codec_pool.py and codec_worker.py). They cross a multiprocessing pipe,
# so they are module-level NamedTuples: picklable, cheap, and read by name.
# Every request but Quit carries a sequence number that its reply echoes, so
# the node can match replies to the futures waiting for them.
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
    """Up to ``max_payloads`` next payloads of ``playback``."""

    seq: int
    playback: int
    max_payloads: int


class ControlRequest(NamedTuple):
    """Apply ``control`` to ``playback`` at its next frame boundary (seek, volume, filters, end)."""

    seq: int
    playback: int
    control: PlaybackControl


class QueueRequest(NamedTuple):
    """Append / clear / skip on ``playback``'s queue, at its next frame boundary."""

    seq: int
    playback: int
    op: QueueOp


class CloseRequest(NamedTuple):
    seq: int
    playback: int


class Quit(NamedTuple):
    """The node is shutting down: the worker returns."""


class Opened(NamedTuple):
    seq: int
    duration: float | None


class OpenFailed(NamedTuple):
    """The media cannot be played; ``problem`` decides the HTTP status of the play."""

    seq: int
    message: str
    problem: MediaProblem


# data, is_header, source position after it, events to send before it
PayloadTuple = tuple[bytes, bool, float | None, tuple[StreamEvent, ...]]


class Batch(NamedTuple):
    """Payloads as PayloadTuples; [] at the end; ``error`` ended the playback."""

    seq: int
    payloads: list[PayloadTuple]
    error: str | None


class Controlled(NamedTuple):
    """The control was applied (``error``: it could not be, e.g. a seek failed)."""

    seq: int
    error: str | None


class Closed(NamedTuple):
    seq: int


Request = OpenRequest | TakeRequest | ControlRequest | QueueRequest | CloseRequest | Quit
Reply = Opened | OpenFailed | Batch | Controlled | Closed
