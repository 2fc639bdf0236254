"""Decoder behaviour beyond the vectors: limits, state, memory, buffers."""

from __future__ import annotations

import time

import pytest

from snowmux.protocol import (
    AudioFrame,
    Decoder,
    Event,
    FrameLengthError,
    LocalProtocolError,
    RemoteProtocolError,
    TruncatedStreamError,
    UnexpectedByteError,
    encode_event,
    encode_frame,
)
from snowmux.protocol.testing import chunked, decode_chunks, event, round_trip


@pytest.mark.spec("B1", "O1")
def test_round_trip_of_mixed_messages_any_chunking() -> None:
    messages = [
        event("hello", "", protocol="snowmux/1", max_frame_length=1 << 20),
        event("ready", "123456789012345678", format="opus", duration=3.5),
        AudioFrame("123456789012345678", b"\x00" * 3840),
        AudioFrame("guild-2", b"{\n}"),
        event("finished", "guild-2", reason="replaced"),
    ]
    for sizes in ([1], [2, 5], [4096], [7, 1, 31]):
        round_trip(messages, sizes)


@pytest.mark.spec("F4", "L1")
def test_length_errors_are_detected_from_the_four_length_bytes() -> None:
    decoder = Decoder(max_frame_length=1000)
    assert decoder.feed(b"\x00\x00") == []
    with pytest.raises(FrameLengthError) as info:
        decoder.feed(b"\x03\xe9")  # 1001: no body byte has been sent
    assert info.value.length == 1001 and info.value.limit == 1000 and info.value.offset == 0
    assert decoder.buffered <= 4


@pytest.mark.spec("L1")
def test_frame_at_exactly_max_frame_length_is_accepted() -> None:
    decoder = Decoder(max_frame_length=100)
    (frame,) = decoder.feed(encode_frame("a", b"x" * 76))
    assert len(frame.payload) == 76


def test_constructor_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Decoder(max_frame_length=23)
    with pytest.raises(ValueError):
        Decoder(max_frame_length=0x01000000)
    with pytest.raises(ValueError):
        Decoder(max_event_length=1)


@pytest.mark.spec("X2")
def test_failed_decoder_stays_failed() -> None:
    decoder = Decoder()
    with pytest.raises(UnexpectedByteError) as first:
        decoder.feed(b"\xff")
    assert decoder.failed is first.value
    for _ in range(2):
        with pytest.raises(UnexpectedByteError):
            decoder.feed(encode_frame("a", b""))
        with pytest.raises(UnexpectedByteError):
            decoder.feed_eof()


@pytest.mark.spec("X2")
def test_messages_before_an_error_travel_on_the_exception() -> None:
    good = encode_frame("a", b"1") + encode_event("finished", "a")
    with pytest.raises(RemoteProtocolError) as info:
        Decoder().feed(good + b"\x7f")
    assert [type(m) for m in info.value.messages] == [AudioFrame, Event]
    assert info.value.offset == len(good)


def test_feed_after_eof_is_a_local_error_and_eof_is_idempotent() -> None:
    decoder = Decoder()
    decoder.feed(encode_frame("a", b""))
    decoder.feed_eof()
    decoder.feed_eof()
    with pytest.raises(LocalProtocolError):
        decoder.feed(b"\n")


@pytest.mark.spec("X3")
def test_truncation_names_session_and_missing_bytes() -> None:
    wire = encode_frame("guild-7", b"x" * 100)
    decoder = Decoder()
    decoder.feed(wire[:-40])
    with pytest.raises(TruncatedStreamError) as info:
        decoder.feed_eof()
    assert info.value.session_id == "guild-7"
    assert info.value.missing == 40 and info.value.missing_is_exact
    assert "guild-7" in str(info.value) and "40" in str(info.value)


def test_buffered_counts_the_incomplete_message_only() -> None:
    wire = encode_frame("a", b"x" * 100)
    decoder = Decoder()
    assert decoder.feed(wire + wire[:10]) != []
    assert decoder.buffered == 10
    decoder.feed(wire[10:60])
    assert decoder.buffered == 60
    assert len(decoder.feed(wire[60:])) == 1
    assert decoder.buffered == 0
    decoder.feed(b'{"type":')
    assert decoder.buffered == 8
    assert decoder.offset == 2 * len(wire) + 8


def test_payloads_do_not_change_when_the_caller_reuses_its_buffer() -> None:
    buffer = bytearray(encode_frame("a", b"original"))
    (frame,) = Decoder().feed(buffer)
    buffer[-8:] = b"CHANGED!"
    assert bytes(frame.payload) == b"original"
    view = memoryview(bytearray(encode_frame("b", b"abc")))
    (frame,) = Decoder().feed(view)
    view[-3:] = b"xyz"
    assert frame.payload == b"abc"


def test_payloads_are_read_only() -> None:
    wire = encode_frame("a", b"x" * 64)
    for chunks in ([wire], list(chunked(wire, [5]))):
        decoder = Decoder()
        frames = [m for c in chunks for m in decoder.feed(c)]
        payload = frames[0].payload
        with pytest.raises(TypeError):
            payload[0] = 1  # type: ignore[index]


def test_event_split_anywhere_including_before_newline() -> None:
    line = encode_event("error", "s", message='} { " \\n')
    for cut in range(1, len(line)):
        assert decode_chunks([line[:cut], line[cut:]]) == decode_chunks([line])


def _time_bytewise(frame_size: int) -> float:
    wire = encode_frame("a", bytes(frame_size))
    chunks = list(chunked(wire, [1]))
    best = float("inf")
    for _ in range(3):
        decoder = Decoder()
        start = time.perf_counter()
        for chunk in chunks:
            decoder.feed(chunk)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.spec("L4")
def test_bytewise_feeding_is_linear_not_quadratic() -> None:
    # A ratio measured side by side, not an absolute time: doubling the frame
    # doubles the work (a quadratic decoder would quadruple it).
    small, large = _time_bytewise(20_000), _time_bytewise(80_000)
    assert large / small < 8, f"4x the bytes took {large / small:.1f}x the time"


@pytest.mark.spec("L4")
def test_memory_stays_bounded_by_one_message_whatever_the_chunking() -> None:
    import tracemalloc

    wire = encode_frame("a", bytes(200_000))
    for size in (1, 100, 5000):
        decoder = Decoder()
        tracemalloc.start()
        for chunk in chunked(wire[:-1], [size]):
            decoder.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert decoder.buffered == len(wire) - 1
        assert peak < 2 * len(wire) + 64_000, f"{size}-byte chunks peaked at {peak} B"
