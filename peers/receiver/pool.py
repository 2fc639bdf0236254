# Strategy: NodePool, many nodes behind one receiver (README "Scaling out").
# It offers the control client's methods (play/stop/pause/resume/status) and
# the Receiver's frames()/router, over several nodes. New sessions go to the
# up node with the lowest penalty (penalty.py); a session stays on its node
# for replace, stop, pause and resume. Every node's stream feeds one Router,
# but only the messages of the node that currently owns a session pass: that
# is what keeps a moved session from ever playing twice. The pool counts each
# owned session's audio frames, so it knows the position of the last frame
# received; when the owner goes down (pool_node.py), or comes back with a
# hello but without our playbacks, the session is played again on the best
# up node at that position + 20 ms, after a receiver-local `moved` event. With
# no node up a session waits up to 60 s, then ends with `error`. On start
# (and whenever a node announces a playback the pool does not know) the pool
# adopts the node's active playbacks, so a restarted bot keeps control.
from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from snowmux.protocol import AudioFrame, Event, SessionIdError, validate_session_id

from ..audio_format import FRAME_SECONDS, OPUS_SILENCE, SAMPLE_RATE
from ..control import ControlClient, NodeError, play_body, session_path
from ..defaults import NODE_URL
from .connection import Endpoint
from .penalty import penalty
from .pool_node import (
    HEALTH_EVERY_SECONDS,
    ControlFactory,
    EndpointFactory,
    NodeInfo,
    NodeState,
    PooledNode,
    default_endpoint,
)
from .router import Router
from .sinks import CompositeSink, FrameQueue

__all__ = ["FAILOVER_WAIT_SECONDS", "NoNodeUp", "NodePool", "PooledSession"]

log = logging.getLogger("snowmux.pool")

# With no node up, a session waits this long for one: long enough for a
# supervisor to restart a crashed node, short enough that a bot hears about a
# real outage (an `error` event) within a minute.
FAILOVER_WAIT_SECONDS = 60.0
START_WAIT_SECONDS = 3.0  # start() waits this long for each node's first answer
FRAME_QUEUE_SIZE = 250  # frames(): 5 s of 20 ms frames, as Receiver.frames()
ACTIVE_STATES = frozenset({"starting", "playing", "paused"})


class NoNodeUp(NodeError):
    """No node of the pool is up (HTTP 503)."""

    def __init__(self) -> None:
        super().__init__(503, "no node of the pool is up")


def _is_ogg_header(payload: bytes | memoryview) -> bool:
    """An OpusHead or OpusTags page (opus/web playbacks), which carries no audio."""
    if len(payload) < 28 or bytes(payload[:4]) != b"OggS":
        return False
    body = 27 + payload[26]
    return bytes(payload[body : body + 8]) in (b"OpusHead", b"OpusTags")


@dataclass(slots=True)
class PooledSession:
    """One session as the pool sees it: its node, its play request, its position."""

    session_id: str
    node: PooledNode
    body: dict[str, Any]  # the play request (without start_at), re-sent on a move
    start: float = 0.0  # position of the current playback's first frame
    frames: int = 0  # audio frames received from the owner since its `ready`
    active: bool = True
    paused: bool = False
    moving: bool = False
    moves: list[str] = field(default_factory=list)
    # The playback's queue as the pool sent it (SPEC.md section 9, queue):
    # every track's body in order, and the index of the one playing, from the
    # node's track_start events; a move replays the current track at its
    # position and queues the rest again.
    tracks: list[dict[str, Any]] = field(default_factory=list)
    current: int = 0

    @property
    def position(self) -> float:
        """Where the next frame starts: the last frame received + 20 ms."""
        return self.start + self.frames * FRAME_SECONDS

    def count(self, payload: bytes | memoryview) -> None:
        audio_format = self.body.get("format")
        if audio_format in ("opus", "web") and _is_ogg_header(payload):
            return
        if audio_format == "opus-packets" and payload == OPUS_SILENCE:
            return
        self.frames += 1


