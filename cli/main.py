"""The `margin-etl` command: thin wrappers that parse options and call the pipeline's functions."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.config import (
    LOOKBACK_HOURS,
    checked_data_dir,
    checked_range,
    load_accounts,
    others_can_read,
    parse_date_ms,
    parse_month,
    resolve_account,
)
from flows.schedules import HOURLY_CRON, MONTHLY_CRON, NIGHTLY_CRON
from models import now_ms
from storage import UserError

app = typer.Typer(
    name="margin-etl",
    help="Export, reconcile and report Binance cross-margin account history.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
sim_app = typer.Typer(help="The local Binance margin exchange simulator.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="DATA_DIR (default: $MARGIN_ETL_DATA_DIR or ./data)."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Accounts file (default: ./margin-etl.toml)."),
]
AccountOption = Annotated[
    str | None, typer.Option("--account", help="Account name from the config file.")
]


@sim_app.command("serve")
def sim_serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the generated history.")] = 1,
    scenario: Annotated[str, typer.Option(help="default, long, large, ...")] = "default",
    faults: Annotated[str, typer.Option(help="Fault profile: none, flaky, hostile.")] = "none",
    api_key: Annotated[str | None, typer.Option(help="Accepted API key.")] = None,
    api_secret: Annotated[str | None, typer.Option(help="Its secret.")] = None,
    truth_dir: Annotated[
        Path | None, typer.Option(help="Write the true history and account here.")
    ] = None,
    weight_limit: Annotated[int, typer.Option(help="IP weight per window, per endpoint.")] = 12000,
    weight_window_ms: Annotated[int, typer.Option(help="Weight window length (ms).")] = 60000,
    latency_ms: Annotated[int, typer.Option(help="Added latency per request (ms).")] = 0,
    api_generation: Annotated[
        str, typer.Option(help="API served: current (today's Binance), seed (2019) or both.")
    ] = "current",
    allow_remote: Annotated[
        bool, typer.Option(help="Allow a --host other machines can reach (its keys are public).")
    ] = False,
    controls: Annotated[
        bool | None,
        typer.Option(help="Serve the /_sim/* controls (default: on loopback only)."),
    ] = None,
) -> None:
    """Serve the simulated exchange until stopped; prints one line with its URL."""
    from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
    from simulator.endpoints import parse_api_generation
    from simulator.server import ServeOptions, serve

    options = ServeOptions(
        host,
        port,
        scenario,
        faults,
        truth_dir,
        weight_limit,
        weight_window_ms,
        latency_ms,
        allow_remote,
        controls,
    )
    try:
        options.check()
        parse_api_generation(api_generation)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    serve(
        host=host,
        port=port,
        seed=seed,
        scenario=scenario,
        faults=faults,
        api_key=api_key or DEFAULT_API_KEY,
        api_secret=api_secret or DEFAULT_API_SECRET,
        truth_dir=truth_dir,
        weight_limit=weight_limit,
        weight_window_ms=weight_window_ms,
        latency_ms=latency_ms,
        api_generation=api_generation,
        allow_remote=allow_remote,
        controls=controls,
    )


@app.command()
def export(
    since: Annotated[str | None, typer.Option(help="Start (UTC date or ISO time).")] = None,
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    streams: Annotated[
        str | None, typer.Option(help="Comma-separated streams (default: all).")
    ] = None,
    data_dir: DataDirOption = None,
    account: AccountOption = None,
    config: ConfigOption = None,
    lookback_hours: Annotated[
        int, typer.Option(help="Re-read this many trailing hours for late rows.")
    ] = LOOKBACK_HOURS,
    prefect: Annotated[
        bool, typer.Option(help="Run as a Prefect flow (--no-prefect: plain, no server).")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show a live progress display.")] = True,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the windows, requests, weight and least wall time the run would take; "
            "read no history, write nothing.",
        ),
    ] = False,
) -> None:
    """Export an account's margin history into the Parquet lake (incremental, resumable)."""
    from cli.run import run_export
    from flows.export import ExportRequest

    since_ms = parse_date_ms(since, "--since") if since else None
    until_ms = parse_date_ms(until, "--until") if until else None
    checked_until = checked_range(since_ms, until_ms, now_ms())
    if until_ms is not None and checked_until is None:
        note("--until lies in the future: exporting up to the exchange's now")
    request = ExportRequest.of(
        resolve_account(account, config),
        _data_dir(data_dir, writes=not plan),
        since_ms=since_ms,
        until_ms=checked_until,
        streams=streams,
        lookback_hours=lookback_hours,
    )
    if plan:
        from cli.plan import run_plan

        run_plan(request)
        return
    run_export(request, prefect=prefect, progress=progress)


@app.command()
def build(
    data_dir: DataDirOption = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Build every account again, not only those whose data changed."
        ),
    ] = False,
) -> None:
    """Build the DuckDB models in DATA_DIR/warehouse.duckdb and run the data tests.

    Only the accounts whose lake files or coverage changed since the last build are built
    again, unless the model files or settings changed (then every account is) or --full."""
    from cli.warehouse import build_cli

    raise typer.Exit(build_cli(_data_dir(data_dir, writes=True), full=full))


@app.command()
def reconcile(
    data_dir: DataDirOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Count provisional rows (may still change) as breaks.")
    ] = False,
) -> None:
    """Print the breaks by root cause; exit 0 when none, 1 when there are breaks."""
    from cli.warehouse import reconcile_cli

    raise typer.Exit(reconcile_cli(_data_dir(data_dir, writes=False), strict=strict))


