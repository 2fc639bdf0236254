# Strategy: the HTTP control API (aiohttp), compatible with the legacy node's
# routes. Every error is JSON {"status":"error","message":...} with the code
# the issue names: 400 bad ID/body/format, 401 token, 403 URL policy, 404
# unknown session, 409 session not active, 413 body too large, 429 too many
# sessions. Session IDs obey the codec's rules (never truncated).
from __future__ import annotations

import hmac
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from snowmux.protocol import PAYLOAD_FORMATS, PayloadFormat, SessionIdError, validate_session_id

from .controls import (
    MAX_VOLUME,
    NO_END,
    ControlError,
    parse_control,
    parse_crossfade,
    parse_end_at,
    parse_filters_field,
)
from .filters import Filters
from .media import BadMediaUrl, MediaPolicy, MediaRefused
from .pipeline import MediaError
from .sessions import (
    FormatMismatch,
    NotActive,
    PlaybackState,
    PlayRequest,
    SessionManager,
    TooManySessions,
    UnknownSession,
)

__all__ = ["MAX_BODY_BYTES", "build_app"]

MAX_BODY_BYTES = 64 * 1024  # a play request is a URL and a few numbers
MIN_BITRATE, MAX_BITRATE = 6_000, 510_000  # libopus's range

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "message": message}, status=status)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _session_id(request: web.Request) -> str:
    session_id = request.match_info["session_id"]
    try:
        return validate_session_id(session_id)
    except SessionIdError as exc:
        raise ApiError(400, str(exc)) from None


def _number(body: dict[str, Any], key: str, default: Any, low: float, high: float) -> Any:
    value = body.get(key, default)
    if value is None or value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f'"{key}" must be a number')
    if not low <= value <= high:
        raise ApiError(400, f'"{key}" must be between {low:g} and {high:g}, got {value}')
    return value


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except web.HTTPRequestEntityTooLarge:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body must be a JSON object") from None


async def _crossfade(request: web.Request) -> int | None:
    """``crossfade_ms`` of a play or queue body (already read and checked as an object)."""
    body = await _json_body(request)
    try:
        return parse_crossfade(body) if isinstance(body, dict) else None
    except ControlError as exc:
        raise ApiError(400, str(exc)) from None


async def _play_request(request: web.Request) -> PlayRequest:
    try:
        body = await request.json(loads=json.loads)
    except web.HTTPRequestEntityTooLarge:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise ApiError(400, '"url" (a non-empty string) is required')
    audio_format = body.get("format") or "pcm"  # absent or null: the legacy default
    if audio_format not in PAYLOAD_FORMATS:
        raise ApiError(
            400, f'unknown "format" {audio_format!r}: use one of {", ".join(PAYLOAD_FORMATS)}'
        )
    bitrate = _number(body, "bitrate", None, MIN_BITRATE, MAX_BITRATE)
    if bitrate is not None and not isinstance(bitrate, int):
        raise ApiError(400, '"bitrate" must be an integer (bits per second)')
    start_at = float(_number(body, "start_at", 0.0, 0.0, 1e9))
    try:
        filters = parse_filters_field(body)
        end_at = parse_end_at(body)
    except ControlError as exc:
        raise ApiError(400, str(exc)) from None
    if end_at == NO_END:
        end_at = None
    if end_at is not None and end_at <= start_at:
        raise ApiError(400, f'"end_at" ({end_at}) must be after "start_at" ({start_at})')
    return PlayRequest(
        url=url,
        format=PayloadFormat(audio_format),
        start_at=start_at,
        duration=_number(body, "duration", None, 0.0, 1e9),
        bitrate=bitrate,
        volume=float(_number(body, "volume", 1.0, 0.0, MAX_VOLUME)),
        filters=filters if filters is not None else Filters(),
        end_at=end_at,
    )


