# Strategy: fan every message out to every connected receiver (SPEC.md [O2],
# [P5], [P7]). Each message is encoded once; each connection owns a bounded
# queue drained by its own writer task, so a slow or stalled receiver only
# ever costs its own queue: when it is full, whole audio frames are dropped
# oldest first (events and Ogg header pages never are) and counted per
# session. A new connection receives hello and the re-announcement of active
# playbacks in the same event-loop step in which it joins the fan-out, so it
# neither misses nor duplicates a message.
# With a token (SPEC.md section 8a, [R1]-[R3]) a connection is not attached
# until its first line authenticates it: until then it receives nothing, and
# a wrong, malformed or late line closes it without a word. Connections over
# --max-receivers, or that would eat into the fd headroom, are closed at once
# (README "Limits"); refusals are logged at most once a second.
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from snowmux.protocol import PROTOCOL_VERSION, encode_event
from snowmux.protocol.auth import AUTH_TIMEOUT_SECONDS, AuthLineError, parse_auth, token_matches

from ..defaults import RECEIVER_QUEUE_BYTES
from .limits import MAX_RECEIVERS, ConnectionBudget, RateLimitedLog

__all__ = ["Outgoing", "ReceiverConnection", "ReceiverHub"]

log = logging.getLogger("snowmux.node.receivers")

WRITE_BATCH_BYTES = (
    256 * 1024
)  # per wake-up: a few ms of all sessions, few syscalls, bounded latency


class Outgoing(NamedTuple):  # one per frame per receiver: a tuple is the cheapest to make
    data: bytes
    session_id: str | None = None  # set for droppable audio frames only


