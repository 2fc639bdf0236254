# Strategy: the sans-I/O incremental decoder of SPEC.md sections "Message
# boundaries", "Limits", "Errors" and "End of stream".
#
# Bytes in, AudioFrame/Event out; no I/O, no clock. Linear time whatever the
# chunking: a big payload inside a chunk is a read-only view of it, never a
# copy (the chunk is immutable bytes, so that is safe), a small one is one
# cheap copy; a frame split across chunks keeps its pieces (a zero-copy view
# when the piece is at least half of its chunk, else a copy, so a small piece
# never pins a big chunk; tiny reads merged) and is joined exactly once when
# complete; its 24-byte ID field is read from the first pieces alone, as soon
# as they arrived. Nothing is buffered before its length passed the limit check. An event is searched for
# its newline only in bytes not searched before.
# Construct never sees a partial buffer: the header is peeked with the struct
# derived from FRAME and the ID field goes through the same rules as FRAME's
# Adapter. After a RemoteProtocolError the decoder is failed for good: there
# is no resynchronisation in this protocol.
from __future__ import annotations

from typing import Any

from ._errors import (
    EventError,
    EventTooLongError,
    FrameLengthError,
    LocalProtocolError,
    RemoteProtocolError,
    SessionIdFieldError,
    TruncatedStreamError,
    UnexpectedByteError,
)
from ._events import (
    DEFAULT_MAX_EVENT_LENGTH,
    EVENT_START,
    SEPARATOR,
    EventProblem,
    parse_event_line,
)
from ._frame import (
    DEFAULT_MAX_FRAME_LENGTH,
    LENGTH_PREFIX_SIZE,
    LENGTH_STRUCT,
    MAX_FRAME_LENGTH,
    MIN_FRAME_LENGTH,
    SESSION_ID_FIELD_SIZE,
)
from ._messages import AudioFrame, Event, Message
from ._session_id import IdFieldProblem, parse_session_id_field

__all__ = ["Decoder"]

_IDLE, _HEADER, _BODY, _EVENT = range(4)
_FRAME_START = 0x00
_unpack_length = LENGTH_STRUCT.unpack_from
_new_frame = AudioFrame._trusted
# Slot descriptors set a frozen dataclass's fields without its __setattr__;
# the decoder has already validated both fields on the wire.
_new_object = object.__new__
_set_session_id = AudioFrame.__dict__["session_id"].__set__
_set_payload = AudioFrame.__dict__["payload"].__set__
# Distinct valid IDs remembered per decoder; cleared wholesale when full so a
# peer cycling through IDs cannot grow it without bound.
_ID_CACHE_SIZE = 4096
# Payloads up to this size are copied into bytes: cheaper than a memoryview
# (an untracked object, no buffer export) and they do not pin the chunk.
# Bigger ones are zero-copy read-only views of the (immutable) chunk.
_COPY_BELOW = 8 * 1024
# Pieces of a split frame smaller than this are merged into one bytearray.
_SMALL_PIECE = 1024


def _payload_of(body: bytes) -> bytes | memoryview:
    """The payload of a frame body held in its own bytes object."""
    if len(body) <= _COPY_BELOW:
        return body[SESSION_ID_FIELD_SIZE:]
    return memoryview(body)[SESSION_ID_FIELD_SIZE:]


