"""`route --out` never overwrites a recording; a late-joined Ogg file starts at 0."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest

from snowmux.audio_format import split_ogg_pages
from snowmux.protocol import AudioFrame, Event
from snowmux.receiver.files import FileSink
from snowmux.receiver.ogg import OggRebaser

from .audio_checks import ffprobe, opusinfo
from .node_helpers import NodeProcess, Recorder, RouteProcess, play

pytestmark = pytest.mark.slow


def opusinfo_seconds(path: Path) -> float:
    report = opusinfo(path)  # skips when opus-tools is missing
    assert "WARNING" not in report, report
    match = re.search(r"Playback length: (\d+)m:([\d.]+)s", report)
    assert match, report
    return int(match.group(1)) * 60 + float(match.group(2))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def record_one(
    workdir: Path, node: NodeProcess, session: str, url: str, fmt: str, run: int
) -> None:
    """One `route --out` run (its log appends to the previous runs' log)."""
    with RouteProcess(workdir, node.socket_path) as route:
        await route.wait_log("connected to", count=run)
        await asyncio.sleep(0.3)
        await play(node.url, session, url, format=fmt)
        await route.wait_log(f"session {session} finished", count=run)


async def test_numbering_continues_across_runs_and_nothing_is_overwritten(tmp_path: Path) -> None:
    with NodeProcess(tmp_path, "--no-pace") as node:
        await record_one(tmp_path, node, "guild-1", "tone:440?seconds=0.3", "pcm", 1)
        first = tmp_path / "out" / "guild-1" / "001-pcm.wav"
        before = digest(first)
        (tmp_path / "out" / "guild-1" / "007-opus.opus").write_bytes(b"an older recording")
        await record_one(tmp_path, node, "guild-1", "tone:550?seconds=0.3", "opus", 2)
        await record_one(tmp_path, node, "guild-1", "tone:660?seconds=0.3", "pcm", 3)
    names = sorted(p.name for p in (tmp_path / "out" / "guild-1").iterdir())
    assert names == ["001-pcm.wav", "007-opus.opus", "008-opus.opus", "009-pcm.wav"]
    assert digest(first) == before
    assert (tmp_path / "out" / "guild-1" / "007-opus.opus").read_bytes() == b"an older recording"


def test_an_existing_file_is_never_opened_for_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = FileSink(tmp_path, "s")
    sink.directory.mkdir()
    taken = sink.directory / "001-pcm.wav"
    taken.write_bytes(b"someone else's")
    outside = tmp_path / "outside.wav"
    (sink.directory / "002-pcm.wav").symlink_to(outside)  # dangling: "x" refuses it too
    # As if another writer took 001 and 002 between our listing and our open:
    monkeypatch.setattr(FileSink, "_next_number", lambda self: 1)
    sink.on_event(Event.create("ready", "s", format="pcm"))
    sink.on_frame(AudioFrame("s", b"\x00" * 3840))
    sink.close()
    assert sink.files == [sink.directory / "003-pcm.wav"]
    assert taken.read_bytes() == b"someone else's" and not outside.exists()


@pytest.mark.parametrize("fmt", ["opus", "web"])
async def test_late_joined_ogg_file_starts_at_zero(tmp_path: Path, fmt: str) -> None:
    with NodeProcess(tmp_path) as node:  # paced: the receiver really joins mid-playback
        async with Recorder(node.socket_path) as from_start:
            await play(node.url, "guild-1", "tone:440?seconds=6", format=fmt)
            # 2 headers + 75 frames: 1.5 s of the 6 s have been sent before route starts.
            await from_start.wait_for(lambda: len(from_start.frames("guild-1")) >= 77)
            with RouteProcess(tmp_path, node.socket_path) as route:
                await route.wait_log("session guild-1 finished", timeout=15)
    # A recording from the start needs no rebasing: its bytes pass unchanged.
    rebaser = OggRebaser()
    whole = [bytes(f.payload) for f in from_start.frames("guild-1")]
    assert [rebaser.page(page) for page in whole] == whole
    (path,) = route.files("guild-1")
    probed = float(ffprobe(path)["format"]["duration"])
    counted = opusinfo_seconds(path)  # counts packets; warns about sequence gaps
    assert abs(probed - counted) < 0.03, (probed, counted)
    assert 0.3 < counted < 4.6, counted  # 6 s minus what was missed: really joined late
    pages = split_ogg_pages(bytearray(path.read_bytes()))
    assert [int.from_bytes(p[18:22], "little") for p in pages] == list(range(len(pages)))
