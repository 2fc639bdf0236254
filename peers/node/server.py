# Strategy: assemble one audio node: receivers' sockets (Unix, optional TCP),
# the session manager, the HTTP control API; run until SIGINT/SIGTERM, then
# stop every session with its `finished` event, give receivers a moment to
# read it, close and remove the socket file. The Unix socket is created
# under a 0o177 umask, so it is never visible with wider permissions, in a
# directory that is vetted first (SPEC.md section 8a, README "Socket").
# Exposure rules (README "Stream authentication and TLS"): a non-loopback
# --http or --tcp needs --token; --tls-cert/--tls-key put both the control
# API and the TCP stream behind stdlib ssl. The HTTP listener is our own
# asyncio server around aiohttp's public request-handler factory, so that
# excess connections can be closed at once (README "Limits"); everything
# else about HTTP stays aiohttp's.
from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.metadata
import ipaddress
import logging
import os
import signal
import socket
import ssl
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from snowmux.protocol import DEFAULT_MAX_FRAME_LENGTH, PAYLOAD_FORMATS, PROTOCOL_VERSION
from snowmux.protocol.auth import AUTH_LINE_MAX

from .. import defaults
from ..audio_format import FRAME_SECONDS
from ..defaults import (
    UnsafeSocketDirError,
    default_socket_path,
    ensure_private_dir,
    uses_private_dir,
)
from .api import MAX_BODY_BYTES, build_app, error
from .codec_pool import CodecPool
from .hub import ReceiverHub
from .limits import (
    BODY_TIMEOUT_SECONDS,
    HEADER_TIMEOUT_SECONDS,
    LINGER_SECONDS,
    MAX_HTTP_CONNECTIONS,
    MAX_RECEIVERS,
    ConnectionBudget,
    HttpConnectionGate,
    RateLimitedLog,
    install_loop_exception_limiter,
)
from .media import MediaPolicy
from .metrics import SAMPLE_EVERY_SECONDS, LoadSampler, NodeMetrics
from .sessions import NodeContext, NodeStats, SessionManager

__all__ = [
    "Node",
    "NodeConfig",
    "NodeConfigError",
    "NodeStartError",
    "is_loopback",
    "run_node",
]

log = logging.getLogger("snowmux.node")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]  # a middleware's next step


class NodeConfigError(Exception):
    """The configuration is unsafe or inconsistent; the node refuses to start."""


