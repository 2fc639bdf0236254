# Strategy: the error taxonomy of SPEC.md section "Errors".
#
# Two families, as in h11: LocalProtocolError means *we* were asked to do
# something invalid (send a bad ID, an oversized frame, misuse the decoder);
# RemoteProtocolError means the *peer* sent bytes that violate SPEC.md. Every
# remote error carries the stream offset of the byte at fault, and the
# messages that the same ``feed()`` call decoded before the fault, so that
# nothing already accepted is lost when the error is raised.
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._messages import Message

__all__ = [
    "EventEncodeError",
    "EventError",
    "EventTooLongError",
    "FrameLengthError",
    "FrameTooLargeError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "SessionIdError",
    "SessionIdFieldError",
    "TruncatedStreamError",
    "UnexpectedByteError",
]


class ProtocolError(Exception):
    """Base of every error this package raises on purpose."""


class LocalProtocolError(ProtocolError):
    """We were asked to produce or do something the protocol forbids."""


class SessionIdError(LocalProtocolError, ValueError):
    """A session ID given to us breaks the ID rules (never truncated)."""


class FrameTooLargeError(LocalProtocolError, ValueError):
    """A payload would push the frame length past the protocol ceiling."""


class EventEncodeError(LocalProtocolError, ValueError):
    """An event we were asked to encode is not a valid snowmux event."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break SPEC.md; the connection must close.

    ``offset`` is the stream offset (0 = first byte ever fed) of the byte at
    fault. ``messages`` holds what the failing ``feed()`` call had decoded
    before the fault, in order.
    """

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message)
        self.offset = offset
        self.messages: list[Message] = []


class UnexpectedByteError(RemoteProtocolError):
    """A message boundary starts with a byte that starts no message."""

    def __init__(self, byte: int, *, offset: int) -> None:
        super().__init__(
            f"unexpected byte 0x{byte:02X} at stream offset {offset}: a message "
            "must start with 0x00 (frame), 0x7B '{' (event) or 0x0A (separator)",
            offset=offset,
        )
        self.byte = byte


class FrameLengthError(RemoteProtocolError):
    """A frame header declares a length below the minimum or above the limit."""

    def __init__(self, message: str, *, offset: int, length: int, limit: int) -> None:
        super().__init__(message, offset=offset)
        self.length = length
        self.limit = limit


class SessionIdFieldError(RemoteProtocolError):
    """The 24-byte session ID field of a frame is not a valid padded ID."""


class EventError(RemoteProtocolError):
    """An event line is not valid UTF-8 JSON or breaks the event schema."""


class EventTooLongError(EventError):
    """No newline within ``max_event_length`` bytes of an event's start."""


class TruncatedStreamError(RemoteProtocolError):
    """The stream ended in the middle of a message.

    ``missing`` is the number of bytes still owed (exact for a frame whose
    length was read, a lower bound otherwise, see ``missing_is_exact``);
    ``session_id`` is set when the frame's ID field had already arrived.
    """

    def __init__(
        self,
        message: str,
        *,
        offset: int,
        missing: int,
        missing_is_exact: bool,
        session_id: str | None,
    ) -> None:
        super().__init__(message, offset=offset)
        self.missing = missing
        self.missing_is_exact = missing_is_exact
        self.session_id = session_id
