# Strategy: the checks every snowmux control API runs before a handler sees a
# request (SPEC.md section 9, [A2] and [A3]): the node's API and the pool's
# (`route --http`) serve the same routes, so they share one definition of
# what a cross-site or rebound request is and of who holds the token.
#
# The non-obvious decisions: a POST must declare application/json (UTF-8) if
# it has a body or a Content-Type at all ([A2]), which no HTML form can do
# across sites without a CORS preflight; and on a loopback connection without
# a token the Host must be a loopback name and an Origin, when sent, our own
# ([A3]), which defeats DNS rebinding (a rebound page sends its own Host).
from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

__all__ = ["JSON_TYPE", "Refusal", "origin_problem", "refusal"]

JSON_TYPE = "application/json"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})
SHOWN_CHARS = 100  # how much of a hostile header an error message quotes


class Refusal(Exception):
    """A request refused before its handler: ``status`` and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _is_loopback_host(host: str) -> bool:
    """Is a Host header value (name or address, optional port) a loopback one?"""
    host = host.strip().lower()
    if host.startswith("["):  # [v6] or [v6]:port
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_problem(host: str | None, origin: str | None, scheme: str) -> str | None:
    """Why a request to an unauthenticated loopback API looks cross-site, or None ([A3])."""
    if host is not None and not _is_loopback_host(host):
        return f"Host {host[:SHOWN_CHARS]!r} is not a loopback name: refused (DNS rebinding guard)"
    if origin is not None and (host is None or origin.lower() != f"{scheme}://{host}".lower()):
        return f"Origin {origin[:SHOWN_CHARS]!r} is not this server's own: refused (cross-site request)"
    return None


def _on_loopback(request: web.Request) -> bool:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or not sockname:
        return isinstance(sockname, str)  # a Unix socket is as local as loopback
    try:
        return ipaddress.ip_address(str(sockname[0]).partition("%")[0]).is_loopback
    except ValueError:
        return False


def _content_type_problem(request: web.Request) -> str | None:
    """A POST carries JSON: a body or a Content-Type must be application/json; UTF-8 ([A2])."""
    declared = request.headers.get("Content-Type")
    if declared is None:
        if request.body_exists:
            return f"a request body must be sent as {JSON_TYPE}"
        return None  # a bare POST (curl -X POST .../stop): nothing to misread
    if request.content_type != JSON_TYPE:
        return f"Content-Type must be {JSON_TYPE}, got {declared[:SHOWN_CHARS]!r}"
    charset = request.charset
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        return f"JSON bodies are UTF-8; charset {charset[:40]!r} is not accepted"
    return None


def refusal(request: web.Request, token: str | None) -> Refusal | None:
    """Why ``request`` must not reach its handler (403, 401 or 415), or None."""
    if token is None and _on_loopback(request):
        problem = origin_problem(
            request.headers.get("Host"), request.headers.get("Origin"), request.scheme
        )
        if problem is not None:
            return Refusal(403, problem)
    if token is not None:
        # aiohttp keeps non-ASCII header bytes as surrogate escapes: compare bytes
        supplied = request.headers.get("Authorization", "")
        expected = f"Bearer {token}".encode()
        if not hmac.compare_digest(supplied.encode("utf-8", "surrogateescape"), expected):
            return Refusal(401, "missing or wrong bearer token")
    if request.method in ("POST", "PATCH", "PUT"):
        problem = _content_type_problem(request)
        if problem is not None:
            return Refusal(415, problem)
    return None
