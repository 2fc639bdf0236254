# Strategy: the node's load figures for a pool of nodes (README "Scaling
# out"): a once-a-second sampler of CPU seconds (the node process and its
# codec workers) and of the late/dropped frame totals, from which /health
# derives `cpu_load` over the last 10 s and the frames late/dropped over the
# last minute; and the Prometheus exposition of /metrics, built with
# prometheus-client in a registry of this node's own (never the global one,
# so two nodes in one process, as in tests, never share counters). Counters
# are read from NodeStats at scrape time by a custom collector, so the hot
# path pays nothing for them; so is the frame lateness histogram, built from
# the node's own lateness bins (pacing.LatenessWindow); only play-to-first-frame
# is observed as it happens, once per playback. Worker CPU is read from /proc (Linux); elsewhere it counts as 0.
# A crashed worker's CPU seconds go with it: the workers' counter then drops,
# which Prometheus' rate() reads as a counter reset.
from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .sessions import NodeStats, SessionManager

__all__ = [
    "CPU_WINDOW_SECONDS",
    "FRAMES_WINDOW_SECONDS",
    "SAMPLE_EVERY_SECONDS",
    "LoadSampler",
    "NodeMetrics",
    "process_cpu_seconds",
]

SAMPLE_EVERY_SECONDS = 1.0  # a sample a second: 61 tuples of memory, a cheap /proc read
CPU_WINDOW_SECONDS = 10  # cpu_load: long enough to smooth a codec burst, short enough to steer
FRAMES_WINDOW_SECONDS = 60  # late/dropped: the per-minute figures Lavalink's penalties use
# Lateness buckets: 1 ms is noise, 20 ms (one frame) is the "late" threshold,
# 500 ms is the prebuffer a receiver holds; beyond it a listener hears a gap.
LATENESS_BUCKETS = (0.001, 0.005, 0.010, 0.020, 0.050, 0.100, 0.250, 0.500, 1.0)
# Play-to-first-frame: opening a local file takes ~10-50 ms, a remote URL up to
# seconds; the play request's own timeout is 10 s (snowmux.control).
FIRST_FRAME_BUCKETS = (0.010, 0.025, 0.050, 0.100, 0.250, 0.500, 1.0, 2.5, 5.0, 10.0)

try:
    _CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):  # not a POSIX system
    _CLOCK_TICKS = 100


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (0.0 if it is gone or /proc is missing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the ")" that closes the command name: utime and stime are 14 and 15.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (IndexError, ValueError):
        return 0.0


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    cpu_seconds: float
    frames_late: int
    frames_dropped: int


class LoadSampler:
    """Samples CPU seconds and frame totals once a second; answers windowed rates."""

    def __init__(
        self,
        stats: NodeStats,
        worker_pids: Callable[[], Iterable[int]],
        cores: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stats = stats
        self._worker_pids = worker_pids
        self.cores = cores or os.cpu_count() or 1
        self._clock = clock
        self._samples: deque[_Sample] = deque(
            maxlen=int(FRAMES_WINDOW_SECONDS / SAMPLE_EVERY_SECONDS) + 1
        )

    def node_cpu_seconds(self) -> float:
        return time.process_time()

    def workers_cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self._worker_pids())

    def sample(self) -> None:
        self._samples.append(
            _Sample(
                self._clock(),
                self.node_cpu_seconds() + self.workers_cpu_seconds(),
                self._stats.frames_late,
                self._stats.frames_dropped,
            )
        )

    def _since(self, seconds: float) -> _Sample | None:
        """The oldest sample no older than ``seconds`` (None before two samples)."""
        if len(self._samples) < 2:
            return None
        now = self._samples[-1].at
        for sample in self._samples:
            if now - sample.at <= seconds + SAMPLE_EVERY_SECONDS / 2:
                return sample
        return None

    def cpu_load(self) -> float:
        """Cores in use over the last CPU_WINDOW_SECONDS, divided by the core count."""
        first = self._since(CPU_WINDOW_SECONDS)
        last = self._samples[-1] if self._samples else None
        if first is None or last is None or last.at <= first.at:
            return 0.0
        used = (last.cpu_seconds - first.cpu_seconds) / (last.at - first.at)
        return round(max(0.0, used) / self.cores, 4)

    def last_minute(self) -> dict[str, int]:
        """Frames late and dropped during the last FRAMES_WINDOW_SECONDS."""
        first = self._samples[0] if self._samples else None
        if first is None:
            return {"frames_late": 0, "frames_dropped": 0}
        return {
            "frames_late": self._stats.frames_late - first.frames_late,
            "frames_dropped": self._stats.frames_dropped - first.frames_dropped,
        }


class _NodeCollector(Collector):
    """Reads the node's counters at scrape time."""

    def __init__(
        self, sessions: SessionManager, sampler: LoadSampler, receivers: Callable[[], int]
    ) -> None:
        self._sessions = sessions
        self._sampler = sampler
        self._receivers = receivers

    def collect(self) -> Iterator[Metric]:
        stats = self._sessions.node.stats
        by_state = GaugeMetricFamily(
            "snowmux_sessions", "Playbacks known to the node, by state", labels=["state"]
        )
        counts: dict[str, int] = dict.fromkeys(("starting", "playing", "paused"), 0)
        for playback in self._sessions.playbacks.values():
            counts[playback.state] = counts.get(playback.state, 0) + 1
        for state, count in sorted(counts.items()):
            by_state.add_metric([state], count)
        yield by_state
        for name, value, text in (
            ("snowmux_frames_sent", stats.frames_sent, "Audio frames sent to receivers"),
            ("snowmux_frames_dropped", stats.frames_dropped, "Frames dropped for slow receivers"),
            ("snowmux_frames_late", stats.frames_late, "Frames sent over 20 ms after due"),
            ("snowmux_playbacks_started", stats.playbacks_started, "Playbacks that sent ready"),
        ):
            yield CounterMetricFamily(name, text, value=value)
        cpu = CounterMetricFamily(
            "snowmux_cpu_seconds", "CPU seconds used, by process", labels=["process"]
        )
        cpu.add_metric(["node"], self._sampler.node_cpu_seconds())
        cpu.add_metric(["codec_workers"], self._sampler.workers_cpu_seconds())
        yield cpu
        yield GaugeMetricFamily(
            "snowmux_cpu_load",
            "Cores in use over the last 10 s / core count",
            value=self._sampler.cpu_load(),
        )
        yield GaugeMetricFamily(
            "snowmux_receivers", "Receivers connected to the stream", value=self._receivers()
        )
        below, count = stats.lateness.cumulative(LATENESS_BUCKETS)
        yield HistogramMetricFamily(
            "snowmux_frame_lateness_seconds",
            "How late each paced frame was sent after its due time",
            buckets=[
                *((f"{bound:g}", n) for bound, n in zip(LATENESS_BUCKETS, below, strict=True)),
                ("+Inf", count),
            ],
            sum_value=stats.lateness.total_seconds,
        )


class NodeMetrics:
    """The node's Prometheus registry: its collector and the first-frame histogram."""

    def __init__(
        self, sessions: SessionManager, sampler: LoadSampler, receivers: Callable[[], int]
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_NodeCollector(sessions, sampler, receivers))
        self.first_frame = Histogram(
            "snowmux_play_to_first_frame_seconds",
            "From the play request to the playback's first audio frame",
            buckets=FIRST_FRAME_BUCKETS,
            registry=self.registry,
        )

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics and their Content-Type, in the format the ``Accept`` header asks for.

        prometheus-client negotiates: OpenMetrics when a scraper asks for it,
        else the classic text format.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
