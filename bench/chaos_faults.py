"""The storage and configuration faults of the campaign, one at a time: each must end in one
clear line and a non-zero exit with the lake unchanged, or be survived with nothing lost.

- two runs at once on one data directory: the second is refused, the first finishes;
- a full disk (ENOSPC) and an unwritable lake (EACCES) from the storage layer;
- a truncated Parquet file and a foreign one in the lake: `build` names the file;
- a damaged coverage database: `export` names it;
- a key revoked in the middle of a run: one line, nothing half-written;
- a local clock 10 minutes off: the export still equals the truth.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from bench.chaos_child import export_to
from connectors import client as client_module
from models import now_ms
from simulator.auth import DEFAULT_API_KEY
from simulator.holds import RequestHold
from simulator.server import RunningSimulator, start_simulator
from storage import crashpoints
from storage.coverage import ledger_path
from storage.lake import lake_files
from tests.flows.lake_truth import HISTORY, differences

CHILD = [sys.executable, "-m", "bench.chaos_child"]
CLI = [sys.executable, "-m", "cli"]
TEN_MINUTES_MS = 600_000


@dataclass
class FaultCheck:
    name: str
    probe: Callable[[RunningSimulator, Path], str | None]  # None: passed; else what went wrong
    passed: bool = False
    verdict: str = "not run"

    def run(self, root: Path) -> FaultCheck:
        work = root / f"fault-{self.name}"
        with start_simulator(scenario="tiny", seed=77, weight_window_ms=2000) as sim:
            try:
                problem = self.probe(sim, work)
            except Exception as exc:  # a campaign reports every failure, never stops on one
                problem = f"{type(exc).__name__}: {exc}"
        self.passed = problem is None
        self.verdict = "ok" if problem is None else f"FAILED: {problem}"
        return self


def _state(data: Path) -> tuple[frozenset[Path], int]:
    """The lake's files and the ledger's size: what a refused run must leave as it was."""
    files = frozenset(
        f for stream in (*HISTORY, "account_snapshots") for f in lake_files(data, stream)
    )
    return files, ledger_path(data).stat().st_size


def _one_line(stderr: str, returncode: int, *words: str) -> str | None:
    lines = stderr.strip().splitlines()
    if returncode == 0:
        return "exit 0"
    if len(lines) != 1 or not lines[0].startswith("margin-etl:"):
        return f"not one line: {lines[:3]}"
    missing = [w for w in words if w.lower() not in lines[0].lower()]
    return f"line lacks {missing}: {lines[0]}" if missing else None


def _equals_truth(sim: RunningSimulator, data: Path, work: Path) -> str | None:
    summary = export_to(sim.url, data)
    with sim.exchange.lock:
        sim.app.write_truth(work / "truth")
    found = differences(data, work / "truth", HISTORY, until_ms=summary.cutoff_ms)
    return None if not found else f"differs from the truth in {sorted(found)}"


def _new_rows(sim: RunningSimulator) -> None:
    httpx.post(f"{sim.url}/_sim/advance", params={"ms": 2 * 3_600_000}).raise_for_status()


def concurrent_runs(sim: RunningSimulator, work: Path) -> str | None:
    data = work / "data"
    env = dict(os.environ)
    hold = RequestHold(after=3)
    sim.app.hold = hold
    first = subprocess.Popen([*CHILD, sim.url, str(data)], env=env, stderr=subprocess.PIPE)
    try:
        if not hold.reached.wait(120):
            return "the first run never reached its third request"
        second = subprocess.run(
            [*CHILD, sim.url, str(data)], env=env, capture_output=True, text=True
        )
    finally:
        sim.app.hold = None
        hold.release()
    _, first_errors = first.communicate()
    if first.returncode != 0:
        return f"the first run failed: {first_errors.decode()}"
    return _one_line(second.stderr, second.returncode, "in use") or _equals_truth(sim, data, work)


def storage_error(name: str) -> Callable[[RunningSimulator, Path], str | None]:
    """A lake write that fails with errno `name` in a run with new rows to land."""

    def probe(sim: RunningSimulator, work: Path) -> str | None:
        data = work / "data"
        export_to(sim.url, data)
        before = _state(data)
        _new_rows(sim)
        env = {**os.environ, crashpoints.CRASH_AT_ENV: f"{crashpoints.FILE_WRITTEN}:1:{name}"}
        done = subprocess.run([*CHILD, sim.url, str(data)], env=env, capture_output=True, text=True)
        problem = _one_line(done.stderr, done.returncode, os.strerror(getattr(errno, name)))
        if problem:
            return problem
        if _state(data) != before:
            return "the lake or the ledger changed"
        return _equals_truth(sim, data, work)

    return probe


def _build(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "build", "--data-dir", str(data)], capture_output=True, text=True)


def truncated_parquet(sim: RunningSimulator, work: Path) -> str | None:
    data = work / "data"
    export_to(sim.url, data)
    victim = max(lake_files(data, "trades"), key=lambda f: f.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    done = _build(data)
    return _one_line(done.stderr, done.returncode, victim.name)


def foreign_parquet(sim: RunningSimulator, work: Path) -> str | None:
    data = work / "data"
    export_to(sim.url, data)
    folder = lake_files(data, "loans")[0].parent
    foreign = folder / "part-foreign.parquet"
    pq.write_table(pa.table({"customer": ["x"], "amount": [1.5]}), foreign)
    done = _build(data)
    return _one_line(done.stderr, done.returncode, foreign.name)


def damaged_ledger(sim: RunningSimulator, work: Path) -> str | None:
    data = work / "data"
    export_to(sim.url, data)
    ledger = ledger_path(data)
    raw = bytearray(ledger.read_bytes())
    raw[100:4096] = b"\xde\xad\xbe\xef" * ((4096 - 100) // 4)
    ledger.write_bytes(bytes(raw))
    _new_rows(sim)
    done = subprocess.run([*CHILD, sim.url, str(data)], capture_output=True, text=True)
    return _one_line(done.stderr, done.returncode, ledger.name)


def revoked_key(sim: RunningSimulator, work: Path) -> str | None:
    data = work / "data"
    export_to(sim.url, data)
    before = _state(data)
    _new_rows(sim)
    hold = RequestHold(after=4)
    sim.app.hold = hold
    process = subprocess.Popen([*CHILD, sim.url, str(data)], stderr=subprocess.PIPE, text=True)
    try:
        if not hold.reached.wait(120):
            return "the run never reached its fourth request"
        sim.app.keys.revoke(DEFAULT_API_KEY)
    finally:
        sim.app.hold = None
        hold.release()
    _, errors = process.communicate()
    problem = _one_line(errors, process.returncode, "API-key")
    if problem:
        return problem
    return None if _state(data)[0] >= before[0] else "lake files disappeared"


def clock_off(sim: RunningSimulator, work: Path) -> str | None:
    data = work / "data"
    # the client's clock only: coverage and the in-process simulator keep the true time
    with mock.patch.object(client_module, "now_ms", lambda: now_ms() + TEN_MINUTES_MS):
        export_to(sim.url, data)
    return _equals_truth(sim, data, work)


STORAGE_FAULTS = (
    FaultCheck("two runs on one data dir", concurrent_runs),
    FaultCheck("full disk (ENOSPC)", storage_error("ENOSPC")),
    FaultCheck("unwritable lake (EACCES)", storage_error("EACCES")),
    FaultCheck("truncated Parquet file", truncated_parquet),
    FaultCheck("foreign Parquet file", foreign_parquet),
    FaultCheck("damaged coverage database", damaged_ledger),
    FaultCheck("key revoked mid-run", revoked_key),
    FaultCheck("local clock 10 minutes off", clock_off),
)
