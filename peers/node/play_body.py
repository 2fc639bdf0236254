# Strategy: the body of POST /session/{id}/play, bytes -> PlayRequest, as a
# pure function (SPEC.md section 9, [A1]): no aiohttp, no event loop, so the
# fuzz target (fuzz/atheris_api_body.py) and the property tests drive exactly
# what the node runs. Every bad body becomes a BodyError with the 4xx status
# and a message a person can act on; nothing else may escape.
#
# The non-obvious part: Python's json module is not a validator for untrusted
# bodies. Deep nesting raises RecursionError, a 5,000-digit integer raises a
# plain ValueError (int_max_str_digits) and a 4,000-digit one parses but
# overflows float(), lone surrogates ("\ud800") parse into strings that
# cannot be encoded again, and duplicate keys silently keep the last value.
# Each is checked here, before or while parsing, with a bound that cites why.
from __future__ import annotations

import json
import math
import re
from typing import Any

from snowmux.protocol import PAYLOAD_FORMATS, PayloadFormat

from .play_request import PlayRequest

__all__ = [
    "MAX_BITRATE",
    "MAX_BODY_BYTES",
    "MAX_NESTING",
    "MAX_SECONDS",
    "MAX_VOLUME",
    "MIN_BITRATE",
    "BodyError",
    "parse_play_body",
]

MAX_BODY_BYTES = 64 * 1024  # a play request is a URL and a few numbers
# A play body is one flat object; 32 levels leave room for extension fields
# while staying far below the recursion limit (a 30,000-deep body is refused
# by a linear scan before json ever recurses).
MAX_NESTING = 32
MAX_NUMBER_CHARS = 32  # a float64 needs at most 24 characters; longer is not a time or a rate
MIN_BITRATE, MAX_BITRATE = 6_000, 510_000  # libopus's range
MAX_VOLUME = 2.0  # FFmpeg's volume filter beyond 2x clips most music
MAX_SECONDS = 1e9  # ~31 years: larger start_at/duration values are typos


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
            raise BodyError(400, f"duplicate key {_short(key)} in the body")
        result[key] = value
    return result


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _decode(raw: bytes) -> Any:
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


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BodyError(400, f'"{key}" must be a string, got {_short(value)}')
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError(400, f'"{key}" contains a lone surrogate escape') from None
    return value


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float | int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BodyError(400, f'"{key}" must be a number, got {_short(value)}')
    if not low <= value <= high:
        raise BodyError(400, f'"{key}" must be between {low:g} and {high:g}, got {_short(value)}')
    return value


def parse_play_body(raw: bytes) -> PlayRequest:
    """The PlayRequest of a play body, or BodyError; never any other exception."""
    body = _decode(raw)
    if not isinstance(body, dict):
        raise BodyError(400, "body must be a JSON object")
    url = _text(body, "url")
    if not url:
        raise BodyError(400, '"url" (a non-empty string) is required')
    audio_format = body.get("format")
    if audio_format is None:  # absent or null: the legacy default
        audio_format = PayloadFormat.PCM
    if not isinstance(audio_format, str) or audio_format not in PAYLOAD_FORMATS:
        raise BodyError(
            400, f'unknown "format" {_short(audio_format)}: use one of {", ".join(PAYLOAD_FORMATS)}'
        )
    bitrate = _number(body, "bitrate", MIN_BITRATE, MAX_BITRATE)
    if bitrate is not None and not isinstance(bitrate, int):
        raise BodyError(400, '"bitrate" must be an integer (bits per second)')
    start_at = _number(body, "start_at", 0.0, MAX_SECONDS)
    volume = _number(body, "volume", 0.0, MAX_VOLUME)
    return PlayRequest(
        url=url,
        format=PayloadFormat(audio_format),
        start_at=0.0 if start_at is None else float(start_at),
        duration=_number(body, "duration", 0.0, MAX_SECONDS),
        bitrate=bitrate,
        volume=1.0 if volume is None else float(volume),
    )
