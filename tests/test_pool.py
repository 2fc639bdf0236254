"""Scaling out: /info, /health load, /metrics, and NodePool / `route --node --http` with failover."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from snowmux.control import NodeError
from snowmux.protocol import AudioFrame, Decoder, Event
from snowmux.protocol.auth import encode_auth
from snowmux.receiver import NodeLoad, NodePool, Router, penalty

from .audio_checks import dominant_frequency
from .node_helpers import NodeProcess, RouteProcess, call, free_port, snowmux

TOKEN = "pool-token"


# -- the penalty (unit) ---------------------------------------------------------------


def test_penalty_orders_nodes_by_sessions_cpu_and_frame_trouble() -> None:
    idle = NodeLoad()
    two = NodeLoad(playing=2)
    busy_cpu = NodeLoad(playing=2, cpu_load=0.5)
    late = NodeLoad(playing=2, frames_late=300)
    dropping = NodeLoad(playing=2, frames_dropped=300)
    assert penalty(idle) == 0
    assert penalty(two) == 2
    ranked = sorted([dropping, busy_cpu, late, two, idle], key=penalty)
    assert ranked == [idle, two, busy_cpu, late, dropping]
    # 5 % of two sessions' frames late in the last minute: 1.03^25 x 300 - 300 on top.
    assert penalty(late) == pytest.approx(2 + 1.03**25 * 300 - 300)
    assert penalty(busy_cpu) == pytest.approx(2 + 1.05**50 * 10 - 10)
    # Exponential: the CPU term grows faster than linearly, so a loaded node with few
    # sessions loses to a cool node with many.
    assert penalty(NodeLoad(playing=1, cpu_load=0.9)) > penalty(NodeLoad(playing=50, cpu_load=0.2))
    # All of a minute's frames is the cap of each frame term.
    assert penalty(NodeLoad(frames_dropped=3000)) == penalty(NodeLoad(frames_dropped=10**6))
    # The same trouble spread over more sessions weighs less per session.
    assert penalty(NodeLoad(playing=10, frames_late=300)) - 10 < penalty(late) - 2
    assert NodeLoad.from_health(
        {
            "sessions": {"active": 5, "playing": 3, "paused": 2},
            "cpu_load": 0.25,
            "last_minute": {"frames_late": 7, "frames_dropped": 1},
        }
    ) == NodeLoad(playing=3, cpu_load=0.25, frames_late=7, frames_dropped=1)


# -- the node side ------------------------------------------------------------------------


@pytest.mark.spec("N1")
async def test_info_health_and_metrics(tmp_path: Path) -> None:
    args = ("--token", TOKEN, "--codec-processes", "1", "--tcp", "127.0.0.1:0")
    with NodeProcess(tmp_path, *args) as node:
        status, info = await call(node.url, "GET", "/info", token=TOKEN)
        assert status == 200
        assert info["protocol"] == "snowmux/1"
        assert info["version"]
        assert info["stream"]["unix"] == str(node.socket_path)
        host, _, port = info["stream"]["tcp"].rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0  # the bound port, not the asked-for 0
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(encode_auth(TOKEN))  # a node with a token waits for it (SPEC.md [R1])
        (hello, *_) = Decoder().feed(await reader.read(4096))
        writer.close()
        assert isinstance(hello, Event) and hello.type == "hello"
        assert info["formats"] == ["pcm", "opus", "web", "opus-packets"]
        assert info["limits"]["max_sessions"] == 256
        assert info["codec_processes"] == 1
        assert (await call(node.url, "GET", "/info"))[0] == 401
        status, _ = await call(
            node.url, "POST", "/session/m/play", {"url": "tone:440?seconds=2.5"}, token=TOKEN
        )
        assert status == 200

        async def finished() -> bool:
            _, body = await call(node.url, "GET", "/session/m/status", token=TOKEN)
            return bool(body["state"] == "finished")

        await wait_until(finished, 20, "the playback's end")
        await asyncio.sleep(1.1)  # one more load sample after the end
        status, health = await call(node.url, "GET", "/health", token=TOKEN)
        assert 0 < health["cpu_load"] <= 1.0
        assert health["last_minute"] == {"frames_late": 0, "frames_dropped": 0} or set(
            health["last_minute"]
        ) == {"frames_late", "frames_dropped"}
        status, denied = await call(node.url, "GET", "/metrics")
        assert status == 401 and denied["status"] == "error"
        import aiohttp

        async with (
            aiohttp.ClientSession() as client,
            client.get(
                node.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
            ) as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    sent = families["snowmux_frames_sent"].samples[0].value
    assert sent >= 120  # 2.5 s of 20 ms frames (ready, then 125 frames)
    assert "snowmux_frames_dropped" in families and "snowmux_frames_late" in families
    states = {s.labels["state"]: s.value for s in families["snowmux_sessions"].samples}
    assert states.get("finished") == 1
    lateness = families["snowmux_frame_lateness_seconds"]
    count = next(s.value for s in lateness.samples if s.name.endswith("_count"))
    assert count >= 100  # every paced frame after the prebuffer burst
    first = families["snowmux_play_to_first_frame_seconds"]
    assert next(s.value for s in first.samples if s.name.endswith("_count")) == 1
    cpu = {s.labels["process"]: s.value for s in families["snowmux_cpu_seconds"].samples}
    assert cpu["node"] > 0 and cpu["codec_workers"] > 0
    assert families["snowmux_receivers"].samples[0].value == 0


# -- helpers for pools --------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (a node's codec workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def kill_node(node: NodeProcess) -> None:
    """kill -9 the node and its codec workers, as a crashed machine would lose them."""
    workers = children(node.pid)
    assert workers, "a node runs its codec workers as child processes"
    for pid in [node.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    assert node.process is not None
    node.process.wait(5)


def wav_seconds_and_windows(path: Path) -> tuple[float, list[float]]:
    with wave.open(str(path)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2).mean(axis=1)
    size = 48000 // 4
    windows = [
        dominant_frequency(samples[i : i + size]) for i in range(0, len(samples) - size + 1, size)
    ]
    return len(samples) / 48000, windows


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def node_states(route_url: str) -> dict[str, str]:
    status, body = await call(route_url, "GET", "/nodes", token=TOKEN)
    assert status == 200, body
    return {n["url"]: n["state"] for n in body["nodes"]}


@pytest.fixture
def three_nodes(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    nodes = []
    try:
        for index in range(3):
            workdir = tmp_path / f"node{index}"
            workdir.mkdir()
            node = NodeProcess(
                workdir,
                "--http",
                f"127.0.0.1:{free_port()}",
                "--token",
                TOKEN,
                "--codec-processes",
                "1",
            )
            nodes.append(node.start())
        yield nodes
    finally:
        for node in nodes:
            node.stop()


# -- the CI test: 3 nodes, 6 sessions, kill -9 the busiest ------------------------------------

TONES = {f"s{i}": 300 + 100 * i for i in range(6)}
SECONDS = 8.0


@pytest.mark.slow
@pytest.mark.spec("N2", "N3")
async def test_failover_three_nodes_six_sessions(
    three_nodes: list[NodeProcess], tmp_path: Path
) -> None:
    started = time.monotonic()
    route_port = free_port()
    route_url = f"http://127.0.0.1:{route_port}"
    node_args = [arg for node in three_nodes for arg in ("--node", node.url)]
    with RouteProcess(
        tmp_path / "route", None, *node_args, "--http", f"127.0.0.1:{route_port}", "--token", TOKEN
    ) as route:
        await route.wait_log("control API on the pool")
        await wait_until(
            lambda: _all_up(route_url, len(three_nodes)), 10, "every node up in GET /nodes"
        )
        # A node's start-up (imports, codec workers) counts in its 10 s CPU window;
        # let it pass so the placement compares nodes at rest (bounded wait).
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: _all_cool(route_url), 12, "idle nodes")
        placed: dict[str, str] = {}
        for session_id, tone in TONES.items():
            status, body = await call(
                route_url,
                "POST",
                f"/session/{session_id}/play",
                {"url": f"tone:{tone}?seconds={SECONDS}", "format": "pcm", "volume": 1.0},
                token=TOKEN,
            )
            assert status == 200, body
            placed[session_id] = body["node"]
        assert len(set(placed.values())) >= 2, placed
        status, listing = await call(route_url, "GET", "/sessions", token=TOKEN)
        assert {e["session_id"]: e["node"] for e in listing["sessions"]} == placed

        await asyncio.sleep(2.5)
        counts = {url: list(placed.values()).count(url) for url in set(placed.values())}
        busiest_url = max(counts, key=lambda url: counts[url])
        busiest = next(node for node in three_nodes if node.url == busiest_url)
        moved = [sid for sid, url in placed.items() if url == busiest_url]
        kill_node(busiest)
        killed_at = time.monotonic()
        await wait_until(
            lambda: _state_is(route_url, busiest_url, "down"), 5, "the killed node down"
        )
        for session_id in moved:
            await route.wait_log(f"session {session_id} ready", count=2, timeout=10)
        # From the kill (the last frame of the dead node) to the new node's first
        # frames: ~1.0 s to decide the node is down, then a play; README says < 2 s,
        # measured ~1.2-1.5 s here; the bound is loose for a loaded CI machine.
        assert time.monotonic() - killed_at < 3.5

        busiest.start()  # same HTTP port and socket: the same node URL
        await wait_until(
            lambda: _state_is(route_url, busiest_url, "up"), 15, "the restarted node up"
        )
        # Its codec workers' start-up counts in the node's 10 s cpu_load, which
        # the penalty reads: it ranks best once that has passed.
        await wait_until(
            lambda: _is_best(route_url, busiest_url), 15, "the restarted node ranked best"
        )
        status, body = await call(
            route_url,
            "POST",
            "/session/late-comer/play",
            {"url": "tone:1500?seconds=1", "format": "pcm"},
            token=TOKEN,
        )
        assert status == 200 and body["node"] == busiest_url, body

        for session_id in [*TONES, "late-comer"]:
            await route.wait_log(f"session {session_id} finished", timeout=20)
        log = route.log()
    for session_id, tone in TONES.items():
        files = route.files(session_id)
        assert len(files) == (2 if session_id in moved else 1), (session_id, files)
        total = 0.0
        for path in files:
            seconds, windows = wav_seconds_and_windows(path)
            total += seconds
            assert all(abs(f - tone) <= 8 for f in windows), (session_id, path.name, windows)
        assert abs(total - SECONDS) <= 1.0, (session_id, total)
        # The move resumed at the last frame received + 20 ms: nothing skipped or
        # repeated beyond 100 ms (SPEC.md [N2]); measured: exactly 8.0 s each.
        assert abs(total - SECONDS) <= 0.1, (session_id, total)
    for session_id in moved:
        lines = [  # the route's one line per event
            line for line in log.splitlines() if f"snowmux.route: session {session_id} " in line
        ]
        kinds = [line.split(f"session {session_id} ")[1].split()[0] for line in lines]
        # moved, then the new node's ready, and the session finished exactly once
        assert kinds[kinds.index("moved") + 1] == "ready", kinds
        assert kinds.count("finished") == 1, kinds
        assert f"session {session_id} moved from={busiest_url}" in log
    assert time.monotonic() - started < 60


async def _all_up(route_url: str, count: int) -> bool:
    states = await node_states(route_url)
    return len(states) == count and set(states.values()) == {"up"}


async def _all_cool(route_url: str) -> bool:
    _, body = await call(route_url, "GET", "/nodes", token=TOKEN)
    return all(n["cpu_load"] < 0.03 for n in body["nodes"])


async def _state_is(route_url: str, url: str, state: str) -> bool:
    return (await node_states(route_url)).get(url) == state


async def _is_best(route_url: str, url: str) -> bool:
    status, body = await call(route_url, "GET", "/nodes", token=TOKEN)
    assert status == 200, body
    up = [n for n in body["nodes"] if n["state"] == "up"]
    return min(up, key=lambda n: n["penalty"])["url"] == url


# -- a restarted route adopts the running sessions -----------------------------------------------


@pytest.mark.slow
async def test_restarted_route_adopts_sessions_and_stops_one(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path, "--token", TOKEN, "--codec-processes", "1").start()
    route_port = free_port()
    route_url = f"http://127.0.0.1:{route_port}"
    args = ("--node", node.url, "--http", f"127.0.0.1:{route_port}", "--token", TOKEN)
    try:
        # No --socket: the pool finds the node's stream through its /info.
        first = RouteProcess(tmp_path / "first", None, *args)
        ws_port = free_port()
        web_port = free_port()
        second = RouteProcess(
            tmp_path / "second",
            None,
            *args,
            "--ws",
            f"127.0.0.1:{ws_port}",
            "--web",
            f"127.0.0.1:{web_port}",
        )
        with first:
            await first.wait_log("control API on the pool")
            for session_id in ("keep", "stop-me"):
                status, body = await call(
                    route_url,
                    "POST",
                    f"/session/{session_id}/play",
                    {"url": "tone:440?seconds=30", "format": "opus"},
                    token=TOKEN,
                )
                assert status == 200 and body["node"] == node.url, body
            # The route answers as the node does, errors included.
            for method, path, body in (
                ("POST", "/session/x/play", {"url": ""}),
                ("POST", "/session/x/play", [1]),
                ("POST", "/session/x/pause", None),
                ("GET", "/session/" + "x" * 200 + "/status", None),
            ):
                via_route = await call(route_url, method, path, body, token=TOKEN)
                direct = await call(node.url, method, path, body, token=TOKEN)
                assert via_route == direct, (path, via_route, direct)
                assert 400 <= via_route[0] < 500
            assert (await call(route_url, "GET", "/sessions"))[0] == 401
            await first.wait_log("session keep ready")
        # The first route is gone; its sessions play on.
        with second:
            await second.wait_log("control API on the pool")
            status, listing = await call(route_url, "GET", "/sessions", token=TOKEN)
            active = {e["session_id"]: e for e in listing["sessions"] if e["state"] == "playing"}
            assert set(active) == {"keep", "stop-me"}
            assert all(e["node"] == node.url for e in active.values())
            # The pool's sessions reach the route's other sinks too (--ws here).
            import aiohttp

            async with (
                aiohttp.ClientSession() as client,
                client.ws_connect(f"ws://127.0.0.1:{ws_port}/ws?session_id=keep") as ws,
            ):
                message = await ws.receive(timeout=10)
                assert message.type == aiohttp.WSMsgType.BINARY
            # ... and the playground's buttons drive the pool (its answers carry "node").
            status, body = await call(
                f"http://127.0.0.1:{web_port}", "GET", "/api/session/keep/status"
            )
            assert status == 200 and body["node"] == node.url
            status, body = await call(route_url, "POST", "/session/stop-me/stop", token=TOKEN)
            assert status == 200 and body["node"] == node.url
            await second.wait_log("session stop-me finished reason=stopped")
            status, body = await call(node.url, "GET", "/session/stop-me/status", token=TOKEN)
            assert body["state"] == "stopped"
            status, body = await call(node.url, "GET", "/session/keep/status", token=TOKEN)
            assert body["state"] == "playing"
            shown = snowmux("status", "--node", route_url, "--token", TOKEN)
            assert shown.returncode == 0 and f'"node": "{node.url}"' in shown.stdout
            await call(route_url, "POST", "/session/keep/stop", token=TOKEN)
        # The adopted session's audio went on in a new file of the second route.
        assert second.files("keep")
    finally:
        node.stop()


# -- the library: frames(), and no node up for too long -------------------------------------------


class Recording:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_frame(self, frame: AudioFrame) -> None:
        pass

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_interrupted(self, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.slow
@pytest.mark.spec("N3")
async def test_pool_library_frames_restart_moves_back_then_error_when_none_up(
    tmp_path: Path,
) -> None:
    port_args = ("--http", f"127.0.0.1:{free_port()}", "--token", TOKEN, "--codec-processes", "1")
    node = NodeProcess(tmp_path, *port_args).start()
    recording = Recording()
    router = Router()
    router.register("lib", recording)  # frames() below joins it, as with a Receiver
    try:
        async with NodePool([node.url], router, token=TOKEN, failover_wait=20.0) as pool:
            assert [n["state"] for n in pool.describe_nodes()] == ["up"]
            reply = await pool.play("lib", "tone:440?seconds=30", format="pcm", volume=0.5)
            assert reply["node"] == node.url
            frames = []
            async for frame in pool.frames("lib"):
                frames.append(frame)
                if len(frames) == 30:
                    break
            assert all(len(f.payload) == 3840 for f in frames)
            status = await pool.status("lib")
            assert status["state"] == "playing" and status["node"] == node.url
            # The only node dies and comes back: the session waits for it, then goes on.
            kill_node(node)
            await wait_until(lambda: pool.describe_nodes()[0]["state"] == "down", 5, "down")
            assert (await pool.status("lib"))["state"] == "moving"
            node.start()
            await wait_until(
                lambda: sum(e.type == "ready" for e in recording.events) == 2, 20, "a new ready"
            )
            kinds = [e.type for e in recording.events]
            assert kinds[-2:] == ["moved", "ready"], kinds
            moved, ready = recording.events[-2:]
            assert moved.data["from"] == moved.data["to"] == node.url
            assert moved.data["position_secs"] == ready.data["position_secs"] >= 0.6
            status = await pool.status("lib")
            assert status["state"] == "playing" and status["volume"] == 0.5
            # It dies again and stays dead: after failover_wait, an error event.
            pool.failover_wait = 1.0
            kill_node(node)
            await wait_until(lambda: recording.events[-1].type == "error", 8, "the error event")
            assert "no node" in recording.events[-1].data["message"]
            assert pool.describe_nodes()[0]["state"] == "down"
    finally:
        node.stop()


def test_live_table_shows_each_sessions_node() -> None:
    from snowmux.receiver.pool import PooledSession
    from snowmux.receiver.route import render_pool_table
    from snowmux.receiver.stats import SessionStats

    async def render() -> str:
        pool = NodePool(["http://127.0.0.1:1", "http://127.0.0.1:2"])
        pool.sessions["alice"] = PooledSession("alice", pool.nodes[1], {"url": "tone:440"})
        stats = SessionStats("alice", state="playing", format="pcm", frames=50)
        return render_pool_table([stats], pool)

    table = asyncio.run(render())
    assert "0/2 nodes up" in table
    row = next(line for line in table.splitlines() if line.startswith("alice"))
    assert "http://127.0.0.1:2" in row and "playing" in row


@pytest.mark.spec("N2")
def test_only_the_owner_node_feeds_a_sessions_sinks() -> None:
    from snowmux.receiver.pool import PooledSession

    async def scenario() -> tuple[list[str], int, PooledSession]:
        recording = Recording()
        router = Router(lambda session_id: recording)
        pool = NodePool(["http://127.0.0.1:9", "http://127.0.0.1:10"], router)
        old, new = pool.nodes
        session = PooledSession("s", new, {"url": "tone:440", "format": "pcm"}, start=3.0)
        pool.sessions["s"] = session
        ready = Event.create("ready", "s", format="pcm", position_secs=3.0)
        pool.on_event(old, ready)  # the node the session moved away from still plays it
        pool.on_frame(old, AudioFrame("s", bytes(3840)))
        pool.on_event(new, ready)
        for _ in range(5):
            pool.on_frame(new, AudioFrame("s", bytes(3840)))
        pool.on_event(new, Event.create("finished", "s", reason="replaced"))
        still_active = session.active
        pool.on_event(new, Event.create("finished", "s", reason="finished"))
        await asyncio.sleep(0.2)  # the stop sent to the old node fails quietly (nothing listens)
        await pool.close()
        assert still_active and not session.active
        return [e.type for e in recording.events], pool.dropped_frames, session

    kinds, dropped, session = asyncio.run(scenario())
    assert kinds == ["ready", "finished", "finished"]
    assert dropped == 1
    assert session.position == pytest.approx(3.0 + 5 * 0.020)


def test_stream_endpoint_from_info(tmp_path: Path) -> None:
    from snowmux.receiver.pool_node import NodeInfo, default_endpoint

    socket_path = tmp_path / "node.sock"
    socket_path.touch()
    both = NodeInfo.from_json(
        {"protocol": "snowmux/1", "stream": {"unix": str(socket_path), "tcp": "0.0.0.0:8181"}}
    )
    # On this machine: the Unix socket; elsewhere: TCP, at the URL's host when the
    # node listens on every address.
    assert default_endpoint("http://127.0.0.1:8180", both).unix_path == socket_path
    assert default_endpoint("http://audio1:8180", both).tcp == ("audio1", 8181)
    tcp_only = NodeInfo.from_json({"stream": {"unix": None, "tcp": "10.0.0.5:9000"}})
    assert default_endpoint("http://127.0.0.1:8180", tcp_only).tcp == ("10.0.0.5", 9000)
    gone = NodeInfo.from_json({"stream": {"unix": str(tmp_path / "missing"), "tcp": "[::1]:7"}})
    assert default_endpoint("http://localhost:8180", gone).tcp == ("::1", 7)
    with pytest.raises(ValueError, match="no stream"):
        default_endpoint("http://x:1", NodeInfo.from_json({"stream": {}}))
    with pytest.raises(ValueError, match="stream"):
        NodeInfo.from_json({"status": "error"})


@pytest.mark.slow
@pytest.mark.spec("N2", "N3")
async def test_node_that_says_hello_without_our_playback_loses_it_to_a_replay(
    tmp_path: Path,
) -> None:
    from snowmux.receiver import Endpoint
    from snowmux.receiver.pool import PooledSession
    from snowmux.receiver.pool_node import NodeInfo

    def over_tcp(url: str, info: NodeInfo, token: str | None) -> Endpoint:
        assert info.tcp is not None
        host, _, port = info.tcp.rpartition(":")
        return Endpoint(tcp=(host, int(port)))

    node = NodeProcess(tmp_path, "--codec-processes", "1", "--tcp", "127.0.0.1:0").start()
    recording = Recording()
    router = Router(lambda session_id: recording)
    try:
        async with NodePool([node.url], router, endpoint_factory=over_tcp) as pool:
            (pooled,) = pool.nodes
            assert pooled.receiver is not None and pooled.receiver.endpoint.tcp is not None
            # What the pool believes after a node restarted faster than the 1 s rule:
            # "ghost" plays there, 1.5 s in; the node's stream says hello again.
            pool.sessions["ghost"] = PooledSession(
                "ghost", pooled, {"url": "tone:660?seconds=3", "format": "pcm"}, start=1.5
            )
            pool.on_hello(pooled)
            await wait_until(
                lambda: [e.type for e in recording.events][:2] == ["moved", "ready"], 10, "a replay"
            )
            moved, ready = recording.events[:2]
            assert moved.data["position_secs"] == ready.data["position_secs"] == 1.5
            assert (await pool.health())["nodes"] == {"up": 1, "total": 1}
            status = await pool.status("ghost")
            assert status["node"] == node.url and status["url"] == "tone:660?seconds=3"
    finally:
        node.stop()


def test_position_counts_audio_frames_only() -> None:
    from snowmux.receiver.pool import PooledSession

    def page(packet: bytes) -> bytes:  # one Ogg page holding one packet (RFC 3533)
        return b"OggS" + bytes(22) + bytes([1, len(packet)]) + packet

    async def count() -> tuple[float, float, float]:
        pool = NodePool(["http://127.0.0.1:9"])
        (node,) = pool.nodes
        opus = PooledSession("o", node, {"url": "u", "format": "opus"}, start=2.0)
        for payload in (page(b"OpusHead" + bytes(11)), page(b"OpusTags" + bytes(8))):
            opus.count(payload)
        for _ in range(10):
            opus.count(page(b"\xfc" + bytes(100)))
        packets = PooledSession("p", node, {"url": "u", "format": "opus-packets"})
        for payload in [b"\xfc" + bytes(50)] * 4 + [b"\xf8\xff\xfe"] * 5:
            packets.count(payload)
        pcm = PooledSession("c", node, {"url": "u"}, start=1.0)
        pcm.count(bytes(3840))
        await pool.close()
        return opus.position, packets.position, pcm.position

    assert asyncio.run(count()) == pytest.approx((2.2, 0.08, 1.02))


@pytest.mark.slow
@pytest.mark.spec("A2", "A3")
async def test_the_pool_api_guards_like_the_node(tmp_path: Path) -> None:
    """route --http on loopback without a token: 415 for non-JSON posts, 403 for rebinding."""
    node = NodeProcess(tmp_path, "--codec-processes", "1").start()
    route_port = free_port()
    route_url = f"http://127.0.0.1:{route_port}"
    try:
        with RouteProcess(
            tmp_path / "route", None, "--node", node.url, "--http", f"127.0.0.1:{route_port}"
        ) as route:
            await route.wait_log("control API on the pool")
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            status, reply = await call(
                route_url, "POST", "/session/x/play", data=b"url=tone:440", headers=form
            )
            assert status == 415 and reply["status"] == "error", reply
            status, reply = await call(route_url, "GET", "/nodes", headers={"Host": "evil.example"})
            assert status == 403 and "rebinding" in reply["message"], reply
            origin = {"Origin": "http://evil.example"}
            status, reply = await call(route_url, "POST", "/session/x/stop", headers=origin)
            assert status == 403 and "cross-site" in reply["message"], reply
            status, reply = await call(route_url, "GET", "/nodes")
            assert status == 200 and reply["nodes"][0]["url"] == node.url
    finally:
        node.stop()


@pytest.mark.slow
async def test_pool_player_controls_and_queue_follow_a_move(tmp_path: Path) -> None:
    """NodePool has the control client's PATCH and queue methods; a move keeps their effect."""
    args = ("--token", TOKEN, "--codec-processes", "1")
    first = NodeProcess(tmp_path / "a", *args, "--http", f"127.0.0.1:{free_port()}")
    second = NodeProcess(tmp_path / "b", *args, "--http", f"127.0.0.1:{free_port()}")
    for node in (first, second):
        node.workdir.mkdir()
        node.start()
    recording = Recording()
    router = Router()
    router.register("q", recording)
    try:
        async with NodePool([first.url, second.url], router, token=TOKEN) as pool:
            reply = await pool.queue("q", "tone:440?seconds=3", format="pcm")
            assert reply["status"] == "queued"
            home = reply["node"]
            assert (await pool.queue("q", "tone:660?seconds=2"))["position"] == 1
            status = await pool.volume("q", 0.5)
            assert status["volume"] == 0.5 and status["node"] == home
            await pool.seek("q", 1.0)
            await wait_until(lambda: any(e.type == "seeked" for e in recording.events), 5, "seeked")
            listing = await pool.queue_list("q")
            assert [t["url"] for t in listing["tracks"]] == [
                "tone:440?seconds=3",
                "tone:660?seconds=2",
            ]
            with pytest.raises(NodeError) as unknown:
                await pool.update("nobody", volume=1.0)
            assert unknown.value.status == 404
            await asyncio.sleep(0.5)
            kill_node(first if home == first.url else second)
            await wait_until(lambda: any(e.type == "moved" for e in recording.events), 8, "moved")
            moved = next(e for e in recording.events if e.type == "moved")
            assert moved.data["position_secs"] >= 1.0  # after the seek, not from 0
            await wait_until(lambda: recording.events[-1].type == "ready", 8, "the new ready")
            status = await pool.status("q")
            assert status["node"] != home and status["volume"] == 0.5
            listing = await pool.queue_list("q")  # the rest of the queue came along
            assert [t["url"] for t in listing["tracks"]][-1] == "tone:660?seconds=2"
            await pool.skip("q")
            await wait_until(
                lambda: any(
                    e.type == "track_start" and e.data.get("url") == "tone:660?seconds=2"
                    for e in recording.events
                ),
                8,
                "the queued track after the move",
            )
    finally:
        first.stop()
        second.stop()
