# Strategy: the worker-process side of the codec pool. Each worker owns the
# PyAV state of the playbacks assigned to it and answers the node's typed
# requests (codec_messages.py) over a multiprocessing pipe, a list of them per
# message (the node sends those of one event-loop step together):
#   OpenRequest  -> Opened(duration, passthrough) | OpenFailed(message, problem)
#   TakeRequest  -> Batch(payloads in columns, error)
#   ControlRequest -> Controlled(error): applied at the next frame boundary
#   QueueRequest -> Controlled(error): append (opened in the background) / clear / skip
#   CloseRequest -> Closed
#   Quit         -> the worker returns
# A decode error is returned with the payloads decoded before it, so nothing
# decoded is lost. A transcoded playback is a Chain (chain.py) feeding one
# encoder generator that lives as long as the playback, so a control changes
# the PCM and never the Opus/Ogg stream. An Opus source that [P8] allows is
# forwarded instead (passthrough.py) until the first control or queue
# operation, which switches it to a Chain where the packets stopped, keeping
# the Ogg stream and the encoder's timing continuous (_switch).
# Lanes (SPEC.md [P3], [P7]): a thread reads the pipe; opens run on open
# threads (one for local files, four for remote URLs); one codec thread
# serves takes, controls and closes in deadline order (codec_schedule.py):
# playing sessions' due refills before starting playbacks' prebuffers, so a
# burst of plays never delays a playing session's refill. Running the codecs
# here, not in threads of the node, leaves the node's GIL to its event loop
# (see bench/sender.py).
from __future__ import annotations

import sys
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import islice
from multiprocessing.connection import Connection

from snowmux.protocol import PayloadFormat

from ..audio_format import FRAME_SAMPLES, SAMPLE_RATE
from .chain import Chain
from .codec_messages import (
    Batch,
    Closed,
    CloseRequest,
    Controlled,
    ControlRequest,
    Opened,
    OpenFailed,
    OpenRequest,
    QueueRequest,
    Quit,
    Reply,
    Request,
    TakeRequest,
)
from .codec_schedule import WorkQueue
from .encoders import (
    DEFAULT_BITRATES,
    OPUS_ENCODER_DELAY,
    Payload,
    StreamEvent,
    encode_payloads,
    opus_packets,
)
from .media import MediaKind
from .ogg_packets import OggPacketMuxer
from .passthrough import Passthrough, open_passthrough, passthrough_possible
from .pipeline import DecodedAudio, MediaError, MediaProblem

__all__ = ["playback_payloads", "worker_main"]

# Opens run on threads of their own so that no open or probe ever delays a
# refill by holding the codec thread (see codec_schedule.py). Local opens get
# one thread: each is a few ms of work that holds the GIL most of the time,
# and four of them at once (a burst of plays) took the GIL from the codec
# thread so often that playing sessions fell behind (bench.sender (e): p99
# 76-131 ms with four threads, 11 ms with one). Remote opens wait on the
# network, GIL released, up to MEDIA_OPEN_TIMEOUT_SECONDS: four threads, so
# one slow server never holds up the others.
LOCAL_OPEN_THREADS = 1
REMOTE_OPEN_THREADS = 4
# The codec thread asks for the GIL back after 1 ms instead of Python's 5 ms
# while an open thread runs Python code (measured with (e): p99 11 -> 9.5 ms).
SWITCH_INTERVAL_SECONDS = 0.001
# A transcoder taking over from a passthrough starts this many samples early
# and its first packet is dropped: the encoder's lookahead then lies inside
# the dropped packet, and the next one continues the forwarded audio exactly.
_TAKEOVER_LEAD = FRAME_SAMPLES - OPUS_ENCODER_DELAY


def playback_payloads(chain: Chain, encoded: Iterator[Payload]) -> Generator[Payload, None, None]:
    """The payloads of one playback: ``encoded`` (the chain's frames, encoded), with its events."""
    try:
        for payload in encoded:
            yield Payload(payload.data, payload.is_header, chain.position, chain.take_events())
        events = chain.take_events()
        if events:  # tied to the end of the last frame (a track_end): events only
            yield Payload(b"", False, chain.position, events)
    finally:
        chain.close()