class ReceiverConnection:
    def __init__(
        self,
        name: str,
        writer: asyncio.StreamWriter,
        queue_bytes: int,
        on_drop: Callable[[str], None],
    ) -> None:
        self.name = name
        self._writer = writer
        self._queue: deque[Outgoing] = deque()
        self._queued_bytes = 0
        self._limit = queue_bytes
        self._on_drop = on_drop
        self._wakeup = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.closed = False
        self.frames_dropped = 0

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def push(self, message: Outgoing) -> None:
        if self.closed:
            return
        size = len(message.data)
        while message.session_id is not None and self._queued_bytes + size > self._limit:
            if not self._drop_oldest_frame():
                break
        self._queue.append(message)
        self._queued_bytes += size
        if self._queued_bytes > 2 * self._limit:
            # Only undroppable messages are left: the receiver has stalled for
            # so long that keeping its events would grow without bound.
            log.warning(
                "receiver %s stalled with %d bytes queued: disconnecting",
                self.name,
                self._queued_bytes,
            )
            self.close()
            return
        if self._queued_bytes >= self._limit // 2:
            self.room.clear()
        self._wakeup.set()

    def _drop_oldest_frame(self) -> bool:
        for index, queued in enumerate(self._queue):
            if queued.session_id is not None:
                del self._queue[index]
                self._queued_bytes -= len(queued.data)
                self.frames_dropped += 1
                self._on_drop(queued.session_id)
                return True
        return False

    async def run_writer(self) -> None:
        """Write queued messages, whole and in order, until closed."""
        writer = self._writer
        try:
            while not self.closed:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                batch: list[bytes] = []
                batch_bytes = 0
                while self._queue and batch_bytes < WRITE_BATCH_BYTES:
                    item = self._queue.popleft()
                    batch.append(item.data)
                    batch_bytes += len(item.data)
                self._queued_bytes -= batch_bytes
                if self._queued_bytes < self._limit // 2:
                    self.room.set()
                writer.writelines(batch)
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.info("receiver %s went away: %s", self.name, exc)
        finally:
            self.close()

    async def flush(self, timeout: float) -> None:
        """Give the writer up to ``timeout`` seconds to send what is queued."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._queue and not self.closed and loop.time() < deadline:
            await asyncio.sleep(0.01)
        with contextlib.suppress(ConnectionError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self._writer.drain(), max(0.0, deadline - loop.time()))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.room.set()
        self._wakeup.set()
        self._queue.clear()
        self._queued_bytes = 0
        self._writer.close()


class ReceiverHub:
    def __init__(
        self,
        max_frame_length: int,
        announce: Callable[[], Iterable[bytes]],
        on_drop: Callable[[str], None],
        queue_bytes: int = RECEIVER_QUEUE_BYTES,
        *,
        token: str | None = None,
        max_receivers: int = MAX_RECEIVERS,
        budget: ConnectionBudget | None = None,
        auth_timeout: float = AUTH_TIMEOUT_SECONDS,
    ) -> None:
        self._hello = encode_event(
            "hello", "", protocol=PROTOCOL_VERSION, max_frame_length=max_frame_length
        )
        self._announce = announce
        self._on_drop = on_drop
        self._queue_bytes = queue_bytes
        self._token = token
        self._max_receivers = max_receivers
        self._budget = budget or ConnectionBudget()
        self._auth_timeout = auth_timeout
        self._pending = 0  # connected, not yet authenticated: they count against the cap
        self._refusals = RateLimitedLog(log)
        self.connections: set[ReceiverConnection] = set()
        self.connected_total = 0
        self.refused_total = 0  # over the cap or the fd headroom
        self.auth_failures_total = 0

    def attach(self, name: str, writer: asyncio.StreamWriter) -> ReceiverConnection:
        connection = ReceiverConnection(name, writer, self._queue_bytes, self._on_drop)
        connection.push(Outgoing(self._hello))
        for data in self._announce():
            connection.push(Outgoing(data))
        self.connections.add(connection)
        self.connected_total += 1
        return connection

    def detach(self, connection: ReceiverConnection) -> None:
        self.connections.discard(connection)
        connection.close()

    def send_event(self, data: bytes) -> None:
        message = Outgoing(data)
        for connection in self.connections:
            connection.push(message)

    def send_frame(self, data: bytes, session_id: str, droppable: bool = True) -> None:
        message = Outgoing(data, session_id if droppable else None)
        for connection in self.connections:
            connection.push(message)

    async def wait_for_room(self) -> None:
        """--no-pace back-pressure: wait until every receiver's queue has room."""
        while True:
            full = [c.room for c in self.connections if not c.room.is_set()]
            if not full:
                return
            await full[0].wait()

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername") or writer.get_extra_info("sockname")
        name = f"{peer or 'unix'}#{self.connected_total + 1}"
        if len(self.connections) + self._pending >= self._max_receivers:
            self._refuse(
                writer, "receiver-cap", f"{self._max_receivers} receivers (--max-receivers)"
            )
            return
        if not self._budget.has_room():
            self._refuse(writer, "receiver-fds", "the file-descriptor headroom")
            return
        if self._token is not None:
            self._pending += 1
            try:
                refusal = await self._authenticate(reader, self._token)
            finally:
                self._pending -= 1
            if refusal is not None:
                self.auth_failures_total += 1
                self._refusals.warning("auth", "receiver %s refused: %s", name, refusal)
                writer.close()
                return
        connection = self.attach(name, writer)
        log.info("receiver %s connected (%d connected)", name, len(self.connections))
        writer_task = asyncio.create_task(connection.run_writer())
        try:
            # Nothing more is expected from a receiver; reading tells us when it leaves.
            while not connection.closed and await reader.read(4096):
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            self.detach(connection)
            writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await writer_task
            log.info("receiver %s disconnected (%d connected)", name, len(self.connections))

    def _refuse(self, writer: asyncio.StreamWriter, kind: str, limit: str) -> None:
        self.refused_total += 1
        self._refusals.warning(kind, "receiver refused: at %s", limit)
        writer.close()

    async def _authenticate(self, reader: asyncio.StreamReader, token: str) -> str | None:
        """None if the first line carries the token, else why the connection is refused."""
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), self._auth_timeout)
        except TimeoutError:
            return f"no auth line within {self._auth_timeout:g} s"
        except asyncio.IncompleteReadError:
            return "closed before authenticating"
        except asyncio.LimitOverrunError:
            return "auth line too long"
        except (ConnectionError, OSError) as exc:
            return f"connection lost while authenticating: {exc}"
        try:
            claimed = parse_auth(line)
        except AuthLineError as exc:
            return str(exc)
        return None if token_matches(claimed, token) else "wrong token"

    async def close_all(self, flush_timeout: float = 1.0) -> None:
        connections = list(self.connections)
        await asyncio.gather(*(c.flush(flush_timeout) for c in connections))
        for connection in connections:
            self.detach(connection)
