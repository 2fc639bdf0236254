# Strategy: one pacing clock for the whole node (SPEC.md [P7]). Instead of a
# task and a future per playback per frame, every paced playback anchors its
# schedule on a node-wide 20 ms grid, shifted by the phase the clock gives it
# when it joins; one timer per slot (PHASES slots per 20 ms) asks the members
# of that phase to send what is due, so the frames of all those sessions
# reach each receiver's queue in the same event-loop step, which its writer
# drains with one writelines(). Why phases: a tick's frames go out one after
# the other, so the last one is late by the time the tick takes (~20 us a
# frame: 10 ms at 500 sessions); four phases cut that to a quarter. They fill
# one after the other up to PHASE_FILL members (so a small node wakes once
# per 20 ms: every wake-up also costs each receiver's writer a task step and
# a system call), then evenly. A playback whose buffer ran
# dry is not woken by the clock but by its refill's arrival
# (Playback.send_due), so codec lateness never waits for the next tick. A
# member that raises is dropped and told (crashed), the others keep their
# tick ([P3]).
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from ..audio_format import FRAME_SECONDS

__all__ = ["GRID_EPSILON", "PHASE_FILL", "PHASES", "PacedMember", "PacingClock"]

log = logging.getLogger("snowmux.node.clock")

# Grid times are floats computed two ways (anchor + n x 20 ms, and the tick);
# a frame due within a microsecond of now is due.
GRID_EPSILON = 1e-6
PHASES = 4  # slots per 20 ms period: 5 ms apart
PHASE_FILL = 64  # members of a phase before the next one opens: a tick of ~1.5 ms


class PacedMember(Protocol):
    def send_due(self, now: float) -> None:
        """Send every frame due at ``now`` (monotonic) that is in hand."""

    def crashed(self, error: Exception) -> None:
        """send_due raised: end this playback only."""


class PacingClock:
    def __init__(
        self,
        period: float = FRAME_SECONDS,
        phases: int = PHASES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.period = period
        self.slot = period / phases
        self._clock = clock
        # insertion-ordered sets, one per phase
        self._phases: list[dict[PacedMember, None]] = [{} for _ in range(phases)]
        self._phase_of: dict[PacedMember, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._served: int | None = None  # the last slot served
        self.ticks = 0

    def __len__(self) -> int:
        return len(self._phase_of)

    def add(self, member: PacedMember) -> float:
        """Join the least busy phase; answers its offset (seconds) from the 20 ms grid."""
        phase = self._phase_of.get(member)
        if phase is None:
            phase = next(
                (p for p, members in enumerate(self._phases) if len(members) < PHASE_FILL),
                min(range(len(self._phases)), key=lambda p: len(self._phases[p])),
            )
            self._phases[phase][member] = None
            self._phase_of[member] = phase
        self._arm()
        return phase * self.slot

    def discard(self, member: PacedMember) -> None:
        phase = self._phase_of.pop(member, None)
        if phase is not None:
            self._phases[phase].pop(member, None)

    def _arm(self) -> None:
        if self._timer is not None or not self._phase_of:
            return
        now = self._clock()
        phases = len(self._phases)
        slot = math.floor(now / self.slot) + 1
        if self._served is not None:
            # A tick that ran late must not pass over the other phases' slots
            # (their members would wait a whole period): serve them now, one
            # round back at most (send_due sends everything due at once).
            slot = max(self._served + 1, slot - phases)
        for ahead in range(phases):  # the next slot whose phase has members
            if self._phases[(slot + ahead) % phases]:
                slot += ahead
                break
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, slot * self.slot - now), self._tick, slot)

    def _tick(self, slot: int) -> None:
        self._timer = None
        self._served = slot
        self.ticks += 1
        now = max(self._clock(), slot * self.slot)
        for member in list(self._phases[slot % len(self._phases)]):
            try:
                member.send_due(now)
            except Exception as exc:  # one playback's bug never stops the others' frames
                log.exception("pacing a playback failed")
                self.discard(member)
                member.crashed(exc)
        self._arm()
