# Strategy: real-time pacing (SPEC.md [P7]) and lateness statistics.
# Frame n of a playback is due at anchor + (n - base - prebuffer) x 20 ms on
# the monotonic clock, never earlier than the anchor: the first `prebuffer`
# frames go out as a burst, and because due times are computed from the
# anchor rather than from the previous send, errors never accumulate. Pause
# and resume re-anchor (a resumed playback gets a new prebuffer burst, since
# the receiver played its buffer out meanwhile).
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from ..audio_format import FRAME_SECONDS

__all__ = ["LATE_AFTER_SECONDS", "LatenessWindow", "Pacer", "Ticker"]

# A frame more than one frame period behind its due time counts as late: the
# receiver's jitter buffer has then lost a whole frame of margin.
LATE_AFTER_SECONDS = FRAME_SECONDS


# Wake-ups are shared in 2 ms slots: 200 paced sessions then cost at most 500
# event-loop wake-ups a second instead of 10,000, and each wake-up is a fight
# for a core with the codec workers. 2 ms is well inside the 10 ms p99
# lateness budget and invisible behind a 500 ms prebuffer.
TICK_SECONDS = 0.002


class Ticker:
    """asyncio sleeps that share one timer per TICK_SECONDS slot."""

    def __init__(self, resolution: float = TICK_SECONDS) -> None:
        self.resolution = resolution
        self._slots: dict[int, list[asyncio.Future[None]]] = {}

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until the first slot boundary at or after ``deadline`` (loop time)."""
        loop = asyncio.get_running_loop()
        slot = math.ceil(deadline / self.resolution)
        sleepers = self._slots.get(slot)
        if sleepers is None:
            sleepers = self._slots[slot] = []
            loop.call_at(slot * self.resolution, self._fire, slot)
        # One future per sleeper: cancelling one sleeper never wakes the others.
        future = loop.create_future()
        sleepers.append(future)
        await future

    def _fire(self, slot: int) -> None:
        for future in self._slots.pop(slot):
            if not future.done():
                future.set_result(None)


class Pacer:
    def __init__(
        self,
        prebuffer_frames: int,
        clock: Callable[[], float] = time.monotonic,
        ticker: Ticker | None = None,
    ) -> None:
        self.prebuffer_frames = prebuffer_frames
        self._clock = clock
        self._ticker = ticker
        self._anchor = clock()
        self._base = 0

    def restart(self, next_index: int) -> None:
        """Anchor the schedule now, with frame ``next_index`` first (start/resume)."""
        self._anchor = self._clock()
        self._base = next_index

    def due(self, index: int) -> float:
        ahead = max(0, index - self._base - self.prebuffer_frames)
        return self._anchor + ahead * FRAME_SECONDS

    def in_burst(self, index: int) -> bool:
        """Whether frame ``index`` belongs to the prebuffer burst after the anchor."""
        return index - self._base < self.prebuffer_frames

    async def wait(self, index: int) -> float:
        """Sleep until frame ``index`` is due; return how late we are (seconds, >= 0)."""
        due = self.due(index)
        delay = due - self._clock()
        if delay > 0:
            if self._ticker is not None:
                await self._ticker.sleep_until(asyncio.get_running_loop().time() + delay)
            else:
                await asyncio.sleep(delay)
        return max(0.0, self._clock() - due)


class LatenessWindow:
    """Percentiles of frame lateness over the last `seconds`, in 0.25 ms bins."""

    BIN_MS = 0.25
    BINS = 4000  # up to 1 s; later frames land in the last bin

    def __init__(self, seconds: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._slots = seconds
        self._histograms: list[list[int]] = [[0] * self.BINS for _ in range(seconds)]
        self._slot_second = [-1] * seconds
        self.max_ms = 0.0

    def add(self, lateness_seconds: float) -> None:
        second = int(self._clock())
        slot = second % self._slots
        if self._slot_second[slot] != second:
            self._histograms[slot] = [0] * self.BINS
            self._slot_second[slot] = second
        ms = lateness_seconds * 1000
        self._histograms[slot][min(self.BINS - 1, int(ms / self.BIN_MS))] += 1
        self.max_ms = max(self.max_ms, ms)

    def percentiles(self, *quantiles: float) -> tuple[int, list[float]]:
        """(sample count, lateness in ms at each quantile) over the window."""
        now = int(self._clock())
        merged = [0] * self.BINS
        for slot, second in enumerate(self._slot_second):
            if now - second < self._slots:
                for i, count in enumerate(self._histograms[slot]):
                    if count:
                        merged[i] += count
        total = sum(merged)
        results = []
        for q in quantiles:
            threshold, running = q * total, 0
            value = 0.0
            for i, count in enumerate(merged):
                running += count
                if count and running >= threshold:
                    value = (i + 1) * self.BIN_MS
                    break
            results.append(value)
        return total, results
