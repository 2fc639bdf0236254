# Strategy: `snowmux conformance receiver -- CMD ...` (SPEC.md section 12).
# The harness plays the sender: for each example it listens on a fresh Unix
# socket, starts the receiver under test, writes a generated stream in
# chunks with small pauses, closes, and compares the receiver's NDJSON
# reports with what the reference decoder makes of the same bytes. Each
# property is a hypothesis test, so a failure is shrunk to a minimal stream
# and can be replayed with --seed. A receiver that hangs, crashes or never
# connects fails that example, bounded by --timeout; the run goes on.
from __future__ import annotations

import contextlib
import itertools
import json
import os
import selectors
import shlex
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from snowmux.protocol import (
    AudioFrame,
    Decoder,
    Event,
    Message,
    RemoteProtocolError,
    encode,
    load_vectors,
)

from ..defaults import RECEIVER_PROPERTIES
from ..protocol.reports import error_report, message_report, parse_report_line
from .strategies import ID_ALPHABET, events, frames, hostile_text, session_ids

__all__ = ["Example", "PropertyResult", "ReceiverHarness", "expected_reports"]

SOCKET_PLACEHOLDER = "{socket}"
GRACE_SECONDS = 0.15  # after the expected reports, how long extra lines may still show up
# Shrinking re-runs the receiver many times; past this budget the smallest
# failure found so far is reported. A hang or a crash is not shrunk at all.
SHRINK_BUDGET_SECONDS = 30.0


@dataclass(frozen=True)
class Example:
    """One stream and how it is written: (chunk, pause after it in seconds)."""

    writes: tuple[tuple[bytes, float], ...]

    @property
    def stream(self) -> bytes:
        return b"".join(chunk for chunk, _ in self.writes)

    def describe(self) -> str:
        return f"{len(self.stream)} bytes in {len(self.writes)} writes: {self.stream.hex()}"


@dataclass
class PropertyResult:
    name: str
    examples: int = 0
    failure: str | None = None
    minimal: Example | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


def expected_reports(stream: bytes) -> list[dict[str, Any]]:
    """What a conforming receiver reports for ``stream`` followed by EOF."""
    decoder = Decoder()
    reports: list[dict[str, Any]] = []
    try:
        reports.extend(message_report(m) for m in decoder.feed(stream))
        decoder.feed_eof()
    except RemoteProtocolError as error:
        reports.extend(message_report(m) for m in error.messages)
        reports.append(error_report(error))
    return reports


# -- strategies ---------------------------------------------------------------


@st.composite
def _writes(draw: st.DrawFn, stream: bytes, max_writes: int = 24) -> Example:
    """Cut ``stream`` at random points (1-byte writes included), with small pauses."""
    if draw(st.integers(0, 4)) == 0:  # sometimes: a run of 1-byte writes at a random place
        start = draw(st.integers(0, max(0, len(stream) - 1)))
        cuts = set(range(start, min(len(stream), start + 40)))
    else:
        cuts = set(draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=max_writes)))
    points = [0, *sorted(c for c in cuts if 0 < c < len(stream)), len(stream)]
    pause = st.sampled_from([0.0, 0.0, 0.001, 0.003])
    writes = tuple((stream[a:b], draw(pause)) for a, b in itertools.pairwise(points) if b > a)
    return Example(writes or ((stream, 0.0),))


def _stream_of(messages: list[Message], raw_braces: bool = False) -> bytes:
    return b"".join(_plain_event(m) if raw_braces else encode(m) for m in messages)


