# Strategy: the order in which a codec worker serves its requests, so that a
# burst of new playbacks never makes a playing one late (SPEC.md [P3], [P7]).
# A TakeRequest carries the monotonic time at which its playback's buffer runs
# dry (CLOCK_MONOTONIC is one clock for all processes of the machine); a
# prebuffer (a starting playback's first batches) carries none. The order:
#   1. refills due within URGENT_SECONDS, earliest deadline first;
#   2. everything else that arrived (prebuffers, closes, controls), in order;
#   3. the refills that are not yet urgent, earliest deadline first.
# Opens never enter this queue: the worker runs them on threads of their own
# (codec_worker.py), so a slow probe cannot hold up anybody's refill.
# The non-obvious choice is rule 3 after rule 2: a playing session asks for its
# refill ~500 ms before it runs dry (source.py), so new sessions can take the
# worker first without any risk until the refill becomes urgent.
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["URGENT_SECONDS", "WorkQueue"]

# A refill due within this time goes first. It must exceed the longest single
# work item (a 25-frame transcoding batch takes ~5-10 ms of CPU; with the
# other worker and the event loop sharing the cores, up to ~50 ms wall) plus
# the pipe round trip, and stay well below the ~500 ms of audio that
# PayloadSource keeps ahead, so that starting playbacks are served in between.
URGENT_SECONDS = 0.25

T = TypeVar("T")


class WorkQueue(Generic[T]):
    """A thread-safe queue: put() from a reader thread, get() from the worker thread."""

    def __init__(
        self,
        urgent_seconds: float = URGENT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._urgent = urgent_seconds
        self._clock = clock
        self._timed: list[tuple[float, int, T]] = []  # heap by deadline
        self._arrivals: deque[T] = deque()
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False

    def put(self, item: T, deadline: float | None) -> None:
        with self._ready:
            if deadline is None:
                self._arrivals.append(item)
            else:
                heapq.heappush(self._timed, (deadline, next(self._order), item))
            self._ready.notify()

    def close(self) -> None:
        """Wake get() for good: it returns None once the queue is closed."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def get(self) -> T | None:
        """The next item to serve (blocking), or None once closed."""
        with self._ready:
            while not self._closed:
                if self._timed and (
                    not self._arrivals or self._timed[0][0] <= self._clock() + self._urgent
                ):
                    return heapq.heappop(self._timed)[2]
                if self._arrivals:
                    return self._arrivals.popleft()
                self._ready.wait()
            return None

    def __len__(self) -> int:
        with self._ready:
            return len(self._timed) + len(self._arrivals)
