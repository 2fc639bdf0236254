# Strategy: the receiver's connection loop (SPEC.md sections 7, 8, 8a). Connect to the
# node over a Unix socket or TCP, feed every read to protocol.Decoder, route
# each batch, and when the node goes away or sends bad bytes: log why,
# deliver what was decoded before the fault, tell every playing session's sink
# that it was interrupted, discard the partial message (a new connection
# means a new Decoder) and reconnect with capped exponential backoff and
# jitter until stopped. A node whose hello names another protocol is refused
# for good: retrying cannot fix a version mismatch. With a token the
# Endpoint sends the auth line of SPEC.md section 8a before reading anything;
# over TCP it may wrap the stream in TLS. A Unix socket owned by another user
# is refused for good too (README "Socket"): it may be a squatter's.
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from snowmux.protocol import (
    DEFAULT_MAX_FRAME_LENGTH,
    PROTOCOL_VERSION,
    AudioFrame,
    Decoder,
    Event,
    RemoteProtocolError,
)
from snowmux.protocol.auth import encode_auth

from ..defaults import UnsafeSocketDirError, check_private_dir, uses_private_dir
from .router import Router
from .sinks import FrameQueue

__all__ = ["Endpoint", "IncompatibleNodeError", "Receiver", "UntrustedSocketError"]

log = logging.getLogger("snowmux.receiver")

READ_SIZE = 64 * 1024  # ~190 Opus frames or 17 PCM frames per read: amortises the per-read cost
# Backoff: first retry after ~0.1 s (a node restart takes well under a second
# to rebind), doubling up to 5 s so a long outage costs a handful of
# connection attempts a minute, each delay jittered to 50-100 % so many
# receivers do not reconnect in lock-step.
BACKOFF_INITIAL = 0.1
BACKOFF_CAP = 5.0
STABLE_AFTER_SECONDS = 2.0  # a connection that lived this long resets the backoff
FRAME_QUEUE_SIZE = 250  # frames(): 5 s of 20 ms frames before the oldest is dropped


class IncompatibleNodeError(Exception):
    """The node speaks a protocol version this receiver does not."""


class UntrustedSocketError(Exception):
    """The Unix socket (or its private directory) could belong to another user."""


