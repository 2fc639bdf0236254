"""The node's one pacing clock (clock.py) and the grid-anchored Pacer."""

from __future__ import annotations

import asyncio

import pytest

from snowmux.node.clock import PacingClock
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


@pytest.mark.spec("P3", "P7")
async def test_one_tick_serves_every_member_on_the_grid_and_a_failing_one_alone_is_dropped() -> (
    None
):
    clock = PacingClock(period=0.02)
    good, bad, other = Member(), Member(fail=True), Member()
    for member in (good, bad, other):
        clock.add(member)
    await asyncio.sleep(0.1)
    assert len(good.calls) >= 3 and len(other.calls) == len(good.calls)
    assert good.calls == other.calls  # the same instants: one timer for all
    assert len(good.calls) <= 6  # one tick per 20 ms grid point, not more
    assert len(bad.calls) == 1 and len(bad.errors) == 1  # dropped at once, told once
    assert len(clock) == 2
    clock.discard(good)
    clock.discard(other)
    ticks = clock.ticks
    await asyncio.sleep(0.06)
    assert clock.ticks <= ticks + 1  # an empty clock stops ticking
