# Strategy: the node's defences against too many or too slow peers (README
# "Limits"): a cap on receivers and on HTTP connections, header and body read
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
    "MAX_HTTP_CONNECTIONS",
    "MAX_RECEIVERS",
    "ConnectionBudget",
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
LOG_INTERVAL_SECONDS = 1.0  # at most one line per second per kind of repeated error


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
