"""Property tests of the decoder (SPEC.md: boundaries, limits, errors, EOF)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snowmux.conformance.strategies import (
    chunk_sizes,
    invalid_session_ids,
    messages,
    payloads,
    session_ids,
)
from snowmux.protocol import (
    AudioFrame,
    Decoder,
    Message,
    RemoteProtocolError,
    SessionIdError,
    TruncatedStreamError,
    encode,
    encode_frame,
    validate_session_id,
)
from snowmux.protocol.testing import chunked, collect_until_error, decode_chunks, normalize


@pytest.mark.spec("B1", "E4")
@given(st.lists(messages, max_size=20), chunk_sizes, st.booleans())
def test_any_message_sequence_survives_any_chunking(
    sequence: list[Message], sizes: list[int], separators: bool
) -> None:
    glue = b"\n" if separators else b""
    stream = glue.join(encode(m) for m in sequence)
    assert decode_chunks(chunked(stream, sizes)) == [normalize(m) for m in sequence]
    assert decode_chunks(chunked(stream, [1])) == [normalize(m) for m in sequence]


@given(session_ids, payloads)
def test_every_valid_id_round_trips(session_id: str, payload: bytes) -> None:
    (frame,) = Decoder().feed(encode_frame(session_id, payload))
    assert frame.session_id == session_id and frame.payload == payload


@pytest.mark.spec("I3")
@given(invalid_session_ids)
def test_every_invalid_id_is_rejected_by_the_encoder(session_id: str) -> None:
    for reject in (validate_session_id, lambda s: encode_frame(s, b"")):
        try:
            reject(session_id)
        except SessionIdError:
            continue
        raise AssertionError(f"{session_id!r} was accepted")


@given(
    st.dictionaries(session_ids, st.lists(payloads, max_size=8), min_size=1, max_size=6),
    st.data(),
)
@pytest.mark.spec("O1")
def test_interleaved_sessions_keep_order_and_routing(
    per_session: dict[str, list[bytes]], data: st.DataObject
) -> None:
    queues = {sid: list(p) for sid, p in per_session.items()}
    schedule: list[AudioFrame] = []
    while any(queues.values()):
        sid = data.draw(st.sampled_from(sorted(s for s, q in queues.items() if q)))
        schedule.append(AudioFrame(sid, queues[sid].pop(0)))
    stream = b"".join(encode(f) for f in schedule)
    routed: dict[str, list[bytes]] = {sid: [] for sid in per_session}
    for kind, sid, payload in decode_chunks(chunked(stream, data.draw(chunk_sizes))):
        assert kind == "frame"
        routed[sid].append(payload)  # type: ignore[arg-type]
    assert routed == per_session


LIMIT_FRAME, LIMIT_EVENT = 200, 150


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """Valid streams with a few bytes overwritten: they get past the first byte."""
    stream = bytearray(b"".join(encode(m) for m in draw(st.lists(messages, max_size=6))))
    for _ in range(draw(st.integers(0, 4))):
        if stream:
            stream[draw(st.integers(0, len(stream) - 1))] = draw(st.integers(0, 255))
    return bytes(stream)


@pytest.mark.spec("X1", "L4")
@given(st.one_of(st.binary(max_size=2000), mutated_streams()), chunk_sizes)
def test_arbitrary_bytes_only_raise_remote_errors_and_stay_bounded(
    noise: bytes, sizes: list[int]
) -> None:
    decoder = Decoder(max_frame_length=LIMIT_FRAME, max_event_length=LIMIT_EVENT)
    bound = max(LIMIT_FRAME + 4, LIMIT_EVENT)
    try:
        for chunk in chunked(noise, sizes):
            decoder.feed(chunk)
            assert decoder.buffered <= bound
        decoder.feed_eof()
    except RemoteProtocolError as error:
        assert 0 <= error.offset <= len(noise)


@pytest.mark.spec("X3")
@given(st.lists(messages, min_size=1, max_size=6), st.data())
def test_every_proper_prefix_then_eof_is_truncated_unless_on_a_boundary(
    sequence: list[Message], data: st.DataObject
) -> None:
    encoded = [encode(m) for m in sequence]
    boundaries = {0}
    total = 0
    for piece in encoded:
        total += len(piece)
        boundaries.add(total)
    stream = b"".join(encoded)
    cut = data.draw(st.integers(0, len(stream) - 1))
    got, error = collect_until_error([stream[:cut]], Decoder())
    if cut in boundaries:
        assert error is None
        assert len(got) == sorted(boundaries).index(cut)
    else:
        assert isinstance(error, TruncatedStreamError)
        assert error.offset == max(b for b in boundaries if b < cut)
