# Strategy: pull one playback's payloads from its pipeline in a codec worker
# process, a batch at a time, keeping a small buffer ahead of the pacer; the
# event loop itself never decodes. Each refill tells the worker when this
# playback runs dry, so the worker serves the most urgent first
# (codec_schedule.py). A decoding error surfaces only after the payloads
# decoded before it have been taken: nothing decoded is lost.
# The buffer of a transcoded playback is kept small because a control (PATCH:
# seek, volume, filters) applies in the worker after what is buffered here
# has played out: at most LOW_WATER + BATCH - 1 frames (380 ms) lie between a
# PATCH and the first changed frame, inside SPEC.md's 600 ms rule together
# with the 20 ms pacing step. A restartable passthrough (raw Opus packets,
# codec_messages.Opened) buffers 4 s instead, because a control drops that
# buffer and restarts the worker where the dropped payloads began.
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from .codec_messages import Batch, PayloadTuple, Reply
from .codec_pool import RemotePipeline
from .controls import PlaybackControl
from .pipeline import MediaError
from .queue import QueueOp

__all__ = ["PayloadSource"]

FIRST_BATCH = 5  # small first batch: the first frame leaves within milliseconds of /play
BATCH = 10  # 200 ms of audio per worker request afterwards (25 before PATCH: see above)
LOW_WATER = 10  # refill below 200 ms: a loaded worker answers well within that
# A passthrough take costs the worker almost nothing but the pipe round trip
# (two process wake-ups, more than demuxing the packets), so restartable
# passthroughs take 4 s at a time: 60-120 KB of packets per playback, for a
# sixth less node CPU than 2 s batches (bench.sender (f)).
PASSTHROUGH_BATCH = 200
# Playbacks started together would refill together, every 4 s for good (300
# batches of 200 payloads in one burst stalled the pacing clock by ~10 ms);
# each playback's low-water mark is spread over the lower half of its batch
# by a golden-ratio sequence of its number, so their refills spread out.
_GOLDEN = 0.6180339887498949


