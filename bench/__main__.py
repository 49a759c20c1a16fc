"""`python -m bench [NAME ...]`: run the benchmarks and print each one's figures and ratios.

Each benchmark measures against a bound or a baseline taken in the same run, never against a
number remembered from another machine. Names: simulator, connector, export, sql, hourly, memory,
plan.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any

BENCHMARKS = {
    "simulator": "bench.bench_simulator",  # large scenario start-up, 100-row page latency
    "connector": "bench.bench_connector",  # export wall time vs the weight-budget bound, naive
    "export": "bench.bench_export",  # peak memory of a full large export vs 500 MB
    "sql": "bench.bench_sql",  # build + reconcile on 10 million ledger rows
    "hourly": "bench.bench_hourly",  # one account's new hour: rebuilt on the warehouse vs whole
    "memory": "bench.bench_memory",  # peak RSS of export and build at 1x and 4x
    "plan": "bench.bench_plan",  # export --plan against what the export spent
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    results: dict[str, Any] = {}
    for name in names or list(BENCHMARKS):
        began = time.perf_counter()
        results[name] = importlib.import_module(BENCHMARKS[name]).run()
        results[name]["bench_seconds"] = round(time.perf_counter() - began, 1)
        print(f"== {name}\n{json.dumps(results[name], indent=2, default=str)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
