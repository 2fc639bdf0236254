# Strategy: the one message a receiver ever sends (SPEC.md section 8a,
# "Receiver to node"): `{"type":"auth","token":"..."}` and a LF, before the
# node sends anything. Sans-I/O like the rest of the codec: bytes in, a
# claimed token out, or an AuthLineError naming what is wrong. The node
# compares tokens with hmac.compare_digest (token_matches), so the time a
# refusal takes does not tell an attacker how much of a guess was right.
from __future__ import annotations

import hmac
import json

__all__ = [
    "AUTH_LINE_MAX",
    "AUTH_TIMEOUT_SECONDS",
    "AuthLineError",
    "encode_auth",
    "parse_auth",
    "token_matches",
]

# A token is a short secret (a few dozen bytes); 4 KiB of line is far more
# than any real one and bounds what an unauthenticated peer can make the node
# buffer ([R2]).
AUTH_LINE_MAX = 4096
# [R1]: a receiver that has not authenticated within 5 s is a stray or a
# scanner; a real one sends its line at once after connecting.
AUTH_TIMEOUT_SECONDS = 5.0


class AuthLineError(ValueError):
    """The receiver's first line is not a well-formed auth message."""


def encode_auth(token: str) -> bytes:
    """The auth line a receiver sends first: compact JSON, ASCII, LF-terminated."""
    if not token:
        raise ValueError("an auth token must not be empty")
    line = json.dumps({"type": "auth", "token": token}, separators=(",", ":"), ensure_ascii=True)
    return line.encode("ascii") + b"\n"


def parse_auth(line: bytes) -> str:
    """The token a receiver's first line claims; AuthLineError if it is no auth line."""
    if len(line) > AUTH_LINE_MAX:
        raise AuthLineError(f"auth line of {len(line)} bytes exceeds {AUTH_LINE_MAX}")
    if not line.endswith(b"\n"):
        raise AuthLineError("auth line not terminated by LF")
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AuthLineError(f"auth line is not JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise AuthLineError('first line is not {"type":"auth",...}')
    token = message.get("token")
    if not isinstance(token, str) or not token:
        raise AuthLineError("auth line has no token string")
    return token


def token_matches(claimed: str, expected: str) -> bool:
    """Constant-time comparison of a claimed token with the node's."""
    return hmac.compare_digest(claimed.encode("utf-8"), expected.encode("utf-8"))
