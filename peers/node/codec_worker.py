# Strategy: the worker-process side of the codec pool. Each worker owns the
# PyAV pipelines of the playbacks assigned to it and answers requests from
# the node, one at a time, over a multiprocessing pipe:
#   ("open", seq, playback, source, request) -> ("opened", seq, duration) | ("failed", seq, msg, problem)
#   ("take", seq, playback, count)           -> ("batch", seq, [(bytes, is_header)], error)
#   ("close", seq, playback)                 -> ("closed", seq)
# A decode error is returned with the payloads decoded before it, so nothing
# decoded is lost. Running the codecs here, not in threads of the node,
# leaves the node's GIL to its event loop (see bench/sender.py).
from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from multiprocessing.connection import Connection
from typing import Any

from .encoders import Payload, encode_payloads
from .pipeline import DecodedAudio, MediaError, MediaProblem, VolumeStage, cut_frames

__all__ = ["playback_payloads", "worker_main"]


def playback_payloads(
    audio: DecodedAudio, audio_format: str, bitrate: int | None, volume: float
) -> Iterator[Payload]:
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


def worker_main(connection: Connection) -> None:
    # Not niced: measured with bench.sender, a lower priority starved the
    # codecs (p99 lateness 6 ms -> 1 s at 176 sessions) more than it helped
    # the event loop, which needs only a fifth of a core.
    playbacks: dict[int, Iterator[Payload]] = {}
    while True:
        try:
            request: Any = connection.recv()
        except (EOFError, OSError):
            return  # the node went away
        kind, seq = request[0], request[1]
        if kind == "quit":
            return
        if kind == "open":
            _, _, playback, source, request_fields = request
            audio = DecodedAudio(source, request_fields["start_at"])
            try:
                duration = audio.open()
            except MediaError as exc:
                connection.send(("failed", seq, str(exc), exc.problem))
                continue
            except Exception as exc:
                message = f"cannot open {source.url}: {exc}"
                connection.send(("failed", seq, message, MediaProblem.UNPLAYABLE))
                continue
            playbacks[playback] = playback_payloads(
                audio, request_fields["format"], request_fields["bitrate"], request_fields["volume"]
            )
            connection.send(("opened", seq, duration))
        elif kind == "take":
            _, _, playback, count = request
            payloads = playbacks.get(playback)
            if payloads is None:
                connection.send(("batch", seq, [], None))
                continue
            batch, error = _take(payloads, count)
            if error is not None or not batch:
                playbacks.pop(playback, None)
            connection.send(("batch", seq, batch, error))
        elif kind == "close":
            payloads = playbacks.pop(request[2], None)
            if payloads is not None:
                close = getattr(payloads, "close", None)
                if close is not None:
                    close()
            connection.send(("closed", seq))
