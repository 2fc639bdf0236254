"""Every tagged requirement of SPEC.md has at least one test marked with it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = re.compile(r"\*\*\[([A-Z]\d+)\]\*\*")
MARK = re.compile(r"mark\.spec\(([^)]*)\)")


def spec_tags() -> set[str]:
    return set(TAG.findall((ROOT / "SPEC.md").read_text("utf-8")))


def marked_tags() -> set[str]:
    tags: set[str] = set()
    for folder in ("tests", "fuzz"):
        for path in (ROOT / folder).rglob("test_*.py"):
            for args in MARK.findall(path.read_text("utf-8")):
                tags.update(re.findall(r"\"([A-Z]\d+)\"", args))
    return tags


def test_every_spec_requirement_has_a_test() -> None:
    missing = sorted(spec_tags() - marked_tags())
    assert not missing, f"SPEC.md requirements without a test: {missing}"


def test_tests_cite_only_existing_requirements() -> None:
    unknown = sorted(marked_tags() - spec_tags())
    assert not unknown, f"tests cite tags SPEC.md does not define: {unknown}"
