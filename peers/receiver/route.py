# Strategy: `snowmux route`: a Receiver whose router creates, on first sight
# of a session, the sinks the command line asked for (files under --out,
# WebSocket subscribers on --ws), plus a live table in a terminal or one log
# line per event otherwise. SIGINT/SIGTERM close every file cleanly. With
# --node URL (repeatable) or --http, the stream comes from a NodePool instead
# of one Receiver (README "Scaling out"), and --http serves the node's control
# API on that pool; its sessions keep playing when `route` stops.
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snowmux.protocol import AudioFrame, Event, Message, RemoteProtocolError

from ..defaults import NODE_URL
from ..protocol.reports import error_report, message_report, report_line
from .connection import Endpoint, IncompatibleNodeError, Receiver, UntrustedSocketError
from .router import Router
from .sinks import CompositeSink, Sink
from .stats import SessionStats

if TYPE_CHECKING:
    from .pool import NodePool

__all__ = ["RouteOptions", "render_pool_table", "render_table", "run_route"]

log = logging.getLogger("snowmux.route")
TABLE_REFRESH_SECONDS = 0.5


@dataclass
class RouteOptions:
    endpoint: Endpoint | None = None  # one node's stream; None: use the pool of `nodes`
    out_dir: Path | None = None
    ws: tuple[str, int] | None = None
    ws_token: str | None = None
    live_table: bool = False
    report_ndjson: bool = False
    web: tuple[str, int] | None = None
    web_token: str | None = None
    node_url: str = NODE_URL
    node_token: str | None = None
    nodes: tuple[str, ...] = ()  # a NodePool of these nodes' control URLs
    http: tuple[str, int] | None = None  # serve the control API on the pool here
    node_tls_ca: Path | None = None


class EventLogSink:
    """One readable log line per session event (the non-terminal display)."""

    def __init__(self, session_id: str, stats: Callable[[], SessionStats | None]) -> None:
        self.session_id = session_id
        self._stats = stats

    def on_frame(self, frame: AudioFrame) -> None:
        pass

    def on_event(self, event: Event) -> None:
        extra = " ".join(
            f"{k}={v}" for k, v in event.data.items() if k not in ("type", "session_id")
        )
        stats = self._stats()
        frames = (
            f" frames={stats.frames} stutters={stats.stutters}"
            if stats and event.type != "ready"
            else ""
        )
        log.info("session %s %s %s%s", self.session_id, event.type, extra, frames)

    def on_interrupted(self, reason: str) -> None:
        log.warning("session %s interrupted: %s", self.session_id, reason)

    def close(self) -> None:
        pass


class ReportingRouter(Router):
    """Prints one NDJSON report per message on stdout (SPEC.md section 12)."""

    def route(self, messages: Iterable[Message], now: float | None = None) -> None:
        batch = list(messages)
        if batch:
            sys.stdout.write("".join(report_line(message_report(m)) + "\n" for m in batch))
            sys.stdout.flush()
        super().route(batch, now)


def report_error(error: RemoteProtocolError) -> None:
    sys.stdout.write(report_line(error_report(error)) + "\n")
    sys.stdout.flush()


def render_table(stats: list[SessionStats], receiver: Receiver) -> str:
    state = "connected" if receiver.connected.is_set() else "disconnected"
    lines = [
        f"snowmux route: {receiver.endpoint} ({state}, {receiver.connections} connections, "
        f"{receiver.protocol_errors} protocol errors)",
        f"{'session':<24} {'state':<12} {'format':<12} {'frames':>8} {'kb/s':>8} "
        f"{'stutters':>8}  last event",
    ]
    now = time.monotonic()
    for s in sorted(stats, key=lambda s: s.session_id):
        lines.append(
            f"{s.session_id:<24} {s.state:<12} {s.format or '-':<12} {s.frames:>8} "
            f"{s.kbps(now):>8.1f} {s.stutters:>8}  {s.last_event}"
        )
    return "\n".join(lines)


def render_pool_table(stats: list[SessionStats], pool: NodePool) -> str:
    nodes = pool.describe_nodes()
    up = sum(1 for n in nodes if n["state"] == "up")
    lines = [
        f"snowmux route: {up}/{len(nodes)} nodes up "
        + ", ".join(f"{n['url']} {n['state']} ({n['sessions']})" for n in nodes),
        f"{'session':<24} {'state':<12} {'format':<12} {'frames':>8} {'kb/s':>8} "
        f"{'stutters':>8}  {'node':<24} last event",
    ]
    now = time.monotonic()
    for s in sorted(stats, key=lambda s: s.session_id):
        session = pool.sessions.get(s.session_id)
        node = session.node.url if session is not None else "-"
        lines.append(
            f"{s.session_id:<24} {s.state:<12} {s.format or '-':<12} {s.frames:>8} "
            f"{s.kbps(now):>8.1f} {s.stutters:>8}  {node:<24} {s.last_event}"
        )
    return "\n".join(lines)


