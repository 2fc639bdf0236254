"""Coverage-guided fuzzing of the decoder with atheris.

The one invariant: any bytes, cut anywhere, yield messages or a
RemoteProtocolError (of the documented classes), nothing else, and the
decoder never buffers more than one maximal message.

    python -m fuzz.atheris_decoder --seconds 60
"""

from __future__ import annotations

import argparse
import sys

import atheris

with atheris.instrument_imports():
    from snowmux.protocol import AudioFrame, Decoder, Event, RemoteProtocolError

MAX_FRAME, MAX_EVENT = 512, 256


def one_input(data: bytes) -> None:
    if not data:
        return
    cut = data[0] % 64 + 1  # first byte picks the chunk size
    stream = data[1:]
    decoder = Decoder(max_frame_length=MAX_FRAME, max_event_length=MAX_EVENT)
    try:
        for pos in range(0, len(stream), cut):
            for message in decoder.feed(stream[pos : pos + cut]):
                assert isinstance(message, AudioFrame | Event)
            assert decoder.buffered <= max(MAX_FRAME + 4, MAX_EVENT)
        decoder.feed_eof()
    except RemoteProtocolError as error:
        assert 0 <= error.offset <= len(stream)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    args, rest = parser.parse_known_args(argv)
    atheris.Setup([sys.argv[0], f"-max_total_time={args.seconds}", *rest], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
