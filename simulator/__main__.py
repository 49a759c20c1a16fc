"""`python -m simulator`: serve the simulated exchange (the same as `margin-etl sim serve`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from simulator import auth
from simulator.endpoints import API_GENERATIONS
from simulator.faults import PROFILES
from simulator.limits import IP_LIMIT, WINDOW_MS
from simulator.server import ServeOptions, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--faults", default="none", choices=sorted(PROFILES))
    parser.add_argument("--api-key", default=os.environ.get("SIM_API_KEY", auth.DEFAULT_API_KEY))
    parser.add_argument(
        "--api-secret", default=os.environ.get("SIM_API_SECRET", auth.DEFAULT_API_SECRET)
    )
    parser.add_argument("--truth-dir", default=None)
    parser.add_argument("--weight-limit", type=int, default=IP_LIMIT)
    parser.add_argument("--weight-window-ms", type=int, default=WINDOW_MS)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--start-ms", type=int, default=None)
    parser.add_argument("--api-generation", default="current", choices=API_GENERATIONS)
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument("--controls", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)
    options = ServeOptions(
        args.host,
        args.port,
        args.scenario,
        args.faults,
        Path(args.truth_dir) if args.truth_dir else None,
        args.weight_limit,
        args.weight_window_ms,
        args.latency_ms,
        args.allow_remote,
        args.controls,
    )
    try:
        options.check()
    except ValueError as exc:  # an option that cannot work: one line, exit 2
        parser.error(str(exc))
    serve(
        host=args.host,
        port=args.port,
        seed=args.seed,
        scenario=args.scenario,
        faults=args.faults,
        api_key=args.api_key,
        api_secret=args.api_secret,
        truth_dir=args.truth_dir,
        weight_limit=args.weight_limit,
        weight_window_ms=args.weight_window_ms,
        latency_ms=args.latency_ms,
        start_ms=args.start_ms,
        api_generation=args.api_generation,
        access_log=args.access_log,
        allow_remote=args.allow_remote,
        controls=args.controls,
    )


if __name__ == "__main__":
    main()
