# Strategy: `snowmux route`: a Receiver whose router creates, on first sight
# of a session, the sinks the command line asked for (files under --out,
# WebSocket subscribers on --ws), plus a live table in a terminal or one log
# line per event otherwise. SIGINT/SIGTERM close every file cleanly.
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
from typing import Any

from snowmux.protocol import AudioFrame, Event, Message, RemoteProtocolError

from ..defaults import NODE_URL
from ..protocol.reports import error_report, message_report, report_line
from .connection import Endpoint, IncompatibleNodeError, Receiver, UntrustedSocketError
from .router import Router
from .sinks import CompositeSink, Sink
from .stats import SessionStats

__all__ = ["RouteOptions", "render_table", "run_route"]

log = logging.getLogger("snowmux.route")
TABLE_REFRESH_SECONDS = 0.5


@dataclass
class RouteOptions:
    endpoint: Endpoint
    out_dir: Path | None = None
    ws: tuple[str, int] | None = None
    ws_token: str | None = None
    live_table: bool = False
    report_ndjson: bool = False
    web: tuple[str, int] | None = None
    web_token: str | None = None
    node_url: str = NODE_URL
    node_token: str | None = None
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


async def _live_table(router: Router, receiver: Receiver) -> None:
    while True:
        sys.stdout.write("\x1b[H\x1b[2J" + render_table(router.stats(), receiver) + "\n")
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
    receiver = Receiver(options.endpoint, router)
    if options.report_ndjson:
        receiver.on_protocol_error = report_error
    runners: list[Any] = []
    control: Any = None
    if hub is not None:
        from aiohttp import web

        apps = []
        if options.ws is not None:
            apps.append((hub.app(), options.ws, "websocket sink: ws://%s:%d/ws?session_id=ID"))
        if options.web is not None:
            from ..control import ControlClient
            from .web import build_web_app

            control = ControlClient(options.node_url, options.node_token, options.node_tls_ca)
            apps.append(
                (
                    build_web_app(hub, control, options.web_token),
                    options.web,
                    "web playground: http://%s:%d/",
                )
            )
        for app, (host, port), message in apps:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            runners.append(runner)
            log.info(message, host, port)
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
