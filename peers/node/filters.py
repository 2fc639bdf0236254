# Strategy: Lavalink v4's filter JSON, field for field (SPEC.md section 9,
# PATCH /session/{id}), as frozen values, their validation (a FilterError
# names the offending field, so the API answers 400 with it), and the stage
# that runs them on 48 kHz stereo s16 PCM in the codec worker.
#
# Every filter but one is an FFmpeg filter in one av.filter.Graph:
#   equalizer  -> one `equalizer` peak filter per non-zero band (Lavalink's
#                 gain g multiplies the band by 1 + 4g: -0.25 mutes it, 0.25
#                 doubles it, as lavaplayer's 15-band equalizer does)
#   karaoke    -> asplit + pan (l - level*r) + pan/bandpass/volume of the mono
#                 band + amix: lavadsp's "cut the centre, keep one band"
#   timescale  -> asetrate (pitch*rate) + aresample + atempo (speed/pitch)
#   tremolo    -> tremolo; vibrato -> vibrato; rotation -> apulsator (8D)
#   channelMix -> pan; lowPass -> a one-pole lowpass at the cutoff that
#                 matches lavaplayer's `y += (x - y) / smoothing`
# distortion is the exception: FFmpeg has no sin/cos/tan waveshaper, so it is
# a small numpy stage after the graph with lavadsp's exact formula.
# The volume filter is not in the graph: the chain folds it into its own
# ramped gain (chain.py), so a change never clicks.
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

import av
import numpy as np

from ..audio_format import BYTES_PER_SAMPLE, SAMPLE_RATE

__all__ = [
    "EQ_BANDS_HZ",
    "FilterError",
    "FilterStage",
    "Filters",
    "parse_filters",
]

# Lavalink's 15 equalizer bands (Hz), band 0..14.
EQ_BANDS_HZ = (25, 40, 63, 100, 160, 250, 400, 630, 1000, 1600, 2500, 4000, 6300, 10000, 16000)
EQ_MIN_GAIN, EQ_MAX_GAIN = -0.25, 1.0  # Lavalink's documented range
EQ_MUTE_DB = -60.0  # gain -0.25 (x0) as a finite dB figure for FFmpeg
MAX_VOLUME = 5.0  # Lavalink: 0.0-5.0, 1.0 is 100 %
MAX_TIMESCALE = 8.0  # beyond 8x speed or pitch nothing is listenable; bounds the graph
MIN_TIMESCALE = 0.125
MAX_VIBRATO_HZ = 14.0  # Lavalink's documented limit
MAX_MODULATION_HZ = 100.0  # tremolo/rotation: apulsator's ceiling; far above any audible use
MIN_FFMPEG_HZ = 0.1  # tremolo/vibrato cannot go slower; slower requests use 0.1 Hz
MIN_ROTATION_HZ = 0.01  # apulsator's floor; a slower rotation uses 0.01 Hz
ATEMPO_MIN, ATEMPO_MAX = 0.5, 2.0  # chained atempo stages stay in its best-quality range
_TIME_BASE = Fraction(1, SAMPLE_RATE)


class FilterError(ValueError):
    """A bad filter value; the message names the field (HTTP 400)."""


