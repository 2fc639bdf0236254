# Strategy: the web playground (`snowmux route --web HOST:PORT`): a static page
# shipped in the package (plain HTML + JS modules, no build step, no CDN),
# the WebSocket sink on /ws, and /api/* endpoints that proxy the buttons to the
# node's control API (or a NodePool's, with `route --node`; PATCH too: seek, volume,
# filters). The browser never talks to the node, so the node's token
# stays on this server; with --web-token, both subscribing and control need
# the page's own token. Session IDs are checked with the codec's rules here
# too, before anything is forwarded.
from __future__ import annotations

import hmac
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from snowmux.protocol import PAYLOAD_FORMATS, SessionIdError, validate_session_id

from ..control import ControlClient, NodeError
from ..json_body import BodyError, decode_body
from .websocket import WebSocketHub

if TYPE_CHECKING:
    from .pool import NodePool

__all__ = ["TONE_PRESETS", "build_web_app"]

STATIC = Path(str(resources.files(__package__).joinpath("static")))
# The page's files by name, resolved once: a fixed list, not a directory
# listing on request, so nothing else is ever served; resolved, because an
# editable install lays them out as symlinks (which aiohttp's add_static
# refuses, and should).
STATIC_FILES = {path.name: path.resolve() for path in STATIC.iterdir() if path.is_file()}
TONE_PRESETS = [f"tone:{hz}?seconds=60" for hz in (220, 330, 440, 550, 660, 880, 1000, 1320)]
ACTIONS = ("play", "pause", "resume", "stop")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "message": message}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, decoded within snowmux.json_body's bounds, or BodyError."""
    body = decode_body(await request.read())
    if not isinstance(body, dict):
        raise BodyError(400, "body must be a JSON object")
    return body


def build_web_app(
    hub: WebSocketHub, control: ControlClient | NodePool, token: str | None
) -> web.Application:
    def authorized(request: web.Request) -> bool:
        if token is None:
            return True
        supplied = (
            request.headers.get("X-Snowmux-Token")
            or request.query.get("token")
            or request.headers.get("Authorization", "").removeprefix("Bearer ")
        )
        return hmac.compare_digest(supplied.encode(), token.encode())

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_FILES["index.html"])

    async def static_file(request: web.Request) -> web.StreamResponse:
        path = STATIC_FILES.get(request.match_info["name"])
        if path is None:
            return _error(404, "no such file")
        return web.FileResponse(path)

    async def session_action(request: web.Request) -> web.Response:
        if not authorized(request):
            return _error(401, "missing or wrong token")
        action = request.match_info["action"]
        try:
            session_id = validate_session_id(request.match_info["session_id"])
        except SessionIdError as exc:
            return _error(400, str(exc))
        try:
            if action == "play":
                body = await _json_object(request) if request.can_read_body else {}
                audio_format = body.get("format", "web")
                if audio_format not in PAYLOAD_FORMATS:
                    return _error(400, f"unknown format {audio_format!r}")
                reply = await control.play(
                    session_id, str(body.get("url", "")), audio_format, body.get("start_at")
                )
            elif action == "status":
                reply = await control.status(session_id)
            else:
                reply = await getattr(control, action)(session_id)
        except NodeError as exc:
            return _error(exc.status or 502, exc.message)
        except BodyError as exc:
            return _error(exc.status, exc.message)
        return web.json_response(reply)

    async def session_update(request: web.Request) -> web.Response:
        """PATCH /api/session/{id}: the seek bar, volume slider and filter presets."""
        if not authorized(request):
            return _error(401, "missing or wrong token")
        try:
            session_id = validate_session_id(request.match_info["session_id"])
            body = await _json_object(request)
        except SessionIdError as exc:
            return _error(400, str(exc))
        except BodyError as exc:
            return _error(exc.status, exc.message)
        try:
            reply = await control.update(session_id, **body)  # the node validates every field
        except NodeError as exc:
            return _error(exc.status or 502, exc.message)
        return web.json_response(reply)

    async def queue_action(request: web.Request) -> web.Response:
        """The queue panel: add (POST), list (GET), clear (DELETE), skip (POST .../skip)."""
        if not authorized(request):
            return _error(401, "missing or wrong token")
        try:
            session_id = validate_session_id(request.match_info["session_id"])
        except SessionIdError as exc:
            return _error(400, str(exc))
        try:
            if request.match_info.get("action") == "skip":
                reply = await control.skip(session_id)
            elif request.method == "GET":
                reply = await control.queue_list(session_id)
            elif request.method == "DELETE":
                reply = await control.clear_queue(session_id)
            else:
                body = await _json_object(request)
                if not isinstance(body.get("url"), str):
                    return _error(400, 'body must be a JSON object with a "url"')
                fields = {k: v for k, v in body.items() if k != "url"}
                reply = await control.queue(session_id, body["url"], **fields)
        except NodeError as exc:
            return _error(exc.status or 502, exc.message)
        except BodyError as exc:
            return _error(exc.status, exc.message)
        return web.json_response(reply)

    async def stats(request: web.Request) -> web.Response:
        if not authorized(request):
            return _error(401, "missing or wrong token")
        sessions: dict[str, dict[str, int]] = {}
        for session_id, delivered in hub.frames_sent.items():
            sessions[session_id] = {"ws_frames": delivered, "clients": 0}
        for session_id, clients in hub.subscribers.items():
            entry = sessions.setdefault(session_id, {"ws_frames": 0, "clients": 0})
            entry["clients"] = len(clients)
        return web.json_response({"sessions": sessions, "clients_total": hub.clients_total})

    async def no_favicon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def tones(request: web.Request) -> web.Response:
        return web.json_response({"tones": TONE_PRESETS})

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static_file)
    app.router.add_get("/ws", hub.handle)
    app.router.add_get("/favicon.ico", no_favicon)
    app.router.add_get("/api/tones", tones)
    app.router.add_get("/api/stats", stats)
    app.router.add_post("/api/session/{session_id}/{action:play|pause|resume|stop}", session_action)
    app.router.add_get("/api/session/{session_id}/{action:status}", session_action)
    app.router.add_patch("/api/session/{session_id}", session_update)
    app.router.add_route("*", "/api/session/{session_id}/queue", queue_action)
    app.router.add_post("/api/session/{session_id}/{action:skip}", queue_action)
    return app
