"""Coverage-guided fuzzing of the control API's play-body parser with atheris.

Target: snowmux.node.play_body.parse_play_body, the pure function the node
runs on every POST /session/{id}/play body (SPEC.md [A1]). The invariant:
any bytes give a valid PlayRequest or a BodyError with a 4xx status and a
message; nothing else escapes (no RecursionError, ValueError, OverflowError,
UnicodeError), and every accepted field is in range.

    python -m fuzz.atheris_api_body --seconds 600
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import atheris

# Only the parser is instrumented: snowmux.node's package import loads aiohttp and
# PyAV, whose instrumentation would cost a minute and guide nothing here.
with atheris.instrument_imports(include=["snowmux.node.play_body", "snowmux.node.play_request"]):
    from snowmux.node.play_body import (
        MAX_BITRATE,
        MAX_SECONDS,
        MAX_VOLUME,
        MIN_BITRATE,
        BodyError,
        parse_play_body,
    )
    from snowmux.node.play_request import PlayRequest
    from snowmux.protocol import PAYLOAD_FORMATS

SEEDS = (
    b'{"url":"tone:440"}',
    b'{"url":"a.mp3","format":"opus","start_at":1.5,"duration":3,"bitrate":96000,"volume":0.5}',
    b'{"url":"x.wav","format":null,"start_at":0}',
    b'{"url":"x","start_at":' + b"9" * 40 + b"}",
    b'{"url":' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"url":"\\ud800","url":"y"}',
    b'{"url":"tone:440","volume":NaN,"bitrate":1e999}',
)


def check(request: PlayRequest) -> None:
    assert isinstance(request.url, str) and request.url
    request.url.encode("utf-8")  # never a lone surrogate
    assert request.format in PAYLOAD_FORMATS
    assert math.isfinite(request.start_at) and 0 <= request.start_at <= MAX_SECONDS
    assert request.duration is None or 0 <= request.duration <= MAX_SECONDS
    assert request.bitrate is None or (
        isinstance(request.bitrate, int) and MIN_BITRATE <= request.bitrate <= MAX_BITRATE
    )
    assert 0 <= request.volume <= MAX_VOLUME


def one_input(data: bytes) -> None:
    try:
        request = parse_play_body(data)
    except BodyError as error:
        assert error.status in (400, 413) and error.message
        return
    check(request)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    args, rest = parser.parse_known_args(argv)
    corpus = Path(tempfile.mkdtemp(prefix="snowmux-body-corpus-"))
    for index, seed in enumerate(SEEDS):
        (corpus / f"seed-{index}").write_bytes(seed)
    atheris.Setup(
        [sys.argv[0], f"-max_total_time={args.seconds}", "-max_len=4096", *rest, str(corpus)],
        one_input,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main()
