"""The snowmux receiver: connects to a node and routes each frame to its session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connection import Endpoint, IncompatibleNodeError, Receiver, UntrustedSocketError
from .router import Router
from .sinks import CompositeSink, FrameQueue, NullSink, Sink
from .stats import SessionStats

if TYPE_CHECKING:
    from .files import FileSink


def __getattr__(name: str) -> Any:
    # FileSink pulls in PyAV; load it only for the receivers that write files.
    if name == "FileSink":
        from .files import FileSink

        return FileSink
    raise AttributeError(name)


__all__ = [
    "CompositeSink",
    "Endpoint",
    "FileSink",
    "FrameQueue",
    "IncompatibleNodeError",
    "NullSink",
    "Receiver",
    "Router",
    "SessionStats",
    "Sink",
    "UntrustedSocketError",
]
