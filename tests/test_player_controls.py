"""PATCH /session/{id} on a real `snowmux serve`: seek, volume, filters, end_at, stuck.

Every check decodes what a real receiver got and measures it with numpy.
"""

from __future__ import annotations

import asyncio
import struct
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from snowmux.audio_format import FRAME_BYTES, FRAME_SAMPLES
from snowmux.protocol import AudioFrame, Event, EventEncodeError, encode_event

from .audio_checks import decode_ogg_opus, decode_opus_packets, dominant_frequency
from .node_helpers import NodeProcess, Recorder, call, free_port, play, snowmux

pytestmark = pytest.mark.slow

RATE = 48_000


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("controls")) as process:
        write_index_wav(process.media_root / "index.wav", 30.0)
        yield process


@pytest.fixture(scope="module")
def fast_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("controls-fast"), "--no-pace") as process:
        yield process


def write_index_wav(path: Path, seconds: float) -> None:
    """48 kHz stereo s16 whose sample n spells n: left n % 32768, right n // 32768."""
    n = np.arange(round(seconds * RATE), dtype=np.int64)
    stereo = np.stack([n % 32768, n // 32768], axis=1).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(stereo.tobytes())


def indices(pcm: bytes) -> np.ndarray:
    stereo = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2).astype(np.int64)
    return stereo[:, 0] + stereo[:, 1] * 32768


def mono(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").reshape(-1, 2).astype(float).mean(axis=1)


def rms_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(samples**2)) + 1e-9))


async def patch(node_url: str, session_id: str, **fields: object) -> tuple[int, dict[str, object]]:
    status, body = await call(node_url, "PATCH", f"/session/{session_id}", fields)
    return status, body


def split_at_event(rx: Recorder, session_id: str, event_type: str) -> tuple[bytes, bytes]:
    """The session's frame payloads before and after its first ``event_type`` event."""
    before, after, seen = [], [], False
    for message in rx.playback_messages(session_id):
        if isinstance(message, Event) and message.type == event_type:
            seen = True
        elif isinstance(message, AudioFrame):
            (after if seen else before).append(bytes(message.payload))
    assert seen, f"no {event_type} event"
    return b"".join(before), b"".join(after)


@pytest.mark.spec("K1", "K2")
async def test_seek_continues_at_exactly_the_right_sample(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "seek-exact", "index.wav", format="pcm")
        await rx.wait_for(lambda: len(rx.frames("seek-exact")) >= 30)
        status, body = await patch(node.url, "seek-exact", position=12.345678)
        assert status == 200 and body["state"] == "playing", body
        await rx.wait_event("seek-exact", "seeked")
        await rx.wait_for(lambda: len(split_at_event(rx, "seek-exact", "seeked")[1]) >= 20 * 3840)
        await call(node.url, "POST", "/session/seek-exact/stop")
        await rx.wait_event("seek-exact", "finished")
    seeked = rx.events("seek-exact", "seeked")
    assert len(seeked) == 1 and seeked[0].data["position_secs"] == pytest.approx(12.345678)
    assert len(rx.events("seek-exact", "ready")) == 1  # no new ready
    assert [e.data["reason"] for e in rx.events("seek-exact", "finished")] == ["stopped"]
    before, after = split_at_event(rx, "seek-exact", "seeked")
    assert len(before) % FRAME_BYTES == 0 and len(after) % FRAME_BYTES == 0
    old, new = indices(before), indices(after)
    assert np.array_equal(old, np.arange(len(old)))  # nothing lost before the switch
    first = round(12.345678 * RATE)
    assert np.array_equal(new, np.arange(first, first + len(new)))  # exact sample, no gap


