# Strategy: bytes out for SPEC.md messages: encode_frame, encode_event, encode.
#
# The fast path packs the header with the struct derived from FRAME and
# caches the padded wire form of recently used IDs (a node sends 50 frames/s
# per session under the same ID). fuzz/ proves encode_frame == FRAME.build.
# Nothing invalid is ever sent: bad IDs raise SessionIdError (never
# truncated), oversized payloads FrameTooLargeError, bad events
# EventEncodeError.
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._errors import EventEncodeError, FrameTooLargeError
from ._events import DEFAULT_MAX_EVENT_LENGTH, EventProblem, serialize_event
from ._frame import LENGTH_STRUCT, MAX_PAYLOAD_SIZE, SESSION_ID_FIELD_SIZE
from ._messages import AudioFrame, Event, Message
from ._session_id import pad_session_id

__all__ = ["encode", "encode_event", "encode_frame", "frame_encoder", "frame_header"]

# Enough for every session a node plays at once (the sender's default
# --max-sessions is 256); cleared wholesale when full, so it stays bounded.
_ID_CACHE_SIZE = 4096
_padded_ids: dict[str, bytes] = {}
_pack_length = LENGTH_STRUCT.pack


def _padded(session_id: str) -> bytes:
    padded = _padded_ids.get(session_id)
    if padded is None:
        padded = pad_session_id(session_id)
        if len(_padded_ids) >= _ID_CACHE_SIZE:
            _padded_ids.clear()
        _padded_ids[session_id] = padded
    return padded


def frame_header(session_id: str, payload_size: int) -> bytes:
    """The 28 header bytes of a frame, for writers that send the payload separately."""
    if payload_size > MAX_PAYLOAD_SIZE:
        raise FrameTooLargeError(
            f"payload of {payload_size} bytes exceeds the protocol maximum of "
            f"{MAX_PAYLOAD_SIZE} bytes (frame length ceiling 0x00FFFFFF)"
        )
    return _pack_length(SESSION_ID_FIELD_SIZE + payload_size) + _padded(session_id)


def frame_encoder(session_id: str) -> Callable[[bytes], bytes]:
    """encode_frame for one session's bytes payloads, its padded ID made once.

    For a sender's hot path (a node makes 50 frames/s per session); checks
    the ID now and each payload's size as encode_frame does.
    """
    padded = pad_session_id(session_id)
    pack = _pack_length

    def encode(payload: bytes) -> bytes:
        size = len(payload)
        if size > MAX_PAYLOAD_SIZE:
            frame_header(session_id, size)  # raises FrameTooLargeError
        return pack(SESSION_ID_FIELD_SIZE + size) + padded + payload

    return encode


def encode_frame(session_id: str, payload: bytes | bytearray | memoryview) -> bytes:
    """One audio frame: length, padded ID, payload."""
    size = payload.nbytes if isinstance(payload, memoryview) else len(payload)
    return b"".join((frame_header(session_id, size), payload))


def encode_event(type: str, session_id: str, **fields: Any) -> bytes:
    """One event line (JSON object + newline), escaped by a real JSON encoder."""
    if not isinstance(type, str):
        raise EventEncodeError(f"event type must be str, not {type.__class__.__name__}")
    try:
        line = serialize_event({"type": type, "session_id": session_id, **fields})
    except EventProblem as problem:
        raise EventEncodeError(str(problem)) from None
    if len(line) > DEFAULT_MAX_EVENT_LENGTH:
        raise EventEncodeError(
            f"event line of {len(line)} bytes exceeds the {DEFAULT_MAX_EVENT_LENGTH}-byte "
            "limit every receiver accepts"
        )
    return line


def encode(message: Message) -> bytes:
    """The wire bytes of an AudioFrame or an Event."""
    if isinstance(message, AudioFrame):
        return encode_frame(message.session_id, message.payload)
    if isinstance(message, Event):
        data = dict(message.data)
        return encode_event(data.pop("type"), data.pop("session_id"), **data)
    raise TypeError(f"cannot encode {type(message).__name__}")
