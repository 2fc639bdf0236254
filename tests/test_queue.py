"""The queue on a real `snowmux serve`: gapless, crossfade, skip, clear, events.

Every check decodes what a real receiver got.
"""

from __future__ import annotations

import asyncio
import struct
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from snowmux.audio_format import FRAME_BYTES, FRAME_SAMPLES
from snowmux.protocol import AudioFrame, Event, EventEncodeError, encode_event

from .audio_checks import decode_ogg_opus, dominant_frequency
from .node_helpers import NodeProcess, Recorder, RouteProcess, call, snowmux
from .test_player_controls import RATE, StallingServer, indices

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("queue")) as process:
        write_index_range(process.media_root / "a.wav", 0, 48_624)  # 1.013 s
        write_index_range(process.media_root / "b.wav", 48_624, 72_000)  # 1.5 s
        yield process


def write_index_range(path: Path, first: int, count: int) -> None:
    """48 kHz stereo s16 whose samples spell first..first+count-1 (left n % 32768)."""
    n = np.arange(first, first + count, dtype=np.int64)
    stereo = np.stack([n % 32768, n // 32768], axis=1).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(stereo.tobytes())


async def enqueue(node: NodeProcess, session_id: str, url: str, **fields: Any) -> int:
    status, body = await call(
        node.url, "POST", f"/session/{session_id}/queue", {"url": url, **fields}
    )
    assert status == 200 and body["status"] == "queued", body
    position: int = body["position"]
    return position


def tone_level_db(samples: np.ndarray, frequency: float) -> float:
    """The level (dB) of ``frequency`` in ``samples`` (Goertzel-free: one DFT bin)."""
    n = np.arange(len(samples))
    phasor = np.exp(-2j * np.pi * frequency * n / RATE)
    return float(20 * np.log10(abs(np.dot(samples, phasor)) * 2 / len(samples) + 1e-9))


@pytest.mark.spec("Q1", "Q3")
async def test_gapless_queue_is_one_exact_sample_sequence_with_track_events(
    node: NodeProcess,
) -> None:
    # a.wav (1.013 s, not a multiple of 20 ms) spells 0..48623, b.wav (1.5 s) what follows
    a_len, b_len = 48_624, 72_000
    async with Recorder(node.socket_path) as rx:
        assert await enqueue(node, "gapless", "a.wav", format="pcm") == 0
        assert await enqueue(node, "gapless", "b.wav") == 1
        finished = await rx.wait_event("gapless", "finished", timeout=20)
    assert finished.data["reason"] == "finished" and len(rx.events("gapless", "finished")) == 1
    assert len(rx.events("gapless", "ready")) == 1
    frames = rx.frames("gapless")
    assert {len(f.payload) for f in frames} == {FRAME_BYTES}
    pcm = rx.payload("gapless")
    total = a_len + b_len
    assert np.array_equal(indices(pcm[: total * 4]), np.arange(total))  # byte-exact A then B
    assert not any(pcm[total * 4 :])  # only the end of the whole queue is padded
    assert len(frames) == -(-total // FRAME_SAMPLES)
    # events: track_start before the frame holding the track's first sample
    order = [
        m.type if isinstance(m, Event) else "frame"
        for m in rx.playback_messages("gapless")
        if isinstance(m, AudioFrame) or m.type.startswith("track_")
    ]
    starts = rx.events("gapless", "track_start")
    assert [(e.data["index"], e.data["sample_offset"]) for e in starts] == [(0, 0), (1, 624)]
    assert starts[1].data["duration"] == pytest.approx(1.5)
    frame_of_b = a_len // FRAME_SAMPLES  # frame 50 holds B's first sample at offset 624
    track_events = [i for i, kind in enumerate(order) if kind != "frame"]
    assert order[track_events[1]] == "track_start"
    assert order[: track_events[1]].count("frame") == frame_of_b
    ends = rx.events("gapless", "track_end")
    assert [(e.data["index"], e.data["reason"]) for e in ends] == [(0, "finished"), (1, "finished")]
    _, listed = await call(node.url, "GET", "/session/gapless/queue")
    assert [t["state"] for t in listed["tracks"]] == ["finished", "finished"]
    assert listed["current"] == 1


@pytest.mark.spec("Q2")
async def test_crossfade_of_2_s_between_two_6_s_tones(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await enqueue(node, "xfade", "tone:440?seconds=6", format="pcm", crossfade_ms=2000)
        await enqueue(node, "xfade", "tone:660?seconds=6")
        await rx.wait_event("xfade", "finished", timeout=25)
    pcm = rx.payload("xfade")
    samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)[:, 0].astype(float)
    assert len(samples) / RATE == pytest.approx(10.0, abs=0.021)  # 6 + 6 - 2
    window = RATE // 10
    levels = [
        20 * np.log10(np.sqrt(np.mean(samples[i : i + window] ** 2)))
        for i in range(0, 10 * RATE - window, window)
    ]
    assert max(levels) - min(levels) <= 2.0  # equal power: level within 2 dB throughout
    middle = samples[5 * RATE - window // 2 : 5 * RATE + window // 2]
    assert tone_level_db(middle, 440) == pytest.approx(tone_level_db(middle, 660), abs=1.0)
    assert tone_level_db(samples[: 3 * RATE], 660) < tone_level_db(samples[: 3 * RATE], 440) - 30
    start = rx.events("xfade", "track_start")[1]
    assert start.data["index"] == 1  # the fade starts at 4 s: frame 200, offset 0
    assert start.data["sample_offset"] == 0


@pytest.mark.spec("Q1")
async def test_an_opus_queue_decodes_with_no_gap_at_the_change(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await enqueue(node, "ogg-q", "tone:440?seconds=1.01", format="opus")
        await enqueue(node, "ogg-q", "tone:440?seconds=1")
        await rx.wait_event("ogg-q", "finished", timeout=20)
    payloads = [bytes(f.payload) for f in rx.frames("ogg-q")]
    assert sum(p[5] & 0x02 != 0 for p in payloads) == 1  # one logical stream, one header
    assert len({struct.unpack_from("<I", p, 14)[0] for p in payloads}) == 1
    samples = decode_ogg_opus(b"".join(payloads))
    assert len(samples) / RATE == pytest.approx(2.01, abs=0.03)
    body = samples[RATE // 10 : int(1.9 * RATE)]
    rms = np.sqrt(np.mean(body[: len(body) // 240 * 240].reshape(-1, 240) ** 2, axis=1))
    assert rms.min() > 0.5 * np.median(rms)  # no dip at the change (1.01 s)


@pytest.mark.spec("Q3")
async def test_a_failing_middle_track_is_reported_and_the_queue_moves_on(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await enqueue(node, "failing", "tone:440?seconds=1", format="pcm")
        await enqueue(node, "failing", "missing.wav")
        await enqueue(node, "failing", "tone:660?seconds=0.5")
        await rx.wait_event("failing", "finished", timeout=20)
    ends = [(e.data["index"], e.data["reason"]) for e in rx.events("failing", "track_end")]
    assert ends == [(0, "finished"), (1, "error"), (2, "finished")]
    error = rx.events("failing", "track_end")[1]
    assert "missing.wav" in error.data["message"]
    assert not rx.events("failing", "error")  # the playback itself did not fail
    assert len(rx.payload("failing")) == 75 * FRAME_BYTES  # 1 s + 0.5 s, gapless


@pytest.mark.spec("Q3")
async def test_skip_clear_and_the_409(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await enqueue(node, "skipper", "tone:440?seconds=30", format="pcm")
        assert await enqueue(node, "skipper", "tone:660?seconds=0.5") == 1
        status, body = await call(
            node.url, "POST", "/session/skipper/queue", {"url": "tone:550", "format": "opus"}
        )
        assert status == 409 and "format" in body["message"]
        await rx.wait_for(lambda: len(rx.frames("skipper")) >= 40)
        status, body = await call(node.url, "POST", "/session/skipper/skip")
        assert status == 200, body
        await rx.wait_event("skipper", "finished", timeout=20)
    ends = [(e.data["index"], e.data["reason"]) for e in rx.events("skipper", "track_end")]
    assert ends == [(0, "skipped"), (1, "finished")]
    assert len(rx.events("skipper", "finished")) == 1
    assert len(rx.frames("skipper")) < 30 * 50  # the 30 s track was cut short

    await enqueue(node, "clearer", "tone:440?seconds=30", format="pcm")
    await enqueue(node, "clearer", "tone:550?seconds=5")
    await enqueue(node, "clearer", "tone:660?seconds=5")
    status, body = await call(node.url, "DELETE", "/session/clearer/queue")
    assert status == 200 and body["removed"] == 2
    _, listed = await call(node.url, "GET", "/session/clearer/queue")
    assert [t["url"] for t in listed["tracks"]] == ["tone:440?seconds=30"]
    await call(node.url, "POST", "/session/clearer/stop")
    for method, path in (("GET", "queue"), ("DELETE", "queue"), ("POST", "skip")):
        status, _ = await call(node.url, method, f"/session/never-seen/{path}")
        assert status == 404
    status, _ = await call(node.url, "POST", "/session/clearer/skip")
    assert status == 409
    status, body = await call(
        node.url, "POST", "/session/q-bad/queue", {"url": "tone:440", "crossfade_ms": 12_001}
    )
    assert status == 400 and '"crossfade_ms"' in body["message"]


async def test_cli_queue_list_and_skip(node: NodeProcess) -> None:
    common = ("--node", node.url)
    done = await asyncio.to_thread(
        snowmux, "queue", "cli-q", "tone:440?seconds=30", "--format", "opus", *common
    )
    assert done.returncode == 0 and "queued cli-q position 0" in done.stdout, done.stderr
    done = await asyncio.to_thread(snowmux, "queue", "cli-q", "tone:660?seconds=30", *common)
    assert "position 1" in done.stdout
    done = await asyncio.to_thread(snowmux, "queue", "cli-q", "--list", *common)
    assert done.returncode == 0 and '"current": 0' in done.stdout and "tone:660" in done.stdout
    done = await asyncio.to_thread(snowmux, "skip", "cli-q", *common)
    assert done.returncode == 0
    await asyncio.sleep(1.0)
    _, listed = await call(node.url, "GET", "/session/cli-q/queue")
    assert listed["current"] == 1
    await asyncio.to_thread(snowmux, "queue", "cli-q", "tone:880?seconds=30", *common)
    done = await asyncio.to_thread(snowmux, "queue", "cli-q", "--clear", *common)
    assert done.returncode == 0 and '"removed": 1' in done.stdout, done.stdout + done.stderr
    await call(node.url, "POST", "/session/cli-q/stop")


@pytest.mark.spec("Q3")
async def test_a_slow_remote_next_track_is_prefetched_without_a_gap(tmp_path: Path) -> None:
    write_index_range(tmp_path / "next.wav", 0, 3 * RATE)
    wav = (tmp_path / "next.wav").read_bytes()
    with NodeProcess(tmp_path, "--allow-remote") as node:
        # the server sends the WAV header, then nothing for 1.5 s: a slow open
        async with (
            StallingServer(wav, first=0.0, stall=1.5) as server,
            Recorder(node.socket_path) as rx,
        ):
            await enqueue(node, "prefetch", "tone:440?seconds=2.5", format="pcm")
            asked = time.monotonic()
            await enqueue(node, "prefetch", f"http://127.0.0.1:{server.port}/track.wav")
            assert time.monotonic() - asked < 1.0  # the open runs in the background
            await rx.wait_event("prefetch", "finished", timeout=20)
        assert not rx.events("prefetch", "stuck")
    pcm = rx.payload("prefetch")
    tone_bytes = round(2.5 * RATE) * 4
    assert np.array_equal(indices(pcm[tone_bytes : tone_bytes + 3 * RATE * 4]), np.arange(3 * RATE))
    assert len(pcm) == (round(2.5 * RATE) + 3 * RATE) * 4  # gapless: 125 + 150 frames


@pytest.mark.spec("Q1")
async def test_the_file_sink_writes_a_whole_queue_into_one_file(tmp_path: Path) -> None:
    with NodeProcess(tmp_path) as node, RouteProcess(tmp_path, node.socket_path) as route:
        await route.wait_log("connected to")
        await enqueue(node, "filed", "tone:440?seconds=1.5", format="opus")
        await enqueue(node, "filed", "tone:880?seconds=1")
        await route.wait_log("session filed finished")
        (path,) = route.files("filed")
    samples = decode_ogg_opus(path.read_bytes())
    assert len(samples) / RATE == pytest.approx(2.5, abs=0.03)
    assert dominant_frequency(samples[:RATE]) == pytest.approx(440, abs=3)
    assert dominant_frequency(samples[-RATE // 2 :]) == pytest.approx(880, abs=3)


@pytest.mark.spec("E6", "Q3")
def test_track_events_are_known_event_types() -> None:
    start = encode_event("track_start", "s1", index=1, url="a.wav", duration=1.5, sample_offset=624)
    assert b'"sample_offset":624' in start
    assert b'"reason":"skipped"' in encode_event("track_end", "s1", index=0, reason="skipped")
    with pytest.raises(EventEncodeError):
        encode_event("track_end", "s1", index=0, reason="bored")
    with pytest.raises(EventEncodeError):
        encode_event("track_start", "s1", url="a.wav")  # index is required
