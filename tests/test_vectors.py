"""The shipped test vectors (protocol/vectors.json), run against the decoder."""

from __future__ import annotations

from typing import Any

import pytest

from snowmux import protocol
from snowmux.protocol import Decoder, load_vectors
from snowmux.protocol.testing import chunked, collect_until_error, decode_three_ways

VECTORS = load_vectors()


def expected(messages: list[dict[str, Any]]) -> list[tuple[str, str, object]]:
    out: list[tuple[str, str, object]] = []
    for m in messages:
        if m["kind"] == "frame":
            out.append(("frame", m["session_id"], bytes.fromhex(m["payload"])))
        else:
            out.append(("event", m["data"]["session_id"], m["data"]))
    return out


def test_vectors_file_is_shipped_and_complete() -> None:
    assert VECTORS["protocol"] == protocol.PROTOCOL_VERSION
    assert VECTORS["defaults"] == {
        "max_frame_length": protocol.DEFAULT_MAX_FRAME_LENGTH,
        "max_event_length": protocol.DEFAULT_MAX_EVENT_LENGTH,
    }
    classes = {v["error"] for v in VECTORS["invalid"]}
    # every remote error class the decoder can raise has at least one vector
    assert classes == {
        "UnexpectedByteError",
        "FrameLengthError",
        "SessionIdFieldError",
        "EventError",
        "EventTooLongError",
        "TruncatedStreamError",
    }


@pytest.mark.spec("B1", "E1", "E5", "I2", "F2")
@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vector(vector: dict[str, Any]) -> None:
    stream = bytes.fromhex(vector["stream"])
    assert decode_three_ways(stream) == expected(vector["messages"])


@pytest.mark.spec("B2", "F4", "I4", "E2", "E3", "E6", "X1", "X2", "X3", "L2")
@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
@pytest.mark.parametrize("chunk", [0, 1, 3], ids=["whole", "bytewise", "3-byte"])
def test_invalid_vector(vector: dict[str, Any], chunk: int) -> None:
    stream = bytes.fromhex(vector["stream"])
    decoder = Decoder(**vector.get("options", {}))
    chunks = [stream] if chunk == 0 else list(chunked(stream, [chunk]))
    got, error = collect_until_error(chunks, decoder)
    assert error is not None, "the stream must be rejected"
    assert type(error).__name__ == vector["error"]
    assert isinstance(error, getattr(protocol, vector["error"]))
    assert error.offset == vector["offset"]
    assert got == expected(vector["messages"])
    # raised while feeding, or only at EOF, as the vector says
    at_eof = isinstance(error, protocol.TruncatedStreamError)
    assert at_eof == vector["at_eof"]
    # the decoder stays failed: every later call raises the same error
    with pytest.raises(type(error)):
        decoder.feed(b"\n")
    with pytest.raises(type(error)):
        decoder.feed_eof()
