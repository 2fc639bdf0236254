# Strategy: load the test vectors of SPEC.md section "Test vectors", shipped
# inside the package as vectors.json so that implementations in other
# languages can load the same file (its format is described in the file).
from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["load_vectors"]


def load_vectors() -> dict[str, Any]:
    """The parsed vectors document: ``valid`` and ``invalid`` stream lists."""
    text = resources.files(__package__).joinpath("vectors.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document
