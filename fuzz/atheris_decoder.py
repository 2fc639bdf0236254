"""Coverage-guided fuzzing of the decoder with atheris.

The one invariant: any bytes, cut anywhere, yield messages or a
RemoteProtocolError (of the documented classes), nothing else, and the
decoder never buffers more than one maximal message.

The corpus starts from every stream in protocol/vectors.json (valid and
invalid, each at a few chunk sizes), so the fuzzer begins at frames, events,
IDs and errors instead of discovering `{` and the 4-byte length by chance.
Soak run (README "Fuzzing"):

    python -m fuzz.atheris_decoder --seconds 600
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from snowmux.protocol import AudioFrame, Decoder, Event, RemoteProtocolError, load_vectors

MAX_FRAME, MAX_EVENT = 512, 256
SEED_CUTS = (1, 7, 64)  # one byte at a time, an odd size, whole (the first byte picks the cut)


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


def seed_corpus(directory: Path) -> int:
    """Write every vector stream, prefixed by each SEED_CUTS chunk byte; return the count."""
    directory.mkdir(parents=True, exist_ok=True)
    document = load_vectors()
    count = 0
    for vector in [*document["valid"], *document["invalid"]]:
        stream = bytes.fromhex(vector["stream"])
        for cut in SEED_CUTS:
            (directory / f"{vector['name']}-{cut}").write_bytes(bytes([cut - 1]) + stream)
            count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    parser.add_argument(
        "--corpus", type=Path, default=None, help="corpus folder (default: a fresh temp folder)"
    )
    args, rest = parser.parse_known_args(argv)
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix="snowmux-corpus-"))
    seeded = seed_corpus(corpus)
    print(f"seeded {seeded} inputs from protocol/vectors.json into {corpus}", file=sys.stderr)
    atheris.Setup([sys.argv[0], f"-max_total_time={args.seconds}", *rest, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
