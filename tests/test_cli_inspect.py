"""`snowmux inspect`: decode a captured stream, print messages or a summary."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from snowmux.cli import main
from snowmux.protocol import encode_event, encode_frame

STREAM = (
    encode_event("hello", "", protocol="snowmux/1", max_frame_length=1 << 20)
    + encode_event("ready", "123456789012345678", format="pcm")
    + encode_frame("123456789012345678", b"\x01\x02\x03") * 3
    + encode_frame("guild-2", b"\xff" * 10)
    + encode_event("finished", "123456789012345678", reason="stopped")
)


def test_inspect_prints_every_message(tmp_path: Path) -> None:
    capture = tmp_path / "capture.bin"
    capture.write_bytes(STREAM)
    result = CliRunner().invoke(main, ["inspect", str(capture)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 7
    assert lines[0].startswith("event  hello")
    assert lines[2].startswith("frame  123456789012345678") and "01 02 03" in lines[2]
    assert '"reason": "stopped"' in lines[6]


def test_inspect_summary_from_stdin() -> None:
    result = CliRunner().invoke(main, ["inspect", "--summary", "-"], input=STREAM)
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert rows["123456789012345678"][1:3] == ["3", "9"]
    assert rows["guild-2"][1:3] == ["1", "10"]
    assert "finished x1" in result.output and "hello x1" in result.output


def test_inspect_reports_a_bad_stream_with_its_offset_and_fails(tmp_path: Path) -> None:
    capture = tmp_path / "bad.bin"
    capture.write_bytes(STREAM + b"\x00\x00\x00\x05")
    result = CliRunner().invoke(main, ["inspect", str(capture)])
    assert result.exit_code == 1
    assert f"FrameLengthError at offset {len(STREAM)}" in result.output
    assert result.output.count("frame  ") == 4  # what came before the fault is still shown
    truncated = CliRunner().invoke(main, ["inspect", "-"], input=STREAM[:-5])
    assert truncated.exit_code == 1 and "TruncatedStreamError" in truncated.output
