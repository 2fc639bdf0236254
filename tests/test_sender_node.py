"""`snowmux serve` as a real process: playback semantics over the real socket."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from snowmux.audio_format import FRAME_BYTES, OPUS_SILENCE
from snowmux.node.tone import parse_tone_url, tone_pcm
from snowmux.protocol import AudioFrame, Event
from snowmux.receiver import Endpoint, FrameQueue, Receiver, Router
from snowmux.testing import write_tone_file

from .audio_checks import (
    decode_ogg_opus,
    decode_opus_packets,
    dominant_frequency,
    ffprobe,
)
from .node_helpers import NodeProcess, Recorder, call, play

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("node")) as process:
        yield process


@pytest.fixture(scope="module")
def fast_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("fast"), "--no-pace") as process:
        yield process


def tone(frequency: int, seconds: float) -> bytes:
    return b"".join(tone_pcm(parse_tone_url(f"tone:{frequency}?seconds={seconds}"), 0))


def rate_between(times: list[float], start: float, end: float) -> float:
    return sum(start <= t < end for t in times) / (end - start)


@pytest.mark.spec("P1", "P2", "P3", "O2")
async def test_two_sessions_play_at_once_each_with_its_own_tone(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "111111111111111111", "tone:440?seconds=1.5", format="pcm")
        await play(node.url, "222222222222222222", "tone:1000?seconds=1.5", format="opus")
        await rx.wait_event("111111111111111111", "finished")
        await rx.wait_event("222222222222222222", "finished")
    first = rx.messages[0].message
    assert (
        isinstance(first, Event) and first.type == "hello" and first.data["protocol"] == "snowmux/1"
    )
    for session_id, _frequency in (("111111111111111111", 440), ("222222222222222222", 1000)):
        messages = rx.playback_messages(session_id)
        assert isinstance(messages[0], Event) and messages[0].type == "ready"
        assert isinstance(messages[-1], Event) and messages[-1].data["reason"] == "finished"
        assert all(isinstance(m, AudioFrame) for m in messages[1:-1])
    assert dominant_frequency(rx.payload("111111111111111111")) == pytest.approx(440, abs=3)
    assert rx.payload("111111111111111111") == tone(440, 1.5)
    ogg = decode_ogg_opus(rx.payload("222222222222222222"))
    assert dominant_frequency(ogg) == pytest.approx(1000, abs=3)
    assert rx.events("111111111111111111", "ready")[0].data["format"] == "pcm"
    assert rx.events("111111111111111111", "ready")[0].data["duration"] == 1.5


@pytest.mark.spec("P3", "P7")
async def test_stopping_one_session_leaves_the_other_at_50_frames_per_second(
    node: NodeProcess,
) -> None:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "keep", "tone:500?seconds=5")
        await play(node.url, "drop", "tone:700?seconds=5", format="opus")
        await asyncio.sleep(1.2)
        status, body = await call(node.url, "POST", "/session/drop/stop")
        assert (status, body["status"]) == (200, "stopped")
        stop_event = await rx.wait_event("drop", "finished")
        assert stop_event.data["reason"] == "stopped"
        stopped_at = next(r.at for r in rx.messages if r.message is stop_event)
        await asyncio.sleep(2.0)
        after = rx.frame_times("keep")
        assert 45 <= rate_between(after, stopped_at + 0.2, stopped_at + 1.8) <= 55
        gaps = np.diff([t for t in after if t > stopped_at - 0.5])
        assert gaps.max() < 0.1
        drop_messages = rx.playback_messages("drop")
        index = drop_messages.index(stop_event)
        assert not any(isinstance(m, AudioFrame) for m in drop_messages[index:])
        await call(node.url, "POST", "/session/keep/stop")


@pytest.mark.spec("P2", "P3")
async def test_replaying_an_id_ends_the_old_playback_first(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "guild-r", "tone:440?seconds=5", format="pcm")
        await rx.wait_for(lambda: len(rx.frames("guild-r")) > 30)
        await play(node.url, "guild-r", "tone:1200?seconds=0.6", format="pcm")
        await rx.wait_event("guild-r", "finished", count=2)
    messages = rx.playback_messages("guild-r")
    kinds = [m.type if isinstance(m, Event) else "frame" for m in messages]
    replaced = kinds.index("finished")
    assert messages[replaced].data["reason"] == "replaced"
    assert kinds[replaced + 1] == "ready"
    old = b"".join(bytes(m.payload) for m in messages[:replaced] if isinstance(m, AudioFrame))
    new = b"".join(bytes(m.payload) for m in messages[replaced:] if isinstance(m, AudioFrame))
    assert dominant_frequency(old) == pytest.approx(440, abs=3)
    assert new == tone(1200, 0.6)


@pytest.mark.spec("P6")
async def test_pause_and_resume_lose_skip_or_repeat_nothing(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "pauser", "tone:300?seconds=2", format="pcm")
        await rx.wait_for(lambda: len(rx.frames("pauser")) > 40)
        status, body = await call(node.url, "POST", "/session/pauser/pause")
        assert (status, body["status"]) == (200, "paused")
        await asyncio.sleep(0.3)
        during = len(rx.frames("pauser"))
        await asyncio.sleep(0.5)
        assert len(rx.frames("pauser")) == during  # nothing while paused
        status, body = await call(node.url, "GET", "/session/pauser/status")
        assert body["state"] == "paused"
        status, body = await call(node.url, "POST", "/session/pauser/resume")
        assert (status, body["status"]) == (200, "playing")
        await rx.wait_event("pauser", "finished")
    assert rx.payload("pauser") == tone(300, 2)


@pytest.mark.spec("P4", "P2")
async def test_opus_packets_end_with_five_silence_frames_on_pause_and_end(
    node: NodeProcess,
) -> None:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "packets", "tone:880?seconds=1.2", format="opus-packets")
        await rx.wait_for(lambda: len(rx.frames("packets")) > 30)
        await call(node.url, "POST", "/session/packets/pause")
        await asyncio.sleep(0.2)
        paused_frames = [bytes(f.payload) for f in rx.frames("packets")]
        assert paused_frames[-5:] == [OPUS_SILENCE] * 5
        await call(node.url, "POST", "/session/packets/resume")
        await rx.wait_event("packets", "finished")
    packets = [bytes(f.payload) for f in rx.frames("packets")]
    assert packets[-5:] == [OPUS_SILENCE] * 5
    audio = [p for p in packets if p != OPUS_SILENCE]
    samples, counts = decode_opus_packets(audio)
    assert set(counts) == {960}
    assert dominant_frequency(samples) == pytest.approx(880, abs=3)


@pytest.mark.spec("P4")
@pytest.mark.parametrize("audio_format", ["pcm", "opus", "web", "opus-packets"])
async def test_each_format_passes_an_independent_decoder(
    fast_node: NodeProcess, tmp_path: Path, audio_format: str
) -> None:
    async with Recorder(fast_node.socket_path) as rx:
        await play(fast_node.url, f"fmt-{audio_format}", "tone:523?seconds=2", format=audio_format)
        await rx.wait_event(f"fmt-{audio_format}", "finished")
    payloads = [bytes(f.payload) for f in rx.frames(f"fmt-{audio_format}")]
    if audio_format == "pcm":
        assert {len(p) for p in payloads} == {FRAME_BYTES}
        path = tmp_path / "out.pcm"
        path.write_bytes(b"".join(payloads))
        info = ffprobe(path, "-f", "s16le", "-ar", "48000", "-ac", "2")
        assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.001)
    elif audio_format in ("opus", "web"):
        path = tmp_path / "out.opus"
        path.write_bytes(b"".join(payloads))
        info = ffprobe(path)
        (stream,) = info["streams"]
        assert stream["codec_name"] == "opus" and stream["channels"] == 2
        assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.03)
        expected_kbps = 128 if audio_format == "opus" else 256
        assert float(info["format"]["bit_rate"]) / 1000 == pytest.approx(expected_kbps, rel=0.35)
    else:
        _, counts = decode_opus_packets(payloads)
        assert set(counts) == {960} and len(payloads) >= 100 + 5


async def test_start_at_seeks_exactly(fast_node: NodeProcess) -> None:
    async with Recorder(fast_node.socket_path) as rx:
        await play(fast_node.url, "seek", "tone:440?seconds=2", format="pcm", start_at=0.7531)
        ready = await rx.wait_event("seek", "ready")
        await rx.wait_event("seek", "finished")
    assert ready.data["position_secs"] == pytest.approx(0.7531)
    expected = tone(440, 2)[round(0.7531 * 48000) * 4 :]
    expected += bytes(-len(expected) % FRAME_BYTES)
    assert rx.payload("seek") == expected


@pytest.mark.spec("P2", "P3", "A4")
async def test_failures_are_error_events_and_never_disturb_others(
    node: NodeProcess,
) -> None:
    (node.media_root / "noise.mp3").write_bytes(os.urandom(20_000))
    (node.media_root / "empty.wav").write_bytes(b"")
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "steady", "tone:600?seconds=2.5")
        await asyncio.sleep(0.8)
        for session_id, url, expected in (
            ("missing", "nope.flac", 404),
            ("noise", "noise.mp3", 422),
            ("empty", "empty.wav", 422),
        ):
            status, reply = await call(
                node.url, "POST", f"/session/{session_id}/play", {"url": url}
            )
            assert (status, reply["status"]) == (expected, "error"), reply  # [A4]
        for session_id in ("missing", "noise", "empty"):
            event = await rx.wait_event(session_id, "error")
            assert event.data["message"]
            assert not rx.frames(session_id)
        assert "no such file" in rx.events("missing", "error")[0].data["message"]
        await rx.wait_event("steady", "finished")
    times = rx.frame_times("steady")
    assert np.diff(times[30:]).max() < 0.1
    assert rx.payload("steady") == tone(600, 2.5)


@pytest.mark.spec("P2")
async def test_a_decode_error_mid_track_ends_with_error_after_the_good_frames(
    fast_node: NodeProcess,
) -> None:
    path = write_tone_file(fast_node.media_root / "mid.mp3", 440, 3.0, 44_100, 2, "libmp3lame")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = bytes(range(256)) * 11 + bytes(184)
    (fast_node.media_root / "broken.mp3").write_bytes(bytes(data))
    async with Recorder(fast_node.socket_path) as rx:
        await play(fast_node.url, "broken", "broken.mp3", format="pcm")
        error = await rx.wait_event("broken", "error")
    messages = rx.playback_messages("broken")
    assert messages[-1] is error and "decode error" in error.data["message"]
    frames = rx.frames("broken")
    assert 40 < len(frames) < 150  # the good first half arrived before the error
    assert dominant_frequency(rx.payload("broken")) == pytest.approx(440, abs=5)


@pytest.mark.spec("P5", "B3")
async def test_a_receiver_joining_mid_playback_gets_ready_and_ogg_headers(
    node: NodeProcess, tmp_path: Path
) -> None:
    async with Recorder(node.socket_path) as early:
        await play(node.url, "late-join", "tone:750?seconds=3", format="opus")
        await early.wait_for(lambda: len(early.frames("late-join")) > 40)
        async with Recorder(node.socket_path) as late:
            await late.wait_event("late-join", "finished")
    kinds = [
        m.type if isinstance(m, Event) else "frame" for m in (r.message for r in late.messages)
    ]
    assert kinds[0] == "hello"
    ready = late.events("late-join", "ready")[0]
    assert ready.data["format"] == "opus" and ready.data["position_secs"] > 0.5
    path = tmp_path / "late.opus"
    path.write_bytes(late.payload("late-join"))
    info = ffprobe(path)
    assert info["streams"][0]["codec_name"] == "opus"
    assert dominant_frequency(decode_ogg_opus(path.read_bytes())) == pytest.approx(750, abs=3)
    assert late.error is None and early.error is None


@pytest.mark.spec("B3", "O2")
async def test_disconnecting_mid_frame_then_reconnecting_gets_whole_messages(
    fast_node: NodeProcess,
) -> None:
    reader, writer = await asyncio.open_unix_connection(str(fast_node.socket_path))
    await play(fast_node.url, "cut", "tone:440?seconds=3", format="pcm")
    partial = await reader.read(1000)  # hello + ready + part of a 3,868-byte frame
    assert partial
    writer.close()
    async with Recorder(fast_node.socket_path) as rx:
        await play(fast_node.url, "after", "tone:440?seconds=0.5", format="pcm")
        await rx.wait_event("after", "finished")
    assert rx.error is None
    assert isinstance(rx.messages[0].message, Event) and rx.messages[0].message.type == "hello"
    assert rx.payload("after") == tone(440, 0.5)


@pytest.mark.spec("P7")
async def test_a_stalled_receiver_delays_nobody_and_memory_stays_bounded(tmp_path: Path) -> None:
    queue_mib = 2
    with NodeProcess(tmp_path, "--receiver-queue-kib", str(queue_mib * 1024)) as node:
        _stalled_reader, stalled_writer = await asyncio.open_unix_connection(str(node.socket_path))
        async with Recorder(node.socket_path) as rx:
            rss_before = node.rss_kib()
            for n in range(4):
                await play(node.url, f"pcm-{n}", "tone:400?seconds=8", format="pcm")
            await asyncio.sleep(6)
            times = rx.frame_times("pcm-0")
            assert 45 <= rate_between(times, times[0] + 1, times[0] + 5) <= 55
            _, health = await call(node.url, "GET", "/health")
            assert health["receivers"]["connected"] == 2
            assert health["totals"]["frames_dropped"] > 0
            assert health["receivers"]["queued_bytes"] <= (queue_mib << 20) + 2 * FRAME_BYTES
            _status, session = await call(node.url, "GET", "/session/pcm-0/status")
            assert session["frames_dropped"] > 0
            assert node.rss_kib() - rss_before < 40 * 1024
            for n in range(4):
                await call(node.url, "POST", f"/session/pcm-{n}/stop")
            await rx.wait_event("pcm-0", "finished")
            _, final = await call(node.url, "GET", "/session/pcm-0/status")
            assert len(rx.frames("pcm-0")) == final["frames_sent"]  # the live one lost nothing
        stalled_writer.close()


@pytest.mark.spec("P2")
async def test_sigterm_stops_sessions_with_finished_and_removes_the_socket(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path).start()
    try:
        mode = stat.S_IMODE(node.socket_path.stat().st_mode)
        assert mode == 0o600
        async with Recorder(node.socket_path) as rx:
            await play(node.url, "sig", "tone:440?seconds=30")
            await rx.wait_for(lambda: len(rx.frames("sig")) > 5)
            node.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            event = await rx.wait_event("sig", "finished")
            assert event.data["reason"] == "stopped"
        assert node.process.wait(15) == 0  # type: ignore[union-attr]
        assert not node.socket_path.exists()
    finally:
        node.stop()


async def test_stale_socket_is_replaced_and_tcp_receivers_work(tmp_path: Path) -> None:
    import socket as socket_module

    stale = socket_module.socket(socket_module.AF_UNIX)
    stale.bind(str(tmp_path / "node.sock"))
    stale.close()  # leaves a socket file nobody listens on
    probe = socket_module.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with NodeProcess(tmp_path, "--tcp", str(port)) as node:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        line = await asyncio.wait_for(reader.readline(), 5)
        assert b'"type":"hello"' in line
        writer.close()
        sink = FrameQueue(1000)
        router = Router()
        router.register("over-tcp", sink)
        receiver = Receiver(Endpoint(tcp=("127.0.0.1", port)), router)
        task = asyncio.create_task(receiver.run())
        await asyncio.wait_for(receiver.connected.wait(), 5)
        await play(node.url, "over-tcp", "tone:440?seconds=0.4", format="pcm")
        frames = []
        async for frame in sink:
            frames.append(bytes(frame.payload))
            if len(frames) == 20:
                break
        receiver.stop()
        await task
        assert b"".join(frames) == tone(440, 0.4)


async def test_progress_events_report_bytes_and_position(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--no-pace", "--progress-interval", "0.2") as node:
        async with Recorder(node.socket_path) as rx:
            await play(node.url, "prog", "tone:440?seconds=1", format="pcm")
            await rx.wait_event("prog", "finished")
    progress = rx.events("prog", "progress")
    assert [round(e.data["playback_secs"], 2) for e in progress] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert [e.data["bytes"] for e in progress] == [FRAME_BYTES * 10 * k for k in range(1, 6)]


@pytest.mark.spec("P3")
async def test_a_crashed_codec_worker_fails_only_its_playbacks(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--codec-processes", "2") as node:
        async with Recorder(node.socket_path) as rx:
            for n in range(4):
                await play(node.url, f"w{n}", "tone:440?seconds=30", format="pcm")
            await rx.wait_for(lambda: all(len(rx.frames(f"w{n}")) > 30 for n in range(4)))
            workers = [
                int(p.parent.name)
                for p in Path("/proc").glob("[0-9]*/cmdline")
                if _is_worker_of(p, node.pid)
            ]
            assert len(workers) == 2
            os.kill(workers[0], signal.SIGKILL)
            await rx.wait_for(lambda: len(rx.events(type="error")) >= 1, timeout=20)
            # plays answer once open, so playbacks start some ms apart and the
            # dead worker's playbacks each fail when their own buffer runs out
            await asyncio.sleep(0.3)
            failed = {e.session_id for e in rx.events(type="error")}
            assert 1 <= len(failed) <= 3 and all(
                "crashed" in e.data["message"] for e in rx.events(type="error")
            )
            survivors = [f"w{n}" for n in range(4) if f"w{n}" not in failed]
            before = {s: len(rx.frames(s)) for s in survivors}
            await asyncio.sleep(1.0)
            assert all(len(rx.frames(s)) - before[s] >= 40 for s in survivors)
            await play(node.url, "after-crash", "tone:880?seconds=0.5", format="pcm")
            await rx.wait_event("after-crash", "finished")
            assert rx.payload("after-crash") == tone(880, 0.5)


def _is_worker_of(cmdline: Path, node_pid: int) -> bool:
    try:
        stat = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
        return int(stat[1]) == node_pid and b"spawn_main" in cmdline.read_bytes()
    except OSError:
        return False
