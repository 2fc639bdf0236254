# Strategy: the one `snowmux` click group. Each subcommand lives with the
# code it drives; this module only assembles them.
from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from . import defaults

__all__ = ["main"]

FORMAT_NAMES = [str(audio_format) for audio_format in defaults.PAYLOAD_FORMATS]  # the wire names


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snowmux")
def main() -> None:
    """snowmux: session-multiplexed audio streams (codec, node, receiver)."""


@main.command()
@click.argument("source", type=click.File("rb"))
@click.option("--summary", is_flag=True, help="Per-session frame/byte counts and events.")
def inspect(source: BinaryIO, summary: bool) -> None:
    """Decode a captured stream (FILE, or - for stdin) and print its messages."""
    from .inspect_stream import inspect_stream

    sys.exit(inspect_stream(source, summary))


if TYPE_CHECKING:
    _HostPortBase = click.ParamType[tuple[str, int]]
else:  # click's ParamType is generic only in recent releases
    _HostPortBase = click.ParamType


def host_port(default_host: str) -> _HostPortBase:
    """A click type for HOST:PORT (or just PORT, on ``default_host``)."""

    class HostPort(_HostPortBase):
        name = "HOST:PORT"

        def convert(
            self, value: object, param: click.Parameter | None, ctx: click.Context | None
        ) -> tuple[str, int]:
            if isinstance(value, tuple):
                host_text, port_number = value
                return (str(host_text), int(port_number))
            text = str(value)
            host, _, port_text = text.rpartition(":")
            try:
                port = int(port_text)
            except ValueError:
                self.fail(f"{text!r} is not HOST:PORT", param, ctx)
            if not 0 <= port <= 65535:
                self.fail(f"port {port} out of range", param, ctx)
            return (host.strip("[]") or default_host, port)

    return HostPort()


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


LOG_LEVEL = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)


@main.command()
@click.option(
    "--http",
    "http",
    type=host_port(defaults.HTTP_HOST),
    default=f"{defaults.HTTP_HOST}:{defaults.HTTP_PORT}",
    show_default=True,
    help="Control API address (loopback by default).",
)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Unix socket for receivers [default: $XDG_RUNTIME_DIR or the temp dir]/snowmux.sock.",
)
@click.option(
    "--tcp",
    type=host_port(defaults.HTTP_HOST),
    default=None,
    help="Also accept receivers over TCP on HOST:PORT (or PORT, on loopback).",
)
@click.option(
    "--token",
    envvar="SNOWMUX_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on the control API and an auth line from "
    "stream receivers; required off loopback [env: SNOWMUX_TOKEN].",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Serve the control API and the --tcp stream over TLS with this PEM certificate chain.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The private key (PEM) of --tls-cert.",
)
@click.option(
    "--max-receivers",
    type=click.IntRange(1),
    default=defaults.MAX_RECEIVERS,
    show_default=True,
    help="Stream receivers connected at once; more are closed at once.",
)
@click.option(
    "--max-http-connections",
    type=click.IntRange(1),
    default=defaults.MAX_HTTP_CONNECTIONS,
    show_default=True,
    help="Control API connections open at once; beyond it the oldest idle (1 s+) one is closed.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(0.1, 3600),
    default=defaults.READ_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds a control API client has to send a request's headers, and again its body.",
)
@click.option(
    "--media-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Local paths are served from this directory only.",
)
@click.option("--allow-remote", is_flag=True, help="Allow http:// and https:// URLs.")
@click.option(
    "--max-sessions", type=click.IntRange(1), default=defaults.MAX_SESSIONS, show_default=True
)
@click.option(
    "--prebuffer-ms",
    type=click.IntRange(0, 10_000),
    default=defaults.PREBUFFER_MS,
    show_default=True,
    help="Audio sent as a burst before real-time pacing starts.",
)
@click.option("--no-pace", is_flag=True, help="Send as fast as receivers take it (tests, batch).")
@click.option(
    "--progress-interval",
    type=click.FloatRange(0),
    default=defaults.PROGRESS_INTERVAL_SECONDS,
    show_default=True,
    help="Seconds of playback between progress events (0: none).",
)
@click.option(
    "--codec-processes",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes that decode and encode [default: one per core].",
)
@click.option(
    "--receiver-queue-kib",
    type=click.IntRange(64),
    default=defaults.RECEIVER_QUEUE_BYTES // 1024,
    show_default=True,
    help="Per-receiver queue; beyond it the oldest audio frames are dropped.",
)
@click.option(
    "--stuck-threshold-ms",
    type=click.IntRange(1, 3_600_000),
    default=defaults.STUCK_THRESHOLD_MS,
    show_default=True,
    help="A playback with no next frame for this long sends `stuck` (errors 30 s later).",
)
@LOG_LEVEL
def serve(
    http: tuple[str, int],
    socket_path: Path | None,
    tcp: tuple[str, int] | None,
    token: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    max_receivers: int,
    max_http_connections: int,
    read_timeout: float,
    media_root: Path,
    allow_remote: bool,
    max_sessions: int,
    prebuffer_ms: int,
    no_pace: bool,
    progress_interval: float,
    codec_processes: int | None,
    receiver_queue_kib: int,
    stuck_threshold_ms: int,
    log_level: str,
) -> None:
    """Run the audio node: HTTP control API + session-multiplexed stream."""
    from .node.server import NodeConfig, NodeConfigError, NodeStartError, check_config, run_node

    setup_logging(log_level)
    config = NodeConfig(
        http_host=http[0],
        http_port=http[1],
        socket_path=socket_path,
        tcp=tcp,
        token=token or None,
        media_root=media_root,
        allow_remote=allow_remote,
        max_sessions=max_sessions,
        prebuffer_ms=prebuffer_ms,
        pace=not no_pace,
        progress_interval=progress_interval,
        queue_bytes=receiver_queue_kib * 1024,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_receivers=max_receivers,
        max_http_connections=max_http_connections,
        header_timeout=read_timeout,
        body_timeout=read_timeout,
        stuck_threshold_ms=stuck_threshold_ms,
    )
    if codec_processes is not None:
        config.workers = codec_processes
    try:
        check_config(config)
        asyncio.run(run_node(config))
    except NodeConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except NodeStartError as exc:
        raise click.ClickException(str(exc)) from None