class NodePool:
    """Several nodes as one: the control client's methods plus frames(session_id)."""

    def __init__(
        self,
        nodes: Sequence[str] = (NODE_URL,),
        router: Router | None = None,
        *,
        token: str | None = None,
        tls_ca: Path | None = None,
        endpoint_factory: EndpointFactory | None = None,
        control_factory: ControlFactory | None = None,
        failover_wait: float = FAILOVER_WAIT_SECONDS,
        health_every: float = HEALTH_EVERY_SECONDS,
    ) -> None:
        """``token`` goes to every node's API and stream; ``tls_ca`` verifies their TLS."""
        if not nodes:
            raise ValueError("a NodePool needs at least one node URL")
        if endpoint_factory is None:
            context = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else None

            def endpoint_factory(url: str, info: NodeInfo, token: str | None) -> Endpoint:
                return default_endpoint(url, info, token, context)

        if control_factory is None:

            def control_factory(url: str, token: str | None) -> ControlClient:
                return ControlClient(url, token, tls_ca)

        self.router = router or Router()
        self.failover_wait = failover_wait
        self.nodes = [
            PooledNode(
                url,
                self,
                token=token,
                endpoint_factory=endpoint_factory,
                control_factory=control_factory,
                health_every=health_every,
            )
            for url in dict.fromkeys(u.rstrip("/") for u in nodes)
        ]
        self.sessions: dict[str, PooledSession] = {}
        self.connected = asyncio.Event()  # set while at least one node is up
        self.dropped_frames = 0  # from nodes that do not own the session (never forwarded)
        self._changed = asyncio.Event()
        self._queues: set[FrameQueue] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -------------------------------------------------------------

    async def start(self, wait: float = START_WAIT_SECONDS) -> None:
        """Start watching every node; return once each has answered once (or ``wait`` passed)."""
        for node in self.nodes:
            node.start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(node.checked.wait() for node in self.nodes)), wait
            )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(node.close() for node in self.nodes))
        for queue in list(self._queues):
            queue.close()

    async def __aenter__(self) -> NodePool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- placement -------------------------------------------------------------

    def node(self, url: str) -> PooledNode | None:
        return next((n for n in self.nodes if n.url == url.rstrip("/")), None)

    def _owned(self, node: PooledNode) -> int:
        return sum(1 for s in self.sessions.values() if s.node is node and s.active)

    def penalty(self, node: PooledNode) -> float:
        # /health is up to 2 s old: the sessions the pool placed since count too,
        # so a burst of plays is spread instead of landing on one node.
        load = replace(node.load, playing=max(node.load.playing, self._owned(node)))
        return round(penalty(load), 3)

    def ranked(self) -> list[PooledNode]:
        """Up nodes, best (lowest penalty) first."""
        up = [n for n in self.nodes if n.state is NodeState.UP]
        return sorted(up, key=self.penalty)

    def describe_nodes(self) -> list[dict[str, Any]]:
        """GET /nodes: each node's url, state, sessions, penalty and cpu_load."""
        return [
            {**node.describe(), "sessions": self._owned(node), "penalty": self.penalty(node)}
            for node in self.nodes
        ]

    # -- the control client's methods ----------------------------------------------

    async def play(
        self,
        session_id: str,
        url: str,
        format: str | None = None,
        start_at: float | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        return await self.play_body(session_id, play_body(url, format, start_at, **extra))

    async def play_body(self, session_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /play with this JSON body on the session's node (or the best one)."""
        self._check_id(session_id)
        current = self.sessions.get(session_id)
        if current is not None and current.active and current.node.state is NodeState.UP:
            candidates = [current.node]  # replace: a session stays on its node
        else:
            candidates = self.ranked()
        if not candidates:
            raise NoNodeUp()
        start_at = body.get("start_at")
        kept = {k: v for k, v in body.items() if k != "start_at"}
        for index, node in enumerate(candidates):
            session = PooledSession(session_id, node, kept, tracks=[dict(body)])
            if isinstance(start_at, int | float) and not isinstance(start_at, bool):
                session.start = float(start_at)
            previous = self.sessions.get(session_id)
            self.sessions[session_id] = session  # before the POST: its `ready` may come first
            try:
                reply: dict[str, Any] = await node.client.request(
                    "POST", session_path(session_id, "play"), body
                )
            except NodeError as exc:
                if self.sessions.get(session_id) is session:
                    if previous is None:
                        del self.sessions[session_id]
                    else:
                        self.sessions[session_id] = previous
                if exc.status in (0, 429) and index + 1 < len(candidates):
                    log.warning(
                        "play %s on %s: %s; trying the next node", session_id, node.url, exc
                    )
                    continue  # unreachable or full: the next best node
                raise
            if previous is not None and previous is not session:
                previous.active = False  # its playback was replaced (or its node is gone)
            log.info(
                "session %s: playing on %s (penalty %.1f)", session_id, node.url, self.penalty(node)
            )
            return {**reply, "node": node.url}
        raise NoNodeUp()  # not reached: the loop returns or raises

    async def stop(self, session_id: str) -> dict[str, Any]:
        self._check_id(session_id)
        session = self.sessions.get(session_id)
        if session is None:  # not ours: stop is idempotent, ask every up node
            await asyncio.gather(
                *(n.client.stop(session_id) for n in self.ranked()), return_exceptions=True
            )
            return {"status": "stopped", "session_id": session_id}
        if session.node.state is not NodeState.UP and session.active:
            self._end(session, Event.create("finished", session_id, reason="stopped"))
            return {"status": "stopped", "session_id": session_id, "node": session.node.url}
        reply = await session.node.client.stop(session_id)
        return {**reply, "node": session.node.url}

    async def pause(self, session_id: str) -> dict[str, Any]:
        return await self._pause_resume(session_id, "pause")

    async def resume(self, session_id: str) -> dict[str, Any]:
        return await self._pause_resume(session_id, "resume")

    async def update(self, session_id: str, /, **fields: Any) -> dict[str, Any]:
        """PATCH the session on its node (seek, volume, paused, filters, end_at, crossfade_ms)."""
        session = self._owned_session(session_id)
        reply = await session.node.client.update(session_id, **fields)
        for key in ("volume", "filters", "end_at", "crossfade_ms"):  # replayed on a move
            if key in fields:
                session.body[key] = fields[key]
        if session.body.get("end_at") is None:
            session.body.pop("end_at", None)
        if isinstance(fields.get("paused"), bool):
            session.paused = fields["paused"]
        return {**reply, "node": session.node.url}

    async def seek(self, session_id: str, position: float) -> dict[str, Any]:
        return await self.update(session_id, position=position)

    async def volume(self, session_id: str, volume: float) -> dict[str, Any]:
        return await self.update(session_id, volume=volume)

    async def filters(self, session_id: str, filters: dict[str, Any]) -> dict[str, Any]:
        return await self.update(session_id, filters=filters)

    async def queue(self, session_id: str, url: str, /, **fields: Any) -> dict[str, Any]:
        """Append a track on the session's node; an idle session starts on the best node."""
        self._check_id(session_id)
        body = {"url": url, **fields}
        current = self.sessions.get(session_id)
        if current is not None and current.active and current.node.state is NodeState.UP:
            reply = await current.node.client.queue(session_id, url, **fields)
            current.tracks.append(body)
            return {**reply, "node": current.node.url}
        candidates = self.ranked()
        if not candidates:
            raise NoNodeUp()
        node = candidates[0]
        kept = {k: v for k, v in body.items() if k not in ("start_at", "crossfade_ms")}
        session = PooledSession(session_id, node, kept, tracks=[body])
        start_at = body.get("start_at")
        if isinstance(start_at, int | float) and not isinstance(start_at, bool):
            session.start = float(start_at)
        previous = self.sessions.get(session_id)
        self.sessions[session_id] = session  # before the POST: its `ready` may come first
        try:
            reply = await node.client.queue(session_id, url, **fields)
        except NodeError:
            if self.sessions.get(session_id) is session:
                if previous is None:
                    del self.sessions[session_id]
                else:
                    self.sessions[session_id] = previous
            raise
        return {**reply, "node": node.url}

    async def queue_list(self, session_id: str) -> dict[str, Any]:
        session = self._owned_session(session_id)
        reply = await session.node.client.queue_list(session_id)
        return {**reply, "node": session.node.url}

    async def clear_queue(self, session_id: str) -> dict[str, Any]:
        session = self._owned_session(session_id)
        reply = await session.node.client.clear_queue(session_id)
        del session.tracks[session.current + 1 :]
        return {**reply, "node": session.node.url}

    async def skip(self, session_id: str) -> dict[str, Any]:
        session = self._owned_session(session_id)
        reply = await session.node.client.skip(session_id)
        return {**reply, "node": session.node.url}

    def _owned_session(self, session_id: str) -> PooledSession:
        """The session, on an up node; NodeError 404 if unknown, 409 while it is moving."""
        self._check_id(session_id)
        session = self.sessions.get(session_id)
        if session is None:
            raise NodeError(404, f"unknown session {session_id}")
        if session.node.state is not NodeState.UP:
            raise NodeError(409, f"session {session_id} is moving to another node: try again")
        return session

    async def _pause_resume(self, session_id: str, action: str) -> dict[str, Any]:
        self._check_id(session_id)
        session = self.sessions.get(session_id)
        if session is None:
            raise NodeError(404, f"unknown session {session_id}")
        if session.node.state is not NodeState.UP and session.active:
            session.paused = action == "pause"  # applied when the move lands
            state = "paused" if session.paused else "playing"
            return {"status": state, "session_id": session_id, "node": session.node.url}
        reply = await session.node.client.request("POST", session_path(session_id, action))
        session.paused = reply.get("status") == "paused"
        return {**reply, "node": session.node.url}

    async def status(self, session_id: str | None = None) -> dict[str, Any]:
        if session_id is None:
            return {"sessions": await self._all_sessions()}
        self._check_id(session_id)
        session = self.sessions.get(session_id)
        if session is not None and session.node.state is NodeState.UP:
            reply = await session.node.client.status(session_id)
            return {**reply, "node": session.node.url}
        if session is not None and session.active:
            return self._moving_entry(session)
        for node in self.ranked():
            with contextlib.suppress(NodeError):
                reply = await node.client.status(session_id)
                return {**reply, "node": node.url}
        raise NodeError(404, f"unknown session {session_id}")

    async def health(self) -> dict[str, Any]:
        """The pool's own health: how many nodes are up, how many sessions are active."""
        up = sum(1 for n in self.nodes if n.state is NodeState.UP)
        return {
            "status": "ok" if up else "no node up",
            "nodes": {"up": up, "total": len(self.nodes)},
            "sessions": {"active": sum(1 for s in self.sessions.values() if s.active)},
        }

    async def _all_sessions(self) -> list[dict[str, Any]]:
        up = self.ranked()
        listings = await asyncio.gather(*(n.client.status() for n in up), return_exceptions=True)
        entries: list[dict[str, Any]] = []
        for node, listing in zip(up, listings, strict=True):
            if not isinstance(listing, dict):
                continue
            for entry in listing.get("sessions", []):
                owner = self.sessions.get(str(entry.get("session_id")))
                if owner is not None and owner.node is not node:
                    continue  # an old playback on a node the session moved away from
                entries.append({**entry, "node": node.url})
        entries.extend(
            self._moving_entry(s)
            for s in self.sessions.values()
            if s.active and s.node.state is not NodeState.UP
        )
        return entries

    @staticmethod
    def _moving_entry(session: PooledSession) -> dict[str, Any]:
        return {
            "session_id": session.session_id,
            "state": "moving",
            "url": session.body.get("url"),
            "format": session.body.get("format"),
            "position_secs": round(session.position, 3),
            "node": session.node.url,
        }

    @staticmethod
    def _check_id(session_id: str) -> None:
        try:
            validate_session_id(session_id)
        except SessionIdError as exc:
            raise NodeError(400, str(exc)) from None

    # -- frames, as Receiver.frames() ---------------------------------------------

    async def frames(
        self, session_id: str, maxsize: int = FRAME_QUEUE_SIZE
    ) -> AsyncIterator[AudioFrame]:
        """``async for frame in pool.frames(id)``: that session's frames, whichever node plays it."""
        queue = FrameQueue(maxsize)
        existing = self.router.sink(session_id)
        if existing is None:
            self.router.register(session_id, queue)
        elif isinstance(existing, CompositeSink):
            existing.sinks.append(queue)
        else:
            self.router.register(session_id, CompositeSink([existing, queue]))
        self._queues.add(queue)
        try:
            async for frame in queue:
                yield frame
        finally:
            self._queues.discard(queue)
            sink = self.router.sink(session_id)
            if sink is queue:
                self.router.unregister(session_id)
            elif isinstance(sink, CompositeSink) and queue in sink.sinks:
                sink.sinks.remove(queue)

    # -- what the nodes' streams say (NodeListener) --------------------------------

    def on_frame(self, node: PooledNode, frame: AudioFrame) -> None:
        session = self.sessions.get(frame.session_id)
        if session is None or session.node is not node:
            self.dropped_frames += 1
            return
        session.count(frame.payload)
        self.router.route((frame,))

    def on_event(self, node: PooledNode, event: Event) -> None:
        session = self.sessions.get(event.session_id)
        if session is not None and session.node is not node:
            if session.active or event.type != "ready":
                if event.type == "ready" and session.active:
                    # A node we moved this session away from still plays it: stop that one.
                    log.warning(
                        "session %s still plays on %s: stopping it", event.session_id, node.url
                    )
                    self._spawn(self._quietly(node, "stop", event.session_id))
                return
            session = None  # ended here, now played directly on another node: adopt it
        if session is None:
            if event.type != "ready":
                return
            session = self._adopt(node, event.session_id, {"format": event.data.get("format")})
            self._spawn(self._fill(node, session))
        if event.type in ("ready", "seeked"):
            position = event.data.get("position_secs")
            session.start = float(position) if isinstance(position, int | float) else session.start
            session.frames = 0
            session.moving = False
            if event.type == "ready" and session.paused:
                self._spawn(self._quietly(node, "pause", event.session_id))
        elif event.type == "track_start":
            self._track_started(session, event)
        elif event.type == "error" or (
            event.type == "finished" and event.data.get("reason") != "replaced"
        ):
            session.active = False
        self.router.route((event,))

    @staticmethod
    def _track_started(session: PooledSession, event: Event) -> None:
        """A queued track begins in the frame that follows, ``sample_offset`` samples in."""
        index, offset = event.data.get("index"), event.data.get("sample_offset", 0)
        if not isinstance(index, int) or not 0 < index < len(session.tracks):
            return  # the first track (its `ready` set the position) or one we did not queue
        session.current = index
        track = session.tracks[index]
        session.body = {k: v for k, v in track.items() if k != "start_at"}
        start_at = track.get("start_at")
        start = float(start_at) if isinstance(start_at, int | float) else 0.0
        samples = offset if isinstance(offset, int) else 0
        session.start, session.frames = start - samples / SAMPLE_RATE, 0

    def on_hello(self, node: PooledNode) -> None:
        if any(s.node is node and s.active for s in self.sessions.values()):
            self._spawn(self._check_lost(node))

    def on_state(self, node: PooledNode) -> None:
        if any(n.state is NodeState.UP for n in self.nodes):
            self.connected.set()
        else:
            self.connected.clear()
        self._changed.set()
        self._changed = asyncio.Event()
        if node.state is NodeState.UP:
            self._spawn(self._adopt_listing(node))
        else:
            for session in list(self.sessions.values()):
                if session.node is node and session.active and not session.moving:
                    self._move_later(session, node)

    # -- adoption ------------------------------------------------------------------

    def _adopt(self, node: PooledNode, session_id: str, body: dict[str, Any]) -> PooledSession:
        session = PooledSession(session_id, node, {k: v for k, v in body.items() if v is not None})
        self.sessions[session_id] = session
        log.info("session %s: adopted from %s", session_id, node.url)
        return session

    @staticmethod
    def _body_from_status(entry: dict[str, Any]) -> dict[str, Any]:
        keys = ("url", "format", "volume", "bitrate", "duration", "filters", "end_at")
        return {k: entry[k] for k in keys if entry.get(k) is not None}

    async def _fill(self, node: PooledNode, session: PooledSession) -> None:
        """Complete an adopted session's play request from the node's status."""
        with contextlib.suppress(NodeError):
            entry = await node.client.status(session.session_id)
            session.body = {**self._body_from_status(entry), **session.body}
            session.paused = entry.get("state") == "paused"

    async def _adopt_listing(self, node: PooledNode) -> None:
        """A node is up: take over the active playbacks it has that the pool does not own."""
        try:
            listing = await node.client.status()
        except NodeError:
            return
        for entry in listing.get("sessions", []):
            session_id = entry.get("session_id")
            if entry.get("state") not in ACTIVE_STATES or not isinstance(session_id, str):
                continue
            known = self.sessions.get(session_id)
            if known is None or not known.active:
                session = self._adopt(node, session_id, self._body_from_status(entry))
                position = entry.get("position_secs")
                session.start = float(position) if isinstance(position, int | float) else 0.0
                session.paused = entry.get("state") == "paused"
            elif known.node is node and "url" not in known.body:
                known.body = {**self._body_from_status(entry), **known.body}

    # -- failover ------------------------------------------------------------------

    async def _check_lost(self, node: PooledNode) -> None:
        """The node's stream said hello again: did it keep our playbacks?"""
        try:
            listing = await node.client.status()
        except NodeError:
            return  # the health watcher decides
        alive = {
            e.get("session_id")
            for e in listing.get("sessions", [])
            if e.get("state") in ACTIVE_STATES
        }
        for session in list(self.sessions.values()):
            if (
                session.node is node
                and session.active
                and not session.moving
                and session.session_id not in alive
            ):
                log.warning("node %s came back without session %s", node.url, session.session_id)
                self._move_later(session, node)

    def _move_later(self, session: PooledSession, old: PooledNode) -> None:
        session.moving = True
        self._spawn(self._move(session, old))

    async def _move(self, session: PooledSession, old: PooledNode) -> None:
        session_id = session.session_id
        deadline = time.monotonic() + self.failover_wait
        while True:
            if (
                not session.active
                or session.node is not old
                or self.sessions.get(session_id) is not session
            ):
                return  # stopped, or played anew, meanwhile
            # Any up node, the old one included once it is back (a restarted node,
            # or one that said hello without our playback, is healthy again).
            for target in self.ranked():
                position = round(session.position, 6)
                self.router.route(
                    (
                        Event.create(
                            "moved",
                            session_id,
                            **{"from": old.url, "to": target.url, "position_secs": position},
                        ),
                    )
                )
                session.node, session.start, session.frames = target, position, 0
                body = {**session.body, "start_at": position}
                upcoming = session.tracks[session.current + 1 :]
                try:
                    await target.client.request("POST", session_path(session_id, "play"), body)
                    for track in upcoming:  # the rest of the queue follows, as before
                        await target.client.request(
                            "POST", session_path(session_id, "queue"), track
                        )
                    session.tracks, session.current = [body, *upcoming], 0
                except NodeError as exc:
                    session.node = old
                    if exc.status in (0, 429):
                        continue  # unreachable or full: the next best node
                    self._end(session, Event.create("error", session_id, message=str(exc)))
                    return
                session.moving = False
                session.moves.append(target.url)
                log.warning(
                    "session %s: now on %s (from %s, at %.3fs)",
                    session_id,
                    target.url,
                    old.url,
                    position,
                )
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                message = f"no node was up for {self.failover_wait:g} s to move this session to"
                self._end(session, Event.create("error", session_id, message=message))
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _end(self, session: PooledSession, event: Event) -> None:
        """End a session the pool holds (no node plays it): tell its sinks."""
        session.active = False
        session.moving = False
        self.router.route((event,))

    @staticmethod
    async def _quietly(node: PooledNode, action: str, session_id: str) -> None:
        """A control call whose failure changes nothing (the node is gone or the session ended)."""
        with contextlib.suppress(NodeError):
            await node.client.request("POST", session_path(session_id, action))
