# Strategy: assemble one audio node: receivers' sockets (Unix, optional TCP),
# the session manager, the HTTP control API; run until SIGINT/SIGTERM, then
# stop every session with its `finished` event, give receivers a moment to
# read it, close and remove the socket file. The Unix socket is created
# under a 0o177 umask, so it is never visible with wider permissions.
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from snowmux.protocol import DEFAULT_MAX_FRAME_LENGTH

from .. import defaults
from ..audio_format import FRAME_SECONDS
from ..defaults import default_socket_path
from .api import build_app
from .codec_pool import CodecPool
from .hub import ReceiverHub
from .media import MediaPolicy
from .sessions import NodeContext, NodeStats, SessionManager

__all__ = ["Node", "NodeConfig", "NodeStartError", "run_node"]

log = logging.getLogger("snowmux.node")


class NodeStartError(Exception):
    """The node cannot start as configured (the socket path is taken, ...)."""


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
    stuck_threshold_ms: int = defaults.STUCK_THRESHOLD_MS
    # One codec process per core: the codecs saturate the cores without ever
    # taking the event loop's GIL (bench.sender measured threads against this).
    workers: int = os.cpu_count() or 1


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.socket_path = config.socket_path or default_socket_path()
        self.codecs = CodecPool(config.workers)
        self.hub = ReceiverHub(
            DEFAULT_MAX_FRAME_LENGTH,
            announce=lambda: self.sessions.announce(),
            on_drop=lambda session_id: self.sessions.count_drop(session_id),
            queue_bytes=config.queue_bytes,
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
        self.policy = MediaPolicy(config.media_root, config.allow_remote)
        self._servers: list[asyncio.base_events.Server] = []
        self._runner: web.AppRunner | None = None
        self.http_port = config.http_port

    def _health_extra(self) -> dict[str, Any]:
        return {
            "receivers": {
                "connected": len(self.hub.connections),
                "connected_total": self.hub.connected_total,
                "queued_bytes": sum(c.queued_bytes for c in self.hub.connections),
            }
        }

    async def start(self) -> None:
        self.codecs.start()
        await self._start_unix()
        if self.config.tcp is not None:
            host, port = self.config.tcp
            self._servers.append(await asyncio.start_server(self.hub.serve_connection, host, port))
            log.info("receivers: tcp %s:%d", host, port)
        app = build_app(self.sessions, self.policy, self.config.token, self._health_extra)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http_host, self.config.http_port)
        await site.start()
        for address in self._runner.addresses:  # the real port when 0 asked for any
            self.http_port = address[1]
            break
        log.info("control API: http://%s:%d", self.config.http_host, self.http_port)

    async def _start_unix(self) -> None:
        path = self.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise NodeStartError(f"{path} exists and is not a socket; refusing to replace it")
            if _socket_is_live(path):
                raise NodeStartError(f"another node is listening on {path}")
            path.unlink()  # stale socket from a node that died
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(self.hub.serve_connection, str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        self._servers.append(server)
        log.info("receivers: unix %s", path)

    async def stop(self) -> None:
        await self.sessions.stop_all()
        await self.hub.close_all(flush_timeout=1.0)
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        await asyncio.gather(*self.sessions.node.background, return_exceptions=True)
        await self.codecs.close()
        log.info("node stopped")


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
    await node.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    print(
        f"snowmux node ready: http://{config.http_host}:{node.http_port} socket={node.socket_path}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        log.info("shutting down: stopping %d sessions", len(node.sessions.active()))
        await node.stop()