@dataclass(frozen=True)
class Endpoint:
    """Where the node is and how to reach it: socket or TCP, token, TLS (TCP only)."""

    unix_path: Path | None = None
    tcp: tuple[str, int] | None = None
    token: str | None = None  # sent as the auth line (SPEC.md section 8a) when set
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if (self.unix_path is None) == (self.tcp is None):
            raise ValueError("give exactly one of a Unix socket path or a TCP address")
        if self.tls is not None and self.tcp is None:
            raise ValueError("TLS is for TCP endpoints; a Unix socket is local")

    def __str__(self) -> str:
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        assert self.tcp is not None
        return f"tcp:{self.tcp[0]}:{self.tcp[1]}"

    def check_socket(self) -> None:
        """Raise UntrustedSocketError unless the Unix socket (and default dir) are ours."""
        assert self.unix_path is not None
        directory = self.unix_path.parent
        # A missing directory is "no node yet" (connecting fails, we retry), not a threat.
        if uses_private_dir(self.unix_path) and os.path.lexists(directory):
            try:
                check_private_dir(directory)
            except UnsafeSocketDirError as exc:
                raise UntrustedSocketError(str(exc)) from None
        try:
            owner = self.unix_path.lstat().st_uid
        except FileNotFoundError:
            return  # connecting fails with a clear OSError; the Receiver retries
        if owner != os.getuid():
            raise UntrustedSocketError(
                f"{self.unix_path} is owned by uid {owner}, not by us (uid {os.getuid()}): "
                "another user may be impersonating the node; refusing to connect"
            )

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect, and authenticate when a token is set (the node answers nothing before)."""
        if self.unix_path is not None:
            self.check_socket()
            reader, writer = await asyncio.open_unix_connection(str(self.unix_path))
        else:
            assert self.tcp is not None
            reader, writer = await asyncio.open_connection(*self.tcp, ssl=self.tls)
        if self.token:
            writer.write(encode_auth(self.token))
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                writer.close()
                raise
        return reader, writer


class Receiver:
    def __init__(
        self,
        endpoint: Endpoint,
        router: Router | None = None,
        *,
        max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_cap: float = BACKOFF_CAP,
    ) -> None:
        self.endpoint = endpoint
        self.router = router or Router()
        self.max_frame_length = max_frame_length
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.connected = asyncio.Event()
        self.connections = 0
        self.protocol_errors = 0
        self.last_error: str | None = None
        self.node_protocol: str | None = None  # "legacy" when the node sent no hello
        self._stopping = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._queues: set[FrameQueue] = set()
        # called with every RemoteProtocolError, after the messages before it were routed
        self.on_protocol_error: Callable[[RemoteProtocolError], None] | None = None

    # -- the library API ------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()
        if self._writer is not None:
            self._writer.close()

    async def frames(
        self, session_id: str, maxsize: int = FRAME_QUEUE_SIZE
    ) -> AsyncIterator[AudioFrame]:
        """``async for frame in receiver.frames(id)``: that session's frames, bounded."""
        queue = FrameQueue(maxsize)
        self.router.attach(session_id, queue)
        self._queues.add(queue)
        try:
            async for frame in queue:
                yield frame
        finally:
            self._queues.discard(queue)
            self.router.detach(session_id, queue)

    # -- the loop -------------------------------------------------------------

    async def run(self) -> None:
        """Connect, route, reconnect, until stop(); raise IncompatibleNodeError."""
        attempt = 0
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                try:
                    reader, writer = await self.endpoint.open()
                except OSError as exc:
                    self.last_error = f"cannot connect to {self.endpoint}: {exc.strerror or exc}"
                    log.warning("%s", self.last_error)
                else:
                    await self._serve(reader, writer)
                if self._stopping.is_set():
                    break
                attempt = 0 if time.monotonic() - started > STABLE_AFTER_SECONDS else attempt + 1
                delay = min(self.backoff_cap, self.backoff_initial * 2 ** max(0, attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                log.info("reconnecting to %s in %.2fs", self.endpoint, delay)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            for queue in list(self._queues):
                queue.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.connections += 1
        self.connected.set()
        log.info("connected to %s", self.endpoint)
        decoder = Decoder(max_frame_length=self.max_frame_length)
        first = True
        reason = "connection closed by the node"
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    if first and decoder.offset == 0:
                        reason = "the node closed the connection before hello: " + (
                            "wrong token?" if self.endpoint.token else "does it need --token?"
                        )
                    decoder.feed_eof()
                    break
                messages = decoder.feed(data)
                if first and messages:
                    first = False
                    self._check_hello(messages[0])
                self.router.route(messages)
        except RemoteProtocolError as error:
            self.router.route(error.messages)  # what arrived before the fault is kept
            self.protocol_errors += 1
            if self.on_protocol_error is not None:
                self.on_protocol_error(error)
            reason = f"protocol error from the node: {type(error).__name__}: {error}"
            log.error("%s; closing and reconnecting", reason)
        except (ConnectionError, OSError) as exc:
            reason = f"connection lost: {exc}"
        finally:
            self.last_error = None if reason == "connection closed by the node" else reason
            self.connected.clear()
            self._writer = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if not self._stopping.is_set() or reason != "connection closed by the node":
                log.warning("disconnected from %s: %s", self.endpoint, reason)
            self.router.interrupt_all(reason)

    def _check_hello(self, message: AudioFrame | Event) -> None:
        if isinstance(message, Event) and message.type == "hello":
            protocol = message.data.get("protocol")
            if protocol != PROTOCOL_VERSION:
                self._stopping.set()
                raise IncompatibleNodeError(
                    f"the node at {self.endpoint} speaks {protocol!r}; this receiver speaks "
                    f"{PROTOCOL_VERSION!r}: upgrade one of them"
                )
            self.node_protocol = protocol
            node_max = message.data.get("max_frame_length")
            if isinstance(node_max, int) and node_max > self.max_frame_length:
                log.warning(
                    "the node may send frames up to %d bytes; this receiver accepts %d",
                    node_max,
                    self.max_frame_length,
                )
        else:
            self.node_protocol = "legacy"
            log.info(
                "no hello from %s: a legacy node, accepted as %s", self.endpoint, PROTOCOL_VERSION
            )
