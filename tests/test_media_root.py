"""No local play reads a byte outside --media-root (SPEC.md section 9, [M1], [M2]).

Each attack builds its vector in a temp dir: a media root holding the bait
file, and beside it an ``outside/`` folder with a secret tone (1234 Hz) that
must never reach a receiver. Every test runs a real `snowmux serve`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from .audio_checks import dominant_frequency, write_tone_file
from .node_helpers import NodeProcess, Recorder, call

pytestmark = pytest.mark.slow
SECRET_HZ = 1234


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("escape")
    (base / "root").mkdir()
    outside = base / "outside"
    outside.mkdir()
    write_tone_file(outside / "secret.wav", SECRET_HZ, 1.0, 48_000, 2, "pcm_s16le")
    write_tone_file(outside / "secret.ts", SECRET_HZ, 1.0, 48_000, 2, "mp2", "mpegts")
    os.symlink(outside, base / "root" / "link")
    write_tone_file(base / "root" / "ok.wav", 440, 0.3, 44_100, 2, "pcm_s16le")
    return base


@pytest.fixture(scope="module")
def node(layout: Path) -> Iterator[NodeProcess]:
    with NodeProcess(layout, media_root=layout / "root") as process:
        yield process


def _hls(*segments: str) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for segment in segments:
        lines += ["#EXTINF:1.0,", segment]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def _vectors(base: Path) -> dict[str, str]:
    """file name inside the root -> its content, each one reaching for the secret."""
    outside = base / "outside"
    return {
        "rel.m3u8": _hls("../outside/secret.ts"),
        "abs.m3u8": _hls(str(outside / "secret.ts")),
        "fileurl.m3u8": _hls(f"file://{outside / 'secret.ts'}"),
        "symlinked.m3u8": _hls("link/secret.ts"),
        "disguised-hls.wav": _hls("link/secret.ts"),
        "list.ffconcat": f"ffconcat version 1.0\nfile '{outside / 'secret.wav'}'\n",
        "concat-as.wav": "ffconcat version 1.0\nfile link/secret.wav\n",
        "concat-rel.mp3": "ffconcat version 1.0\nfile ../outside/secret.wav\n",
        "plain-concat.wav": f"file '{outside / 'secret.wav'}'\n",
        # not playlists, but not audio containers either: the whitelist refuses them
        "subtitles.mp3": "1\n00:00:00,000 --> 00:00:01,000\nhello\n\n",
        "captions.wav": "WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n",
    }


async def _attempt(node: NodeProcess, session_id: str, url: str) -> tuple[int, dict, Recorder]:
    async with Recorder(node.socket_path) as rx:
        status, reply = await call(node.url, "POST", f"/session/{session_id}/play", {"url": url})
        if status == 200:
            await rx.wait_for(
                lambda: bool(rx.events(session_id, "finished") or rx.events(session_id, "error"))
            )
        else:
            await rx.wait_event(session_id, "error")
    return status, reply, rx


@pytest.mark.spec("M1")
@pytest.mark.parametrize("name", sorted(_vectors(Path("/x"))))
async def test_playlists_and_lists_never_play_a_file_outside_the_root(
    node: NodeProcess, layout: Path, name: str
) -> None:
    (layout / "root" / name).write_text(_vectors(layout)[name])
    status, reply, rx = await _attempt(node, f"esc-{name}", name)
    assert not rx.frames(f"esc-{name}"), "a frame of the outside file was sent"
    assert status == 422 and reply["status"] == "error", (status, reply)


@pytest.mark.spec("M1")
@pytest.mark.parametrize("url", ["link/secret.wav", "link/../link/secret.ts", "root-link.wav"])
async def test_symlinks_out_of_the_root_are_403(node: NodeProcess, layout: Path, url: str) -> None:
    link = layout / "root" / "root-link.wav"
    if not link.is_symlink():
        os.symlink(layout / "outside" / "secret.wav", link)
    status, reply = await call(node.url, "POST", "/session/sym/play", {"url": url})
    assert status == 403 and reply["status"] == "error"


async def test_audio_inside_the_root_still_plays(node: NodeProcess) -> None:
    status, _reply, rx = await _attempt(node, "inside", "ok.wav")
    assert status == 200
    assert dominant_frequency(rx.payload("inside")) == pytest.approx(440, abs=5)


@pytest.mark.spec("M2")
async def test_remote_hls_plays_http_segments_but_never_file_ones(
    layout: Path, tmp_path: Path
) -> None:
    served = tmp_path / "www"
    served.mkdir()
    write_tone_file(served / "seg.ts", 880, 1.0, 48_000, 2, "mp2", "mpegts")
    secret_url = f"file://{layout / 'outside' / 'secret.wav'}"

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound(secret_url)

    app = web.Application()
    app.router.add_get("/redirect.wav", redirect)
    app.router.add_static("/", served)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    (served / "good.m3u8").write_text(_hls(f"{base}/seg.ts"))
    (served / "evil.m3u8").write_text(_hls(f"file://{layout / 'outside' / 'secret.ts'}"))
    (served / "evil-abs.m3u8").write_text(_hls(str(layout / "outside" / "secret.ts")))
    try:
        with NodeProcess(tmp_path, "--allow-remote", media_root=layout / "root") as node:
            status, _reply, rx = await _attempt(node, "good", f"{base}/good.m3u8")
            assert status == 200
            assert dominant_frequency(rx.payload("good")) == pytest.approx(880, abs=5)
            for name in ("evil.m3u8", "evil-abs.m3u8", "redirect.wav"):
                status, reply, rx = await _attempt(node, name, f"{base}/{name}")
                assert not rx.frames(name), name
                assert status == 422 and reply["status"] == "error", (name, reply)
    finally:
        await runner.cleanup()
        await asyncio.sleep(0)


@pytest.mark.spec("M1")
def test_a_directory_swapped_for_a_symlink_after_the_check_is_refused_on_open(
    tmp_path: Path,
) -> None:
    from snowmux.node.media import MediaPolicy
    from snowmux.node.pipeline import DecodedAudio, MediaError, MediaProblem

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    write_tone_file(root / "sub" / "a.wav", 440, 0.2, 48_000, 2, "pcm_s16le")
    write_tone_file(outside / "a.wav", SECRET_HZ, 0.2, 48_000, 2, "pcm_s16le")
    source = MediaPolicy(root).resolve("sub/a.wav")  # checked while sub/ is a real folder
    (root / "sub").rename(tmp_path / "old-sub")
    os.symlink(outside, root / "sub")  # ...then swapped for a link out of the root
    with pytest.raises(MediaError) as caught:
        DecodedAudio(source).open()
    assert caught.value.problem is MediaProblem.REFUSED
    (root / "sub").unlink()
    os.symlink(outside / "a.wav", root / "sub")  # a file link in its place: O_NOFOLLOW
    with pytest.raises(MediaError):
        DecodedAudio(dataclasses.replace(source, target=str(root / "sub"))).open()


@pytest.mark.spec("A4")
async def test_a_silent_remote_server_fails_the_play_within_the_open_timeout(
    tmp_path: Path,
) -> None:
    from snowmux.defaults import MEDIA_OPEN_TIMEOUT_SECONDS

    held: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, read nothing, answer nothing

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with NodeProcess(tmp_path, "--allow-remote") as node:
            started = time.monotonic()
            status, reply = await call(
                node.url, "POST", "/session/slow/play", {"url": f"http://127.0.0.1:{port}/a.mp3"}
            )
            elapsed = time.monotonic() - started
    finally:
        for writer in held:
            writer.close()
        server.close()
    assert status == 422 and reply["status"] == "error", reply
    assert elapsed < MEDIA_OPEN_TIMEOUT_SECONDS + 5
