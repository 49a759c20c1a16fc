"""The `margin-etl` command: thin wrappers that parse options and call the pipeline's functions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.config import data_dir_path, parse_date_ms, parse_month, resolve_account
from flows.errors import UserError

if TYPE_CHECKING:
    from flows.export import ExportRequest, ExportSummary

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
    ] = 24,
    prefect: Annotated[
        bool, typer.Option(help="Run as a Prefect flow (--no-prefect: plain, no server).")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show a live progress display.")] = True,
) -> None:
    """Export an account's margin history into the Parquet lake (incremental, resumable)."""
    from flows.export import ExportRequest, parse_streams

    if lookback_hours < 0:
        raise UserError("--lookback-hours must not be negative")
    request = ExportRequest(
        account=resolve_account(account, config),
        data_dir=data_dir_path(data_dir),
        since_ms=parse_date_ms(since, "--since") if since else None,
        until_ms=parse_date_ms(until, "--until") if until else None,
        streams=parse_streams(streams),
        lookback_ms=lookback_hours * 3_600_000,
    )
    run_export(request, prefect=prefect, progress=progress)


def run_export(request: ExportRequest, *, prefect: bool, progress: bool) -> ExportSummary:
    """Run one export with a live display, then print the one-screen summary."""
    import asyncio
    import contextlib

    from rich.console import Console

    from flows.export import ExportSummary, export_account
    from flows.progress import RichExportProgress, summary_table

    console = Console(stderr=True)
    display = RichExportProgress(console) if progress else None
    with display if display else contextlib.nullcontext():
        if prefect:
            from flows.prefect_flows import run_flow

            summary = ExportSummary.from_dict(run_flow(request, display))
        else:
            summary = asyncio.run(export_account(request, display))
    console.print(summary_table(summary))
    return summary


@app.command()
def build(data_dir: DataDirOption = None) -> None:
    """(Re)build the DuckDB models in DATA_DIR/warehouse.duckdb and run the data tests."""
    from flows.reporting import build_cli

    raise typer.Exit(build_cli(data_dir_path(data_dir)))


@app.command()
def reconcile(
    data_dir: DataDirOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Count provisional rows (may still change) as breaks.")
    ] = False,
) -> None:
    """Print the breaks by root cause; exit 0 when none, 1 when there are breaks."""
    from flows.reporting import reconcile_cli

    raise typer.Exit(reconcile_cli(data_dir_path(data_dir), strict=strict))


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
    from flows.reporting import report_cli

    raise typer.Exit(report_cli(data_dir_path(data_dir), parse_month(month), out))


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
    from flows.lake import compact_stream, recover_lake
    from flows.lock import DataDirLock

    directory = data_dir_path(data_dir)
    if not (directory / "lake").is_dir():
        raise UserError(f"no lake in {directory}: run `margin-etl export` first")
    console = Console(stderr=True)
    with DataDirLock(directory):
        recover_lake(directory)
        for stream in parse_streams(streams) or ALL_STREAMS:
            for written in compact_stream(directory, stream, min_files=min_files):
                console.print(f"{stream}: {written.account} {written.month} -> {written.rows} rows")


@app.command()
def demo(
    data_dir: DataDirOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated history.")] = 1,
) -> None:
    """Start the simulator, export, build, reconcile and report; exit 0 when nothing breaks."""
    from flows.demo import run_demo

    raise typer.Exit(run_demo(data_dir_path(data_dir) if data_dir else None, seed=seed))


@app.command()
def serve(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    hourly: Annotated[
        str, typer.Option(help="Cron of the per-account export + build + reconcile.")
    ] = "5 * * * *",
    nightly: Annotated[
        str, typer.Option(help="Cron of the full rebuild, data tests and reconcile.")
    ] = "30 2 * * *",
    monthly: Annotated[
        str, typer.Option(help="Cron of the previous month's reports.")
    ] = "0 6 1 * *",
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
    from flows.deployments import ServePlan, serve_deployments

    plan = ServePlan(
        config_path=str(config) if config else None,
        data_dir=str(data_dir) if data_dir else None,
        weight_pool=weight_pool,
        hourly_cron=hourly,
        nightly_cron=nightly,
        monthly_cron=monthly,
        timezone=timezone,
    )
    serve_deployments(plan, limit=limit)


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and a non-zero exit."""
    try:
        app()
    except UserError as exc:
        print(f"margin-etl: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("margin-etl: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
