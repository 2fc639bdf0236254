"""`snowmux play|stop|pause|resume|status` and `snowmux demo`, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .node_helpers import NodeProcess, free_port, snowmux

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("cli"), "--token", "cli-token") as process:
        yield process


def test_control_commands_drive_the_node(node: NodeProcess) -> None:
    common = ["--node", node.url, "--token", "cli-token"]
    played = snowmux(
        "play",
        "123456789012345678",
        "tone:440?seconds=30",
        "--format",
        "opus",
        "--start-at",
        "2",
        *common,
    )
    assert played.returncode == 0 and played.stdout.strip() == "playing 123456789012345678"
    assert (
        snowmux("pause", "123456789012345678", *common).stdout.strip()
        == "paused 123456789012345678"
    )
    status = json.loads(snowmux("status", "123456789012345678", *common).stdout)
    assert status["state"] == "paused" and status["format"] == "opus"
    assert (
        snowmux("resume", "123456789012345678", *common).stdout.strip()
        == "playing 123456789012345678"
    )
    listing = json.loads(snowmux("status", *common).stdout)
    assert [s["session_id"] for s in listing["sessions"]] == ["123456789012345678"]
    assert snowmux("stop", "123456789012345678", *common).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["play", "bad id", "tone:440"], "HTTP 400"),
        (["play", "g", "concat:a|b"], "HTTP 403"),
        (["pause", "never-played"], "HTTP 404"),
    ],
)
def test_node_errors_are_shown_with_a_nonzero_exit(
    node: NodeProcess, args: list[str], message: str
) -> None:
    result = snowmux(*args, "--node", node.url, "--token", "cli-token")
    assert result.returncode == 1
    assert message in result.stderr and result.stderr.startswith("error")


@pytest.mark.spec("A4")
def test_a_play_that_cannot_open_its_media_exits_1_with_the_reason(node: NodeProcess) -> None:
    (node.media_root / "garbage.mp3").write_bytes(bytes(range(256)) * 40)
    common = ["--node", node.url, "--token", "cli-token"]
    result = snowmux("play", "m", "nope.wav", *common)
    assert result.returncode == 1 and not result.stdout
    assert result.stderr.strip() == "error (HTTP 404): no such file: nope.wav"
    result = snowmux("play", "m", "garbage.mp3", *common)
    assert result.returncode == 1 and "HTTP 422" in result.stderr and "garbage.mp3" in result.stderr
    status = json.loads(snowmux("status", "m", *common).stdout)
    assert status["state"] == "error" and "garbage.mp3" in status["error"]


def test_missing_token_and_unreachable_node_fail_clearly(node: NodeProcess) -> None:
    result = snowmux("status", "--node", node.url)
    assert result.returncode == 1 and "HTTP 401" in result.stderr and "token" in result.stderr
    result = snowmux("status", "--node", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1 and "cannot reach the node" in result.stderr


def test_demo_runs_from_nothing_and_shows_each_session_got_its_own_audio(tmp_path: Path) -> None:
    result = snowmux("demo", "--out", str(tmp_path / "demo"), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every session got only its own audio" in result.stdout
    assert result.stdout.count("  ok") == 4
    assert len(list((tmp_path / "demo").rglob("*.*"))) == 4
