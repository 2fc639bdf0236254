"""The installed layout: one package `snowmux`, light imports where promised."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from snowmux.protocol import encode_event, encode_frame

from .node_helpers import ROOT

HEAVY = ("av", "aiohttp")


def loaded_after(code: str, *, timeout: float = 30) -> list[str]:
    """Which of HEAVY a fresh interpreter has loaded after running ``code``."""
    probe = (
        f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout, check=True
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_the_codec_loads_neither_pyav_nor_aiohttp() -> None:
    assert loaded_after("import snowmux.protocol, snowmux.protocol.reports") == []


def test_defaults_and_the_cli_group_load_neither() -> None:
    assert loaded_after("import snowmux.defaults, snowmux.cli") == []


@pytest.mark.slow
def test_route_report_ndjson_loads_neither(tmp_path: Path) -> None:
    """A real `route --report-ndjson` run: it decodes, reports, exits, and never loaded them."""
    socket_path = tmp_path / "node.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(socket_path))
    server.listen(1)
    modules_file = tmp_path / "modules.json"
    runner = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(modules_file)!r}, 'w').write("
        f"json.dumps([m for m in {HEAVY!r} if m in sys.modules])))\n"
        "from snowmux.cli import main\n"
        f"sys.argv = ['snowmux', 'route', '--socket', {str(socket_path)!r}, '--report-ndjson']\n"
        "main()\n"
    )
    route = subprocess.Popen(
        [sys.executable, "-c", runner], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        server.settimeout(20)
        connection, _ = server.accept()
        hello = encode_event("hello", "", protocol="snowmux/1", max_frame_length=1 << 20)
        connection.sendall(
            hello + encode_event("ready", "g1", format="pcm") + encode_frame("g1", b"\0" * 3840)
        )
        deadline = time.monotonic() + 20
        assert route.stdout is not None
        reports = []
        while len(reports) < 3 and time.monotonic() < deadline:
            line = route.stdout.readline()
            if line:
                reports.append(json.loads(line))
        assert [r["kind"] for r in reports] == ["event", "event", "frame"]
        route.send_signal(signal.SIGINT)
        route.wait(20)
        connection.close()
    finally:
        if route.poll() is None:
            route.kill()
        server.close()
    assert json.loads(modules_file.read_text()) == []


@pytest.mark.slow
def test_the_wheel_holds_only_the_snowmux_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    (wheel,) = tmp_path.glob("snowmux-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert tops - dist_info == {"snowmux"}
    for required in (
        "snowmux/py.typed",
        "snowmux/protocol/py.typed",
        "snowmux/protocol/vectors.json",
        "snowmux/receiver/static/index.html",
        "snowmux/node/server.py",
        "snowmux/cli.py",
    ):
        assert required in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "snowmux = snowmux.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_bench_and_fuzz_do_not_import_the_tests() -> None:
    """Shared helpers ship in snowmux.testing / snowmux.protocol.testing, not in tests/."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("bench", "fuzz")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if line.lstrip().startswith(("from tests", "import tests"))
    ]
    assert not offenders, offenders
