# Strategy: untrusted JSON request bodies -> Python values, for every control
# API snowmux serves (the node's and the pool's, SPEC.md section 9, [A1]):
# pure, no aiohttp, so fuzzers drive exactly what the servers run. Every bad
# body becomes a BodyError with its 4xx status and a message a person can act
# on; nothing else may escape.
#
# The non-obvious part: Python's json module is not a validator for untrusted
# bodies. Deep nesting raises RecursionError, a 5,000-digit integer raises a
# plain ValueError (int_max_str_digits) and a 4,000-digit one parses but
# overflows float(), lone surrogates ("\ud800") parse into strings that
# cannot be encoded again, and duplicate keys silently keep the last value.
# Each is checked here, before or while parsing, with a bound that cites why.
from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_BODY_BYTES", "MAX_NESTING", "MAX_NUMBER_CHARS", "BodyError", "decode_body", "short"]

MAX_BODY_BYTES = 64 * 1024  # a control request is a URL, a few numbers and a filter set
# A control body is a small object (a filter set nests 3 levels); 32 levels
# leave room for extension fields while staying far below the recursion
# limit (a 30,000-deep body is refused by a linear scan before json recurses).
MAX_NESTING = 32
MAX_NUMBER_CHARS = 32  # a float64 needs at most 24 characters; longer is not a time or a rate


class BodyError(Exception):
    """A bad request body: ``status`` (400, 413 or 415) and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _nesting(raw: bytes) -> int:
    """The deepest bracket nesting outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def _number_text(text: str) -> float | int:
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyError(400, f"number {text[:12]}... has more than {MAX_NUMBER_CHARS} characters")
    return float(text) if any(c in text for c in ".eE") else int(text)


def _constant(name: str) -> Any:
    raise BodyError(400, f"{name} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BodyError(400, f"duplicate key {short(key)} in the body")
        result[key] = value
    return result


def short(value: Any) -> str:
    """A value as an error message may quote it: its repr, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def decode_body(raw: bytes) -> Any:
    """A JSON request body within the bounds above, or BodyError."""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyError(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    if _nesting(raw) > MAX_NESTING:
        raise BodyError(400, f"body nested deeper than {MAX_NESTING} levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(
            text,
            parse_int=_number_text,
            parse_float=_number_text,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except (json.JSONDecodeError, RecursionError):
        raise BodyError(400, "body must be a JSON object") from None
