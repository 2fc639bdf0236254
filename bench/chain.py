"""Codec-worker CPU per playback: the player-controls chain against plain PyAV.

    python -m bench.chain [--seconds 20] [--rounds 4] [--seed 1]

Makes two seeded test files (tones plus pink-ish noise: 44.1 kHz stereo WAV,
and the same as a 48 kHz Ogg Opus file) and, for each file and each of the
`opus` (Ogg pages) and `opus-packets` formats, times with process_time() the
CPU seconds to produce every payload of one playback three ways, interleaved
in rounds so that a shared machine's load falls on all of them alike:

  chain  what a codec worker runs: Chain(...).open() + playback_payloads()
  pre    the path before the chain: DecodedAudio -> cut_frames -> encode_payloads
  plain  PyAV alone: decode -> resample to 960-sample s16 frames -> libopus
         (no Ogg muxing: the floor any node pays)

Prints, per case, the median CPU seconds and the ratios chain / plain and
chain / pre with their spread over the rounds (min-max of the per-round
ratios). Absolute figures depend on the machine; read the ratios.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from snowmux.audio_format import FRAME_SAMPLES, SAMPLE_RATE
from snowmux.node.chain import Chain
from snowmux.node.codec_worker import playback_payloads
from snowmux.node.encoders import DEFAULT_BITRATES, encode_payloads
from snowmux.node.media import MediaPolicy
from snowmux.node.pipeline import DecodedAudio, cut_frames
from snowmux.node.play_request import PlayRequest
from snowmux.protocol import PayloadFormat

FORMATS = (PayloadFormat.OPUS, PayloadFormat.OPUS_PACKETS)
WAV_RATE = 44_100  # the common CD rate: every block goes through the resampler
WRITE_BLOCK = 4096  # samples per frame written to the test files


def music_like(seconds: float, rate: int, seed: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Stereo s16: gliding tones plus pink-ish noise, so libopus works as on music."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * (220 + 40 * np.sin(2 * np.pi * 0.5 * t)) * t)
    right = 0.3 * np.sin(2 * np.pi * (277 + 30 * np.sin(2 * np.pi * 0.3 * t)) * t)
    noise = np.cumsum(rng.normal(0.0, 1.0, (len(t), 2)), axis=0)
    noise -= np.convolve(noise[:, 0], np.ones(64) / 64, "same")[:, None]  # no drift
    noise *= 0.05 / max(1e-9, float(np.abs(noise).max()))
    pcm = np.stack([left, right], axis=1) + noise
    return (np.clip(pcm, -1.0, 1.0) * 32767).astype(np.int16)


def write_media(
    path: Path, pcm: np.ndarray[Any, np.dtype[np.int16]], rate: int, codec: str, out_rate: int
) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=out_rate, layout="stereo")
        if not isinstance(stream, av.AudioStream):
            raise ValueError(f"{codec} is not an audio codec")
        resampler = av.AudioResampler(format=stream.format, layout="stereo", rate=out_rate)
        for start in range(0, len(pcm), WRITE_BLOCK):
            block = np.ascontiguousarray(pcm[start : start + WRITE_BLOCK])
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="stereo")
            frame.sample_rate = rate
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        for converted in resampler.resample(None):
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return path


def run_chain(policy: MediaPolicy, name: str, audio_format: PayloadFormat) -> int:
    chain = Chain(policy.resolve(name), PlayRequest(url=name, format=audio_format))
    chain.open()
    return sum(len(p.data) for p in playback_payloads(chain, audio_format, None))


def run_pre(policy: MediaPolicy, name: str, audio_format: PayloadFormat) -> int:
    audio = DecodedAudio(policy.resolve(name))
    audio.open()
    try:
        return sum(
            len(p.data) for p in encode_payloads(audio_format, cut_frames(audio.pcm()), None)
        )
    finally:
        audio.close()


def run_plain(policy: MediaPolicy, name: str, audio_format: PayloadFormat) -> int:
    with av.open(str(policy.media_root / name)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(
            format="s16", layout="stereo", rate=SAMPLE_RATE, frame_size=FRAME_SAMPLES
        )
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate = SAMPLE_RATE
        codec.layout = "stereo"
        codec.format = "s16"
        codec.time_base = Fraction(1, SAMPLE_RATE)
        codec.bit_rate = DEFAULT_BITRATES[audio_format]
        codec.options = {"frame_duration": "20", "application": "audio", "vbr": "on"}
        size = 0
        for frame in [*container.decode(stream), None]:
            for out in resampler.resample(frame):
                out.pts = None  # the encoder counts samples itself
                size += sum(packet.size for packet in codec.encode(out))
        return size + sum(packet.size for packet in codec.encode(None))


PATHS: dict[str, Callable[[MediaPolicy, str, PayloadFormat], int]] = {
    "chain": run_chain,
    "pre": run_pre,
    "plain": run_plain,
}


def spread(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test audio")
    parser.add_argument("--rounds", type=int, default=4, help="timed runs of each path per case")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="snowmux-bench-chain-") as tmp:
        root = Path(tmp)
        pcm = music_like(args.seconds, WAV_RATE, args.seed)
        write_media(root / "music.wav", pcm, WAV_RATE, "pcm_s16le", WAV_RATE)
        write_media(root / "music.opus", pcm, WAV_RATE, "libopus", SAMPLE_RATE)
        policy = MediaPolicy(root)
        for run in PATHS.values():
            run(policy, "music.wav", PayloadFormat.OPUS)  # warm-up: imports, caches
        print(f"{args.seconds:.0f} s of audio per playback, {args.rounds} rounds, CPU seconds:")
        for name in ("music.wav", "music.opus"):
            for audio_format in FORMATS:
                times: dict[str, list[float]] = {path: [] for path in PATHS}
                for round_index in range(args.rounds):
                    order = list(PATHS)[round_index % 3 :] + list(PATHS)[: round_index % 3]
                    for path in order:
                        gc.collect()
                        start = time.process_time()
                        PATHS[path](policy, name, audio_format)
                        times[path].append(time.process_time() - start)
                chain, pre, plain = times["chain"], times["pre"], times["plain"]
                medians = "  ".join(f"{p} {statistics.median(t):.3f}" for p, t in times.items())
                print(
                    f"  {name:10} {audio_format:12}  {medians}  "
                    f"chain/plain {spread([c / p for c, p in zip(chain, plain, strict=True)])}  "
                    f"chain/pre {spread([c / p for c, p in zip(chain, pre, strict=True)])}"
                )


if __name__ == "__main__":
    main()
