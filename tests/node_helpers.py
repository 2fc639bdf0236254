"""Real `snowmux serve` processes and a recording receiver for the sender tests."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from snowmux.protocol import AudioFrame, Decoder, Event, Message
from snowmux.protocol.auth import encode_auth
from snowmux.testing import NodeProcess, stop_process

__all__ = [
    "ROOT",
    "NodeProcess",
    "Recorder",
    "RouteProcess",
    "call",
    "free_port",
    "play",
    "snowmux",
    "stop_process",
]

ROOT = Path(__file__).resolve().parent.parent


async def call(
    node_url: str,
    method: str,
    path: str,
    json: Any = None,
    token: str | None = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One control-API request; raw ``data`` is sent as application/json unless ``headers`` say otherwise."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, node_url + path, json=json, data=data, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def play(node_url: str, session_id: str, url: str, **fields: Any) -> None:
    status, body = await call(
        node_url, "POST", f"/session/{session_id}/play", {"url": url, **fields}
    )
    assert status == 200, body


@dataclass
class Received:
    at: float
    message: Message


@dataclass
class Recorder:
    """A receiver that records every decoded message with its arrival time."""

    socket_path: Path
    token: str | None = None  # sent as the auth line (SPEC.md section 8a) when set
    messages: list[Received] = field(default_factory=list)
    error: BaseException | None = None
    raw_bytes: int = 0

    async def __aenter__(self) -> Recorder:
        self._reader, self._writer = await asyncio.open_unix_connection(str(self.socket_path))
        if self.token is not None:
            self._writer.write(encode_auth(self.token))
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._writer.close()

    async def _run(self) -> None:
        decoder = Decoder()
        try:
            while data := await self._reader.read(65536):
                self.raw_bytes += len(data)
                now = time.monotonic()
                self.messages.extend(Received(now, m) for m in decoder.feed(data))
            decoder.feed_eof()
        except Exception as exc:
            self.error = exc

    def frames(self, session_id: str) -> list[AudioFrame]:
        return [
            r.message
            for r in self.messages
            if isinstance(r.message, AudioFrame) and r.message.session_id == session_id
        ]

    def frame_times(self, session_id: str) -> list[float]:
        return [
            r.at
            for r in self.messages
            if isinstance(r.message, AudioFrame) and r.message.session_id == session_id
        ]

    def events(self, session_id: str | None = None, type: str | None = None) -> list[Event]:
        return [
            r.message
            for r in self.messages
            if isinstance(r.message, Event)
            and (session_id is None or r.message.session_id == session_id)
            and (type is None or r.message.type == type)
        ]

    def payload(self, session_id: str) -> bytes:
        return b"".join(bytes(f.payload) for f in self.frames(session_id))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out; last events: {[e.data for e in self.events()][-8:]}"
                )
            await asyncio.sleep(0.01)

    async def wait_event(
        self, session_id: str, type: str, count: int = 1, timeout: float = 15.0
    ) -> Event:
        await self.wait_for(lambda: len(self.events(session_id, type)) >= count, timeout)
        return self.events(session_id, type)[count - 1]

    def playback_messages(self, session_id: str) -> list[Message]:
        return [r.message for r in self.messages if r.message.session_id == session_id]


class RouteProcess:
    """`python -m snowmux.cli route` writing files to ``out_dir`` (log lines, not a tty)."""

    def __init__(self, workdir: Path, socket_path: Path | None, *args: str) -> None:
        """``socket_path`` None: a pool route (``--node URL``), ``--tcp`` in ``args``, or the default socket."""
        self.out_dir = workdir / "out"
        self.log_path = workdir / "route.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self.command = [
            sys.executable,
            "-m",
            "snowmux.cli",
            "route",
            *(("--socket", str(socket_path)) if socket_path is not None else ()),
            "--out",
            str(self.out_dir),
            "--log-level",
            "info",
            *args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RouteProcess:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=self._log, stderr=self._log)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_log(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert self.process is not None and self.process.poll() is None, self.log()[-3000:]
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} x{count} not in route log:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)

    def files(self, session_id: str) -> list[Path]:
        from snowmux.receiver.files import safe_dirname

        folder = self.out_dir / safe_dirname(session_id)
        return sorted(folder.iterdir()) if folder.exists() else []

    def stop(self) -> int:
        if self.process is None:
            return 0
        self._log.close()
        return stop_process(self.process, signal.SIGINT, 15.0)

    def __enter__(self) -> RouteProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def snowmux(
    *args: str, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (`python -m snowmux.cli ...`) and capture what it prints."""
    return subprocess.run(
        [sys.executable, "-m", "snowmux.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
