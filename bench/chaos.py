"""`make chaos`: the fault campaign. Seeded export runs against a hostile simulator, each killed
with kill -9 at seeded event points of its run, resumed, finished, compared row for row with
the simulator's truth, then built and reconciled; then the storage faults one at a time. Prints
one table; exits 0 only when nothing was lost, doubled or broken.

Each run: the simulator (scenario `tiny`, every fifth `default`, seeded) serves the `hostile`
fault profile; a reference export counts the run's events; 1-3 kill points are drawn from
those counts (a request answered, a lake file between write and rename, a coverage mark);
each killed process is followed by a new one; then the faults are calmed, one last export
catches up, and the truth is taken. `MARGIN_ETL_CHAOS_RUNS` (default 100) sets the number of
runs, `MARGIN_ETL_CHAOS_SEED` the first seed, `MARGIN_ETL_CHAOS_WORKERS` (4) how many run at
once; `python -m bench.chaos --replay SEED` runs one.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.chaos_child import export_to
from bench.chaos_faults import STORAGE_FAULTS, FaultCheck
from bench.kill_runs import EVENTS, Event, EventCounts, KillPoint, kill_plan, run_export
from simulator.server import RunningSimulator, start_simulator
from sql.runner import build, reconcile
from tests.flows.lake_truth import HISTORY, differences

RUNS = int(os.environ.get("MARGIN_ETL_CHAOS_RUNS", "100"))
FIRST_SEED = int(os.environ.get("MARGIN_ETL_CHAOS_SEED", "1000"))
# runs at once, each in a process of its own: a run waits on its exchange (Retry-After, slow
# answers) more than it computes (under half a core measured), so two cores keep four busy
WORKERS = int(os.environ.get("MARGIN_ETL_CHAOS_WORKERS", "4"))
WEIGHT_WINDOW_MS = 2000  # a killed run's spent budget must not make the next wait a minute
CHILD = [sys.executable, "-m", "bench.chaos_child"]


@dataclass
class RunRecord:
    """One campaign run: what was done to it and what it ended with."""

    seed: int
    scenario: str
    kills: list[str] = field(default_factory=list)
    unkilled: int = 0  # planned kills the run finished before reaching
    faults: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    lost: int = 0
    doubled: int = 0
    breaks: int = 0
    failed_tests: int = 0
    error: str = ""
    seconds: float = 0.0

    @property
    def harm(self) -> tuple[int, int, float]:
        """Worse first: wrong data or an error, then slowness."""
        wrong = self.lost + self.doubled + self.breaks + self.failed_tests + bool(self.error)
        return wrong, len(self.kills), self.seconds


def scenario_of(seed: int) -> str:
    return "default" if seed % 5 == 0 else "tiny"


def draw_kills(counts: EventCounts, rng: random.Random) -> list[KillPoint]:
    """1-3 kill points; one inside a commit, if drawn, comes last (it moves coverage on)."""
    kinds: list[Event] = [rng.choice(("request", "file")) for _ in range(rng.randint(0, 2))]
    if rng.random() < 0.5 or not kinds:
        kinds.append(rng.choice(EVENTS))
    kinds.sort(key=lambda kind: kind == "mark")
    return kill_plan(counts, rng, kinds)


def campaign_run(seed: int, root: Path) -> RunRecord:
    record = RunRecord(seed, scenario_of(seed))
    began = time.perf_counter()
    work = root / f"run-{seed}"
    try:
        with start_simulator(
            scenario=record.scenario, seed=seed, faults="hostile", weight_window_ms=WEIGHT_WINDOW_MS
        ) as sim:
            _kill_and_finish(sim, work, record, random.Random(seed))
    except Exception as exc:  # a campaign reports every failure, never stops on one
        record.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record.seconds = round(time.perf_counter() - began, 1)
    return record


def _kill_and_finish(
    sim: RunningSimulator, work: Path, record: RunRecord, rng: random.Random
) -> None:
    data = work / "data"
    counts = EventCounts.of(export_to(sim.url, work / "reference"))
    command = [*CHILD, sim.url, str(data)]
    for point in draw_kills(counts, rng):
        outcome = run_export(command, os.environ, sim, point)
        if outcome.killed:
            record.kills.append(str(point))
        elif outcome.returncode == 0:
            record.unkilled += 1
        else:
            lines = outcome.stderr.strip().splitlines() or [""]
            more = f" (after {len(lines) - 1} other stderr lines)" if len(lines) > 1 else ""
            print(outcome.stderr, file=sys.stderr)  # the whole story, for the campaign's log
            raise RuntimeError(f"run at {point} exited {outcome.returncode}: {lines[-1]}{more}")
    stats = httpx.get(f"{sim.url}/_sim/stats").json()
    record.faults.update(stats["fault_kinds"])
    record.faults["throttled (429)"] += stats["totals"]["throttled"]
    sim.app.set_faults("none")  # calm: the last export catches up, then the truth is taken
    summary = export_to(sim.url, data)
    truth = work / "truth"
    with sim.exchange.lock:
        sim.app.write_truth(truth)
    # the hostile profile serves transfer times in seconds: what the lake can know of them
    found = differences(
        data, truth, HISTORY, until_ms=summary.cutoff_ms, seconds_streams=("transfers",)
    )
    record.lost = sum(len(d["missing"]) for d in found.values())
    record.doubled = sum(len(d["extra"]) for d in found.values())
    result = build(data)
    record.failed_tests = len(result.failures)
    record.breaks = len(reconcile(data))
    record.rows = sum(r.rows_written for r in summary.streams.values())


def run_campaign(
    seeds: Sequence[int], root: Path, progress: Callable[[RunRecord], None]
) -> list[RunRecord]:
    records: list[RunRecord] = []
    # processes, not threads: each run's simulator, truth and build would share one GIL
    with ProcessPoolExecutor(WORKERS) as pool:
        for record in pool.map(functools.partial(campaign_run, root=root), seeds):
            records.append(record)
            progress(record)
    return records


def print_table(records: Sequence[RunRecord], checks: Sequence[FaultCheck]) -> None:
    faults: Counter[str] = Counter()
    for record in records:
        faults.update(record.faults)
    kills: Counter[str] = Counter(k.split("#")[0] for r in records for k in r.kills)
    worst = max(records, key=lambda r: r.harm) if records else None
    rows: list[tuple[str, Any]] = [
        ("runs", len(records)),
        (
            "kills (kill -9)",
            f"{sum(kills.values())} ({', '.join(f'{k} {n}' for k, n in sorted(kills.items()))})",
        ),
        ("kills planned, run finished first", sum(r.unkilled for r in records)),
        *((f"faults: {kind}", count) for kind, count in sorted(faults.items())),
        ("rows exported", sum(r.rows for r in records)),
        ("rows lost", sum(r.lost for r in records)),
        ("rows doubled", sum(r.doubled for r in records)),
        ("reconciliation breaks", sum(r.breaks for r in records)),
        ("data tests failed", sum(r.failed_tests for r in records)),
        ("runs with an error", sum(bool(r.error) for r in records)),
        ("slowest run", f"{max((r.seconds for r in records), default=0)} s"),
        ("worst run (replay)", f"seed {worst.seed}" if worst else "-"),
    ]
    rows += [(f"storage: {c.name}", c.verdict) for c in checks]
    width = max(len(name) for name, _ in rows)
    print("\n| what | count |\n|---|---|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


def clean(records: Sequence[RunRecord], checks: Sequence[FaultCheck]) -> bool:
    return all(r.harm[0] == 0 for r in records) and all(c.passed for c in checks)


def main(argv: list[str]) -> int:
    seeds = (
        [int(argv[1])] if argv[:1] == ["--replay"] else list(range(FIRST_SEED, FIRST_SEED + RUNS))
    )
    began = time.perf_counter()
    # the simulators' weight window, told to every export (in this process and its children)
    os.environ["MARGIN_ETL_WEIGHT_WINDOW_S"] = str(WEIGHT_WINDOW_MS // 1000)
    with tempfile.TemporaryDirectory(prefix="margin-etl-chaos-") as folder:
        root = Path(folder)

        def progress(record: RunRecord) -> None:
            status = record.error or (
                f"lost {record.lost}, doubled {record.doubled}, breaks {record.breaks}"
            )
            print(
                f"seed {record.seed} ({record.scenario}): kills {','.join(record.kills) or '-'}; "
                f"{status}; {record.seconds} s",
                flush=True,
            )

        records = run_campaign(seeds, root, progress)
        checks = [] if argv[:1] == ["--replay"] else [check.run(root) for check in STORAGE_FAULTS]
        for check in checks:
            print(f"storage fault {check.name}: {check.verdict}", flush=True)
    print_table(records, checks)
    print(f"\ncampaign took {time.perf_counter() - began:.0f} s on {os.cpu_count()} cores")
    return 0 if clean(records, checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
