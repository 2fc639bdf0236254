# Strategy: the one `snowmux` click group. Each subcommand lives with the
# code it drives; this module only assembles them.
from __future__ import annotations

import sys
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


if __name__ == "__main__":
    main()
