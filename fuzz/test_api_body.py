"""The control API's body parser (a pure function) under hypothesis and atheris ([A1])."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.atheris_api_body import SEEDS, check, one_input
from snowmux.node.play_body import BodyError, parse_play_body

ROOT = Path(__file__).resolve().parent.parent

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
_objects = st.dictionaries(
    st.sampled_from(["url", "format", "start_at", "duration", "bitrate", "volume", "x"]), _values
)


@pytest.mark.spec("A1")
@given(st.one_of(st.binary(max_size=300), _objects.map(lambda d: json.dumps(d).encode())))
def test_any_body_is_a_play_request_or_a_4xx_body_error(raw: bytes) -> None:
    one_input(raw)


@pytest.mark.spec("A1")
@pytest.mark.parametrize("raw", SEEDS)
def test_the_seeds_parse_or_fail_cleanly(raw: bytes) -> None:
    try:
        check(parse_play_body(raw))
    except BodyError as error:
        assert error.status == 400


def test_the_issue_probes_are_400() -> None:
    for raw in (
        b'{"url":"tone:440","start_at":' + b"9" * 4_000 + b"}",
        b'{"url":"tone:440","start_at":' + b"9" * 5_000 + b"}",
        b'{"url":' + b"[" * 30_000 + b"]" * 30_000 + b"}",
        b'{"url":"tone:440","format":{}}',
        b'{"url":"tone:440","format":0}',
    ):
        with pytest.raises(BodyError) as caught:
            parse_play_body(raw)
        assert caught.value.status == 400


def test_atheris_body_harness_runs_clean_for_a_few_seconds() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fuzz.atheris_api_body", "--seconds", "3", "-seed=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done" in result.stderr
