"""The node's audio pipeline and URL policy, in-process with real PyAV."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from snowmux.audio_format import FRAME_BYTES, OPUS_SILENCE, SAMPLE_RATE, split_ogg_pages
from snowmux.node.encoders import encode_payloads
from snowmux.node.media import MediaPolicy, MediaRefused
from snowmux.node.pipeline import DecodedAudio, MediaError, VolumeStage, cut_frames
from snowmux.node.tone import parse_tone_url, tone_pcm
from snowmux.testing import write_tone_file

from .audio_checks import (
    decode_ogg_opus,
    decode_opus_packets,
    dominant_frequency,
    ffprobe,
    opusinfo,
)


def frames_of(policy: MediaPolicy, url: str, start_at: float = 0.0) -> list[bytes]:
    audio = DecodedAudio(policy.resolve(url), start_at)
    audio.open()
    try:
        return list(cut_frames(audio.pcm()))
    finally:
        audio.close()


@pytest.fixture
def policy(tmp_path: Path) -> MediaPolicy:
    return MediaPolicy(tmp_path)


@pytest.mark.parametrize(
    ("name", "codec", "rate", "channels", "container"),
    [
        ("a.wav", "pcm_s16le", 44_100, 1, None),
        ("b.flac", "flac", 22_050, 2, None),
        ("c.mp3", "libmp3lame", 44_100, 2, None),
        ("d.ogg", "libopus", 48_000, 1, "ogg"),
        ("e.m4a", "aac", 32_000, 2, "mp4"),
    ],
)
@pytest.mark.spec("P4")
def test_any_codec_rate_and_layout_becomes_48k_stereo_20ms(
    policy: MediaPolicy,
    tmp_path: Path,
    name: str,
    codec: str,
    rate: int,
    channels: int,
    container: str | None,
) -> None:
    write_tone_file(tmp_path / name, 1000, 1.0, rate, channels, codec, container)
    frames = frames_of(policy, name)
    assert {len(f) for f in frames} == {FRAME_BYTES}
    assert 49 <= len(frames) <= 53  # 1 s, give or take the codec's priming/padding
    assert abs(dominant_frequency(b"".join(frames)) - 1000) < 5


@pytest.mark.spec("P4")
def test_last_frame_is_padded_with_silence(policy: MediaPolicy) -> None:
    frames = frames_of(policy, "tone:440?seconds=0.03")  # 1.5 frames
    assert len(frames) == 2
    assert frames[1][FRAME_BYTES // 2 :] == bytes(FRAME_BYTES // 2)
    assert frames[1][: FRAME_BYTES // 2] != bytes(FRAME_BYTES // 2)


def test_tone_seek_is_exact() -> None:
    spec = parse_tone_url("tone:440?seconds=2")
    whole = b"".join(tone_pcm(spec, 0))
    assert b"".join(tone_pcm(spec, 12_345)) == whole[12_345 * 4 :]


def test_file_seek_is_sample_accurate(policy: MediaPolicy, tmp_path: Path) -> None:
    import av

    clicks = [24_000, 72_000]  # at 0.5 s and 1.5 s in a 48 kHz file
    signal = np.zeros(96_000, dtype="<i2")
    for at in clicks:
        signal[at] = 30_000
    with av.open(str(tmp_path / "click.wav"), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=48_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(signal.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    for start_at in (0.0, 0.25, 1.0, 1.4999):
        pcm = np.frombuffer(b"".join(frames_of(policy, "click.wav", start_at)), "<i2")
        left = pcm[0::2]
        expected = [
            c - round(start_at * SAMPLE_RATE) for c in clicks if c >= start_at * SAMPLE_RATE
        ]
        assert list(np.flatnonzero(np.abs(left) > 10_000)) == expected, start_at


@pytest.mark.spec("P4")
def test_ogg_payloads_are_whole_pages_forming_a_valid_file(tmp_path: Path) -> None:
    frames = list(cut_frames(tone_pcm(parse_tone_url("tone:660?seconds=1"), 0)))
    payloads = list(encode_payloads("opus", iter(frames), None))
    assert [p.is_header for p in payloads[:3]] == [True, True, False]
    assert b"OpusHead" in payloads[0].data and b"OpusTags" in payloads[1].data
    for payload in payloads:
        buffer = bytearray(payload.data)
        assert split_ogg_pages(buffer) == [payload.data] and not buffer  # exactly one page
    path = tmp_path / "x.opus"
    path.write_bytes(b"".join(p.data for p in payloads))
    info = ffprobe(path)
    (stream,) = info["streams"]
    assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("opus", "48000", 2)
    assert abs(float(info["format"]["duration"]) - 1.0) < 0.03
    assert abs(dominant_frequency(decode_ogg_opus(path.read_bytes())) - 660) < 5
    report = opusinfo(path)
    assert "Page duration:     20.0ms (max),   20.0ms (avg),   20.0ms (min)" in report


@pytest.mark.spec("P4")
def test_web_is_opus_at_a_higher_bitrate() -> None:
    frames = list(cut_frames(tone_pcm(parse_tone_url("tone:660?seconds=1"), 0)))
    opus = sum(len(p.data) for p in encode_payloads("opus", iter(frames), None))
    web = sum(len(p.data) for p in encode_payloads("web", iter(frames), None))
    assert web > 1.4 * opus


@pytest.mark.spec("P4")
def test_opus_packets_are_one_20ms_packet_each() -> None:
    frames = list(cut_frames(tone_pcm(parse_tone_url("tone:880?seconds=1"), 0)))
    packets = [p.data for p in encode_payloads("opus-packets", iter(frames), None)]
    samples, counts = decode_opus_packets(packets)
    assert set(counts) == {960}
    assert len(packets) in (50, 51)  # 50 frames (+1 flushing the encoder's look-ahead)
    assert abs(dominant_frequency(samples) - 880) < 5
    assert decode_opus_packets([OPUS_SILENCE])[1] == [960]


def test_volume_scales_samples() -> None:
    frames = list(cut_frames(tone_pcm(parse_tone_url("tone:440?seconds=0.1"), 0)))
    quiet = list(VolumeStage(0.5).apply(iter(frames)))
    loud = np.abs(np.frombuffer(b"".join(frames), "<i2")).max()
    half = np.abs(np.frombuffer(b"".join(quiet), "<i2")).max()
    assert abs(half / loud - 0.5) < 0.01


def test_media_errors_are_explicit(policy: MediaPolicy, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        DecodedAudio(policy.resolve("missing.mp3")).open()
    (tmp_path / "noise.mp3").write_bytes(os.urandom(4096))
    with pytest.raises(MediaError):
        audio = DecodedAudio(policy.resolve("noise.mp3"))
        audio.open()
        list(audio.pcm())


@pytest.mark.parametrize(
    "url",
    [
        "concat:a.wav|b.wav",
        "subfile:,,start,0,end,10,,:a.wav",
        "pipe:0",
        "data:audio/wav;base64,AA",
        "lavfi:sine",
        "ftp://example.invalid/a.mp3",
        "../outside.wav",
        "/etc/passwd",
        "file:///etc/passwd",
        "http://127.0.0.1/a.mp3",
    ],
)
def test_policy_refuses_other_protocols_and_escapes(policy: MediaPolicy, url: str) -> None:
    with pytest.raises(MediaRefused):
        policy.resolve(url)


def test_policy_refuses_symlink_escape_and_allows_inside(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (tmp_path / "secret.wav").write_bytes(b"x")
    (root / "link.wav").symlink_to(tmp_path / "secret.wav")
    (root / "sub").mkdir()
    (root / "sub" / "ok.wav").write_bytes(b"x")
    policy = MediaPolicy(root)
    with pytest.raises(MediaRefused):
        policy.resolve("link.wav")
    assert policy.resolve("sub/../sub/ok.wav").target == str((root / "sub" / "ok.wav").resolve())
    assert policy.resolve(str(root / "sub" / "ok.wav")).target.endswith("ok.wav")
    assert MediaPolicy(root, allow_remote=True).resolve("https://example.invalid/a.mp3").target
