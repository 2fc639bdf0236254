"""Burst isolation: the codec workers' deadline order, and a real node under a burst of plays."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from snowmux.node.codec_schedule import WorkQueue
from snowmux.testing import schedule_lateness, write_tone_file

from .node_helpers import NodeProcess, Recorder, call

PREBUFFER_FRAMES = 25  # the node's default 500 ms


def test_due_refills_go_before_prebuffers_which_go_before_later_refills() -> None:
    now = 100.0
    queue: WorkQueue[str] = WorkQueue(urgent_seconds=0.25, clock=lambda: now)
    queue.put("refill in 2 s", now + 2.0)
    queue.put("prebuffer A", None)
    queue.put("refill in 0.2 s", now + 0.2)
    queue.put("close", None)
    queue.put("refill overdue", now - 0.1)
    queue.put("refill in 1 s", now + 1.0)
    order = [queue.get() for _ in range(6)]
    assert order == [
        "refill overdue",
        "refill in 0.2 s",
        "prebuffer A",
        "close",
        "refill in 1 s",
        "refill in 2 s",
    ]


def test_urgent_refills_go_oldest_playback_first_whatever_their_deadlines() -> None:
    now = 100.0
    queue: WorkQueue[str] = WorkQueue(urgent_seconds=0.25, clock=lambda: now)
    queue.put("new playback, 2 s overdue", now - 2.0, rank=90)
    queue.put("old playback, due in 0.2 s", now + 0.2, rank=3)
    queue.put("older playback, due in 0.1 s", now + 0.1, rank=1)
    queue.put("prebuffer", None)
    queue.put("old playback, due in 3 s", now + 3.0, rank=2)
    assert [queue.get() for _ in range(5)] == [
        "older playback, due in 0.1 s",
        "old playback, due in 0.2 s",
        "new playback, 2 s overdue",
        "prebuffer",
        "old playback, due in 3 s",
    ]


def test_a_waiting_refill_becomes_urgent_as_time_passes() -> None:
    clock = [0.0]
    queue: WorkQueue[str] = WorkQueue(urgent_seconds=0.25, clock=lambda: clock[0])
    queue.put("refill", 1.0)
    queue.put("prebuffer", None)
    queue.put("prebuffer 2", None)
    assert queue.get() == "prebuffer"
    clock[0] = 0.8  # the refill is now due within 250 ms
    assert queue.get() == "refill"
    assert queue.get() == "prebuffer 2"


def test_get_blocks_until_put_and_returns_none_once_closed() -> None:
    queue: WorkQueue[int] = WorkQueue()
    got: list[int | None] = []
    reader = threading.Thread(target=lambda: got.extend([queue.get(), queue.get()]))
    reader.start()
    time.sleep(0.05)
    queue.put(7, None)
    time.sleep(0.05)
    queue.close()
    reader.join(5)
    assert got == [7, None]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("burst")
    # 44.1 kHz: every frame is resampled and encoded, the expensive path.
    write_tone_file(folder / "track.wav", 440, 12.0, 44_100, 2, "pcm_s16le")
    return folder


@pytest.fixture
def node(media: Path, tmp_path: Path) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path, "--progress-interval", "0", media_root=media) as process:
        yield process


def arrivals(rx: Recorder, session_id: str) -> list[float]:
    return rx.frame_times(session_id)


@pytest.mark.slow
@pytest.mark.spec("P3", "P7")
async def test_a_burst_of_plays_does_not_make_playing_sessions_late(node: NodeProcess) -> None:
    playing = [f"playing{n}" for n in range(4)]
    burst = [f"burst{n}" for n in range(24)]
    async with Recorder(node.socket_path) as rx, aiohttp.ClientSession() as client:

        async def start(session_id: str, start_at: float) -> None:
            async with client.post(
                f"{node.url}/session/{session_id}/play",
                json={"url": "track.wav", "format": "opus-packets", "start_at": start_at},
            ) as response:
                assert response.status == 200, await response.text()

        await asyncio.gather(*(start(s, n * 0.5) for n, s in enumerate(playing)))
        await rx.wait_for(lambda: all(len(rx.frames(s)) >= PREBUFFER_FRAMES + 50 for s in playing))
        before = {s: len(rx.frames(s)) for s in playing}
        await asyncio.gather(*(start(s, (n * 0.37) % 5) for n, s in enumerate(burst)))
        await asyncio.sleep(3.0)
        after = {s: len(rx.frames(s)) for s in playing}
        for session_id in [*playing, *burst]:
            await call(node.url, "POST", f"/session/{session_id}/stop")
    late = []
    for session_id in playing:
        times = arrivals(rx, session_id)
        late += schedule_lateness(
            times,
            range(PREBUFFER_FRAMES, before[session_id]),
            range(before[session_id], after[session_id]),
        )
    # Loose bound for a shared machine (bench.sender (e) has the real figure).
    # Measured here under a load average of 6: FIFO codec workers made these
    # sessions 1.9-2.3 s late; deadline order and one pacing clock 36-190 ms.
    assert max(late) < 0.5, f"worst {max(late) * 1000:.0f} ms"
    for session_id in burst:
        times = arrivals(rx, session_id)
        assert len(times) >= PREBUFFER_FRAMES + 75, session_id  # every new session plays
