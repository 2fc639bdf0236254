"""The node's one pacing clock (clock.py) and the grid-anchored Pacer."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from snowmux.node.clock import PHASE_FILL, PacingClock
from snowmux.node.pacing import Pacer


class Member:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[float] = []
        self.fail = fail
        self.errors: list[Exception] = []

    def send_due(self, now: float) -> None:
        self.calls.append(now)
        if self.fail:
            raise RuntimeError("boom")

    def crashed(self, error: Exception) -> None:
        self.errors.append(error)


def test_grid_anchor_is_the_next_grid_point_and_due_times_stay_on_it() -> None:
    now = [100.0071]
    pacer = Pacer(prebuffer_frames=3, clock=lambda: now[0], grid=0.02)
    pacer.restart(0)
    assert pacer.due(3) == pytest.approx(100.02)
    for index in range(3, 60):
        ticks = (pacer.due(index) - 100.02) / 0.02
        assert ticks == pytest.approx(round(ticks), abs=1e-6)
    assert pacer.in_burst(2) and not pacer.in_burst(3)


def test_a_phase_shifts_the_anchor_by_its_offset() -> None:
    now = [100.0071]
    pacer = Pacer(prebuffer_frames=3, clock=lambda: now[0], grid=0.02)
    pacer.offset = 0.015
    pacer.restart(0)
    assert pacer.anchor == pytest.approx(100.015)
    now[0] = 100.0151
    pacer.restart(10)
    assert pacer.anchor == pytest.approx(100.035) and pacer.due(13) == pytest.approx(100.035)


@pytest.mark.spec("P3", "P7")
async def test_members_fill_the_phases_then_spread_evenly_and_tick_on_their_own_grid() -> None:
    clock = PacingClock(period=0.02, phases=4)
    first = [Member() for _ in range(PHASE_FILL)]
    assert {clock.add(member) for member in first} == {0.0}  # a small node: one wake-up
    members = [Member() for _ in range(3 * PHASE_FILL + 8)]
    offsets = [clock.add(member) for member in members]
    assert offsets[: 3 * PHASE_FILL] == pytest.approx(
        [0.005] * PHASE_FILL + [0.01] * PHASE_FILL + [0.015] * PHASE_FILL
    )
    assert sorted(offsets[-8:]) == pytest.approx([0.0, 0.0, 0.005, 0.005, 0.01, 0.01, 0.015, 0.015])
    for member in first:
        clock.discard(member)
    await asyncio.sleep(0.1)
    for member, offset in zip(members, offsets, strict=True):
        assert 3 <= len(member.calls) <= 6  # one call per 20 ms, not per 5 ms slot
        for at in member.calls:  # on this member's phase of the grid (+ the loop's delay)
            periods = (at - offset) / 0.02
            assert 0 <= periods - math.floor(periods) < 0.2
    same_phase = [m for m, o in zip(members, offsets, strict=True) if o == offsets[0]]
    assert same_phase[0].calls == same_phase[1].calls  # one wake-up serves the whole phase
    for member in members:
        clock.discard(member)
    ticks = clock.ticks
    await asyncio.sleep(0.03)
    assert clock.ticks <= ticks + 1  # an empty clock stops ticking


async def test_a_failing_member_alone_is_dropped_and_told_once() -> None:
    clock = PacingClock(period=0.02, phases=1)
    good, bad = Member(), Member(fail=True)
    clock.add(good)
    clock.add(bad)
    await asyncio.sleep(0.07)
    assert len(good.calls) >= 2
    assert len(bad.calls) == 1 and len(bad.errors) == 1
    assert len(clock) == 1
    clock.discard(good)


class SlowMember(Member):
    def send_due(self, now: float) -> None:
        super().send_due(now)
        time.sleep(0.012)  # overruns the next phase's slot (5 ms later) every time


async def test_a_late_tick_passes_over_no_other_phase() -> None:
    clock = PacingClock(period=0.02, phases=4)
    slow, next_phase = SlowMember(), Member()
    fillers = [Member() for _ in range(PHASE_FILL - 1)]
    for member in (slow, *fillers, next_phase):  # phase 0 full, then phase 1
        clock.add(member)
    await asyncio.sleep(0.15)
    for member in (slow, *fillers, next_phase):
        clock.discard(member)
    # Each phase-0 tick ends after phase 1's slot: phase 1 is served right
    # after it, once per period, instead of never.
    assert len(next_phase.calls) >= len(slow.calls) - 1 >= 3
