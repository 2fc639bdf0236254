# Strategy: hand every message to the session it belongs to, in O(1): one
# dict lookup by session ID per message, never a loop over sessions. The
# router works on whole batches (all messages decoded from one read) with one
# clock reading per batch, because frames of one read arrived at the same
# moment anyway; this keeps routing within a small factor of decoding (see
# bench/receiver.py). Each session's entry carries its sink and its stats
# together, so a frame costs one lookup. A sink that raises is logged and
# counted; routing to every other session goes on.
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from snowmux.protocol import AudioFrame, Event, Message, validate_session_id

from .sinks import CompositeSink, Sink
from .stats import STUTTER_GAP_SECONDS, SessionStats

__all__ = ["Route", "Router"]

log = logging.getLogger("snowmux.receiver.router")


class Route(SessionStats):
    """One session: its stats, and its sink (None: frames are dropped and counted)."""

    __slots__ = ("sink",)

    def __init__(self, session_id: str, sink: Sink | None) -> None:
        super().__init__(session_id)
        self.sink = sink


class Router:
    def __init__(self, sink_factory: Callable[[str], Sink] | None = None) -> None:
        self._routes: dict[str, Route] = {}
        self._sink_factory = sink_factory
        self.dropped_frames = 0  # for sessions with no sink
        self.dropped_events = 0
        self.sink_errors = 0
        self.on_connection_event: Callable[[Event], None] | None = None

    # -- the library API ------------------------------------------------------

    def register(self, session_id: str, sink: Sink) -> None:
        """Route ``session_id``'s messages to ``sink`` (replacing any previous sink)."""
        validate_session_id(session_id)
        route = self._routes.get(session_id)
        if route is None:
            self._routes[session_id] = Route(session_id, sink)
        else:
            route.sink = sink

    def unregister(self, session_id: str) -> Sink | None:
        """Stop routing ``session_id``; return its sink (not closed)."""
        route = self._routes.get(session_id)
        if route is None:
            return None
        sink, route.sink = route.sink, None
        return sink

    def attach(self, session_id: str, sink: Sink) -> None:
        """Route ``session_id``'s messages to ``sink`` too, beside any sink it has."""
        existing = self.sink(session_id)
        if existing is None:
            self.register(session_id, sink)
        elif isinstance(existing, CompositeSink):
            existing.sinks.append(sink)
        else:
            self.register(session_id, CompositeSink([existing, sink]))

    def detach(self, session_id: str, sink: Sink) -> None:
        """Undo :meth:`attach`: stop routing to ``sink`` (not closed); the others stay."""
        existing = self.sink(session_id)
        if existing is sink:
            self.unregister(session_id)
        elif isinstance(existing, CompositeSink) and sink in existing.sinks:
            existing.sinks.remove(sink)

    def sink(self, session_id: str) -> Sink | None:
        route = self._routes.get(session_id)
        return None if route is None else route.sink

    def stats(self) -> list[SessionStats]:
        return list(self._routes.values())

    def session_stats(self, session_id: str) -> SessionStats | None:
        route = self._routes.get(session_id)
        return route

    # -- routing ----------------------------------------------------------------

    def _new_route(self, session_id: str) -> Route:
        sink = None
        if self._sink_factory is not None:
            try:
                sink = self._sink_factory(session_id)
            except Exception:
                self.sink_errors += 1
                log.exception("cannot create a sink for session %s", session_id)
        route = self._routes[session_id] = Route(session_id, sink)
        return route

    def route(self, messages: Iterable[Message], now: float | None = None) -> None:
        """Dispatch a batch of messages that arrived together."""
        if now is None:
            now = time.monotonic()
        find = self._routes.get
        frame_class = AudioFrame
        gap = STUTTER_GAP_SECONDS
        for message in messages:
            if message.__class__ is not frame_class:
                self._route_event(message, now)  # type: ignore[arg-type]
                continue
            route = find(message.session_id) or self._new_route(message.session_id)
            if now - route.last_frame_at > gap:
                route.stutters += 1
                route.max_gap_ms = max(route.max_gap_ms, (now - route.last_frame_at) * 1000)
            route.last_frame_at = now
            route.frames += 1
            route.bytes += len(message.payload)
            sink = route.sink
            if sink is None:
                self.dropped_frames += 1
                continue
            try:
                sink.on_frame(message)
            except Exception:
                self._sink_failed(route, "on_frame")

    def _route_event(self, event: Event, now: float) -> None:
        session_id = event.session_id
        if not session_id:
            if self.on_connection_event is not None:
                self.on_connection_event(event)
            return
        route = self._routes.get(session_id) or self._new_route(session_id)
        route.on_event(event.type, dict(event.data))
        if route.sink is None:
            self.dropped_events += 1
            return
        try:
            route.sink.on_event(event)
        except Exception:
            self._sink_failed(route, "on_event")

    def interrupt_all(self, reason: str) -> None:
        """The connection was lost: every session's playback is interrupted."""
        for route in self._routes.values():
            if route.state == "playing":
                route.on_interrupted()
                if route.sink is not None:
                    try:
                        route.sink.on_interrupted(reason)
                    except Exception:
                        self._sink_failed(route, "on_interrupted")

    def close(self) -> None:
        for route in self._routes.values():
            if route.sink is not None:
                try:
                    route.sink.close()
                except Exception:
                    self._sink_failed(route, "close")

    def _sink_failed(self, route: Route, method: str) -> None:
        self.sink_errors += 1
        log.exception("sink of session %s failed in %s; routing goes on", route.session_id, method)