def _plain_event(message: Message) -> bytes:
    """An event as any JSON encoder writes it: braces in strings left as they are.

    snowmux's encoder escapes them (SPEC.md [E7], a SHOULD for senders), but a
    receiver MUST read both spellings ([E4]); this is how the harness still
    catches a receiver that counts braces.
    """
    if not isinstance(message, Event):
        return encode(message)
    text = json.dumps(message.data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


@st.composite
def valid_interleavings(draw: st.DrawFn) -> Example:
    ids = draw(st.lists(session_ids, min_size=2, max_size=8, unique=True))
    per_session = st.sampled_from(ids)
    messages = draw(
        st.lists(
            st.one_of(frames(per_session), frames(per_session), events(per_session)),
            min_size=1,
            max_size=30,
        )
    )
    return draw(_writes(_stream_of(messages)))


@st.composite
def escaped_events(draw: st.DrawFn) -> Example:
    session = st.sampled_from(draw(st.lists(session_ids, min_size=1, max_size=3, unique=True)))
    tricky = st.builds(
        lambda sid, text, note: Event.create("error", sid, message=text, note={"}": note}),
        session,
        hostile_text,
        hostile_text,
    )
    messages = draw(st.lists(st.one_of(tricky, frames(session)), min_size=1, max_size=12))
    return draw(_writes(_stream_of(messages, raw_braces=True)))


@st.composite
def ids_of_every_length(draw: st.DrawFn) -> Example:
    messages: list[Message] = []
    for length in range(1, 25):
        sid = draw(st.text(alphabet=ID_ALPHABET, min_size=length, max_size=length))
        messages.append(AudioFrame(sid, draw(st.binary(max_size=16))))
    draw(st.randoms()).shuffle(messages)
    return draw(_writes(_stream_of(messages)))


# -- running one example --------------------------------------------------------


@dataclass
class _Run:
    reports: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


class ReceiverHarness:
    def __init__(
        self,
        command: list[str],
        timeout: float = 5.0,
        seed: int = 0,
        max_examples: int = 25,
        log: Callable[[str], None] = print,
    ) -> None:
        self.command = command
        self.timeout = timeout
        self.seed = seed
        self.max_examples = max_examples
        self.log = log
        self._workdir = Path(tempfile.mkdtemp(prefix="snowmux-conformance-"))
        self._counter = 0

    def _argv(self, socket_path: Path) -> list[str]:
        return [arg.replace(SOCKET_PLACEHOLDER, str(socket_path)) for arg in self.command]

    def run_example(self, example: Example) -> _Run:
        """Serve ``example`` to a fresh receiver process; collect its reports."""
        self._counter += 1
        socket_path = self._workdir / f"r{self._counter}.sock"
        run = _Run()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(socket_path))
        listener.listen(1)
        listener.settimeout(self.timeout)
        env = {**os.environ, "SNOWMUX_SOCKET": str(socket_path)}
        stderr_path = self._workdir / f"r{self._counter}.stderr"
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                self._argv(socket_path),
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        try:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                run.problem = f"the receiver did not connect within {self.timeout}s"
                return run
            with connection:
                try:
                    for chunk, pause in example.writes:
                        connection.sendall(chunk)
                        if pause:
                            time.sleep(pause)
                except OSError as exc:
                    run.problem = f"the receiver closed the connection early: {exc}"
            expected = expected_reports(example.stream)
            self._collect(
                process,
                run,
                len(expected),
                expected_error=bool(expected) and expected[-1]["kind"] == "error",
            )
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(2)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        return run

    def _collect(
        self, process: subprocess.Popen[bytes], run: _Run, expected_count: int, expected_error: bool
    ) -> None:
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        buffer = b""
        deadline = time.monotonic() + self.timeout
        done_at: float | None = None
        try:
            while True:
                now = time.monotonic()
                limit = done_at if done_at is not None else deadline
                if now >= limit:
                    if done_at is None:
                        run.problem = run.problem or (
                            f"timed out after {self.timeout}s with {len(run.reports)} of "
                            f"{expected_count} reports"
                        )
                    return
                if not selector.select(limit - now):
                    continue
                data = os.read(process.stdout.fileno(), 65536)
                if not data:
                    if len(run.reports) < expected_count and process.poll() not in (None, 0):
                        run.problem = f"the receiver exited with code {process.returncode}"
                    return
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    report = parse_report_line(line.decode("utf-8", "replace"))
                    if report is not None:
                        run.reports.append(report)
                finished = len(run.reports) >= expected_count and (
                    not expected_error or any(r["kind"] == "error" for r in run.reports)
                )
                if finished and done_at is None:
                    done_at = time.monotonic() + GRACE_SECONDS
        finally:
            selector.close()

    def check(self, example: Example) -> tuple[str | None, bool]:
        """(what differs from the reference or None, whether the receiver hung or crashed)."""
        run = self.run_example(example)
        expected = expected_reports(example.stream)
        mismatch = compare_reports(expected, run.reports)
        if mismatch is None:
            return None, False
        return f"{mismatch}" + (f" ({run.problem})" if run.problem else ""), run.problem is not None

    # -- properties -------------------------------------------------------------

    def properties(self) -> dict[str, st.SearchStrategy[Example]]:
        return {
            "valid-interleaving": valid_interleavings(),
            "event-escaping": escaped_events(),
            "id-lengths": ids_of_every_length(),
        }

    def run_property(self, name: str, strategy: st.SearchStrategy[Example]) -> PropertyResult:
        result = PropertyResult(name)
        failures: list[tuple[Example, str]] = []
        first_failure_at: list[float] = []
        stop_shrinking = [False]

        @settings(
            max_examples=self.max_examples,
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            print_blob=False,
            suppress_health_check=list(HealthCheck),
        )
        @seed(self.seed)
        @given(strategy)
        def prop(example: Example) -> None:
            if stop_shrinking[0]:
                return  # budget spent: hypothesis keeps the smallest failure it has
            result.examples += 1
            problem, broke = self.check(example)
            if problem is not None:
                failures.append((example, problem))
                first_failure_at.append(time.monotonic())
                if broke or time.monotonic() - first_failure_at[0] > SHRINK_BUDGET_SECONDS:
                    stop_shrinking[0] = True
                raise AssertionError(problem)

        try:
            prop()
        except Exception as exc:  # AssertionError, or hypothesis's Flaky for a flaky receiver
            if failures:
                result.minimal, result.failure = failures[-1]
            else:
                result.failure = f"{type(exc).__name__}: {exc}"
        return result

    def run_vectors(self) -> PropertyResult:
        result = PropertyResult("vectors")
        for kind in ("valid", "invalid"):
            for vector in load_vectors()[kind]:
                if vector.get("options"):
                    continue  # they test non-default limits; a receiver runs with the defaults
                example = Example(((bytes.fromhex(vector["stream"]), 0.0),))
                result.examples += 1
                problem, _ = self.check(example)
                if problem is not None:
                    result.failure = f"vector {vector['name']!r}: {problem}"
                    result.minimal = example
                    return result
        return result

    def run_all(self, only: list[str] | None = None) -> list[PropertyResult]:
        results = []
        names = RECEIVER_PROPERTIES
        strategies = self.properties()
        for name in names:
            if only and name not in only:
                continue
            self.log(f"  checking {name} ...")
            results.append(
                self.run_vectors()
                if name == "vectors"
                else self.run_property(name, strategies[name])
            )
        return results


