# Strategy: Opus passthrough (SPEC.md section 9, [P8]). When the first audio
# stream of a source already is what [P4] asks for (Opus, 48 kHz, stereo,
# 20 ms packets) and nothing would change the samples (volume 1, no filters,
# no end_at, no bitrate asked, no queue), the codec worker forwards the
# demuxed packets instead of decoding and re-encoding them: `opus-packets`
# gets them byte-identical, `opus` and `web` get them in Ogg pages written by
# PyAV's muxer (ogg_packets.py), one page per packet; `pcm` always decodes.
# Decisions:
# - Packet duration is read from each packet's TOC byte (RFC 6716, 3.1), not
#   from container timestamps, and checked on the first CHECK_PACKETS packets
#   before committing; anything else falls back to transcoding (the caller
#   reopens the source, since peeking consumed packets).
# - start_at inside a packet starts at that packet's boundary (at or before
#   start_at); for Ogg the difference goes into the OpusHead pre-skip, so the
#   decoded file starts exactly at start_at; raw `opus-packets` carry no
#   pre-skip, so they start up to 20 ms early. The packet's start comes from its
#   timestamp (sample-exact in Ogg, to the millisecond in WebM/Matroska),
#   except for the stream's first packet, whose start is -pre-skip exactly.
# - A passthrough is not forever: codec_worker.py switches a playback to
#   transcoding when a control or a queue operation reaches it; `position`
#   says where, and the Ogg muxer carries on with the encoder's packets.
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Generator, Iterator
from fractions import Fraction
from itertools import chain
from typing import Any, NamedTuple

import av

from snowmux.protocol import PayloadFormat

from ..audio_format import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE
from .encoders import Payload
from .filters import Filters
from .ogg_packets import OPUS_HEAD_SIZE, OggPacketMuxer, pre_skip_of, with_pre_skip
from .pipeline import DecodedAudio, MediaError
from .play_request import PlayRequest

__all__ = [
    "CHECK_PACKETS",
    "Passthrough",
    "open_passthrough",
    "opus_packet_samples",
    "passthrough_possible",
]

log = logging.getLogger("snowmux.node.passthrough")

# 0.5 s of packets checked before committing: encoders (libopus via FFmpeg,
# opusenc) keep one frame size for a whole stream, so a stream that starts
# with 20 ms packets keeps them.
CHECK_PACKETS = 25
# Seek this far before start_at: demuxers land on a page/cluster boundary at
# or before the target, and 2 s covers the largest Ogg pages and WebM clusters
# seen in practice. A shorter start_at is reached by reading from the start.
SEEK_MARGIN_SECONDS = 2.0
# Frame length in 1/10 ms by TOC configuration number (RFC 6716, table 2).
_FRAME_TENTHS_MS = (
    [100, 200, 400, 600] * 3  # SILK-only, configs 0-11
    + [100, 200] * 2  # hybrid, configs 12-15
    + [25, 50, 100, 200] * 4  # CELT-only, configs 16-31
)


def opus_packet_samples(packet: bytes) -> int | None:
    """Samples (48 kHz) that one Opus packet decodes to, from its TOC byte; None if malformed."""
    if not packet:
        return None
    toc = packet[0]
    frame = _FRAME_TENTHS_MS[toc >> 3] * SAMPLE_RATE // 10_000
    code = toc & 0x03
    if code == 0:
        return frame
    if code in (1, 2):
        return 2 * frame
    if len(packet) < 2:
        return None
    return (packet[1] & 0x3F) * frame


def passthrough_possible(audio: DecodedAudio, play: PlayRequest, queued: bool) -> bool:
    """Whether the request and the stream's parameters allow passthrough (before any packet)."""
    stream = audio.stream
    if stream is None or play.format is PayloadFormat.PCM or queued:
        return False
    if play.volume != 1.0 or play.filters != Filters() or play.end_at is not None:
        return False  # the samples must change: transcode
    if play.bitrate is not None:
        return False  # a bitrate was asked for: only the encoder can honour it
    codec = stream.codec_context
    extradata = bytes(codec.extradata or b"")
    return bool(
        codec.name == "opus"
        and stream.sample_rate == SAMPLE_RATE
        and codec.channels == CHANNELS
        and extradata.startswith(b"OpusHead")
        and len(extradata) >= OPUS_HEAD_SIZE
    )


class _Packet(NamedTuple):  # a tuple: made once per packet, on the worker's hot path
    data: bytes
    start: int | None  # in 48 kHz samples on the source timeline (after the pre-skip)
    samples: int  # decoded length (shorter for an end-trimmed last packet)