def build_app(
    sessions: SessionManager,
    policy: MediaPolicy,
    token: str | None,
    health_extra: Callable[[], dict[str, Any]],
) -> web.Application:
    started = time.monotonic()

    @web.middleware
    async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None:
            supplied = request.headers.get("Authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                return error(401, "missing or wrong bearer token")
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return error(exc.status, exc.reason)
            raise

    async def play(request: web.Request) -> web.Response:
        session_id = _session_id(request)
        play_request = await _play_request(request)
        try:
            source = policy.resolve(play_request.url)
        except MediaRefused as exc:
            raise ApiError(403, str(exc)) from None
        except BadMediaUrl as exc:
            raise ApiError(400, str(exc)) from None
        try:
            sessions.play(session_id, play_request, source, await _crossfade(request) or 0)
        except TooManySessions as exc:
            raise ApiError(429, str(exc)) from None
        return web.json_response({"status": "playing", "session_id": session_id})

    async def stop(request: web.Request) -> web.Response:
        session_id = _session_id(request)
        sessions.stop(session_id)  # idempotent: stopping an unknown or ended session is fine
        return web.json_response({"status": "stopped", "session_id": session_id})

    def _control(action: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            session_id = _session_id(request)
            try:
                playback = getattr(sessions, action)(session_id)
            except UnknownSession:
                raise ApiError(404, f"unknown session {session_id}") from None
            except NotActive as exc:
                raise ApiError(409, str(exc)) from None
            return web.json_response({"status": playback.state, "session_id": session_id})

        return handler

    async def update(request: web.Request) -> web.Response:
        """PATCH /session/{id}: seek, volume, paused, filters, end_at (all or nothing)."""
        session_id = _session_id(request)
        try:
            control = parse_control(await _json_body(request))
        except ControlError as exc:
            raise ApiError(400, str(exc)) from None
        try:
            playback = await sessions.update(session_id, control)
        except UnknownSession:
            raise ApiError(404, f"unknown session {session_id}") from None
        except NotActive as exc:
            raise ApiError(409, str(exc)) from None
        except MediaError as exc:
            raise ApiError(422, str(exc)) from None
        return web.json_response(playback.status())

    async def enqueue(request: web.Request) -> web.Response:
        """POST /session/{id}/queue: the body of play; an idle session starts playing."""
        session_id = _session_id(request)
        play_request = await _play_request(request)
        crossfade_ms = await _crossfade(request)
        format_given = (await _json_body(request)).get("format") is not None
        try:
            source = policy.resolve(play_request.url)
        except MediaRefused as exc:
            raise ApiError(403, str(exc)) from None
        except BadMediaUrl as exc:
            raise ApiError(400, str(exc)) from None
        try:
            position = await sessions.enqueue(
                session_id, play_request, source, crossfade_ms, format_given
            )
        except TooManySessions as exc:
            raise ApiError(429, str(exc)) from None
        except (FormatMismatch, NotActive) as exc:
            raise ApiError(409, str(exc)) from None
        except MediaError as exc:  # the playback ended under the request
            raise ApiError(409, str(exc)) from None
        return web.json_response({"status": "queued", "position": position})

    async def queue_list(request: web.Request) -> web.Response:
        session_id = _session_id(request)
        try:
            playback = sessions.get(session_id)
        except UnknownSession:
            raise ApiError(404, f"unknown session {session_id}") from None
        return web.json_response(playback.queue_status())

    async def queue_clear(request: web.Request) -> web.Response:
        session_id = _session_id(request)
        try:
            removed = await sessions.clear_queue(session_id)
        except UnknownSession:
            raise ApiError(404, f"unknown session {session_id}") from None
        except (NotActive, MediaError) as exc:
            raise ApiError(409, str(exc)) from None
        return web.json_response({"status": "cleared", "removed": removed})

    async def skip(request: web.Request) -> web.Response:
        session_id = _session_id(request)
        try:
            playback = await sessions.skip(session_id)
        except UnknownSession:
            raise ApiError(404, f"unknown session {session_id}") from None
        except (NotActive, MediaError) as exc:
            raise ApiError(409, str(exc)) from None
        return web.json_response(playback.status())

    async def status(request: web.Request) -> web.Response:
        session_id = _session_id(request)
        try:
            playback = sessions.get(session_id)
        except UnknownSession:
            raise ApiError(404, f"unknown session {session_id}") from None
        return web.json_response(playback.status())

    async def list_sessions(request: web.Request) -> web.Response:
        return web.json_response({"sessions": [p.status() for p in sessions.playbacks.values()]})

    async def health(request: web.Request) -> web.Response:
        stats = sessions.node.stats
        active = sessions.active()
        count, (p50, p99) = stats.lateness.percentiles(0.5, 0.99)
        return web.json_response(
            {
                "status": "ok",
                "uptime_secs": round(time.monotonic() - started, 3),
                "sessions": {
                    "active": len(active),
                    "playing": sum(p.state is PlaybackState.PLAYING for p in active),
                    "paused": sum(p.state is PlaybackState.PAUSED for p in active),
                    "max": sessions.max_sessions,
                },
                "totals": {
                    "playbacks_started": stats.playbacks_started,
                    "frames_sent": stats.frames_sent,
                    "bytes_sent": stats.bytes_sent,
                    "frames_dropped": stats.frames_dropped,
                    "frames_late": stats.frames_late,
                },
                "lateness_ms": {
                    "window_frames": count,
                    "p50": p50,
                    "p99": p99,
                    "max": round(stats.lateness.max_ms, 3),
                },
                **health_extra(),
            }
        )

    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/session/{session_id}/play", play)
    app.router.add_post("/session/{session_id}/stop", stop)
    app.router.add_post("/session/{session_id}/pause", _control("pause"))
    app.router.add_post("/session/{session_id}/resume", _control("resume"))
    app.router.add_get("/session/{session_id}/status", status)
    app.router.add_patch("/session/{session_id}", update)
    app.router.add_post("/session/{session_id}/queue", enqueue)
    app.router.add_get("/session/{session_id}/queue", queue_list)
    app.router.add_delete("/session/{session_id}/queue", queue_clear)
    app.router.add_post("/session/{session_id}/skip", skip)
    app.router.add_get("/sessions", list_sessions)
    app.router.add_get("/health", health)
    return app
