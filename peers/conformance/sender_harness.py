# Strategy: `snowmux conformance sender --socket PATH --node URL`. The harness
# is a receiver that records every message with its arrival time, and a
# control client that drives one scenario through the node's HTTP API: a
# keeper session plays throughout while other sessions start, stop, get
# replaced, pause and resume, in all four formats. Afterwards each property
# is judged from the recording alone: framing, hello and event schema,
# ordering (nothing of a playback after its end), isolation (the keeper never
# stutters), pacing, and the payloads of each format (decoded with PyAV).
# It connects through the receiver's Endpoint, so a node with --token (the
# auth line of SPEC.md section 8a) or a TLS --tcp stream is tested as is.
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from snowmux.protocol import (
    PROTOCOL_VERSION,
    AudioFrame,
    Decoder,
    Event,
    Message,
    RemoteProtocolError,
)

from ..audio_format import FRAME_BYTES, FRAME_SAMPLES, OPUS_SILENCE, SAMPLE_RATE, split_ogg_pages
from ..control import ControlClient, NodeError
from ..defaults import SENDER_PROPERTIES, SILENCE_FRAMES, STUTTER_GAP_SECONDS
from ..receiver.connection import Endpoint

__all__ = ["SenderHarness", "SenderResult"]

MAX_GAP_SECONDS = STUTTER_GAP_SECONDS  # a gap a listener hears as a stutter
PACED_RATE = (45.0, 55.0)  # frames per second of a paced playback, measured over >= 1 s
LATENESS_P99_SECONDS = 0.040  # arrival jitter of paced frames, receiver side, loopback


@dataclass
class Arrival:
    at: float
    message: Message


@dataclass
class SenderResult:
    name: str
    failure: str | None = None
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.failure is None


@dataclass
class Playback:
    """Messages of one playback as the receiver saw them: ready ... end (or cut off)."""

    session_id: str
    ready: Event
    frames: list[Arrival] = field(default_factory=list)
    end: Event | None = None
    after_end: list[Arrival] = field(default_factory=list)

    @property
    def format(self) -> str | None:
        value = self.ready.data.get("format")
        return value if isinstance(value, str) else None