def _packets(container: Any, stream: Any) -> Iterator[_Packet]:
    if not stream.time_base:
        return
    # Integer arithmetic (Fraction costs as much as the demuxing): samples of
    # n time-base ticks = n x numerator x 48000 / denominator, rounded.
    time_base = Fraction(stream.time_base)
    scale, divisor = 2 * time_base.numerator * SAMPLE_RATE, 2 * time_base.denominator
    half = time_base.denominator
    for packet in container.demux(stream):
        if not packet.size:
            continue  # the demuxer's flush packet
        data = bytes(packet)
        samples = opus_packet_samples(data) or FRAME_SAMPLES
        duration, pts = packet.duration, packet.pts
        if duration:
            samples = min(samples, (duration * scale + half) // divisor)
        start = None if pts is None else (pts * scale + half) // divisor
        yield _Packet(data, start, samples)


class Passthrough:
    """The payloads of one passthrough playback (made by open_passthrough)."""

    def __init__(
        self,
        audio: DecodedAudio,
        audio_format: PayloadFormat,
        packets: Iterator[_Packet],
        first_start: int,
        opus_head: bytes,
    ) -> None:
        self._audio = audio
        self._packets = packets
        self._next_sample = first_start  # source sample where the next packet starts
        self.finished = False  # every packet went out (and the Ogg stream is closed)
        self.muxer = (
            None
            if audio_format is PayloadFormat.OPUS_PACKETS
            else OggPacketMuxer(audio.stream, opus_head)
        )

    @property
    def position(self) -> float:
        """Source seconds after the last packet taken (where a transcoder takes over)."""
        return max(0, self._next_sample) / SAMPLE_RATE

    def payloads(self) -> Generator[Payload, None, None]:
        """The payloads; closing the generator early leaves the Ogg muxer open for a successor."""
        try:
            if self.muxer is None:
                for packet in self._forwarded():
                    yield Payload(packet.data, False, self.position)
                self.finished = True
                return
            muxer = self.muxer
            positions: deque[float] = deque()  # a packet's page comes out one packet later
            for packet in self._forwarded():
                positions.append(self.position)
                for page in muxer.mux(packet.data, packet.samples):
                    yield page if page.is_header else _at(page, positions.popleft())
            self.finished = True
            for page in muxer.close():
                yield _at(page, positions.popleft() if positions else self.position)
        finally:
            self._audio.close()

    def _forwarded(self) -> Iterator[_Packet]:
        try:
            for packet in self._packets:
                self._next_sample += packet.samples
                yield packet
        except av.FFmpegError as exc:
            raise MediaError(f"demux error in {self._audio.source.url}: {exc}") from None

    def close(self) -> None:
        self._audio.close()


def _at(page: Payload, position: float) -> Payload:
    return Payload(page.data, page.is_header, position, page.events)


def open_passthrough(audio: DecodedAudio, play: PlayRequest) -> Passthrough | None:
    """A passthrough of ``audio`` (opened with open_stream()), or None when it must transcode.

    Call only when passthrough_possible(); on None the source has been read
    from and must be reopened for transcoding.
    """
    container, stream = audio.container, audio.stream
    target = round(play.start_at * SAMPLE_RATE)
    head = bytes(stream.codec_context.extradata)
    source_pre_skip = pre_skip_of(head)
    try:
        if play.start_at > SEEK_MARGIN_SECONDS:
            seek_to = int((play.start_at - SEEK_MARGIN_SECONDS) * av.time_base)
            container.seek(seek_to, backward=True, any_frame=False)
            from_start = False
        else:
            from_start = True
        packets = _packets(container, stream)
        first: _Packet | None = None
        first_start = 0
        for index, packet in enumerate(packets):
            start = packet.start
            if from_start and index == 0:
                start = -source_pre_skip  # exact, whatever the container's timestamp precision
            if start is None or start > target:
                return None  # no timestamps, or the seek overshot: transcode
            if start + packet.samples > target:
                first, first_start = packet, start
                break
        if first is None:
            return None  # start_at at or after the end: let the transcoder say so
        peeked = [first]
        for packet in packets:
            peeked.append(packet)
            if len(peeked) >= CHECK_PACKETS:
                break
    except av.FFmpegError:
        return None
    if any(opus_packet_samples(p.data) != FRAME_SAMPLES for p in peeked):
        return None
    if not _decodes(peeked[0].data):
        return None  # let the transcoder report why ([A4])
    opus_head = with_pre_skip(head, target - first_start)
    return Passthrough(audio, play.format, chain(peeked, packets), first_start, opus_head)


def _decodes(packet: bytes) -> bool:
    """The probe of SPEC.md [A4] for a passthrough: the first packet decodes."""
    decoder = av.CodecContext.create("opus", "r")
    decoder.sample_rate = SAMPLE_RATE
    decoder.layout = "stereo"
    try:
        return any(frame.samples for frame in decoder.decode(av.Packet(packet)))
    except av.FFmpegError:
        return False
