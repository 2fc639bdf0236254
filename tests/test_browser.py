"""The web playground in a real headless Chromium (Debian's), two pages as two users."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .node_helpers import ROOT, NodeProcess, RouteProcess, free_port

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SNOWMUX_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WEB_TOKEN = "tab-secret"

if not shutil.which(CHROMIUM):
    pytest.skip("Debian's chromium is missing (.ci/run installs it)", allow_module_level=True)
playwright = pytest.importorskip("playwright.async_api")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, str]]:
    workdir = tmp_path_factory.mktemp("browser")
    port = free_port()
    with (
        NodeProcess(workdir) as node,
        RouteProcess(
            workdir,
            node.socket_path,
            "--web",
            f"127.0.0.1:{port}",
            "--web-token",
            WEB_TOKEN,
            "--node",
            node.url,
        ) as route,
    ):
        asyncio.run(route.wait_log("web playground"))
        yield node, f"http://127.0.0.1:{port}"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright.async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


async def counters(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(
        "({...window.snowmux, events: window.snowmux.events})"
    )
    return result


async def wait_until(page: Any, expression: str, timeout: float = 15.0) -> None:
    await page.wait_for_function(expression, timeout=timeout * 1000)


async def open_user(browser: Any, base: str, session_id: str) -> Any:
    page = await browser.new_page()
    await page.goto(f"{base}/?session={session_id}&token={WEB_TOKEN}")
    await wait_until(page, "window.snowmux && window.snowmux.socket === 'subscribed'")
    return page


async def play(page: Any, url: str, audio_format: str = "web") -> None:
    await page.fill("#url", url)
    await page.select_option("#format", audio_format)
    await page.click("#play")


async def ws_stats(base: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{base}/api/stats", headers={"X-Snowmux-Token": WEB_TOKEN}) as response,
    ):
        stats: dict[str, Any] = await response.json()
        return stats["sessions"]


async def test_two_users_each_hear_only_their_own_tone(
    stack: tuple[NodeProcess, str], browser: Any
) -> None:
    _node, base = stack
    alice = await open_user(browser, base, "alice")
    bob = await open_user(browser, base, "bob-1234")
    await play(alice, "tone:440?seconds=60", "web")
    await play(bob, "tone:1000?seconds=60", "opus-packets")
    await wait_until(alice, "window.snowmux.framesDecoded > 120")
    await wait_until(bob, "window.snowmux.framesDecoded > 120")
    await asyncio.sleep(1.0)
    a, b = await counters(alice), await counters(bob)
    assert abs(a["dominantHz"] - 440) <= 6 and abs(b["dominantHz"] - 1000) <= 6
    assert a["decodeErrors"] == b["decodeErrors"] == 0
    assert a["samplesPlayed"] > 0 and b["samplesPlayed"] > 0  # Web Audio really played them
    assert {e["session_id"] for e in a["events"]} == {"alice"}
    assert {e["session_id"] for e in b["events"]} == {"bob-1234"}
    stats = await ws_stats(base)
    # each socket got about as many frames as its page decoded: nothing of the other session
    assert stats["alice"]["clients"] == 1 and stats["bob-1234"]["clients"] == 1
    assert a["wsMessages"] <= stats["alice"]["ws_frames"] + len(a["events"]) + 60
    assert b["framesDecoded"] <= stats["bob-1234"]["ws_frames"] + 60

    # stop page A: page B keeps decoding, without a stutter
    stutters_before = b["stutters"]
    decoded_before = b["framesDecoded"]
    await alice.click("#stop")
    await wait_until(alice, "window.snowmux.lastEvent === 'finished:stopped'")
    await asyncio.sleep(2.0)
    b = await counters(bob)
    assert b["framesDecoded"] - decoded_before >= 80
    assert b["stutters"] == stutters_before

    # play again on page B: the old track ends as replaced, the new tone is heard
    await play(bob, "tone:1320?seconds=60", "opus-packets")
    await wait_until(
        bob, "window.snowmux.events.some(e => e.type === 'finished' && e.reason === 'replaced')"
    )
    await wait_until(bob, "Math.abs(window.snowmux.dominantHz - 1320) <= 6", timeout=10)

    # reload page A mid-playback: it subscribes again and gets audio again
    await play(alice, "tone:660?seconds=60", "web")
    await wait_until(alice, "window.snowmux.framesDecoded > 50")
    await alice.reload()
    await wait_until(alice, "window.snowmux.socket === 'subscribed'")
    await wait_until(alice, "window.snowmux.framesDecoded > 60")
    await wait_until(alice, "Math.abs(window.snowmux.dominantHz - 660) <= 6", timeout=10)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await alice.screenshot(path=str(ARTIFACTS / "playground-alice.png"))
    await bob.screenshot(path=str(ARTIFACTS / "playground-bob.png"))
    for page, _session_id in ((alice, "alice"), (bob, "bob-1234")):
        await page.click("#stop")
        await wait_until(page, "window.snowmux.lastEvent === 'finished:stopped'")


async def test_the_web_token_guards_subscriptions_and_controls(
    stack: tuple[NodeProcess, str],
) -> None:
    _, base = stack
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{base}/api/session/x/play", json={"url": "tone:440"}) as response:
            assert response.status == 401
        async with client.post(
            f"{base}/api/session/a%20b/play",
            json={"url": "tone:440"},
            headers={"X-Snowmux-Token": WEB_TOKEN},
        ) as response:
            assert response.status == 400
        async with client.post(
            f"{base}/api/session/x/play",
            json={"url": "concat:a|b"},
            headers={"X-Snowmux-Token": WEB_TOKEN},
        ) as response:
            assert response.status == 403  # the node's answer, passed through
        for query, status in (("session_id=x", 401), (f"session_id=a%20b&token={WEB_TOKEN}", 400)):
            async with client.get(f"{base}/ws?{query}") as response:
                assert response.status == status
        async with client.get(f"{base}/") as response:
            assert response.status == 200 and "snowmux playground" in await response.text()


async def test_seek_bar_volume_slider_and_filter_presets(
    stack: tuple[NodeProcess, str], browser: Any
) -> None:
    _node, base = stack
    page = await open_user(browser, base, "controls-1")
    await play(page, "tone:440?seconds=60", "web")
    await wait_until(page, "window.snowmux.framesDecoded > 60 && window.snowmux.dominantHz > 0")
    assert abs((await counters(page))["dominantHz"] - 440) <= 6

    await page.click("#preset-nightcore")  # timescale speed 1.25, pitch 1.25
    await wait_until(page, "Math.abs(window.snowmux.dominantHz - 550) <= 8", timeout=20)
    await page.click("#preset-none")
    await wait_until(page, "Math.abs(window.snowmux.dominantHz - 440) <= 6", timeout=20)

    await page.evaluate(
        "(() => { const s = document.getElementById('seek'); s.value = '30';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    await wait_until(page, "window.snowmux.events.some(e => e.type === 'seeked')")
    await wait_until(page, "window.snowmux.position >= 30")
    await page.evaluate(
        "(() => { const v = document.getElementById('volume'); v.value = '0.5';"
        " v.dispatchEvent(new Event('change')); })()"
    )
    status_ok = await page.evaluate(
        "fetch('/api/session/controls-1/status', {headers: {'X-Snowmux-Token': 'tab-secret'}})"
        ".then(r => r.json())"
    )
    assert status_ok["volume"] == 0.5 and status_ok["position_secs"] >= 30
    c = await counters(page)
    assert c["decodeErrors"] == 0 and [e["type"] for e in c["events"]].count("ready") == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "playground-controls.png"), full_page=True)
    await page.click("#stop")
    await page.close()


async def test_queue_panel_crossfade_level_meter_and_spectrum(
    stack: tuple[NodeProcess, str], browser: Any
) -> None:
    _node, base = stack
    page = await open_user(browser, base, "dj-1")
    await page.fill("#crossfade", "4000")
    await page.fill("#url", "tone:440?seconds=6")
    await page.select_option("#format", "web")
    await page.click("#enqueue")
    await wait_until(page, "window.snowmux.framesDecoded > 20")
    await page.fill("#url", "tone:660?seconds=6")
    await page.click("#enqueue")
    await wait_until(page, "window.snowmux.queue.length === 2")
    await wait_until(
        page, "window.snowmux.events.some(e => e.type === 'track_start' && e.index === 1)"
    )
    # mid-crossfade: both tones in the spectrum of what Web Audio is playing
    both = "[440, 660].every(hz => window.snowmux.spectrumPeaks.some(p => Math.abs(p - hz) <= 12))"
    await wait_until(page, both, timeout=10)
    c = await counters(page)
    assert c["levelDb"] > -30  # the meter sees the fade: no dip to silence
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "playground-crossfade.png"), full_page=True)
    await wait_until(page, "window.snowmux.lastEvent === 'finished:finished'", timeout=20)
    await wait_until(page, "window.snowmux.queue.every(t => t.state === 'finished')")
    c = await counters(page)
    assert c["decodeErrors"] == 0 and [e["type"] for e in c["events"]].count("ready") == 1
    await page.close()
