"""Opus passthrough (SPEC.md [P8]) on a real `snowmux serve` process, checked with PyAV."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from snowmux.audio_format import FRAME_SAMPLES, OPUS_SILENCE, split_ogg_pages
from snowmux.node.encoders import OPUS_ENCODER_DELAY
from snowmux.node.ogg_packets import pre_skip_of
from snowmux.node.passthrough import opus_packet_samples
from snowmux.testing import write_tone_file

from .audio_checks import decode_ogg_opus, decode_opus_packets, dominant_frequency, opusinfo
from .node_helpers import NodeProcess, Recorder, call, play

pytestmark = pytest.mark.slow

SECONDS = 2.0
LONG_SECONDS = 4.0


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    write_tone_file(folder / "tone.ogg", 440, SECONDS, 48_000, 2, "libopus", "ogg")
    write_tone_file(folder / "long.ogg", 440, LONG_SECONDS, 48_000, 2, "libopus", "ogg")
    write_tone_file(folder / "tone.webm", 660, SECONDS, 48_000, 2, "libopus", "webm")
    write_tone_file(folder / "tone44.wav", 440, SECONDS, 44_100, 2, "pcm_s16le")
    _write_opus_40ms(folder / "long-packets.ogg", 550, SECONDS)
    return folder


@pytest.fixture(scope="module")
def node(media: Path) -> Iterator[NodeProcess]:
    with NodeProcess(media, "--no-pace", media_root=media) as process:
        yield process


def _write_opus_40ms(path: Path, frequency: float, seconds: float) -> None:
    """A stereo Ogg Opus file with 40 ms packets (libopus frame_duration=40)."""
    t = np.arange(int(seconds * 48_000)) / 48_000
    mono = (0.4 * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    stereo = np.repeat(mono, 2)
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="stereo")
        stream.codec_context.options = {"frame_duration": "40"}
        step = 1920
        for start in range(0, len(mono), step):
            chunk = stereo[2 * start : 2 * (start + step)]
            frame = av.AudioFrame(format="s16", layout="stereo", samples=len(chunk) // 2)
            frame.planes[0].update(chunk.tobytes().ljust(frame.planes[0].buffer_size, b"\0"))
            frame.sample_rate = 48_000
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def source_packets(path: Path) -> list[bytes]:
    """The source's Opus packets, demuxed independently with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


async def played(
    node: NodeProcess, session_id: str, url: str, **fields: object
) -> tuple[list[bytes], dict[str, object]]:
    async with Recorder(node.socket_path) as rx:
        await play(node.url, session_id, url, **fields)
        await rx.wait_event(session_id, "ready")
        _, status = await call(node.url, "GET", f"/session/{session_id}/status")
        await rx.wait_event(session_id, "finished")
    return [bytes(f.payload) for f in rx.frames(session_id)], status


@pytest.mark.spec("P8")
@pytest.mark.parametrize("name", ["tone.ogg", "tone.webm"])
async def test_opus_packets_pass_through_byte_identical(
    node: NodeProcess, media: Path, name: str
) -> None:
    payloads, status = await played(node, f"pt-{name}", name, format="opus-packets")
    assert status["passthrough"] is True
    assert payloads[-5:] == [OPUS_SILENCE] * 5
    assert payloads[:-5] == source_packets(media / name)


@pytest.mark.spec("P8", "P4")
async def test_ogg_formats_remux_the_source_packets_one_page_each(
    node: NodeProcess, media: Path, tmp_path: Path
) -> None:
    payloads, status = await played(node, "pt-ogg", "tone.webm", format="web")
    assert status["passthrough"] is True
    pages = [split_ogg_pages(bytearray(p)) for p in payloads]
    assert all(len(p) == 1 for p in pages)  # each payload is exactly one page
    assert payloads[0].startswith(b"OggS") and b"OpusHead" in payloads[0]
    assert b"OpusTags" in payloads[1]
    blob = b"".join(payloads)
    with av.open(io.BytesIO(blob), format="ogg") as container:
        stream = container.streams.audio[0]
        assert [bytes(p) for p in container.demux(stream) if p.size] == source_packets(
            media / "tone.webm"
        )
    path = tmp_path / "out.opus"
    path.write_bytes(blob)
    report = opusinfo(path)
    assert "Packet duration:   20.0ms (max),   20.0ms (avg),   20.0ms (min)" in report
    assert "WARNING" not in report and "ERROR" not in report  # checksums, sequence, granules


