"""Peak memory of a full export of the `large` scenario, against the 500 MB bound.

The export runs as a real `margin-etl export` process (no Prefect, no display) against the
simulator in another process; its peak resident set comes from the kernel's accounting of
that child (wait4), so nothing else in this process is counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.sim_process import simulator_process, unpaced_export_env

BOUND_MB = 500
UNLIMITED = 10**9  # weight is not what this measures
# allOrders also caps requests per window (60); a one-second window lifts that cap 60-fold
WINDOW_MS = 1000


def run() -> dict[str, Any]:
    with (
        simulator_process("large", weight_limit=UNLIMITED, weight_window_ms=WINDOW_MS) as url,
        tempfile.TemporaryDirectory(prefix="bench_export_") as tmp,
    ):
        env = unpaced_export_env(url, WINDOW_MS, UNLIMITED)
        command = [sys.executable, "-m", "cli", "export", "--no-prefect", "--no-progress"]
        command += ["--data-dir", str(Path(tmp) / "data")]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        stderr = process.stderr.read().decode() if process.stderr else ""
        if status != 0:
            raise RuntimeError(f"export failed: {stderr[-2000:]}")
    peak_mb = usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
    return {
        "export_seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
        "bound_mb": BOUND_MB,
        "ratio_to_bound": round(peak_mb / BOUND_MB, 2),
        "within_bound": peak_mb < BOUND_MB,
        "summary": stderr.strip().splitlines()[-1] if stderr.strip() else "",
    }


if __name__ == "__main__":
    print(run())
