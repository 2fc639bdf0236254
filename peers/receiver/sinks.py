# Strategy: where routed messages go. A Sink receives the frames and events
# of one session, plus a notice when the connection to the node was lost
# mid-playback. Sinks are deliberately synchronous and quick (a file write, a
# queue put): the router calls them inline, and isolates their failures.
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from snowmux.protocol import AudioFrame, Event

__all__ = ["CompositeSink", "FrameQueue", "NullSink", "Sink"]

log = logging.getLogger("snowmux.receiver.sinks")


class Sink(Protocol):
    def on_frame(self, frame: AudioFrame) -> None: ...

    def on_event(self, event: Event) -> None: ...

    def on_interrupted(self, reason: str) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Accepts and forgets everything (benchmarks, counting only)."""

    def on_frame(self, frame: AudioFrame) -> None:
        pass

    def on_event(self, event: Event) -> None:
        pass

    def on_interrupted(self, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


class CompositeSink:
    """Several sinks for one session (files and WebSocket clients), each isolated."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    def _each(self, method: str, *args: object) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except Exception:
                log.exception("sink %r failed in %s; the others carry on", sink, method)

    def on_frame(self, frame: AudioFrame) -> None:
        self._each("on_frame", frame)

    def on_event(self, event: Event) -> None:
        self._each("on_event", event)

    def on_interrupted(self, reason: str) -> None:
        self._each("on_interrupted", reason)

    def close(self) -> None:
        self._each("close")


class FrameQueue:
    """A bounded queue of one session's frames: ``async for frame in queue``.

    When the consumer falls behind, the oldest frame is dropped (and counted)
    so the router never blocks. Iteration ends when the queue is closed.
    """

    def __init__(self, maxsize: int) -> None:
        # Unbounded underneath: the bound is enforced on frames only, so the
        # end-of-stream marker always fits and closing loses nothing.
        self._queue: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self.maxsize = maxsize
        self.dropped = 0
        self.closed = False

    def on_frame(self, frame: AudioFrame) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self.maxsize:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(frame)

    def on_event(self, event: Event) -> None:
        pass

    def on_interrupted(self, reason: str) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AudioFrame]:
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            yield frame