def _take(seq: int, payloads: Iterator[Payload], count: int) -> Batch:
    data: list[bytes] = []
    positions: list[float | None] = []
    headers: list[int] = []
    events: dict[int, tuple[StreamEvent, ...]] = {}
    error: str | None = None
    try:
        for index, payload in enumerate(islice(payloads, count)):
            data.append(payload.data)
            positions.append(payload.position)
            if payload.is_header:
                headers.append(index)
            if payload.events:
                events[index] = payload.events
    except MediaError as exc:
        error = str(exc)
    except Exception as exc:  # an unexpected PyAV failure ends this playback only
        error = f"playback failed: {exc}"
    return Batch(seq, data, positions, tuple(headers), events, error)


def _continued(packets: Iterator[bytes], muxer: OggPacketMuxer | None) -> Iterator[Payload]:
    """Encoder packets as the payloads of a playback that passed through until now."""
    if muxer is None:
        for packet in packets:
            yield Payload(packet)
        return
    for packet in packets:
        yield from muxer.mux(packet, FRAME_SAMPLES)
    yield from muxer.close()


class _Playback:
    """One playback in this worker: a Chain, or a Passthrough until a control arrives."""

    def __init__(self, request: OpenRequest) -> None:
        self.request = request
        self.chain: Chain | None = None
        self.passthrough: Passthrough | None = None
        self.payloads: Generator[Payload, None, None] = _nothing()

    def transcode(self, chain: Chain) -> None:
        play = self.request.play
        self.chain = chain
        self.payloads = playback_payloads(
            chain, encode_payloads(play.format, chain.frames(), play.bitrate)
        )

    def pass_through(self, passthrough: Passthrough) -> None:
        self.passthrough = passthrough
        self.payloads = passthrough.payloads()

    def chain_for_control(self, resume_at: float | None, seeking: bool) -> Chain | None:
        """The Chain to apply a control to, switching a passthrough over to one first.

        None: an Ogg passthrough that has played out (its stream is closed), so
        nothing is left to change.
        """
        passthrough = self.passthrough
        if passthrough is not None:
            if passthrough.finished and passthrough.muxer is not None:
                return None
            self._switch(resume_at, seeking)
        return self.chain

    def _switch(self, resume_at: float | None, seeking: bool) -> None:
        """Transcode from here on: from ``resume_at`` (the node dropped the rest), or where
        the forwarded packets stopped. A seek needs no continuity: it jumps anyway.
        """
        passthrough = self.passthrough
        assert passthrough is not None
        at = round((passthrough.position if resume_at is None else resume_at) * SAMPLE_RATE)
        lead = _TAKEOVER_LEAD if not seeking and at >= _TAKEOVER_LEAD else 0
        request, play = self.request, self.request.play
        chain = Chain(
            request.source,
            replace(play, start_at=(at - lead) / SAMPLE_RATE),
            request.crossfade_ms,
            request.queued,
        )
        chain.open()  # raises MediaError: the passthrough goes on
        self.payloads.close()  # its Ogg muxer lives on
        passthrough.close()
        self.passthrough = None
        self.chain = chain
        packets = opus_packets(chain.frames(), play.bitrate or DEFAULT_BITRATES[play.format])
        if lead:
            packets = islice(packets, 1, None)
        self.payloads = playback_payloads(chain, _continued(packets, passthrough.muxer))

    def close(self) -> None:
        self.payloads.close()
        if self.chain is not None:
            self.chain.close()
        if self.passthrough is not None:
            self.passthrough.close()


def _nothing() -> Generator[Payload, None, None]:
    yield from ()


def _open(request: OpenRequest) -> tuple[Opened | OpenFailed, _Playback | None]:
    play = request.play
    playback = _Playback(request)
    chain = Chain(request.source, play, request.crossfade_ms, request.queued)
    try:
        opened: DecodedAudio | None = None
        if request.source.tone is None and play.format is not PayloadFormat.PCM:
            opened = DecodedAudio(request.source, play.start_at)
            duration = opened.open_stream()
            if passthrough_possible(opened, play, request.queued):
                forwarded = open_passthrough(opened, play)
                if forwarded is not None:
                    playback.pass_through(forwarded)
                    restartable = play.format is PayloadFormat.OPUS_PACKETS
                    return Opened(request.seq, duration, True, restartable), playback
                opened.close()  # peeking read packets: the transcoder starts afresh
                opened = None
        duration = chain.open(opened)
    except MediaError as exc:
        return OpenFailed(request.seq, str(exc), exc.problem), None
    except Exception as exc:
        message = f"cannot open {request.source.url}: {exc}"
        return OpenFailed(request.seq, message, MediaProblem.UNPLAYABLE), None
    playback.transcode(chain)
    return Opened(request.seq, duration), playback


