"""Authenticated streams (SPEC.md section 8a), exposure rules and TLS, against real processes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from snowmux.control import ControlClient
from snowmux.protocol import Decoder, Event
from snowmux.protocol.auth import AuthLineError, encode_auth, parse_auth
from snowmux.receiver import Endpoint, Receiver

from .audio_checks import ffprobe
from .node_helpers import NodeProcess, RouteProcess, free_port, snowmux
from .tls_helpers import self_signed

pytestmark = pytest.mark.slow

TOKEN = "correct horse battery staple"


async def first_bytes(port: int, send: bytes | None, wait: float) -> tuple[bytes, float]:
    """Connect, optionally send ``send``, and read until EOF or ``wait`` seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    if send is not None:
        writer.write(send)
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(4096), wait):
            received += chunk
            if b"\n" in received:
                break
    except TimeoutError:
        pass
    finally:
        writer.close()
    return received, time.monotonic() - started


def test_auth_line_round_trips_and_rejects_non_auth_lines() -> None:
    assert parse_auth(encode_auth("t")) == "t"
    assert encode_auth('a"\u00e9') == b'{"type":"auth","token":"a\\"\\u00e9"}\n'
    for bad in (b"{}\n", b'{"type":"auth"}\n', b'{"type":"auth","token":1}\n', b"[1]\n", b"x\n"):
        with pytest.raises(AuthLineError):
            parse_auth(bad)
    with pytest.raises(AuthLineError):
        parse_auth(b'{"type":"auth","token":"' + b"a" * 5000 + b'"}\n')


@pytest.mark.spec("R1", "R2", "R3")
async def test_node_with_token_sends_nothing_before_auth_and_hello_after(tmp_path: Path) -> None:
    port = free_port()
    with NodeProcess(tmp_path, "--token", TOKEN, "--tcp", f"127.0.0.1:{port}") as node:
        # A3: the right line, then hello is the first message.
        data, _ = await first_bytes(port, encode_auth(TOKEN), 5)
        first = Decoder().feed(data)[0]
        assert isinstance(first, Event) and first.type == "hello"
        # A2: wrong token, malformed line, oversized line: closed with nothing sent.
        for line in (
            encode_auth("wrong"),
            b"garbage\n",
            b'{"type":"hello","token":"' + TOKEN.encode() + b'"}\n',
            b'{"type":"auth","token":"' + b"x" * 5000 + b'"}\n',
        ):
            data, took = await first_bytes(port, line, 5)
            assert data == b"" and took < 3, (line[:40], data, took)
        # A1: nothing before the line; no line within 5 s: closed, still nothing.
        data, took = await first_bytes(port, None, 15)
        assert data == b"" and 4.5 <= took < 10, took
        # The same holds on the Unix socket.
        reader, writer = await asyncio.open_unix_connection(str(node.socket_path))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.5)
        writer.write(encode_auth(TOKEN))
        line = await asyncio.wait_for(reader.readline(), 5)
        assert json.loads(line)["type"] == "hello"
        writer.close()
        status = (await ControlClient(node.url, TOKEN).health())["receivers"]
        assert status["auth_failures_total"] >= 5


@pytest.mark.spec("R4")
async def test_receiver_with_token_plays_and_without_is_told_why(tmp_path: Path) -> None:
    port = free_port()
    with NodeProcess(tmp_path, "--token", TOKEN, "--tcp", f"127.0.0.1:{port}") as node:
        receiver = Receiver(Endpoint(tcp=("127.0.0.1", port), token=TOKEN))
        task = asyncio.create_task(receiver.run())
        await asyncio.wait_for(receiver.connected.wait(), 5)
        frames = receiver.frames("guild-1")
        async with ControlClient(node.url, TOKEN) as control:
            await control.play("guild-1", "tone:440?seconds=0.5", "pcm")
        got = [await asyncio.wait_for(frames.__anext__(), 10) for _ in range(5)]
        assert all(f.session_id == "guild-1" for f in got)
        receiver.stop()
        await task

        anonymous = Receiver(Endpoint(tcp=("127.0.0.1", port)), backoff_cap=0.2)
        task = asyncio.create_task(anonymous.run())
        deadline = time.monotonic() + 15
        while not (anonymous.last_error and "--token" in anonymous.last_error):
            assert time.monotonic() < deadline, anonymous.last_error
            await asyncio.sleep(0.1)
        assert anonymous.node_protocol is None  # never got a byte, let alone hello
        anonymous.stop()
        await task

    # A4: a tokenless node ignores the auth line of a receiver that has a token.
    with NodeProcess(
        tmp_path / "open" if (tmp_path / "open").mkdir() is None else tmp_path
    ) as open_node:
        receiver = Receiver(Endpoint(unix_path=open_node.socket_path, token=TOKEN))
        task = asyncio.create_task(receiver.run())
        deadline = time.monotonic() + 10
        while receiver.node_protocol is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert receiver.node_protocol == "snowmux/1"
        receiver.stop()
        await task


