# Strategy: FRAME, the construct definition of one audio frame (SPEC.md
# section "Audio frames"), and every size and constant derived from it.
#
# FRAME is the single source of truth: the fast decoder and encoder take their
# struct format and sizes from it, and fuzz/ proves them byte-for-byte equal to
# it. The non-obvious decision: the protocol ceiling for L is not a separate
# number but follows from the boundary rule (a frame's first byte is 0x00), so
# it is computed from the width of the length field.
from __future__ import annotations

import struct
from typing import Any

import construct

from ._session_id import SESSION_ID_FIELD

__all__ = [
    "DEFAULT_MAX_FRAME_LENGTH",
    "FRAME",
    "FRAME_HEADER_SIZE",
    "LENGTH_FIELD",
    "LENGTH_PREFIX_SIZE",
    "LENGTH_STRUCT",
    "MAX_FRAME_LENGTH",
    "MAX_PAYLOAD_SIZE",
    "MIN_FRAME_LENGTH",
    "SESSION_ID_FIELD_SIZE",
]

SESSION_ID_FIELD_SIZE: int = SESSION_ID_FIELD.sizeof()
MIN_FRAME_LENGTH = SESSION_ID_FIELD_SIZE  # L counts the ID field and the payload

_UINT32_BE = construct.Int32ub
LENGTH_PREFIX_SIZE: int = _UINT32_BE.sizeof()
# The first byte of every frame is 0x00, so only the low bytes carry L.
MAX_FRAME_LENGTH = (1 << (8 * (LENGTH_PREFIX_SIZE - 1))) - 1


def _length_in_range(length: int, context: Any) -> bool:
    return bool(MIN_FRAME_LENGTH <= length <= MAX_FRAME_LENGTH)


LENGTH_FIELD = construct.ExprValidator(_UINT32_BE, _length_in_range)

FRAME = construct.Prefixed(
    LENGTH_FIELD,
    construct.Struct(
        "session_id" / SESSION_ID_FIELD,
        "payload" / construct.GreedyBytes,
    ),
)

LENGTH_STRUCT = struct.Struct(_UINT32_BE.fmtstr)
FRAME_HEADER_SIZE = LENGTH_PREFIX_SIZE + SESSION_ID_FIELD_SIZE
MAX_PAYLOAD_SIZE = MAX_FRAME_LENGTH - SESSION_ID_FIELD_SIZE
# 1 MiB: 270x a 20 ms PCM frame (3,864 B) and far above any Opus page, yet
# small enough that one hostile length cannot make a receiver buffer 16 MiB.
DEFAULT_MAX_FRAME_LENGTH = 1 << 20