@app.command()
def report(
    month: Annotated[str, typer.Option(help="Month to report, YYYY-MM.")],
    out: Annotated[
        str | None,
        typer.Option(help="Directory or s3:// URL for the CSVs (default: DATA_DIR/reports)."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the month's accounting CSVs (general ledger, interest, balances, trades, breaks)."""
    from cli.warehouse import report_cli

    chosen = parse_month(month)
    if out is not None and Path(out).is_file():
        raise UserError(f"--out {out} is a file, not a directory")
    raise typer.Exit(report_cli(_data_dir(data_dir, writes=out is None), chosen, out))


@app.command("sql")
def sql_query(
    query: Annotated[str, typer.Argument(help="SQL to run against DATA_DIR/warehouse.duckdb.")],
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV (the reports' format).")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Query the warehouse read-only and print the answer (a table by default)."""
    from cli.adhoc import format_of, sql_cli

    raise typer.Exit(sql_cli(_data_dir(data_dir, writes=False), query, format_of(csv, json)))


@app.command()
def compact(
    data_dir: DataDirOption = None,
    streams: Annotated[
        str | None, typer.Option(help="Comma-separated streams (default: all).")
    ] = None,
    min_files: Annotated[int, typer.Option(help="Compact partitions with this many files.")] = 2,
) -> None:
    """Rewrite each month partition's small files as one file, atomically (rows unchanged)."""
    from rich.console import Console

    from flows.export import ALL_STREAMS, parse_streams
    from storage import DataDir

    if min_files < 2:
        raise UserError("--min-files must be at least 2: one file is already compact")
    console = Console(stderr=True)
    chosen = parse_streams(streams) or ALL_STREAMS
    directory = _data_dir(data_dir, writes=True)
    for written in DataDir(directory).compact(chosen, min_files=min_files):
        console.print(f"{written.stream}: {written.account} {written.month} -> {written.rows} rows")


@app.command()
def demo(
    data_dir: DataDirOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated history.")] = 1,
    scenario: Annotated[
        str, typer.Option(help="Simulated account: default, veteran, tiny, long, ...")
    ] = "default",
) -> None:
    """Start the simulator, export, build, reconcile and report; exit 0 when nothing breaks."""
    from cli.demo import run_demo
    from simulator.scenarios import SCENARIOS

    if scenario not in SCENARIOS:
        raise UserError(f"unknown scenario {scenario!r}: use {', '.join(SCENARIOS)}")
    directory = _data_dir(data_dir, writes=True) if data_dir else None
    raise typer.Exit(run_demo(directory, seed=seed, scenario=scenario))


@app.command()
def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    hourly: Annotated[
        str, typer.Option(help="Cron of the per-account export + build + reconcile.")
    ] = HOURLY_CRON,
    nightly: Annotated[
        str, typer.Option(help="Cron of the full rebuild, data tests and reconcile.")
    ] = NIGHTLY_CRON,
    monthly: Annotated[
        str, typer.Option(help="Cron of the previous month's reports.")
    ] = MONTHLY_CRON,
    timezone: Annotated[str, typer.Option(help="Time zone of the crons.")] = "UTC",
    weight_pool: Annotated[
        str | None,
        typer.Option(help="Share the weight budget through this Prefect GCL (several machines)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Flow runs at once on this machine.")] = 4,
) -> None:
    """Run the scheduled flows on this machine until stopped (needs PREFECT_API_URL).

    Hourly: export, build and reconcile each configured account. Nightly: rebuild, data tests
    and reconcile every account. Monthly: the previous month's reports. See docs/deployments.md.
    """
    from flows.deployments import serve_deployments
    from flows.schedules import ServePlan

    plan = ServePlan(
        config_path=str(config) if config else None,
        data_dir=str(_data_dir(data_dir, writes=True)) if data_dir else None,
        weight_pool=weight_pool,
        hourly_cron=hourly,
        nightly_cron=nightly,
        monthly_cron=monthly,
        timezone=timezone,
    )
    plan.check()
    if limit < 1:
        raise UserError("--limit must be at least 1")
    if config is not None:
        load_accounts(config)  # unknown keys, missing variables: said now, not at the first run
    serve_deployments(plan, limit=limit)


def _data_dir(value: Path | None, *, writes: bool) -> Path:
    """DATA_DIR checked before anything runs, with a warning when other users can read it."""
    path = checked_data_dir(value, writes=writes)
    mode = others_can_read(path)
    if mode is not None:
        note(f"warning: data dir {path} is readable by other users (mode {mode:o}); chmod 700 it")
    return path


def note(text: str) -> None:
    """One line to the person at the terminal, beside the command's output."""
    print(f"margin-etl: {text}", file=sys.stderr)


def _private_umask() -> None:
    """What a run creates (lake, state, warehouse, reports, logs) is for its owner alone; a
    stricter umask still applies."""
    current = os.umask(0o077)
    os.umask(current | 0o077)


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and a non-zero exit."""
    _private_umask()
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        note(str(exc))
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # an unknown option, a value of the wrong type
        message = getattr(exc, "format_message", exc.__str__)()
        note((str(message).strip().splitlines() or ["invalid usage"])[0])
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        note("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
