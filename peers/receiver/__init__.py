"""The snowmux receiver: connects to a node and routes each frame to its session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connection import Endpoint, IncompatibleNodeError, Receiver, UntrustedSocketError
from .penalty import NodeLoad, penalty
from .router import Router
from .sinks import CompositeSink, FrameQueue, NullSink, Sink
from .stats import SessionStats

if TYPE_CHECKING:
    from .files import FileSink
    from .pool import NodePool


def __getattr__(name: str) -> Any:
    # FileSink pulls in PyAV; load it only for the receivers that write files.
    if name == "FileSink":
        from .files import FileSink

        return FileSink
    if name == "NodePool":  # aiohttp (its control client) loads only for a pool
        from .pool import NodePool

        return NodePool
    raise AttributeError(name)


__all__ = [
    "CompositeSink",
    "Endpoint",
    "FileSink",
    "FrameQueue",
    "IncompatibleNodeError",
    "NodeLoad",
    "NodePool",
    "NullSink",
    "Receiver",
    "Router",
    "SessionStats",
    "Sink",
    "penalty",
    "UntrustedSocketError",
]
