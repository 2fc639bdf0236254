"""snowmux protocol: the session-multiplexed audio stream codec (SPEC.md).

Sans-I/O: bytes in, typed messages out; bytes back from the encoders.
"""

from __future__ import annotations

from ._decoder import Decoder
from ._encoder import encode, encode_event, encode_frame, frame_encoder, frame_header
from ._errors import (
    EventEncodeError,
    EventError,
    EventTooLongError,
    FrameLengthError,
    FrameTooLargeError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    SessionIdError,
    SessionIdFieldError,
    TruncatedStreamError,
    UnexpectedByteError,
)
from ._events import (
    CONNECTION_LEVEL_TYPES,
    DEFAULT_MAX_EVENT_LENGTH,
    FINISH_REASONS,
    PAYLOAD_FORMATS,
    PROTOCOL_VERSION,
    FinishReason,
    PayloadFormat,
)
from ._frame import (
    DEFAULT_MAX_FRAME_LENGTH,
    FRAME,
    FRAME_HEADER_SIZE,
    LENGTH_PREFIX_SIZE,
    MAX_FRAME_LENGTH,
    MAX_PAYLOAD_SIZE,
    MIN_FRAME_LENGTH,
    SESSION_ID_FIELD_SIZE,
)
from ._messages import AudioFrame, Event, Message
from ._session_id import MAX_SESSION_ID_LENGTH, SESSION_ID_FIELD, validate_session_id
from ._vectors import load_vectors

__all__ = [
    "CONNECTION_LEVEL_TYPES",
    "DEFAULT_MAX_EVENT_LENGTH",
    "DEFAULT_MAX_FRAME_LENGTH",
    "FINISH_REASONS",
    "FRAME",
    "FRAME_HEADER_SIZE",
    "LENGTH_PREFIX_SIZE",
    "MAX_FRAME_LENGTH",
    "MAX_PAYLOAD_SIZE",
    "MAX_SESSION_ID_LENGTH",
    "MIN_FRAME_LENGTH",
    "PAYLOAD_FORMATS",
    "FinishReason",
    "PayloadFormat",
    "PROTOCOL_VERSION",
    "SESSION_ID_FIELD",
    "SESSION_ID_FIELD_SIZE",
    "AudioFrame",
    "Decoder",
    "Event",
    "EventEncodeError",
    "EventError",
    "EventTooLongError",
    "FrameLengthError",
    "FrameTooLargeError",
    "LocalProtocolError",
    "Message",
    "ProtocolError",
    "RemoteProtocolError",
    "SessionIdError",
    "SessionIdFieldError",
    "TruncatedStreamError",
    "UnexpectedByteError",
    "encode",
    "encode_event",
    "encode_frame",
    "frame_encoder",
    "frame_header",
    "load_vectors",
    "validate_session_id",
]
