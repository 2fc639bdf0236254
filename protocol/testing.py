"""Helpers to test a reader of snowmux streams several ways (the house's h11 habits).

Pure functions over bytes and messages, shared by this project's tests and
fuzz targets and usable by anyone checking a decoder: cut a stream into
chunks, decode it whole / byte by byte / with trailing bytes and insist the
results agree, and wire an encoder to a decoder (``round_trip``). A
disagreement raises ``AssertionError`` (explicitly, so ``python -O`` keeps
the checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ._decoder import Decoder
from ._encoder import encode
from ._errors import RemoteProtocolError
from ._messages import AudioFrame, Event, Message

__all__ = [
    "TRAILING",
    "Normalized",
    "chunked",
    "collect_until_error",
    "decode_chunks",
    "decode_three_ways",
    "event",
    "normalize",
    "round_trip",
]

Normalized = tuple[str, str, object]
TRAILING = b"\x00\x00\x00"  # the start of a frame header that never completes


def normalize(message: Message) -> Normalized:
    """A comparable form: payloads as bytes, events as their dict."""
    if isinstance(message, AudioFrame):
        return ("frame", message.session_id, bytes(message.payload))
    return ("event", message.session_id, dict(message.data))


def chunked(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    """Cut ``data`` into chunks of the given sizes (cycled), last one shorter."""
    sizes = list(sizes) or [len(data) or 1]
    pos, i = 0, 0
    while pos < len(data):
        size = max(1, sizes[i % len(sizes)])
        yield data[pos : pos + size]
        pos += size
        i += 1


def decode_chunks(chunks: Iterable[bytes], decoder: Decoder | None = None) -> list[Normalized]:
    """Feed every chunk then EOF; return the normalized messages."""
    decoder = decoder or Decoder()
    out: list[Normalized] = []
    for chunk in chunks:
        out.extend(map(normalize, decoder.feed(chunk)))
    decoder.feed_eof()
    return out


def decode_three_ways(
    data: bytes, make_decoder: Callable[[], Decoder] = Decoder
) -> list[Normalized]:
    """h11's tr(): whole, byte by byte, and followed by the start of a next message.

    All three must agree (the trailing bytes stay buffered, unconsumed); the
    common result is returned.
    """
    whole = decode_chunks([data], make_decoder())
    bytewise = decode_chunks(chunked(data, [1]), make_decoder())
    decoder = make_decoder()
    trailing = [normalize(m) for m in decoder.feed(data + TRAILING)]
    if decoder.buffered != len(TRAILING):
        raise AssertionError(f"{decoder.buffered} bytes buffered, expected {len(TRAILING)}")
    if not whole == bytewise == trailing:
        raise AssertionError("whole, byte-by-byte and trailing-bytes decodes disagree")
    return whole


def collect_until_error(
    chunks: Iterable[bytes], decoder: Decoder
) -> tuple[list[Normalized], RemoteProtocolError | None]:
    """Feed chunks then EOF; return what decoded and the error, if any."""
    out: list[Normalized] = []
    try:
        for chunk in chunks:
            out.extend(map(normalize, decoder.feed(chunk)))
        decoder.feed_eof()
    except RemoteProtocolError as error:
        out.extend(map(normalize, error.messages))
        return out, error
    return out, None


def round_trip(messages: list[Message], chunk_sizes: Iterable[int] = ()) -> list[Normalized]:
    """Two peers: encoder -> bytes -> decoder; assert every message survives."""
    stream = b"".join(encode(m) for m in messages)
    got = decode_chunks(chunked(stream, chunk_sizes) if chunk_sizes else [stream])
    if got != [normalize(m) for m in messages]:
        raise AssertionError(f"round trip changed the messages: {got!r}")
    return got


def event(type: str, session_id: str, **fields: object) -> Event:
    """An Event built and validated as the encoder would."""
    return Event.create(type, session_id, **fields)
