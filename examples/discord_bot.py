"""A complete discord.py music bot on a snowmux node.

    pip install 'snowmux[discord]'
    snowmux serve --media-root ~/music --allow-remote   # in another terminal
    DISCORD_TOKEN=... python examples/discord_bot.py

Slash commands: /play url, /queue url, /skip, /stop, /pause, /resume, /np. Each guild is one
session on the node (its ID is the guild's ID); the node decodes and encodes,
the bot only forwards the node's Opus packets to Discord (format
``opus-packets``: no re-encoding in this process).

Environment:
    DISCORD_TOKEN    the bot's token (required)
    SNOWMUX_NODE     the node's control API       [default: http://127.0.0.1:8180];
                     several, comma-separated, make a NodePool: each guild goes to
                     the least loaded node and moves if its node dies (README
                     "Scaling out"); the streams are then found through /info
    SNOWMUX_TOKEN    the control API's token, if the node requires one
    SNOWMUX_STREAM   a single node's stream: unix:PATH or tcp:HOST:PORT
                     [default: unix:$XDG_RUNTIME_DIR/snowmux.sock, as `snowmux serve`]
    DISCORD_GUILD    a guild ID: sync the commands there at once (while developing;
                     global commands can take up to an hour to appear)

/play replaces what the guild hears; /queue appends a track to the node's
queue for the guild, which plays it gapless (or crossfaded) after the current
one, with no gap for Discord's listeners: the stream never stops between tracks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

import snowmux.discord as snowmux_discord
from snowmux.control import ControlClient, NodeError
from snowmux.defaults import NODE_URL, default_socket_path
from snowmux.receiver import Endpoint, NodePool, Receiver

log = logging.getLogger("discord_bot")


class ConfigError(Exception):
    """The bot cannot start as configured; the message says what to set."""


def parse_stream(value: str) -> Endpoint:
    """``unix:PATH`` or ``tcp:HOST:PORT``."""
    kind, _, rest = value.partition(":")
    if kind == "unix" and rest:
        return Endpoint(unix_path=Path(rest))
    host, _, port = rest.rpartition(":")
    if kind == "tcp" and host and port.isdigit():
        return Endpoint(tcp=(host, int(port)))
    raise ConfigError(f"SNOWMUX_STREAM={value!r}: expected unix:PATH or tcp:HOST:PORT")


@dataclass(frozen=True, slots=True)
class Settings:
    token: str
    node_url: str = NODE_URL
    pool_urls: tuple[str, ...] = ()  # two or more: a NodePool instead of one node
    node_token: str | None = None
    stream: Endpoint = field(default_factory=lambda: Endpoint(unix_path=default_socket_path()))
    guild_id: int | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        token = environ.get("DISCORD_TOKEN", "").strip()
        if not token:
            raise ConfigError(
                "DISCORD_TOKEN is not set. Create a bot at "
                "https://discord.com/developers/applications (Bot > Reset Token), invite it "
                "with the 'bot' and 'applications.commands' scopes and the Connect and Speak "
                "permissions, then run: DISCORD_TOKEN=... python examples/discord_bot.py"
            )
        stream = environ.get("SNOWMUX_STREAM")
        guild = environ.get("DISCORD_GUILD")
        if guild is not None and not guild.isdigit():
            raise ConfigError(f"DISCORD_GUILD={guild!r}: expected a guild ID (digits)")
        urls = tuple(
            u.strip() for u in environ.get("SNOWMUX_NODE", NODE_URL).split(",") if u.strip()
        )
        if not urls:
            raise ConfigError(
                "SNOWMUX_NODE is empty: give one node URL, or several separated by commas"
            )
        return cls(
            token=token,
            node_url=urls[0],
            pool_urls=urls if len(urls) > 1 else (),
            node_token=environ.get("SNOWMUX_TOKEN") or None,
            stream=parse_stream(stream) if stream else Endpoint(unix_path=default_socket_path()),
            guild_id=int(guild) if guild else None,
        )


class SnowmuxBot(discord.Client):
    """One Receiver (the node's frames and events) and one ControlClient for every guild.

    With several nodes (SNOWMUX_NODE=URL,URL,...) one NodePool is both: it has
    the Receiver's frames and events and the control client's
    play/stop/pause/resume/status, and moves a guild to another node when its
    node dies.
    """

    def __init__(self, settings: Settings) -> None:
        # Slash commands need no privileged intents; the default ones include
        # voice states, which on_voice_state_update needs.
        super().__init__(intents=discord.Intents.default())
        self.settings = settings
        self.tree = app_commands.CommandTree(self)
        for command in COMMANDS:
            self.tree.add_command(command)
        self.receiver: Receiver | NodePool
        self.control: ControlClient | NodePool
        self._pool: NodePool | None = None
        if settings.pool_urls:
            self._pool = NodePool(settings.pool_urls, token=settings.node_token)
            self.receiver = self.control = self._pool
        else:
            self.receiver = Receiver(settings.stream)
            self.control = ControlClient(settings.node_url, settings.node_token)
        self._receiver_task: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        if self._pool is not None:
            await self._pool.start()
        elif isinstance(self.receiver, Receiver):
            self._receiver_task = asyncio.create_task(self.receiver.run())
        guild = discord.Object(self.settings.guild_id) if self.settings.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)

    async def close(self) -> None:
        if isinstance(self.receiver, Receiver):
            self.receiver.stop()
        if self._receiver_task is not None:
            await self._receiver_task
        await self.control.close()
        await super().close()

    async def on_ready(self) -> None:
        log.info(
            "logged in as %s; node %s, stream %s",
            self.user,
            ", ".join(self.settings.pool_urls) or self.settings.node_url,
            self.settings.stream,
        )

    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        # Kicked from the channel, channel deleted, or disconnected for good:
        # nobody hears the session any more, so the node stops it.
        if self.user is None or member.id != self.user.id:
            return
        if before.channel is not None and after.channel is None:
            log.info("left voice in guild %s: stopping its session", member.guild.id)
            try:
                await self.control.stop(str(member.guild.id))
            except NodeError as exc:
                log.warning("cannot stop the session of guild %s: %s", member.guild.id, exc)


Interaction = discord.Interaction[SnowmuxBot]


def voice_of(interaction: Interaction) -> discord.VoiceClient | None:
    guild = interaction.guild
    voice = guild.voice_client if guild is not None else None
    return voice if isinstance(voice, discord.VoiceClient) else None


def clock(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


@app_commands.command(
    description="Play a URL or a file of the node's media root in your voice channel"
)
@app_commands.describe(
    url="http(s) URL (if the node allows them), a path under its media root, or tone:440"
)
@app_commands.guild_only()
async def play(interaction: Interaction, url: str) -> None:
    await play_in_voice(interaction, url)


async def play_in_voice(interaction: Interaction, url: str) -> None:
    """Join the member's channel and play ``url`` there (what /play does)."""
    bot = interaction.client
    member = interaction.user
    channel = member.voice.channel if isinstance(member, discord.Member) and member.voice else None
    if channel is None:
        await interaction.response.send_message("Join a voice channel first.", ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    voice = voice_of(interaction)
    try:
        if voice is None:
            voice = await channel.connect()
        elif voice.channel != channel:
            await voice.move_to(channel)
    except (discord.ClientException, TimeoutError) as exc:
        await interaction.followup.send(f"Cannot join {channel.mention}: {exc}")
        return
    text_channel = interaction.channel
    loop = asyncio.get_running_loop()

    def after(error: Exception | None) -> None:
        # discord.py calls this on its player thread: hop back to the loop.
        if error is not None and isinstance(text_channel, discord.abc.Messageable):
            asyncio.run_coroutine_threadsafe(text_channel.send(f"Playback failed: {error}"), loop)
        log.info("guild %s: playback of %s ended (%s)", channel.guild.id, url, error or "ok")

    try:
        await snowmux_discord.play(voice, bot.receiver, bot.control, url, after=after)
    except (NodeError, snowmux_discord.PlaybackError, TimeoutError) as exc:
        await interaction.followup.send(f"Cannot play {url}: {exc or 'the node did not start it'}")
        return
    await interaction.followup.send(f"Playing {url} in {channel.mention}")


@app_commands.command(
    description="Add a track after the current one (gapless); plays at once if idle"
)
@app_commands.describe(url="what /play takes")
@app_commands.guild_only()
async def queue(interaction: Interaction, url: str) -> None:
    voice = voice_of(interaction)
    source = voice.source if voice is not None else None
    playing = isinstance(source, snowmux_discord.SessionAudioSource) and source.end_reason is None
    if not playing or interaction.guild is None:
        await play_in_voice(interaction, url)  # nothing playing: the queue starts with it
        return
    try:
        reply = await interaction.client.control.queue(str(interaction.guild.id), url)
    except NodeError as exc:
        await interaction.response.send_message(f"Cannot queue {url}: {exc}", ephemeral=True)
        return
    await interaction.response.send_message(f"Queued {url} (track {reply.get('position')})")


@app_commands.command(description="Skip to the next queued track")
@app_commands.guild_only()
async def skip(interaction: Interaction) -> None:
    if interaction.guild is None:
        return
    try:
        await interaction.client.control.skip(str(interaction.guild.id))
    except NodeError as exc:
        await interaction.response.send_message(f"Cannot skip: {exc}", ephemeral=True)
        return
    await interaction.response.send_message("Skipped.")


@app_commands.command(description="Stop playing")
@app_commands.guild_only()
async def stop(interaction: Interaction) -> None:
    bot = interaction.client
    voice = voice_of(interaction)
    try:
        if voice is not None:
            await snowmux_discord.stop(voice, bot.control)
        elif interaction.guild is not None:
            await bot.control.stop(str(interaction.guild.id))
    except NodeError as exc:
        await interaction.response.send_message(f"Cannot stop: {exc}", ephemeral=True)
        return
    await interaction.response.send_message("Stopped.")


@app_commands.command(description="Pause the music")
@app_commands.guild_only()
async def pause(interaction: Interaction) -> None:
    voice = voice_of(interaction)
    if voice is None or not voice.is_playing():
        await interaction.response.send_message("Nothing is playing.", ephemeral=True)
        return
    try:
        await snowmux_discord.pause(voice, interaction.client.control)
    except NodeError as exc:
        await interaction.response.send_message(f"Cannot pause: {exc}", ephemeral=True)
        return
    await interaction.response.send_message("Paused.")


@app_commands.command(description="Resume the music")
@app_commands.guild_only()
async def resume(interaction: Interaction) -> None:
    voice = voice_of(interaction)
    if voice is None or not voice.is_paused():
        await interaction.response.send_message("Nothing is paused.", ephemeral=True)
        return
    await interaction.response.defer()  # resume waits for the queued audio to play out
    try:
        await snowmux_discord.resume(voice, interaction.client.control)
    except NodeError as exc:
        await interaction.followup.send(f"Cannot resume: {exc}")
        return
    await interaction.followup.send("Resumed.")


@app_commands.command(name="np", description="What is playing, and where")
@app_commands.guild_only()
async def now_playing(interaction: Interaction) -> None:
    guild = interaction.guild
    assert guild is not None  # guild_only
    try:
        status = await interaction.client.control.status(str(guild.id))
    except NodeError as exc:
        message = "Nothing is playing." if exc.status == 404 else f"Cannot ask the node: {exc}"
        await interaction.response.send_message(message, ephemeral=True)
        return
    line = (
        f"{status.get('state')}: {status.get('url')} "
        f"[{clock(status.get('position_secs'))} / {clock(status.get('duration'))}]"
    )
    voice = voice_of(interaction)
    source = voice.source if voice is not None else None
    if isinstance(source, snowmux_discord.SessionAudioSource):
        stats = source.stats
        line += f" (underruns {stats.underruns}, dropped {stats.dropped})"
    await interaction.response.send_message(line)


COMMANDS: tuple[app_commands.Command[Any, ..., None], ...] = (
    play,
    queue,
    skip,
    stop,
    pause,
    resume,
    now_playing,
)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_environment()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    SnowmuxBot(settings).run(settings.token, log_handler=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
