"""Receiver benchmark: decoder + router + null sink against the decoder alone.

    python -m bench.receiver [--sessions 1000] [--frames 200000] [--seed 1]

One seeded stream of frames from 1,000 interleaved sessions (Opus-sized 348 B
and PCM-sized 3,864 B frames), fed in 64 KiB reads as a socket would deliver
it. Side by side in one run: Decoder.feed alone, and Decoder.feed followed by
Router.route into a NullSink per session (stats updated per frame). Target:
routing costs at most 1.3x the decoder alone.
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from snowmux.protocol import FRAME_HEADER_SIZE, Decoder, encode_frame
from snowmux.receiver import NullSink, Router

READ = 64 * 1024
TARGET = 1.3


def make_stream(sessions: list[str], frames: int, frame_size: int, rng: random.Random) -> bytes:
    payload = rng.randbytes(frame_size - FRAME_HEADER_SIZE)
    order = [sessions[i % len(sessions)] for i in range(frames)]
    rng.shuffle(order)  # arbitrary interleaving, every session present
    return b"".join(encode_frame(session_id, payload) for session_id in order)


def decode_only(stream: bytes) -> int:
    decoder = Decoder()
    count = 0
    for pos in range(0, len(stream), READ):
        count += len(decoder.feed(stream[pos : pos + READ]))
    return count


def decode_and_route(stream: bytes, sessions: list[str]) -> int:
    decoder = Decoder()
    router = Router()
    for session_id in sessions:
        router.register(session_id, NullSink())
    for pos in range(0, len(stream), READ):
        router.route(decoder.feed(stream[pos : pos + READ]))
    return sum(s.frames for s in router.stats())


def best(runs: int, fn: object, *args: object) -> tuple[float, int]:
    fastest, result = float("inf"), 0
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = fn(*args)  # type: ignore[operator]
        fastest = min(fastest, time.perf_counter() - start)
    return fastest, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sessions = [str(rng.randrange(10**17, 10**19)) for _ in range(args.sessions)]
    print(f"{args.sessions} sessions interleaved, {args.frames} frames, {READ // 1024} KiB reads")
    print(f"{'frame':>8} {'decoder alone':>16} {'decoder+router':>16} {'cost ratio':>11}")
    verdicts = []
    for size in (348, 3864):
        stream = make_stream(sessions, args.frames, size, rng)
        alone, n1 = best(args.runs, decode_only, stream)
        routed, n2 = best(args.runs, decode_and_route, stream, sessions)
        assert n1 == n2 == args.frames
        ratio = routed / alone
        print(f"{size:>6} B {n1 / alone:>12,.0f} f/s {n2 / routed:>12,.0f} f/s {ratio:>10.2f}x")
        verdicts.append(
            f"{size} B: routing costs {ratio:.2f}x the decoder alone "
            f"(target <= {TARGET}x) {'OK' if ratio <= TARGET else 'MISSED'}"
        )
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
