# Strategy: a guild's playback on the node and in discord.py's player, kept
# in step. The guild's ID is the session ID (a snowflake is a valid session ID,
# SPEC.md section 4). play() subscribes the source *before* asking the node to
# play, so no frame between `ready` and the subscription is lost, and hands the
# source to discord.py only once `ready` arrived (SPEC.md [P1]); the source
# ignores the end of the playback it replaces ([P2]). Pausing pauses both
# sides: discord.py stops reading at once, the node stops sending at a frame
# boundary ([P6]); whatever arrived in between (up to the node's prebuffer)
# waits in the source's queue. Resume restarts discord.py at once, but the
# node only when that queue is nearly played out: the node sends a resumed
# playback a fresh prebuffer burst ([P7]), which on top of a full queue would
# overflow it and drop audio. Stop ends discord.py's player first so /stop is
# heard at once, not after the frames already queued.
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import discord

from snowmux.audio_format import FRAME_SECONDS
from snowmux.protocol import PayloadFormat

from .source import FrameSource, SessionAudioSource

__all__ = [
    "READY_TIMEOUT_SECONDS",
    "RESUME_HEADROOM_FRAMES",
    "Controller",
    "pause",
    "play",
    "resume",
    "session_id_for",
    "stop",
]

log = logging.getLogger("snowmux.discord")

# The node answers a play after opening the media and sends `ready` right
# after; the control client gives a play 10 s, and the ready gets as long again.
READY_TIMEOUT_SECONDS = 10.0
# Resume the node when this few frames (200 ms) are left to play: time for a
# control request over a LAN and the node's first frame, so nothing underruns.
RESUME_HEADROOM_FRAMES = 10


class Controller(Protocol):
    """The control side: a ``snowmux.control.ControlClient`` or a ``NodePool``."""

    async def play(
        self,
        session_id: str,
        url: str,
        format: str | None = None,
        start_at: float | None = None,
        **extra: Any,
    ) -> dict[str, Any]: ...

    async def stop(self, session_id: str) -> dict[str, Any]: ...

    async def pause(self, session_id: str) -> dict[str, Any]: ...

    async def resume(self, session_id: str) -> dict[str, Any]: ...


def session_id_for(voice_client: discord.VoiceClient) -> str:
    """The session ID of a guild's playback: the guild's ID."""
    return str(voice_client.guild.id)


async def play(
    voice_client: discord.VoiceClient,
    frames_from: FrameSource,
    control: Controller,
    url: str,
    *,
    format: PayloadFormat | str = PayloadFormat.OPUS_PACKETS,
    after: Callable[[Exception | None], Any] | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
    **play_fields: Any,
) -> SessionAudioSource:
    """Play ``url`` in the guild of ``voice_client``; return the source playing it.

    ``play_fields`` go to the node's play request as they are (``start_at``,
    ``volume``, ...). ``after`` is discord.py's: it runs on the player thread
    with None when the playback finished, was stopped or replaced, and with a
    PlaybackError when the node reported an error. Whatever the guild played
    before is replaced (its ``after`` runs with None). Raises the node's error
    when it refuses the play, PlaybackError when the playback fails before
    ``ready``, TimeoutError when ``ready`` does not come.
    """
    session_id = session_id_for(voice_client)
    if voice_client.is_playing() or voice_client.is_paused():
        voice_client.stop()
    source = SessionAudioSource(frames_from, session_id, format=format, wait_for_ready=True)
    try:
        await control.play(session_id, url, format=str(source.format), **play_fields)
        try:
            await source.wait_ready(ready_timeout)
        except TimeoutError:
            with contextlib.suppress(Exception):  # best effort: the node may be gone
                await control.stop(session_id)
            raise
        voice_client.play(source, after=after)
    except BaseException:
        source.cleanup()
        raise
    return source


async def stop(voice_client: discord.VoiceClient, control: Controller) -> None:
    """Stop the guild's playback in discord.py at once, then on the node."""
    voice_client.stop()
    await control.stop(session_id_for(voice_client))


async def pause(voice_client: discord.VoiceClient, control: Controller) -> None:
    """Pause discord.py's player and the node's frames; raise the node's refusal."""
    voice_client.pause()
    try:
        await control.pause(session_id_for(voice_client))
    except BaseException:
        voice_client.resume()  # the node plays on (or has ended): let the player follow it
        raise


async def resume(voice_client: discord.VoiceClient, control: Controller) -> None:
    """Resume discord.py's player at once, and the node's frames in time to follow on."""
    source = voice_client.source
    voice_client.resume()
    if isinstance(source, SessionAudioSource):
        ahead = source.queued - RESUME_HEADROOM_FRAMES
        if ahead > 0:
            await asyncio.sleep(ahead * FRAME_SECONDS)
    try:
        await control.resume(session_id_for(voice_client))
    except BaseException:
        voice_client.pause()  # the node stays paused: so does the player, after the queue
        raise