@pytest.mark.spec("P8")
async def test_start_at_inside_a_packet_becomes_ogg_pre_skip(node: NodeProcess) -> None:
    start_at = 0.7531
    payloads, status = await played(node, "pt-seek", "tone.ogg", format="opus", start_at=start_at)
    assert status["passthrough"] is True
    with av.open(io.BytesIO(b"".join(payloads)), format="ogg") as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    with av.open(str(node.media_root / "tone.ogg")) as container:
        total = sum(frame.samples for frame in container.decode(audio=0))
    # The Ogg source is sample-exact: what plays starts exactly at start_at.
    assert decoded == total - round(start_at * 48_000)


@pytest.mark.spec("P8")
@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("long-packets.ogg", {"format": "opus-packets"}),  # 40 ms packets
        ("tone44.wav", {"format": "opus-packets"}),  # 44.1 kHz PCM
        ("tone.ogg", {"format": "opus-packets", "volume": 0.5}),
        ("tone.ogg", {"format": "opus", "bitrate": 64000}),
        ("tone.ogg", {"format": "opus-packets", "end_at": 1.5}),
        ("tone.ogg", {"format": "opus-packets", "filters": {"volume": 0.8}}),
        ("tone.ogg", {"format": "pcm"}),
    ],
)
async def test_other_sources_and_requests_still_transcode(
    node: NodeProcess, media: Path, name: str, fields: dict[str, object]
) -> None:
    session_id = f"tx-{abs(hash((name, repr(fields)))) % 10**12}"
    payloads, status = await played(node, session_id, name, **fields)
    assert status["passthrough"] is False
    if fields["format"] == "opus-packets":
        audio = [p for p in payloads if p != OPUS_SILENCE]
        assert {opus_packet_samples(p) for p in audio} == {FRAME_SAMPLES}
        assert audio != source_packets(media / name)[: len(audio)]
        samples, _ = decode_opus_packets(audio)
        expected = 550 if name.startswith("long") else 440
        assert dominant_frequency(samples) == pytest.approx(expected, abs=3)


async def test_health_counts_passthrough_playbacks(media: Path, tmp_path: Path) -> None:
    with NodeProcess(tmp_path, media_root=media) as paced:
        async with Recorder(paced.socket_path) as rx:
            await play(paced.url, "h-pt", "tone.ogg", format="opus-packets")
            await play(paced.url, "h-tx", "tone44.wav", format="opus-packets")
            await rx.wait_event("h-pt", "ready")
            await rx.wait_event("h-tx", "ready")
            _, health = await call(paced.url, "GET", "/health")
            await call(paced.url, "POST", "/session/h-pt/stop")
            await call(paced.url, "POST", "/session/h-tx/stop")
    assert health["sessions"]["active"] == 2
    assert health["sessions"]["passthrough"] == 1


