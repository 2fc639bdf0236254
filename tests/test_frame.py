"""FRAME, the construct definition, and the constants derived from it."""

from __future__ import annotations

import construct
import pytest

from snowmux import protocol
from snowmux.protocol import FRAME, encode_frame


def test_constants_are_derived_from_frame() -> None:
    assert protocol.LENGTH_PREFIX_SIZE == FRAME.lengthfield.sizeof() == 4
    assert protocol.SESSION_ID_FIELD_SIZE == 24
    assert protocol.FRAME_HEADER_SIZE == 28
    assert protocol.MIN_FRAME_LENGTH == 24
    assert protocol.MAX_FRAME_LENGTH == 0x00FFFFFF
    assert protocol.MAX_PAYLOAD_SIZE == 0x00FFFFFF - 24
    assert protocol.DEFAULT_MAX_FRAME_LENGTH == 1 << 20


@pytest.mark.spec("F1")
def test_frame_parses_and_builds() -> None:
    wire = bytes.fromhex("0000001b") + b"guild-1".ljust(24) + b"\x01\x02\x03"
    parsed = FRAME.parse(wire)
    assert parsed.session_id == "guild-1"
    assert parsed.payload == b"\x01\x02\x03"
    assert FRAME.build({"session_id": "guild-1", "payload": b"\x01\x02\x03"}) == wire
    assert encode_frame("guild-1", b"\x01\x02\x03") == wire


@pytest.mark.spec("F2", "F3")
def test_frame_rejects_lengths_outside_the_protocol() -> None:
    with pytest.raises(construct.ValidationError):
        FRAME.parse(bytes.fromhex("00000017") + b"a" * 23)
    with pytest.raises(construct.ValidationError):
        FRAME.build({"session_id": "a", "payload": b"\0" * (0x00FFFFFF - 23)})


def test_interpreted_frame_rejects_a_short_frame() -> None:
    wire = encode_frame("abc", b"123456")
    with pytest.raises(construct.StreamError):
        FRAME.parse(wire[:-3])


def test_compiled_frame_accepts_a_short_frame_so_we_never_validate_with_it() -> None:
    # Pinned construct behaviour: the compiled Prefixed silently returns a
    # shorter payload. The decoder therefore never relies on FRAME.compile().
    compiled = FRAME.compile()
    wire = encode_frame("abc", b"123456")
    assert compiled.parse(wire).payload == b"123456"
    assert compiled.parse(wire[:-3]).payload == b"123"
