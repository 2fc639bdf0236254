# Strategy: the live controls of a playback (SPEC.md section 9, PATCH
# /session/{id}) as one frozen value, and the parsing of a PATCH body into
# it. Parsing is all-or-nothing: every field is checked before anything is
# applied, so a 400 (whose message names the field) changes nothing. The
# value travels to the codec worker as itself (codec_messages.ControlRequest);
# `paused` is the node's business and the worker ignores it.
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .filters import MAX_VOLUME, FilterError, Filters, parse_filters
from .queue import MAX_CROSSFADE_MS

__all__ = [
    "MAX_POSITION",
    "MAX_VOLUME",
    "NO_END",
    "ControlError",
    "PlaybackControl",
    "parse_control",
    "parse_end_at",
    "parse_volume",
]

MAX_POSITION = 1e9  # seconds; the same bound as start_at, far beyond any media
NO_END = math.inf  # end_at: null in a PATCH clears the end position
PATCH_FIELDS = ("position", "volume", "paused", "filters", "end_at", "crossfade_ms")


class ControlError(ValueError):
    """A bad control value; the message names the field (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class PlaybackControl:
    """What a PATCH changes; None leaves a field as it is."""

    position: float | None = None  # seek, seconds (sample-accurate)
    volume: float | None = None  # 0.0-5.0, ramped over the first frame after the change
    paused: bool | None = None
    filters: Filters | None = None  # replaces the whole set
    end_at: float | None = None  # seconds; NO_END clears it
    crossfade_ms: int | None = None  # between queued tracks, 0-12000

    @property
    def empty(self) -> bool:
        return self.paused is None and not self.for_worker

    @property
    def for_worker(self) -> bool:
        """Whether the codec worker has anything to change."""
        fields = (self.position, self.volume, self.filters, self.end_at, self.crossfade_ms)
        return any(value is not None for value in fields)


def _seconds(body: dict[str, Any], key: str) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ControlError(f'"{key}" must be a number of seconds')
    if not 0.0 <= value <= MAX_POSITION:
        raise ControlError(f'"{key}" must be between 0 and {MAX_POSITION:g}, got {value}')
    return float(value)


def parse_volume(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ControlError('"volume" must be a number')
    if not 0.0 <= value <= MAX_VOLUME:
        raise ControlError(f'"volume" must be between 0 and {MAX_VOLUME:g}, got {value}')
    return float(value)


def parse_end_at(body: dict[str, Any]) -> float | None:
    """``end_at`` of a play or PATCH body: None when absent, NO_END when null."""
    if "end_at" not in body:
        return None
    if body["end_at"] is None:
        return NO_END
    return _seconds(body, "end_at")


def parse_crossfade(body: dict[str, Any]) -> int | None:
    value = body.get("crossfade_ms")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ControlError('"crossfade_ms" must be a number of milliseconds')
    if not 0 <= value <= MAX_CROSSFADE_MS:
        raise ControlError(f'"crossfade_ms" must be between 0 and {MAX_CROSSFADE_MS}, got {value}')
    return round(value)


def parse_filters_field(body: dict[str, Any]) -> Filters | None:
    if "filters" not in body:
        return None
    try:
        return parse_filters(body["filters"])
    except FilterError as exc:
        raise ControlError(str(exc)) from None


def parse_control(body: Any) -> PlaybackControl:
    """A PATCH body -> PlaybackControl; ControlError names the first bad field."""
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    for key in body:
        if key not in PATCH_FIELDS:
            raise ControlError(f'unknown field "{key}": use {", ".join(PATCH_FIELDS)}')
    paused = body.get("paused")
    if paused is not None and not isinstance(paused, bool):
        raise ControlError('"paused" must be true or false')
    control = PlaybackControl(
        position=_seconds(body, "position") if body.get("position") is not None else None,
        volume=parse_volume(body["volume"]) if body.get("volume") is not None else None,
        paused=paused,
        filters=parse_filters_field(body),
        end_at=parse_end_at(body),
        crossfade_ms=parse_crossfade(body),
    )
    if control.empty:
        raise ControlError(f"nothing to change: give any of {', '.join(PATCH_FIELDS)}")
    return control
