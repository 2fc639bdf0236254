# Strategy: the HTTP control API (aiohttp), compatible with the legacy node's
# routes (SPEC.md section 9). Every error the application can see is JSON
# {"status":"error","message":...} with a precise 4xx ([A1]): 400 bad
# ID/body/format, 401 token, 403 URL policy or a cross-site/rebinding request,
# 404 unknown session or missing file, 409 session not active, 413 body too
# large, 415 not a JSON body, 422 media that cannot be played, 429 too many
# sessions. Session IDs obey the codec's rules (never truncated). The body is
# parsed by play_body.parse_play_fields, a pure function the fuzzers drive.
# Cross-site, rebinding, token and Content-Type checks ([A2], [A3]) are
# snowmux.http_guards', shared with the pool's API.
#
# The non-obvious decision: a play waits until the codec worker has opened the media and decoded its
# first block, so a missing or undecodable file fails the request ([A4]).
# /info and /metrics (README "Scaling out") sit behind the same token.
# Parser-level 400s (a malformed request line or header) are answered by
# aiohttp before any application code runs; they stay aiohttp's text/plain.
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from snowmux.protocol import SessionIdError, validate_session_id

from ..http_guards import refusal
from .controls import ControlError, parse_control
from .media import BadMediaUrl, MediaPolicy, MediaRefused
from .pipeline import MediaError, MediaProblem
from .play_body import MAX_BODY_BYTES, BodyError, decode_body, parse_play_fields
from .sessions import (
    FormatMismatch,
    NotActive,
    PlaybackState,
    SessionManager,
    TooManySessions,
    UnknownSession,
)

__all__ = ["MAX_BODY_BYTES", "build_app"]

log = logging.getLogger("snowmux.node.api")

MEDIA_STATUS = {MediaProblem.MISSING: 404, MediaProblem.REFUSED: 403, MediaProblem.UNPLAYABLE: 422}

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


def build_app(
    sessions: SessionManager,
    policy: MediaPolicy,
    token: str | None,
    health_extra: Callable[[], dict[str, Any]],
    info: Callable[[], dict[str, Any]] | None = None,
    metrics: Callable[[str | None], tuple[bytes, str]] | None = None,
) -> web.Application:
    started = time.monotonic()

    @web.middleware
    async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            refused = refusal(request, token)
            if refused is not None:
                return error(refused.status, refused.message)
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, str(exc))
        except BodyError as exc:
            return error(exc.status, exc.message)
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return error(exc.status, exc.reason)
            raise
        except HttpProcessingError as exc:  # a body that breaks its own framing (chunked, length)
            return error(400, f"malformed request body: {exc.message}")
        except ConnectionResetError:
            raise  # the client went away mid-body: nobody to answer
        except Exception:
            log.exception("control API: unexpected error on %s %s", request.method, request.path)
            return error(500, "internal error (see the node's log)")

    async def play(request: web.Request) -> web.Response:
        session_id = _session_id(request)
        body = parse_play_fields(await request.read())
        play_request = body.request
        try:
            source = policy.resolve(play_request.url)
        except MediaRefused as exc:
            raise ApiError(403, str(exc)) from None
        except BadMediaUrl as exc:
            raise ApiError(400, str(exc)) from None
        try:
            playback = sessions.play(session_id, play_request, source, body.crossfade_ms or 0)
        except TooManySessions as exc:
            raise ApiError(429, str(exc)) from None
        try:
            await playback.opened()
        except MediaError as exc:
            raise ApiError(MEDIA_STATUS[exc.problem], str(exc)) from None
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
            control = parse_control(decode_body(await request.read()))
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
        body = parse_play_fields(await request.read())
        play_request, crossfade_ms, format_given = body
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
                    "passthrough": sum(p.passthrough for p in active),
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

    async def node_info(request: web.Request) -> web.Response:
        assert info is not None
        return web.json_response(info())

    async def prometheus(request: web.Request) -> web.Response:
        assert metrics is not None
        body, content_type = metrics(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

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
    if info is not None:
        app.router.add_get("/info", node_info)
    if metrics is not None:
        app.router.add_get("/metrics", prometheus)
    return app
