"""The control API's contract: routes, bodies and every error code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from snowmux.testing import write_tone_file

from .audio_checks import dominant_frequency
from .node_helpers import NodeProcess, Recorder, call

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    workdir = tmp_path_factory.mktemp("api")
    with NodeProcess(
        workdir, "--max-sessions", "2", "--allow-remote", env={"SNOWMUX_TOKEN": TOKEN}
    ) as node:
        yield node


async def api(
    node: NodeProcess, method: str, path: str, json: object = None, **kw: object
) -> tuple[int, dict]:
    return await call(node.url, method, path, json, token=kw.pop("token", TOKEN), **kw)  # type: ignore[arg-type]


async def test_token_is_required_everywhere(node: NodeProcess) -> None:
    for method, path in (
        ("GET", "/health"),
        ("GET", "/sessions"),
        ("POST", "/session/a/stop"),
        ("POST", "/session/a/play"),
    ):
        for token in (None, "wrong", TOKEN + "x"):
            status, body = await call(node.url, method, path, {"url": "tone:440"}, token=token)
            assert status == 401 and body["status"] == "error", (method, path, token)
    status, body = await api(node, "GET", "/health")
    assert status == 200 and body["status"] == "ok"


@pytest.mark.parametrize(
    ("session_id", "fragment"),
    [("a%20b", "' '"), ("1234567890123456789012345", "never truncated"), ("caf%C3%A9", "index 3")],
)
async def test_bad_session_ids_are_400_never_truncated(
    node: NodeProcess, session_id: str, fragment: str
) -> None:
    for action in ("play", "stop", "pause", "resume"):
        status, body = await api(
            node, "POST", f"/session/{session_id}/{action}", {"url": "tone:440"}
        )
        assert status == 400 and fragment in body["message"], (action, body)
    status, body = await api(node, "GET", f"/session/{session_id}/status")
    assert status == 400


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "x",
        {"format": "pcm"},
        {"url": ""},
        {"url": 3},
        {"url": "tone:440", "format": "mp3"},
        {"url": "tone:440", "start_at": -1},
        {"url": "tone:440", "start_at": "1"},
        {"url": "tone:440", "volume": 5.5},  # Lavalink range 0-5
        {"url": "tone:440", "bitrate": 1000},
        {"url": "tone:440", "bitrate": 96000.5},
        {"url": "tone:0"},
        {"url": "tone:440?seconds=x"},
    ],
)
async def test_bad_bodies_are_400(node: NodeProcess, body: object) -> None:
    status, reply = await api(node, "POST", "/session/g1/play", body)
    assert status == 400 and reply["status"] == "error" and reply["message"]


async def test_malformed_json_is_400(node: NodeProcess) -> None:
    status, _reply = await api(node, "POST", "/session/g1/play", data=b"{not json")
    assert status == 400


@pytest.mark.parametrize(
    "url",
    [
        "concat:a.wav|b.wav",
        "pipe:0",
        "data:,x",
        "subfile:a.wav",
        "../x.wav",
        "/etc/passwd",
        "file:///etc/hosts",
        "gopher://x",
    ],
)
async def test_urls_outside_the_policy_are_403(node: NodeProcess, url: str) -> None:
    status, reply = await api(node, "POST", "/session/g1/play", {"url": url})
    assert status == 403 and reply["status"] == "error"


async def test_remote_urls_need_allow_remote(tmp_path: Path) -> None:
    with NodeProcess(tmp_path) as plain:
        status, reply = await call(
            plain.url, "POST", "/session/r/play", {"url": "http://127.0.0.1:9/a.wav"}
        )
        assert status == 403 and "--allow-remote" in reply["message"]


async def test_remote_http_media_plays_with_allow_remote(node: NodeProcess, tmp_path: Path) -> None:
    write_tone_file(tmp_path / "remote.wav", 1500, 0.5, 44_100, 2, "pcm_s16le")
    app = web.Application()
    app.router.add_static("/", tmp_path)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with Recorder(node.socket_path, TOKEN) as rx:
            status, reply = await api(
                node, "POST", "/session/remote/play", {"url": f"http://127.0.0.1:{port}/remote.wav"}
            )
            assert status == 200, reply
            await rx.wait_event("remote", "finished", timeout=20)
        assert dominant_frequency(rx.payload("remote")) == pytest.approx(1500, abs=5)
    finally:
        await runner.cleanup()


async def test_unknown_sessions_are_404_but_stop_is_idempotent(node: NodeProcess) -> None:
    for method, action in (("POST", "pause"), ("POST", "resume"), ("GET", "status")):
        status, reply = await api(node, method, f"/session/never-seen/{action}")
        assert status == 404 and reply["status"] == "error"
    for _ in range(2):
        status, reply = await api(node, "POST", "/session/never-seen/stop")
        assert status == 200 and reply == {"status": "stopped", "session_id": "never-seen"}


async def test_ended_sessions_report_status_and_refuse_pause_with_409(node: NodeProcess) -> None:
    async with Recorder(node.socket_path, TOKEN) as rx:
        status, reply = await api(
            node, "POST", "/session/short/play", {"url": "tone:440?seconds=0.2"}
        )
        assert (status, reply) == (200, {"status": "playing", "session_id": "short"})
        await rx.wait_event("short", "finished")
    status, reply = await api(node, "GET", "/session/short/status")
    assert status == 200 and reply["state"] == "finished" and reply["frames_sent"] == 10
    for key in (
        "url",
        "format",
        "position_secs",
        "frames_sent",
        "bytes_sent",
        "frames_dropped",
        "frames_late",
    ):
        assert key in reply
    status, reply = await api(node, "POST", "/session/short/pause")
    assert status == 409


async def test_oversized_body_is_413(node: NodeProcess) -> None:
    status, reply = await api(
        node, "POST", "/session/g1/play", data=b'{"url":"' + b"x" * 200_000 + b'"}'
    )
    assert status == 413 and reply["status"] == "error"


async def test_max_sessions_is_429_but_replacing_is_allowed(node: NodeProcess) -> None:
    for session_id in ("cap-1", "cap-2"):
        status, _ = await api(
            node, "POST", f"/session/{session_id}/play", {"url": "tone:440?seconds=20"}
        )
        assert status == 200
    try:
        status, reply = await api(
            node, "POST", "/session/cap-3/play", {"url": "tone:440?seconds=20"}
        )
        assert status == 429 and "max-sessions" in reply["message"]
        status, _ = await api(node, "POST", "/session/cap-2/play", {"url": "tone:660?seconds=20"})
        assert status == 200
        status, body = await api(node, "GET", "/sessions")
        assert {
            s["session_id"] for s in body["sessions"] if s["state"] in ("starting", "playing")
        } >= {"cap-1", "cap-2"}
        status, health = await api(node, "GET", "/health")
        assert health["sessions"]["active"] == 2 and health["sessions"]["max"] == 2
        assert {"uptime_secs", "receivers", "totals", "lateness_ms"} <= set(health)
    finally:
        for session_id in ("cap-1", "cap-2"):
            await api(node, "POST", f"/session/{session_id}/stop")
        await asyncio.sleep(0.1)


async def test_unknown_routes_and_methods_are_json_errors(node: NodeProcess) -> None:
    status, reply = await api(node, "GET", "/nope")
    assert status == 404 and reply["status"] == "error"
    status, reply = await api(node, "GET", "/session/a/play")
    assert status == 405 and reply["status"] == "error"


async def test_format_defaults_to_pcm(node: NodeProcess) -> None:
    async with Recorder(node.socket_path, TOKEN) as rx:
        status, _ = await api(
            node, "POST", "/session/default-fmt/play", {"url": "tone:440?seconds=0.1"}
        )
        assert status == 200
        ready = await rx.wait_event("default-fmt", "ready")
    assert ready.data["format"] == "pcm"


async def test_ids_with_slashes_travel_percent_encoded_and_null_format_is_pcm(
    node: NodeProcess,
) -> None:
    async with Recorder(node.socket_path, TOKEN) as rx:
        status, reply = await api(
            node, "POST", "/session/guild%2F1/play", {"url": "tone:440?seconds=0.1", "format": None}
        )
        assert (status, reply["session_id"]) == (200, "guild/1")
        ready = await rx.wait_event("guild/1", "ready")
    assert ready.data["format"] == "pcm"
    status, reply = await api(node, "GET", "/session/guild%2F1/status")
    assert status == 200 and reply["session_id"] == "guild/1"
