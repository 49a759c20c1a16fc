"""Kill a real export process at a chosen event of its run: after its N-th request to the
exchange, between the temporary write and the rename of its k-th lake file, or inside a coverage
commit before its k-th mark. Points are counted in events, never in seconds, so every point of a
run can be reached on any machine, fast or slow. Used by the kill tests and by `make chaos`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from flows.export import ExportSummary
from simulator.holds import RequestHold
from simulator.server import RunningSimulator
from storage import crashpoints

Event = Literal["request", "file", "mark"]
EVENTS: tuple[Event, ...] = ("request", "file", "mark")
# the crash point in the exporting process that each in-process event maps to
CRASH_POINTS: dict[Event, str] = {
    "file": crashpoints.FILE_WRITTEN,
    "mark": crashpoints.COVERAGE_MARK,
}
# Before the first commit marks anything, a killed run leaves coverage as it was, so the next
# run makes the same requests and writes the same files: kills at those events land for sure.
# A kill inside a commit moves coverage on, so it comes last.
DEFAULT_SEQUENCE: tuple[Event, ...] = ("request", "file", "request", "file", "mark")
REQUEST_SHARE = 0.9  # requests vary a little between runs (paging, retries): draw below the end
POLL_S = 0.02


@dataclass(frozen=True)
class EventCounts:
    """How many events of each kind one complete run had."""

    requests: int
    files: int
    marks: int

    @classmethod
    def of(cls, summary: ExportSummary) -> EventCounts:
        marks = sum(result.windows for result in summary.streams.values())
        return cls(summary.requests, summary.files, marks)

    def of_event(self, event: Event) -> int:
        count = {"request": self.requests, "file": self.files, "mark": self.marks}[event]
        return max(1, int(count * REQUEST_SHARE) if event == "request" else count)


@dataclass(frozen=True)
class KillPoint:
    event: Event
    at: int  # the k-th event of that kind in the run

    def __str__(self) -> str:
        return f"{self.event}#{self.at}"


def kill_plan(
    counts: EventCounts, rng: random.Random, sequence: Sequence[Event] = DEFAULT_SEQUENCE
) -> list[KillPoint]:
    """One kill point per event of ``sequence``, each drawn uniformly over the run's count."""
    return [KillPoint(event, rng.randint(1, counts.of_event(event))) for event in sequence]


@dataclass(frozen=True)
class RunOutcome:
    point: KillPoint | None
    killed: bool
    returncode: int
    stderr: str


def run_export(
    command: Sequence[str],
    env: Mapping[str, str],
    sim: RunningSimulator,
    point: KillPoint | None = None,
) -> RunOutcome:
    """Run one export process; kill -9 it at ``point`` unless it finishes first."""
    env = dict(env)
    env.pop(crashpoints.CRASH_AT_ENV, None)
    hold = None
    if point is not None and point.event == "request":
        hold = RequestHold(after=point.at)
        sim.app.hold = hold
    elif point is not None:
        env[crashpoints.CRASH_AT_ENV] = f"{CRASH_POINTS[point.event]}:{point.at}"
    # stderr to a file, not a pipe: a full pipe would stall the process before its kill point
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _wait(process, sim, hold)
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    killed = process.returncode == -signal.SIGKILL
    return RunOutcome(point, killed, process.returncode, stderr)


def _wait(
    process: subprocess.Popen[bytes], sim: RunningSimulator, hold: RequestHold | None
) -> None:
    try:
        if hold is not None:
            _kill_when_reached(process, hold)
        process.wait()
    finally:
        if hold is not None:
            sim.app.hold = None
            hold.release()
        if process.poll() is None:
            process.kill()
            process.wait()


def _kill_when_reached(process: subprocess.Popen[bytes], hold: RequestHold) -> None:
    """Wait until the process exits or its held request arrives; then kill -9 it there."""
    while process.poll() is None:
        if hold.reached.wait(POLL_S):
            os.kill(process.pid, signal.SIGKILL)
            return
