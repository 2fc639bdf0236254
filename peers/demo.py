# Strategy: `snowmux demo`, the README's "run it" command: a node and a
# receiver in one process (real Unix socket, real HTTP control API), three
# sessions playing built-in tones at once in three formats, one stopped and
# one replaced mid-way. It then decodes every file the receiver wrote and
# shows that each holds only its own session's tone.
from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click

from .analysis import analyse_tones
from .control import ControlClient
from .node.server import Node, NodeConfig
from .receiver.connection import Endpoint, Receiver
from .receiver.files import FileSink, safe_dirname
from .receiver.router import Router

__all__ = ["run_demo"]

SECONDS = 8.0
MIN_PURITY = 0.95


@dataclass(frozen=True)
class DemoSession:
    session_id: str
    who: str
    audio_format: str
    frequency: int


GUILD_A = DemoSession("123456789012345678", "guild", "opus", 440)
GUILD_B = DemoSession("876543210987654321", "guild", "pcm", 660)
USER_C = DemoSession("user-424242", "user", "opus-packets", 880)
REPLACEMENT_HZ = 1320
# (session, file number) -> the tone that file must hold
EXPECTED = {
    (GUILD_A.session_id, 1): GUILD_A.frequency,
    (GUILD_B.session_id, 1): GUILD_B.frequency,
    (USER_C.session_id, 1): USER_C.frequency,
    (USER_C.session_id, 2): REPLACEMENT_HZ,
}
CANDIDATES = sorted({*(f for f in EXPECTED.values())})


def say(started: float, text: str) -> None:
    click.echo(f"{time.monotonic() - started:5.1f}s  {text}")


async def _scenario(out_dir: Path) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="snowmux-demo-"))
    try:
        config = NodeConfig(http_port=0, socket_path=workdir / "node.sock", media_root=workdir)
        node = Node(config)
        await node.start()
        router = Router(lambda session_id: FileSink(out_dir, session_id))
        receiver = Receiver(Endpoint(unix_path=node.socket_path), router)
        receiving = asyncio.create_task(receiver.run())
        await asyncio.wait_for(receiver.connected.wait(), 5)
        started = time.monotonic()
        async with ControlClient(f"http://127.0.0.1:{node.http_port}") as control:
            for s in (GUILD_A, GUILD_B, USER_C):
                await control.play(
                    s.session_id, f"tone:{s.frequency}?seconds={SECONDS}", s.audio_format
                )
                say(
                    started,
                    f"play    {s.session_id:<20} {s.who:<5} {s.audio_format:<12} {s.frequency} Hz",
                )
            await asyncio.sleep(3.0)
            await control.stop(GUILD_B.session_id)
            say(started, f"stop    {GUILD_B.session_id:<20} (the others keep playing)")
            await asyncio.sleep(1.0)
            await control.play(
                USER_C.session_id, f"tone:{REPLACEMENT_HZ}?seconds=4", USER_C.audio_format
            )
            say(
                started,
                f"replace {USER_C.session_id:<20} with {REPLACEMENT_HZ} Hz (finished: replaced)",
            )
            while any(p.active for p in node.sessions.playbacks.values()):
                await asyncio.sleep(0.1)
            say(started, "all playbacks ended")
        await asyncio.sleep(0.2)  # let the last events reach the receiver
        receiver.stop()
        await receiving
        router.close()
        click.echo("")
        for stats in sorted(router.stats(), key=lambda s: s.session_id):
            click.echo(
                f"  {stats.session_id:<20} frames={stats.frames:<5} stutters={stats.stutters} "
                f"last={stats.last_event} state={stats.state}"
            )
        await node.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _verify(out_dir: Path) -> bool:
    click.echo(f"\nfiles in {out_dir}/ (decoded with PyAV, tone power by Goertzel):")
    click.echo(
        f"  {'session':<20} {'file':<24} {'secs':>5} {'dominant':>9} {'expected':>9} {'purity':>7}"
    )
    ok = True
    seen = set()
    for (session_id, number), expected in EXPECTED.items():
        folder = out_dir / safe_dirname(session_id)
        matches = sorted(folder.glob(f"{number:03d}-*")) if folder.exists() else []
        if not matches:
            click.echo(f"  {session_id:<20} file {number:03d} is MISSING")
            ok = False
            continue
        path = matches[0]
        seen.add(path)
        report = analyse_tones(path, CANDIDATES)
        good = report.dominant == expected and report.share >= MIN_PURITY
        ok &= good
        click.echo(
            f"  {session_id:<20} {path.name:<24} {report.seconds:>5.1f} {report.dominant:>6.0f} Hz "
            f"{expected:>6} Hz {report.share:>6.1%}  {'ok' if good else 'WRONG'}"
        )
    extra = [p for p in out_dir.rglob("*") if p.is_file() and p not in seen]
    if extra:
        ok = False
        click.echo(f"  unexpected files: {', '.join(map(str, extra))}")
    return ok


def run_demo(out_dir: Path) -> int:
    click.echo("snowmux demo: one node, one receiver, three sessions on one socket\n")
    for session in (GUILD_A, GUILD_B, USER_C):
        shutil.rmtree(out_dir / safe_dirname(session.session_id), ignore_errors=True)
    asyncio.run(_scenario(out_dir))
    if _verify(out_dir):
        click.echo("\nevery session got only its own audio")
        return 0
    click.echo("\nrouting check FAILED", err=True)
    return 1
