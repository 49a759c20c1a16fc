"""The simulator in a process of its own, for benchmarks (a client in the same process would
share the GIL with the server and measure that instead)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.server import BANNER


@contextmanager
def simulator_process(scenario: str = "large", seed: int = 1, **options: object) -> Iterator[str]:
    """Serve `scenario` on a free loopback port until the block ends; yields the URL."""
    command = [sys.executable, "-m", "simulator", "--scenario", scenario, "--seed", str(seed)]
    command += ["--port", "0"]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    try:
        if not line.startswith(BANNER):
            raise RuntimeError(f"the simulator did not start: {line!r}")
        yield line.split()[-1]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def unpaced_export_env(url: str, window_ms: int, limit: int) -> dict[str, str]:
    """The environment of a `margin-etl export` child reading the simulator at `url` with the
    simulator's default key, told the same weight limit and window the simulator was given."""
    return {
        **os.environ,
        "BINANCE_API_KEY": DEFAULT_API_KEY,
        "BINANCE_API_SECRET": DEFAULT_API_SECRET,
        "BINANCE_BASE_URL": url,
        "MARGIN_ETL_WEIGHT_LIMIT": str(limit),
        "MARGIN_ETL_WEIGHT_WINDOW_S": str(window_ms // 1000),
    }
