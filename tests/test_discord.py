"""snowmux.discord with discord.py's real AudioPlayer thread, offline.

The voice client is a stub: it records what discord.py's player sends
(``send_audio_packet(data, encode)``) with the time, answers
``is_connected()``, and starts the real ``discord.player.AudioPlayer`` the way
``discord.VoiceClient.play`` does. Everything else is real: a `snowmux serve`
process, the Receiver, the player thread, and PyAV decoding what it sent.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
import discord.opus
import discord.player
import pytest

import snowmux.discord as snowmux_discord
from snowmux.audio_format import FRAME_BYTES, OPUS_SILENCE
from snowmux.control import ControlClient, NodeError
from snowmux.discord import PlaybackError, SessionAudioSource
from snowmux.protocol import AudioFrame, Event
from snowmux.receiver import Endpoint, NodePool, Receiver, Router

from .audio_checks import decode_opus_packets, dominant_frequency, write_tone_file
from .node_helpers import ROOT, NodeProcess

GUILD_A = 111111111111111111
GUILD_B = 222222222222222222


def opus_available() -> bool:
    try:
        discord.opus.Encoder()
    except discord.opus.OpusNotLoaded:
        return False
    return True


@dataclass
class Sent:
    at: float
    data: bytes
    encode: bool


@dataclass
class StubVoiceClient:
    """The parts of discord.VoiceClient that AudioPlayer and snowmux.discord use."""

    guild_id: int
    loop: asyncio.AbstractEventLoop
    timeout: float = 2.0
    sent: list[Sent] = field(default_factory=list)
    after_calls: list[Exception | None] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    plays: int = 0

    def __post_init__(self) -> None:
        self.guild = SimpleNamespace(id=self.guild_id)
        self.client = SimpleNamespace(loop=self.loop)  # AudioPlayer._speak schedules on it
        self.ws = SimpleNamespace(speak=self._speak)
        self.connected.set()
        self._player: discord.player.AudioPlayer | None = None
        self._encoder: discord.opus.Encoder | None = None

    async def _speak(self, state: object) -> None:
        pass

    # what AudioPlayer calls ------------------------------------------------
    def is_connected(self) -> bool:
        return self.connected.is_set()

    def wait_until_connected(self, timeout: float | None = None) -> bool:
        return self.connected.wait(timeout)

    def send_audio_packet(self, data: bytes, *, encode: bool = True) -> None:
        self.sent.append(Sent(time.perf_counter(), bytes(data), encode))
        if encode and self._encoder is not None:
            self.encoded.append(self._encoder.encode(data, self._encoder.SAMPLES_PER_FRAME))

    # what discord.VoiceClient does around it --------------------------------
    def play(self, source: discord.AudioSource, *, after: Any = None) -> None:
        if self.is_playing():
            raise discord.ClientException("Already playing audio.")
        if not source.is_opus() and opus_available():
            self._encoder = discord.opus.Encoder()  # as VoiceClient.play does for PCM sources

        def record(error: Exception | None) -> None:
            if after is not None:
                after(error)
            self.after_calls.append(error)

        self.plays += 1
        self._player = discord.player.AudioPlayer(source, self, after=record)  # type: ignore[arg-type]
        self._player.start()

    @property
    def source(self) -> discord.AudioSource | None:
        return self._player.source if self._player else None

    def is_playing(self) -> bool:
        return self._player is not None and self._player.is_playing()

    def is_paused(self) -> bool:
        return self._player is not None and self._player.is_paused()

    def stop(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player = None

    def pause(self) -> None:
        if self._player is not None:
            self._player.pause()

    def resume(self) -> None:
        if self._player is not None:
            self._player.resume()

    # test helpers -------------------------------------------------------------
    async def wait_finished(self, timeout: float = 20.0) -> None:
        """Until every player started has called `after`."""
        deadline = time.monotonic() + timeout
        while len(self.after_calls) < self.plays:
            assert time.monotonic() < deadline, "the player did not stop"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # cleanup() runs right after `after`

    def audio(self) -> list[bytes]:
        """The Opus packets sent, without the silence frames."""
        return [s.data for s in self.sent if s.data != OPUS_SILENCE]

    def rate(self) -> float:
        times = [s.at for s in self.sent]
        return (len(times) - 1) / (times[-1] - times[0])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("node")) as process:
        yield process


@pytest.fixture
async def receiver(node: NodeProcess) -> AsyncIterator[Receiver]:
    rx = Receiver(Endpoint(unix_path=node.socket_path))
    task = asyncio.create_task(rx.run())
    await asyncio.wait_for(rx.connected.wait(), 10)
    yield rx
    rx.stop()
    await task


@pytest.fixture
async def control(node: NodeProcess) -> AsyncIterator[ControlClient]:
    async with ControlClient(node.url) as client:
        yield client


def stub(guild_id: int) -> StubVoiceClient:
    return StubVoiceClient(guild_id, asyncio.get_running_loop())


# -- the import ---------------------------------------------------------------------


def test_snowmux_discord_uses_the_real_discord_py() -> None:
    import snowmux.discord.source as source_module

    assert source_module.discord is sys.modules["discord"]
    assert "site-packages" in (discord.__file__ or "")
    assert issubclass(SessionAudioSource, discord.AudioSource)


# -- the source on a real Router, no node --------------------------------------------


async def test_the_queue_drops_the_oldest_underruns_are_silence_and_the_end_is_b_empty() -> None:
    router = Router()
    holder = SimpleNamespace(router=router)
    source = SessionAudioSource(holder, "42", format="pcm", max_frames=3)
    assert not source.is_opus()
    assert source.read() == bytes(FRAME_BYTES)  # nothing yet: silence, counted
    frames = [bytes([n]) * FRAME_BYTES for n in range(1, 6)]
    router.route([AudioFrame("42", f) for f in frames])
    router.route([Event.create("finished", "42", reason="finished"), AudioFrame("42", b"late")])
    assert [source.read() for _ in range(4)] == [*frames[2:], b""]
    assert source.stats.frames == 3 and source.stats.dropped == 2 and source.stats.underruns == 1
    assert source.end_reason == "finished"
    source.cleanup()
    await asyncio.sleep(0)
    assert router.sink("42") is None


async def test_a_source_waiting_for_ready_ignores_the_end_of_the_playback_it_replaces() -> None:
    router = Router()
    source = SessionAudioSource(SimpleNamespace(router=router), "42", wait_for_ready=True)
    assert source.is_opus()
    router.route(
        [
            AudioFrame("42", b"old"),
            Event.create("finished", "42", reason="replaced"),
            Event.create("ready", "42", format="opus-packets"),
            AudioFrame("42", b"new"),
        ]
    )
    ready = await source.wait_ready(1)
    assert ready.type == "ready" and not source.ended
    assert source.read() == b"new"
    assert source.read() == OPUS_SILENCE
    router.route([Event.create("ready", "42", format="opus-packets", position_secs=1.0)])
    router.route([Event.create("error", "42", message="decode error")])
    with pytest.raises(PlaybackError, match="decode error"):
        source.read()
    source.cleanup()


async def test_a_ready_in_another_format_is_an_error_not_noise() -> None:
    router = Router()
    source = SessionAudioSource(SimpleNamespace(router=router), "42", wait_for_ready=True)
    router.route([Event.create("ready", "42", format="opus"), AudioFrame("42", b"OggS...")])
    with pytest.raises(PlaybackError, match="plays opus"):
        await source.wait_ready(1)
    with pytest.raises(PlaybackError):
        source.read()
    source.cleanup()
    with pytest.raises(ValueError, match="cannot go to Discord"):
        SessionAudioSource(SimpleNamespace(router=router), "42", format="web")


async def test_read_never_blocks_even_while_the_loop_is_busy() -> None:
    router = Router()
    source = SessionAudioSource(SimpleNamespace(router=router), "42")
    durations: list[float] = []

    def reader() -> None:
        for _ in range(50):
            started = time.perf_counter()
            source.read()
            durations.append(time.perf_counter() - started)
            time.sleep(0.002)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.2)  # the event loop is blocked: nothing can feed the source
    router.route([AudioFrame("42", b"x")] * 10)
    await asyncio.to_thread(thread.join)
    # had read() waited for the loop it would have taken the whole 200 ms;
    # the bound leaves room for this shared machine's scheduler
    assert max(durations) < 0.05
    assert sorted(durations)[len(durations) // 2] < 0.001
    source.cleanup()


async def test_a_lost_connection_is_silence_and_a_closed_receiver_an_error() -> None:
    router = Router()
    source = SessionAudioSource(SimpleNamespace(router=router), "42")
    router.route([Event.create("ready", "42", format="opus-packets"), AudioFrame("42", b"a")])
    router.interrupt_all("connection lost")  # the Receiver reconnects; the node plays on
    assert source.stats.interruptions == 1 and not source.ended
    assert [source.read(), source.read()] == [b"a", OPUS_SILENCE]
    router.close()
    assert source.end_reason == "receiver-closed"
    with pytest.raises(PlaybackError, match="receiver was closed"):
        source.read()
    source.cleanup()


# -- with a real node and discord.py's AudioPlayer -------------------------------------


@pytest.mark.slow
async def test_two_guilds_hear_only_their_own_tone_at_50_packets_a_second(
    receiver: Receiver, control: ControlClient
) -> None:
    first, second = stub(GUILD_A), stub(GUILD_B)
    sources = [
        await snowmux_discord.play(first, receiver, control, "tone:440?seconds=2"),
        await snowmux_discord.play(second, receiver, control, "tone:1000?seconds=2"),
    ]
    await first.wait_finished()
    await second.wait_finished()
    for voice, source, frequency in ((first, sources[0], 440), (second, sources[1], 1000)):
        assert voice.after_calls == [None]
        assert source.end_reason == "finished"
        assert all(not s.encode for s in voice.sent)
        samples, counts = decode_opus_packets(voice.audio())
        status = await control.status(str(voice.guild_id))
        # every frame the node sent went to Discord once, beside the underruns'
        # silence and the five silence frames discord.py sends when it stops
        assert source.stats.frames == status["frames_sent"]
        assert len(voice.sent) == status["frames_sent"] + source.stats.underruns + 5
        assert set(counts) == {960}
        assert dominant_frequency(samples) == pytest.approx(frequency, abs=5)
        assert 40 < voice.rate() < 60
        assert source.stats.dropped == 0 and source.stats.frames >= 100
    assert receiver.router.sink(str(GUILD_A)) is None  # cleanup() unsubscribed


@pytest.mark.slow
async def test_a_queue_plays_straight_through_one_player(
    receiver: Receiver, control: ControlClient
) -> None:
    """Two queued tones: one AudioSource, one `after`, both tones, no end between them."""
    voice = stub(GUILD_A)
    source = await snowmux_discord.play(voice, receiver, control, "tone:440?seconds=1")
    reply = await control.queue(str(GUILD_A), "tone:880?seconds=1")
    assert reply["status"] == "queued"
    await voice.wait_finished()
    assert voice.plays == 1 and voice.after_calls == [None] and source.end_reason == "finished"
    samples, counts = decode_opus_packets(voice.audio())
    assert set(counts) == {960}
    half = 48_000 // 2  # well inside each one-second track
    assert dominant_frequency(samples[:half]) == pytest.approx(440, abs=5)
    assert dominant_frequency(samples[-half - 12_000 : -12_000]) == pytest.approx(880, abs=5)


@pytest.mark.slow
async def test_an_error_playback_reaches_after_as_the_exception(
    node: NodeProcess, receiver: Receiver, control: ControlClient
) -> None:
    path = write_tone_file(node.media_root / "good.mp3", 440, 3.0, 44_100, 2, "libmp3lame")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = bytes(range(256)) * 11 + bytes(184)
    (node.media_root / "broken.mp3").write_bytes(bytes(data))
    voice = stub(GUILD_A)
    source = await snowmux_discord.play(voice, receiver, control, "broken.mp3")
    await voice.wait_finished()
    [error] = voice.after_calls
    assert isinstance(error, PlaybackError) and "decode error" in str(error)
    assert source.end_reason == "error"
    assert 40 < len(voice.audio()) < 150  # the good half played before the error

    # The node refuses a missing file at once (404), so play() raises its NodeError.
    with pytest.raises(NodeError, match="no such file") as refused:
        await snowmux_discord.play(stub(GUILD_B), receiver, control, "missing.flac")
    assert refused.value.status == 404
    assert receiver.router.sink(str(GUILD_B)) is None


@pytest.mark.slow
async def test_a_stalled_node_gives_silence_then_the_tone_again(
    node: NodeProcess, receiver: Receiver, control: ControlClient
) -> None:
    voice = stub(GUILD_A)
    source = await snowmux_discord.play(voice, receiver, control, "tone:440?seconds=4")
    await asyncio.sleep(1.0)
    before = source.stats.underruns
    os.kill(node.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(1.5)  # longer than the 0.5 s the node prebuffered
    finally:
        os.kill(node.pid, signal.SIGCONT)
    stalled = source.stats.underruns - before
    assert stalled >= 25
    await voice.wait_finished()
    assert voice.after_calls == [None]
    kinds = "".join("s" if s.data == OPUS_SILENCE else "a" for s in voice.sent)
    assert "s" * 25 in kinds.strip("s")  # a run of silence between audio: the stall
    after_stall = kinds.rindex("s" * 25) + 25
    samples, _ = decode_opus_packets([s.data for s in voice.sent[after_stall:]][:40])
    assert dominant_frequency(samples) == pytest.approx(440, abs=5)  # and it recovered
    assert 40 < voice.rate() < 60  # the player kept Discord's pace throughout


@pytest.mark.slow
async def test_stop_and_replace_end_the_player(receiver: Receiver, control: ControlClient) -> None:
    voice = stub(GUILD_A)
    source = await snowmux_discord.play(voice, receiver, control, "tone:440?seconds=10")
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await snowmux_discord.stop(voice, control)
    await voice.wait_finished(2)
    assert time.monotonic() - started < 1.0
    assert voice.after_calls == [None]
    assert source.end_reason in {"stopped", "player-stopped"}  # whichever came first
    assert (await control.status(str(GUILD_A)))["state"] == "stopped"

    # a stop through the node alone: the source ends at the node's `finished`
    voice = stub(GUILD_A)
    source = await snowmux_discord.play(voice, receiver, control, "tone:440?seconds=10")
    await asyncio.sleep(0.3)
    await control.stop(str(GUILD_A))
    await voice.wait_finished(5)
    assert voice.after_calls == [None] and source.end_reason == "stopped"

    # a replacement through the node alone ends the old player
    voice = stub(GUILD_A)
    source = await snowmux_discord.play(voice, receiver, control, "tone:440?seconds=10")
    await asyncio.sleep(0.3)
    await control.play(str(GUILD_A), "tone:1000?seconds=10", format="opus-packets")
    await voice.wait_finished(5)
    assert voice.after_calls == [None] and source.end_reason == "replaced"

    # play() on a guild that plays replaces it, in the node and in the player
    voice = stub(GUILD_A)
    old = await snowmux_discord.play(voice, receiver, control, "tone:440?seconds=10")
    await asyncio.sleep(0.3)
    new = await snowmux_discord.play(voice, receiver, control, "tone:1000?seconds=1")
    assert old.ended and not new.ended
    await voice.wait_finished()
    assert voice.after_calls == [None, None]
    assert new.end_reason == "finished"
    tail = [s.data for s in voice.sent[-60:] if s.data != OPUS_SILENCE]
    samples, _ = decode_opus_packets(tail)
    assert dominant_frequency(samples) == pytest.approx(1000, abs=5)


@pytest.mark.slow
async def test_pause_and_resume_keep_the_node_and_the_player_in_step(
    receiver: Receiver, control: ControlClient
) -> None:
    voice = stub(GUILD_B)
    source = await snowmux_discord.play(voice, receiver, control, "tone:440?seconds=2")
    await asyncio.sleep(0.6)
    await snowmux_discord.pause(voice, control)
    assert voice.is_paused()
    assert (await control.status(str(GUILD_B)))["state"] == "paused"
    await asyncio.sleep(0.3)
    sent = len(voice.sent)
    await asyncio.sleep(0.5)
    assert len(voice.sent) == sent  # paused: nothing goes to Discord
    await snowmux_discord.resume(voice, control)
    assert voice.is_playing()
    await voice.wait_finished()
    assert voice.after_calls == [None]
    status = await control.status(str(GUILD_B))
    assert source.stats.frames == status["frames_sent"]  # nothing lost or repeated
    assert source.stats.dropped == 0
    assert source.stats.underruns <= 5  # the node resumed in time to follow the queue
    # discord.py's five silence frames at the pause and at the end
    assert len(voice.sent) == status["frames_sent"] + source.stats.underruns + 10


@pytest.mark.slow
async def test_pcm_reads_are_3840_bytes_and_encoded_by_discord_py(
    receiver: Receiver, control: ControlClient
) -> None:
    first, second = stub(GUILD_A), stub(GUILD_B)
    await snowmux_discord.play(first, receiver, control, "tone:440?seconds=1.5", format="pcm")
    await snowmux_discord.play(second, receiver, control, "tone:1000?seconds=1.5", format="pcm")
    await first.wait_finished()
    await second.wait_finished()
    for voice, frequency in ((first, 440), (second, 1000)):
        assert voice.after_calls == [None]
        pcm = [s.data for s in voice.sent if s.encode]
        assert {len(p) for p in pcm} == {FRAME_BYTES}
        audio = b"".join(p for p in pcm if any(p))
        assert len(audio) == 75 * FRAME_BYTES
        assert dominant_frequency(audio) == pytest.approx(frequency, abs=5)
        assert 40 < voice.rate() < 60
        if opus_available():  # what discord.VoiceClient would send: decodable Opus
            samples, _ = decode_opus_packets(voice.encoded)
            assert dominant_frequency(samples) == pytest.approx(frequency, abs=5)


# -- the example bot ------------------------------------------------------------------


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Any:
    """examples/discord_bot.py, imported as a module (as `python examples/...` would)."""
    spec = importlib.util.spec_from_file_location("discord_bot", ROOT / "examples/discord_bot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "discord_bot", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


async def test_the_example_bot_registers_its_slash_commands(example: Any) -> None:
    bot = example.SnowmuxBot(example.Settings(token="not-a-token"))
    commands = {command.name: command for command in bot.tree.get_commands()}
    assert set(commands) == {"play", "queue", "skip", "stop", "pause", "resume", "np"}
    assert [p.name for p in commands["play"].parameters] == ["url"]
    await bot.close()


def test_the_example_bot_needs_a_token(example: Any) -> None:
    with pytest.raises(example.ConfigError, match="DISCORD_TOKEN is not set"):
        example.Settings.from_environment({"SNOWMUX_NODE": "http://127.0.0.1:1"})
    settings = example.Settings.from_environment(
        {"DISCORD_TOKEN": "t", "SNOWMUX_STREAM": "tcp:127.0.0.1:9000", "DISCORD_GUILD": "42"}
    )
    assert settings.stream == Endpoint(tcp=("127.0.0.1", 9000)) and settings.guild_id == 42
    with pytest.raises(example.ConfigError, match="SNOWMUX_STREAM"):
        example.Settings.from_environment({"DISCORD_TOKEN": "t", "SNOWMUX_STREAM": "nope"})


async def test_the_example_bot_takes_several_nodes_as_a_pool(example: Any) -> None:
    settings = example.Settings.from_environment(
        {"DISCORD_TOKEN": "t", "SNOWMUX_NODE": "http://10.0.0.1:8180, http://10.0.0.2:8180"}
    )
    assert settings.pool_urls == ("http://10.0.0.1:8180", "http://10.0.0.2:8180")
    bot = example.SnowmuxBot(settings)
    assert isinstance(bot.receiver, NodePool) and bot.control is bot.receiver
    assert [node.url for node in bot.receiver.nodes] == list(settings.pool_urls)
    await bot.close()
    single = example.Settings.from_environment({"DISCORD_TOKEN": "t"})
    assert single.pool_urls == () and isinstance(example.SnowmuxBot(single).receiver, Receiver)


@pytest.mark.slow
async def test_the_example_bot_stops_the_session_when_it_leaves_voice(
    example: Any, node: NodeProcess, control: ControlClient
) -> None:
    class LoggedIn(example.SnowmuxBot):  # type: ignore[misc]
        user = SimpleNamespace(id=7)  # what discord.py sets on login

    settings = example.Settings(
        token="not-a-token", node_url=node.url, stream=Endpoint(unix_path=node.socket_path)
    )
    bot = LoggedIn(settings)
    session_id = str(GUILD_B)
    await control.play(session_id, "tone:440?seconds=10", format="opus-packets")
    guild = SimpleNamespace(id=GUILD_B)
    someone_else = SimpleNamespace(id=8, guild=guild)
    bot_member = SimpleNamespace(id=7, guild=guild)
    in_voice, out = SimpleNamespace(channel=object()), SimpleNamespace(channel=None)
    await bot.on_voice_state_update(someone_else, in_voice, out)
    assert (await control.status(session_id))["state"] in {"starting", "playing"}
    await bot.on_voice_state_update(bot_member, in_voice, in_voice)  # moved, still in voice
    assert (await control.status(session_id))["state"] in {"starting", "playing"}
    await bot.on_voice_state_update(bot_member, in_voice, out)
    assert (await control.status(session_id))["state"] == "stopped"
    await bot.close()