async def test_route_and_sender_harness_authenticate_with_token(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--token", TOKEN, "--no-pace") as node:
        with RouteProcess(tmp_path, node.socket_path, "--token", TOKEN) as route:
            await route.wait_log("connected to")
            await asyncio.sleep(0.3)
            async with ControlClient(node.url, TOKEN) as control:
                await control.play("guild-1", "tone:440?seconds=0.5", "opus")
            await route.wait_log("session guild-1 finished")
        (file,) = route.files("guild-1")
        assert abs(float(ffprobe(file)["format"]["duration"]) - 0.5) < 0.05
        (tmp_path / "wrong").mkdir()
        with RouteProcess(tmp_path / "wrong", node.socket_path, "--token", "nope") as wrong:
            await wrong.wait_log("wrong token?")


@pytest.mark.parametrize("transport", ["unix", "tcp+tls"])
async def test_sender_harness_authenticates_with_token(tmp_path: Path, transport: str) -> None:
    node_args: tuple[str, ...] = ("--token", TOKEN)
    harness_args: tuple[str, ...] = ()
    if transport == "tcp+tls":
        cert, key = self_signed(tmp_path)
        port = free_port()
        node_args += ("--tcp", f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key))
        harness_args = ("--tcp", f"127.0.0.1:{port}", "--tls-ca", str(cert))
    with NodeProcess(tmp_path, *node_args) as node:  # paced: the harness judges pacing
        if transport == "unix":
            harness_args = ("--socket", str(node.socket_path))
        result = await asyncio.to_thread(
            snowmux,
            "conformance", "sender", *harness_args, "--node", node.url, "--token", TOKEN,
            timeout=120,
        )  # fmt: skip
        assert "hello-and-events" in result.stdout
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "flags",
    [
        ("--http", "0.0.0.0:0"),
        ("--tcp", "0.0.0.0:0"),
        ("--http", "[::]:0"),
        ("--tcp", "example.org:9"),
    ],
)
def test_node_refuses_non_loopback_listeners_without_token(
    tmp_path: Path, flags: tuple[str, str]
) -> None:
    result = snowmux("serve", "--socket", str(tmp_path / "s.sock"), *flags, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "--token" in result.stderr and "reachable from other machines" in result.stderr
    assert not (tmp_path / "s.sock").exists()


async def test_tls_serves_control_api_and_stream(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    with NodeProcess(
        tmp_path,
        "--token", TOKEN, "--tcp", f"127.0.0.1:{port}",
        "--tls-cert", str(cert), "--tls-key", str(key), "--no-pace",
    ) as node:  # fmt: skip
        assert node.url.startswith("https://")
        route_args = ("--tcp", f"127.0.0.1:{port}", "--tls-ca", str(cert), "--token", TOKEN)
        with RouteProcess(tmp_path, None, *route_args) as route:
            await route.wait_log("connected to")
            await asyncio.sleep(0.3)
            played = await asyncio.to_thread(
                snowmux, "play", "guild-1", "tone:440?seconds=0.5", "--format", "pcm",
                "--node", node.url, "--token", TOKEN, "--tls-ca", str(cert), timeout=60,
            )  # fmt: skip
            assert played.returncode == 0, played.stderr
            await route.wait_log("session guild-1 finished")
        (file,) = route.files("guild-1")
        assert abs(float(ffprobe(file)["format"]["duration"]) - 0.5) < 0.05
        # Without the CA the node's certificate is not trusted; plain HTTP gets nothing.
        untrusted = await asyncio.to_thread(
            snowmux, "status", "--node", node.url, "--token", TOKEN, timeout=60
        )
        assert untrusted.returncode == 1 and "certificate" in untrusted.stderr.lower()
        async with ControlClient(node.url, TOKEN, cert) as control:
            assert (await control.health())["status"] == "ok"
        # A plain-TCP receiver cannot read the TLS stream.
        plain = Receiver(Endpoint(tcp=("127.0.0.1", port), token=TOKEN), backoff_cap=0.2)
        task = asyncio.create_task(plain.run())
        await asyncio.sleep(2)
        assert plain.node_protocol is None
        plain.stop()
        await task