NODE = click.option(
    "--node",
    default=defaults.NODE_URL,
    show_default=True,
    envvar="SNOWMUX_NODE",
    help="The node's control API.",
)
TOKEN = click.option(
    "--token",
    envvar="SNOWMUX_TOKEN",
    default=None,
    help="Bearer token of the node [env: SNOWMUX_TOKEN].",
)
TLS_CA = click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="SNOWMUX_TLS_CA",
    default=None,
    help="CA certificate (PEM) that verifies a TLS node [env: SNOWMUX_TLS_CA].",
)


def _control(
    node: str,
    token: str | None,
    tls_ca: Path | None,
    action: str,
    *args: object,
    **kwargs: object,
) -> dict[str, Any]:
    """Run one control-API call; print the node's error message and exit 1 on failure."""
    from .control import ControlClient, NodeError

    async def call() -> dict[str, Any]:
        async with ControlClient(node, token, tls_ca) as client:
            result: dict[str, Any] = await getattr(client, action)(*args, **kwargs)
            return result

    try:
        return asyncio.run(call())
    except NodeError as exc:
        where = f" (HTTP {exc.status})" if exc.status else ""
        click.echo(f"error{where}: {exc.message}", err=True)
        sys.exit(1)


@main.command()
@click.argument("session_id")
@click.argument("url")
@click.option(
    "--format",
    "audio_format",
    type=click.Choice(FORMAT_NAMES),
    default=None,
    help="Payload format [node default: pcm].",
)
@click.option("--start-at", type=click.FloatRange(0), default=None, help="Start position, seconds.")
@click.option("--volume", type=click.FloatRange(0, 5), default=None, help="0-5, 1 is unity.")
@click.option("--bitrate", type=click.IntRange(6000, 510000), default=None)
@click.option("--end-at", type=click.FloatRange(0), default=None, help="End position, seconds.")
@click.option("--filters", "filters", default=None, help="Lavalink v4 filter JSON.")
@NODE
@TOKEN
@TLS_CA
def play(
    session_id: str,
    url: str,
    audio_format: str | None,
    start_at: float | None,
    volume: float | None,
    bitrate: int | None,
    end_at: float | None,
    filters: str | None,
    node: str,
    token: str | None,
    tls_ca: Path | None,
) -> None:
    """Play URL on session SESSION_ID (replacing only that session's playback)."""
    options = (
        ("volume", volume),
        ("bitrate", bitrate),
        ("end_at", end_at),
        ("filters", None if filters is None else _json_object(filters, "--filters")),
    )
    extra = {k: v for k, v in options if v is not None}
    reply = _control(node, token, tls_ca, "play", session_id, url, audio_format, start_at, **extra)
    click.echo(f"{reply.get('status')} {reply.get('session_id')}")


