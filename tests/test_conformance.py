"""The conformance harnesses pass our peers and fail deliberately broken ones."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .node_helpers import ROOT, NodeProcess, snowmux

pytestmark = pytest.mark.slow

NAIVE = [sys.executable, "-m", "fuzz.fixtures.naive_receiver", "{socket}"]


def receiver_check(command: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    return snowmux(
        "conformance", "receiver", "--seed", "1234", "--timeout", "5", *options, "--", *command
    )


@pytest.mark.spec("R1", "R2", "R3", "R4")
def test_our_route_passes_every_receiver_property() -> None:
    result = receiver_check(
        [sys.executable, "-m", "snowmux.cli", "route", "--socket", "{socket}", "--report-ndjson"],
        "--max-examples",
        "6",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("valid-interleaving", "vectors", "event-escaping", "id-lengths"):
        assert any(
            line.startswith(name) and line.endswith("pass") for line in result.stdout.splitlines()
        )


def test_an_independent_receiver_passes_too() -> None:
    result = receiver_check(NAIVE, "--max-examples", "15")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("bug", "property_name"),
    [
        ("truncate-ids", "id-lengths"),
        ("brace-count", "event-escaping"),
        ("reset-partial", "valid-interleaving"),
    ],
)
def test_each_broken_receiver_fails_the_property_it_breaks(bug: str, property_name: str) -> None:
    result = receiver_check([*NAIVE, "--bug", bug], "--max-examples", "40", "--only", property_name)
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert any(line.startswith(property_name) and line.endswith("FAIL") for line in lines)
    assert any(line.startswith("  minimal stream:") for line in lines)
    reproduce = next(line for line in lines if line.startswith("  reproduce:"))
    assert "--seed 1234" in reproduce and f"--only {property_name}" in reproduce


def test_a_hanging_or_crashing_receiver_fails_without_stalling(tmp_path: Path) -> None:
    hang = tmp_path / "hang.py"
    hang.write_text(
        "import socket, sys, time\ns = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\ntime.sleep(60)\n"
    )
    crash = tmp_path / "crash.py"
    crash.write_text("import sys\nsys.exit(3)\n")
    quick = ("--max-examples", "2", "--only", "id-lengths", "--timeout", "1")
    result = receiver_check([sys.executable, str(hang), "{socket}"], *quick)
    assert result.returncode == 1 and "timed out" in result.stdout
    result = receiver_check([sys.executable, str(crash)], *quick)
    assert result.returncode == 1 and "did not connect" in result.stdout


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with NodeProcess(tmp_path_factory.mktemp("conformance")) as process:
        yield process


def test_our_node_passes_the_sender_harness(node: NodeProcess) -> None:
    result = snowmux("conformance", "sender", "--socket", str(node.socket_path), "--node", node.url)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("framing", "hello-and-events", "ordering", "isolation", "pacing", "payloads"):
        assert f"{name:<22} pass" in result.stdout


def test_a_sender_that_emits_a_frame_after_finished_fails_ordering(
    node: NodeProcess, tmp_path: Path
) -> None:
    proxy_socket = tmp_path / "proxy.sock"
    proxy = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fuzz.fixtures.frame_after_finished_proxy",
            "--upstream",
            str(node.socket_path),
            "--listen",
            str(proxy_socket),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout is not None and "ready" in proxy.stdout.readline()
        result = snowmux("conformance", "sender", "--socket", str(proxy_socket), "--node", node.url)
    finally:
        proxy.terminate()
        proxy.wait()
    assert result.returncode == 1
    assert f"{'ordering':<22} FAIL" in result.stdout
    for name in ("framing", "hello-and-events", "isolation", "pacing", "payloads"):
        assert f"{name:<22} pass" in result.stdout
    assert "arrived after its playback's finished event" in result.stdout
