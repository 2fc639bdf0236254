"""The snowmux receiver: connects to a node and routes each frame to its session."""

from __future__ import annotations

from .connection import Endpoint, IncompatibleNodeError, Receiver
from .files import FileSink
from .router import Router
from .sinks import CompositeSink, FrameQueue, NullSink, Sink
from .stats import SessionStats

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
]