def test_the_takeover_lead_matches_libopus() -> None:
    """A transcoder taking over from a passthrough relies on libopus's lookahead."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48_000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.open()
    assert pre_skip_of(bytes(codec.extradata)) == OPUS_ENCODER_DELAY  # its OpusHead's pre-skip


def frame_levels(samples: np.ndarray, frames: int) -> list[float]:
    """The RMS level of each 20 ms frame of decoded mono samples."""
    return [float(np.sqrt(np.mean(samples[n * 960 : (n + 1) * 960] ** 2))) for n in range(frames)]


async def _patched_midway(
    media: Path,
    tmp_path: Path,
    session_id: str,
    audio_format: str,
    patch: dict[str, object],
    then: dict[str, object] | None = None,
) -> tuple[list[bytes], dict[str, object], dict[str, object]]:
    """Play long.ogg paced, PATCH it after about a second (and ``then`` a second
    later); the payloads and the statuses before and after the first PATCH."""
    with NodeProcess(tmp_path, media_root=media) as paced:
        async with Recorder(paced.socket_path) as rx:
            await play(paced.url, session_id, "long.ogg", format=audio_format)
            await rx.wait_event(session_id, "ready")
            _, before = await call(paced.url, "GET", f"/session/{session_id}/status")
            await rx.wait_for(lambda: len(rx.frames(session_id)) >= 50 + 25)
            status, after = await call(paced.url, "PATCH", f"/session/{session_id}", patch)
            assert status == 200, after
            if then is not None:
                await rx.wait_for(lambda: len(rx.frames(session_id)) >= 50 + 75)
                status, again = await call(paced.url, "PATCH", f"/session/{session_id}", then)
                assert status == 200, again
            await rx.wait_event(session_id, "finished", timeout=30)
    return [bytes(f.payload) for f in rx.frames(session_id)], before, after


@pytest.mark.spec("P8", "K3")
async def test_a_volume_patch_switches_opus_packets_to_transcoding_without_a_gap(
    media: Path, tmp_path: Path
) -> None:
    payloads, before, after = await _patched_midway(
        media, tmp_path, "pt-switch", "opus-packets", {"volume": 0.5}
    )
    assert before["passthrough"] is True and after["passthrough"] is False
    audio = payloads[:-5]
    source = source_packets(media / "long.ogg")
    forwarded = 0
    while audio[forwarded] == source[forwarded]:
        forwarded += 1
    assert 50 <= forwarded < 150  # the PATCH came after >= 1 s; 600 ms rule [K3] (+ slack)
    assert audio[forwarded:] != source[forwarded : len(audio)]
    # Nothing lost, nothing repeated: as many 20 ms packets as the source (+- one).
    assert abs(len(audio) - len(source)) <= 1
    samples, counts = decode_opus_packets(audio)
    assert set(counts) == {FRAME_SAMPLES}
    level = frame_levels(samples, len(counts) - 1)
    full = np.median(level[5:forwarded])
    half = np.median(level[forwarded + 3 : -3])
    assert half == pytest.approx(full / 2, rel=0.1)  # -6 dB after the switch
    around = level[forwarded - 3 : forwarded + 3]
    assert min(around) > full / 2 * 0.7  # no dropout at the takeover (the ramp ends at half)
    assert dominant_frequency(samples[(forwarded + 5) * 960 :]) == pytest.approx(440, abs=3)


@pytest.mark.spec("P8", "K1")
async def test_a_seek_switches_web_to_transcoding_in_one_ogg_stream(
    media: Path, tmp_path: Path
) -> None:
    payloads, before, after = await _patched_midway(
        media, tmp_path, "pt-switch-ogg", "web", {"position": 0.5}
    )
    assert before["passthrough"] is True and after["passthrough"] is False
    blob = b"".join(payloads)
    path = tmp_path / "switched.opus"
    path.write_bytes(blob)
    report = opusinfo(path)
    assert "WARNING" not in report and "ERROR" not in report
    assert report.count("Opus stream") == 1  # one logical stream across the switch
    decoded = decode_ogg_opus(blob)
    # played >= 1 s, then from 0.5 s to the end: longer than the source by the replayed part
    assert len(decoded) / 48_000 == pytest.approx(LONG_SECONDS + 0.5 + 1.0, abs=0.7)
    assert dominant_frequency(decoded[-48_000:]) == pytest.approx(440, abs=3)


@pytest.mark.spec("P8", "K3")
async def test_a_second_patch_after_the_switch_loses_nothing(media: Path, tmp_path: Path) -> None:
    payloads, _, after = await _patched_midway(
        media, tmp_path, "pt-twice", "opus-packets", {"volume": 0.5}, then={"volume": 0.25}
    )
    assert after["passthrough"] is False
    audio = payloads[:-5]
    source = source_packets(media / "long.ogg")
    assert abs(len(audio) - len(source)) <= 1  # the transcoded audio is never dropped
    samples, counts = decode_opus_packets(audio)
    level = frame_levels(samples, len(counts) - 1)
    full = np.median(level[5:45])
    assert np.median(level[-30:-3]) == pytest.approx(full / 4, rel=0.1)  # the second PATCH
    # ... reached the receiver within [K3]'s 600 ms of its answer (plus slack)
    quarter = [n for n, value in enumerate(level) if value < full * 0.3]
    assert quarter and quarter[0] <= 50 + 75 + 25 + 30 + 5
