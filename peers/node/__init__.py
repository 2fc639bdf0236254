"""The snowmux audio node: PyAV decoding sender with concurrent sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Node, NodeConfig, NodeConfigError, NodeStartError, run_node

__all__ = ["Node", "NodeConfig", "NodeConfigError", "NodeStartError", "run_node"]


def __getattr__(name: str) -> Any:
    # Lazy: each codec worker process imports snowmux.node.codec_worker, and
    # importing the server with it (aiohttp, prometheus-client) cost every
    # worker ~0.3 s of CPU at start, which the first plays waited for.
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
