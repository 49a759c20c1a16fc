"""`margin-etl demo`: the whole path on the embedded simulator, in one command.

Starts the simulated exchange on a free loopback port, exports its account through the Prefect
flow, builds the DuckDB models, reconciles, writes every month's reports and prints a summary.
Exits 0 only when nothing breaks.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.run import run_export
from cli.warehouse import (
    Reconciliation,
    print_reconciliation,
    run_build,
    run_reconcile,
    run_report,
)
from flows.config import resolve_account
from flows.export import DEFAULT_HISTORY_MS, ExportRequest, ExportSummary
from models import from_ms
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from storage import UserError

DEMO_MARKER = ".margin-etl-demo"
DEMO_ACCOUNT = "demo"


def prepare_demo_dir(data_dir: Path) -> Path:
    """A fresh data dir: each demo simulates a new history, which must not meet an old lake."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / DEMO_MARKER).exists():
            raise UserError(f"{data_dir} is not empty and not a demo directory; choose another")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_MARKER).write_text("made by margin-etl demo; replaced by the next demo\n")
    return data_dir


def run_demo(
    data_dir: Path | None, seed: int = 1, use_prefect: bool = True, scenario: str = "default"
) -> int:
    from simulator.server import start_simulator

    console = Console(stderr=True)
    data_dir = prepare_demo_dir(data_dir or Path("data") / "demo")
    console.rule("margin-etl demo")
    # today's Binance: the export must not lean on an endpoint the real exchange removed
    with start_simulator(scenario=scenario, seed=seed, api_generation="current") as sim:
        console.print(f"simulator: scenario {scenario}, seed {seed}, today's API, at {sim.url}")
        summary = _export(sim.url, data_dir, use_prefect)
    run_build(data_dir, console)
    outcome = run_reconcile(data_dir)
    reports = [path for month in _months(summary) for path in run_report(data_dir, month, None)]
    _print_outcome(console, data_dir, outcome, reports)
    return outcome.exit_code


def _export(url: str, data_dir: Path, use_prefect: bool) -> ExportSummary:
    # the flow resolves credentials itself, from the environment, as it would under a worker
    demo_environment = {
        "BINANCE_API_KEY": DEFAULT_API_KEY,
        "BINANCE_API_SECRET": DEFAULT_API_SECRET,
        "BINANCE_BASE_URL": url,
        "MARGIN_ETL_ACCOUNT": DEMO_ACCOUNT,
    }
    with _environment(demo_environment):
        request = ExportRequest(resolve_account(DEMO_ACCOUNT), data_dir)
        return run_export(request, prefect=use_prefect, progress=True)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _months(summary: ExportSummary) -> list[str]:
    """Every month from the history's first (a first run's reach) to the cutoff's."""
    end = from_ms(summary.cutoff_ms)
    start = from_ms(summary.cutoff_ms - DEFAULT_HISTORY_MS)
    months: list[str] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _print_outcome(
    console: Console, data_dir: Path, outcome: Reconciliation, reports: list[Path | str]
) -> None:
    table = Table(title="demo outcome", show_header=False)
    table.add_row("lake", str(data_dir / "lake"))
    table.add_row(
        "warehouse",
        f'{data_dir / "warehouse.duckdb"}  (query: margin-etl sql --data-dir {data_dir} "...")',
    )
    statements = [r for r in reports if str(r).endswith(".html")]
    table.add_row(
        "reports",
        f"{len(reports) - len(statements)} CSV files and {len(statements)} monthly "
        f"statement(s) (statement.html) under {data_dir / 'reports'}",
    )
    console.print(table)
    print_reconciliation(console, outcome)