def _simple(action: str, doc: str) -> None:
    @main.command(name=action, help=doc)
    @click.argument("session_id")
    @NODE
    @TOKEN
    @TLS_CA
    def command(session_id: str, node: str, token: str | None, tls_ca: Path | None) -> None:
        reply = _control(node, token, tls_ca, action, session_id)
        click.echo(f"{reply.get('status')} {reply.get('session_id')}")


def _json_object(text: str, what: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=what) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=what)
    return value


def _print_status(reply: dict[str, Any]) -> None:
    import json

    click.echo(json.dumps(reply, indent=2))


@main.command()
@click.argument("session_id")
@click.argument("seconds", type=click.FloatRange(0))
@NODE
@TOKEN
@TLS_CA
def seek(
    session_id: str, seconds: float, node: str, token: str | None, tls_ca: Path | None
) -> None:
    """Seek SESSION_ID to SECONDS (sample-accurate); prints its status."""
    _print_status(_control(node, token, tls_ca, "seek", session_id, seconds))


@main.command()
@click.argument("session_id")
@click.argument("volume", type=click.FloatRange(0, 5))
@NODE
@TOKEN
@TLS_CA
def volume(
    session_id: str, volume: float, node: str, token: str | None, tls_ca: Path | None
) -> None:
    """Set SESSION_ID's volume (0-5, 1 is unity), ramped over one frame; prints its status."""
    _print_status(_control(node, token, tls_ca, "volume", session_id, volume))


@main.command()
@click.argument("session_id")
@click.argument("filters_json", metavar="JSON")
@NODE
@TOKEN
@TLS_CA
def filters(
    session_id: str, filters_json: str, node: str, token: str | None, tls_ca: Path | None
) -> None:
    """Replace SESSION_ID's filters with Lavalink v4 filter JSON ('{}' clears them)."""
    chosen = _json_object(filters_json, "JSON")
    _print_status(_control(node, token, tls_ca, "filters", session_id, chosen))


@main.command()
@click.argument("session_id")
@click.argument("url", required=False)
@click.option("--list", "show", is_flag=True, help="Show the queue instead of adding to it.")
@click.option("--clear", is_flag=True, help="Drop the upcoming tracks.")
@click.option(
    "--format",
    "audio_format",
    type=click.Choice(FORMAT_NAMES),
    default=None,
    help="Payload format of a session that starts with this track [node default: pcm].",
)
@click.option("--crossfade-ms", type=click.IntRange(0, 12_000), default=None)
@click.option("--start-at", type=click.FloatRange(0), default=None)
@click.option("--end-at", type=click.FloatRange(0), default=None)
@NODE
@TOKEN
@TLS_CA
def queue(
    session_id: str,
    url: str | None,
    show: bool,
    clear: bool,
    audio_format: str | None,
    crossfade_ms: int | None,
    start_at: float | None,
    end_at: float | None,
    node: str,
    token: str | None,
    tls_ca: Path | None,
) -> None:
    """Queue URL on SESSION_ID (gapless, or crossfaded), or --list / --clear its queue."""
    if show:
        _print_status(_control(node, token, tls_ca, "queue_list", session_id))
        return
    if clear:
        _print_status(_control(node, token, tls_ca, "clear_queue", session_id))
        return
    if url is None:
        raise click.UsageError("give a URL to queue, or --list / --clear")
    options = (
        ("format", audio_format),
        ("crossfade_ms", crossfade_ms),
        ("start_at", start_at),
        ("end_at", end_at),
    )
    extra = {k: v for k, v in options if v is not None}
    reply = _control(node, token, tls_ca, "queue", session_id, url, **extra)
    click.echo(f"{reply.get('status')} {session_id} position {reply.get('position')}")


