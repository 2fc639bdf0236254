# Strategy: the worker-process side of the codec pool. Each worker owns the
# PyAV pipelines of the playbacks assigned to it and answers the node's typed
# requests (codec_messages.py), one at a time, over a multiprocessing pipe:
#   OpenRequest  -> Opened(duration) | OpenFailed(message, problem)
#   TakeRequest  -> Batch(payloads, error)
#   ControlRequest -> Controlled(error): applied at the next frame boundary
#   QueueRequest -> Controlled(error): append (opened in the background) / clear / skip
#   CloseRequest -> Closed
#   Quit         -> the worker returns
# A decode error is returned with the payloads decoded before it, so nothing
# decoded is lost. Each playback is a Chain (chain.py) feeding one encoder
# generator that lives as long as the playback, so a control changes the PCM
# and never the Opus/Ogg stream. Running the codecs here, not in threads of the node,
# leaves the node's GIL to its event loop (see bench/sender.py).
from __future__ import annotations

from collections.abc import Generator, Iterator
from itertools import islice
from multiprocessing.connection import Connection

from snowmux.protocol import PayloadFormat

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
    PayloadTuple,
    QueueRequest,
    Quit,
    Request,
    TakeRequest,
)
from .encoders import Payload, encode_payloads
from .pipeline import MediaError, MediaProblem

__all__ = ["playback_payloads", "worker_main"]


def playback_payloads(
    chain: Chain, audio_format: PayloadFormat, bitrate: int | None
) -> Generator[Payload, None, None]:
    """The payloads of one playback: the chain's frames, encoded, with its events."""
    try:
        for payload in encode_payloads(audio_format, chain.frames(), bitrate):
            yield Payload(payload.data, payload.is_header, chain.position, chain.take_events())
        events = chain.take_events()
        if events:  # tied to the end of the last frame (a track_end): events only
            yield Payload(b"", False, chain.position, events)
    finally:
        chain.close()


def _take(payloads: Iterator[Payload], count: int) -> tuple[list[PayloadTuple], str | None]:
    batch: list[PayloadTuple] = []
    try:
        for payload in islice(payloads, count):
            batch.append((payload.data, payload.is_header, payload.position, payload.events))
    except MediaError as exc:
        return batch, str(exc)
    except Exception as exc:  # an unexpected PyAV failure ends this playback only
        return batch, f"playback failed: {exc}"
    return batch, None


class _Playback:
    def __init__(self, chain: Chain, payloads: Generator[Payload, None, None]) -> None:
        self.chain = chain
        self.payloads = payloads


def _open(request: OpenRequest) -> tuple[Opened | OpenFailed, _Playback | None]:
    play = request.play
    chain = Chain(request.source, play, request.crossfade_ms, request.queued)
    try:
        duration = chain.open()
    except MediaError as exc:
        return OpenFailed(request.seq, str(exc), exc.problem), None
    except Exception as exc:
        message = f"cannot open {request.source.url}: {exc}"
        return OpenFailed(request.seq, message, MediaProblem.UNPLAYABLE), None
    payloads = playback_payloads(chain, play.format, play.bitrate)
    return Opened(request.seq, duration), _Playback(chain, payloads)


def _control(playback: _Playback, request: ControlRequest) -> Controlled:
    try:
        playback.chain.control(request.control)
    except MediaError as exc:
        return Controlled(request.seq, str(exc))
    except Exception as exc:  # an unexpected PyAV failure ends this playback only
        return Controlled(request.seq, f"control failed: {exc}")
    return Controlled(request.seq, None)


def _queue(playback: _Playback, request: QueueRequest) -> Controlled:
    try:
        playback.chain.queue(request.op)
    except MediaError as exc:
        return Controlled(request.seq, str(exc))
    except Exception as exc:  # an unexpected PyAV failure ends this playback only
        return Controlled(request.seq, f"queue operation failed: {exc}")
    return Controlled(request.seq, None)


def worker_main(connection: Connection) -> None:
    # Not niced: measured with bench.sender, a lower priority starved the
    # codecs (p99 lateness 6 ms -> 1 s at 176 sessions) more than it helped
    # the event loop, which needs only a fifth of a core.
    playbacks: dict[int, _Playback] = {}
    while True:
        try:
            request: Request = connection.recv()
        except (EOFError, OSError):
            return  # the node went away
        if isinstance(request, Quit):
            return
        if isinstance(request, OpenRequest):
            reply, opened = _open(request)
            if opened is not None:
                playbacks[request.playback] = opened
            connection.send(reply)
        elif isinstance(request, TakeRequest):
            playback = playbacks.get(request.playback)
            if playback is None:
                connection.send(Batch(request.seq, [], None))
                continue
            batch, error = _take(playback.payloads, request.max_payloads)
            if error is not None or not batch:
                playbacks.pop(request.playback, None)
            connection.send(Batch(request.seq, batch, error))
        elif isinstance(request, ControlRequest):
            playback = playbacks.get(request.playback)
            if playback is None:  # already at its end: nothing left to change
                connection.send(Controlled(request.seq, None))
                continue
            connection.send(_control(playback, request))
        elif isinstance(request, QueueRequest):
            playback = playbacks.get(request.playback)
            if playback is None:
                connection.send(Controlled(request.seq, "the playback has ended"))
                continue
            connection.send(_queue(playback, request))
        elif isinstance(request, CloseRequest):
            finished = playbacks.pop(request.playback, None)
            if finished is not None:
                finished.payloads.close()
                finished.chain.close()
            connection.send(Closed(request.seq))
