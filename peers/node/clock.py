# Strategy: one pacing clock for the whole node (SPEC.md [P7]). Instead of a
# task and a future per playback per frame, every paced playback anchors its
# schedule on a node-wide 20 ms grid (Pacer(grid=...)), so the due times of
# all playbacks fall on the same instants; one timer per grid point then asks
# every playing member to send what is due, and the frames of all sessions
# reach each receiver's queue in the same event-loop step, which its writer
# drains with one writelines(). A playback whose buffer ran dry is not woken
# by the clock but by its refill's arrival (Playback.send_due), so codec
# lateness never waits for the next tick. A member that raises is dropped
# and told (crashed), the others keep their tick ([P3]).
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from ..audio_format import FRAME_SECONDS

__all__ = ["GRID_EPSILON", "PacedMember", "PacingClock"]

log = logging.getLogger("snowmux.node.clock")

# Grid times are floats computed two ways (anchor + n x 20 ms, and the tick);
# a frame due within a microsecond of now is due.
GRID_EPSILON = 1e-6


class PacedMember(Protocol):
    def send_due(self, now: float) -> None:
        """Send every frame due at ``now`` (monotonic) that is in hand."""

    def crashed(self, error: Exception) -> None:
        """send_due raised: end this playback only."""


class PacingClock:
    def __init__(
        self, period: float = FRAME_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.period = period
        self._clock = clock
        self._members: dict[PacedMember, None] = {}  # insertion-ordered set
        self._timer: asyncio.TimerHandle | None = None
        self.ticks = 0

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member: PacedMember) -> None:
        self._members[member] = None
        self._arm()

    def discard(self, member: PacedMember) -> None:
        self._members.pop(member, None)

    def _arm(self) -> None:
        if self._timer is not None or not self._members:
            return
        now = self._clock()
        tick = (math.floor(now / self.period) + 1) * self.period
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(tick - now, self._tick, tick)

    def _tick(self, scheduled: float) -> None:
        self._timer = None
        self.ticks += 1
        now = max(self._clock(), scheduled)
        for member in list(self._members):
            try:
                member.send_due(now)
            except Exception as exc:  # one playback's bug never stops the others' frames
                log.exception("pacing a playback failed")
                self.discard(member)
                member.crashed(exc)
        self._arm()