_simple("skip", "End SESSION_ID's current track now; the next one follows.")
_simple("stop", "Stop SESSION_ID's playback (idempotent).")
_simple("pause", "Pause SESSION_ID at a frame boundary.")
_simple("resume", "Resume SESSION_ID with the very next frame.")


@main.command()
@click.argument("session_id", required=False)
@NODE
@TOKEN
@TLS_CA
def status(session_id: str | None, node: str, token: str | None, tls_ca: Path | None) -> None:
    """Show one session's status, or every session's."""
    import json

    click.echo(json.dumps(_control(node, token, tls_ca, "status", session_id), indent=2))


@main.command()
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The node's Unix socket [default: the node's default path].",
)
@click.option(
    "--tcp", type=host_port(defaults.HTTP_HOST), default=None, help="Connect over TCP instead."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each playback to DIR/<session_id>/NNN-<format>.<ext>.",
)
@click.option(
    "--ws",
    type=host_port(defaults.HTTP_HOST),
    default=None,
    help="Serve WebSocket subscribers on HOST:PORT (ws://HOST:PORT/ws?session_id=ID).",
)
@click.option(
    "--ws-token",
    envvar="SNOWMUX_WS_TOKEN",
    default=None,
    help="Require this token from WebSocket clients.",
)
@click.option(
    "--web",
    type=host_port(defaults.HTTP_HOST),
    default=None,
    help="Serve the web playground on HOST:PORT (loopback by default).",
)
@click.option(
    "--web-token",
    envvar="SNOWMUX_WEB_TOKEN",
    default=None,
    help="Require this token for the playground's subscriptions and controls.",
)
@click.option(
    "--node",
    "nodes",
    multiple=True,
    envvar="SNOWMUX_NODE",
    help="A node's control API; repeat it for a pool of nodes whose streams are found "
    'through their /info (README "Scaling out") [default: the local node].',
)
@click.option(
    "--http",
    type=host_port(defaults.HTTP_HOST),
    default=None,
    help="Serve the node's control API on the pool of --node nodes at HOST:PORT.",
)
@TOKEN
@TLS_CA
@click.option(
    "--report-ndjson",
    is_flag=True,
    help="Print one JSON line per decoded message on stdout (SPEC.md section 12).",
)
@LOG_LEVEL
def route(
    socket_path: Path | None,
    tcp: tuple[str, int] | None,
    out_dir: Path | None,
    ws: tuple[str, int] | None,
    ws_token: str | None,
    web: tuple[str, int] | None,
    web_token: str | None,
    nodes: tuple[str, ...],
    http: tuple[str, int] | None,
    token: str | None,
    tls_ca: Path | None,
    report_ndjson: bool,
    log_level: str,
) -> None:
    """Receive a node's stream (or a pool's) and route every frame to its session's sinks.

    --token authenticates both to the stream (SPEC.md section 8a) and to the
    nodes' HTTP API (the pool, the web playground's controls).
    """
    import ssl

    from .receiver.connection import Endpoint
    from .receiver.route import RouteOptions, run_route

    if socket_path is not None and tcp is not None:
        raise click.UsageError("give --socket or --tcp, not both")
    one_stream = socket_path is not None or tcp is not None
    if http is not None and one_stream:
        raise click.UsageError("--http serves a pool of --node nodes: drop --socket/--tcp")
    live = sys.stdout.isatty() and not report_ndjson
    setup_logging(log_level if not live else "warning")
    tls = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca and tcp else None
    endpoint: Endpoint | None = None
    if one_stream or not (nodes or http):
        endpoint = (
            Endpoint(tcp=tcp, token=token, tls=tls)
            if tcp
            else Endpoint(unix_path=socket_path or defaults.default_socket_path(), token=token)
        )
    node = nodes[0] if nodes else defaults.NODE_URL
    options = RouteOptions(
        endpoint=endpoint,
        out_dir=out_dir,
        ws=ws,
        ws_token=ws_token,
        live_table=live,
        report_ndjson=report_ndjson,
        web=web,
        web_token=web_token,
        node_url=node,
        node_token=token,
        nodes=nodes if endpoint is None else (),
        http=http,
        node_tls_ca=tls_ca,
    )
    sys.exit(asyncio.run(run_route(options)))


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("snowmux-demo"),
    show_default=True,
)
@LOG_LEVEL
def demo(out_dir: Path, log_level: str) -> None:
    """Play tones in three sessions at once and show that routing keeps them apart."""
    from .demo import run_demo

    setup_logging(log_level if log_level != "info" else "warning")
    sys.exit(run_demo(out_dir))