class NodeStartError(Exception):
    """The node cannot start in this environment (socket path taken, unsafe directory)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (an empty host means every interface)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name: it may resolve to anything


@dataclass
class NodeConfig:
    http_host: str = defaults.HTTP_HOST
    http_port: int = defaults.HTTP_PORT
    socket_path: Path | None = None
    tcp: tuple[str, int] | None = None
    token: str | None = None
    media_root: Path = Path(".")
    allow_remote: bool = False
    max_sessions: int = defaults.MAX_SESSIONS
    prebuffer_ms: int = defaults.PREBUFFER_MS
    pace: bool = True
    progress_interval: float = defaults.PROGRESS_INTERVAL_SECONDS
    queue_bytes: int = defaults.RECEIVER_QUEUE_BYTES
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_receivers: int = MAX_RECEIVERS
    max_http_connections: int = MAX_HTTP_CONNECTIONS
    header_timeout: float = HEADER_TIMEOUT_SECONDS
    body_timeout: float = BODY_TIMEOUT_SECONDS
    stuck_threshold_ms: int = defaults.STUCK_THRESHOLD_MS
    # One codec process per core: the codecs saturate the cores without ever
    # taking the event loop's GIL (bench.sender measured threads against this).
    workers: int = os.cpu_count() or 1


def check_config(config: NodeConfig) -> None:
    """Raise NodeConfigError for a configuration the node must not run with."""
    exposed = [
        f"--{name} {host}"
        for name, host in (
            ("http", config.http_host),
            ("tcp", config.tcp[0] if config.tcp else None),
        )
        if host is not None and not is_loopback(host)
    ]
    if exposed and not config.token:
        raise NodeConfigError(
            f"{' and '.join(exposed)} is reachable from other machines: give --token "
            "(or SNOWMUX_TOKEN) so that only holders of the token can control the node "
            "or receive its audio, or listen on 127.0.0.1"
        )
    if (config.tls_cert is None) != (config.tls_key is None):
        raise NodeConfigError("give both --tls-cert and --tls-key, or neither")


class Node:
    def __init__(self, config: NodeConfig) -> None:
        check_config(config)
        self.config = config
        self.socket_path = config.socket_path or default_socket_path()
        self.codecs = CodecPool(config.workers)
        self.hub = ReceiverHub(
            DEFAULT_MAX_FRAME_LENGTH,
            announce=lambda: self.sessions.announce(),
            on_drop=lambda session_id: self.sessions.count_drop(session_id),
            queue_bytes=config.queue_bytes,
            token=config.token,
            max_receivers=config.max_receivers,
            budget=ConnectionBudget(),
        )
        context = NodeContext(
            hub=self.hub,
            codecs=self.codecs,
            pace=config.pace,
            prebuffer_frames=round(config.prebuffer_ms / 1000 / FRAME_SECONDS),
            progress_every_frames=round(config.progress_interval / FRAME_SECONDS),
            stats=NodeStats(),
            stuck_threshold=config.stuck_threshold_ms / 1000,
        )
        self.sessions = SessionManager(context, config.max_sessions)
        self.load = LoadSampler(context.stats, lambda: self.codecs.worker_pids)
        self.metrics = NodeMetrics(self.sessions, self.load, lambda: len(self.hub.connections))
        context.stats.observe_first_frame = self.metrics.first_frame.observe
        self._sampling: asyncio.Task[None] | None = None
        self.tcp_address: tuple[str, int] | None = config.tcp
        self.policy = MediaPolicy(config.media_root, config.allow_remote)
        self._servers: list[asyncio.base_events.Server] = []
        self._runner: web.AppRunner | None = None
        self._http_server: asyncio.base_events.Server | None = None
        self._socket_created = False
        self._refusals = RateLimitedLog(log)
        self.http_gate = HttpConnectionGate(
            config.max_http_connections, ConnectionBudget(), self._refusals
        )
        self.http_port = config.http_port
        self.tls = self._tls_context()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.config.tls_cert is None or self.config.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise NodeConfigError(f"cannot load --tls-cert/--tls-key: {exc}") from None
        return context

    def _health_extra(self) -> dict[str, Any]:
        return {
            "receivers": {
                "connected": len(self.hub.connections),
                "connected_total": self.hub.connected_total,
                "queued_bytes": sum(c.queued_bytes for c in self.hub.connections),
                "refused_total": self.hub.refused_total,
                "auth_failures_total": self.hub.auth_failures_total,
            },
            "http": {
                "refused_total": self.http_gate.refused_total,
                "evicted_idle_total": self.http_gate.evicted_total,
            },
            "cpu_load": self.load.cpu_load(),
            "last_minute": self.load.last_minute(),
        }

    def info(self) -> dict[str, Any]:
        """GET /info: all a receiver needs to find this node's stream (README "Scaling out")."""
        tcp = self.tcp_address
        return {
            "protocol": PROTOCOL_VERSION,
            "version": _package_version(),
            "stream": {
                "unix": str(self.socket_path),
                "tcp": f"{tcp[0]}:{tcp[1]}" if tcp is not None else None,
                "tls": self.tls is not None,
                "auth": self.config.token is not None,
            },
            "formats": list(PAYLOAD_FORMATS),
            "limits": {
                "max_sessions": self.sessions.max_sessions,
                "max_frame_length": DEFAULT_MAX_FRAME_LENGTH,
                "max_body_bytes": MAX_BODY_BYTES,
                "receiver_queue_bytes": self.config.queue_bytes,
                "prebuffer_ms": self.config.prebuffer_ms,
            },
            "codec_processes": self.codecs.size,
        }

    async def _sample_load(self) -> None:
        while True:
            self.load.sample()
            await asyncio.sleep(SAMPLE_EVERY_SECONDS)

    @property
    def http_scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    async def start(self) -> None:
        install_loop_exception_limiter(asyncio.get_running_loop())
        self.codecs.start()
        await self._start_unix()
        if self.config.tcp is not None:
            host, port = self.config.tcp
            tcp_server = await asyncio.start_server(
                self.hub.serve_connection,
                host,
                port,
                limit=AUTH_LINE_MAX,
                ssl=self.tls,
                ssl_handshake_timeout=self.config.header_timeout if self.tls else None,
            )
            self._servers.append(tcp_server)
            port = tcp_server.sockets[0].getsockname()[1] if tcp_server.sockets else port
            self.tcp_address = (host, port)  # the bound port, when --tcp asked for port 0
            log.info("receivers: tcp%s %s:%d", "+tls" if self.tls else "", host, port)
        self._sampling = asyncio.get_running_loop().create_task(self._sample_load())
        await self._start_http()
        # What exists now (modules, the app, the codec pool) lives as long as
        # the node: out of the collector's sight, a full collection no longer
        # walks it, which at 300 playing sessions made 20-50 ms pauses of the
        # pacing clock (bench.sender (f)).
        gc.freeze()

    async def _start_http(self) -> None:
        app = build_app(
            self.sessions,
            self.policy,
            self.config.token,
            self._health_extra,
            info=self.info,
            metrics=self.metrics.exposition,
        )
        app.middlewares.append(self._read_deadline)
        # keepalive_timeout: aiohttp arms it when a connection opens and closes
        # the connection if no complete request has arrived by then; that is
        # our header deadline (idle and slowly trickled headers alike).
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.config.header_timeout,
            # After an early answer (413, 408) aiohttp reads and discards the
            # rest of the body for this long so the client sees the answer;
            # its default of 10 s would hold a refused connection that long.
            lingering_time=LINGER_SECONDS,
        )
        await self._runner.setup()
        handler_factory = self._runner.server
        assert handler_factory is not None

        def protocol_factory() -> asyncio.Protocol:
            return self.http_gate.wrap(handler_factory())

        self._http_server = await asyncio.get_running_loop().create_server(
            protocol_factory,
            self.config.http_host,
            self.config.http_port,
            ssl=self.tls,
            ssl_handshake_timeout=self.config.header_timeout if self.tls else None,
        )
        if self._http_server.sockets:
            self.http_port = self._http_server.sockets[0].getsockname()[1]
        log.info("control API: %s://%s:%d", self.http_scheme, self.config.http_host, self.http_port)

    @web.middleware
    async def _read_deadline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A declared body over the limit is refused unread; a body must arrive in time."""
        self.http_gate.request_started(request.protocol)
        try:
            return await self._read_then_handle(request, handler)
        finally:
            self.http_gate.request_done(request.protocol)

    async def _read_then_handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.can_read_body:
            declared = request.content_length
            if declared is not None and declared > MAX_BODY_BYTES:
                response = error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
                response.force_close()  # the unread body must not be parsed as a request
                return response
            try:
                await asyncio.wait_for(request.read(), self.config.body_timeout)
            except TimeoutError:
                response = error(
                    408, f"request body not received within {self.config.body_timeout:g} s"
                )
                response.force_close()
                return response
        answer: web.StreamResponse = await handler(request)
        return answer

    async def _start_unix(self) -> None:
        path = self.socket_path
        try:
            if uses_private_dir(path):
                ensure_private_dir(path.parent)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
        except UnsafeSocketDirError as exc:
            raise NodeStartError(str(exc)) from None
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise NodeStartError(f"{path} exists and is not a socket; refusing to replace it")
            if _socket_is_live(path):
                raise NodeStartError(f"another node is listening on {path}")
            path.unlink()  # stale socket from a node that died
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(
                self.hub.serve_connection, str(path), limit=AUTH_LINE_MAX
            )
        finally:
            os.umask(old_umask)
        self._socket_created = True
        os.chmod(path, 0o600)
        self._servers.append(server)
        log.info("receivers: unix %s", path)

    async def stop(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
        await self.sessions.stop_all()
        await self.hub.close_all(flush_timeout=1.0)
        servers = [*self._servers, *([self._http_server] if self._http_server else [])]
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._socket_created:  # never another node's socket, after a failed start
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        await asyncio.gather(*self.sessions.node.background, return_exceptions=True)
        await self.codecs.close()
        log.info("node stopped")


def _package_version() -> str:
    try:
        return importlib.metadata.version("snowmux")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "0+unknown"


def _socket_is_live(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


async def run_node(config: NodeConfig, ready: asyncio.Event | None = None) -> None:
    """Run a node until SIGINT/SIGTERM."""
    node = Node(config)
    try:
        await node.start()
    except BaseException:
        await node.stop()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    print(
        f"snowmux node ready: {node.http_scheme}://{config.http_host}:{node.http_port} "
        f"socket={node.socket_path}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        log.info("shutting down: stopping %d sessions", len(node.sessions.active()))
        await node.stop()
