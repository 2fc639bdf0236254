"""README.md's promises: its library example runs as printed against a real node."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from snowmux.testing import NodeProcess

from .node_helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def marked_block(name: str) -> str:
    match = re.search(
        rf"<!-- {name} -->\n```python\n(.*?)```\n<!-- /{name} -->", README, flags=re.S
    )
    assert match, f"README.md has no {name} block"
    return match.group(1)


def test_the_library_example_uses_no_fixed_paths() -> None:
    code = marked_block("library-example")
    assert "/run/user" not in code and "voice_connection" not in code
    compile(code, "README.md", "exec")


@pytest.mark.slow
def test_the_library_example_runs_against_a_real_node(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    # The node's socket where the example looks for it: the default path.
    with NodeProcess(tmp_path, env=env, socket_path=runtime / "snowmux.sock") as node:
        node_env = {**os.environ, **env, "SNOWMUX_NODE": node.url}
        script = tmp_path / "example.py"
        script.write_text(marked_block("library-example"))
        result = subprocess.run(
            [sys.executable, str(script)],
            env=node_env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "50 frames of session 123456789012345678"
