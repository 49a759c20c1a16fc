"""The build, reconcile and report commands: call the SQL runner, show people the answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from flows.errors import UserError

EXIT_OK, EXIT_BREAKS, EXIT_ERROR = 0, 1, 2
BREAK_COLUMNS = (
    "account",
    "asset",
    "check",
    "interval_start",
    "interval_end",
    "expected",
    "actual",
    "difference",
    "status",
)


def _require_lake(data_dir: Path) -> None:
    if not (data_dir / "lake").is_dir():
        raise UserError(f"no lake in {data_dir}: run `margin-etl export` first")


def build_cli(data_dir: Path, console: Console | None = None) -> int:
    from sql.runner import build

    console = console or Console(stderr=True)
    _require_lake(data_dir)
    result = build(data_dir)
    failures = list(getattr(result, "failures", ()))
    for failure in failures:
        console.print(f"[red]data test failed[/red]: {failure}")
    models = getattr(result, "models", ())
    console.print(
        f"built {len(models)} models into {data_dir / 'warehouse.duckdb'}; "
        f"{len(failures)} data test failure(s)"
    )
    return EXIT_ERROR if failures else EXIT_OK


def reconcile_cli(data_dir: Path, console: Console | None = None) -> int:
    from sql.runner import reconcile

    console = console or Console()
    _require_lake(data_dir)
    breaks = reconcile(data_dir)
    if not breaks:
        console.print("reconciliation: no breaks")
        return EXIT_OK
    console.print(breaks_table(breaks))
    console.print(f"reconciliation: {len(breaks)} break(s)")
    return EXIT_BREAKS


def breaks_table(breaks: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="Reconciliation breaks")
    columns = [c for c in BREAK_COLUMNS if c in breaks[0]] or list(breaks[0])
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in breaks:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    return table


def report_cli(data_dir: Path, month: str, out: Path | None, console: Console | None = None) -> int:
    from sql.runner import report

    console = console or Console(stderr=True)
    _require_lake(data_dir)
    out_dir = out or data_dir / "reports" / month
    files = report(data_dir, month, out_dir)
    for path in files:
        console.print(f"wrote {path}")
    return EXIT_OK
