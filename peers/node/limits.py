# Strategy: the node's defences against too many or too slow peers (README
# "Limits"): a cap on receivers and on HTTP connections (at the HTTP cap the
# oldest idle connection is closed to make room), header and body read
# deadlines, headroom kept below the process's file-descriptor limit, and log
# lines that cannot flood. The non-obvious decision: an excess connection is
# still accepted and then closed at once. Leaving it in the kernel's backlog
# would make asyncio retry accept() and log an error each time, and a caller
# that is told nothing retries just as fast; an accept-then-close costs one fd
# for a moment, which the headroom below reserves.
from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from dataclasses import dataclass
from typing import Any

from ..defaults import MAX_HTTP_CONNECTIONS, MAX_RECEIVERS, READ_TIMEOUT_SECONDS

__all__ = [
    "BODY_TIMEOUT_SECONDS",
    "FD_HEADROOM",
    "HEADER_TIMEOUT_SECONDS",
    "LINGER_SECONDS",
    "MAX_HTTP_CONNECTIONS",
    "MAX_RECEIVERS",
    "ConnectionBudget",
    "HttpConnectionGate",
    "RateLimitedLog",
    "install_loop_exception_limiter",
]

log = logging.getLogger("snowmux.node.limits")

# Header and body deadlines: one default, reasoned in snowmux.defaults.
HEADER_TIMEOUT_SECONDS = READ_TIMEOUT_SECONDS
BODY_TIMEOUT_SECONDS = READ_TIMEOUT_SECONDS
# Descriptors kept free for what the node itself must still open: codec
# worker pipes, a log file, the socket of a replacement worker, and the fd an
# excess connection holds between accept() and close().
FD_HEADROOM = 64
# Time to keep reading (and discarding) a refused request's body so that the
# client reads our 4xx before the connection closes: a loopback client's
# in-flight bytes arrive in well under a second.
LINGER_SECONDS = 1.0
LOG_INTERVAL_SECONDS = 1.0
# An HTTP connection is evictable once it has sat idle (no request in
# progress) this long: a client that has just connected is still sending
# its request, a loopback client takes milliseconds, a flood's sockets wait.
EVICT_IDLE_AFTER_SECONDS = 1.0  # at most one line per second per kind of repeated error


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # no /proc (macOS, BSD): the caps alone must do
        return None


def fd_soft_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass
class ConnectionBudget:
    """Whether one more peer connection may be kept, given the fd limit."""

    headroom: int = FD_HEADROOM

    def has_room(self) -> bool:
        used = _open_fds()
        return used is None or used < fd_soft_limit() - self.headroom


class RateLimitedLog:
    """Logs the first occurrence of a kind at once, then at most once a second with a count."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL_SECONDS) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(
        self, kind: str, message: str, *args: Any, exc_info: BaseException | None = None
    ) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        count = self._suppressed.pop(kind, 0)
        suffix = f" (and {count} more in the last {now - last:.1f}s)" if count and last else ""
        # Only the first of a kind carries its traceback: enough to diagnose.
        self._logger.warning(message + suffix, *args, exc_info=exc_info if last is None else None)


def install_loop_exception_limiter(loop: asyncio.AbstractEventLoop) -> RateLimitedLog:
    """Route the loop's error reports (accept() failures among them) through a RateLimitedLog.

    Without this, asyncio logs a full traceback for every failed accept() or
    connection callback: under an fd shortage that was tens of thousands of
    lines a second.
    """
    limited = RateLimitedLog(logging.getLogger("snowmux.node.loop"))

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "event loop error"))
        exception = context.get("exception")
        detail = f"{type(exception).__name__}: {exception}" if exception is not None else ""
        error = exception if isinstance(exception, BaseException) else None
        limited.warning(message, "%s %s", message, detail, exc_info=error)

    loop.set_exception_handler(handler)
    return limited


class _GatedConnection(asyncio.Protocol):
    """Delegates to the real protocol; lets the gate admit, count and evict it."""

    def __init__(self, gate: HttpConnectionGate, inner: asyncio.Protocol) -> None:
        self.gate = gate
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self.admitted = False
        self.idle_since = time.monotonic()  # connected, or answered its last request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if self.gate.admit(self):
            self.admitted = True
            self.inner.connection_made(transport)
        else:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.forget(self)
        if self.admitted:
            self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()


class HttpConnectionGate:
    """Caps open HTTP connections; at the cap (or short of fds) the oldest idle one goes.

    Admission is decided in connection_made, when the count of open
    connections is exact (asyncio calls protocol factories for a whole burst
    of accepts before any connection_made). Evicting the oldest connection
    idle for EVICT_IDLE_AFTER_SECONDS rather than refusing the new one means
    a flood of idle sockets costs only itself: a real client's new
    connection is served.
    """

    def __init__(
        self,
        cap: int,
        budget: ConnectionBudget,
        logger: RateLimitedLog,
        evict_idle_after: float = EVICT_IDLE_AFTER_SECONDS,
    ) -> None:
        self.cap = cap
        self._evict_idle_after = evict_idle_after
        self._budget = budget
        self._log = logger
        # open connections by their inner protocol, in admission order (oldest first)
        self._open: dict[object, _GatedConnection] = {}
        self._busy: set[object] = set()  # inner protocols with a request in progress
        self.refused_total = 0
        self.evicted_total = 0

    def wrap(self, inner: asyncio.Protocol) -> asyncio.Protocol:
        return _GatedConnection(self, inner)

    def request_started(self, inner: object) -> None:
        self._busy.add(inner)

    def request_done(self, inner: object) -> None:
        self._busy.discard(inner)
        connection = self._open.get(inner)
        if connection is not None:
            connection.idle_since = time.monotonic()

    def _idle_victim(self) -> _GatedConnection | None:
        cutoff = time.monotonic() - self._evict_idle_after
        for inner, connection in self._open.items():
            if inner not in self._busy and connection.idle_since <= cutoff:
                return connection
        return None

    def admit(self, connection: _GatedConnection) -> bool:
        full = len(self._open) >= self.cap
        if full or not self._budget.has_room():
            victim = self._idle_victim()
            if victim is None:
                self.refused_total += 1
                limit = f"{self.cap} connections, none idle" if full else "the fd headroom"
                self._log.warning("http-refuse", "HTTP connection refused: at %s", limit)
                return False
            self.evicted_total += 1
            self._log.warning("http-evict", "closed an idle HTTP connection to make room")
            self.forget(victim)
            if victim.transport is not None:
                victim.transport.close()
        self._open[connection.inner] = connection
        return True

    def forget(self, connection: _GatedConnection) -> None:
        if self._open.get(connection.inner) is connection:
            del self._open[connection.inner]
        self._busy.discard(connection.inner)
