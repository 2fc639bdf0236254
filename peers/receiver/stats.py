# Strategy: per-session counters a bot developer needs to diagnose stutter
# (SPEC.md section 9 says what a node promises; these measure it): frames, bytes, kb/s, gaps between
# frames above 100 ms (the legacy client's stutter log) and interruptions of
# the connection during a playback. The router updates frames, bytes and gaps
# inline (hot path); kb/s is derived from the byte counter when displayed,
# so it costs nothing per frame.
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..defaults import STUTTER_GAP_SECONDS

__all__ = ["STUTTER_GAP_SECONDS", "SessionStats"]

RATE_WINDOW_SECONDS = 1.0  # kb/s is re-measured at most once a second


@dataclass(slots=True)
class SessionStats:
    session_id: str
    state: str = "unknown"
    format: str | None = None
    frames: int = 0
    bytes: int = 0
    stutters: int = 0
    max_gap_ms: float = 0.0
    interruptions: int = 0
    playbacks: int = 0
    last_event: str = ""
    last_frame_at: float = math.inf  # inf: no frame yet in this playback
    _rate_mark: tuple[float, int] = field(default_factory=lambda: (time.monotonic(), 0), repr=False)
    _rate: float = field(default=0.0, repr=False)

    def on_event(self, event_type: str, data: dict[str, object]) -> None:
        self.last_event = event_type
        if event_type == "ready":
            self.playbacks += 1
            self.state = "playing"
            fmt = data.get("format")
            self.format = fmt if isinstance(fmt, str) else self.format
            self.last_frame_at = math.inf  # a new playback: no gap across playbacks
        elif event_type == "finished":
            reason = data.get("reason")
            self.state = reason if isinstance(reason, str) else "finished"
            self.last_frame_at = math.inf
        elif event_type == "error":
            self.state = "error"
            self.last_frame_at = math.inf

    def on_interrupted(self) -> None:
        if self.state == "playing":
            self.interruptions += 1
            self.state = "interrupted"
        self.last_frame_at = math.inf

    def kbps(self, now: float | None = None) -> float:
        """Payload kb/s, re-measured at most once per RATE_WINDOW_SECONDS."""
        now = time.monotonic() if now is None else now
        mark_at, mark_bytes = self._rate_mark
        elapsed = now - mark_at
        if elapsed >= RATE_WINDOW_SECONDS:
            self._rate = (self.bytes - mark_bytes) * 8 / 1000 / elapsed
            self._rate_mark = (now, self.bytes)
        return self._rate

    def as_dict(self) -> dict[str, object]:
        return {
            "session_id": self.session_id,
            "state": self.state,
            "format": self.format,
            "frames": self.frames,
            "bytes": self.bytes,
            "kbps": round(self.kbps(), 1),
            "stutters": self.stutters,
            "max_gap_ms": round(self.max_gap_ms, 1),
            "interruptions": self.interruptions,
            "playbacks": self.playbacks,
            "last_event": self.last_event,
        }
