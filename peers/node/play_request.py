# Strategy: what a client asked to play (SPEC.md section 9, POST /play), as
# one frozen value. The HTTP API builds it, the session manager keeps it for
# status and re-announcements, and it travels to the codec worker as itself.
from __future__ import annotations

from dataclasses import dataclass, field

from snowmux.protocol import PayloadFormat

from .filters import Filters

__all__ = ["PlayRequest"]


@dataclass(frozen=True, slots=True)
class PlayRequest:
    url: str
    format: PayloadFormat = PayloadFormat.PCM
    start_at: float = 0.0
    duration: float | None = None  # the caller's hint, used when probing finds none
    bitrate: int | None = None
    volume: float = 1.0  # 0.0-5.0 (Lavalink's range; over 1 may clip)
    filters: Filters = field(default_factory=Filters)
    end_at: float | None = None  # seconds: the playback finishes there
