"""SPEC.md "Session IDs": the rules, applied by encoder, decoder and FRAME alike."""

from __future__ import annotations

import construct
import pytest

from snowmux.protocol import (
    FRAME,
    MAX_SESSION_ID_LENGTH,
    SESSION_ID_FIELD,
    Decoder,
    LocalProtocolError,
    SessionIdError,
    SessionIdFieldError,
    encode_frame,
    validate_session_id,
)

VALID = ["1", "123456789012345678", "12345678901234567890", "x" * 24, "user:42", "!~{}\"'\\"]
INVALID = ["", " ", "a b", " a", "a ", "a\tb", "caf\u00e9", "a\x00", "a\x7f", "x" * 25, "\n"]


@pytest.mark.spec("I1", "I2")
@pytest.mark.parametrize("session_id", VALID)
def test_valid_ids_round_trip(session_id: str) -> None:
    assert validate_session_id(session_id) == session_id
    wire = encode_frame(session_id, b"")
    assert wire[4:28] == session_id.encode().ljust(24, b" ")
    (frame,) = Decoder().feed(wire)
    assert frame.session_id == session_id


@pytest.mark.spec("I3")
@pytest.mark.parametrize("session_id", INVALID)
def test_invalid_ids_are_refused_everywhere(session_id: str) -> None:
    with pytest.raises(SessionIdError):
        validate_session_id(session_id)
    with pytest.raises(SessionIdError):
        encode_frame(session_id, b"x")
    with pytest.raises(SessionIdError):
        FRAME.build({"session_id": session_id, "payload": b"x"})


@pytest.mark.spec("I3")
def test_long_ids_are_never_truncated() -> None:
    snowflake_25 = "1234567890123456789012345"
    with pytest.raises(SessionIdError, match="never truncated"):
        encode_frame(snowflake_25, b"")


def test_session_id_error_is_local_and_value_error() -> None:
    assert issubclass(SessionIdError, LocalProtocolError)
    assert issubclass(SessionIdError, ValueError)
    with pytest.raises(SessionIdError):
        validate_session_id(b"123")  # type: ignore[arg-type]


def test_field_width_comes_from_the_construct_definition() -> None:
    assert MAX_SESSION_ID_LENGTH == SESSION_ID_FIELD.sizeof() == 24


@pytest.mark.parametrize(
    "field",
    [
        b" " * 24,
        b"abc" + b"\x00" * 21,
        b"ab cd".ljust(24),
        b" abc".ljust(24),
        b"\xc3\xa9".ljust(24),
    ],
)
@pytest.mark.spec("I4")
def test_decoder_and_frame_reject_bad_fields(field: bytes) -> None:
    wire = (24 + 1).to_bytes(4, "big") + field + b"x"
    with pytest.raises(SessionIdFieldError):
        Decoder().feed(wire)
    with pytest.raises(construct.ValidationError):
        FRAME.parse(wire)


@pytest.mark.spec("I4")
def test_construct_padded_string_would_be_wrong() -> None:
    # PaddedString pads with NUL; our wire format pads with spaces and the
    # decoder rejects NUL padding, so the two can never be confused.
    nul_padded = construct.PaddedString(24, "ascii").build("abc")
    assert nul_padded.endswith(b"\x00")
    with pytest.raises(SessionIdFieldError):
        Decoder().feed((25).to_bytes(4, "big") + nul_padded + b"x")
