# Strategy: which URLs a play request may open (issue: "Safety"), decided
# before any byte is read. The non-obvious part: FFmpeg treats any string as
# a URL, so `concat:`, `subfile:`, `pipe:`, `data:` or a lavfi graph would
# read what the caller chose; we accept only three shapes (the built-in tone,
# a local path inside --media-root after resolving `..` and symlinks, and
# http/https with --allow-remote) and also pin FFmpeg's protocol_whitelist so
# that a playlist demuxer (HLS, ffconcat) cannot reach further.
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .tone import TONE_SCHEME, ToneSpec, parse_tone_url

__all__ = ["MediaPolicy", "MediaRefused", "MediaSource", "BadMediaUrl"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
REMOTE_SCHEMES = ("http", "https")
LOCAL_PROTOCOLS = "file"
REMOTE_PROTOCOLS = "http,https,tcp,tls,crypto"


class MediaRefused(Exception):
    """The URL is not allowed by the node's policy (HTTP 403)."""


class BadMediaUrl(ValueError):
    """The URL is malformed (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class MediaSource:
    """What a playback opens: a tone, or an FFmpeg URL with its protocol whitelist."""

    url: str  # as requested, for status and logs
    tone: ToneSpec | None = None
    target: str = ""  # what av.open receives
    protocol_whitelist: str = LOCAL_PROTOCOLS


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
                return MediaSource(url=url, target=url, protocol_whitelist=REMOTE_PROTOCOLS)
            if scheme == "file":
                return self._local(url, unquote(urlsplit(url).path))
            raise MediaRefused(
                f"URL scheme {scheme!r} is not allowed (only local files, tone: and, with --allow-remote, http/https)"
            )
        return self._local(url, url)

    def _local(self, url: str, path_text: str) -> MediaSource:
        root = os.path.realpath(self.media_root)
        candidate = os.path.realpath(os.path.join(root, path_text))  # absolute paths replace root
        if os.path.commonpath([root, candidate]) != root:
            raise MediaRefused(f"path {url!r} is outside the media root")
        return MediaSource(url=url, target="file:" + candidate, protocol_whitelist=LOCAL_PROTOCOLS)
