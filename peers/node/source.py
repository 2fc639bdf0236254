# Strategy: pull one playback's payloads from its pipeline in a codec worker
# process, a batch at a time, keeping a small buffer ahead of the pacer; the
# event loop itself never decodes. A decoding error surfaces only after the
# payloads decoded before it have been taken: nothing decoded is lost.
# The buffer is kept small because a control (PATCH: seek, volume, filters)
# applies in the worker after what is buffered here has played out: at most
# LOW_WATER + BATCH - 1 frames (380 ms) lie between a PATCH and the first changed
# frame, inside SPEC.md's 600 ms rule together with the 20 ms pacing step.
from __future__ import annotations

import asyncio
from collections import deque

from .codec_pool import RemotePipeline
from .controls import PlaybackControl
from .encoders import Payload
from .pipeline import MediaError
from .queue import QueueOp

__all__ = ["PayloadSource"]

FIRST_BATCH = 5  # small first batch: the first frame leaves within milliseconds of /play
BATCH = 10  # 200 ms of audio per worker request afterwards (25 before PATCH: see above)
LOW_WATER = 10  # refill below 200 ms: a loaded worker answers well within that


class PayloadSource:
    def __init__(self, pipeline: RemotePipeline) -> None:
        self._pipeline = pipeline
        self._buffer: deque[Payload] = deque()
        self._in_flight: asyncio.Future[tuple[list[Payload], str | None]] | None = None
        self._error: BaseException | None = None
        self._exhausted = False
        self._batch = FIRST_BATCH

    def _start_refill(self) -> None:
        future = asyncio.ensure_future(self._pipeline.take(self._batch))
        future.add_done_callback(self._absorb)
        self._in_flight = future
        self._batch = BATCH

    def _absorb(self, future: asyncio.Future[tuple[list[Payload], str | None]]) -> None:
        """Take a finished batch into the buffer (idempotent)."""
        if self._in_flight is not future:
            return
        self._in_flight = None
        if future.cancelled():
            self._exhausted = True
            return
        error = future.exception()
        if error is not None:
            self._error = error
            self._exhausted = True
            return
        batch, message = future.result()
        self._buffer.extend(batch)
        if message is not None:
            self._error = MediaError(message)
        if message is not None or not batch:
            self._exhausted = True

    async def next(self) -> Payload | None:
        """The next payload, or None at the end; re-raises a decoding error."""
        while not self._buffer:
            if self._exhausted:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                return None
            if self._in_flight is None:
                self._start_refill()
            future = self._in_flight
            assert future is not None
            await asyncio.wait([future])
            self._absorb(future)
        payload = self._buffer.popleft()
        if len(self._buffer) < LOW_WATER and not self._exhausted and self._in_flight is None:
            self._start_refill()
        return payload

    @property
    def buffered(self) -> bool:
        """Whether next() can answer without waiting for the worker."""
        return bool(self._buffer) or (self._exhausted and self._in_flight is None)

    async def control(self, control: PlaybackControl) -> None:
        """Pass a control to the pipeline (after any batch already asked for)."""
        await self._pipeline.control(control)

    async def queue(self, op: QueueOp) -> None:
        """Pass a queue operation to the pipeline (after any batch already asked for)."""
        await self._pipeline.queue(op)

    async def aclose(self) -> None:
        """Release the pipeline in its worker once no batch is in flight."""
        future = self._in_flight
        if future is not None:
            await asyncio.wait([future])
        await self._pipeline.aclose()
