"""Connection caps, read deadlines, fd headroom and rate-limited logs, against a real node."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import resource
import socket
import time
from pathlib import Path

import pytest

from snowmux.node.limits import RateLimitedLog, install_loop_exception_limiter

from .node_helpers import NodeProcess, Recorder, call, play

pytestmark = pytest.mark.slow


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].rsplit(":", 1)
    return host, int(port)


def open_idle(address: tuple[str, int] | str, count: int) -> list[socket.socket]:
    """Up to ``count`` connections that send nothing (fewer if the kernel refuses)."""
    sockets = []
    for _ in range(count):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(2)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            break
        sockets.append(sock)
    return sockets


def closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def wait_all_closed(sockets: list[socket.socket], timeout: float) -> float:
    started = time.monotonic()
    pending = list(sockets)
    while pending and time.monotonic() - started < timeout:
        pending = [s for s in pending if not closed_by_peer(s)]
        time.sleep(0.1)
    assert not pending, f"{len(pending)} of {len(sockets)} still open after {timeout} s"
    return time.monotonic() - started


def read_answer(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the node sends until it closes; and how long that took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer, time.monotonic() - started


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


async def test_idle_slow_and_short_body_connections_are_dropped(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--read-timeout", "1") as node:
        address = host_port(node.url)
        idle = open_idle(address, 50)
        slow_headers = socket.create_connection(address)
        slow_headers.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        try:
            took = await asyncio.to_thread(wait_all_closed, [*idle, slow_headers], 8)
            assert took < 8
        finally:
            close_all([*idle, slow_headers])

        request = (
            "POST /session/s/play HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n0123456789"
        )
        # A body that never completes: 408 once the read deadline passes, then closed.
        with socket.create_connection(address) as short:
            short.sendall(request.format(1000).encode())
            answer, took = await asyncio.to_thread(read_answer, short, 10)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == "error"
        assert 0.9 <= took < 6, took
        # Content-Length: 1e9 is refused before reading any of it.
        with socket.create_connection(address) as huge:
            huge.sendall(request.format(10**9).encode())
            answer, took = await asyncio.to_thread(read_answer, huge, 10)
        assert answer.startswith(b"HTTP/1.1 413") and took < 3, (answer[:80], took)
        status, _ = await call(node.url, "GET", "/health")
        assert status == 200


async def test_http_connection_cap_closes_the_oldest_idle(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--max-http-connections", "10") as node:
        old = open_idle(host_port(node.url), 10)
        try:
            await asyncio.sleep(1.5)  # idle long enough to be evicted
            status, health = await call(node.url, "GET", "/health")  # a new client is served
            assert status == 200 and health["http"]["evicted_idle_total"] == 1
            await asyncio.to_thread(wait_all_closed, old[:1], 5)  # the oldest made room
            burst = open_idle(host_port(node.url), 20)
            try:
                # The older sockets make room for the burst; once none is idle
                # long enough, the rest of the burst is closed at once.
                await asyncio.to_thread(wait_all_closed, old, 5)
                await asyncio.sleep(1.5)  # the burst's survivors are idle now: evictable
                _, health = await call(node.url, "GET", "/health")
                assert health["http"]["refused_total"] >= 5, health["http"]
            finally:
                close_all(burst)
        finally:
            close_all(old)


async def test_max_receivers_closes_excess_at_once(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--max-receivers", "2") as node:
        async with Recorder(node.socket_path) as first, Recorder(node.socket_path) as second:
            await first.wait_for(lambda: bool(first.events(type="hello")))
            await second.wait_for(lambda: bool(second.events(type="hello")))
            reader, writer = await asyncio.open_unix_connection(str(node.socket_path))
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing sent
            writer.close()
            _, health = await call(node.url, "GET", "/health")
            assert health["receivers"]["connected"] == 2
            assert health["receivers"]["refused_total"] == 1
        await asyncio.sleep(0.3)
        async with Recorder(node.socket_path) as third:  # room again
            await third.wait_for(lambda: bool(third.events(type="hello")))


async def test_low_fd_limit_keeps_receivers_and_health_and_recovers(tmp_path: Path) -> None:
    limit = 256
    with NodeProcess(tmp_path, "--codec-processes", "1") as node:
        resource.prlimit(node.pid, resource.RLIMIT_NOFILE, (limit, limit))
        async with Recorder(node.socket_path) as rx:
            await play(node.url, "keeper", "tone:440?seconds=8", format="pcm")
            await rx.wait_event("keeper", "ready")
            flood = await asyncio.to_thread(open_idle, host_port(node.url), limit + 200)
            flood += await asyncio.to_thread(open_idle, str(node.socket_path), 100)
            try:
                frames_before = len(rx.frames("keeper"))
                await asyncio.sleep(1.2)  # the flood's sockets are idle (evictable) by now
                for _ in range(3):
                    status, _ = await call(node.url, "GET", "/health")
                    assert status == 200
                    await asyncio.sleep(0.5)
                assert len(rx.frames("keeper")) > frames_before + 40  # still streaming
            finally:
                close_all(flood)
            await asyncio.sleep(1)
            status, health = await call(node.url, "GET", "/health")
            assert status == 200
            acted = (
                health["receivers"]["refused_total"]
                + health["http"]["refused_total"]
                + health["http"]["evicted_idle_total"]
            )
            assert acted > 0, health  # the flood went past the fd headroom
            async with Recorder(node.socket_path) as late:  # new receivers are served again
                await late.wait_for(lambda: bool(late.events(type="hello")))
            await rx.wait_event("keeper", "finished")
        times = rx.frame_times("keeper")
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert max(gaps) < 1.0
    log = node.log_path.read_text(errors="replace")
    assert log.count("Traceback") <= 2 and len(log) < 200_000, len(log)


def test_rate_limited_log_counts_what_it_suppresses(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("test.limits"), interval=0.2)
    with caplog.at_level(logging.WARNING, "test.limits"):
        for _ in range(1000):
            limited.warning("accept", "accept failed")
        time.sleep(0.25)
        limited.warning("accept", "accept failed")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["accept failed", lines[1]] and "and 999 more" in lines[1]


def test_loop_errors_are_logged_at_most_once_a_second(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        install_loop_exception_limiter(loop)
        with caplog.at_level(logging.WARNING, "snowmux.node.loop"):
            for _ in range(5000):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
    finally:
        loop.close()
    assert len(caplog.records) == 1
    assert "Too many open files" in caplog.records[0].getMessage()
