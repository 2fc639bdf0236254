# Strategy: decoding and encoding in worker processes (one per core), so no
# session's decoding can delay another session's frames and the node's event
# loop never competes for the GIL with codec work. Each playback is pinned to
# the least-loaded worker (its PyAV state lives there); typed requests and
# replies (codec_messages.py) travel over a pipe per worker, matched by
# sequence number, read by the event loop when the pipe is readable. If a
# worker dies, its playbacks fail with an error event and a fresh worker
# takes its place.
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess

from .codec_messages import (
    Batch,
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
from .codec_worker import worker_main
from .controls import PlaybackControl
from .media import MediaSource
from .pipeline import MediaError
from .play_request import PlayRequest
from .queue import QueueOp

__all__ = ["CodecPool", "RemotePipeline"]

log = logging.getLogger("snowmux.node.codecs")

WORKER_CRASHED = "the codec worker of this playback crashed"


class _Worker:
    def __init__(self, context: SpawnContext, index: int) -> None:
        self.index = index
        self.connection, child = multiprocessing.Pipe()
        self.process: SpawnProcess = context.Process(
            target=worker_main, args=(child,), daemon=True, name=f"snowmux-codec-{index}"
        )
        self.process.start()
        child.close()
        self.pending: dict[int, asyncio.Future[Reply]] = {}
        self.outbox: list[Request] = []  # sent together at the end of this loop step
        self.playbacks = 0
        self.alive = True

    def send(self, requests: list[Request]) -> None:
        self.connection.send(requests)

    def receive(self) -> Reply:
        """One reply (the pipe is readable; raises EOFError/OSError if the worker died).

        One per readiness callback: the loop calls again while more are
        waiting, and Connection.poll() would build a selector per call.
        """
        connection: Connection = self.connection
        reply: Reply = connection.recv()
        return reply


class CodecPool:
    def __init__(self, processes: int) -> None:
        self.size = processes
        self._context = multiprocessing.get_context("spawn")  # never fork a running event loop
        self._workers: list[_Worker] = []
        self._seq = itertools.count()
        self._playback_ids = itertools.count(1)
        self._flush_scheduled = False

    @property
    def worker_pids(self) -> list[int]:
        """The process IDs of the live codec workers (for CPU accounting and tests)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for index in range(self.size):
            worker = _Worker(self._context, index)
            self._workers.append(worker)
            loop.add_reader(worker.connection.fileno(), self._on_readable, worker)

    def _on_readable(self, worker: _Worker) -> None:
        try:
            reply = worker.receive()
        except (EOFError, OSError):
            self._replace(worker)
            return
        future = worker.pending.pop(reply.seq, None)
        if future is not None and not future.done():
            future.set_result(reply)

    def _flush(self) -> None:
        """Send each worker the requests of this loop step in one message.

        A tick of the pacing clock starts the refills of many playbacks; one
        pipe write per worker instead of one per refill keeps the system calls
        (and the worker wake-ups they cause) out of the tick (bench.sender (b)).
        """
        self._flush_scheduled = False
        for worker in list(self._workers):
            requests, worker.outbox = worker.outbox, []
            if not requests or not worker.alive:
                continue
            try:
                worker.send(requests)
            except (BrokenPipeError, OSError):
                self._replace(worker)  # fails every pending future of the worker

    def _replace(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.connection.fileno())
        log.error("codec worker %d died; its playbacks fail and a new worker starts", worker.index)
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(MediaError(WORKER_CRASHED))
        worker.pending.clear()
        with contextlib.suppress(Exception):
            worker.connection.close()
        fresh = _Worker(self._context, worker.index)
        self._workers[self._workers.index(worker)] = fresh
        loop.add_reader(fresh.connection.fileno(), self._on_readable, fresh)

    async def ask(self, worker: _Worker, make: Callable[[int], Request]) -> Reply:
        """Send ``make(seq)`` to ``worker`` and wait for the reply to that sequence number."""
        return await self.request(worker, make)

    def request(self, worker: _Worker, make: Callable[[int], Request]) -> asyncio.Future[Reply]:
        """ask() without a coroutine: the future of the reply (MediaError if the worker died).

        Refills use it: a Task per refill, thousands a second, left cyclic
        garbage that made the collector pause the pacing clock.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        if not worker.alive:
            future.set_exception(MediaError(WORKER_CRASHED))
            return future
        seq = next(self._seq)
        worker.pending[seq] = future
        worker.outbox.append(make(seq))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    async def open(
        self, source: MediaSource, play: PlayRequest, crossfade_ms: int = 0, queued: bool = False
    ) -> tuple[RemotePipeline, float | None]:
        """Open a playback in a worker; raise MediaError if it cannot be played."""
        worker = min(self._workers, key=lambda w: w.playbacks)
        playback = next(self._playback_ids)
        worker.playbacks += 1
        try:
            reply = await self.ask(
                worker,
                lambda seq: OpenRequest(seq, playback, source, play, crossfade_ms, queued),
            )
        except MediaError:
            worker.playbacks -= 1
            raise
        if isinstance(reply, Opened):
            pipeline = RemotePipeline(self, worker, playback, reply.passthrough, reply.restartable)
            return pipeline, reply.duration
        worker.playbacks -= 1
        if isinstance(reply, OpenFailed):
            raise MediaError(reply.message, reply.problem)
        raise MediaError(f"codec worker answered {type(reply).__name__} to an open")

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        self._flush()  # what this step asked for goes before Quit
        for worker in self._workers:
            loop.remove_reader(worker.connection.fileno())
            with contextlib.suppress(Exception):
                worker.send([Quit()])
        for worker in self._workers:
            await loop.run_in_executor(None, worker.process.join, 2)
            if worker.process.is_alive():
                worker.process.terminate()
            worker.connection.close()
        self._workers.clear()


class RemotePipeline:
    """One playback's payload generator, living in a codec worker."""

    def __init__(
        self,
        pool: CodecPool,
        worker: _Worker,
        playback: int,
        passthrough: bool = False,
        restartable: bool = False,
    ) -> None:
        self.passthrough = passthrough  # Opus packets forwarded, not transcoded (SPEC.md [P8])
        self.restartable = restartable  # see codec_messages.Opened
        self._pool = pool
        self._worker = worker
        self._playback = playback
        self.number = playback  # unique per node: a stable per-playback spread (source.py)
        self._closed = False

    def take(self, count: int, deadline: float | None = None) -> asyncio.Future[Reply]:
        """The future of a Batch: up to ``count`` payloads (none at the end) and the
        decode error that ended them, if any (see batch_of).

        ``deadline``: when the playback runs dry (monotonic), None for a prebuffer.
        """
        playback = self._playback
        return self._pool.request(
            self._worker, lambda seq: TakeRequest(seq, playback, count, deadline)
        )

    @staticmethod
    def batch_of(reply: Reply) -> Batch:
        """A take's reply, checked."""
        if not isinstance(reply, Batch):
            raise MediaError(f"codec worker answered {type(reply).__name__} to a take")
        return reply

    async def control(self, control: PlaybackControl, resume_at: float | None = None) -> None:
        """Apply a control at the playback's next frame boundary; MediaError if it failed.

        ``resume_at``: a restartable playback restarts there (the node dropped the rest).
        """
        if not self._worker.alive:
            raise MediaError(WORKER_CRASHED)
        playback = self._playback
        reply = await self._pool.ask(
            self._worker, lambda seq: ControlRequest(seq, playback, control, resume_at)
        )
        if not isinstance(reply, Controlled):
            raise MediaError(f"codec worker answered {type(reply).__name__} to a control")
        if reply.error is not None:
            raise MediaError(reply.error)

    async def queue(self, op: QueueOp, resume_at: float | None = None) -> None:
        """Apply a queue operation at the next frame boundary; MediaError if refused."""
        if not self._worker.alive:
            raise MediaError(WORKER_CRASHED)
        playback = self._playback
        reply = await self._pool.ask(
            self._worker, lambda seq: QueueRequest(seq, playback, op, resume_at)
        )
        if not isinstance(reply, Controlled):
            raise MediaError(f"codec worker answered {type(reply).__name__} to a queue request")
        if reply.error is not None:
            raise MediaError(reply.error)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._worker.playbacks -= 1
        if self._worker.alive:
            with contextlib.suppress(MediaError):
                playback = self._playback
                await self._pool.ask(self._worker, lambda seq: CloseRequest(seq, playback))
