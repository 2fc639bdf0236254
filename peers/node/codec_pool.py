# Strategy: decoding and encoding in worker processes (one per core), so no
# session's decoding can delay another session's frames and the node's event
# loop never competes for the GIL with codec work. Each playback is pinned to
# the least-loaded worker (its PyAV state lives there); requests and replies
# travel over a pipe per worker, matched by sequence number, read by the
# event loop when the pipe is readable. If a worker dies, its playbacks fail
# with an error event and a fresh worker takes its place.
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
from typing import Any

from .codec_worker import worker_main
from .encoders import Payload
from .media import MediaSource
from .pipeline import MediaError

__all__ = ["CodecPool", "RemotePipeline"]

log = logging.getLogger("snowmux.node.codecs")


class _Worker:
    def __init__(self, context: Any, index: int) -> None:
        self.index = index
        self.connection, child = multiprocessing.Pipe()
        self.process = context.Process(
            target=worker_main, args=(child,), daemon=True, name=f"snowmux-codec-{index}"
        )
        self.process.start()
        child.close()
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.playbacks = 0


class CodecPool:
    def __init__(self, processes: int) -> None:
        self.size = processes
        self._context = multiprocessing.get_context("spawn")  # never fork a running event loop
        self._workers: list[_Worker] = []
        self._seq = itertools.count()
        self._playback_ids = itertools.count(1)

    def pids(self) -> list[int]:
        """The worker processes' IDs (for CPU accounting)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for index in range(self.size):
            worker = _Worker(self._context, index)
            self._workers.append(worker)
            loop.add_reader(worker.connection.fileno(), self._on_readable, worker)

    def _on_readable(self, worker: _Worker) -> None:
        try:
            while worker.connection.poll():
                reply = worker.connection.recv()
                future = worker.pending.pop(reply[1], None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except (EOFError, OSError):
            self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.connection.fileno())
        log.error("codec worker %d died; its playbacks fail and a new worker starts", worker.index)
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(MediaError("the codec worker of this playback crashed"))
        worker.pending.clear()
        with contextlib.suppress(Exception):
            worker.connection.close()
        fresh = _Worker(self._context, worker.index)
        self._workers[self._workers.index(worker)] = fresh
        loop.add_reader(fresh.connection.fileno(), self._on_readable, fresh)

    async def _ask(self, worker: _Worker, *request: Any) -> Any:
        seq = next(self._seq)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[seq] = future
        try:
            worker.connection.send((request[0], seq, *request[1:]))
        except (BrokenPipeError, OSError):
            worker.pending.pop(seq, None)
            self._replace(worker)
            raise MediaError("the codec worker of this playback crashed") from None
        return await future

    async def open(
        self, source: MediaSource, fields: dict[str, Any]
    ) -> tuple[RemotePipeline, float | None]:
        """Open a playback in a worker; raise MediaError if it cannot be played."""
        worker = min(self._workers, key=lambda w: w.playbacks)
        playback = next(self._playback_ids)
        worker.playbacks += 1
        reply = await self._ask(worker, "open", playback, source, fields)
        if reply[0] == "failed":
            worker.playbacks -= 1
            raise MediaError(reply[2])
        return RemotePipeline(self, worker, playback), reply[2]

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            loop.remove_reader(worker.connection.fileno())
            with contextlib.suppress(Exception):
                worker.connection.send(("quit", -1))
        for worker in self._workers:
            await loop.run_in_executor(None, worker.process.join, 2)
            if worker.process.is_alive():
                worker.process.terminate()
            worker.connection.close()
        self._workers.clear()


class RemotePipeline:
    """One playback's payload generator, living in a codec worker."""

    def __init__(self, pool: CodecPool, worker: _Worker, playback: int) -> None:
        self._pool = pool
        self._worker = worker
        self._playback = playback
        self._closed = False

    async def take(self, count: int) -> tuple[list[Payload], str | None]:
        """Up to ``count`` payloads ([] at the end) and the decode error that ended them, if any."""
        if self._worker not in self._pool._workers:
            return [], "the codec worker of this playback crashed"
        reply = await self._pool._ask(self._worker, "take", self._playback, count)
        payloads = [Payload(data, is_header) for data, is_header in reply[2]]
        return payloads, reply[3]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._worker.playbacks -= 1
        if self._worker in self._pool._workers:
            with contextlib.suppress(MediaError):
                await self._pool._ask(self._worker, "close", self._playback)


def request_fields(
    format: str, start_at: float, bitrate: int | None, volume: float
) -> dict[str, Any]:
    return {"format": format, "start_at": start_at, "bitrate": bitrate, "volume": volume}
