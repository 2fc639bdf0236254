# Strategy: one node of a NodePool (README "Scaling out"): its control
# client, its /info, its stream (a Receiver of its own, whose router hands
# every message to the pool), and its up/down state. The watcher polls
# /health about every 2 s while the stream is open; when the stream closes it
# wakes at once and probes every 0.25 s, and the node goes down when the
# stream stays closed and /health keeps failing for more than 1 s. Requiring
# both avoids moving sessions for a mere stream hiccup (the Receiver
# reconnects within ~0.1 s) or for one slow /health answer. A node is up
# again when /health answers and its stream is connected.
from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from snowmux.protocol import AudioFrame, Event

from ..control import ControlClient, NodeError
from .connection import Endpoint, Receiver
from .penalty import NodeLoad
from .router import Router

__all__ = [
    "DOWN_AFTER_SECONDS",
    "ControlFactory",
    "EndpointFactory",
    "NodeInfo",
    "NodeListener",
    "NodeState",
    "PooledNode",
    "default_endpoint",
]

log = logging.getLogger("snowmux.pool")

HEALTH_EVERY_SECONDS = 2.0  # load figures change slowly (10 s CPU window, 1 min frame window)
PROBE_EVERY_SECONDS = 0.25  # while the stream is closed: down is decided within ~1.25 s
HEALTH_TIMEOUT_SECONDS = 1.0  # a node that cannot answer /health in 1 s counts as failing
DOWN_AFTER_SECONDS = 1.0  # stream closed and /health failing this long: the node is down
# The stream's reconnect backoff is capped at 1 s (the Receiver's default is
# 5 s): a node that comes back should be usable within one health period.
STREAM_BACKOFF_CAP = 1.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class NodeState(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node's GET /info."""

    protocol: str
    version: str
    unix: str | None
    tcp: str | None
    formats: tuple[str, ...]
    codec_processes: int
    limits: Mapping[str, Any] = field(default_factory=dict)
    tls: bool = False  # the TCP stream speaks TLS (serve --tls-cert)

    @classmethod
    def from_json(cls, data: Any) -> NodeInfo:
        if not isinstance(data, dict) or not isinstance(data.get("stream"), dict):
            raise ValueError('GET /info did not return a node\'s info (no "stream")')
        stream = data["stream"]
        unix, tcp = stream.get("unix"), stream.get("tcp")
        return cls(
            protocol=str(data.get("protocol", "")),
            version=str(data.get("version", "")),
            unix=unix if isinstance(unix, str) else None,
            tcp=tcp if isinstance(tcp, str) else None,
            formats=tuple(str(f) for f in data.get("formats") or ()),
            codec_processes=int(data.get("codec_processes") or 0),
            limits=dict(data.get("limits") or {}),
            tls=stream.get("tls") is True,
        )


# Builds the stream endpoint of a node from its URL, its /info and the pool's
# token (sent as the stream's auth line, SPEC.md section 8a). A custom factory
# can choose another route to the stream or its own TLS context.
EndpointFactory = Callable[[str, NodeInfo, str | None], Endpoint]
# Builds the control client of a node from its URL and the token: the hook
# for an HTTPS client with its own CA or certificates.
ControlFactory = Callable[[str, str | None], ControlClient]


def default_endpoint(
    node_url: str, info: NodeInfo, token: str | None = None, tls: ssl.SSLContext | None = None
) -> Endpoint:
    """The node's Unix socket when it is on this machine, else its TCP address.

    ``token`` authenticates the stream; ``tls`` is used when the node's /info
    says its TCP stream is TLS (else the system's CAs verify it).
    """
    host = urlsplit(node_url).hostname or "127.0.0.1"
    if info.unix and (host in LOOPBACK_HOSTS or not info.tcp) and Path(info.unix).exists():
        return Endpoint(unix_path=Path(info.unix), token=token)
    if info.tcp:
        tcp_host, _, port = info.tcp.rpartition(":")
        tcp_host = tcp_host.strip("[]")
        if tcp_host in ("", "0.0.0.0", "::"):  # listening everywhere: reach it as the URL does
            tcp_host = host
        context = (tls or ssl.create_default_context()) if info.tls else None
        return Endpoint(tcp=(tcp_host, int(port)), token=token, tls=context)
    if info.unix:
        return Endpoint(unix_path=Path(info.unix), token=token)
    raise ValueError(f"the node at {node_url} offers no stream (neither unix nor tcp)")


class NodeListener(Protocol):
    """What a PooledNode tells its pool."""

    def on_frame(self, node: PooledNode, frame: AudioFrame) -> None: ...

    def on_event(self, node: PooledNode, event: Event) -> None: ...

    def on_hello(self, node: PooledNode) -> None: ...

    def on_state(self, node: PooledNode) -> None: ...


class _Tap:
    """The sink of every session on one node's stream: hands messages to the pool."""

    def __init__(self, node: PooledNode) -> None:
        self._node = node

    def on_frame(self, frame: AudioFrame) -> None:
        self._node.listener.on_frame(self._node, frame)

    def on_event(self, event: Event) -> None:
        self._node.listener.on_event(self._node, event)

    def on_interrupted(self, reason: str) -> None:
        pass  # the pool decides: a stream hiccup, or a node down and a move

    def close(self) -> None:
        pass


class _NodeRouter(Router):
    """Routes one node's stream to the pool; tells the watcher when the stream closes."""

    def __init__(self, node: PooledNode) -> None:
        tap = _Tap(node)
        super().__init__(lambda session_id: tap)
        self._node = node
        self.on_connection_event = self._connection_event

    def _connection_event(self, event: Event) -> None:
        if event.type == "hello":
            self._node.listener.on_hello(self._node)

    def interrupt_all(self, reason: str) -> None:
        super().interrupt_all(reason)
        self._node.stream_closed()


class PooledNode:
    def __init__(
        self,
        url: str,
        listener: NodeListener,
        *,
        token: str | None = None,
        endpoint_factory: EndpointFactory = default_endpoint,
        control_factory: ControlFactory = ControlClient,
        health_every: float = HEALTH_EVERY_SECONDS,
    ) -> None:
        self.url = url.rstrip("/")
        self.listener = listener
        self.client = control_factory(self.url, token)
        self.info: NodeInfo | None = None
        self.receiver: Receiver | None = None
        self.state = NodeState.DOWN
        self.load = NodeLoad()
        self.last_error: str | None = None
        self.checked = asyncio.Event()  # set after the first /info or /health attempt
        self._endpoint_factory = endpoint_factory
        self._token = token
        self._health_every = health_every
        self._failing_since: float | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._watch()))

    async def close(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.client.close()

    @property
    def stream_connected(self) -> bool:
        return self.receiver is not None and self.receiver.connected.is_set()

    def stream_closed(self) -> None:
        self._wake.set()

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "state": self.state, "cpu_load": self.load.cpu_load}

    # -- the watcher ---------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            if self.info is None:
                await self._read_info()
            healthy = self.info is not None and await self._poll_health()
            self.checked.set()
            self._judge(healthy)
            steady = self.state is NodeState.UP and self.stream_connected
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), self._health_every if steady else PROBE_EVERY_SECONDS
                )

    async def _read_info(self) -> None:
        try:
            reply = await asyncio.wait_for(
                self.client.request("GET", "/info"), HEALTH_TIMEOUT_SECONDS
            )
            info = NodeInfo.from_json(reply)
            endpoint = self._endpoint_factory(self.url, info, self._token)
        except (TimeoutError, NodeError, ValueError) as exc:
            self.last_error = f"GET /info: {exc}"
            return
        self.info = info
        self.receiver = Receiver(endpoint, _NodeRouter(self), backoff_cap=STREAM_BACKOFF_CAP)
        self._tasks.append(asyncio.get_running_loop().create_task(self._run_stream()))
        log.info("node %s: %s %s, stream %s", self.url, info.protocol, info.version, endpoint)
        # Give the stream a moment to connect, so a healthy node is up at once.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.receiver.connected.wait(), HEALTH_TIMEOUT_SECONDS)

    async def _run_stream(self) -> None:
        assert self.receiver is not None
        try:
            await self.receiver.run()
        except Exception as exc:  # an incompatible node: it stays down, with the reason
            self.last_error = str(exc)
            log.error("node %s: %s", self.url, exc)

    async def _poll_health(self) -> bool:
        try:
            health = await asyncio.wait_for(self.client.health(), HEALTH_TIMEOUT_SECONDS)
        except (TimeoutError, NodeError) as exc:
            self.last_error = f"GET /health: {exc or 'timed out'}"
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            return False
        self._failing_since = None
        self.last_error = None
        self.load = NodeLoad.from_health(health)
        return True

    def _judge(self, healthy: bool) -> None:
        if self.state is NodeState.UP:
            failing = self._failing_since
            if (
                not self.stream_connected
                and failing is not None
                and time.monotonic() - failing > DOWN_AFTER_SECONDS
            ):
                self.mark(NodeState.DOWN, self.last_error or "stream closed")
        elif healthy and self.stream_connected:
            self.mark(NodeState.UP, "healthy, stream connected")

    def mark(self, state: NodeState, why: str) -> None:
        if state is self.state:
            return
        self.state = state
        log.warning("node %s is %s: %s", self.url, state, why)
        self.listener.on_state(self)
