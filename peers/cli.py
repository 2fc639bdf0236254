# Strategy: the one `snowmux` click group. Each subcommand lives with the
# code it drives; this module only assembles them.
from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import BinaryIO

import click

__all__ = ["main"]


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


def host_port(default_host: str) -> click.ParamType:
    """A click type for HOST:PORT (or just PORT, on ``default_host``)."""

    class HostPort(click.ParamType):
        name = "HOST:PORT"

        def convert(self, value: object, param: object, ctx: object) -> tuple[str, int]:
            if isinstance(value, tuple):
                return value  # type: ignore[return-value]
            text = str(value)
            host, _, port_text = text.rpartition(":")
            try:
                port = int(port_text)
            except ValueError:
                self.fail(f"{text!r} is not HOST:PORT", param, ctx)  # type: ignore[arg-type]
            if not 0 <= port <= 65535:
                self.fail(f"port {port} out of range", param, ctx)  # type: ignore[arg-type]
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
    type=host_port("127.0.0.1"),
    default="127.0.0.1:8180",
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
    type=host_port("127.0.0.1"),
    default=None,
    help="Also accept receivers over TCP on HOST:PORT (or PORT, on loopback).",
)
@click.option(
    "--token",
    envvar="SNOWMUX_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on the control API [env: SNOWMUX_TOKEN].",
)
@click.option(
    "--media-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Local paths are served from this directory only.",
)
@click.option("--allow-remote", is_flag=True, help="Allow http:// and https:// URLs.")
@click.option("--max-sessions", type=click.IntRange(1), default=256, show_default=True)
@click.option(
    "--prebuffer-ms",
    type=click.IntRange(0, 10_000),
    default=500,
    show_default=True,
    help="Audio sent as a burst before real-time pacing starts.",
)
@click.option("--no-pace", is_flag=True, help="Send as fast as receivers take it (tests, batch).")
@click.option(
    "--progress-interval",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds of playback between progress events (0: none).",
)
@click.option(
    "--receiver-queue-kib",
    type=click.IntRange(64),
    default=16 * 1024,
    show_default=True,
    help="Per-receiver queue; beyond it the oldest audio frames are dropped.",
)
@LOG_LEVEL
def serve(
    http: tuple[str, int],
    socket_path: Path | None,
    tcp: tuple[str, int] | None,
    token: str | None,
    media_root: Path,
    allow_remote: bool,
    max_sessions: int,
    prebuffer_ms: int,
    no_pace: bool,
    progress_interval: float,
    receiver_queue_kib: int,
    log_level: str,
) -> None:
    """Run the audio node: HTTP control API + session-multiplexed stream."""
    from .sender import NodeConfig, run_node

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
    )
    asyncio.run(run_node(config))


if __name__ == "__main__":
    main()