@pytest.mark.spec("K1")
@pytest.mark.parametrize("audio_format", ["opus", "web", "opus-packets"])
async def test_opus_formats_decode_cleanly_across_a_seek(
    node: NodeProcess, audio_format: str
) -> None:
    sid = f"seek-{audio_format}"
    async with Recorder(node.socket_path) as rx:
        await play(node.url, sid, "tone:440?seconds=3", format=audio_format)
        await rx.wait_for(lambda: len(rx.frames(sid)) >= 20)
        status, _ = await patch(node.url, sid, position=2.0)
        assert status == 200
        await rx.wait_event(sid, "finished", timeout=20)
    payloads = [bytes(f.payload) for f in rx.frames(sid)]
    assert len(rx.events(sid, "seeked")) == 1 and len(rx.events(sid, "ready")) == 1
    if audio_format == "opus-packets":
        samples, counts = decode_opus_packets(payloads)
        assert set(counts) == {FRAME_SAMPLES}
    else:
        # one logical stream: one BOS page, one serial number, two header pages
        assert sum(p[5] & 0x02 != 0 for p in payloads) == 1
        assert len({struct.unpack_from("<I", p, 14)[0] for p in payloads}) == 1
        sequence = [struct.unpack_from("<I", p, 18)[0] for p in payloads]
        assert sequence == list(range(len(payloads)))
        samples = decode_ogg_opus(b"".join(payloads))
    # ~0.4-1.0 s before the seek, then the last second: well short of 3 s
    assert 1.2 < len(samples) / RATE < 2.3
    assert dominant_frequency(samples) == pytest.approx(440, abs=3)


@pytest.mark.spec("K1", "K3")
async def test_volume_half_is_minus_6_db_within_the_latency_bound(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "vol", "tone:440?seconds=6", format="pcm")
        await rx.wait_for(lambda: len(rx.frames("vol")) >= 50)  # prebuffer burst + a bit
        status, body = await patch(node.url, "vol", volume=0.5)
        answered = time.monotonic()
        assert status == 200 and body["volume"] == 0.5
        await rx.wait_for(lambda: len(rx.frames("vol")) >= 150)
        await call(node.url, "POST", "/session/vol/stop")
    frames = [bytes(f.payload) for f in rx.frames("vol")]
    times = rx.frame_times("vol")
    levels = [rms_db(mono(f)) for f in frames]
    full = levels[5]
    changed = next(i for i, level in enumerate(levels) if level < full - 1.0)
    latency = times[changed] - answered
    print(f"PATCH volume -> first changed frame at the receiver: {latency * 1000:.0f} ms")
    assert latency < 0.6
    # the ramp frame lies between the levels; every frame after it is exactly -6 dB
    assert full - 6.6 < levels[changed] < full
    for level in levels[changed + 1 : changed + 50]:
        assert level - full == pytest.approx(-6.02, abs=0.5)


@pytest.mark.spec("K4")
async def test_timescale_pitch_2_turns_440_into_880(fast_node: NodeProcess) -> None:
    async with Recorder(fast_node.socket_path) as rx:
        await play(
            fast_node.url, "pitch", "tone:440?seconds=2", filters={"timescale": {"pitch": 2.0}}
        )
        await rx.wait_event("pitch", "finished")
    frames = [bytes(f.payload) for f in rx.frames("pitch")]
    assert {len(f) for f in frames} == {FRAME_BYTES}
    assert len(frames) == pytest.approx(100, abs=2)  # same length
    assert dominant_frequency(b"".join(frames)) == pytest.approx(880, abs=3)


@pytest.mark.spec("K4")
async def test_speed_1_5_plays_12_s_in_8_s_at_the_same_pitch(fast_node: NodeProcess) -> None:
    async with Recorder(fast_node.socket_path) as rx:
        await play(
            fast_node.url,
            "speed",
            "tone:440?seconds=12",
            format="pcm",
            filters={"timescale": {"speed": 1.5}},
        )
        finished = await rx.wait_event("speed", "finished")
    assert finished.data["reason"] == "finished"
    frames = [bytes(f.payload) for f in rx.frames("speed")]
    assert {len(f) for f in frames} == {FRAME_BYTES}  # the 20 ms grid survives timescale
    assert len(frames) * 0.020 == pytest.approx(8.0, abs=0.05)
    assert dominant_frequency(b"".join(frames)) == pytest.approx(440, abs=3)


