"""Write protocol/vectors.json: SPEC.md's test vectors in machine-readable form.

The bytes here are spelled out by hand (struct.pack and literal padding), not
produced by the package, so the vectors check the codec instead of echoing it.
Run: python tools/make_vectors.py
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

SNOWFLAKE = "123456789012345678"  # an 18-digit Discord snowflake
OUT = Path(__file__).resolve().parent.parent / "protocol" / "vectors.json"


def frame(raw_id: bytes, payload: bytes, length: int | None = None) -> bytes:
    body = raw_id + payload
    return struct.pack(">I", len(body) if length is None else length) + body


def padded(session_id: str) -> bytes:
    return session_id.encode("ascii") + b" " * (24 - len(session_id))


def fr(session_id: str, payload: bytes) -> dict[str, Any]:
    return {"kind": "frame", "session_id": session_id, "payload": payload.hex()}


def ev(data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "event", "data": data}


def valid(
    name: str, description: str, stream: bytes, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"name": name, "description": description, "stream": stream.hex(), "messages": messages}


def invalid(
    name: str,
    description: str,
    stream: bytes,
    error: str,
    offset: int,
    messages: list[dict[str, Any]] | None = None,
    at_eof: bool = False,
    options: dict[str, int] | None = None,
) -> dict[str, Any]:
    vector: dict[str, Any] = {
        "name": name,
        "description": description,
        "stream": stream.hex(),
        "error": error,
        "offset": offset,
        "at_eof": at_eof,
        "messages": messages or [],
    }
    if options:
        vector["options"] = options
    return vector


pcm_like = bytes(range(16))
ready_line = b'{"type":"ready","session_id":"123456789012345678","format":"pcm"}\n'
ready_obj = {"type": "ready", "session_id": SNOWFLAKE, "format": "pcm"}
brace_line = b'{"type":"error","session_id":"g1","message":"bad } and { and \\" and \\n"}\n'
brace_obj = {"type": "error", "session_id": "g1", "message": 'bad } and { and " and \n'}
# What a snowmux encoder writes for a message with braces ([E7]): escaped, so a
# legacy brace-counting receiver finds the same end as a line reader.
legacy_safe_line = (
    b'{"type":"error","session_id":"g1","message":"no such file: no\\u007dsuch\\u007b.wav"}\n'
)
legacy_safe_obj = {"type": "error", "session_id": "g1", "message": "no such file: no}such{.wav"}
hello_line = b'{"type":"hello","session_id":"","protocol":"snowmux/1","max_frame_length":1048576}\n'
hello_obj = {
    "type": "hello",
    "session_id": "",
    "protocol": "snowmux/1",
    "max_frame_length": 1048576,
}
good = frame(padded(SNOWFLAKE), b"\x01\x02\x03")

VALID = [
    valid(
        "one-frame",
        "one frame, 18-digit snowflake ID, 3-byte payload",
        good,
        [fr(SNOWFLAKE, b"\x01\x02\x03")],
    ),
    valid(
        "empty-payload",
        "L = 24: a frame with an empty payload is valid",
        frame(padded("a"), b""),
        [fr("a", b"")],
    ),
    valid(
        "id-1-char",
        "the shortest ID: 1 byte and 23 spaces",
        frame(padded("x"), pcm_like),
        [fr("x", pcm_like)],
    ),
    valid(
        "id-24-chars",
        "the longest ID fills the field with no padding",
        frame(b"ABCDEFGHIJKLMNOPQRSTUVWX", b"\xff"),
        [fr("ABCDEFGHIJKLMNOPQRSTUVWX", b"\xff")],
    ),
    valid(
        "id-all-printable",
        "every byte 0x21..0x7E is allowed in an ID",
        frame(padded("!~\"#{}[]\\`'|"), b""),
        [fr("!~\"#{}[]\\`'|", b"")],
    ),
    valid(
        "payload-starts-like-messages",
        "payload bytes are opaque, even 0x7B, 0x0A, 0x00",
        frame(padded("s1"), b"{\n\x00\xff\n"),
        [fr("s1", b"{\n\x00\xff\n")],
    ),
    valid("event-ready", "a ready event", ready_line, [ev(ready_obj)]),
    valid(
        "event-hello", "hello is connection-level: empty session_id", hello_line, [ev(hello_obj)]
    ),
    valid(
        "event-braces-in-string",
        "braces, quotes and newlines escaped inside a string",
        brace_line,
        [ev(brace_obj)],
    ),
    valid(
        "event-braces-escaped-legacy-safe",
        "braces inside strings written as \\u007b/\\u007d, as senders SHOULD ([E7])",
        legacy_safe_line,
        [ev(legacy_safe_obj)],
    ),
    valid(
        "event-unknown-type-and-field",
        "unknown types and fields are delivered",
        b'{"type":"x-future","session_id":"","extra":[1,{"a":null}]}\n',
        [ev({"type": "x-future", "session_id": "", "extra": [1, {"a": None}]})],
    ),
    valid(
        "event-utf8",
        "events are UTF-8: non-ASCII text in a message",
        '{"type":"error","session_id":"u7","message":"caf\u00e9 \u266b"}\n'.encode(),
        [ev({"type": "error", "session_id": "u7", "message": "caf\u00e9 \u266b"})],
    ),
    valid(
        "event-crlf",
        "JSON whitespace (CR) before the newline is allowed",
        b'{"type":"finished","session_id":"s","reason":"stopped"} \r\n',
        [ev({"type": "finished", "session_id": "s", "reason": "stopped"})],
    ),
    valid(
        "separators",
        "bare newlines between messages are skipped",
        b"\n\n" + good + b"\n" + ready_line + b"\n",
        [fr(SNOWFLAKE, b"\x01\x02\x03"), ev(ready_obj)],
    ),
    valid(
        "interleaved",
        "two sessions interleaved with events, order kept",
        ready_line
        + frame(padded(SNOWFLAKE), b"A1")
        + frame(padded("guild-2"), b"B1")
        + frame(padded(SNOWFLAKE), b"A2")
        + b'{"type":"finished","session_id":"guild-2","reason":"replaced"}\n',
        [
            ev(ready_obj),
            fr(SNOWFLAKE, b"A1"),
            fr("guild-2", b"B1"),
            fr(SNOWFLAKE, b"A2"),
            ev({"type": "finished", "session_id": "guild-2", "reason": "replaced"}),
        ],
    ),
    valid("empty-stream", "no bytes at all is a complete, empty stream", b"", []),
]

INVALID = [
    invalid("garbage-byte", "0xFF cannot start a message", b"\xff", "UnexpectedByteError", 0),
    invalid("space-at-boundary", "a space is not a separator", b"\n \n", "UnexpectedByteError", 1),
    invalid(
        "cr-at-boundary",
        "a bare CR is not a separator",
        good + b"\r\n",
        "UnexpectedByteError",
        31,
        [fr(SNOWFLAKE, b"\x01\x02\x03")],
    ),
    invalid(
        "garbage-after-frame",
        "messages before the fault are still delivered",
        good + b"G",
        "UnexpectedByteError",
        31,
        [fr(SNOWFLAKE, b"\x01\x02\x03")],
    ),
    invalid(
        "nonzero-high-byte",
        "L >= 2^24 starts with a non-zero byte: not a frame",
        frame(padded("a"), b"", length=0x01000018),
        "UnexpectedByteError",
        0,
    ),
    invalid(
        "length-below-24",
        "L = 23 cannot hold the ID field; detected from the 4 length bytes",
        struct.pack(">I", 23),
        "FrameLengthError",
        0,
    ),
    invalid("length-zero", "L = 0", struct.pack(">I", 0) + b"\n", "FrameLengthError", 0),
    invalid(
        "length-above-limit",
        "L = 1 MiB + 1 exceeds the default max_frame_length; no body needed",
        struct.pack(">I", (1 << 20) + 1),
        "FrameLengthError",
        0,
    ),
    invalid(
        "length-above-configured-limit",
        "L above a configured max_frame_length of 64",
        frame(padded("a"), b"x" * 41),
        "FrameLengthError",
        0,
        options={"max_frame_length": 64},
    ),
    invalid(
        "length-above-limit-after-frame",
        "the offset is counted from the stream start",
        good + struct.pack(">I", 0x00FFFFFF),
        "FrameLengthError",
        31,
        [fr(SNOWFLAKE, b"\x01\x02\x03")],
    ),
    invalid(
        "id-empty", "an ID field of 24 spaces", frame(b" " * 24, b"x"), "SessionIdFieldError", 4
    ),
    invalid(
        "id-nul-padding",
        "NUL padding (construct PaddedString) is rejected",
        frame(b"abc" + b"\x00" * 21, b"x"),
        "SessionIdFieldError",
        7,
    ),
    invalid(
        "id-inner-space",
        "a space inside the ID",
        frame(padded("ab cd"), b"x"),
        "SessionIdFieldError",
        6,
    ),
    invalid(
        "id-leading-space",
        "padding is on the right only",
        frame(b" " + padded("abc")[:23], b"x"),
        "SessionIdFieldError",
        4,
    ),
    invalid(
        "id-non-ascii",
        "a non-ASCII byte",
        frame(b"ab\xc3\xa9" + b" " * 20, b"x"),
        "SessionIdFieldError",
        6,
    ),
    invalid(
        "id-control",
        "a control byte (TAB)",
        frame(b"ab\tc" + b" " * 20, b"x"),
        "SessionIdFieldError",
        6,
    ),
    invalid("id-del", "DEL 0x7F", frame(b"a\x7f" + b" " * 22, b"x"), "SessionIdFieldError", 5),
    invalid("event-not-json", "an event line that is not JSON", b'{"type":\n', "EventError", 0),
    invalid(
        "event-trailing-garbage",
        "one object per line",
        b'{"type":"x","session_id":""}x\n',
        "EventError",
        0,
    ),
    invalid("event-no-type", "type is required", b'{"session_id":"a"}\n', "EventError", 0),
    invalid(
        "event-type-not-string",
        "type must be a string",
        b'{"type":1,"session_id":"a"}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-no-session-id", "session_id is required", b'{"type":"ready"}\n', "EventError", 0
    ),
    invalid(
        "event-empty-session-for-session-event",
        '"" only for connection-level events',
        b'{"type":"ready","session_id":""}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-bad-session-id",
        "session_id in an event obeys the ID rules",
        b'{"type":"progress","session_id":"a b"}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-long-session-id",
        "a 25-character session_id is not truncated",
        b'{"type":"progress","session_id":"1234567890123456789012345"}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-duplicate-key",
        "duplicate keys are ambiguous",
        b'{"type":"ready","session_id":"a","session_id":"b"}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-nan",
        "NaN is not JSON",
        b'{"type":"ready","session_id":"a","duration":NaN}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-bad-format",
        "ready.format must be a known format",
        b'{"type":"ready","session_id":"a","format":"mp3"}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-bad-reason",
        "finished.reason must be a known reason",
        b'{"type":"finished","session_id":"a","reason":"bored"}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-error-without-message",
        "error requires message",
        b'{"type":"error","session_id":"a"}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-invalid-utf8",
        "events are UTF-8",
        b'{"type":"error","session_id":"a","message":"\xff"}\n',
        "EventError",
        0,
    ),
    invalid(
        "event-after-frame",
        "offset of the event start",
        good + b'{"type":"ready"}\n',
        "EventError",
        31,
        [fr(SNOWFLAKE, b"\x01\x02\x03")],
    ),
    invalid(
        "event-too-long",
        "no newline within max_event_length (64 here)",
        b'{"type":"error","session_id":"a","message":"' + b"x" * 64,
        "EventTooLongError",
        0,
        options={"max_event_length": 64},
    ),
    invalid(
        "event-exactly-too-long",
        "the limit counts the newline: 65 bytes with it is too long",
        b'{"type":"x","session_id":"","p":"' + b"y" * 29 + b'"}\n',
        "EventTooLongError",
        0,
        options={"max_event_length": 64},
    ),
    invalid(
        "eof-in-length",
        "EOF after 2 length bytes",
        good + b"\x00\x00",
        "TruncatedStreamError",
        31,
        [fr(SNOWFLAKE, b"\x01\x02\x03")],
        at_eof=True,
    ),
    invalid(
        "eof-in-id", "EOF inside the ID field", good[:10], "TruncatedStreamError", 0, at_eof=True
    ),
    invalid(
        "eof-in-payload",
        "EOF inside the payload",
        good[:-1],
        "TruncatedStreamError",
        0,
        at_eof=True,
    ),
    invalid(
        "eof-in-event",
        "EOF before the event's newline",
        ready_line[:-1],
        "TruncatedStreamError",
        0,
        at_eof=True,
    ),
]


def main() -> None:
    document = {
        "protocol": "snowmux/1",
        "description": "Test vectors for SPEC.md. Each stream is hex. A valid stream decodes "
        "to exactly 'messages' and ends on a boundary. An invalid stream makes a decoder raise "
        "'error' at stream offset 'offset' (at end of stream when 'at_eof' is true), after "
        "delivering 'messages'. 'options' override the decoder defaults.",
        "defaults": {"max_frame_length": 1 << 20, "max_event_length": 64 * 1024},
        "valid": VALID,
        "invalid": INVALID,
    }
    OUT.write_text(json.dumps(document, indent=1, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