@main.group()
def conformance() -> None:
    """Test another implementation's receiver or sender against SPEC.md."""


@conformance.command(name="receiver", context_settings={"ignore_unknown_options": True})
@click.option("--seed", type=int, default=None, help="Hypothesis seed (printed; reuse to replay).")
@click.option(
    "--max-examples",
    type=click.IntRange(1),
    default=25,
    show_default=True,
    help="Generated streams per property.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=5.0,
    show_default=True,
    help="Seconds per example before the receiver counts as hung.",
)
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(defaults.RECEIVER_PROPERTIES),
    help="Run only these properties.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def conformance_receiver(
    seed: int | None,
    max_examples: int,
    timeout: float,
    only: tuple[str, ...],
    command: tuple[str, ...],
) -> None:
    """Run receiver CMD (-- CMD ARGS..., with {socket} or $SNOWMUX_SOCKET) against generated streams."""
    import random

    try:
        from .conformance.receiver_harness import ReceiverHarness, render_results
    except ImportError as exc:  # hypothesis is an optional extra
        raise click.ClickException(f"{exc}: pip install 'snowmux[conformance]'") from None
    seed_value = seed if seed is not None else random.randrange(2**32)
    click.echo(f"receiver conformance, seed {seed_value}: {' '.join(command)}")
    harness = ReceiverHarness(
        list(command), timeout=timeout, seed=seed_value, max_examples=max_examples, log=click.echo
    )
    results = harness.run_all(list(only) or None)
    click.echo("\n".join(render_results(results, list(command), seed_value)))
    sys.exit(0 if all(r.passed for r in results) else 1)


@conformance.command(name="sender")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The sender's Unix socket.",
)
@click.option(
    "--tcp",
    type=host_port(defaults.HTTP_HOST),
    default=None,
    help="The sender's TCP stream instead (TLS with --tls-ca).",
)
@NODE
@TOKEN
@TLS_CA
@click.option("--media", default=None, help="Play this URL instead of the built-in tones.")
def conformance_sender(
    socket_path: Path | None,
    tcp: tuple[str, int] | None,
    node: str,
    token: str | None,
    tls_ca: Path | None,
    media: str | None,
) -> None:
    """Drive a running sender through its control API and validate every byte it emits.

    With --token the harness authenticates to the stream (SPEC.md section 8a)
    and to the control API.
    """
    import ssl

    from .conformance.sender_harness import SenderHarness, render_sender_results
    from .receiver.connection import Endpoint

    if (socket_path is None) == (tcp is None):
        raise click.UsageError("give --socket or --tcp (exactly one)")
    tls = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca and tcp else None
    endpoint = Endpoint(unix_path=socket_path, tcp=tcp, token=token, tls=tls)
    click.echo(f"sender conformance: {endpoint}, node {node}")
    harness = SenderHarness(
        socket_path, node, token, media, log=click.echo, endpoint=endpoint, tls_ca=tls_ca
    )
    try:
        asyncio.run(harness.scenario())
    except OSError as exc:
        raise click.ClickException(f"cannot connect to {endpoint}: {exc}") from None
    results = harness.judge()
    click.echo("\n".join(render_sender_results(results)))
    sys.exit(0 if all(r.passed for r in results) else 1)


if __name__ == "__main__":
    main()
