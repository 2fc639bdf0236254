# Strategy: the body of POST /session/{id}/play (and /queue), bytes ->
# PlayRequest, as a pure function (SPEC.md section 9, [A1]): no aiohttp, no
# event loop, so the fuzz target (fuzz/atheris_api_body.py) and the property
# tests drive exactly what the node runs. The JSON itself is decoded by
# snowmux.json_body, whose bounds make Python's json module safe on
# untrusted bytes; here each field is checked and every bad one becomes a
# BodyError (400) that names it.
from __future__ import annotations

import math
from typing import Any, NamedTuple

from snowmux.protocol import PAYLOAD_FORMATS, PayloadFormat

from ..json_body import MAX_BODY_BYTES, MAX_NESTING, BodyError, decode_body, short
from .controls import NO_END, ControlError, parse_crossfade, parse_end_at, parse_filters_field
from .filters import MAX_VOLUME, Filters
from .play_request import PlayRequest

__all__ = [
    "MAX_BITRATE",
    "MAX_BODY_BYTES",
    "MAX_NESTING",
    "MAX_SECONDS",
    "MAX_VOLUME",
    "MIN_BITRATE",
    "BodyError",
    "PlayBody",
    "decode_body",
    "parse_play_body",
    "parse_play_fields",
]

MIN_BITRATE, MAX_BITRATE = 6_000, 510_000  # libopus's range
MAX_SECONDS = 1e9  # ~31 years: larger start_at/duration values are typos


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BodyError(400, f'"{key}" must be a string, got {short(value)}')
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
        raise BodyError(400, f'"{key}" must be a number, got {short(value)}')
    if not low <= value <= high:
        raise BodyError(400, f'"{key}" must be between {low:g} and {high:g}, got {short(value)}')
    return value


class PlayBody(NamedTuple):
    """A play or queue body: the request, its ``crossfade_ms`` and whether it named a format."""

    request: PlayRequest
    crossfade_ms: int | None
    format_given: bool


def parse_play_body(raw: bytes) -> PlayRequest:
    """The PlayRequest of a play body, or BodyError; never any other exception."""
    return parse_play_fields(raw).request


def parse_play_fields(raw: bytes) -> PlayBody:
    """A play or queue body (SPEC.md section 9), or BodyError; never any other exception."""
    body = decode_body(raw)
    if not isinstance(body, dict):
        raise BodyError(400, "body must be a JSON object")
    url = _text(body, "url")
    if not url:
        raise BodyError(400, '"url" (a non-empty string) is required')
    audio_format = body.get("format")
    format_given = audio_format is not None
    if audio_format is None:  # absent or null: the legacy default
        audio_format = PayloadFormat.PCM
    if not isinstance(audio_format, str) or audio_format not in PAYLOAD_FORMATS:
        raise BodyError(
            400, f'unknown "format" {short(audio_format)}: use one of {", ".join(PAYLOAD_FORMATS)}'
        )
    bitrate = _number(body, "bitrate", MIN_BITRATE, MAX_BITRATE)
    if bitrate is not None and not isinstance(bitrate, int):
        raise BodyError(400, '"bitrate" must be an integer (bits per second)')
    start_at = _number(body, "start_at", 0.0, MAX_SECONDS)
    start = 0.0 if start_at is None else float(start_at)
    volume = _number(body, "volume", 0.0, MAX_VOLUME)
    try:
        filters = parse_filters_field(body)
        end_at = parse_end_at(body)
        crossfade_ms = parse_crossfade(body)
    except ControlError as exc:
        raise BodyError(400, str(exc)) from None
    if end_at == NO_END:  # null: no end, as when absent
        end_at = None
    if end_at is not None and end_at <= start:
        raise BodyError(400, f'"end_at" ({end_at:g}) must be after "start_at" ({start:g})')
    request = PlayRequest(
        url=url,
        format=PayloadFormat(audio_format),
        start_at=start,
        duration=_number(body, "duration", 0.0, MAX_SECONDS),
        bitrate=bitrate,
        volume=1.0 if volume is None else float(volume),
        filters=filters if filters is not None else Filters(),
        end_at=end_at,
    )
    return PlayBody(request, crossfade_ms, format_given)
