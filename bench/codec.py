"""Codec benchmark: Decoder.feed against FRAME.parse and a plain copy, one run.

    python -m bench.codec [--frames 100000] [--max-stream-mb 1024] [--seed 1]

For each frame size (348 B Opus-sized, 3,864 B PCM 20 ms, 64 KiB) it decodes
the same seeded stream (frames of 64 interleaved sessions) fed whole and in
4 KiB chunks, and times, side by side: construct's FRAME.parse_stream per
frame (interpreted and .compile()d) and a plain bytes copy of the stream.
Ratios are what to read; absolute figures depend on the machine.
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import time
from collections.abc import Callable
from functools import partial

from snowmux.protocol import FRAME, FRAME_HEADER_SIZE, Decoder, encode_frame

CHUNK = 4096
FRAME_SIZES = {"348 B": 348, "3864 B": 3864, "64 KiB": 64 * 1024}
TARGET_PARSE_RATIO = 8.0  # decoder vs interpreted FRAME.parse, 348 B frames
TARGET_COPY_RATIO = 0.5  # decoder speed / plain copy speed, 64 KiB frames


def make_stream(frame_size: int, count: int, rng: random.Random) -> bytes:
    ids = [str(rng.randrange(10**17, 10**19)) for _ in range(64)]
    payload_size = frame_size - FRAME_HEADER_SIZE
    payloads = [rng.randbytes(payload_size) for _ in range(8)]
    return b"".join(encode_frame(ids[i % 64], payloads[i % 8]) for i in range(count))


def best_of(runs: int, fn: Callable[[], int]) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def decode_whole(stream: bytes) -> int:
    decoder = Decoder()
    count = len(decoder.feed(stream))
    decoder.feed_eof()
    return count


def decode_chunked(stream: bytes) -> int:
    decoder = Decoder()
    feed = decoder.feed
    count = 0
    for pos in range(0, len(stream), CHUNK):
        count += len(feed(stream[pos : pos + CHUNK]))
    decoder.feed_eof()
    return count


def parse_with(parser: object, stream: bytes) -> int:
    source = io.BytesIO(stream)
    parse_stream = parser.parse_stream  # type: ignore[attr-defined]
    end, count = len(stream), 0
    while source.tell() < end:
        parse_stream(source)
        count += 1
    return count


def copy_whole(stream: bytes) -> int:
    return len(bytes(memoryview(stream)))


def copy_chunked(stream: bytes) -> int:
    total = 0
    for pos in range(0, len(stream), CHUNK):
        total += len(stream[pos : pos + CHUNK])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument(
        "--max-stream-mb",
        type=int,
        default=1024,
        help="cap the stream size (64 KiB x 100k frames would be 6.5 GB)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    compiled = FRAME.compile()
    verdicts = []
    print(
        f"{'frames':>8} {'size':>7} {'method':<26} {'frames/s':>12} {'MB/s':>9} "
        f"{'vs parse':>9} {'vs copy':>8}"
    )
    for label, size in FRAME_SIZES.items():
        count = min(args.frames, args.max_stream_mb * 2**20 // size)
        stream = make_stream(size, count, rng)
        mb = len(stream) / 1e6
        parse_count = min(count, 20_000)  # the interpreted parser is slow: rate is per frame
        parse_bytes = stream[: parse_count * size]
        rows: dict[str, float] = {}
        methods: list[tuple[str, Callable[[], int], int]] = [
            ("Decoder.feed whole", partial(decode_whole, stream), count),
            ("Decoder.feed 4 KiB chunks", partial(decode_chunked, stream), count),
            ("FRAME.parse interpreted", partial(parse_with, FRAME, parse_bytes), parse_count),
            ("FRAME.parse compiled", partial(parse_with, compiled, parse_bytes), parse_count),
            ("bytes copy whole", partial(copy_whole, stream), count),
            ("bytes copy 4 KiB chunks", partial(copy_chunked, stream), count),
        ]
        for name, fn, n in methods:
            seconds, result = best_of(args.runs, fn)
            if name.startswith(("Decoder", "FRAME")):
                assert result == n, (name, result, n)
            rows[name] = n / seconds
        parse_rate, copy_rate = rows["FRAME.parse interpreted"], rows["bytes copy whole"]
        for name, rate in rows.items():
            print(
                f"{count:>8} {label:>7} {name:<26} {rate:>12,.0f} {rate * size / 1e6:>9,.0f} "
                f"{rate / parse_rate:>8.1f}x {rate / copy_rate:>7.2f}x"
            )
        if size == 348:
            ratio = min(rows["Decoder.feed whole"], rows["Decoder.feed 4 KiB chunks"]) / parse_rate
            verdicts.append(
                f"348 B: decoder / interpreted FRAME.parse = {ratio:.1f}x "
                f"(target >= {TARGET_PARSE_RATIO:.0f}x) "
                f"{'OK' if ratio >= TARGET_PARSE_RATIO else 'MISSED'}"
            )
        if size == 64 * 1024:
            for mode in ("whole", "4 KiB chunks"):
                ratio = rows[f"Decoder.feed {mode}"] / rows[f"bytes copy {mode}"]
                verdicts.append(
                    f"64 KiB, fed {mode}: decoder speed / plain copy {mode} = {ratio:.2f}x "
                    f"(target >= {TARGET_COPY_RATIO}) "
                    f"{'OK' if ratio >= TARGET_COPY_RATIO else 'MISSED'}"
                )
        print(f"         ({mb:,.0f} MB stream)")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
