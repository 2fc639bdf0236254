# Strategy: the one home of every default that more than one part of snowmux
# (CLI, node, receiver, control client, harnesses) must agree on. Each value
# cites why it is what it is. Nothing here imports PyAV or aiohttp, so any
# module may use it without loading a codec or an HTTP stack.
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .protocol import PAYLOAD_FORMATS, PayloadFormat

__all__ = [
    "DEFAULT_FORMAT",
    "HTTP_HOST",
    "HTTP_PORT",
    "MAX_SESSIONS",
    "NODE_URL",
    "PAYLOAD_FORMATS",
    "PREBUFFER_MS",
    "PROGRESS_INTERVAL_SECONDS",
    "RECEIVER_PROPERTIES",
    "RECEIVER_QUEUE_BYTES",
    "SENDER_PROPERTIES",
    "SILENCE_FRAMES",
    "SOCKET_NAME",
    "STUTTER_GAP_SECONDS",
    "default_socket_path",
]

# The control API listens on loopback only unless told otherwise (SPEC.md
# section 9; a token is required anywhere else). 8180: the legacy node's port.
HTTP_HOST = "127.0.0.1"
HTTP_PORT = 8180
NODE_URL = f"http://{HTTP_HOST}:{HTTP_PORT}"

SOCKET_NAME = "snowmux.sock"

# opus-packets: what Discord sends, so a bot forwards it without re-encoding.
DEFAULT_FORMAT = PayloadFormat.OPUS_PACKETS

MAX_SESSIONS = 256  # the legacy node's limit; each transcoding session costs ~1% of a core
PREBUFFER_MS = 500  # the legacy paced buffer: absorbs a receiver's scheduling hiccups
PROGRESS_INTERVAL_SECONDS = 5.0  # seconds of playback between progress events, as Lavalink
# 16 MiB per receiver: about 70 s of 256 kb/s Opus for one session, or 4 s of
# PCM: a slow receiver loses audio (oldest first) rather than growing the node.
RECEIVER_QUEUE_BYTES = 16 * 1024 * 1024

# Discord's clients send five Opus silence frames before going quiet; the node
# does the same after the last opus-packets frame of a playback.
SILENCE_FRAMES = 5

# The legacy client logged a stutter when frames were more than 100 ms apart:
# five missed 20 ms frames, which a listener hears as a dropout.
STUTTER_GAP_SECONDS = 0.100

# The conformance properties (SPEC.md section 12), by the names the CLI and the
# reports use.
RECEIVER_PROPERTIES = ("valid-interleaving", "vectors", "event-escaping", "id-lengths")
SENDER_PROPERTIES = ("framing", "hello-and-events", "ordering", "isolation", "pacing", "payloads")


def default_socket_path() -> Path:
    """``$XDG_RUNTIME_DIR/snowmux.sock``, else the temp dir's ``snowmux.sock``."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / SOCKET_NAME


# A playback that cannot make its next frame for this long sends `stuck`
# (Lavalink's TrackStuckEvent and its default threshold, 10 s).
STUCK_THRESHOLD_MS = 10_000
