"""Hypothesis strategies for snowmux streams, shared by fuzz/ and the conformance harness."""

from __future__ import annotations

from hypothesis import strategies as st

from snowmux.protocol import FINISH_REASONS, PAYLOAD_FORMATS, AudioFrame, Event, Message

ID_ALPHABET = "".join(map(chr, range(0x21, 0x7F)))

session_ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=24)
snowflakes = st.integers(10**16, 10**20 - 1).map(str)
any_session_id = st.one_of(snowflakes, session_ids)

# Strings that break naive event parsers: braces, quotes, escapes, newlines.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.sampled_from(["}", "{", '"', "\\", "\n", "\\n", "\u2028", "\u00e9", "x"]), max_size=20
    ).map("".join),
)

invalid_session_ids = st.one_of(
    st.just(""),
    st.text(alphabet=ID_ALPHABET, min_size=25, max_size=40),
    st.tuples(
        session_ids,
        st.sampled_from([" ", "\t", "\x00", "\x7f", "\u00e9", "\n"]),
        st.text(alphabet=ID_ALPHABET, max_size=5),
    ).map(lambda t: t[0] + t[1] + t[2]),
)

payloads = st.binary(max_size=400)


@st.composite
def frames(draw: st.DrawFn, session_id: st.SearchStrategy[str] = any_session_id) -> AudioFrame:
    return AudioFrame(draw(session_id), draw(payloads))


@st.composite
def events(draw: st.DrawFn, session_id: st.SearchStrategy[str] = any_session_id) -> Event:
    sid = draw(session_id)
    kind = draw(st.sampled_from(["ready", "progress", "finished", "error", "hello", "x-future"]))
    fields: dict[str, object] = {}
    if kind == "ready":
        fields["format"] = draw(st.sampled_from(PAYLOAD_FORMATS))
        if draw(st.booleans()):
            fields["duration"] = draw(st.floats(0, 1e6))
    elif kind == "progress":
        fields["bytes"] = draw(st.integers(0, 2**40))
        fields["playback_secs"] = draw(st.floats(0, 1e6))
    elif kind == "finished":
        fields["reason"] = draw(st.sampled_from(FINISH_REASONS))
    elif kind == "error":
        fields["message"] = draw(hostile_text)
    elif kind == "hello":
        sid = ""
        fields["protocol"] = "snowmux/1"
        fields["max_frame_length"] = draw(st.integers(24, 0xFFFFFF))
    else:
        fields["note"] = draw(hostile_text)
    return Event.create(kind, sid, **fields)


messages: st.SearchStrategy[Message] = st.one_of(frames(), events())
chunk_sizes = st.lists(st.integers(1, 64), min_size=1, max_size=20)
