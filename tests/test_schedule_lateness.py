"""snowmux.testing.schedule_lateness: arrivals against the [P7] 20 ms schedule (bench.sender uses it)."""

from __future__ import annotations

import pytest

from snowmux.testing import schedule_lateness


def test_frames_on_their_schedule_are_never_late() -> None:
    arrivals = [5.0 + n * 0.020 for n in range(50)]
    assert schedule_lateness(arrivals, range(50), range(50)) == pytest.approx([0.0] * 50)


def test_the_earliest_reference_frame_sets_the_schedule() -> None:
    # frame 3 was 4 ms early compared with the others: the schedule starts from it,
    # so the others are 4 ms late and frame 3 is on time
    arrivals = [1.0 + n * 0.020 for n in range(10)]
    arrivals[3] -= 0.004
    late = schedule_lateness(arrivals, range(10), range(10))
    assert late[3] == pytest.approx(0.0)
    assert [late[n] for n in range(10) if n != 3] == pytest.approx([0.004] * 9)
    assert min(late) >= 0.0


def test_a_stall_after_the_reference_is_measured_against_it() -> None:
    arrivals = [2.0 + n * 0.020 for n in range(100)]
    for n in range(60, 100):  # a 150 ms stall from frame 60 on, never caught up
        arrivals[n] += 0.150
    late = schedule_lateness(arrivals, range(0, 50), range(50, 100))
    assert late[:10] == pytest.approx([0.0] * 10)
    assert late[10:] == pytest.approx([0.150] * 40)