@pytest.mark.spec("K4")
async def test_low_pass_attenuates_5_khz_and_clearing_restores_it(node: NodeProcess) -> None:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "lowpass", "tone:5000?seconds=30", format="pcm")
        await rx.wait_for(lambda: len(rx.frames("lowpass")) >= 30)
        status, body = await patch(node.url, "lowpass", filters={"lowPass": {"smoothing": 20}})
        assert status == 200 and body["filters"] == {"lowPass": {"smoothing": 20.0}}
        await asyncio.sleep(1.0)
        status, body = await patch(node.url, "lowpass", filters={})
        assert status == 200 and body["filters"] == {}
        cleared = len(rx.frames("lowpass"))
        await rx.wait_for(lambda: len(rx.frames("lowpass")) >= cleared + 50)
        await call(node.url, "POST", "/session/lowpass/stop")
    levels = [rms_db(mono(bytes(f.payload))) for f in rx.frames("lowpass")]
    full = levels[5]
    assert min(levels) <= full - 12  # smoothing 20: a ~390 Hz one-pole lowpass
    assert levels[-5] == pytest.approx(full, abs=0.5)  # {} restores it


@pytest.mark.spec("K4")
async def test_tremolo_4_hz_shows_a_4_hz_envelope(fast_node: NodeProcess) -> None:
    async with Recorder(fast_node.socket_path) as rx:
        await play(
            fast_node.url,
            "tremolo",
            "tone:440?seconds=4",
            filters={"tremolo": {"frequency": 4.0, "depth": 0.8}},
        )
        await rx.wait_event("tremolo", "finished")
    samples = mono(rx.payload("tremolo"))
    envelope = np.sqrt(np.mean(samples[: len(samples) // 240 * 240].reshape(-1, 240) ** 2, axis=1))
    assert dominant_frequency(envelope, rate=RATE // 240) == pytest.approx(4.0, abs=0.3)


@pytest.mark.spec("K1")
async def test_end_at_in_play_and_in_patch(fast_node: NodeProcess, node: NodeProcess) -> None:
    async with Recorder(fast_node.socket_path) as rx:
        await play(fast_node.url, "end-play", "tone:440?seconds=5", format="pcm", end_at=1.01)
        finished = await rx.wait_event("end-play", "finished")
    assert finished.data["reason"] == "finished"
    pcm = rx.payload("end-play")
    assert len(pcm) == 51 * FRAME_BYTES  # 1.01 s = 50.5 frames, the last one padded
    assert not any(pcm[round(1.01 * RATE) * 4 :])
    async with Recorder(node.socket_path) as rx:
        await play(node.url, "end-patch", "index.wav", format="pcm")
        await rx.wait_for(lambda: len(rx.frames("end-patch")) >= 30)
        status, body = await patch(node.url, "end-patch", end_at=2.0)
        assert status == 200 and body["end_at"] == 2.0
        finished = await rx.wait_event("end-patch", "finished")
    assert finished.data["reason"] == "finished"
    assert np.array_equal(indices(rx.payload("end-patch")), np.arange(2 * RATE))


@pytest.mark.spec("K1")
async def test_patch_error_codes_and_nothing_changes_on_a_400(node: NodeProcess) -> None:
    status, body = await patch(node.url, "never-played", volume=1.0)
    assert status == 404 and body["status"] == "error"
    await play(node.url, "errors", "tone:440?seconds=30", format="pcm")
    bad: list[tuple[dict[str, object], str]] = [
        ({"volume": 5.5}, '"volume"'),
        ({"volume": "loud"}, '"volume"'),
        ({"position": -1}, '"position"'),
        ({"paused": "yes"}, '"paused"'),
        ({"end_at": "soon"}, '"end_at"'),
        ({"speed": 2}, '"speed"'),
        ({}, "nothing to change"),
        ({"filters": []}, '"filters"'),
        ({"filters": {"echo": {}}}, '"filters.echo"'),
        ({"filters": {"equalizer": [{"band": 15, "gain": 0.1}]}}, '"filters.equalizer[0].band"'),
        ({"filters": {"equalizer": [{"band": 1, "gain": 1.5}]}}, '"filters.equalizer[0].gain"'),
        ({"filters": {"timescale": {"speed": 0}}}, '"filters.timescale.speed"'),
        ({"filters": {"vibrato": {"frequency": 15}}}, '"filters.vibrato.frequency"'),
        ({"filters": {"tremolo": {"depth": 0}}}, '"filters.tremolo.depth"'),
        ({"filters": {"karaoke": {"level": 2}}}, '"filters.karaoke.level"'),
        ({"filters": {"channelMix": {"leftToLeft": -1}}}, '"filters.channelMix.leftToLeft"'),
        ({"filters": {"volume": 6}}, '"filters.volume"'),
        ({"filters": {"lowPass": {"smoothing": "a"}}}, '"filters.lowPass.smoothing"'),
        ({"filters": {"rotation": {"speed": 1}}}, '"filters.rotation.speed"'),
        ({"volume": 0.2, "position": -5}, '"position"'),  # the valid volume is not applied
    ]
    for fields, named in bad:
        status, body = await patch(node.url, "errors", **fields)
        assert status == 400 and named in str(body["message"]), (fields, body)
    status, body = await call(node.url, "PATCH", "/session/errors", None, data=b"{not json")
    assert status == 400
    status, body = await call(node.url, "GET", "/session/errors/status")
    assert body["volume"] == 1.0 and body["filters"] == {} and body["end_at"] is None
    assert body["state"] == "playing"
    status, body = await patch(node.url, "errors", paused=True, volume=5.0)
    assert status == 200 and body["state"] == "paused" and body["volume"] == 5.0
    status, body = await patch(node.url, "errors", paused=False)
    assert status == 200 and body["state"] == "playing"
    await call(node.url, "POST", "/session/errors/stop")
    status, body = await patch(node.url, "errors", volume=1.0)
    assert status == 409 and body["status"] == "error"
    # play takes the same ranges
    status, body = await call(
        node.url, "POST", "/session/errors/play", {"url": "tone:440", "volume": 5.01}
    )
    assert status == 400 and '"volume"' in body["message"]
    status, body = await call(
        node.url,
        "POST",
        "/session/errors/play",
        {"url": "tone:440", "filters": {"timescale": {"pitch": -1}}},
    )
    assert status == 400 and '"filters.timescale.pitch"' in body["message"]
    status, body = await call(
        node.url, "POST", "/session/errors/play", {"url": "tone:440", "start_at": 3, "end_at": 2}
    )
    assert status == 400 and '"end_at"' in body["message"]


class StallingServer:
    """Serves a WAV over HTTP: ``first`` seconds, nothing for ``stall`` seconds, then the rest."""

    def __init__(self, wav: bytes, first: float, stall: float) -> None:
        self.wav = wav
        self.first = first
        self.stall = stall
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "audio/wav", "Content-Length": str(len(self.wav))}
        )
        await response.prepare(request)
        split = 44 + round(self.first * RATE) * 4
        await response.write(self.wav[:split])
        await asyncio.sleep(self.stall)
        await response.write(self.wav[split:])
        return response

    async def __aenter__(self) -> StallingServer:
        app = web.Application()
        app.router.add_get("/track.wav", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


@pytest.mark.spec("K5")
async def test_a_stalled_source_sends_stuck_then_plays_on(tmp_path: Path) -> None:
    write_index_wav(tmp_path / "stall.wav", 3.0)
    wav = (tmp_path / "stall.wav").read_bytes()
    args = ("--no-pace", "--allow-remote", "--stuck-threshold-ms", "400")
    with NodeProcess(tmp_path, *args) as node:
        async with (
            StallingServer(wav, first=1.0, stall=1.5) as server,
            Recorder(node.socket_path) as rx,
        ):
            url = f"http://127.0.0.1:{server.port}/track.wav"
            await play(node.url, "stall", url, format="pcm")
            stuck = await rx.wait_event("stall", "stuck", timeout=10)
            finished = await rx.wait_event("stall", "finished", timeout=15)
    assert stuck.data["threshold_ms"] == 400
    assert finished.data["reason"] == "finished"
    assert np.array_equal(indices(rx.payload("stall")), np.arange(3 * RATE))  # nothing lost


async def test_cli_seek_volume_filters(node: NodeProcess) -> None:
    await play(node.url, "cli-ctl", "tone:440?seconds=30", format="opus")
    common = ("--node", node.url)
    done = await asyncio.to_thread(snowmux, "seek", "cli-ctl", "3.5", *common)
    assert done.returncode == 0, done.stderr
    done = await asyncio.to_thread(snowmux, "volume", "cli-ctl", "0.25", *common)
    assert done.returncode == 0 and '"volume": 0.25' in done.stdout, done.stdout
    done = await asyncio.to_thread(
        snowmux, "filters", "cli-ctl", '{"timescale": {"speed": 1.25}}', *common
    )
    assert done.returncode == 0 and '"speed": 1.25' in done.stdout, done.stdout
    done = await asyncio.to_thread(snowmux, "volume", "cli-ctl", "9", *common)
    assert done.returncode != 0
    done = await asyncio.to_thread(snowmux, "filters", "cli-ctl", '{"echo": 1}', *common)
    assert done.returncode != 0 and "filters.echo" in done.stderr
    await call(node.url, "POST", "/session/cli-ctl/stop")


@pytest.mark.spec("E6")
def test_seeked_and_stuck_are_known_event_types() -> None:
    assert b'"position_secs":1.5' in encode_event("seeked", "s1", position_secs=1.5)
    assert b'"threshold_ms":400' in encode_event("stuck", "s1", threshold_ms=400)
    with pytest.raises(EventEncodeError):
        encode_event("seeked", "s1", position_secs=-1)
    with pytest.raises(EventEncodeError):
        encode_event("stuck", "s1")


def stereo(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").reshape(-1, 2).astype(float)


async def filtered(node: NodeProcess, session_id: str, url: str, filters: object) -> np.ndarray:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, session_id, url, format="pcm", filters=filters)
        await rx.wait_event(session_id, "finished")
    assert {len(f.payload) for f in rx.frames(session_id)} == {FRAME_BYTES}
    return stereo(rx.payload(session_id))[RATE // 10 : -RATE // 10]  # past filter warm-up


@pytest.mark.spec("K4")
async def test_the_other_lavalink_filters_do_what_they_say(fast_node: NodeProcess) -> None:
    plain = await filtered(fast_node, "f-plain", "tone:100?seconds=1", {})
    full = rms_db(plain[:, 0])
    # volume 0.5 (the filter, on top of the player volume): -6 dB
    out = await filtered(fast_node, "f-vol", "tone:100?seconds=1", {"volume": 0.5})
    assert rms_db(out[:, 0]) - full == pytest.approx(-6.02, abs=0.3)
    # equalizer band 3 (100 Hz) gain 0.25: the band x (1 + 4 x 0.25) = x2, +6 dB
    eq = {"equalizer": [{"band": 3, "gain": 0.25}]}
    out = await filtered(fast_node, "f-eq", "tone:100?seconds=1", eq)
    assert rms_db(out[:, 0]) - full == pytest.approx(6.02, abs=1.0)
    # karaoke: a centred 1 kHz voice far from the 220 Hz kept band disappears
    voice = await filtered(fast_node, "f-voice", "tone:1000?seconds=1", {})
    out = await filtered(fast_node, "f-karaoke", "tone:1000?seconds=1", {"karaoke": {}})
    assert rms_db(out[:, 0]) < rms_db(voice[:, 0]) - 15  # only the kept band leaks back
    # channelMix: everything to the right channel
    mix = {"leftToLeft": 0, "rightToLeft": 0, "leftToRight": 1, "rightToRight": 1}
    out = await filtered(fast_node, "f-mix", "tone:100?seconds=1", {"channelMix": mix})
    assert rms_db(out[:, 0]) < -60 and rms_db(out[:, 1]) == pytest.approx(full + 6.02, abs=0.5)
    # rotation 1 Hz (8D): left and right levels swing in antiphase once a second
    out = await filtered(fast_node, "f-8d", "tone:440?seconds=3", {"rotation": {"rotationHz": 1}})
    blocks = out[: len(out) // 480 * 480].reshape(-1, 480, 2)
    left, right = (
        np.sqrt((blocks[:, :, 0] ** 2).mean(axis=1)),
        np.sqrt((blocks[:, :, 1] ** 2).mean(axis=1)),
    )
    assert np.corrcoef(left, right)[0, 1] < -0.5
    assert dominant_frequency(left, rate=RATE // 480) == pytest.approx(1.0, abs=0.4)
    # distortion (lavadsp's sin x cos x tan, all enabled by default): not the input any more
    out = await filtered(fast_node, "f-dist", "tone:100?seconds=1", {"distortion": {}})
    assert np.abs(out - plain).max() > 1000