class SenderHarness:
    def __init__(
        self,
        socket_path: Path | None,
        node_url: str,
        token: str | None = None,
        media: str | None = None,
        log: Callable[[str], None] = print,
        *,
        endpoint: Endpoint | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self.socket_path = socket_path
        if endpoint is None:
            if socket_path is None:
                raise ValueError("give a socket path or an endpoint")
            endpoint = Endpoint(unix_path=socket_path, token=token)
        self.endpoint = endpoint
        self.node_url = node_url
        self.token = token
        self.tls_ca = tls_ca
        self.media = media
        self.log = log
        self.arrivals: list[Arrival] = []
        self.decode_error: RemoteProtocolError | None = None
        self.control_errors: list[str] = []
        self.keeper = "conformance-keeper"

    def _url(self, frequency: int, seconds: float) -> str:
        return self.media or f"tone:{frequency}?seconds={seconds}"

    # -- recording ------------------------------------------------------------

    async def _record(self, reader: asyncio.StreamReader) -> None:
        decoder = Decoder()
        try:
            while data := await reader.read(65536):
                now = time.monotonic()
                self.arrivals.extend(Arrival(now, m) for m in decoder.feed(data))
            decoder.feed_eof()
        except RemoteProtocolError as error:
            now = time.monotonic()
            self.arrivals.extend(Arrival(now, m) for m in error.messages)
            self.decode_error = error

    async def _call(self, control: ControlClient, action: str, *args: Any, **kwargs: Any) -> None:
        try:
            await getattr(control, action)(*args, **kwargs)
        except NodeError as exc:
            self.control_errors.append(f"{action} {args}: HTTP {exc.status} {exc.message}")

    async def scenario(self) -> None:
        reader, writer = await self.endpoint.open()
        recorder = asyncio.create_task(self._record(reader))
        try:
            async with ControlClient(self.node_url, self.token, self.tls_ca) as control:
                self.log("  scenario: keeper (pcm) plays throughout")
                await self._call(control, "play", self.keeper, self._url(330, 12), "pcm")
                await self._call(control, "play", "conformance-a", self._url(440, 12), "opus")
                await self._call(control, "play", "conformance-b", self._url(550, 12), "web")
                await asyncio.sleep(2.0)
                self.log("  scenario: stop a, replace b with opus-packets")
                await self._call(control, "stop", "conformance-a")
                await self._call(
                    control, "play", "conformance-b", self._url(660, 12), "opus-packets"
                )
                await asyncio.sleep(1.5)
                self.log("  scenario: pause and resume b")
                await self._call(control, "pause", "conformance-b")
                await asyncio.sleep(0.6)
                await self._call(control, "resume", "conformance-b")
                await asyncio.sleep(1.5)
                self.log("  scenario: stop everything")
                for session_id in (self.keeper, "conformance-b"):
                    await self._call(control, "stop", session_id)
                await asyncio.sleep(0.5)
        finally:
            writer.close()
            await asyncio.wait([recorder], timeout=2)
            recorder.cancel()

    # -- judging ------------------------------------------------------------------

    def playbacks(self) -> list[Playback]:
        current: dict[str, Playback] = {}
        done: list[Playback] = []
        for arrival in self.arrivals:
            message = arrival.message
            sid = message.session_id
            if isinstance(message, Event):
                if message.type == "ready":
                    if sid in current:
                        done.append(current.pop(sid))
                    current[sid] = Playback(sid, message)
                elif message.type in ("finished", "error") and sid in current:
                    ended = current[sid]
                    if ended.end is None:
                        ended.end = message
                    else:
                        ended.after_end.append(arrival)
                continue
            playback = current.get(sid)
            if playback is None:
                continue
            (playback.after_end if playback.end is not None else playback.frames).append(arrival)
        return done + list(current.values())

    def judge(self) -> list[SenderResult]:
        playbacks = self.playbacks()
        check_functions: list[Callable[[list[Playback]], Iterator[str]]] = [
            self._framing,
            self._hello_and_events,
            self._ordering,
            self._isolation,
            self._pacing,
            self._payloads,
        ]
        checks = zip(SENDER_PROPERTIES, check_functions, strict=True)
        results = []
        for name, check in checks:
            problems = list(check(playbacks))
            results.append(
                SenderResult(name, problems[0] if problems else None, "; ".join(problems[1:4]))
            )
        return results

    def _framing(self, playbacks: list[Playback]) -> Iterator[str]:
        if self.decode_error is not None:
            yield (
                f"{type(self.decode_error).__name__} at offset {self.decode_error.offset}: "
                f"{self.decode_error}"
            )
        if not any(isinstance(a.message, AudioFrame) for a in self.arrivals):
            yield "no audio frame arrived"
        known = {self.keeper, "conformance-a", "conformance-b", ""}
        for arrival in self.arrivals:
            if arrival.message.session_id not in known:
                yield f"message for a session that was never played: {arrival.message.session_id!r}"
                return

    def _hello_and_events(self, playbacks: list[Playback]) -> Iterator[str]:
        if not self.arrivals:
            yield "nothing arrived"
            return
        first = self.arrivals[0].message
        if not (isinstance(first, Event) and first.type == "hello"):
            yield "the first message is not a hello event"
        elif first.data.get("protocol") != PROTOCOL_VERSION:
            yield f"hello names protocol {first.data.get('protocol')!r}, not {PROTOCOL_VERSION!r}"
        elif not isinstance(first.data.get("max_frame_length"), int):
            yield "hello has no integer max_frame_length"
        yield from self.control_errors
        expected = [
            (self.keeper, "pcm", "stopped"),
            ("conformance-a", "opus", "stopped"),
            ("conformance-b", "web", "replaced"),
            ("conformance-b", "opus-packets", "stopped"),
        ]
        seen = [
            (p.session_id, p.format, p.end.data.get("reason") if p.end else None) for p in playbacks
        ]
        for want in expected:
            if want not in seen:
                yield f"expected a playback {want[0]} ({want[1]}) ending with {want[2]!r}; saw {seen}"
        for playback in playbacks:
            if playback.ready.data.get("format") is None:
                yield f"ready of {playback.session_id} names no format"
        for arrival in self.arrivals:
            message = arrival.message
            if isinstance(message, AudioFrame) and not any(
                p.session_id == message.session_id for p in playbacks
            ):
                yield f"a frame of {message.session_id} arrived before any ready"
                break

    def _ordering(self, playbacks: list[Playback]) -> Iterator[str]:
        for playback in playbacks:
            for arrival in playback.after_end:
                kind = "frame" if isinstance(arrival.message, AudioFrame) else arrival.message.type
                yield (
                    f"{playback.session_id}: a {kind} arrived after its playback's "
                    f"{playback.end.type if playback.end else 'end'} event"
                )
                break

    def _isolation(self, playbacks: list[Playback]) -> Iterator[str]:
        keeper = [p for p in playbacks if p.session_id == self.keeper]
        if not keeper:
            yield "the keeper session never started"
            return
        times = [a.at for a in keeper[0].frames]
        if len(times) < 100:
            yield f"the keeper got only {len(times)} frames"
            return
        for before, after in itertools.pairwise(times):
            if after - before > MAX_GAP_SECONDS:
                yield (
                    f"the keeper stalled {1000 * (after - before):.0f} ms while other sessions "
                    "changed"
                )
                return

    def _pacing(self, playbacks: list[Playback]) -> Iterator[str]:
        keeper = [p for p in playbacks if p.session_id == self.keeper]
        if not keeper or len(keeper[0].frames) < 150:
            yield "not enough keeper frames to judge pacing"
            return
        times = [a.at for a in keeper[0].frames]
        steady = times[len(times) // 4 :]  # well past any prebuffer burst
        rate = (len(steady) - 1) / (steady[-1] - steady[0])
        if not PACED_RATE[0] <= rate <= PACED_RATE[1]:
            yield f"{rate:.1f} frames/s, expected 50 (between {PACED_RATE[0]} and {PACED_RATE[1]})"
        offsets = sorted(t - 0.020 * i for i, t in enumerate(steady))
        lateness = offsets[int(0.99 * (len(offsets) - 1))] - offsets[0]
        if lateness > LATENESS_P99_SECONDS:
            yield f"p99 frame lateness {1000 * lateness:.1f} ms, above {1000 * LATENESS_P99_SECONDS:.0f} ms"

    def _payloads(self, playbacks: list[Playback]) -> Iterator[str]:
        for playback in playbacks:
            payloads = [
                bytes(a.message.payload)
                for a in playback.frames
                if isinstance(a.message, AudioFrame)
            ]
            label = f"{playback.session_id} ({playback.format})"
            if not payloads:
                yield f"{label}: no payloads"
            elif playback.format == "pcm":
                sizes = {len(p) for p in payloads}
                if sizes != {FRAME_BYTES}:
                    yield f"{label}: PCM payloads of {sorted(sizes)[:5]} bytes, expected {FRAME_BYTES}"
            elif playback.format in ("opus", "web"):
                yield from _check_ogg(label, payloads)
            elif playback.format == "opus-packets":
                yield from _check_packets(label, payloads)


def _check_ogg(label: str, pages: list[bytes]) -> Iterator[str]:
    for index, page in enumerate(pages):
        buffer = bytearray(page)
        try:
            whole = split_ogg_pages(buffer) == [page] and not buffer
        except ValueError:
            whole = False
        if not whole:
            yield f"{label}: payload {index} is not exactly one Ogg page"
            return
    if b"OpusHead" not in pages[0] or b"OpusTags" not in pages[1]:
        yield f"{label}: the first payloads are not the OpusHead and OpusTags pages"
        return
    try:
        import io

        with av.open(io.BytesIO(b"".join(pages)), mode="r", format="ogg") as container:
            samples = sum(frame.samples for frame in container.decode(audio=0))
    except av.FFmpegError as exc:
        yield f"{label}: the pages do not decode: {exc}"
        return
    audio_pages = len(pages) - 2
    if abs(samples - audio_pages * FRAME_SAMPLES) > 2 * FRAME_SAMPLES:
        yield f"{label}: {audio_pages} audio pages decoded to {samples} samples, not 20 ms each"


def _check_packets(label: str, packets: list[bytes]) -> Iterator[str]:
    codec = av.CodecContext.create("opus", "r")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "stereo"
    for index, packet in enumerate(packets):
        try:
            samples = sum(frame.samples for frame in codec.decode(av.Packet(packet)))
        except av.FFmpegError as exc:
            yield f"{label}: packet {index} does not decode: {exc}"
            return
        if samples != FRAME_SAMPLES:
            yield f"{label}: packet {index} decodes to {samples} samples, not 960 (20 ms)"
            return
    if packets[-SILENCE_FRAMES:] != [OPUS_SILENCE] * SILENCE_FRAMES:
        yield f"{label}: the playback did not end with {SILENCE_FRAMES} Opus silence frames F8 FF FE"


def render_sender_results(results: list[SenderResult]) -> Iterator[str]:
    yield f"{'property':<22} result"
    for result in results:
        yield f"{result.name:<22} {'pass' if result.passed else 'FAIL'}"
    for result in results:
        if not result.passed:
            yield ""
            yield f"FAIL {result.name}: {result.failure}"
            if result.detail:
                yield f"  also: {result.detail}"
