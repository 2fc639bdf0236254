# Strategy: the typed messages between the node and its codec worker processes
# (see codec_pool.py and codec_worker.py). They cross a multiprocessing pipe,
# so they are module-level NamedTuples: picklable, cheap, and read by name.
# Every request but Quit carries a sequence number that its reply echoes, so
# the node can match replies to the futures waiting for them.
from __future__ import annotations

from typing import NamedTuple

from .media import MediaSource
from .pipeline import MediaProblem
from .play_request import PlayRequest

__all__ = [
    "Batch",
    "CloseRequest",
    "Closed",
    "OpenFailed",
    "OpenRequest",
    "Opened",
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


class TakeRequest(NamedTuple):
    """Up to ``max_payloads`` next payloads of ``playback``."""

    seq: int
    playback: int
    max_payloads: int


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


class Batch(NamedTuple):
    """Payloads as (data, is_header) pairs; [] at the end; ``error`` ended the playback."""

    seq: int
    payloads: list[tuple[bytes, bool]]
    error: str | None


class Closed(NamedTuple):
    seq: int


Request = OpenRequest | TakeRequest | CloseRequest | Quit
Reply = Opened | OpenFailed | Batch | Closed
