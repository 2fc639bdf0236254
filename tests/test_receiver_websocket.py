"""The WebSocket sink: one session per client, only that session, token, bad IDs."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp.test_utils import TestServer

from snowmux.protocol import AudioFrame, Event
from snowmux.receiver import Router
from snowmux.receiver.websocket import WebSocketHub


async def started(hub: WebSocketHub) -> TestServer:
    server = TestServer(hub.app())
    await server.start_server()
    return server


async def test_clients_get_only_their_sessions_frames_and_events() -> None:
    hub = WebSocketHub()
    router = Router(hub.sink_for)
    server = await started(hub)
    try:
        async with aiohttp.ClientSession() as client:
            alice = await client.ws_connect(server.make_url("/ws?session_id=alice"))
            bob = await client.ws_connect(server.make_url("/ws?session_id=bob"))
            await asyncio.sleep(0.05)
            router.route([Event.create("ready", "alice", format="opus")])
            for i in range(20):
                router.route(
                    [AudioFrame("alice", b"A" + bytes([i])), AudioFrame("bob", b"B" + bytes([i]))]
                )
            router.route([Event.create("finished", "bob", reason="stopped")])
            got_alice = [await alice.receive(timeout=5) for _ in range(21)]
            got_bob = [await bob.receive(timeout=5) for _ in range(21)]
            assert json.loads(got_alice[0].data)["type"] == "ready"
            assert [m.data for m in got_alice[1:]] == [b"A" + bytes([i]) for i in range(20)]
            assert [m.data for m in got_bob[:20]] == [b"B" + bytes([i]) for i in range(20)]
            assert json.loads(got_bob[20].data) == {
                "type": "finished",
                "session_id": "bob",
                "reason": "stopped",
            }
            assert hub.frames_sent == {"alice": 20, "bob": 20}
            await alice.close()
            await bob.close()
    finally:
        await server.close()


async def test_invalid_session_ids_and_tokens_are_refused() -> None:
    hub = WebSocketHub(token="t0k")
    server = await started(hub)
    try:
        async with aiohttp.ClientSession() as client:
            for query, status in (
                ("session_id=a&token=t0k", 101),
                ("session_id=a", 401),
                ("session_id=a&token=bad", 401),
                ("session_id=a%20b&token=t0k", 400),
                ("session_id=&token=t0k", 400),
                ("session_id=" + "9" * 25 + "&token=t0k", 400),
            ):
                async with client.get(
                    server.make_url(f"/ws?{query}"),
                    headers={
                        "Upgrade": "websocket",
                        "Connection": "Upgrade",
                        "Sec-WebSocket-Version": "13",
                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                    },
                ) as resp:
                    assert resp.status == status, query
    finally:
        await server.close()


async def test_a_broken_client_never_stops_the_others() -> None:
    hub = WebSocketHub()
    router = Router(hub.sink_for)
    server = await started(hub)
    try:
        async with aiohttp.ClientSession() as client:
            leaving = await client.ws_connect(server.make_url("/ws?session_id=s"))
            staying = await client.ws_connect(server.make_url("/ws?session_id=s"))
            await asyncio.sleep(0.05)
            await leaving.close()
            for i in range(5):
                router.route([AudioFrame("s", bytes([i]))])
            got = [(await staying.receive(timeout=5)).data for _ in range(5)]
            assert got == [bytes([i]) for i in range(5)]
            assert router.sink_errors == 0
            await staying.close()
    finally:
        await server.close()
