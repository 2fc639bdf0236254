# Strategy: where a NodePool places a new session (README "Scaling out"):
# the up node with the lowest penalty, Lavalink-style. The penalty adds the
# sessions playing on the node to exponential terms for CPU load and for the
# frames the node sent late or dropped during the last minute, so a node is
# avoided sharply once it starts to struggle, long before a plain session
# count would notice. Pure arithmetic over a node's /health: no I/O here.
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..audio_format import FRAME_SECONDS

__all__ = ["NodeLoad", "penalty"]

# Lavalink's frame terms are per minute of one player: 3,000 frames of 20 ms.
FRAMES_PER_MINUTE = round(60 / FRAME_SECONDS)


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """What /health tells about a node's load (plus the pool's own placements)."""

    playing: int = 0
    cpu_load: float = 0.0  # cores in use / core count, over the last 10 s
    frames_late: int = 0  # in the last minute
    frames_dropped: int = 0  # in the last minute

    @classmethod
    def from_health(cls, health: Mapping[str, Any]) -> NodeLoad:
        sessions = health.get("sessions") or {}
        minute = health.get("last_minute") or {}
        active = int(sessions.get("active", 0) or 0)
        paused = int(sessions.get("paused", 0) or 0)
        return cls(
            playing=max(0, active - paused),
            cpu_load=float(health.get("cpu_load", 0.0) or 0.0),
            frames_late=int(minute.get("frames_late", 0) or 0),
            frames_dropped=int(minute.get("frames_dropped", 0) or 0),
        )


def penalty(load: NodeLoad) -> float:
    """Lower is better. 0 for an idle node; see README "Scaling out" for the reasons."""
    # One point per playing session: equal nodes share sessions evenly.
    sessions = float(load.playing)
    # 1.05^(100 x load) x 10 - 10, Lavalink's CPU term: ~6 at 10 %, ~121 at 50 %,
    # ~1,305 at 100 %: a busy node is avoided long before it is saturated.
    cpu = math.pow(1.05, 100 * load.cpu_load) * 10 - 10
    # Lavalink's frame terms: the share of the node's frames (a minute of each
    # playing session) that were dropped or late, as Lavalink averages its frame
    # deficit per player. Dropped frames (a listener lost audio) weigh twice
    # late ones (a listener's jitter buffer shrank).
    minute_frames = FRAMES_PER_MINUTE * max(1, load.playing)
    dropped_share = min(1.0, load.frames_dropped / minute_frames)
    late_share = min(1.0, load.frames_late / minute_frames)
    dropped = math.pow(1.03, 500 * dropped_share) * 600 - 600
    late = math.pow(1.03, 500 * late_share) * 300 - 300
    return sessions + cpu + dropped + late
