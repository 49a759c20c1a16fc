"""The simulator in a process of its own, for benchmarks (a client in the same process would
share the GIL with the server and measure that instead)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
