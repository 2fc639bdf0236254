# Strategy: which media a play request may open, and how (SPEC.md section 9,
# [M1] [M2]). The URL is judged before any byte is read: the built-in tone, a
# local path inside --media-root after resolving `..` and symlinks, or
# http/https with --allow-remote; FFmpeg's own URL syntax (`concat:`,
# `subfile:`, `pipe:`, lavfi...) is never reached.
#
# The non-obvious part: a protocol whitelist is not enough, because demuxers
# such as hls, concat and image2 open further files named *inside* the media,
# and FFmpeg picks the demuxer by content, not by name (an ffconcat list called
# x.wav is still concat). So a local file is opened here, by us, with the
# containment re-checked on the open descriptor (a symlink swapped after the
# policy check cannot redirect it), and handed to PyAV as a file object with
# (1) a whitelist of audio container demuxers and (2) an io_open callback that
# refuses every nested open: FFmpeg has no route left to another file. Remote
# media may use HLS, whose nested opens FFmpeg checks against an http(s)-only
# protocol whitelist, so a playlist served over http cannot name a file: URL.
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from .tone import TONE_SCHEME, ToneSpec, parse_tone_url

__all__ = [
    "LOCAL_FORMATS",
    "REMOTE_FORMATS",
    "REMOTE_PROTOCOLS",
    "BadMediaUrl",
    "MediaKind",
    "MediaPolicy",
    "MediaRefused",
    "MediaSource",
    "open_inside",
    "refuse_nested_open",
]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
REMOTE_SCHEMES = ("http", "https")
# What FFmpeg may use for a remote URL and for every nested open it makes
# (HLS segments and keys): http(s) and what https is built on; never file.
REMOTE_PROTOCOLS = "http,https,tcp,tls,crypto"
# Demuxers of audio containers (FFmpeg names; "mov" covers mp4/m4a, "matroska"
# covers webm/mka). None of them opens another file: no hls, concat, image2,
# subtitles, tee-like or playlist formats.
LOCAL_FORMATS = (
    "wav,w64,aiff,caf,au,voc,mp3,flac,ogg,mov,matroska,aac,ac3,eac3,dts,truehd,"
    "wv,ape,tta,amr,asf,mpc,mpc8,mpegts"
)
# Remote media may be an HLS playlist; its segments are MPEG-TS or any of the
# above (the hls demuxer passes this whitelist on to its segment demuxers).
REMOTE_FORMATS = LOCAL_FORMATS + ",hls"


class MediaRefused(Exception):
    """The URL is not allowed by the node's policy (HTTP 403)."""


class BadMediaUrl(ValueError):
    """The URL is malformed (HTTP 400)."""


class MediaKind(StrEnum):
    TONE = "tone"
    LOCAL = "local"
    REMOTE = "remote"


@dataclass(frozen=True, slots=True)
class MediaSource:
    """What a playback opens: a tone, a file inside ``root``, or a remote URL."""

    url: str  # as requested, for status, logs and error messages
    kind: MediaKind = MediaKind.TONE
    tone: ToneSpec | None = None
    target: str = ""  # LOCAL: the resolved path; REMOTE: the URL
    root: str = ""  # LOCAL: the resolved media root, re-checked when the file is opened


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    media_root: Path
    allow_remote: bool = False

    def resolve(self, url: str) -> MediaSource:
        if not url or "\x00" in url:
            raise BadMediaUrl("url must be a non-empty string without NUL bytes")
        if url.startswith(TONE_SCHEME):
            try:
                return MediaSource(url=url, tone=parse_tone_url(url))
            except ValueError as exc:
                raise BadMediaUrl(str(exc)) from None
        scheme_match = _SCHEME.match(url)
        if scheme_match:
            scheme = scheme_match.group(0)[:-1].lower()
            if scheme in REMOTE_SCHEMES:
                if not self.allow_remote:
                    raise MediaRefused(
                        f"remote URLs are disabled on this node (start it with --allow-remote): {url}"
                    )
                if not urlsplit(url).hostname:
                    raise BadMediaUrl(f"remote URL without a host: {url}")
                return MediaSource(url=url, kind=MediaKind.REMOTE, target=url)
            if scheme == "file":
                return self._local(url, unquote(urlsplit(url).path))
            raise MediaRefused(
                f"URL scheme {scheme!r} is not allowed (only local files, tone: and, with --allow-remote, http/https)"
            )
        return self._local(url, url)

    def _local(self, url: str, path_text: str) -> MediaSource:
        root = os.path.realpath(self.media_root)
        candidate = os.path.realpath(os.path.join(root, path_text))  # absolute paths replace root
        if not _inside(root, candidate):
            raise MediaRefused(f"path {url!r} is outside the media root")
        return MediaSource(url=url, kind=MediaKind.LOCAL, target=candidate, root=root)


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def open_inside(root: str, path: str) -> BinaryIO:
    """Open a regular file for reading, proving on the descriptor that it is inside ``root``.

    Raises FileNotFoundError, MediaRefused (outside the root) or IsADirectoryError /
    PermissionError / OSError. O_NONBLOCK keeps a FIFO from blocking the worker; it
    is refused as not a regular file right after.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        real = _descriptor_path(fd, path)
        if not _inside(root, real) or not os.path.samestat(info, os.stat(real)):
            raise MediaRefused(f"{path!r} is outside the media root")
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(f"{path!r} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0, closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _descriptor_path(fd: int, fallback: str) -> str:
    """Where the open descriptor really points (Linux /proc), else the resolved path."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(fallback)


def refuse_nested_open(url: str, flags: int, options: object) -> BinaryIO:
    """PyAV io_open for local files: a demuxer asking to open anything else is refused."""
    raise PermissionError(f"nested open of {url!r} refused: local media is one file")
