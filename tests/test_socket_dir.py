"""The private default socket directory and socket ownership checks, with real serve/route."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from snowmux.defaults import UnsafeSocketDirError, check_private_dir, default_socket_path

from .node_helpers import NodeProcess, snowmux, stop_process

pytestmark = pytest.mark.slow

OTHER_UID = 54321  # a uid no test file belongs to


def private_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(tmp_path)
    return env


def test_default_path_is_per_user_under_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # tempfile caches gettempdir()
    assert default_socket_path() == tmp_path / f"snowmux-{os.getuid()}" / "snowmux.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert default_socket_path() == tmp_path / "run" / "snowmux.sock"


async def test_serve_creates_a_0700_dir_and_route_uses_it(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    with NodeProcess(tmp_path, env=env, default_socket=True, media_root=tmp_path) as node:
        directory = tmp_path / f"snowmux-{os.getuid()}"
        assert node.socket_path == directory / "snowmux.sock"
        info = directory.lstat()
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.getuid()
        check_private_dir(directory)
        # route with no --socket finds the same default path and gets hello.
        route = subprocess.Popen(
            [sys.executable, "-m", "snowmux.cli", "route", "--report-ndjson"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert route.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(route.stdout.readline), 20)
        finally:
            stop_process(route, signal.SIGTERM, 10)
        report = json.loads(line)
        assert report["kind"] == "event" and report["type"] == "hello"


@pytest.mark.parametrize("problem", ["mode", "symlink", "owner"])
def test_serve_and_route_refuse_an_unsafe_default_dir(tmp_path: Path, problem: str) -> None:
    env = private_env(tmp_path)
    directory = tmp_path / f"snowmux-{os.getuid()}"
    if problem == "mode":
        directory.mkdir(mode=0o755)
        directory.chmod(0o755)
    elif problem == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        directory.symlink_to(tmp_path / "elsewhere")
    else:
        if os.getuid() != 0:
            pytest.skip("chown to another uid needs root")
        directory.mkdir(mode=0o700)
        os.chown(directory, OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeSocketDirError):
        check_private_dir(directory)
    served = subprocess_run(env, "serve", "--http", "127.0.0.1:0")
    assert served.returncode == 1 and "refusing to use it" in served.stderr, served.stderr
    routed = subprocess_run(env, "route", "--report-ndjson")
    assert routed.returncode == 2 and "refusing to use it" in routed.stderr, routed.stderr


def subprocess_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snowmux.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_route_refuses_a_socket_owned_by_another_user(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("chown to another uid needs root")
    with NodeProcess(tmp_path) as node:
        os.chown(node.socket_path, OTHER_UID, OTHER_UID)
        result = await asyncio.to_thread(
            snowmux, "route", "--socket", str(node.socket_path), "--report-ndjson", timeout=60
        )
    assert result.returncode == 2
    assert f"owned by uid {OTHER_UID}" in result.stderr
    assert "hello" not in result.stdout
