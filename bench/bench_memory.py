"""Peak memory of a full export and of a full build, at one size and at four times it: flat
in the size of the history is the aim (within 10 %).

Export: the `large` scenario and `large4` (four times its history at the same pace), each
read in full by a real `margin-etl export` process from a simulator in another process.
Build: a generated lake (bench.bench_sql) of N and 4 N ledger lines over 50 accounts, and in
one account over a quarter and a year, each built by a real `margin-etl build` process.
Peaks are the kernel's accounting of each child (wait4).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_sql import ACCOUNTS, ONE_ACCOUNT_HOURS
from bench.sim_process import simulator_process, unpaced_export_env

UNLIMITED = 10**9  # weight is not what this measures
WINDOW_MS = 1000  # a one-second window lifts allOrders' request cap 60-fold
BUILD_ROWS = 2_500_000
FLAT_WITHIN = 0.10


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: float
    # The kernel starts a child's peak (ru_maxrss) from its parent's at the fork, so no peak
    # reads below this one: a parent that had grown to gigabytes would hide the child's own.
    floor_mb: float


def measured(command: list[str], env: dict[str, str]) -> Measured:
    """Run a command to its end: its seconds and peak resident MB, and the floor under that
    peak. Its stderr goes to a file, not a pipe, which a chatty child would fill and block on
    before it is read."""
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        if status != 0:
            stderr.seek(0)
            errors = stderr.read().decode(errors="replace")
            raise RuntimeError(f"{command[3]} failed: {errors[-2000:]}")
    return Measured(seconds, usage.ru_maxrss / 1024, floor)


def lake_rows(data: Path) -> int:
    """The rows the data dir's lake holds, from the Parquet footers."""
    import pyarrow.parquet as pq

    files = (data / "lake").rglob("*.parquet")
    return sum(int(pq.ParquetFile(path).metadata.num_rows) for path in files)


def export_peak(scenario: str) -> dict[str, Any]:
    with (
        simulator_process(scenario, weight_limit=UNLIMITED, weight_window_ms=WINDOW_MS) as url,
        tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp,
    ):
        env = unpaced_export_env(url, WINDOW_MS, UNLIMITED)
        data = Path(tmp) / "data"
        command = [sys.executable, "-m", "cli", "export", "--no-prefect", "--no-progress"]
        command += ["--data-dir", str(data), "--since", "2000-01-01"]
        export = measured(command, env)
        rows = lake_rows(data)
    return {
        "scenario": scenario,
        "rows": rows,
        "seconds": round(export.seconds, 1),
        "peak_mb": round(export.peak_mb),
        "parent_peak_mb": round(export.floor_mb),
    }


def build_peak(rows: int, accounts: int = ACCOUNTS, hours: int | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_memory_build_") as tmp:
        data = Path(tmp)
        lake = str(data / "lake")
        # generated in a process of its own: this one's peak is the floor of the build's
        generate = [sys.executable, "-m", "bench.bench_sql", "generate", lake, str(rows)]
        generate += [str(accounts)] + ([] if hours is None else [str(hours)])
        subprocess.run(generate, check=True)
        command = [sys.executable, "-m", "cli", "build", "--data-dir", str(data)]
        build = measured(command, dict(os.environ))
    return {
        "ledger_rows": rows,
        "accounts": accounts,
        "seconds": round(build.seconds, 1),
        "peak_mb": round(build.peak_mb),
        "parent_peak_mb": round(build.floor_mb),  # the least a child's peak can read
    }


def _growth(small: dict[str, Any], big: dict[str, Any]) -> float:
    return round(float(big["peak_mb"]) / float(small["peak_mb"]) - 1, 3)


def run() -> dict[str, Any]:
    exports = [export_peak("large"), export_peak("large4")]
    builds = [build_peak(BUILD_ROWS), build_peak(4 * BUILD_ROWS)]
    # one account: a quarter of a market maker's year, and the year
    quarter = ONE_ACCOUNT_HOURS // 4
    one = [build_peak(BUILD_ROWS, 1, quarter), build_peak(4 * BUILD_ROWS, 1, ONE_ACCOUNT_HOURS)]
    growth = {
        "export": _growth(*exports),
        "build": _growth(*builds),
        "build_one_account": _growth(*one),
    }
    return {
        "exports": exports,
        "builds": builds,
        "builds_one_account": one,
        "peak_growth_at_4x": growth,
        "flat_within_10_percent": all(g <= FLAT_WITHIN for g in growth.values()),
        "duckdb_memory_limit": os.environ.get("MARGIN_ETL_DUCKDB_MEMORY_LIMIT", "1GB"),
    }


if __name__ == "__main__":
    print(run())