def _control(playback: _Playback, request: ControlRequest) -> Controlled:
    try:
        chain = playback.chain_for_control(request.resume_at, request.control.position is not None)
        if chain is not None:
            chain.control(request.control)
    except MediaError as exc:
        return Controlled(request.seq, str(exc))
    except Exception as exc:  # an unexpected PyAV failure ends this playback only
        return Controlled(request.seq, f"control failed: {exc}")
    return Controlled(request.seq, None)


def _queue(playback: _Playback, request: QueueRequest) -> Controlled:
    try:
        chain = playback.chain_for_control(request.resume_at, False)
        if chain is None:
            return Controlled(request.seq, "the playback has ended")
        chain.queue(request.op)
    except MediaError as exc:
        return Controlled(request.seq, str(exc))
    except Exception as exc:  # an unexpected PyAV failure ends this playback only
        return Controlled(request.seq, f"queue operation failed: {exc}")
    return Controlled(request.seq, None)


class _Lanes:
    """The worker's lanes: the pipe reader, the open threads, the codec thread."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.playbacks: dict[int, _Playback] = {}
        self.work: WorkQueue[Request] = WorkQueue()
        self.local_opens = ThreadPoolExecutor(LOCAL_OPEN_THREADS, thread_name_prefix="snowmux-open")
        self.remote_opens = ThreadPoolExecutor(
            REMOTE_OPEN_THREADS, thread_name_prefix="snowmux-open-remote"
        )
        self._send_lock = threading.Lock()  # replies come from several threads

    def send(self, reply: Reply) -> None:
        with self._send_lock:
            self.connection.send(reply)

    def read(self) -> None:
        """Reader thread: route requests until Quit or until the node goes away."""
        try:
            while True:
                try:
                    requests: list[Request] = self.connection.recv()
                except (EOFError, OSError):
                    return  # the node went away
                for request in requests:
                    if isinstance(request, Quit):
                        return
                    self._route(request)
        finally:
            self.work.close()

    def _route(self, request: Request) -> None:
        if isinstance(request, OpenRequest):
            remote = request.source.kind is MediaKind.REMOTE
            (self.remote_opens if remote else self.local_opens).submit(self.open, request)
        elif isinstance(request, TakeRequest):
            # playback numbers grow with start order: the seniority of codec_schedule
            self.work.put(request, request.deadline, request.playback)
        else:
            self.work.put(request, None)

    def open(self, request: OpenRequest) -> None:
        """Open thread: PyAV releases the GIL while it opens and probes."""
        reply, playback = _open(request)
        if playback is not None:
            self.playbacks[request.playback] = playback  # before the reply: takes follow it
        self.send(reply)

    def serve(self) -> None:
        """Codec thread: serve takes, controls and closes in WorkQueue order until closed."""
        while (request := self.work.get()) is not None:
            self.send(self._answer(request))

    def _answer(self, request: Request) -> Reply:
        if isinstance(request, CloseRequest):
            finished = self.playbacks.pop(request.playback, None)
            if finished is not None:
                finished.close()
            return Closed(request.seq)
        if isinstance(request, TakeRequest):
            playback = self.playbacks.get(request.playback)
            if playback is None:
                return Batch(request.seq, [], [], (), {}, None)
            # An ended playback stays until its close: a passthrough may still
            # restart behind the node's buffer (Opened.restartable).
            return _take(request.seq, playback.payloads, request.max_payloads)
        if isinstance(request, ControlRequest):
            playback = self.playbacks.get(request.playback)
            if playback is None:  # already closed: nothing left to change
                return Controlled(request.seq, None)
            return _control(playback, request)
        if isinstance(request, QueueRequest):
            playback = self.playbacks.get(request.playback)
            if playback is None:
                return Controlled(request.seq, "the playback has ended")
            return _queue(playback, request)
        raise TypeError(f"a codec worker cannot serve {type(request).__name__}")


def worker_main(connection: Connection) -> None:
    # Not niced, and no lane is either: measured with bench.sender, a lower
    # priority starved the codecs (p99 lateness 6 ms -> 1 s at 176 sessions),
    # and a niced starting lane starved new sessions on a loaded machine while
    # holding the GIL that the playing lane needed.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    lanes = _Lanes(connection)
    threading.Thread(target=lanes.read, name="snowmux-pipe", daemon=True).start()
    try:
        lanes.serve()
    except (BrokenPipeError, OSError):
        pass  # the node went away while we answered
    finally:
        lanes.local_opens.shutdown(wait=False, cancel_futures=True)
        lanes.remote_opens.shutdown(wait=False, cancel_futures=True)
