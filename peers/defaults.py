# Strategy: the one home of every default that more than one part of snowmux
# (CLI, node, receiver, control client, harnesses) must agree on. Each value
# cites why it is what it is. Nothing here imports PyAV or aiohttp, so any
# module may use it without loading a codec or an HTTP stack.
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .protocol import PAYLOAD_FORMATS, PayloadFormat

__all__ = [
    "DEFAULT_FORMAT",
    "HTTP_HOST",
    "HTTP_PORT",
    "MAX_HTTP_CONNECTIONS",
    "MAX_RECEIVERS",
    "MAX_SESSIONS",
    "MEDIA_OPEN_TIMEOUT_SECONDS",
    "NODE_URL",
    "PAYLOAD_FORMATS",
    "PREBUFFER_MS",
    "PROGRESS_INTERVAL_SECONDS",
    "READ_TIMEOUT_SECONDS",
    "RECEIVER_PROPERTIES",
    "RECEIVER_QUEUE_BYTES",
    "SENDER_PROPERTIES",
    "SILENCE_FRAMES",
    "SOCKET_NAME",
    "STUTTER_GAP_SECONDS",
    "UnsafeSocketDirError",
    "check_private_dir",
    "default_socket_path",
    "ensure_private_dir",
    "uses_private_dir",
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
# A play request opens and probes its media before it is answered (SPEC.md
# [A4]): a remote server that has not answered in 10 s is treated as dead, so
# the request fails within that bound instead of hanging a codec worker.
MEDIA_OPEN_TIMEOUT_SECONDS = 10.0
# Receivers are bot processes, a handful per node; 256 matches MAX_SESSIONS
# (one receiver per session would be an odd but legal deployment).
MAX_RECEIVERS = 256
# A bot may fire one play per session at once (up to MAX_SESSIONS) while
# dashboards poll: 512 concurrent control connections is twice that, and with
# MAX_RECEIVERS and the node's own ~50 descriptors stays inside the default
# 1,024-descriptor limit.
MAX_HTTP_CONNECTIONS = 512
# A request's headers must arrive within 10 s of the connection opening (or of
# the previous response), and its body within 10 s more: nginx allows 60 s
# each, but our clients are local programs that send a request in one write,
# and a body is at most 64 KiB (10 s is 6.5 KB/s, slower than any real client).
READ_TIMEOUT_SECONDS = 10.0
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


class UnsafeSocketDirError(Exception):
    """The directory of the default socket could be controlled by another user."""


def default_socket_path() -> Path:
    """``$XDG_RUNTIME_DIR/snowmux.sock``, else ``<temp dir>/snowmux-<uid>/snowmux.sock``.

    The temp dir (``tempfile.gettempdir()``, which honours TMPDIR) is shared
    by every user: a socket directly in it could be squatted by another user
    who then feeds forged audio to `route`. Our own 0700 directory cannot.
    Serve and route call ensure_private_dir / check_private_dir on its parent
    before using it.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / SOCKET_NAME
    return Path(tempfile.gettempdir()) / f"snowmux-{os.getuid()}" / SOCKET_NAME


def uses_private_dir(socket_path: Path) -> bool:
    """Whether ``socket_path`` is the temp-dir default, whose directory we must vet."""
    return not os.environ.get("XDG_RUNTIME_DIR") and socket_path == default_socket_path()


def check_private_dir(directory: Path) -> None:
    """Raise UnsafeSocketDirError unless ``directory`` is ours, mode 0700, not a symlink."""
    try:
        info = directory.lstat()
    except FileNotFoundError:
        raise UnsafeSocketDirError(f"{directory} does not exist (is the node running?)") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeSocketDirError(f"{directory} is a symlink; refusing to use it")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeSocketDirError(f"{directory} is not a directory; refusing to use it")
    if info.st_uid != os.getuid():
        raise UnsafeSocketDirError(
            f"{directory} is owned by uid {info.st_uid}, not by us (uid {os.getuid()}); "
            "another user may have created it: refusing to use it"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        raise UnsafeSocketDirError(
            f"{directory} has mode {stat.S_IMODE(info.st_mode):04o}, not 0700; refusing to use it"
        )


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` with mode 0700 if it is missing, then check_private_dir it."""
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass
    check_private_dir(directory)


# A playback that cannot make its next frame for this long sends `stuck`
# (Lavalink's TrackStuckEvent and its default threshold, 10 s).
STUCK_THRESHOLD_MS = 10_000
