"""The coverage-guided harness runs (briefly) and keeps its invariant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_atheris_harness_runs_clean_for_a_few_seconds() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fuzz.atheris_decoder", "--seconds", "3", "-seed=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done" in result.stderr
