"""Sender benchmark: codec real-time factor, paced session capacity, /play latency.

    python -m bench.sender [--quick]

(a) offline decode + resample + Opus encode of a 60 s 44.1 kHz stereo file on
    one core, as a real-time factor (audio seconds per CPU second);
(b) the largest number of concurrent paced `opus` sessions a `snowmux serve`
    process sustains with p99 frame lateness < 10 ms and no drops to a reading
    receiver, as a ratio to (cores x the factor of (a)); target >= 0.7;
(c) median and p95 time from POST /play to the first frame on the socket for
    a local file; target median < 50 ms;
(d) where Debian's ffmpeg is installed, the CPU seconds that one
    `ffmpeg -re ... -c:a libopus` process per session (the legacy design)
    spends for the same audio, as a ratio to the node's CPU seconds.
All figures come from the same run on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from snowmux.node.encoders import encode_payloads
from snowmux.node.media import MediaPolicy
from snowmux.node.pipeline import DecodedAudio, cut_frames
from snowmux.protocol import AudioFrame, Decoder
from snowmux.testing import NodeProcess, write_tone_file

LATENESS_P99_TARGET_MS = 10.0
CAPACITY_TARGET = 0.7
LATENCY_TARGET_MS = 50.0
SETTLE_INTERVAL_SECONDS = 0.5
SETTLE_CPU_SECONDS = 0.02  # an idle node (event loop + workers) spends less per 0.5 s
SETTLE_POLLS = 40  # 20 s: far beyond a worker's start even on a loaded machine


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live children (the node's codec workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def settled_cpu(pid: int) -> float:
    """The node's CPU seconds once its codec workers have started.

    The workers are spawned when the node starts and import the node package
    after it says ready (about 1 s of CPU each here, measured); sampled 0.5 s
    after ready, that start-up fell inside (d)'s window and was billed to the
    sessions. Polled until it stops growing.
    """
    last = cpu_seconds(pid)
    for _ in range(SETTLE_POLLS):
        await asyncio.sleep(SETTLE_INTERVAL_SECONDS)
        now = cpu_seconds(pid)
        if now - last < SETTLE_CPU_SECONDS:
            return now
        last = now
    return last


def realtime_factor(media: Path) -> tuple[float, float]:
    audio = DecodedAudio(MediaPolicy(media.parent).resolve(media.name))
    seconds = audio.open() or 0.0
    start = time.process_time()
    packets = sum(1 for _ in encode_payloads("opus", cut_frames(audio.pcm()), None))
    cpu = time.process_time() - start
    audio.close()
    assert packets > seconds * 49
    return seconds / cpu, cpu


async def drain(socket_path: Path, stop: asyncio.Event) -> None:
    """A receiver that reads everything and decodes nothing (cheap, always ready)."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    while not stop.is_set():
        if not await reader.read(1 << 20):
            break
    writer.close()


async def post(client: aiohttp.ClientSession, url: str, body: dict | None = None) -> dict:
    # Always JSON, even without a body: the node answers 415 to any other type.
    headers = {"Content-Type": "application/json"}
    async with client.post(url, json=body, headers=headers) as response:
        reply: dict = await response.json()
        assert response.status == 200, reply
        return reply


async def capacity_step(
    workdir: Path, media: Path, sessions: int, seconds: float
) -> tuple[bool, float, int]:
    with NodeProcess(workdir, "--progress-interval", "0", media_root=media.parent) as node:
        stop = asyncio.Event()
        reader = asyncio.create_task(drain(node.socket_path, stop))
        async with aiohttp.ClientSession() as client:
            await asyncio.gather(
                *(
                    post(
                        client,
                        f"{node.url}/session/cap{n}/play",
                        {"url": media.name, "format": "opus", "start_at": (n * 0.37) % 30},
                    )
                    for n in range(sessions)
                )
            )
            await asyncio.sleep(seconds)
            async with client.get(f"{node.url}/health") as response:
                health = await response.json()
        stop.set()
        reader.cancel()
    p99 = health["lateness_ms"]["p99"]
    dropped = health["totals"]["frames_dropped"]
    playing = health["sessions"]["playing"]
    ok = p99 < LATENESS_P99_TARGET_MS and dropped == 0 and playing == sessions
    print(
        f"      {sessions:>4} sessions: p99 lateness {p99:6.2f} ms, max {health['lateness_ms']['max']:7.1f} ms, "
        f"dropped {dropped}, late {health['totals']['frames_late']}  {'ok' if ok else 'over'}",
        flush=True,
    )
    return ok, p99, dropped


