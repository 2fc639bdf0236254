# Strategy: the two message value types of SPEC.md, AudioFrame and Event.
#
# Frozen, slotted, validated on construction (so a message you hold is always
# one the protocol allows). The decoder, which has already validated every
# field on the wire, builds frames through ``_trusted`` to keep the hot path
# free of a second validation.
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import EventEncodeError, FrameTooLargeError
from ._events import event_problem
from ._frame import MAX_PAYLOAD_SIZE
from ._session_id import validate_session_id

__all__ = ["AudioFrame", "Event", "Message"]


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One audio payload for one session.

    ``payload`` is bytes-like and read-only: ``bytes``, or a read-only
    ``memoryview`` when the decoder avoided a copy. ``bytes(frame.payload)``
    always gives an independent copy.
    """

    session_id: str
    payload: bytes | memoryview

    def __post_init__(self) -> None:
        validate_session_id(self.session_id)
        payload = self.payload
        if isinstance(payload, bytearray):
            object.__setattr__(self, "payload", bytes(payload))
        elif isinstance(payload, memoryview):
            if not payload.readonly or payload.format != "B" or not payload.c_contiguous:
                object.__setattr__(self, "payload", payload.tobytes())
        elif not isinstance(payload, bytes):
            raise TypeError(f"payload must be bytes-like, not {type(payload).__name__}")
        if len(self.payload) > MAX_PAYLOAD_SIZE:
            raise FrameTooLargeError(
                f"payload of {len(self.payload)} bytes exceeds the protocol maximum of "
                f"{MAX_PAYLOAD_SIZE} bytes"
            )

    @classmethod
    def _trusted(cls, session_id: str, payload: bytes | memoryview) -> AudioFrame:
        frame = object.__new__(cls)
        object.__setattr__(frame, "session_id", session_id)
        object.__setattr__(frame, "payload", payload)
        return frame


@dataclass(frozen=True, slots=True)
class Event:
    """One JSON event. ``data`` is the whole JSON object, unknown fields included."""

    type: str
    session_id: str
    data: Mapping[str, Any] = field(hash=False, compare=True)

    def __post_init__(self) -> None:
        data = self.data
        if data.get("type") != self.type or data.get("session_id") != self.session_id:
            raise EventEncodeError('data["type"] and data["session_id"] must match the event')
        problem = event_problem(data)
        if problem:
            raise EventEncodeError(problem)

    @classmethod
    def create(cls, type: str, session_id: str, **fields: Any) -> Event:
        """Build an event from its type, session and fields."""
        if "type" in fields or "session_id" in fields:
            raise EventEncodeError('"type" and "session_id" are given positionally')
        return cls(type, session_id, {"type": type, "session_id": session_id, **fields})

    @classmethod
    def _trusted(cls, data: dict[str, Any]) -> Event:
        event = object.__new__(cls)
        object.__setattr__(event, "type", data["type"])
        object.__setattr__(event, "session_id", data["session_id"])
        object.__setattr__(event, "data", data)
        return event

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the event, or ``default``."""
        return self.data.get(key, default)


Message = AudioFrame | Event