async def _live_table(router: Router, source: Receiver | NodePool) -> None:
    while True:
        table = (
            render_table(router.stats(), source)
            if isinstance(source, Receiver)
            else render_pool_table(router.stats(), source)
        )
        sys.stdout.write("\x1b[H\x1b[2J" + table + "\n")
        sys.stdout.flush()
        await asyncio.sleep(TABLE_REFRESH_SECONDS)


async def run_route(options: RouteOptions) -> int:
    # PyAV and aiohttp load only when files or WebSockets are asked for:
    # a bare `route --report-ndjson` starts in a fraction of the time.
    hub = None
    if options.ws or options.web:
        from .websocket import WebSocketHub

        hub = WebSocketHub(options.web_token or options.ws_token)
    if options.out_dir is not None:
        from .files import FileSink

    def make_sink(session_id: str) -> Sink:
        sinks: list[Sink] = []
        if options.out_dir is not None:
            sinks.append(FileSink(options.out_dir, session_id))
        if hub is not None:
            sinks.append(hub.sink_for(session_id))
        if not options.live_table:
            sinks.append(EventLogSink(session_id, lambda: router.session_stats(session_id)))
        return CompositeSink(sinks)

    router = ReportingRouter(make_sink) if options.report_ndjson else Router(make_sink)
    if options.nodes or options.endpoint is None:
        return await _run_pool_route(options, router, hub)
    receiver = Receiver(options.endpoint, router)
    if options.report_ndjson:
        receiver.on_protocol_error = report_error
    control: Any = None
    if options.web is not None:
        from ..control import ControlClient

        control = ControlClient(options.node_url, options.node_token, options.node_tls_ca)
    runners = await _serve_apps(options, hub, control)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, receiver.stop)
    table = asyncio.create_task(_live_table(router, receiver)) if options.live_table else None
    exit_code = 0
    try:
        await receiver.run()
    except (IncompatibleNodeError, UntrustedSocketError) as exc:
        log.error("%s", exc)
        exit_code = 2
    finally:
        if table is not None:
            table.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await table
        router.close()
        for runner in runners:
            await runner.cleanup()
        if control is not None:
            await control.close()
    return exit_code


async def _serve_apps(options: RouteOptions, hub: Any, control: Any) -> list[Any]:
    """Start the --ws sink and the --web playground (driving ``control``); return runners."""
    if hub is None:
        return []
    from aiohttp import web

    apps = []
    if options.ws is not None:
        apps.append((hub.app(), options.ws, "websocket sink: ws://%s:%d/ws?session_id=ID"))
    if options.web is not None:
        from .web import build_web_app

        apps.append(
            (
                build_web_app(hub, control, options.web_token),
                options.web,
                "web playground: http://%s:%d/",
            )
        )
    runners = []
    for app, (host, port), message in apps:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
        log.info(message, host, port)
    return runners


async def _run_pool_route(options: RouteOptions, router: Router, hub: Any) -> int:
    """`route --node URL... [--http HOST:PORT]`: the sinks fed by a NodePool."""
    from .pool import NodePool

    pool = NodePool(
        options.nodes or (NODE_URL,),
        router,
        token=options.node_token,
        tls_ca=options.node_tls_ca,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runners: list[Any] = []
    table = None
    try:
        await pool.start()
        runners = await _serve_apps(options, hub, pool)
        if options.http is not None:
            from aiohttp import web

            from .pool_api import build_pool_app

            runner = web.AppRunner(
                build_pool_app(pool, options.node_token), access_log=None, handle_signals=False
            )
            await runner.setup()
            await web.TCPSite(runner, *options.http).start()
            runners.append(runner)
            log.info("control API on the pool: http://%s:%d", *options.http)
        log.info(
            "pool of %d nodes: %s",
            len(pool.nodes),
            ", ".join(f"{n.url} {n.state}" for n in pool.nodes),
        )
        if options.live_table:
            table = asyncio.create_task(_live_table(router, pool))
        await stop.wait()
    finally:
        if table is not None:
            table.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await table
        for runner in runners:
            await runner.cleanup()
        await pool.close()
        router.close()
    return 0
