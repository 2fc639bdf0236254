# Strategy: the worker-process side of the codec pool. Each worker owns the
# PyAV pipelines of the playbacks assigned to it and answers the node's typed
# requests (codec_messages.py), one at a time, over a multiprocessing pipe:
#   OpenRequest  -> Opened(duration) | OpenFailed(message, problem)
#   TakeRequest  -> Batch(payloads, error)
#   CloseRequest -> Closed
#   Quit         -> the worker returns
# A decode error is returned with the payloads decoded before it, so nothing
# decoded is lost. Running the codecs here, not in threads of the node,
# leaves the node's GIL to its event loop (see bench/sender.py).
from __future__ import annotations

from collections.abc import Generator, Iterator
from itertools import islice
from multiprocessing.connection import Connection

from snowmux.protocol import PayloadFormat

from .codec_messages import (
    Batch,
    Closed,
    CloseRequest,
    Opened,
    OpenFailed,
    OpenRequest,
    Quit,
    Request,
    TakeRequest,
)
from .encoders import Payload, encode_payloads
from .pipeline import DecodedAudio, MediaError, MediaProblem, VolumeStage, cut_frames

__all__ = ["playback_payloads", "worker_main"]


def playback_payloads(
    audio: DecodedAudio, audio_format: PayloadFormat, bitrate: int | None, volume: float
) -> Generator[Payload, None, None]:
    """The payloads of one playback: decode, cut into 20 ms, adjust volume, encode."""
    try:
        frames = cut_frames(audio.pcm())
        if volume != 1.0:
            frames = VolumeStage(volume).apply(frames)
        yield from encode_payloads(audio_format, frames, bitrate)
    finally:
        audio.close()


def _take(payloads: Iterator[Payload], count: int) -> tuple[list[tuple[bytes, bool]], str | None]:
    batch: list[tuple[bytes, bool]] = []
    try:
        for payload in islice(payloads, count):
            batch.append((payload.data, payload.is_header))
    except MediaError as exc:
        return batch, str(exc)
    except Exception as exc:  # an unexpected PyAV failure ends this playback only
        return batch, f"playback failed: {exc}"
    return batch, None


def _open(
    request: OpenRequest,
) -> tuple[Opened | OpenFailed, Generator[Payload, None, None] | None]:
    play = request.play
    audio = DecodedAudio(request.source, play.start_at)
    try:
        duration = audio.open()
    except MediaError as exc:
        return OpenFailed(request.seq, str(exc), exc.problem), None
    except Exception as exc:
        message = f"cannot open {request.source.url}: {exc}"
        return OpenFailed(request.seq, message, MediaProblem.UNPLAYABLE), None
    payloads = playback_payloads(audio, play.format, play.bitrate, play.volume)
    return Opened(request.seq, duration), payloads


def worker_main(connection: Connection) -> None:
    # Not niced: measured with bench.sender, a lower priority starved the
    # codecs (p99 lateness 6 ms -> 1 s at 176 sessions) more than it helped
    # the event loop, which needs only a fifth of a core.
    playbacks: dict[int, Generator[Payload, None, None]] = {}
    while True:
        try:
            request: Request = connection.recv()
        except (EOFError, OSError):
            return  # the node went away
        if isinstance(request, Quit):
            return
        if isinstance(request, OpenRequest):
            reply, payloads = _open(request)
            if payloads is not None:
                playbacks[request.playback] = payloads
            connection.send(reply)
        elif isinstance(request, TakeRequest):
            generator = playbacks.get(request.playback)
            if generator is None:
                connection.send(Batch(request.seq, [], None))
                continue
            batch, error = _take(generator, request.max_payloads)
            if error is not None or not batch:
                playbacks.pop(request.playback, None)
            connection.send(Batch(request.seq, batch, error))
        elif isinstance(request, CloseRequest):
            finished = playbacks.pop(request.playback, None)
            if finished is not None:
                finished.close()
            connection.send(Closed(request.seq))
