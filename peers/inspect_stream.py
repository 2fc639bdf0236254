# Strategy: `snowmux inspect`: decode a captured stream (a file, or stdin) and
# print each message or a per-session summary. A bad or truncated stream
# prints the decoder's error with its stream offset and exits non-zero, after
# printing everything that decoded before it.
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

import click

from snowmux.protocol import AudioFrame, Decoder, Event, Message, RemoteProtocolError

__all__ = ["StreamSummary", "inspect_stream"]

READ_SIZE = 64 * 1024


@dataclass
class StreamSummary:
    frames: Counter[str] = field(default_factory=Counter)
    payload_bytes: Counter[str] = field(default_factory=Counter)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, message: Message) -> None:
        if isinstance(message, AudioFrame):
            self.frames[message.session_id] += 1
            self.payload_bytes[message.session_id] += len(message.payload)
        else:
            self.events[(message.session_id, message.type)] += 1

    def lines(self) -> list[str]:
        sessions = sorted(set(self.frames) | {sid for sid, _ in self.events})
        out = [f"{'session':<24}  {'frames':>8}  {'bytes':>12}  events"]
        for sid in sessions:
            events = ", ".join(
                f"{kind} x{count}" for (s, kind), count in sorted(self.events.items()) if s == sid
            )
            label = sid or "(connection)"
            out.append(
                f"{label:<24}  {self.frames[sid]:>8}  {self.payload_bytes[sid]:>12}  {events}"
            )
        return out


def describe(message: Message) -> str:
    if isinstance(message, Event):
        return f"event  {message.type:<9} {message.session_id or '(connection)'}  " + json.dumps(
            dict(message.data), ensure_ascii=False
        )
    head = bytes(message.payload[:8]).hex(" ")
    return f"frame  {message.session_id:<24} {len(message.payload):>7} B  {head}"


def inspect_stream(source: BinaryIO, summary: bool) -> int:
    """Decode ``source`` to the end; return the process exit code."""
    decoder = Decoder()
    totals = StreamSummary()

    def emit(messages: list[Message]) -> None:
        for message in messages:
            totals.add(message)
            if not summary:
                click.echo(describe(message))

    try:
        while chunk := source.read(READ_SIZE):
            emit(decoder.feed(chunk))
        decoder.feed_eof()
    except RemoteProtocolError as error:
        emit(error.messages)
        if summary:
            click.echo("\n".join(totals.lines()))
        click.echo(f"error: {type(error).__name__} at offset {error.offset}: {error}", err=True)
        return 1
    if summary:
        click.echo("\n".join(totals.lines()))
    return 0
