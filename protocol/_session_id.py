# Strategy: the session ID rules of SPEC.md section "Session IDs", and the
# construct Adapter that applies them to the 24-byte wire field.
#
# The field width is written once, here, in SESSION_ID_FIELD; everything else
# asks the construct object for its size. One rule set serves three callers:
# the Adapter (FRAME), the encoder (str -> padded bytes) and the decoder's
# fast path (padded bytes -> str). The non-obvious decision: padding is
# stripped from the right only and must be 0x20; NUL padding (what
# construct's PaddedString would produce) is rejected, because a peer that
# pads with NUL routes by a different key than one that pads with spaces.
from __future__ import annotations

from typing import Any

import construct

from ._errors import SessionIdError

__all__ = [
    "MAX_SESSION_ID_LENGTH",
    "SESSION_ID_FIELD",
    "SESSION_ID_PAD",
    "IdFieldProblem",
    "pad_session_id",
    "parse_session_id_field",
    "validate_session_id",
]

SESSION_ID_PAD = b" "
_ALLOWED = bytes(range(0x21, 0x7F))  # printable ASCII without space


class IdFieldProblem(Exception):
    """Why a wire ID field is invalid, and the index of the byte at fault."""

    def __init__(self, reason: str, index: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


def _describe(byte: int) -> str:
    if byte == 0x00:
        return "NUL byte (padding must be spaces 0x20)"
    if byte == 0x20:
        return "space inside the ID (spaces are only allowed as right padding)"
    if byte >= 0x80:
        return f"non-ASCII byte 0x{byte:02X}"
    return f"control byte 0x{byte:02X}"


def parse_session_id_field(raw: bytes) -> str:
    """Decode one wire ID field (exactly the field width) or raise IdFieldProblem."""
    stripped = raw.rstrip(SESSION_ID_PAD)
    if not stripped:
        raise IdFieldProblem("empty session ID (the field is all padding)", 0)
    if stripped.translate(None, _ALLOWED):
        index = next(i for i, b in enumerate(stripped) if b not in _ALLOWED)
        raise IdFieldProblem(_describe(stripped[index]), index)
    return stripped.decode("ascii")


def validate_session_id(session_id: str) -> str:
    """Return ``session_id`` if it obeys the ID rules, else raise SessionIdError."""
    if not isinstance(session_id, str):
        raise SessionIdError(f"session ID must be str, not {type(session_id).__name__}")
    if (
        0 < len(session_id) <= MAX_SESSION_ID_LENGTH
        and session_id.isascii()
        and session_id.isprintable()
        and " " not in session_id
    ):
        return session_id
    if not session_id:
        raise SessionIdError("session ID must not be empty")
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        raise SessionIdError(
            f"session ID {session_id[:40]!r} is {len(session_id)} characters long; "
            f"the limit is {MAX_SESSION_ID_LENGTH} (IDs are never truncated)"
        )
    index, char = next((i, c) for i, c in enumerate(session_id) if not "!" <= c <= "~")
    raise SessionIdError(
        f"session ID {session_id!r} has {char!r} at index {index}: only printable "
        "ASCII 0x21..0x7E is allowed (no spaces, control or non-ASCII characters)"
    )


def pad_session_id(session_id: str) -> bytes:
    """The wire form of a valid ID: ASCII, right-padded with spaces."""
    return (
        validate_session_id(session_id).encode("ascii").ljust(MAX_SESSION_ID_LENGTH, SESSION_ID_PAD)
    )


class SessionIdAdapter(construct.Adapter):  # type: ignore[misc]
    """construct Adapter: padded 24-byte field <-> validated ``str``."""

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        try:
            return parse_session_id_field(obj)
        except IdFieldProblem as problem:
            raise construct.ValidationError(
                f"invalid session ID field: {problem.reason} at field index {problem.index}",
                path=path,
            ) from None

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        return pad_session_id(obj)


SESSION_ID_FIELD = SessionIdAdapter(construct.Bytes(24))
MAX_SESSION_ID_LENGTH: int = SESSION_ID_FIELD.sizeof()
