"""Player-control latency: PATCH answer -> first changed frame at a receiver.

    python -m bench.controls [--trials 20] [--background 20]

A paced `snowmux serve` plays a pcm tone on one session (plus --background
other paced sessions, to load the node); the volume is switched between 1.0
and 0.5 by PATCH every 0.7 s, and for each switch the time from the PATCH
answer to the arrival at a real socket receiver of the first frame at the new
level is taken. SPEC.md [K3] requires < 600 ms; prints median, p95 and max
(and the PATCH round trip itself).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from snowmux.control import ControlClient
from snowmux.protocol import AudioFrame, Event
from snowmux.receiver import Endpoint, Receiver, Router
from snowmux.testing import NodeProcess

TARGET_MS = 600.0
SESSION = "bench-ctl"


class FrameLog:
    """A sink that keeps one session's PCM frames and when each arrived."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.times: list[float] = []

    def on_frame(self, frame: AudioFrame) -> None:
        self.frames.append(bytes(frame.payload))
        self.times.append(time.monotonic())

    def on_event(self, event: Event) -> None:
        pass

    def on_interrupted(self, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


def level(frame: bytes) -> float:
    samples = np.frombuffer(frame, dtype="<i2").astype(float)
    return float(np.sqrt(np.mean(samples**2)))


async def trial(control: ControlClient, log: FrameLog, volume: float) -> tuple[float, float]:
    """(PATCH round trip, PATCH answer -> first frame at the new level) in seconds."""
    seen = len(log.frames)
    asked = time.monotonic()
    await control.update(SESSION, volume=volume)
    answered = time.monotonic()
    full = level(log.frames[0])
    target = full * volume
    deadline = answered + 5
    while time.monotonic() < deadline:
        for index in range(seen, len(log.frames)):
            # the ramp frame is halfway; the one after it is at the new level
            if abs(level(log.frames[index]) - target) < 0.05 * full:
                return answered - asked, log.times[index] - answered
        await asyncio.sleep(0.005)
    raise RuntimeError("no frame at the new level within 5 s")


async def run(trials: int, background: int) -> None:
    with tempfile.TemporaryDirectory() as workdir, NodeProcess(Path(workdir)) as node:
        log = FrameLog()
        router = Router()
        router.register(SESSION, log)
        receiver = Receiver(Endpoint(unix_path=node.socket_path), router)
        receiving = asyncio.create_task(receiver.run())
        async with ControlClient(node.url) as control:
            for n in range(background):
                await control.play(f"load-{n}", "tone:330?seconds=600", format="opus")
            await control.play(SESSION, "tone:440?seconds=600", format="pcm")
            while len(log.frames) <= 60:
                await asyncio.sleep(0.02)
            round_trips, latencies = [], []
            for index in range(trials):
                rtt, latency = await trial(control, log, 0.5 if index % 2 == 0 else 1.0)
                round_trips.append(rtt * 1000)
                latencies.append(latency * 1000)
                await asyncio.sleep(0.7)
            health = await control.health()
        receiver.stop()
        await receiving
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    print(f"{trials} volume switches, {background} background sessions")
    print(f"PATCH round trip          median {statistics.median(round_trips):6.1f} ms")
    print(
        f"answer -> changed frame   median {statistics.median(latencies):6.1f} ms, "
        f"p95 {p95:6.1f} ms, max {latencies[-1]:6.1f} ms (target < {TARGET_MS:.0f} ms)"
    )
    print(f"node lateness p99 {health['lateness_ms']['p99']} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--background", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.trials, args.background))


if __name__ == "__main__":
    main()
