"""The fast path against FRAME, the construct definition (SPEC.md "Audio frames").

Byte-for-byte agreement for every valid frame, and identical accept/reject
decisions for every possible ID field.
"""

from __future__ import annotations

import construct
import pytest
from hypothesis import given
from hypothesis import strategies as st

from snowmux.conformance.strategies import ID_ALPHABET, any_session_id, payloads
from snowmux.protocol import (
    FRAME,
    MAX_PAYLOAD_SIZE,
    Decoder,
    FrameTooLargeError,
    RemoteProtocolError,
    SessionIdError,
    encode_frame,
    frame_encoder,
)


@pytest.mark.spec("F1")
@given(any_session_id, payloads)
def test_encoder_equals_frame_build(session_id: str, payload: bytes) -> None:
    assert encode_frame(session_id, payload) == FRAME.build(
        {"session_id": session_id, "payload": payload}
    )


@pytest.mark.spec("F1")
@given(any_session_id, st.lists(payloads, max_size=4))
def test_per_session_encoder_equals_frame_build(session_id: str, batch: list[bytes]) -> None:
    encode = frame_encoder(session_id)
    for payload in batch:
        assert encode(payload) == FRAME.build({"session_id": session_id, "payload": payload})


def test_per_session_encoder_refuses_what_encode_frame_refuses() -> None:
    with pytest.raises(SessionIdError):
        frame_encoder("no spaces")
    with pytest.raises(FrameTooLargeError):
        frame_encoder("a")(bytes(MAX_PAYLOAD_SIZE + 1))


@pytest.mark.spec("F1")
@given(any_session_id, payloads)
def test_decoder_equals_frame_parse(session_id: str, payload: bytes) -> None:
    wire = FRAME.build({"session_id": session_id, "payload": payload})
    (frame,) = Decoder().feed(wire)
    parsed = FRAME.parse(wire)
    assert (frame.session_id, bytes(frame.payload)) == (parsed.session_id, parsed.payload)


id_fields = st.one_of(
    st.binary(min_size=24, max_size=24),
    st.text(alphabet=ID_ALPHABET + " \x00\t\x7f\u00e9", max_size=24).map(
        lambda s: s.encode("utf-8")[:24].ljust(24, b" ")
    ),
)


@pytest.mark.spec("I4")
@given(id_fields)
def test_id_fields_accept_reject_identically(field: bytes) -> None:
    wire = (24 + 1).to_bytes(4, "big") + field + b"p"
    try:
        expected: str | None = FRAME.parse(wire).session_id
    except construct.ValidationError:
        expected = None
    try:
        (frame,) = Decoder().feed(wire)
        got: str | None = frame.session_id
    except RemoteProtocolError:
        got = None
    assert got == expected


@given(st.text(max_size=30))
def test_id_strings_accept_reject_identically(session_id: str) -> None:
    try:
        fast: bytes | None = encode_frame(session_id, b"")
    except SessionIdError:
        fast = None
    try:
        reference: bytes | None = FRAME.build({"session_id": session_id, "payload": b""})
    except SessionIdError:
        reference = None
    assert fast == reference
