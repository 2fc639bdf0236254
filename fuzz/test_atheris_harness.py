"""The coverage-guided harness runs (briefly) and keeps its invariant."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from snowmux.protocol import load_vectors

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
    vectors = load_vectors()
    seeded = 3 * (len(vectors["valid"]) + len(vectors["invalid"]))
    assert f"seeded {seeded} inputs from protocol/vectors.json" in result.stderr
    # libFuzzer read them back as its starting corpus
    assert re.search(rf"INFO: seed corpus: files: {seeded}\b", result.stderr), result.stderr[:2000]
