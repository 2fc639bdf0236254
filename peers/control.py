# Strategy: a small typed client for the node's control API (SPEC.md section
# 9), used by the CLI, the demo, the web playground's proxy, the conformance
# kit and bots. It lives beside the node and the receiver, not inside either.
# A non-2xx answer raises NodeError carrying the node's own message. For an
# https:// node with a private CA (README "Stream authentication and TLS"),
# tls_ca names the CA file that verifies the node's certificate.
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from .defaults import MEDIA_OPEN_TIMEOUT_SECONDS, NODE_URL

__all__ = ["ControlClient", "NodeError", "play_body", "session_path"]

# A play opens and probes its media before answering; the node gives up on a
# remote source after MEDIA_OPEN_TIMEOUT_SECONDS, so wait that long plus slack.
TIMEOUT_SECONDS = MEDIA_OPEN_TIMEOUT_SECONDS + 5.0


class NodeError(Exception):
    """The node refused a request (or could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def session_path(session_id: str, action: str) -> str:
    """The API path of ``action`` on a session; the ID percent-encoded (it may hold '/')."""
    return f"/session/{quote(session_id, safe='')}/{action}"


def play_body(
    url: str, format: str | None = None, start_at: float | None = None, **extra: Any
) -> dict[str, Any]:
    """The JSON body of a play: ``url`` and the fields given (None means the node's default)."""
    body: dict[str, Any] = {"url": url, **extra}
    if format is not None:
        body["format"] = format
    if start_at is not None:
        body["start_at"] = start_at
    return body


class ControlClient:
    def __init__(
        self, node_url: str = NODE_URL, token: str | None = None, tls_ca: Path | None = None
    ) -> None:
        self.node_url = node_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | bool = True  # aiohttp's default: the system's CAs
        if tls_ca is not None:
            self._ssl = ssl.create_default_context(cafile=str(tls_ca))

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS), headers=self._headers
            )
        try:
            # Always application/json, even without a body: the node answers 415 to
            # any other declared type (SPEC.md [A2]).
            async with self._session.request(
                method,
                self.node_url + path,
                json=body,
                headers={"Content-Type": "application/json"},
                ssl=self._ssl,
            ) as response:
                try:
                    reply = await response.json(content_type=None)
                except ValueError:
                    reply = {"message": (await response.text())[:200]}
                if response.status >= 400:
                    message = reply.get("message") if isinstance(reply, dict) else None
                    raise NodeError(response.status, message or response.reason or "error")
                return reply
        except aiohttp.ClientError as exc:
            raise NodeError(0, f"cannot reach the node at {self.node_url}: {exc}") from None

    async def play(
        self,
        session_id: str,
        url: str,
        format: str | None = None,
        start_at: float | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body = play_body(url, format, start_at, **extra)
        reply: dict[str, Any] = await self.request("POST", session_path(session_id, "play"), body)
        return reply

    async def stop(self, session_id: str) -> dict[str, Any]:
        reply: dict[str, Any] = await self.request("POST", session_path(session_id, "stop"))
        return reply

    async def pause(self, session_id: str) -> dict[str, Any]:
        reply: dict[str, Any] = await self.request("POST", session_path(session_id, "pause"))
        return reply

    async def resume(self, session_id: str) -> dict[str, Any]:
        reply: dict[str, Any] = await self.request("POST", session_path(session_id, "resume"))
        return reply

    async def update(self, session_id: str, /, **fields: Any) -> dict[str, Any]:
        """PATCH /session/{id} with any of position, volume, paused, filters, end_at.

        Answers the session's status; NodeError 400 names a bad field (and
        nothing changed), 404 unknown session, 409 ended.
        """
        path = f"/session/{quote(session_id, safe='')}"
        reply: dict[str, Any] = await self.request("PATCH", path, fields)
        return reply

    async def seek(self, session_id: str, position: float) -> dict[str, Any]:
        """Seek to ``position`` seconds, sample-accurate (a `seeked` event precedes the frame)."""
        return await self.update(session_id, position=position)

    async def volume(self, session_id: str, volume: float) -> dict[str, Any]:
        """Set the volume, 0.0-5.0 (1.0 unity)."""
        return await self.update(session_id, volume=volume)

    async def filters(self, session_id: str, filters: dict[str, Any]) -> dict[str, Any]:
        """Replace the whole filter set (Lavalink v4 JSON); ``{}`` clears it."""
        return await self.update(session_id, filters=filters)

    async def queue(self, session_id: str, url: str, /, **fields: Any) -> dict[str, Any]:
        """Append a track (the body of play, plus ``crossfade_ms``); an idle session starts it.

        Answers ``{"status": "queued", "position": n}``; NodeError 409 when the
        format differs from the playing one.
        """
        body = {"url": url, **fields}
        reply: dict[str, Any] = await self.request("POST", session_path(session_id, "queue"), body)
        return reply

    async def queue_list(self, session_id: str) -> dict[str, Any]:
        """``{"tracks": [...], "current": index, "crossfade_ms": ms}``."""
        reply: dict[str, Any] = await self.request("GET", session_path(session_id, "queue"))
        return reply

    async def clear_queue(self, session_id: str) -> dict[str, Any]:
        """Drop the upcoming tracks (the current one plays on)."""
        reply: dict[str, Any] = await self.request("DELETE", session_path(session_id, "queue"))
        return reply

    async def skip(self, session_id: str) -> dict[str, Any]:
        """End the current track now: the next one follows, gapless or crossfaded."""
        reply: dict[str, Any] = await self.request("POST", session_path(session_id, "skip"))
        return reply

    async def status(self, session_id: str | None = None) -> dict[str, Any]:
        path = session_path(session_id, "status") if session_id else "/sessions"
        reply: dict[str, Any] = await self.request("GET", path)
        return reply

    async def health(self) -> dict[str, Any]:
        reply: dict[str, Any] = await self.request("GET", "/health")
        return reply
