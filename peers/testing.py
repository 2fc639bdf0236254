# Strategy: helpers for testing and benchmarking against a *real* node: a
# `snowmux serve` child process on an ephemeral port with its own socket, and
# media files with a known tone. They ship with the package so that bots can
# write integration tests the way this project does (never a mock of the
# node), and so that bench/ needs nothing from tests/. Nothing here imports
# aiohttp; PyAV only inside write_tone_file. schedule_lateness measures a
# receiver's arrivals against the pacing schedule of SPEC.md [P7].
from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

from .audio_format import FRAME_SECONDS

__all__ = ["NodeProcess", "schedule_lateness", "stop_process", "write_tone_file"]

READY = re.compile(r"snowmux node ready: (https?://\S+) socket=(\S+)")
START_TIMEOUT_SECONDS = 20.0  # a cold start spawns one codec process per core


def stop_process(process: subprocess.Popen[Any], sig: int, timeout: float) -> int:
    """Signal a process, wait for it, kill it if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class NodeProcess:
    """`python -m snowmux.cli serve` on an ephemeral HTTP port and a socket in ``workdir``.

    ``url`` is the control API once started; the node's log is ``workdir/node.log``.
    """

    def __init__(
        self,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        media_root: Path | None = None,
        socket_path: Path | None = None,
        default_socket: bool = False,
    ) -> None:
        """``default_socket``: no --socket, the node picks its default path (read back once ready)."""
        self.workdir = workdir
        self.default_socket = default_socket
        self.socket_path = socket_path or workdir / "node.sock"
        self.media_root = media_root or workdir
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.log_path = workdir / "node.log"
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> NodeProcess:
        command = [
            sys.executable,
            "-m",
            "snowmux.cli",
            "serve",
            "--http",
            "127.0.0.1:0",
            *(() if self.default_socket else ("--socket", str(self.socket_path))),
            "--media-root",
            str(self.media_root),
            "--log-level",
            "debug",
            *self.args,
        ]
        self._log = open(self.log_path, "a")  # closed by stop()
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = READY.search(line)
            if match:
                self.url = match.group(1)
                self.socket_path = Path(match.group(2))
                return self
        self.stop()
        raise RuntimeError(f"node did not start: {self.log_path.read_text()[-3000:]}")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the node was not started")
        return self.process.pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process is None:
            return 0
        self._log.close()
        return stop_process(self.process, sig, timeout)

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_tone_file(
    path: Path,
    frequency: float,
    seconds: float,
    rate: int,
    channels: int,
    codec: str,
    container_format: str | None = None,
) -> Path:
    """Encode a sine tone (0.4 of full scale) to a media file with PyAV: any codec, rate, layout."""
    import av

    layout = "mono" if channels == 1 else "stereo"
    step = 2 * math.pi * frequency / rate
    amplitude = 0.4 * 32767
    sin = math.sin
    total = int(seconds * rate)
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if not isinstance(stream, av.AudioStream):
            raise ValueError(f"{codec} is not an audio codec")
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, total, frame_size):
            count = min(frame_size, total - start)
            mono = array("h", [int(amplitude * sin(step * n)) for n in range(start, start + count)])
            samples = array("h", bytes(2 * count * channels))
            for channel in range(channels):
                samples[channel::channels] = mono
            if sys.byteorder != "little":
                samples.byteswap()
            frame = av.AudioFrame(format="s16", layout=layout, samples=count)
            frame.planes[0].update(samples.tobytes().ljust(frame.planes[0].buffer_size, b"\0"))
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def schedule_lateness(arrivals: list[float], reference: range, measured: range) -> list[float]:
    """Lateness (seconds) of frames ``measured`` against the 20 ms schedule of ``reference``.

    ``arrivals[n]`` is when audio frame n of one playback reached a receiver.
    The schedule is the one the ``reference`` frames kept ([P7]: frame n at
    start + n x 20 ms), its start set by the earliest of them, so that a frame
    on time is 0 and nothing is negative among the reference frames.
    """
    start = min(arrivals[n] - n * FRAME_SECONDS for n in reference)
    return [arrivals[n] - n * FRAME_SECONDS - start for n in measured]