class PayloadSource:
    def __init__(
        self,
        pipeline: RemotePipeline,
        deadline: Callable[[int], float | None] | None = None,
    ) -> None:
        """``deadline(buffered)``: when the playback runs dry with that many payloads in hand."""
        self._pipeline = pipeline
        self._deadline = deadline
        self.on_arrival: Callable[[], None] | None = None  # a refill landed (clock.py)
        # Batches as they came (columns: codec_messages.Batch); a payload's
        # tuple is made only when it is taken, so few objects wait here.
        self._batches: deque[Batch] = deque()
        self._cursor = 0  # the next payload's index in _batches[0]
        self._buffered = 0
        self._in_flight: asyncio.Future[Reply] | None = None
        self._error: BaseException | None = None
        self._exhausted = False
        self._held = 0  # restarts under way: no refill meanwhile
        self._restartable = pipeline.restartable  # until the first control switches it
        self._batch = FIRST_BATCH
        self._steady_batch = PASSTHROUGH_BATCH if pipeline.restartable else BATCH
        self._low_water = self._steady_batch
        if pipeline.restartable:
            spread = (pipeline.number * _GOLDEN) % 1.0
            self._low_water = round(PASSTHROUGH_BATCH * (0.5 + 0.5 * spread))

    def _start_refill(self) -> None:
        deadline = None if self._deadline is None else self._deadline(self._buffered)
        future = self._pipeline.take(self._batch, deadline)
        future.add_done_callback(self._arrived)
        self._in_flight = future
        self._batch = self._steady_batch

    def _refill_if_low(self) -> None:
        if (
            self._buffered < self._low_water
            and not self._exhausted
            and self._in_flight is None
            and not self._held
        ):
            self._start_refill()

    def _arrived(self, future: asyncio.Future[Reply]) -> None:
        self._absorb(future)
        if self.on_arrival is not None:
            self.on_arrival()

    def _absorb(self, future: asyncio.Future[Reply]) -> None:
        """Take a finished batch into the buffer (idempotent)."""
        if self._in_flight is not future:
            return
        self._in_flight = None
        if future.cancelled():
            self._exhausted = True
            return
        error = future.exception()
        if error is None:
            try:
                batch = self._pipeline.batch_of(future.result())
            except MediaError as exc:
                error = exc
        if error is not None:
            self._error = error
            self._exhausted = True
            return
        if batch.data:
            self._batches.append(batch)
            self._buffered += len(batch.data)
        if batch.error is not None:
            self._error = MediaError(batch.error)
        if batch.error is not None or not batch.data:
            self._exhausted = True

    def _popleft(self) -> PayloadTuple:
        batch, index = self._batches[0], self._cursor
        if index + 1 < len(batch.data):
            self._cursor = index + 1
        else:
            self._batches.popleft()
            self._cursor = 0
        self._buffered -= 1
        return batch.payload(index)

    def _drop_buffer(self) -> None:
        self._batches.clear()
        self._cursor = 0
        self._buffered = 0

    async def next(self) -> PayloadTuple | None:
        """The next payload, or None at the end; re-raises a decoding error."""
        while not self._buffered:
            if self._exhausted:
                error = self.take_error()
                if error is not None:
                    raise error
                return None
            if self._in_flight is None:
                if self._held:
                    await asyncio.sleep(0)  # a restart is under way
                    continue
                self._start_refill()
            future = self._in_flight
            assert future is not None
            await asyncio.wait([future])
            self._absorb(future)
        payload = self._popleft()
        self._refill_if_low()
        return payload

    def pop(self) -> PayloadTuple | None:
        """The next payload if one is in hand, else None (see ``ended``); never waits."""
        if not self._buffered:
            self._refill_if_low()
            return None
        payload = self._popleft()
        self._refill_if_low()
        return payload

    @property
    def ended(self) -> bool:
        """Every payload has been popped and none will come."""
        return self._exhausted and not self._buffered

    def take_error(self) -> BaseException | None:
        """The error that ended the payloads, once (after ``ended``)."""
        error, self._error = self._error, None
        return error

    @property
    def buffered(self) -> bool:
        """Whether next() can answer without waiting for the worker."""
        return bool(self._buffered) or (self._exhausted and self._in_flight is None)

    async def control(
        self, control: PlaybackControl, restart_at: Callable[[], float] | None = None
    ) -> None:
        """Pass a control to the pipeline (after any batch already asked for).

        ``restart_at``: for a restartable pipeline, called once the buffer is
        dropped; answers where the worker restarts (see the module header).
        """
        await self._restarting(lambda at: self._pipeline.control(control, at), restart_at)

    async def queue(self, op: QueueOp, restart_at: Callable[[], float] | None = None) -> None:
        """Pass a queue operation to the pipeline (after any batch already asked for)."""
        await self._restarting(lambda at: self._pipeline.queue(op, at), restart_at)

    async def _restarting(
        self,
        send: Callable[[float | None], Awaitable[None]],
        restart_at: Callable[[], float] | None,
    ) -> None:
        if restart_at is None or not self._restartable:
            await send(None)
            return
        self._held += 1
        try:
            while self._in_flight is not None:  # its payloads come from before the restart
                future = self._in_flight
                await asyncio.wait([future])
                self._absorb(future)
            self._drop_buffer()
            if self._error is None:
                self._exhausted = False  # the worker makes payloads again from restart_at
            # The worker transcodes from here on: small batches again, for the
            # next control's 600 ms, and nothing of them may be dropped.
            self._restartable = False
            self._batch = self._steady_batch = self._low_water = BATCH
            await send(restart_at())
        finally:
            self._held -= 1
            self._refill_if_low()

    async def aclose(self) -> None:
        """Release the pipeline in its worker once no batch is in flight."""
        future = self._in_flight
        if future is not None:
            await asyncio.wait([future])
        await self._pipeline.aclose()