async def capacity(workdir: Path, media: Path, start: int, seconds: float) -> int:
    low, high = 0, None
    n = start
    while high is None or high - low > max(4, low // 20):
        ok, _, _ = await capacity_step(workdir, media, n, seconds)
        if ok:
            low = n
            n = n * 2 if high is None else (low + high) // 2
        else:
            high = n
            n = (low + high) // 2
        if n <= low:
            break
    return low


async def first_frame_latency(workdir: Path, media: Path, plays: int) -> list[float]:
    latencies = []
    with NodeProcess(workdir, media_root=media.parent) as node:
        reader, writer = await asyncio.open_unix_connection(str(node.socket_path))
        decoder = Decoder()
        async with aiohttp.ClientSession() as client:
            for n in range(plays):
                session_id = f"lat{n}"
                start = time.perf_counter()
                await post(
                    client,
                    f"{node.url}/session/{session_id}/play",
                    {"url": media.name, "format": "opus"},
                )
                seen = False
                while not seen:
                    for message in decoder.feed(await reader.read(1 << 16)):
                        if isinstance(message, AudioFrame) and message.session_id == session_id:
                            seen = True
                latencies.append((time.perf_counter() - start) * 1000)
                await post(client, f"{node.url}/session/{session_id}/stop")
        writer.close()
    return latencies


async def legacy_cpu(
    workdir: Path, media: Path, sessions: int, seconds: float
) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    procs = [
        subprocess.Popen(
            [
                "ffmpeg",
                "-v",
                "error",
                "-re",
                "-ss",
                str(n % 20),
                "-t",
                str(seconds),
                "-i",
                str(media),
                "-c:a",
                "libopus",
                "-b:a",
                "128k",
                "-ar",
                "48000",
                "-ac",
                "2",
                "-f",
                "ogg",
                "-page_duration",
                "20000",
                "-flush_packets",
                "1",
                "pipe:1",
            ],
            stdout=subprocess.DEVNULL,
        )
        for n in range(sessions)
    ]
    for proc in procs:
        proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ffmpeg_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with NodeProcess(workdir, "--progress-interval", "0", media_root=media.parent) as node:
        stop = asyncio.Event()
        reader = asyncio.create_task(drain(node.socket_path, stop))
        start_cpu = await settled_cpu(node.pid)
        async with aiohttp.ClientSession() as client:
            await asyncio.gather(
                *(
                    post(
                        client,
                        f"{node.url}/session/leg{n}/play",
                        {
                            "url": media.name,
                            "format": "opus",
                            "start_at": n % 20,
                            "duration": seconds,
                        },
                    )
                    for n in range(sessions)
                )
            )
            await asyncio.sleep(seconds)
            await asyncio.gather(
                *(post(client, f"{node.url}/session/leg{n}/stop") for n in range(sessions))
            )
        node_cpu = cpu_seconds(node.pid) - start_cpu
        stop.set()
        reader.cancel()
    return ffmpeg_cpu, node_cpu


async def main_async(args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="snowmux-bench-") as tmp:
        workdir = Path(tmp)
        media = write_tone_file(workdir / "track.mp3", 440, 60.0, 44_100, 2, "libmp3lame")
        factor, cpu = realtime_factor(media)
        print(
            f"(a) decode+resample+Opus encode, 60 s 44.1 kHz stereo MP3: {cpu:.2f} CPU s, "
            f"real-time factor {factor:.0f}x on one core"
        )
        ideal = cores * factor
        print(
            f"(b) paced opus sessions (p99 lateness < {LATENESS_P99_TARGET_MS:.0f} ms, no drops), "
            f"{args.step_seconds:.0f} s per step:",
            flush=True,
        )
        best = await capacity(workdir, media, args.start_sessions, args.step_seconds)
        ratio = best / ideal
        print(
            f"    sustained {best} sessions; ideal = {cores} cores x {factor:.0f} = {ideal:.0f}; "
            f"ratio {ratio:.2f} (target >= {CAPACITY_TARGET}) {'OK' if ratio >= CAPACITY_TARGET else 'MISSED'}"
        )
        latencies = await first_frame_latency(workdir, media, args.plays)
        median = statistics.median(latencies)
        p95 = statistics.quantiles(latencies, n=20)[-1]
        print(
            f"(c) POST /play -> first frame, local MP3, {args.plays} plays: median {median:.1f} ms, "
            f"p95 {p95:.1f} ms (target median < {LATENCY_TARGET_MS:.0f} ms) "
            f"{'OK' if median < LATENCY_TARGET_MS else 'MISSED'}"
        )
        if shutil.which("ffmpeg"):
            ffmpeg_cpu, node_cpu = await legacy_cpu(
                workdir, media, args.legacy_sessions, args.legacy_seconds
            )
            print(
                f"(d) {args.legacy_sessions} sessions x {args.legacy_seconds:.0f} s: one `ffmpeg -re` per "
                f"session {ffmpeg_cpu:.2f} CPU s, node {node_cpu:.2f} CPU s: "
                f"legacy / node = {ffmpeg_cpu / node_cpu:.2f}x"
            )
        else:
            print("(d) skipped: ffmpeg is not installed")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--start-sessions", type=int, default=64)
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=24.0,
        help="per capacity step; the node's lateness window is the last 10 s, so the "
        "start-up burst of N sessions at once is not what is measured",
    )
    parser.add_argument("--plays", type=int, default=40)
    parser.add_argument("--legacy-sessions", type=int, default=10)
    parser.add_argument("--legacy-seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="short steps, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.step_seconds, args.plays, args.legacy_seconds = 12.0, 10, 3.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
