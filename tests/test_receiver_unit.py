"""Receiver pieces in-process: router, sinks, stats, the connection loop with a fake node."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from snowmux.node.encoders import encode_payloads
from snowmux.node.pipeline import cut_frames
from snowmux.node.tone import parse_tone_url, tone_pcm
from snowmux.protocol import AudioFrame, Event, encode_event, encode_frame
from snowmux.receiver import (
    CompositeSink,
    Endpoint,
    FileSink,
    FrameQueue,
    IncompatibleNodeError,
    NullSink,
    Receiver,
    Router,
)
from snowmux.receiver.files import safe_dirname

from .audio_checks import decode_ogg_opus, dominant_frequency, ffprobe


class Recording:
    def __init__(self) -> None:
        self.frames: list[AudioFrame] = []
        self.events: list[Event] = []
        self.interruptions: list[str] = []
        self.closed = False

    def on_frame(self, frame: AudioFrame) -> None:
        self.frames.append(frame)

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_interrupted(self, reason: str) -> None:
        self.interruptions.append(reason)

    def close(self) -> None:
        self.closed = True


class Broken(Recording):
    def on_frame(self, frame: AudioFrame) -> None:
        raise OSError("disk full")


def ready(session_id: str, audio_format: str | None = "pcm") -> Event:
    fields = {"format": audio_format} if audio_format else {}
    return Event.create("ready", session_id, **fields)


def test_router_routes_each_session_to_its_sink_only() -> None:
    router = Router()
    sinks = {f"s{i}": Recording() for i in range(1000)}
    for session_id, sink in sinks.items():
        router.register(session_id, sink)
    batch = [AudioFrame(f"s{i % 1000}", bytes([i % 256])) for i in range(5000)]
    router.route(batch)
    for i, (session_id, sink) in enumerate(sinks.items()):
        assert [f.payload for f in sink.frames] == [bytes([(i + 1000 * k) % 256]) for k in range(5)]
        assert all(f.session_id == session_id for f in sink.frames)


def test_unknown_sessions_are_dropped_and_counted_unless_a_factory_exists(tmp_path: Path) -> None:
    router = Router()
    router.route([AudioFrame("ghost", b"x"), ready("ghost")])
    assert (router.dropped_frames, router.dropped_events) == (1, 1)
    created: list[str] = []

    def factory(session_id: str) -> Recording:
        created.append(session_id)
        return Recording()

    auto = Router(factory)
    auto.route([AudioFrame("new", b"x"), AudioFrame("new", b"y")])
    assert created == ["new"] and auto.dropped_frames == 0
    sink = auto.sink("new")
    assert isinstance(sink, Recording) and len(sink.frames) == 2


def test_register_unregister_and_validation() -> None:
    router = Router()
    sink = Recording()
    router.register("a", sink)
    router.route([AudioFrame("a", b"1")])
    assert router.unregister("a") is sink
    router.route([AudioFrame("a", b"2")])
    assert len(sink.frames) == 1 and router.dropped_frames == 1
    with pytest.raises(ValueError):
        router.register("bad id", sink)


def test_a_failing_sink_never_stops_routing_to_others() -> None:
    router = Router()
    good, broken, also_good = Recording(), Broken(), Recording()
    router.register("good", good)
    router.register("broken", broken)
    router.register("both", CompositeSink([Broken(), also_good]))
    router.route([AudioFrame(s, b"x") for s in ("broken", "good", "both", "broken", "good")])
    assert len(good.frames) == 2 and len(also_good.frames) == 1
    assert router.sink_errors == 2


def test_stats_count_frames_bytes_gaps_and_interruptions() -> None:
    router = Router()
    router.register("s", NullSink())
    router.route([ready("s")], now=0.0)
    for k, now in enumerate([0.0, 0.02, 0.04, 0.20, 0.22]):  # one 160 ms gap
        router.route([AudioFrame("s", bytes(100 + k))], now=now)
    stats = router.session_stats("s")
    assert stats is not None
    assert (stats.frames, stats.bytes, stats.stutters, stats.state) == (5, 510, 1, "playing")
    assert stats.max_gap_ms == pytest.approx(160)
    router.interrupt_all("node went away")
    assert stats.interruptions == 1 and stats.state == "interrupted"
    router.route([ready("s"), Event.create("finished", "s", reason="stopped")], now=1.0)
    assert stats.state == "stopped" and stats.playbacks == 2


def test_frame_queue_is_bounded_and_drops_the_oldest() -> None:
    queue = FrameQueue(3)
    for i in range(5):
        queue.on_frame(AudioFrame("q", bytes([i])))
    queue.close()

    async def drain() -> list[bytes]:
        return [bytes(f.payload) async for f in queue]

    assert asyncio.run(drain()) == [b"\x02", b"\x03", b"\x04"]
    assert queue.dropped == 2


def test_session_ids_become_safe_directory_names() -> None:
    assert safe_dirname("123456789012345678") == "123456789012345678"
    assert safe_dirname("..") == "%2E%2E"
    assert safe_dirname("a/b") == "a%2Fb"


def pcm_frames(frequency: int, seconds: float) -> list[bytes]:
    return list(cut_frames(tone_pcm(parse_tone_url(f"tone:{frequency}?seconds={seconds}"), 0)))


@pytest.mark.spec("P4")
def test_file_sink_writes_one_valid_file_per_playback(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, "guild/1")
    sink.on_event(ready("guild/1", "pcm"))
    for payload in pcm_frames(440, 0.5):
        sink.on_frame(AudioFrame("guild/1", payload))
    sink.on_event(Event.create("finished", "guild/1", reason="replaced"))
    sink.on_event(ready("guild/1", "opus"))
    for payload in encode_payloads("opus", iter(pcm_frames(880, 0.5)), None):
        sink.on_frame(AudioFrame("guild/1", payload.data))
    sink.on_event(ready("guild/1", "opus-packets"))
    for payload in encode_payloads("opus-packets", iter(pcm_frames(660, 0.5)), None):
        sink.on_frame(AudioFrame("guild/1", payload.data))
    sink.on_interrupted("gone")
    names = [p.name for p in sink.files]
    assert names == ["001-pcm.wav", "002-opus.opus", "003-opus-packets.opus"]
    assert all(p.parent == tmp_path / "guild%2F1" for p in sink.files)
    with wave.open(str(sink.files[0])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (48000, 2, 2)
        assert wav.getnframes() == 24_000
        assert dominant_frequency(wav.readframes(24_000)) == pytest.approx(440, abs=3)
    assert dominant_frequency(decode_ogg_opus(sink.files[1].read_bytes())) == pytest.approx(
        880, abs=3
    )
    info = ffprobe(sink.files[2])
    assert info["streams"][0]["codec_name"] == "opus"
    assert float(info["format"]["duration"]) == pytest.approx(0.5, abs=0.05)
    assert dominant_frequency(decode_ogg_opus(sink.files[2].read_bytes())) == pytest.approx(
        660, abs=3
    )


def test_file_sink_recognises_legacy_payloads_without_a_format(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, "legacy")
    sink.on_event(ready("legacy", None))
    for payload in encode_payloads("opus", iter(pcm_frames(440, 0.2)), None):
        sink.on_frame(AudioFrame("legacy", payload.data))
    sink.on_event(Event.create("finished", "legacy"))
    for payload in pcm_frames(440, 0.2):  # frames with no ready at all
        sink.on_frame(AudioFrame("legacy", payload))
    sink.close()
    assert [p.name for p in sink.files] == ["001-opus.opus", "002-pcm.wav"]
    assert ffprobe(sink.files[0])["streams"][0]["codec_name"] == "opus"
    with wave.open(str(sink.files[1])) as wav:
        assert wav.getnframes() == 9600


# -- the connection loop against a fake node ---------------------------------


@contextlib.asynccontextmanager
async def fake_node(path: Path, scripts: list[bytes]) -> AsyncIterator[list[int]]:
    """Serve each connection one scripted byte string, then close it."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(served)
        served.append(index)
        writer.write(scripts[min(index, len(scripts) - 1)])
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(handle, str(path))
    try:
        yield served
    finally:
        server.close()