def compare_reports(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> str | None:
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        if want["kind"] == "error":
            if have.get("kind") != "error" or have.get("offset") != want["offset"]:
                return f"report {index}: expected {_short(want)}, got {_short(have)}"
            if "error" in have and have["error"] != want["error"]:
                return f"report {index}: expected error class {want['error']}, got {have['error']}"
            continue
        if have != want:
            return f"report {index}: expected {_short(want)}, got {_short(have)}"
    if len(got) < len(expected):
        return f"only {len(got)} of {len(expected)} reports; missing {_short(expected[len(got)])}"
    if len(got) > len(expected):
        return f"{len(got) - len(expected)} unexpected extra reports, first {_short(got[len(expected)])}"
    return None


def _short(report: dict[str, Any]) -> str:
    text = str(report)
    return text if len(text) < 200 else text[:197] + "..."


def render_results(
    results: list[PropertyResult], command: list[str], seed_value: int
) -> Iterator[str]:
    yield f"{'property':<22} {'examples':>8}  result"
    for result in results:
        yield f"{result.name:<22} {result.examples:>8}  {'pass' if result.passed else 'FAIL'}"
    for result in results:
        if result.passed:
            continue
        yield ""
        yield f"FAIL {result.name}: {result.failure}"
        if result.minimal is not None:
            yield f"  minimal stream: {result.minimal.describe()}"
        yield (
            f"  reproduce: snowmux conformance receiver --seed {seed_value} --only {result.name} -- "
            + shlex.join(command)
        )
