# Strategy: the order in which a codec worker serves its requests, so that a
# burst of new playbacks never makes a playing one late (SPEC.md [P3], [P7]).
# A TakeRequest carries the monotonic time at which its playback's buffer runs
# dry (CLOCK_MONOTONIC is one clock for all processes of the machine); a
# prebuffer (a starting playback's first batches) carries none. The order:
#   1. refills due within URGENT_SECONDS, the oldest playback first;
#   2. everything else that arrived (prebuffers, closes, controls), in order;
#   3. the refills that are not yet urgent, earliest deadline first.
# Opens never enter this queue: the worker runs them on threads of their own
# (codec_worker.py), so a slow probe cannot hold up anybody's refill.
# Two non-obvious choices. Rule 3 after rule 2: a refill that is not urgent
# yet can wait while new sessions take the worker. Seniority, not the
# deadline, orders the urgent refills: when a burst asks for more than the
# cores can code, earliest-deadline-first would serve the most overdue, i.e.
# the new sessions that are already behind, and make everybody late; serving
# the playbacks that started first keeps them on time and leaves the shortfall
# to the newest ones, which a listener hears as a slow start, not a dropout.
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
# work item (a 10-frame transcoding batch takes ~3-5 ms of CPU; with the
# other worker and the event loop sharing the cores, up to ~30 ms wall) plus
# the pipe round trip. A transcoded playback asks with 200 ms in hand
# (source.py), so its refills are urgent at once; a passthrough asks with 2-4 s
# in hand and lets starting playbacks go first until then.
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
        self._timed: list[tuple[float, int, int, T]] = []  # heap by deadline
        # the urgent ones, by rank (seniority), then deadline
        self._due_now: list[tuple[int, float, int, T]] = []
        self._arrivals: deque[T] = deque()
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False

    def put(self, item: T, deadline: float | None, rank: int = 0) -> None:
        """Queue ``item``: due at ``deadline`` (None: no deadline), ``rank`` lower = older."""
        with self._ready:
            if deadline is None:
                self._arrivals.append(item)
            else:
                heapq.heappush(self._timed, (deadline, next(self._order), rank, item))
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
                horizon = self._clock() + self._urgent
                while self._timed and self._timed[0][0] <= horizon:
                    deadline, order, rank, item = heapq.heappop(self._timed)
                    heapq.heappush(self._due_now, (rank, deadline, order, item))
                if self._due_now:
                    return heapq.heappop(self._due_now)[3]
                if self._arrivals:
                    return self._arrivals.popleft()
                if self._timed:
                    return heapq.heappop(self._timed)[3]
                self._ready.wait()
            return None

    def __len__(self) -> int:
        with self._ready:
            return len(self._timed) + len(self._due_now) + len(self._arrivals)