HELLO = encode_event("hello", "", protocol="snowmux/1", max_frame_length=1 << 20)


async def run_until(receiver: Receiver, condition: Callable[[], bool], timeout: float = 10) -> None:
    task = asyncio.create_task(receiver.run())
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    finally:
        receiver.stop()
        await task


@pytest.mark.parametrize(
    "bad",
    [
        (23).to_bytes(4, "big"),
        b"\xff",
        (0x00FFFFFF).to_bytes(4, "big"),
        b"\x00\x00\x00\x19" + b" " * 25,
    ],
    ids=["length-below-24", "garbage", "over-long", "empty-id"],
)
async def test_bad_bytes_are_logged_and_the_receiver_reconnects(
    tmp_path: Path, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    good = HELLO + encode_event("ready", "s", format="pcm") + encode_frame("s", b"before")
    sink = Recording()
    router = Router()
    router.register("s", sink)
    async with fake_node(tmp_path / "n.sock", [good + bad, good]) as served:
        receiver = Receiver(Endpoint(unix_path=tmp_path / "n.sock"), router, backoff_initial=0.01)
        await run_until(receiver, lambda: len(served) >= 2 and len(sink.frames) >= 2)
    assert receiver.protocol_errors >= 1
    assert [bytes(f.payload) for f in sink.frames[:2]] == [b"before", b"before"]
    assert sink.interruptions  # the playback was interrupted by the fault
    assert "protocol error" in caplog.text


@pytest.mark.spec("O3")
async def test_an_unknown_protocol_version_is_refused_clearly(tmp_path: Path) -> None:
    hello = encode_event("hello", "", protocol="snowmux/2")
    async with fake_node(tmp_path / "n.sock", [hello + encode_frame("s", b"x")]):
        receiver = Receiver(Endpoint(unix_path=tmp_path / "n.sock"), Router())
        with pytest.raises(IncompatibleNodeError, match="snowmux/2"):
            await asyncio.wait_for(receiver.run(), 10)


@pytest.mark.spec("O3")
async def test_a_legacy_node_without_hello_is_accepted(tmp_path: Path) -> None:
    sink = Recording()
    router = Router()
    router.register("g", sink)
    legacy = encode_event("ready", "g") + encode_frame("g", b"pcm!")
    async with fake_node(tmp_path / "n.sock", [legacy]):
        receiver = Receiver(Endpoint(unix_path=tmp_path / "n.sock"), router)
        await run_until(receiver, lambda: bool(sink.frames))
    assert receiver.node_protocol == "legacy"


async def test_frames_iterator_yields_one_sessions_frames(tmp_path: Path) -> None:
    stream = HELLO + b"".join(encode_frame(s, bytes([i])) for i in range(6) for s in ("a", "b"))
    async with fake_node(tmp_path / "n.sock", [stream]):
        receiver = Receiver(Endpoint(unix_path=tmp_path / "n.sock"), Router())
        got: list[bytes] = []

        async def consume() -> None:
            async for frame in receiver.frames("b"):
                assert frame.session_id == "b"
                got.append(bytes(frame.payload))
                if len(got) == 6:
                    return

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await run_until(receiver, consumer.done)
    assert got == [bytes([i]) for i in range(6)]


async def test_backoff_is_capped_and_jittered(tmp_path: Path) -> None:
    receiver = Receiver(
        Endpoint(unix_path=tmp_path / "nobody.sock"),
        Router(),
        backoff_initial=0.01,
        backoff_cap=0.05,
    )
    task = asyncio.create_task(receiver.run())
    await asyncio.sleep(0.6)
    receiver.stop()
    await asyncio.wait_for(task, 2)
    assert receiver.last_error and "cannot connect" in receiver.last_error


def test_the_live_table_shows_each_sessions_state() -> None:
    from snowmux.receiver.route import render_table

    router = Router()
    router.register("123456789012345678", NullSink())
    router.route(
        [ready("123456789012345678", "opus"), AudioFrame("123456789012345678", b"x" * 300)]
    )
    receiver = Receiver(Endpoint(unix_path=Path("/nonexistent.sock")), router)
    table = render_table(router.stats(), receiver).splitlines()
    assert "disconnected" in table[0]
    assert table[1].split()[:4] == ["session", "state", "format", "frames"]
    assert table[2].split()[:4] == ["123456789012345678", "playing", "opus", "1"]
    assert table[2].endswith("ready")
