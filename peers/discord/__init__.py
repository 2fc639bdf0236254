"""snowmux for discord.py bots: play a session into a voice client.

Needs the ``discord`` extra: ``pip install 'snowmux[discord]'``.
"""

from __future__ import annotations

try:
    import discord as _discord  # absolute: the third-party discord.py, not this package
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("snowmux.discord needs discord.py: pip install 'snowmux[discord]'") from exc

from .playback import (
    READY_TIMEOUT_SECONDS,
    RESUME_HEADROOM_FRAMES,
    Controller,
    pause,
    play,
    resume,
    session_id_for,
    stop,
)
from .source import (
    MAX_QUEUED_FRAMES,
    EndReason,
    FrameSource,
    PlaybackError,
    SessionAudioSource,
    SourceStats,
)

del _discord

__all__ = [
    "MAX_QUEUED_FRAMES",
    "READY_TIMEOUT_SECONDS",
    "RESUME_HEADROOM_FRAMES",
    "Controller",
    "EndReason",
    "FrameSource",
    "PlaybackError",
    "SessionAudioSource",
    "SourceStats",
    "pause",
    "play",
    "resume",
    "session_id_for",
    "stop",
]
