# Strategy: pull one playback's payloads from its (blocking) PyAV generator
# in worker threads, a batch at a time, keeping a small buffer ahead of the
# pacer. The event loop never decodes, so no session's decoding can delay
# another session's frames; the generator is only ever advanced by one thread
# at a time (one batch in flight). An error raised while decoding surfaces
# only after the payloads decoded before it have been taken: nothing decoded
# is lost.
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor
from itertools import islice

from .encoders import Payload

__all__ = ["PayloadSource"]

FIRST_BATCH = 5  # small first batch: the first frame leaves within milliseconds of /play
BATCH = 25  # 500 ms of audio per worker call afterwards
LOW_WATER = 25  # refill when less than 500 ms is buffered


class PayloadSource:
    def __init__(self, payloads: Iterator[Payload], executor: Executor) -> None:
        self._payloads = payloads
        self._executor = executor
        self._buffer: deque[Payload] = deque()
        self._in_flight: asyncio.Future[list[Payload]] | None = None
        self._error: BaseException | None = None
        self._exhausted = False
        self._batch = FIRST_BATCH

    def _take(self, count: int) -> list[Payload]:
        return list(islice(self._payloads, count))

    def _start_refill(self) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._take, self._batch)
        future.add_done_callback(self._absorb)
        self._in_flight = future
        self._batch = BATCH

    def _absorb(self, future: asyncio.Future[list[Payload]]) -> None:
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
        batch = future.result()
        self._buffer.extend(batch)
        if not batch:
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

    async def aclose(self) -> None:
        """Release the generator (and its PyAV objects) once no batch is running."""
        future = self._in_flight
        if future is not None:
            await asyncio.wait([future])
        loop = asyncio.get_running_loop()
        close = getattr(self._payloads, "close", None)
        if close is not None:
            await loop.run_in_executor(self._executor, close)
