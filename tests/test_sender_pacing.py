"""Pacing: due times without drift, prebuffer burst, lateness percentiles."""

from __future__ import annotations

import pytest

from snowmux.node.pacing import LatenessWindow, Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.spec("P7")
def test_due_times_follow_the_anchor_after_the_burst() -> None:
    clock = FakeClock()
    pacer = Pacer(prebuffer_frames=25, clock=clock)
    pacer.restart(0)
    assert [pacer.due(n) for n in (0, 24, 25)] == [100.0, 100.0, 100.0]
    assert pacer.due(26) == pytest.approx(100.02)
    assert pacer.due(25 + 50 * 3600) == pytest.approx(100.0 + 3600)  # no drift after an hour
    assert pacer.in_burst(24) and not pacer.in_burst(25)
    clock.now = 200.0
    pacer.restart(1000)  # resume: a new burst from the next frame
    assert pacer.due(1000) == 200.0 and pacer.due(1026) == pytest.approx(200.02)


def test_lateness_window_percentiles() -> None:
    clock = FakeClock()
    window = LatenessWindow(seconds=10, clock=clock)
    for ms in range(100):
        window.add(ms / 1000)
    count, (p50, p99) = window.percentiles(0.5, 0.99)
    assert (
        count == 100 and p50 == pytest.approx(49.5, abs=0.5) and p99 == pytest.approx(98.5, abs=0.5)
    )
    clock.now += 20  # older than the window
    assert window.percentiles(0.5)[0] == 0
