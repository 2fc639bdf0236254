"""The worker's controllable chain (snowmux.node.chain), driven at random.

Random sequences of queue operations and controls at frame boundaries, as the
codec worker applies them: every frame stays exactly 3,840 bytes, nothing but
a refused control raises, and every track_start has exactly one track_end.
"""

from __future__ import annotations

import random
import wave
from pathlib import Path

import numpy as np
import pytest

from snowmux.audio_format import FRAME_BYTES
from snowmux.node.chain import Chain
from snowmux.node.controls import NO_END, PlaybackControl
from snowmux.node.filters import parse_filters
from snowmux.node.media import MediaPolicy
from snowmux.node.pipeline import MediaError
from snowmux.node.play_request import PlayRequest
from snowmux.node.queue import AppendTrack, ClearQueue, QueuedTrack, SkipTrack

URLS = ["tone:660?seconds=1", "short.wav", "missing.wav", "tone:550?seconds=0.2"]
FILTERS = [{}, {"timescale": {"speed": 1.5}}, {"lowPass": {"smoothing": 20}}]


def run_one(rng: random.Random, policy: MediaPolicy) -> None:
    crossfade = rng.choice([0, 300, 2000])
    chain = Chain(policy.resolve("tone:440?seconds=2"), PlayRequest(url="t"), crossfade, True)
    chain.open()
    events: list[tuple[str, object]] = []
    next_index, operations = 1, 0
    for count, frame in enumerate(chain.frames()):
        assert len(frame) == FRAME_BYTES
        assert count < 3000, "the chain never ends"
        events += [(e.type, e.fields.get("index")) for e in chain.take_events()]
        if rng.random() >= 0.08 or operations >= 12:
            continue
        operations += 1
        choice = rng.random()
        try:
            if choice < 0.3:
                url = rng.choice(URLS)
                track = QueuedTrack(next_index, policy.resolve(url), PlayRequest(url=url))
                chain.queue(AppendTrack(track))
                next_index += 1
            elif choice < 0.45:
                chain.queue(SkipTrack())
            elif choice < 0.5:
                chain.queue(ClearQueue())
            elif choice < 0.65:
                chain.control(PlaybackControl(position=rng.uniform(0, 1.5)))
            elif choice < 0.75:
                chain.control(PlaybackControl(filters=parse_filters(rng.choice(FILTERS))))
            elif choice < 0.85:
                chain.control(PlaybackControl(end_at=rng.choice([NO_END, 0.5, 3.0])))
            else:
                chain.control(
                    PlaybackControl(crossfade_ms=rng.choice([0, 500, 3000]), volume=rng.random())
                )
        except MediaError:
            pass  # refused (a seek in an ended track, a queue that ran out): allowed
    events += [(e.type, e.fields.get("index")) for e in chain.take_events()]
    chain.close()
    starts = sorted(index for kind, index in events if kind == "track_start")
    ends = [index for kind, index in events if kind == "track_end"]
    assert starts == sorted(ends) and len(set(ends)) == len(ends), events


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_controls_keep_the_frame_grid_and_pair_track_events(
    seed: int, tmp_path: Path
) -> None:
    samples = np.zeros((round(0.5 * 48000), 2), dtype="<i2")
    with wave.open(str(tmp_path / "short.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(samples.tobytes())
    policy = MediaPolicy(tmp_path)
    rng = random.Random(seed)
    for _ in range(40):
        run_one(rng, policy)


def test_unfiltered_frames_are_the_source_samples_across_a_seek_and_a_gapless_queue(
    tmp_path: Path,
) -> None:
    """The no-filter fast path: frame k is source block k, a seek lands on its
    exact sample, and a queued track's first sample follows the last one."""
    rng = np.random.default_rng(7)
    sources = {}
    for name, seconds in (("a.wav", 1.013), ("b.wav", 0.4)):
        samples = rng.integers(-20000, 20000, (round(seconds * 48000), 2), dtype="<i2")
        with wave.open(str(tmp_path / name), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(48000)
            out.writeframes(samples.tobytes())
        sources[name] = samples.tobytes()
    policy = MediaPolicy(tmp_path)
    chain = Chain(policy.resolve("a.wav"), PlayRequest(url="a.wav", start_at=0.1), 0, True)
    chain.open()
    chain.queue(AppendTrack(QueuedTrack(1, policy.resolve("b.wav"), PlayRequest(url="b.wav"))))
    seek_to = 0.512345
    got = bytearray()
    for count, frame in enumerate(chain.frames()):
        assert len(frame) == FRAME_BYTES
        got += frame
        if count == 9:
            chain.control(PlaybackControl(position=seek_to))
    start, seek = round(0.1 * 48000) * 4, round(seek_to * 48000) * 4
    expected = sources["a.wav"][start : start + 10 * FRAME_BYTES]
    expected += sources["a.wav"][seek:] + sources["b.wav"]
    expected += b"\x00" * (-len(expected) % FRAME_BYTES)
    assert bytes(got) == expected
    chain.close()
