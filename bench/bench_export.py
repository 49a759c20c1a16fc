"""Peak memory of a full export of the `large` scenario, against the 500 MB bound, and the cost
of the same export run again with nothing new (the no-op), side by side.

The export runs as a real `margin-etl export` process (no Prefect, no display) against the
simulator in another process; its peak resident set comes from the kernel's accounting of
that child (wait4), so nothing else in this process is counted. The no-op's requests are the
simulator's count; its files are the lake's Parquet files before and after.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_connector import reset_stats, stats
from bench.bench_memory import lake_rows, measured
from bench.sim_process import simulator_process, unpaced_export_env

BOUND_MB = 500
UNLIMITED = 10**9  # weight is not what this measures
# allOrders also caps requests per window (60); a one-second window lifts that cap 60-fold
WINDOW_MS = 1000


def _lake_files(data: Path) -> set[Path]:
    return set((data / "lake").rglob("*.parquet"))


def _partitions(files: set[Path]) -> int:
    """Account-month partitions of every stream (a stream's `<account>/<month>` folders)."""
    return len({f.parent for f in files})


def run() -> dict[str, Any]:
    with (
        simulator_process("large", weight_limit=UNLIMITED, weight_window_ms=WINDOW_MS) as url,
        tempfile.TemporaryDirectory(prefix="bench_export_") as tmp,
    ):
        env = unpaced_export_env(url, WINDOW_MS, UNLIMITED)
        data = Path(tmp) / "data"
        command = [sys.executable, "-m", "cli", "export", "--no-prefect", "--no-progress"]
        command += ["--data-dir", str(data)]
        export = measured(command, env)
        seconds, peak_mb = export.seconds, export.peak_mb
        before, rows = _lake_files(data), lake_rows(data)
        reset_stats(url)
        noop_seconds = measured(command, env).seconds
        noop_requests = stats(url)["totals"]["requests"]
        written = len(_lake_files(data) - before)
    partitions = _partitions(before)
    return {
        "export_seconds": round(seconds, 1),
        "rows": rows,
        "peak_rss_mb": round(peak_mb),
        "bound_mb": BOUND_MB,
        "ratio_to_bound": round(peak_mb / BOUND_MB, 2),
        "within_bound": peak_mb < BOUND_MB,
        "noop_seconds": round(noop_seconds, 1),
        "noop_over_export": round(noop_seconds / seconds, 3),
        "noop_requests": noop_requests,
        "partitions": partitions,
        "noop_requests_per_partition": round(noop_requests / partitions, 2),
        "noop_files_written": written,
    }


if __name__ == "__main__":
    print(run())