class Decoder:
    """Incremental decoder for one snowmux byte stream.

    ``feed(data)`` returns the messages completed by ``data``; ``feed_eof()``
    declares the end of the stream and raises TruncatedStreamError if it
    stopped inside a message. On a RemoteProtocolError the messages decoded
    before the fault in the same call are on the exception's ``messages``.
    """

    def __init__(
        self,
        max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH,
        max_event_length: int = DEFAULT_MAX_EVENT_LENGTH,
    ) -> None:
        if not MIN_FRAME_LENGTH <= max_frame_length <= MAX_FRAME_LENGTH:
            raise ValueError(
                f"max_frame_length must be between {MIN_FRAME_LENGTH} and "
                f"{MAX_FRAME_LENGTH}, got {max_frame_length}"
            )
        if max_event_length < 2:  # the shortest event line is "{}\n" minus one
            raise ValueError(f"max_event_length must be at least 2, got {max_event_length}")
        self.max_frame_length = max_frame_length
        self.max_event_length = max_event_length
        self._offset = 0  # stream offset of the next byte to be fed
        self._state = _IDLE
        self._message_start = 0  # stream offset where the pending message began
        self._pending = bytearray()  # header bytes or event bytes so far
        self._parts: list[
            bytes | bytearray | memoryview
        ] = []  # frame body pieces (ID field + payload)
        self._body_length = 0
        self._filled = 0
        self._body_session_id: str | None = None
        self._ids: dict[bytes, str] = {}
        self._error: RemoteProtocolError | None = None
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes held for a message not yet complete."""
        if self._state == _BODY:
            return LENGTH_PREFIX_SIZE + self._filled
        return len(self._pending)

    @property
    def offset(self) -> int:
        """Stream offset of the next byte: the number of bytes fed so far."""
        return self._offset

    @property
    def failed(self) -> RemoteProtocolError | None:
        """The error that failed this decoder, if any."""
        return self._error

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Decode the next chunk of the stream."""
        self._check_usable()
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse its buffer; slices must not change
        if (
            self._state == _BODY
            and _SMALL_PIECE <= len(data) < self._body_length - self._filled
            and self._body_session_id is not None
        ):
            # Fast path for the middle of a big frame: keep the whole chunk.
            self._parts.append(data)
            self._filled += len(data)
            self._offset += len(data)
            return []
        out: list[Message] = []
        try:
            pos = self._continue_pending(data, out) if self._state != _IDLE else 0
            if self._state == _IDLE:
                self._scan(data, pos, out)
        except RemoteProtocolError as error:
            error.messages = out
            self._error = error
            raise
        finally:
            self._offset += len(data)
        return out

    def feed_eof(self) -> None:
        """Declare the end of the stream; raise if it ends inside a message."""
        if self._error is not None:
            raise self._error
        if self._eof:
            return
        self._eof = True
        if self._state != _IDLE:
            self._error = self._truncation()
            raise self._error

    def _check_usable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._eof:
            raise LocalProtocolError("feed() after feed_eof(): the stream has ended")

    # -- the scanning loop over one immutable chunk ------------------------

    def _scan(self, data: bytes, pos: int, out: list[Message]) -> None:
        # The hot loop: names are bound to locals, and the common case (a
        # whole frame with a known ID) calls no method of its own.
        end = len(data)
        view = memoryview(data)
        base = self._offset
        max_event = self.max_event_length
        max_frame = self.max_frame_length
        ids_get = self._ids.get
        append = out.append
        while pos < end:
            first = data[pos]
            if first == _FRAME_START:
                if end - pos < LENGTH_PREFIX_SIZE:
                    self._start_pending(_HEADER, base + pos)
                    self._pending += view[pos:]
                    return
                (length,) = _unpack_length(data, pos)
                if length < MIN_FRAME_LENGTH or length > max_frame:
                    self._check_length(length, base + pos)
                body_start = pos + LENGTH_PREFIX_SIZE
                frame_end = body_start + length
                if frame_end <= end:
                    payload_start = body_start + SESSION_ID_FIELD_SIZE
                    field = data[body_start:payload_start]
                    session_id = ids_get(field) or self._session_id(field, base + body_start)
                    frame = _new_object(AudioFrame)
                    _set_session_id(frame, session_id)
                    _set_payload(
                        frame,
                        data[payload_start:frame_end]
                        if length <= _COPY_BELOW
                        else view[payload_start:frame_end],
                    )
                    append(frame)
                    pos = frame_end
                    continue
                self._start_pending(_BODY, base + pos)
                self._body_length = length
                self._absorb_body(data, body_start)
                return
            if first == EVENT_START:
                newline = data.find(b"\n", pos, pos + max_event)
                if newline >= 0:
                    append(self._event(data[pos:newline], base + pos))
                    pos = newline + 1
                    continue
                if end - pos >= max_event:
                    raise self._event_too_long(base + pos)
                self._start_pending(_EVENT, base + pos)
                self._pending += view[pos:]
                return
            if first == SEPARATOR:
                pos += 1
                continue
            raise UnexpectedByteError(first, offset=base + pos)

    # -- messages that span chunks -----------------------------------------

    def _start_pending(self, state: int, start: int) -> None:
        self._state = state
        self._message_start = start
        self._pending = bytearray()
        self._parts = []
        self._filled = 0
        self._body_session_id = None

    def _continue_pending(self, data: bytes, out: list[Message]) -> int:
        """Advance the pending message; return where the rest of ``data`` starts."""
        pos = 0
        if self._state == _HEADER:
            pos = LENGTH_PREFIX_SIZE - len(self._pending)
            self._pending += data[:pos]
            if len(self._pending) < LENGTH_PREFIX_SIZE:
                return len(data)
            (length,) = _unpack_length(self._pending)
            self._check_length(length, self._message_start)
            self._state = _BODY
            self._body_length = length
            self._pending = bytearray()
        if self._state == _BODY:
            pos += self._absorb_body(data, pos)
            if self._filled < self._body_length:
                return len(data)
            body = b"".join(self._parts)  # the one copy of a frame split across chunks
            self._parts = []
            session_id = self._body_session_id
            assert session_id is not None  # set by _absorb_body once the ID arrived
            out.append(_new_frame(session_id, _payload_of(body)))
            self._state = _IDLE
            return pos
        # _EVENT: look for the newline only in the new bytes, within the budget
        budget = self.max_event_length - len(self._pending)
        newline = data.find(b"\n", 0, budget)
        if newline < 0:
            if len(data) >= budget:
                raise self._event_too_long(self._message_start)
            self._pending += data
            return len(data)
        line = bytes(self._pending) + data[:newline]
        out.append(self._event(line, self._message_start))
        self._pending = bytearray()
        self._state = _IDLE
        return newline + 1

    def _absorb_body(self, data: bytes, start: int) -> int:
        """Keep what ``data[start:]`` holds of the pending frame body; return its size."""
        had = self._filled
        take = min(self._body_length - had, len(data) - start)
        piece = memoryview(data)[start : start + take]
        parts = self._parts
        if take < _SMALL_PIECE:
            # Tiny reads (down to 1 byte) are merged so the part list, and its
            # per-object overhead, stays proportional to the frame size.
            if parts and isinstance(parts[-1], bytearray):
                parts[-1] += piece
            else:
                parts.append(bytearray(piece))
        elif 2 * take >= len(data):
            parts.append(piece)  # zero-copy: the chunk is immutable bytes
        else:
            parts.append(piece.tobytes())  # don't pin a chunk over twice the piece
        self._filled = had + take
        if self._body_session_id is None and self._filled >= SESSION_ID_FIELD_SIZE:
            field = _first_bytes(self._parts, SESSION_ID_FIELD_SIZE)
            self._body_session_id = self._session_id(
                field, self._message_start + LENGTH_PREFIX_SIZE
            )
        return take

    # -- checks --------------------------------------------------------------

    def _check_length(self, length: int, offset: int) -> None:
        if length < MIN_FRAME_LENGTH:
            raise FrameLengthError(
                f"frame at stream offset {offset} declares length {length}; the minimum "
                f"is {MIN_FRAME_LENGTH} (the session ID field)",
                offset=offset,
                length=length,
                limit=MIN_FRAME_LENGTH,
            )
        if length > self.max_frame_length:
            raise FrameLengthError(
                f"frame at stream offset {offset} declares length {length}, above "
                f"max_frame_length {self.max_frame_length}",
                offset=offset,
                length=length,
                limit=self.max_frame_length,
            )

    def _session_id(self, field: bytes, offset: int) -> str:
        session_id = self._ids.get(field)
        if session_id is not None:
            return session_id
        try:
            session_id = parse_session_id_field(field)
        except IdFieldProblem as problem:
            raise SessionIdFieldError(
                f"invalid session ID field at stream offset {offset + problem.index}: "
                f"{problem.reason} (field {field!r})",
                offset=offset + problem.index,
            ) from None
        if len(self._ids) >= _ID_CACHE_SIZE:
            self._ids.clear()
        self._ids[field] = session_id
        return session_id

    def _event(self, line: bytes, offset: int) -> Event:
        try:
            data: dict[str, Any] = parse_event_line(line)
        except EventProblem as problem:
            raise EventError(
                f"invalid event at stream offset {offset}: {problem}", offset=offset
            ) from None
        return Event._trusted(data)

    def _event_too_long(self, offset: int) -> EventTooLongError:
        return EventTooLongError(
            f"event at stream offset {offset} has no newline within max_event_length "
            f"{self.max_event_length} bytes",
            offset=offset,
        )

    def _truncation(self) -> TruncatedStreamError:
        start = self._message_start
        if self._state == _HEADER:
            have = len(self._pending)
            missing = LENGTH_PREFIX_SIZE + MIN_FRAME_LENGTH - have
            return TruncatedStreamError(
                f"stream ended inside the length field of a frame at offset {start}: "
                f"at least {missing} more bytes were needed",
                offset=start,
                missing=missing,
                missing_is_exact=False,
                session_id=None,
            )
        if self._state == _BODY:
            missing = self._body_length - self._filled
            session_id = self._body_session_id
            whose = f"of session {session_id!r} " if session_id else ""
            return TruncatedStreamError(
                f"stream ended inside the frame {whose}at offset {start}: {missing} more "
                f"bytes were needed",
                offset=start,
                missing=missing,
                missing_is_exact=True,
                session_id=session_id,
            )
        return TruncatedStreamError(
            f"stream ended inside the event at offset {start}: no newline after "
            f"{len(self._pending)} bytes (at least 1 more byte was needed)",
            offset=start,
            missing=1,
            missing_is_exact=False,
            session_id=None,
        )


def _first_bytes(parts: list[Any], size: int) -> bytes:
    """The first ``size`` bytes of ``parts``, joining only the pieces that hold them."""
    head: list[Any] = []
    held = 0
    for part in parts:
        head.append(part)
        held += len(part)
        if held >= size:
            break
    return b"".join(head)[:size]
