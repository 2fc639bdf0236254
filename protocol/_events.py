# Strategy: the event schema of SPEC.md section "Events": JSON line <-> dict.
#
# One schema check serves both directions: the encoder refuses to send what
# the decoder would refuse to accept. Forward compatibility is deliberate:
# unknown types and unknown fields pass untouched; only the *known* fields of
# the *known* types are typed. Parsing is stricter than Python's json module
# by default: no NaN/Infinity, no duplicate keys (two parsers could route one
# event to two different sessions), strictly UTF-8. Serialising, `{` and `}`
# inside strings are written as \u007b and \u007d (SPEC.md [E7]): still the
# same JSON, but a legacy receiver that counts braces stays in step.
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from ._frame import MAX_FRAME_LENGTH, MIN_FRAME_LENGTH
from ._session_id import MAX_SESSION_ID_LENGTH, IdFieldProblem, parse_session_id_field

__all__ = [
    "CONNECTION_LEVEL_TYPES",
    "DEFAULT_MAX_EVENT_LENGTH",
    "EVENT_START",
    "FINISH_REASONS",
    "PAYLOAD_FORMATS",
    "PROTOCOL_VERSION",
    "SEPARATOR",
    "EventProblem",
    "FinishReason",
    "PayloadFormat",
    "event_problem",
    "parse_event_line",
    "serialize_event",
]

PROTOCOL_VERSION = "snowmux/1"


class PayloadFormat(StrEnum):
    """What the audio bytes of a playback are (SPEC.md section "Payload formats")."""

    PCM = "pcm"
    OPUS = "opus"
    WEB = "web"
    OPUS_PACKETS = "opus-packets"


class FinishReason(StrEnum):
    """Why a playback ended without an error (the ``reason`` of ``finished``)."""

    FINISHED = "finished"
    STOPPED = "stopped"
    REPLACED = "replaced"


# The wire values, in the order SPEC.md lists them.
PAYLOAD_FORMATS: tuple[str, ...] = tuple(PayloadFormat)
FINISH_REASONS: tuple[str, ...] = tuple(FinishReason)
EVENT_START = ord("{")
SEPARATOR = ord("\n")
# 64 KiB: events are control messages of a few hundred bytes; the bound only
# has to fit an error message quoting a long URL, and caps what a peer that
# never sends a newline can make us buffer.
DEFAULT_MAX_EVENT_LENGTH = 64 * 1024
# Types that speak for the connection, not a session: session_id may be "".
CONNECTION_LEVEL_TYPES = frozenset({"hello", "error"})


class EventProblem(Exception):
    """Why an event (line or dict) is invalid; turned into a typed error by callers."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _non_negative_number(value: Any) -> str | None:
    return None if _is_number(value) and value >= 0 else "a non-negative number"


def _non_negative_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else "a non-negative integer"


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string"


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else "one of " + ", ".join(map(repr, choices))

    return check


def _frame_length(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and MIN_FRAME_LENGTH <= value <= MAX_FRAME_LENGTH:
        return None
    return f"an integer from {MIN_FRAME_LENGTH} to {MAX_FRAME_LENGTH}"


_Check = Callable[[Any], str | None]
# type -> field -> (check, required)
_SCHEMA: dict[str, dict[str, tuple[_Check, bool]]] = {
    "ready": {
        "format": (_one_of(PAYLOAD_FORMATS), False),
        "duration": (_non_negative_number, False),
        "position_secs": (_non_negative_number, False),
    },
    "progress": {
        "bytes": (_non_negative_int, False),
        "playback_secs": (_non_negative_number, False),
    },
    "finished": {"reason": (_one_of(FINISH_REASONS), False)},
    "seeked": {"position_secs": (_non_negative_number, True)},
    "stuck": {"threshold_ms": (_non_negative_int, True)},
    "track_start": {
        "index": (_non_negative_int, True),
        "url": (_string, False),
        "duration": (_non_negative_number, False),
        "sample_offset": (_non_negative_int, False),
    },
    "track_end": {
        "index": (_non_negative_int, True),
        "reason": (_one_of(("finished", "skipped", "error")), False),
        "message": (_string, False),
    },
    "error": {"message": (_string, True)},
    "hello": {
        "protocol": (_string, True),
        "max_frame_length": (_frame_length, False),
    },
}


def event_problem(obj: Mapping[str, Any]) -> str | None:
    """Return why ``obj`` is not a valid event, or None if it is."""
    event_type = obj.get("type")
    if not isinstance(event_type, str):
        return '"type" must be a string' if "type" in obj else 'missing "type"'
    if "session_id" not in obj:
        return 'missing "session_id"'
    session_id = obj["session_id"]
    if not isinstance(session_id, str):
        return '"session_id" must be a string'
    if session_id == "":
        if event_type in _SCHEMA and event_type not in CONNECTION_LEVEL_TYPES:
            return f'"session_id" must not be empty in a {event_type!r} event'
    else:
        problem = _session_id_problem(session_id)
        if problem:
            return f'"session_id" {session_id[:40]!r} is invalid: {problem}'
    for field, (check, required) in _SCHEMA.get(event_type, {}).items():
        if field not in obj:
            if required:
                return f'{event_type!r} event lacks the required field "{field}"'
            continue
        expected = check(obj[field])
        if expected:
            return (
                f'field "{field}" of a {event_type!r} event must be {expected}, got {obj[field]!r}'
            )
    return None


def _session_id_problem(session_id: str) -> str | None:
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        return f"longer than {MAX_SESSION_ID_LENGTH} characters"
    if not session_id.isascii():
        return "non-ASCII characters"
    try:
        field = session_id.encode("ascii")
        if parse_session_id_field(field) != session_id:
            return "trailing spaces"
    except IdFieldProblem as problem:
        return problem.reason
    return None


def _reject_constant(name: str) -> Any:
    raise EventProblem(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise EventProblem(f"duplicate key {duplicate!r}")
    return obj


def parse_event_line(line: bytes) -> dict[str, Any]:
    """Parse one event line (without its newline) into a validated dict."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventProblem(f"not valid UTF-8 at line index {exc.start}") from None
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise EventProblem(f"not valid JSON: {exc.msg} at line index {exc.pos}") from None
    except RecursionError:
        raise EventProblem("JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise EventProblem("an event must be a JSON object")
    problem = event_problem(obj)
    if problem:
        raise EventProblem(problem)
    return obj


def serialize_event(obj: Mapping[str, Any]) -> bytes:
    """One event line, newline included; raise EventProblem if it is invalid."""
    problem = event_problem(obj)
    if problem:
        raise EventProblem(problem)
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        if text.count("{") + text.count("}") > 2:  # more than the object's own pair
            text = _STRING.sub(_escape_braces, text)
        line = text.encode("utf-8") + b"\n"
    except (TypeError, ValueError) as exc:  # unserialisable value, NaN, lone surrogate
        raise EventProblem(f"cannot encode as JSON: {exc}") from None
    return line


# A JSON string token as json.dumps writes it (escapes are backslash pairs).
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _escape_braces(match: re.Match[str]) -> str:
    """Braces inside one string token -> \\u escapes ([E7]); structural braces are outside."""
    return match.group().replace("{", "\\u007b").replace("}", "\\u007d")