def _number(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    default: float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    value = obj.get(key, default)
    where = f"filters.{path}.{key}" if path else f"filters.{key}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FilterError(f'"{where}" must be a number')
    if low is not None and (value <= low if low_open else value < low):
        relation = ">" if low_open else ">="
        raise FilterError(f'"{where}" must be {relation} {low:g}, got {value}')
    if high is not None and value > high:
        raise FilterError(f'"{where}" must be <= {high:g}, got {value}')
    return float(value)


def _object(value: Any, path: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise FilterError(f'"filters.{path}" must be an object')
    for key in value:
        if key not in known:
            raise FilterError(f'unknown field "filters.{path}.{key}": use {", ".join(known)}')
    return value


@dataclass(frozen=True, slots=True)
class Karaoke:
    level: float = 1.0
    monoLevel: float = 1.0  # Lavalink JSON names, field for field
    filterBand: float = 220.0
    filterWidth: float = 100.0


@dataclass(frozen=True, slots=True)
class Timescale:
    speed: float = 1.0
    pitch: float = 1.0
    rate: float = 1.0


@dataclass(frozen=True, slots=True)
class Tremolo:
    frequency: float = 2.0
    depth: float = 0.5


@dataclass(frozen=True, slots=True)
class Vibrato:
    frequency: float = 2.0
    depth: float = 0.5


@dataclass(frozen=True, slots=True)
class Rotation:
    rotationHz: float = 0.0


@dataclass(frozen=True, slots=True)
class Distortion:
    sinOffset: float = 0.0
    sinScale: float = 1.0
    cosOffset: float = 0.0
    cosScale: float = 1.0
    tanOffset: float = 0.0
    tanScale: float = 1.0
    offset: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class ChannelMix:
    leftToLeft: float = 1.0
    leftToRight: float = 0.0
    rightToLeft: float = 0.0
    rightToRight: float = 1.0


@dataclass(frozen=True, slots=True)
class LowPass:
    smoothing: float = 20.0


@dataclass(frozen=True, slots=True)
class Filters:
    """A whole filter set; ``Filters()`` is no filter at all."""

    volume: float = 1.0
    equalizer: tuple[float, ...] = ()  # 15 gains, or () for none
    karaoke: Karaoke | None = None
    timescale: Timescale | None = None
    tremolo: Tremolo | None = None
    vibrato: Vibrato | None = None
    rotation: Rotation | None = None
    distortion: Distortion | None = None
    channelMix: ChannelMix | None = None
    lowPass: LowPass | None = None

    @property
    def speed(self) -> float:
        """How much faster than the source the output plays (timescale speed x rate)."""
        if self.timescale is None:
            return 1.0
        return self.timescale.speed * self.timescale.rate

    def to_json(self) -> dict[str, Any]:
        """The Lavalink JSON of this set, as GET status shows it."""
        out: dict[str, Any] = {}
        if self.volume != 1.0:
            out["volume"] = self.volume
        if self.equalizer:
            out["equalizer"] = [
                {"band": band, "gain": gain} for band, gain in enumerate(self.equalizer) if gain
            ]
        for name in ("karaoke", "timescale", "tremolo", "vibrato", "rotation", "distortion"):
            value = getattr(self, name)
            if value is not None:
                out[name] = {f.name: getattr(value, f.name) for f in fields(value)}
        if self.channelMix is not None:
            out["channelMix"] = {
                f.name: getattr(self.channelMix, f.name) for f in fields(ChannelMix)
            }
        if self.lowPass is not None:
            out["lowPass"] = {"smoothing": self.lowPass.smoothing}
        return out


def _equalizer(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise FilterError('"filters.equalizer" must be a list of {"band", "gain"} objects')
    gains = [0.0] * len(EQ_BANDS_HZ)
    for index, item in enumerate(value):
        path = f"equalizer[{index}]"
        entry = _object(item, path, ("band", "gain"))
        band = entry.get("band")
        if isinstance(band, bool) or not isinstance(band, int) or not 0 <= band < len(EQ_BANDS_HZ):
            raise FilterError(f'"filters.{path}.band" must be an integer from 0 to 14')
        gains[band] = _number(entry, "gain", path, 0.0, EQ_MIN_GAIN, EQ_MAX_GAIN)
    return tuple(gains) if any(gains) else ()


def _karaoke(value: Any) -> Karaoke:
    obj = _object(value, "karaoke", ("level", "monoLevel", "filterBand", "filterWidth"))
    return Karaoke(
        level=_number(obj, "level", "karaoke", 1.0, 0.0, 1.0),
        monoLevel=_number(obj, "monoLevel", "karaoke", 1.0, 0.0, 1.0),
        filterBand=_number(obj, "filterBand", "karaoke", 220.0, 0.0, SAMPLE_RATE / 2, True),
        filterWidth=_number(obj, "filterWidth", "karaoke", 100.0, 0.0, SAMPLE_RATE / 2, True),
    )


def _timescale(value: Any) -> Timescale:
    obj = _object(value, "timescale", ("speed", "pitch", "rate"))
    scale = {
        key: _number(obj, key, "timescale", 1.0, MIN_TIMESCALE, MAX_TIMESCALE)
        for key in ("speed", "pitch", "rate")
    }
    if not MIN_TIMESCALE <= scale["pitch"] * scale["rate"] <= MAX_TIMESCALE:
        raise FilterError(
            f'"filters.timescale": pitch x rate must be between {MIN_TIMESCALE:g} and {MAX_TIMESCALE:g}'
        )
    return Timescale(**scale)


def _modulation(value: Any, name: str, max_hz: float) -> dict[str, float]:
    obj = _object(value, name, ("frequency", "depth"))
    return {
        "frequency": _number(obj, "frequency", name, 2.0, 0.0, max_hz, True),
        "depth": _number(obj, "depth", name, 0.5, 0.0, 1.0, True),
    }


def _rotation(value: Any) -> Rotation:
    obj = _object(value, "rotation", ("rotationHz",))
    return Rotation(_number(obj, "rotationHz", "rotation", 0.0, 0.0, MAX_MODULATION_HZ))


def _distortion(value: Any) -> Distortion:
    names = tuple(f.name for f in fields(Distortion))
    obj = _object(value, "distortion", names)
    defaults = Distortion()
    return Distortion(
        **{name: _number(obj, name, "distortion", getattr(defaults, name)) for name in names}
    )


def _channel_mix(value: Any) -> ChannelMix:
    names = tuple(f.name for f in fields(ChannelMix))
    obj = _object(value, "channelMix", names)
    defaults = ChannelMix()
    return ChannelMix(
        **{
            name: _number(obj, name, "channelMix", getattr(defaults, name), 0.0, 1.0)
            for name in names
        }
    )


def _low_pass(value: Any) -> LowPass | None:
    obj = _object(value, "lowPass", ("smoothing",))
    smoothing = _number(obj, "smoothing", "lowPass", 20.0)
    return LowPass(smoothing) if smoothing > 1.0 else None  # Lavalink: <= 1 disables it


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "equalizer": _equalizer,
    "karaoke": _karaoke,
    "timescale": _timescale,
    "tremolo": lambda v: Tremolo(**_modulation(v, "tremolo", MAX_MODULATION_HZ)),
    "vibrato": lambda v: Vibrato(**_modulation(v, "vibrato", MAX_VIBRATO_HZ)),
    "rotation": _rotation,
    "distortion": _distortion,
    "channelMix": _channel_mix,
    "lowPass": _low_pass,
}
KNOWN = ("volume", *_PARSERS, "pluginFilters")


def parse_filters(value: Any) -> Filters:
    """Lavalink v4 filter JSON -> Filters; FilterError names the bad field."""
    if not isinstance(value, dict):
        raise FilterError('"filters" must be an object ({} clears every filter)')
    for key in value:
        if key not in KNOWN:
            raise FilterError(f'unknown filter "filters.{key}": use {", ".join(KNOWN)}')
    plugins = value.get("pluginFilters", {})
    if plugins not in ({}, None):
        raise FilterError('"filters.pluginFilters": this node has no filter plugins')
    parsed: dict[str, Any] = {}
    if "volume" in value:
        parsed["volume"] = _number(value, "volume", "", 1.0, 0.0, MAX_VOLUME)
    for key, parse in _PARSERS.items():
        if value.get(key) is not None:
            parsed[key] = parse(value[key])
    return Filters(**parsed)


# -- the stage ---------------------------------------------------------------


def _atempo_chain(factor: float) -> list[tuple[str, str]]:
    """atempo filters whose product is ``factor``, each within its best range."""
    stages = []
    while factor > ATEMPO_MAX:
        stages.append(("atempo", f"{ATEMPO_MAX}"))
        factor /= ATEMPO_MAX
    while factor < ATEMPO_MIN:
        stages.append(("atempo", f"{ATEMPO_MIN}"))
        factor /= ATEMPO_MIN
    if abs(factor - 1.0) > 1e-9:
        stages.append(("atempo", f"{factor:.9f}"))
    return stages


def _linear_filters(filters: Filters) -> list[tuple[str, str]]:
    """The graph's filters in order, after karaoke (which needs a split)."""
    chain: list[tuple[str, str]] = []
    if filters.timescale is not None:
        scale = filters.timescale
        resample = scale.pitch * scale.rate
        if abs(resample - 1.0) > 1e-9:
            chain.append(("asetrate", f"{round(SAMPLE_RATE * resample)}"))
            chain.append(("aresample", f"{SAMPLE_RATE}"))
        chain.extend(_atempo_chain(scale.speed / scale.pitch))
    for band, gain in enumerate(filters.equalizer):
        if gain:
            factor = 1.0 + 4.0 * gain
            db = EQ_MUTE_DB if factor <= 0 else max(EQ_MUTE_DB, 20 * math.log10(factor))
            chain.append(("equalizer", f"f={EQ_BANDS_HZ[band]}:width_type=o:width=1:g={db:.3f}"))
    if filters.tremolo is not None:
        t = filters.tremolo
        chain.append(("tremolo", f"f={max(MIN_FFMPEG_HZ, t.frequency)}:d={t.depth}"))
    if filters.vibrato is not None:
        v = filters.vibrato
        chain.append(("vibrato", f"f={max(MIN_FFMPEG_HZ, v.frequency)}:d={v.depth}"))
    if filters.rotation is not None and filters.rotation.rotationHz > 0:
        hz = max(MIN_ROTATION_HZ, filters.rotation.rotationHz)
        chain.append(("apulsator", f"hz={hz}:amount=1:mode=sine"))
    if filters.channelMix is not None:
        m = filters.channelMix
        chain.append(
            (
                "pan",
                f"stereo|c0={m.leftToLeft}*c0+{m.rightToLeft}*c1"
                f"|c1={m.leftToRight}*c0+{m.rightToRight}*c1",
            )
        )
    if filters.lowPass is not None:
        # lavaplayer: y += (x - y) / smoothing, a one-pole lowpass with
        # coefficient a = 1/smoothing, i.e. cutoff -ln(1 - a) * fs / 2pi.
        cutoff = -math.log(1.0 - 1.0 / filters.lowPass.smoothing) * SAMPLE_RATE / (2 * math.pi)
        chain.append(("lowpass", f"f={cutoff:.3f}:poles=1"))
    return chain


def needs_graph(filters: Filters) -> bool:
    return filters.karaoke is not None or bool(_linear_filters(filters))


class FilterStage:
    """One filter set running on s16 stereo PCM blocks; lengths change only with timescale."""

    def __init__(self, filters: Filters) -> None:
        self.filters = filters
        self._graph: Any = None
        self._pts = 0
        self._flushed = False
        if needs_graph(filters):
            self._graph = self._build(filters)
        # no filter at all: process() returns its input and flush() nothing, so
        # the chain may leave the stage out (its per-20 ms cost, bench/chain.py)
        self.passthrough = self._graph is None and filters.distortion is None

    @staticmethod
    def _build(filters: Filters) -> Any:
        graph = av.filter.Graph()
        tail: Any = graph.add_abuffer(
            format="s16", sample_rate=SAMPLE_RATE, layout="stereo", time_base=_TIME_BASE
        )
        if filters.karaoke is not None:
            k = filters.karaoke
            split = graph.add("asplit", "2")
            centre_cut = graph.add("pan", f"stereo|c0=c0-{k.level}*c1|c1=c1-{k.level}*c0")
            mono = graph.add("pan", "stereo|c0=0.5*c0+0.5*c1|c1=0.5*c0+0.5*c1")
            band = graph.add("bandpass", f"f={k.filterBand}:width_type=h:width={k.filterWidth}")
            band_level = graph.add("volume", f"volume={k.monoLevel * k.level}")
            mix = graph.add("amix", "inputs=2:normalize=0")
            tail.link_to(split)
            split.link_to(centre_cut, 0, 0)
            split.link_to(mono, 1, 0)
            mono.link_to(band)
            band.link_to(band_level)
            centre_cut.link_to(mix, 0, 0)
            band_level.link_to(mix, 0, 1)
            tail = mix
        for name, args in _linear_filters(filters):
            node = graph.add(name, args)
            tail.link_to(node)
            tail = node
        out = graph.add(
            "aformat", f"sample_fmts=s16:channel_layouts=stereo:sample_rates={SAMPLE_RATE}"
        )
        tail.link_to(out)
        sink = graph.add("abuffersink")
        out.link_to(sink)
        graph.configure()
        return graph

    def process(self, block: bytes) -> bytes:
        """Filter one block; the output may be shorter or longer (timescale, filter delay)."""
        if self._graph is None:
            return self._distort(block)
        if self._flushed:  # more input after the end (a track queued late): a fresh graph
            self._graph = self._build(self.filters)
            self._flushed = False
        samples = len(block) // BYTES_PER_SAMPLE
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(block)
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = _TIME_BASE
        frame.pts = self._pts
        self._pts += samples
        self._graph.push(frame)
        return self._distort(self._pull())

    def flush(self) -> bytes:
        """What the graph still holds at the end of the input (atempo keeps a window)."""
        if self._graph is None or self._flushed:
            return b""
        self._flushed = True
        self._graph.push(None)
        return self._distort(self._pull())

    def _pull(self) -> bytes:
        out = bytearray()
        while True:
            try:
                frame = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return bytes(out)
            out += bytes(frame.planes[0])[: frame.samples * BYTES_PER_SAMPLE]

    def _distort(self, block: bytes) -> bytes:
        d = self.filters.distortion
        if d is None or not block:
            return block
        x = np.frombuffer(block, dtype="<i2").astype(np.float32) / 32768.0
        result = d.offset + d.scale * (
            (d.sinOffset + np.sin(x * d.sinScale))
            * (d.cosOffset + np.cos(x * d.cosScale))
            * (d.tanOffset + np.tan(x * d.tanScale))
        )
        out: bytes = (np.clip(result, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
        return out
