"""End to end: real `snowmux serve` and `snowmux route` processes, checked from the files."""

from __future__ import annotations

import asyncio
import signal
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from snowmux.protocol import encode_event, encode_frame

from .audio_checks import decode_ogg_opus, dominant_frequency, ffprobe
from .node_helpers import NodeProcess, RouteProcess, call, play

pytestmark = pytest.mark.slow


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (48000, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2).mean(axis=1)


def file_samples(path: Path) -> np.ndarray:
    return wav_samples(path) if path.suffix == ".wav" else decode_ogg_opus(path.read_bytes())


def window_frequencies(samples: np.ndarray, seconds: float = 0.5) -> list[float]:
    size = int(48000 * seconds)
    return [
        dominant_frequency(samples[i : i + size]) for i in range(0, len(samples) - size + 1, size)
    ]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, RouteProcess]]:
    workdir = tmp_path_factory.mktemp("e2e")
    with NodeProcess(workdir) as node, RouteProcess(workdir, node.socket_path) as route:
        yield node, route


async def test_two_sessions_concurrently_never_cross(
    pair: tuple[NodeProcess, RouteProcess],
) -> None:
    node, route = pair
    await route.wait_log("connected to")
    await play(node.url, "100000000000000001", "tone:440?seconds=3", format="pcm")
    await play(node.url, "100000000000000002", "tone:1000?seconds=3", format="opus")
    await route.wait_log("session 100000000000000001 finished")
    await route.wait_log("session 100000000000000002 finished")
    for session_id, frequency in (("100000000000000001", 440), ("100000000000000002", 1000)):
        (path,) = route.files(session_id)
        samples = file_samples(path)
        assert len(samples) / 48000 == pytest.approx(3.0, abs=0.05)
        windows = window_frequencies(samples)
        assert len(windows) >= 5
        assert all(abs(f - frequency) < 5 for f in windows), (session_id, windows)


async def test_stopping_one_leaves_the_other_without_a_gap(
    pair: tuple[NodeProcess, RouteProcess],
) -> None:
    node, route = pair
    await route.wait_log("connected to")
    await play(node.url, "keeps-going", "tone:500?seconds=3.5", format="opus")
    await play(node.url, "gets-stopped", "tone:700?seconds=3.5", format="pcm")
    await asyncio.sleep(1.5)
    await call(node.url, "POST", "/session/gets-stopped/stop")
    await route.wait_log("session gets-stopped finished reason=stopped")
    await route.wait_log("session keeps-going finished reason=finished")
    line = next(line for line in route.log().splitlines() if "session keeps-going finished" in line)
    assert "stutters=0" in line  # no gap above 100 ms between frames
    (stopped,) = route.files("gets-stopped")
    assert 0.9 < len(wav_samples(stopped)) / 48000 < 2.6
    (kept,) = route.files("keeps-going")
    assert float(ffprobe(kept)["format"]["duration"]) == pytest.approx(3.5, abs=0.05)


async def test_replaying_an_id_ends_the_old_file_and_starts_a_new_one(
    pair: tuple[NodeProcess, RouteProcess],
) -> None:
    node, route = pair
    await route.wait_log("connected to")
    await play(node.url, "replayed", "tone:440?seconds=5", format="pcm")
    await asyncio.sleep(1.0)
    await play(node.url, "replayed", "tone:1200?seconds=1", format="opus")
    await route.wait_log("session replayed finished reason=replaced")
    await route.wait_log("session replayed finished reason=finished")
    old, new = route.files("replayed")
    assert (old.name, new.name) == ("001-pcm.wav", "002-opus.opus")
    assert all(abs(f - 440) < 5 for f in window_frequencies(file_samples(old)))
    assert all(abs(f - 1200) < 5 for f in window_frequencies(file_samples(new)))


async def test_node_restart_mid_stream_then_the_receiver_routes_new_playbacks(
    tmp_path: Path,
) -> None:
    node = NodeProcess(tmp_path).start()
    with RouteProcess(tmp_path, node.socket_path) as route:
        await route.wait_log("connected to")
        await play(node.url, "before", "tone:440?seconds=20", format="pcm")
        await asyncio.sleep(1.0)
        node.stop(signal.SIGKILL)  # a crash: the stream stops wherever it is
        await route.wait_log("disconnected from")
        await route.wait_log("session before interrupted")
        node = NodeProcess(tmp_path).start()  # same socket path: the stale file is replaced
        try:
            await route.wait_log("connected to", count=2)
            await play(node.url, "after", "tone:880?seconds=1", format="pcm")
            await route.wait_log("session after finished")
        finally:
            node.stop()
        (interrupted,) = route.files("before")
        samples = wav_samples(interrupted)  # header sizes were fixed up on interruption
        assert len(samples) > 48000 and all(abs(f - 440) < 5 for f in window_frequencies(samples))
        (after,) = route.files("after")
        assert all(abs(f - 880) < 5 for f in window_frequencies(file_samples(after)))


@pytest.mark.parametrize(
    "bad",
    [(23).to_bytes(4, "big"), b"G", (0x00FFFFFF).to_bytes(4, "big")],
    ids=["length-below-24", "garbage-byte", "over-long-length"],
)
async def test_a_fake_node_sending_bad_bytes_gets_logged_and_reconnected(
    tmp_path: Path, bad: bytes
) -> None:
    connections: list[int] = []
    good = (
        encode_event("hello", "", protocol="snowmux/1", max_frame_length=1 << 20)
        + encode_event("ready", "fake", format="pcm")
        + encode_frame("fake", bytes(3840))
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.write(good + bad)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    socket_path = tmp_path / "fake.sock"
    server = await asyncio.start_unix_server(handle, str(socket_path))
    try:
        with RouteProcess(tmp_path, socket_path) as route:
            await route.wait_log("closing and reconnecting", count=2)
            assert len(connections) >= 2
            assert route.process is not None and route.process.poll() is None  # no crash
            log = route.log()
            assert "Traceback" not in log
    finally:
        server.close()


async def test_200_sessions_at_once_route_every_frame_to_the_right_file(tmp_path: Path) -> None:
    sessions = {f"{300000000000000000 + n}": 300 + 15 * n for n in range(200)}
    with (
        NodeProcess(tmp_path, "--no-pace") as node,
        RouteProcess(tmp_path, node.socket_path) as route,
    ):
        await route.wait_log("connected to")
        await asyncio.gather(
            *(
                play(node.url, sid, f"tone:{hz}?seconds=1", format="pcm")
                for sid, hz in sessions.items()
            )
        )
        await route.wait_log("finished reason=finished", count=200, timeout=120)
        _, health = await call(node.url, "GET", "/health")
        assert health["totals"]["frames_dropped"] == 0
    for session_id, frequency in sessions.items():
        (path,) = route.files(session_id)
        samples = wav_samples(path)
        assert len(samples) == 48000
        assert dominant_frequency(samples) == pytest.approx(frequency, abs=1.5), session_id
