# Strategy: the NDJSON reporting contract of SPEC.md section 12, in one place:
# how a receiver under test reports each decoded message, and how the harness
# reads those lines back. Our own `snowmux route --report-ndjson` and the
# harness's expectations are both built from these functions, so the contract
# cannot drift between the two sides.
from __future__ import annotations

import hashlib
import json
from typing import Any

from snowmux.protocol import AudioFrame, Message, RemoteProtocolError

__all__ = ["REPORT_KINDS", "error_report", "message_report", "parse_report_line", "report_line"]

REPORT_KINDS = ("frame", "event", "error")


def message_report(message: Message) -> dict[str, Any]:
    if isinstance(message, AudioFrame):
        payload = bytes(message.payload)
        return {
            "kind": "frame",
            "session_id": message.session_id,
            "length": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
    return {
        "kind": "event",
        "type": message.type,
        "session_id": message.session_id,
        "data": dict(message.data),
    }


def error_report(error: RemoteProtocolError) -> dict[str, Any]:
    return {"kind": "error", "offset": error.offset, "error": type(error).__name__}


def report_line(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, separators=(",", ":"))


def parse_report_line(line: str) -> dict[str, Any] | None:
    """A report from one stdout line, or None for lines outside the contract."""
    try:
        report = json.loads(line)
    except ValueError:
        return None
    if isinstance(report, dict) and report.get("kind") in REPORT_KINDS:
        return report
    return None
