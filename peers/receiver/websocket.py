# Strategy: the WebSocket sink (the legacy `broadcastBinaryToUser`): a browser
# client subscribes to exactly one session ID and receives only that
# session's audio payloads as binary messages and its events as JSON text.
# Subscriptions are a dict session ID -> clients, so routing stays O(1). The
# ID is checked with the codec's rules before the upgrade (400), and with a
# token configured the client must present it. Each client has a bounded
# queue and its own writer task: a slow tab loses its oldest frames (counted),
# never delays routing, and never sees another session's messages.
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections import Counter, deque
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from snowmux.protocol import AudioFrame, Event, SessionIdError, validate_session_id

__all__ = ["WebSocketClient", "WebSocketHub"]

log = logging.getLogger("snowmux.receiver.websocket")

CLIENT_QUEUE_FRAMES = 250  # 5 s of 20 ms frames per browser tab before dropping
HEARTBEAT_SECONDS = 20.0  # below common proxy idle timeouts (30-60 s); finds dead tabs


@dataclass(eq=False)
class WebSocketClient:
    session_id: str
    socket: web.WebSocketResponse
    delivered: Counter[str]  # the hub's per-session count of frames sent to clients
    queue: deque[bytes | str] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    frames_queued: int = 0
    frames_sent: int = 0
    events_sent: int = 0
    frames_dropped: int = 0
    closed: bool = False

    def push(self, message: bytes | str) -> None:
        if self.closed:
            return
        if isinstance(message, bytes):
            if self.frames_queued >= CLIENT_QUEUE_FRAMES:
                for index, queued in enumerate(self.queue):
                    if isinstance(queued, bytes):
                        del self.queue[index]
                        self.frames_queued -= 1
                        self.frames_dropped += 1
                        break
            self.frames_queued += 1
        self.queue.append(message)
        self.wakeup.set()

    async def run(self) -> None:
        while not self.closed:
            if not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            message = self.queue.popleft()
            if isinstance(message, bytes):
                self.frames_queued -= 1
                await self.socket.send_bytes(message)
                self.frames_sent += 1
                self.delivered[self.session_id] += 1
            else:
                await self.socket.send_str(message)
                self.events_sent += 1


class _SessionSink:
    """The router's sink for one session: fans out to that session's clients."""

    def __init__(self, hub: WebSocketHub, session_id: str) -> None:
        self._hub = hub
        self._session_id = session_id

    def on_frame(self, frame: AudioFrame) -> None:
        clients = self._hub.subscribers.get(self._session_id)
        if clients:
            data = bytes(frame.payload)
            for client in clients:
                client.push(data)

    def on_event(self, event: Event) -> None:
        self._hub.send_text(self._session_id, json.dumps(dict(event.data), ensure_ascii=False))

    def on_interrupted(self, reason: str) -> None:
        notice = {"type": "interrupted", "session_id": self._session_id, "reason": reason}
        self._hub.send_text(self._session_id, json.dumps(notice))

    def close(self) -> None:
        pass


class WebSocketHub:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.subscribers: dict[str, set[WebSocketClient]] = {}
        self.clients_total = 0
        # session ID -> frames delivered to its clients, for tests and the UI
        self.frames_sent: Counter[str] = Counter()

    def sink_for(self, session_id: str) -> _SessionSink:
        return _SessionSink(self, session_id)

    def send_text(self, session_id: str, text: str) -> None:
        for client in self.subscribers.get(session_id, ()):
            client.push(text)

    def authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        supplied = request.query.get("token") or request.headers.get(
            "Authorization", ""
        ).removeprefix("Bearer ")
        return hmac.compare_digest(supplied.encode(), self.token.encode())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET /ws?session_id=ID[&token=T] -> a WebSocket subscribed to that session only."""
        if not self.authorized(request):
            return web.json_response(
                {"status": "error", "message": "missing or wrong token"}, status=401
            )
        try:
            session_id = validate_session_id(request.query.get("session_id", ""))
        except SessionIdError as exc:
            return web.json_response({"status": "error", "message": str(exc)}, status=400)
        socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
        await socket.prepare(request)
        client = WebSocketClient(session_id, socket, self.frames_sent)
        self.subscribers.setdefault(session_id, set()).add(client)
        self.clients_total += 1
        log.info("websocket client subscribed to session %s", session_id)
        writer = asyncio.create_task(self._write(client))
        try:
            async for message in socket:  # clients send nothing we act on; this notices close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            client.closed = True
            client.wakeup.set()
            clients = self.subscribers.get(session_id)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self.subscribers[session_id]
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
            log.info(
                "websocket client of session %s left (%d frames)", session_id, client.frames_sent
            )
        return socket

    async def _write(self, client: WebSocketClient) -> None:
        try:
            await client.run()
        except (ConnectionError, RuntimeError) as exc:
            log.info("websocket client of session %s broke: %s", client.session_id, exc)
            client.closed = True

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self.handle)
        return app
