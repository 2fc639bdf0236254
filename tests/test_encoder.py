"""Encoder: frame layout, limits, and AudioFrame validation."""

from __future__ import annotations

import pytest

from snowmux.protocol import (
    MAX_PAYLOAD_SIZE,
    AudioFrame,
    FrameTooLargeError,
    LocalProtocolError,
    encode,
    encode_frame,
    frame_header,
)


@pytest.mark.spec("F1", "I2")
def test_frame_layout_matches_the_spec_diagram() -> None:
    wire = encode_frame("123456789012345678", b"\xaa\xbb")
    assert wire[:4] == (24 + 2).to_bytes(4, "big")
    assert wire[4:28] == b"123456789012345678      "
    assert wire[28:] == b"\xaa\xbb"


def test_bytes_like_payloads() -> None:
    expected = encode_frame("a", b"abc")
    assert encode_frame("a", bytearray(b"abc")) == expected
    assert encode_frame("a", memoryview(b"xabc")[1:]) == expected
    assert frame_header("a", 3) + b"abc" == expected


@pytest.mark.spec("F3", "X4")
def test_payload_at_the_ceiling_and_above() -> None:
    assert frame_header("a", MAX_PAYLOAD_SIZE)[:4] == b"\x00\xff\xff\xff"
    with pytest.raises(FrameTooLargeError):
        frame_header("a", MAX_PAYLOAD_SIZE + 1)
    with pytest.raises(FrameTooLargeError):
        encode_frame("a", bytes(MAX_PAYLOAD_SIZE + 1))
    assert issubclass(FrameTooLargeError, LocalProtocolError)


def test_audio_frame_validates_on_construction() -> None:
    with pytest.raises(LocalProtocolError):
        AudioFrame("a b", b"")
    with pytest.raises(TypeError):
        AudioFrame("a", "text")  # type: ignore[arg-type]
    frame = AudioFrame("a", bytearray(b"xy"))
    assert frame.payload == b"xy" and isinstance(frame.payload, bytes)
    assert encode(frame) == encode_frame("a", b"xy")
    assert AudioFrame("a", memoryview(b"xy")) == AudioFrame("a", b"xy")
    with pytest.raises(AttributeError):
        frame.session_id = "b"  # type: ignore[misc]
