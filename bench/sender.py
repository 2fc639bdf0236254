"""Sender benchmark: codec real-time factor, paced session capacity, /play latency,
burst isolation, Opus passthrough.

    python -m bench.sender [--quick] [--only abcdef]

(a) offline decode + resample + Opus encode of a 60 s 44.1 kHz stereo file on
    one core, as a real-time factor (audio seconds per CPU second);
(b) the largest number of concurrent paced `opus` sessions a `snowmux serve`
    process sustains with p99 frame lateness < 10 ms, measured at a reading
    receiver (each frame's arrival against its session's own 20 ms schedule,
    over the last 10 s of each step) and by the node's /health, and no drops,
    as a ratio to (cores x the factor of (a)); target >= 0.75;
(c) median and p95 time from POST /play to the first frame on the socket for
    a local file; target median < 50 ms;
(d) where Debian's ffmpeg is installed, the CPU seconds that one
    `ffmpeg -re ... -c:a libopus` process per session (the legacy design)
    spends for the same audio, as a ratio to the node's CPU seconds;
(e) burst isolation: 30 sessions play a 44.1 kHz WAV as `opus-packets`, then
    80 plays are posted at once; the p99 lateness at the receiver of the 30
    against their own pre-burst schedule (target < 10 ms), and of the 80 after
    their first second;
(f) Opus passthrough: node CPU seconds (event loop and codec workers) per
    session-minute in steady state for a 48 kHz 20 ms Ogg Opus source passed
    through, as a ratio to the same source transcoded (an explicit bitrate
    forces transcoding, SPEC.md [P8]) (target <= 0.1); and the concurrent passthrough
    `opus-packets` sessions sustained at p99 < 10 ms at the receiver (target >= 500).
    Whether the playbacks really passed through is read from their status
    (`"passthrough": true|false`); a node without that field is reported as
    "passthrough: not supported by this node" (the CPU ratio is still given,
    then it compares two transcodes).
All figures come from the same run on the same machine.

Short smoke runs, one section at a time (the machine is shared):

    python -m bench.sender --only b --start-sessions 4 --capacity-cap 8 --step-seconds 12
    python -m bench.sender --only c --plays 5
    python -m bench.sender --only d --legacy-sessions 2 --legacy-seconds 3
    python -m bench.sender --only e --burst-playing 3 --burst 8 --burst-after 4
    python -m bench.sender --only f --cpu-sessions 3 --cpu-seconds 5 \\
        --passthrough-start 4 --capacity-cap 8 --step-seconds 12
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
from collections import defaultdict
from pathlib import Path
from typing import Any

from snowmux.audio_format import FRAME_SECONDS
from snowmux.control import ControlClient
from snowmux.defaults import PREBUFFER_MS
from snowmux.node.encoders import encode_payloads
from snowmux.node.media import MediaPolicy
from snowmux.node.pipeline import DecodedAudio, cut_frames
from snowmux.protocol import AudioFrame, Decoder
from snowmux.testing import NodeProcess, schedule_lateness, write_tone_file

LATENESS_P99_TARGET_MS = 10.0
CAPACITY_TARGET = 0.75
LATENCY_TARGET_MS = 50.0
PASSTHROUGH_CPU_TARGET = 0.1
PASSTHROUGH_SESSIONS_TARGET = 500
PREBUFFER_FRAMES = round(PREBUFFER_MS / 1000 / FRAME_SECONDS)  # sent at once, not paced
WINDOW_SECONDS = 10.0  # lateness is taken over the last 10 s of a step, like /health
CPU_SETTLE_SECONDS = 3.0  # (f) counts CPU once every playback has opened and prebuffered
MAX_SESSIONS = "4096"  # the bench looks for the machine's limit, not the default's
# The transcoded twin of a passthrough play: an explicit bitrate rules passthrough out ([P8]).
TRANSCODE_BITRATE = 128_000
SETTLE_INTERVAL_SECONDS = 0.5
SETTLE_CPU_SECONDS = 0.02  # an idle node (event loop + workers) spends less per 0.5 s
SETTLE_POLLS = 40  # 20 s: far beyond a worker's start even on a loaded machine


def cpu_seconds(pid: int, children: bool = True) -> float:
    """CPU time of a process and (by default) its live children (the node's codec workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or (children and int(fields[1]) == pid):
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


class Arrivals:
    """A reading receiver: decodes everything, keeps each audio frame's arrival time."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)

    async def run(self, socket_path: Path, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=1 << 22)
        decoder = Decoder()
        times = self.times
        clock = time.monotonic
        while not stop.is_set():
            data = await reader.read(1 << 20)
            if not data:
                break
            now = clock()
            for message in decoder.feed(data):
                if isinstance(message, AudioFrame):
                    times[message.session_id].append(now)
        writer.close()

    def lateness_ms(
        self, session_ids: list[str], since: float, until: float, reference_from: int
    ) -> list[float]:
        """Lateness of frames arriving in [since, until) against each session's schedule.

        The schedule of a session is set by its frames from ``reference_from`` on
        (the earliest of them is on time): [P7] frame n at start + n x 20 ms.
        """
        late: list[float] = []
        for session_id in session_ids:
            times = self.times.get(session_id, [])
            if len(times) <= reference_from:
                continue
            measured = [n for n in range(reference_from, len(times)) if since <= times[n] < until]
            if measured:
                late += schedule_lateness(
                    times, range(reference_from, len(times)), range(measured[0], measured[-1] + 1)
                )
        return [x * 1000 for x in late]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drain(socket_path: Path, stop: asyncio.Event) -> None:
    """A receiver that reads everything and decodes nothing (cheap, always ready)."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    while not stop.is_set():
        if not await reader.read(1 << 20):
            break
    writer.close()


def passthrough_count(statuses: list[dict[str, Any]], session_ids: set[str]) -> int | None:
    """How many of ``session_ids`` pass through, by their status; None if the node does not say."""
    flags = [
        s["passthrough"] for s in statuses if s["session_id"] in session_ids and "passthrough" in s
    ]
    return sum(bool(flag) for flag in flags) if flags else None


def describe_passthrough(count: int | None, sessions: int) -> str:
    if count is None:
        return "passthrough: not supported by this node"
    return f"passthrough: {count} of {sessions} playbacks"


async def passthrough_of(control: ControlClient, prefix: str, sessions: int) -> int | None:
    """Read from GET /sessions while the playbacks still play (SPEC.md [P8] status field)."""
    statuses = (await control.status())["sessions"]
    return passthrough_count(statuses, {f"{prefix}{n}" for n in range(sessions)})


async def capacity_step(
    workdir: Path,
    media: Path,
    sessions: int,
    seconds: float,
    audio_format: str,
    span: float,
    check_passthrough: bool,
) -> tuple[bool, int | None]:
    """One step: ``sessions`` paced plays at once; (ok, how many passed through or None)."""
    with NodeProcess(
        workdir,
        "--progress-interval",
        "0",
        "--max-sessions",
        MAX_SESSIONS,
        media_root=media.parent,
    ) as node:
        stop = asyncio.Event()
        arrivals = Arrivals()
        reader = asyncio.create_task(arrivals.run(node.socket_path, stop))
        main_cpu = cpu_seconds(node.pid, children=False)
        async with ControlClient(node.url) as control:
            await asyncio.gather(
                *(
                    control.play(f"cap{n}", media.name, audio_format, (n * 0.37) % span)
                    for n in range(sessions)
                )
            )
            started = time.monotonic()
            await asyncio.sleep(seconds)
            ended = time.monotonic()
            health = await control.health()
            main_cpu = cpu_seconds(node.pid, children=False) - main_cpu
            passed = await passthrough_of(control, "cap", sessions) if check_passthrough else None
        stop.set()
        reader.cancel()
    late = arrivals.lateness_ms(
        [f"cap{n}" for n in range(sessions)], ended - WINDOW_SECONDS, ended, PREBUFFER_FRAMES
    )
    p99, worst = percentile(late, 0.99), max(late, default=float("nan"))
    node_p99 = health["lateness_ms"]["p99"]
    dropped = health["totals"]["frames_dropped"]
    playing = health["sessions"]["playing"]
    frames = health["totals"]["frames_sent"]
    ok = (
        p99 < LATENESS_P99_TARGET_MS
        and node_p99 < LATENESS_P99_TARGET_MS
        and dropped == 0
        and playing == sessions
    )
    print(
        f"      {sessions:>4} sessions: receiver p99 {p99:6.2f} ms, max {worst:7.1f} ms; "
        f"node p99 {node_p99:6.2f} ms; dropped {dropped}, late {health['totals']['frames_late']}; "
        f"event loop {main_cpu / max(1, frames) * 1e6:5.1f} us/frame "
        f"({main_cpu / (ended - started + 1e-9):.2f} core)"
        + (f"; {describe_passthrough(passed, sessions)}" if check_passthrough else "")
        + f"  {'ok' if ok else 'over'}",
        flush=True,
    )
    return ok, passed


async def capacity(
    workdir: Path,
    media: Path,
    start: int,
    seconds: float,
    audio_format: str = "opus",
    span: float = 30.0,  # start_at spread: 30 s + a step stays inside the 60 s track, so no
    # playback ends in a step (its 5 closing silence frames would look early)
    check_passthrough: bool = False,
    cap: int | None = None,
) -> tuple[int, int | None]:
    """The most sessions sustained (a doubling, then bisecting search, never above ``cap``),
    and how many of them passed through at that step (None: not checked, not supported or
    none sustained). A result equal to ``cap`` means "at least"."""
    low, high = 0, None
    passed_at_low: int | None = None
    n = start if cap is None else min(start, cap)
    while high is None or high - low > max(4, low // 20):
        ok, passed = await capacity_step(
            workdir, media, n, seconds, audio_format, span, check_passthrough
        )
        if ok:
            low, passed_at_low = n, passed
            if n == cap:
                break
            n = n * 2 if high is None else (low + high) // 2
            if cap is not None:
                n = min(n, cap)
        else:
            high = n
            n = (low + high) // 2
        if n <= low:
            break
    return low, passed_at_low


async def first_frame_latency(workdir: Path, media: Path, plays: int) -> list[float]:
    latencies = []
    with NodeProcess(workdir, media_root=media.parent) as node:
        reader, writer = await asyncio.open_unix_connection(str(node.socket_path))
        decoder = Decoder()
        async with ControlClient(node.url) as control:
            for n in range(plays):
                session_id = f"lat{n}"
                start = time.perf_counter()
                await control.play(session_id, media.name, "opus")
                seen = False
                while not seen:
                    for message in decoder.feed(await reader.read(1 << 16)):
                        if isinstance(message, AudioFrame) and message.session_id == session_id:
                            seen = True
                latencies.append((time.perf_counter() - start) * 1000)
                await control.stop(session_id)
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
        async with ControlClient(node.url) as control:
            await asyncio.gather(
                *(
                    control.play(f"leg{n}", media.name, "opus", n % 20, duration=seconds)
                    for n in range(sessions)
                )
            )
            await asyncio.sleep(seconds)
            await asyncio.gather(*(control.stop(f"leg{n}") for n in range(sessions)))
        node_cpu = cpu_seconds(node.pid) - start_cpu
        stop.set()
        reader.cancel()
    return ffmpeg_cpu, node_cpu


def lateness_against(
    arrivals: Arrivals, session_ids: list[str], reference: tuple[float, float], since: float
) -> list[float]:
    """Lateness (ms) of frames arriving after ``since``, each session's schedule set by its
    paced frames (index >= the prebuffer) that arrived within ``reference``."""
    late: list[float] = []
    for session_id in session_ids:
        times = arrivals.times.get(session_id, [])
        ref = [
            n
            for n in range(PREBUFFER_FRAMES, len(times))
            if reference[0] <= times[n] < reference[1]
        ]
        measured = [n for n in range(PREBUFFER_FRAMES, len(times)) if times[n] >= since]
        if ref and measured:
            late += schedule_lateness(
                times, range(ref[0], ref[-1] + 1), range(measured[0], len(times))
            )
    return [x * 1000 for x in late]


async def burst_isolation(
    workdir: Path, media: Path, playing: int, burst: int, settle: float, after: float
) -> None:
    with NodeProcess(
        workdir, "--progress-interval", "0", "--max-sessions", MAX_SESSIONS, media_root=media.parent
    ) as node:
        stop = asyncio.Event()
        arrivals = Arrivals()
        reader = asyncio.create_task(arrivals.run(node.socket_path, stop))
        async with ControlClient(node.url) as control:
            old = [f"play{n}" for n in range(playing)]
            new = [f"burst{n}" for n in range(burst)]
            await asyncio.gather(
                *(
                    control.play(s, media.name, "opus-packets", (n * 0.37) % 30)
                    for n, s in enumerate(old)
                )
            )
            await asyncio.sleep(settle)
            burst_at = time.monotonic()
            await asyncio.gather(
                *(
                    control.play(s, media.name, "opus-packets", (n * 0.53) % 30)
                    for n, s in enumerate(new)
                )
            )
            posted = time.monotonic() - burst_at
            await asyncio.sleep(after)
        stop.set()
        reader.cancel()
    late_old = lateness_against(arrivals, old, (0.0, burst_at), burst_at)
    late_new = lateness_against(arrivals, new, (burst_at + 1.0, float("inf")), burst_at + 1.0)
    first = [arrivals.times[s][0] - burst_at for s in new if arrivals.times.get(s)]
    p99 = percentile(late_old, 0.99)
    nan = float("nan")
    print(
        f"(e) {burst} plays posted at once (in {posted * 1000:.0f} ms) on top of {playing} playing "
        f"44.1 kHz WAV -> opus-packets sessions:\n"
        f"    the {playing} playing: p99 lateness {p99:.1f} ms, max {max(late_old, default=nan):.1f} ms "
        f"against their pre-burst schedule (target < {LATENESS_P99_TARGET_MS:.0f} ms) "
        f"{'OK' if p99 < LATENESS_P99_TARGET_MS else 'MISSED'}\n"
        f"    the {burst} new: {len(first)} started; first frame after "
        f"{statistics.median(first) * 1000 if first else nan:.0f} ms median, "
        f"{max(first, default=nan) * 1000:.0f} ms max; after their first second p99 "
        f"{percentile(late_new, 0.99):.1f} ms, max {max(late_new, default=nan):.1f} ms",
        flush=True,
    )


async def node_cpu_per_session_minute(
    workdir: Path, media: Path, sessions: int, seconds: float, extra: dict[str, Any]
) -> tuple[float, int | None]:
    """Node CPU (event loop and codec workers) per session-minute in steady state, and how
    many of the playbacks passed through (None: the node does not say)."""
    with NodeProcess(
        workdir, "--progress-interval", "0", "--max-sessions", MAX_SESSIONS, media_root=media.parent
    ) as node:
        stop = asyncio.Event()
        reader = asyncio.create_task(drain(node.socket_path, stop))
        async with ControlClient(node.url) as control:
            await asyncio.gather(
                *(
                    control.play(f"cpu{n}", media.name, "opus-packets", n % 30, **extra)
                    for n in range(sessions)
                )
            )
            await asyncio.sleep(CPU_SETTLE_SECONDS)  # steady state: opens and prebuffers done
            start_cpu = cpu_seconds(node.pid)
            await asyncio.sleep(seconds)
            cpu = cpu_seconds(node.pid) - start_cpu
            health = await control.health()
            passed = await passthrough_of(control, "cpu", sessions)
            await asyncio.gather(*(control.stop(f"cpu{n}") for n in range(sessions)))
        stop.set()
        reader.cancel()
    counted = health["sessions"].get("passthrough")  # /health's count, once the node has it
    if passed is not None and counted is not None and counted != passed:
        print(f"    note: /health counts {counted} passthrough, the statuses {passed}", flush=True)
    return cpu / (sessions * seconds / 60), passed


def at_least(sustained: int, cap: int | None) -> str:
    return ">= " if sustained == cap else ""


async def passthrough_section(args: argparse.Namespace, workdir: Path) -> None:
    ogg = write_tone_file(workdir / "track.ogg", 440, 60.0, 48_000, 2, "libopus", "ogg")
    sessions = args.cpu_sessions
    passed, passed_count = await node_cpu_per_session_minute(
        workdir, ogg, sessions, args.cpu_seconds, {}
    )
    coded, coded_count = await node_cpu_per_session_minute(
        workdir, ogg, sessions, args.cpu_seconds, {"bitrate": TRANSCODE_BITRATE}
    )
    ratio = passed / coded
    supported = passed_count is not None
    as_meant = passed_count == sessions and coded_count == 0
    if as_meant:
        verdict = "OK" if ratio <= PASSTHROUGH_CPU_TARGET else "MISSED"
    else:
        verdict = "(not evaluated: see below)"
    print(
        f"(f) 48 kHz 20 ms Ogg Opus -> opus-packets, {sessions} sessions x "
        f"{args.cpu_seconds:.0f} s: as is {passed:.3f} CPU s per session-minute, "
        f"with bitrate {TRANSCODE_BITRATE} (transcoded) {coded:.3f}: "
        f"ratio {ratio:.3f} (target <= {PASSTHROUGH_CPU_TARGET}) {verdict}",
        flush=True,
    )
    if not supported:
        print(
            f'    {describe_passthrough(None, sessions)} (no "passthrough" in a playback\'s '
            "status): both runs transcoded, the ratio compares two transcodes",
            flush=True,
        )
    else:
        print(
            f"    passthrough: {passed_count} of {sessions} playbacks as is, "
            f"{coded_count} of {sessions} with a bitrate"
            + ("" if as_meant else " (WARNING: expected all, then none)"),
            flush=True,
        )
    # Without passthrough every session transcodes: search from the transcoding capacity.
    start = args.passthrough_start if supported else args.start_sessions
    if args.capacity_cap is not None:
        start = min(start, args.capacity_cap)
    print(
        f"    paced opus-packets sessions of that source (p99 < {LATENESS_P99_TARGET_MS:.0f} ms), "
        f"{args.step_seconds:.0f} s per step, from {start}:",
        flush=True,
    )
    most, passed_at_most = await capacity(
        workdir,
        ogg,
        start,
        args.step_seconds,
        "opus-packets",
        30.0,
        check_passthrough=True,
        cap=args.capacity_cap,
    )
    capped = at_least(most, args.capacity_cap)
    if most > 0 and passed_at_most == most:
        met = most >= PASSTHROUGH_SESSIONS_TARGET
        verdict = "OK" if met else "(capped: not evaluated)" if capped else "MISSED"
        summary = f"all passed through (target >= {PASSTHROUGH_SESSIONS_TARGET}) {verdict}"
    elif most > 0:
        summary = (
            f"{describe_passthrough(passed_at_most, most)}: not a passthrough figure "
            "(target not evaluated)"
        )
    else:
        summary = "none sustained"
    print(f"    sustained {capped}{most} sessions, {summary}", flush=True)


async def main_async(args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 1
    only = set(args.only)
    with tempfile.TemporaryDirectory(prefix="snowmux-bench-") as tmp:
        workdir = Path(tmp)
        media = write_tone_file(workdir / "track.mp3", 440, 60.0, 44_100, 2, "libmp3lame")
        factor, cpu = realtime_factor(media)
        print(
            f"(a) decode+resample+Opus encode, 60 s 44.1 kHz stereo MP3: {cpu:.2f} CPU s, "
            f"real-time factor {factor:.0f}x on one core",
            flush=True,
        )
        ideal = cores * factor
        if "b" in only:
            print(
                f"(b) paced opus sessions (p99 lateness < {LATENESS_P99_TARGET_MS:.0f} ms at the "
                f"receiver and at the node, no drops), {args.step_seconds:.0f} s per step:",
                flush=True,
            )
            best, _ = await capacity(
                workdir, media, args.start_sessions, args.step_seconds, cap=args.capacity_cap
            )
            ratio = best / ideal
            capped = at_least(best, args.capacity_cap)
            verdict = "OK" if ratio >= CAPACITY_TARGET else "MISSED"
            print(
                f"    sustained {capped}{best} sessions; "
                f"ideal = {cores} cores x {factor:.0f} = {ideal:.0f}; "
                f"ratio {capped}{ratio:.2f} (target >= {CAPACITY_TARGET}) "
                f"{'(capped: not evaluated)' if capped and verdict == 'MISSED' else verdict}",
                flush=True,
            )
        if "c" in only:
            latencies = await first_frame_latency(workdir, media, args.plays)
            median = statistics.median(latencies)
            p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else median
            print(
                f"(c) POST /play -> first frame, local MP3, {args.plays} plays: median {median:.1f} ms, "
                f"p95 {p95:.1f} ms (target median < {LATENCY_TARGET_MS:.0f} ms) "
                f"{'OK' if median < LATENCY_TARGET_MS else 'MISSED'}",
                flush=True,
            )
        if "d" in only and shutil.which("ffmpeg"):
            ffmpeg_cpu, node_cpu = await legacy_cpu(
                workdir, media, args.legacy_sessions, args.legacy_seconds
            )
            print(
                f"(d) {args.legacy_sessions} sessions x {args.legacy_seconds:.0f} s: one `ffmpeg -re` per "
                f"session {ffmpeg_cpu:.2f} CPU s, node {node_cpu:.2f} CPU s: "
                f"legacy / node = {ffmpeg_cpu / node_cpu:.2f}x",
                flush=True,
            )
        elif "d" in only:
            print("(d) skipped: ffmpeg is not installed")
        if "e" in only:
            wav = write_tone_file(workdir / "track.wav", 440, 60.0, 44_100, 2, "pcm_s16le")
            await burst_isolation(
                workdir, wav, args.burst_playing, args.burst, args.burst_settle, args.burst_after
            )
        if "f" in only:
            await passthrough_section(args, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--start-sessions", type=int, default=64, help="(b) first capacity step")
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=24.0,
        help="(b), (f) per capacity step; lateness is taken over the last 10 s, so the "
        "start-up burst of N sessions at once is not what is measured",
    )
    parser.add_argument(
        "--capacity-cap",
        type=int,
        default=None,
        help="(b), (f) never step above this many sessions (a smoke run on a shared machine); "
        "a figure equal to it means at least that many",
    )
    parser.add_argument("--plays", type=int, default=40, help="(c) plays, one after another")
    parser.add_argument("--legacy-sessions", type=int, default=10, help="(d)")
    parser.add_argument("--legacy-seconds", type=float, default=10.0, help="(d)")
    parser.add_argument(
        "--burst-playing", type=int, default=30, help="(e) sessions already playing"
    )
    parser.add_argument("--burst", type=int, default=80, help="(e) plays posted at once")
    parser.add_argument(
        "--burst-settle", type=float, default=6.0, help="(e) seconds of playing before the burst"
    )
    parser.add_argument("--burst-after", type=float, default=10.0, help="(e) seconds after it")
    parser.add_argument("--cpu-sessions", type=int, default=40, help="(f) sessions per CPU run")
    parser.add_argument("--cpu-seconds", type=float, default=20.0, help="(f) CPU counted for")
    parser.add_argument(
        "--passthrough-start", type=int, default=512, help="(f) first passthrough capacity step"
    )
    parser.add_argument(
        "--only", default="abcdef", help="which sections to run, e.g. be ((a) always runs)"
    )
    parser.add_argument("--quick", action="store_true", help="short steps, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.step_seconds, args.plays, args.legacy_seconds = 12.0, 10, 3.0
        args.burst_after, args.cpu_seconds = 5.0, 8.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
