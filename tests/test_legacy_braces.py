"""Events stay in step for a legacy receiver that counts braces (SPEC.md [E7]).

The model is the legacy natashi client's framing, as reproduced by
fuzz/fixtures/naive_receiver.py --bug brace-count: an event ends at the `}`
that balances its first `{`, strings not understood.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fixtures.naive_receiver import brace_end, parse
from snowmux.protocol import Decoder, Event, encode_event, encode_frame, load_vectors

_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=24)
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)


@pytest.mark.spec("E7")
@given(session_id=_ids, message=_text, extra=st.lists(_text, max_size=3))
def test_a_brace_counter_ends_every_encoded_event_at_its_last_byte(
    session_id: str, message: str, extra: list[str]
) -> None:
    line = encode_event("error", session_id, message=message, x_extra={"list": extra})
    assert brace_end(bytearray(line), 0) == len(line) - 1  # the byte before the LF
    (event,) = Decoder().feed(line)
    assert isinstance(event, Event) and event.data["message"] == message


@pytest.mark.spec("E7")
def test_a_legacy_receiver_reads_a_stream_with_braces_like_a_line_reader(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = b"".join(
        [
            encode_event("error", "g1", message="no such file: no}such.wav"),
            encode_frame("g2", b"\x01\x02"),
            encode_event("ready", "g{2}", format="pcm"),
            encode_frame("g{2}", b"{}\n"),
        ]
    )
    used = parse(bytearray(stream), 0, "brace-count")
    legacy = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert used == len(stream)
    assert [(r["kind"], r["session_id"]) for r in legacy] == [
        ("event", "g1"),
        ("frame", "g2"),
        ("event", "g{2}"),
        ("frame", "g{2}"),
    ]
    assert legacy[0]["data"]["message"] == "no such file: no}such.wav"


@pytest.mark.spec("E7")
def test_the_model_does_derail_on_unescaped_braces() -> None:
    """Without [E7] the same event, written by a plain JSON encoder, breaks the counter."""
    plain = json.dumps({"type": "error", "session_id": "g1", "message": "no}such.wav"})
    line = plain.encode() + b"\n"
    assert brace_end(bytearray(line), 0) not in (-1, len(line) - 1)


@pytest.mark.spec("E7")
def test_the_legacy_safe_vector_is_what_the_encoder_writes() -> None:
    (vector,) = [
        v for v in load_vectors()["valid"] if v["name"] == "event-braces-escaped-legacy-safe"
    ]
    data = vector["messages"][0]["data"]
    fields = {k: v for k, v in data.items() if k not in ("type", "session_id")}
    stream = bytes.fromhex(vector["stream"])
    assert encode_event(data["type"], data["session_id"], **fields) == stream
    assert brace_end(bytearray(stream), 0) == len(stream) - 1
