# Strategy: `snowmux route --http`: the node's own control API (SPEC.md
# section 9) served on a NodePool, so `snowmux play --node http://ROUTE` and
# any HTTP client work unchanged. Play bodies are passed to the chosen node
# as they came, so its validation, status codes and JSON error messages are
# the node's own; only what the pool itself decides is answered here (a bad
# session ID: 400 as the node says it; no node up: 503). `/sessions` entries
# carry `node`, and `GET /nodes` shows the pool's view of each node. The
# token, cross-site and rebinding checks are the node's own (http_guards).
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..control import NodeError
from ..http_guards import refusal
from ..json_body import MAX_BODY_BYTES, BodyError, decode_body
from .pool import NodePool

__all__ = ["build_pool_app"]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "message": message}, status=status)


def build_pool_app(pool: NodePool, token: str | None) -> web.Application:
    @web.middleware
    async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = refusal(request, token)
        if refused is not None:
            return _error(refused.status, refused.message)
        try:
            return await handler(request)
        except NodeError as exc:
            # status 0: the node could not be reached at all (a gateway failure)
            return _error(exc.status or 502, exc.message)
        except BodyError as exc:
            return _error(exc.status, exc.message)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return _error(exc.status, exc.reason)
            raise

    async def json_object(request: web.Request) -> dict[str, Any]:
        body = decode_body(await request.read())
        if not isinstance(body, dict):
            raise BodyError(400, "body must be a JSON object")
        return body

    async def play(request: web.Request) -> web.Response:
        body = await json_object(request)
        return web.json_response(await pool.play_body(request.match_info["session_id"], body))

    async def update(request: web.Request) -> web.Response:
        body = await json_object(request)
        return web.json_response(await pool.update(request.match_info["session_id"], **body))

    async def enqueue(request: web.Request) -> web.Response:
        body = await json_object(request)
        url = body.pop("url", None)
        if not isinstance(url, str) or not url:
            raise BodyError(400, '"url" (a non-empty string) is required')
        return web.json_response(await pool.queue(request.match_info["session_id"], url, **body))

    def _action(action: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            reply = await getattr(pool, action)(request.match_info["session_id"])
            return web.json_response(reply)

        return handler

    async def list_sessions(request: web.Request) -> web.Response:
        return web.json_response(await pool.status())

    async def nodes(request: web.Request) -> web.Response:
        return web.json_response({"nodes": pool.describe_nodes()})

    async def health(request: web.Request) -> web.Response:
        return web.json_response(await pool.health())

    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/session/{session_id}/play", play)
    app.router.add_post("/session/{session_id}/stop", _action("stop"))
    app.router.add_post("/session/{session_id}/pause", _action("pause"))
    app.router.add_post("/session/{session_id}/resume", _action("resume"))
    app.router.add_get("/session/{session_id}/status", _action("status"))
    app.router.add_patch("/session/{session_id}", update)
    app.router.add_post("/session/{session_id}/queue", enqueue)
    app.router.add_get("/session/{session_id}/queue", _action("queue_list"))
    app.router.add_delete("/session/{session_id}/queue", _action("clear_queue"))
    app.router.add_post("/session/{session_id}/skip", _action("skip"))
    app.router.add_get("/sessions", list_sessions)
    app.router.add_get("/nodes", nodes)
    app.router.add_get("/health", health)
    return app
