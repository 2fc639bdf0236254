"""The snowmux audio node: PyAV decoding sender with concurrent sessions."""

from __future__ import annotations

from .server import Node, NodeConfig, NodeConfigError, NodeStartError, run_node

__all__ = ["Node", "NodeConfig", "NodeConfigError", "NodeStartError", "run_node"]
