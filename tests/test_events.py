"""SPEC.md "Events": encoder escaping, schema, forward compatibility, value types."""

from __future__ import annotations

import json

import pytest

from snowmux.protocol import (
    Decoder,
    Event,
    EventEncodeError,
    EventError,
    EventTooLongError,
    LocalProtocolError,
    encode,
    encode_event,
)


@pytest.mark.spec("E4")
def test_encode_event_escapes_and_has_no_inner_newline() -> None:
    hostile = 'a "quoted" }{ value\nwith newline \\ and \u2028 and caf\u00e9'
    line = encode_event("error", "123456789012345678", message=hostile)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line.startswith(b"{")
    assert json.loads(line)["message"] == hostile
    (event,) = Decoder().feed(line)
    assert event.data["message"] == hostile


def test_encode_event_is_compact_utf8_json() -> None:
    line = encode_event("ready", "g1", format="pcm", duration=1.5)
    assert line == b'{"type":"ready","session_id":"g1","format":"pcm","duration":1.5}\n'


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        (("ready", ""), {}),
        (("ready", "a b"), {}),
        (("ready", "x" * 25), {}),
        (("ready", "a"), {"format": "mp3"}),
        (("ready", "a"), {"duration": -1}),
        (("ready", "a"), {"duration": float("nan")}),
        (("progress", "a"), {"bytes": 1.5}),
        (("finished", "a"), {"reason": "bored"}),
        (("error", "a"), {}),
        (("error", "a"), {"message": 3}),
        (("hello", ""), {}),
        (("hello", ""), {"protocol": "snowmux/1", "max_frame_length": 10}),
        (("x", "a"), {"blob": object()}),
        ((3, "a"), {}),
    ],
)
@pytest.mark.spec("E3", "E6", "X4")
def test_encoder_refuses_invalid_events(
    args: tuple[object, str], fields: dict[str, object]
) -> None:
    with pytest.raises(EventEncodeError):
        encode_event(*args, **fields)  # type: ignore[arg-type]
    assert issubclass(EventEncodeError, LocalProtocolError)


@pytest.mark.spec("L3")
def test_encoder_refuses_events_above_the_default_limit() -> None:
    with pytest.raises(EventEncodeError):
        encode_event("error", "a", message="x" * 70_000)


@pytest.mark.spec("E5")
def test_unknown_types_and_fields_are_delivered() -> None:
    line = encode_event("x-lyrics", "a", text="la la", future={"nested": [1, 2]})
    (event,) = Decoder().feed(line)
    assert event.type == "x-lyrics" and event.data["future"] == {"nested": [1, 2]}
    (ready,) = Decoder().feed(encode_event("ready", "a", format="web", extra=True))
    assert ready.get("extra") is True and ready.get("missing", 7) == 7


@pytest.mark.spec("E3")
def test_connection_level_events_may_have_an_empty_session() -> None:
    for line in (
        encode_event("hello", "", protocol="snowmux/2"),
        encode_event("error", "", message="node shutting down"),
        encode_event("x-unknown", ""),
    ):
        (event,) = Decoder().feed(line)
        assert event.session_id == ""


def test_events_are_value_types() -> None:
    event = Event.create("finished", "a", reason="stopped")
    assert event == Event(
        "finished", "a", {"type": "finished", "session_id": "a", "reason": "stopped"}
    )
    assert encode(event) == encode_event("finished", "a", reason="stopped")
    with pytest.raises(AttributeError):
        event.type = "ready"  # type: ignore[misc]
    with pytest.raises(EventEncodeError):
        Event("ready", "a", {"type": "finished", "session_id": "a"})
    with pytest.raises(EventEncodeError):
        Event.create("ready", "", format="pcm")


@pytest.mark.spec("L2")
def test_event_length_limit_includes_the_newline() -> None:
    line = encode_event("x", "", pad="y" * 20)
    assert len(line) == 58
    (event,) = Decoder(max_event_length=58).feed(line)
    assert event.type == "x"
    with pytest.raises(EventTooLongError):
        Decoder(max_event_length=57).feed(line)
    assert issubclass(EventTooLongError, EventError)


@pytest.mark.spec("L2")
def test_event_too_long_is_detected_without_waiting_for_the_newline() -> None:
    decoder = Decoder(max_event_length=100)
    decoder.feed(b'{"type":"x","session_id":"","p":"' + b"z" * 40)
    with pytest.raises(EventTooLongError):
        decoder.feed(b"z" * 60)
    assert decoder.buffered <= 100
