# Strategy: real-time pacing (SPEC.md [P7]) and lateness statistics.
# Frame n of a playback is due at anchor + (n - base - prebuffer) x 20 ms on
# the monotonic clock, never earlier than the anchor: the first `prebuffer`
# frames go out as a burst, and because due times are computed from the
# anchor rather than from the previous send, errors never accumulate. Pause
# and resume re-anchor (a resumed playback gets a new prebuffer burst, since
# the receiver played its buffer out meanwhile). The node's one clock
# (clock.py) wakes at every grid point of a phase and asks its playbacks what is due.
from __future__ import annotations

import math
import time
from collections.abc import Callable

from ..audio_format import FRAME_SECONDS

__all__ = ["LATE_AFTER_SECONDS", "LatenessWindow", "Pacer"]

# A frame more than one frame period behind its due time counts as late: the
# receiver's jitter buffer has then lost a whole frame of margin.
LATE_AFTER_SECONDS = FRAME_SECONDS


class Pacer:
    def __init__(
        self,
        prebuffer_frames: int,
        clock: Callable[[], float] = time.monotonic,
        grid: float | None = None,
    ) -> None:
        self.prebuffer_frames = prebuffer_frames
        self._clock = clock
        self._grid = grid
        self.offset = 0.0  # this playback's phase on the grid (clock.py)
        self.anchor = clock()  # when the burst goes out; frame first_timed is due then
        self._base = 0
        self.first_timed = prebuffer_frames  # the first frame after the burst

    def restart(self, next_index: int) -> None:
        """Anchor the schedule now, with frame ``next_index`` first (start/resume).

        With a ``grid`` (clock.py), the anchor is the first grid point (shifted
        by ``offset``) at or after now, so the due times of all playbacks of a
        phase coincide.
        """
        now = self._clock()
        grid, offset = self._grid, self.offset
        self.anchor = now if grid is None else math.ceil((now - offset) / grid) * grid + offset
        self._base = next_index
        self.first_timed = next_index + self.prebuffer_frames

    def due(self, index: int) -> float:
        return self.anchor + max(0, index - self.first_timed) * FRAME_SECONDS

    def since_start(self, index: int) -> int:
        """How many frames frame ``index`` comes after the last start or resume."""
        return index - self._base

    def in_burst(self, index: int) -> bool:
        """Whether frame ``index`` belongs to the prebuffer burst after the anchor."""
        return index < self.first_timed


class LatenessWindow:
    """Percentiles of frame lateness over the last `seconds`, in 0.25 ms bins.

    It also keeps the all-time bins and sum, from which /metrics builds its
    lateness histogram at scrape time (a per-frame Histogram.observe cost the
    event loop a tenth of its time at 300 sessions, measured with py-spy).
    """

    BIN_MS = 0.25
    BINS = 4000  # up to 1 s; later frames land in the last bin

    def __init__(self, seconds: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._slots = seconds
        self._histograms: list[list[int]] = [[0] * self.BINS for _ in range(seconds)]
        self._slot_second = [-1] * seconds
        self.max_ms = 0.0
        self._all_time = [0] * (self.BINS + 1)  # the last bin: 1 s and later
        self.total_seconds = 0.0

    def add(self, lateness_seconds: float, now: float | None = None) -> None:
        """Count one frame's lateness (``now``: the caller's reading of the clock, if any)."""
        second = int(self._clock() if now is None else now)
        slot = second % self._slots
        if self._slot_second[slot] != second:
            self._histograms[slot] = [0] * self.BINS
            self._slot_second[slot] = second
        ms = lateness_seconds * 1000
        index = int(ms / self.BIN_MS)
        self._histograms[slot][min(self.BINS - 1, index)] += 1
        self._all_time[min(self.BINS, index)] += 1
        self.total_seconds += lateness_seconds
        if ms > self.max_ms:
            self.max_ms = ms

    def cumulative(self, bounds: tuple[float, ...]) -> tuple[list[int], int]:
        """All-time counts of lateness below each bound (seconds, multiples of
        0.25 ms), and the count of every frame."""
        counts = []
        for bound in bounds:
            bins = min(self.BINS, round(bound * 1000 / self.BIN_MS))
            counts.append(sum(self._all_time[:bins]))
        return counts, sum(self._all_time)

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
