"""The build, reconcile and report commands: call the SQL layer, show people the answer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sql import (
    Break,
    BuildError,
    BuildResult,
    WarehouseError,
    build,
    failed_data_tests,
    reconcile,
    report,
)
from storage import DataDir, UserError, first_line

EXIT_OK, EXIT_BREAKS, EXIT_ERROR = 0, 1, 2
BREAK_COLUMNS = (
    "account",
    "asset",
    "kind",
    "interval_start",
    "interval_end",
    "expected",
    "actual",
    "difference",
    "terms",
)


@contextmanager
def _as_user_errors() -> Iterator[None]:
    """The SQL layer's own errors are for a person: one line, exit 2."""
    try:
        yield
    except (BuildError, WarehouseError) as exc:
        raise UserError(first_line(exc)) from None


def _require_lake(data_dir: Path) -> None:
    """A lake in DATA_DIR, or one on an object store named by MARGIN_ETL_LAKE_URL."""
    if not DataDir(data_dir).has_lake():
        raise UserError(f"no lake in {data_dir}: run `margin-etl export` first")


def run_build(data_dir: Path, console: Console) -> BuildResult:
    _require_lake(data_dir)
    with _as_user_errors():
        result = build(data_dir)
    for failure in result.failures:
        console.print(f"[red]data test failed[/red]: {failure.message}")
    console.print(
        f"built {len(result.models)} models into {result.warehouse} in {result.seconds:.1f} s; "
        f"{len(result.tests)} data tests, {len(result.failures)} failed"
    )
    return result


def build_cli(data_dir: Path, console: Console | None = None) -> int:
    result = run_build(data_dir, console or Console(stderr=True))
    return EXIT_ERROR if result.failures else EXIT_OK


@dataclass(frozen=True)
class Reconciliation:
    """The breaks, and the data tests the warehouse failed when it was built."""

    breaks: list[Break]
    failed_tests: list[str]

    @property
    def exit_code(self) -> int:
        """Failed data tests make every figure doubtful: worse than a break."""
        if self.failed_tests:
            return EXIT_ERROR
        return EXIT_BREAKS if self.breaks else EXIT_OK


def run_reconcile(data_dir: Path) -> Reconciliation:
    _require_lake(data_dir)
    with _as_user_errors():
        breaks = reconcile(data_dir)
        return Reconciliation(breaks, failed_data_tests(data_dir))


def reconcile_cli(data_dir: Path, console: Console | None = None) -> int:
    console = console or Console()
    outcome = run_reconcile(data_dir)
    print_reconciliation(console, outcome)
    return outcome.exit_code


def print_reconciliation(console: Console, outcome: Reconciliation) -> None:
    for message in outcome.failed_tests:
        console.print(f"[red]data test failed[/red]: {message}")
    if outcome.breaks:
        console.print(breaks_table(outcome.breaks))
    found = f"{len(outcome.breaks)} break(s)" if outcome.breaks else "no breaks"
    if outcome.failed_tests:
        found += f"; but {len(outcome.failed_tests)} data test(s) failed: the data is not clean"
    console.print(f"reconciliation: {found}")


def breaks_table(breaks: Sequence[Break]) -> Table:
    table = Table(title="Reconciliation breaks")
    for column in BREAK_COLUMNS:
        table.add_column(column, overflow="fold")
    for item in breaks:
        row = asdict(item)
        table.add_row(*(str(row.get(c) if row.get(c) is not None else "") for c in BREAK_COLUMNS))
    return table


def run_report(data_dir: Path, month: str, out: str | None) -> list[Path] | list[str]:
    _require_lake(data_dir)
    with _as_user_errors():
        return report(data_dir, month, out) if out is not None else report(data_dir, month)


def report_cli(data_dir: Path, month: str, out: str | None, console: Console | None = None) -> int:
    console = console or Console(stderr=True)
    for path in run_report(data_dir, month, out):
        console.print(f"wrote {path}")
    return EXIT_OK
