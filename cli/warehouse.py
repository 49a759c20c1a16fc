"""The build, reconcile and report commands: call the SQL layer, show people the answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sql import (
    Break,
    BuildError,
    BuildResult,
    Cause,
    VerifiedFrom,
    WarehouseError,
    build,
    failed_data_tests,
    reconcile,
    report,
    root_causes,
    verified_from,
)
from storage import DataDir, UserError, first_line

EXIT_OK, EXIT_BREAKS, EXIT_ERROR = 0, 1, 2
CAUSE_COLUMNS = (
    "account",
    "status",
    "cause_kind",
    "assets",
    "happened_at",
    "symptoms",
    "description",
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


def run_build(data_dir: Path, console: Console, *, full: bool = False) -> BuildResult:
    _require_lake(data_dir)
    with _as_user_errors():
        result = build(data_dir, full=full)
    for failure in result.failures:
        console.print(f"[red]data test failed[/red]: {failure.message}")
    console.print(
        f"{_what_was_built(result)}; {len(result.tests)} data tests, {len(result.failures)} failed"
    )
    return result


def _what_was_built(result: BuildResult) -> str:
    took = f"in {result.seconds:.1f} s"
    if result.rebuilt is None:
        return f"built {len(result.models)} models, every account, into {result.warehouse} {took}"
    if not result.rebuilt:
        return f"{result.warehouse} is up to date: no account's data changed since it was built"
    accounts = ", ".join(result.rebuilt)
    return (
        f"rebuilt {len(result.models)} models of {accounts} (changed) in {result.warehouse} {took}"
    )


def build_cli(data_dir: Path, console: Console | None = None, *, full: bool = False) -> int:
    result = run_build(data_dir, console or Console(stderr=True), full=full)
    return EXIT_ERROR if result.failures else EXIT_OK


@dataclass(frozen=True)
class Reconciliation:
    """The break rows and their root causes, the provisional rows, from when each asset is
    verified, and the data tests the warehouse failed when it was built. `strict`: provisional
    rows count as breaks."""

    breaks: list[Break]
    provisional: list[Break]
    causes: list[Cause]
    coverage: list[VerifiedFrom]
    failed_tests: list[str]
    strict: bool = False

    @property
    def counted(self) -> list[Break]:
        """The rows that make the exit code 1."""
        return self.breaks + self.provisional if self.strict else self.breaks

    @property
    def exit_code(self) -> int:
        """Failed data tests make every figure doubtful: worse than a break."""
        if self.failed_tests:
            return EXIT_ERROR
        return EXIT_BREAKS if self.counted else EXIT_OK


def run_reconcile(data_dir: Path, strict: bool = False) -> Reconciliation:
    _require_lake(data_dir)
    with _as_user_errors():
        rows = reconcile(data_dir, include_provisional=True)
        return Reconciliation(
            breaks=[b for b in rows if b.status == "break"],
            provisional=[b for b in rows if b.status == "provisional"],
            causes=root_causes(data_dir, include_provisional=strict),
            coverage=verified_from(data_dir),
            failed_tests=failed_data_tests(data_dir),
            strict=strict,
        )


def reconcile_cli(data_dir: Path, console: Console | None = None, strict: bool = False) -> int:
    console = console or Console()
    outcome = run_reconcile(data_dir, strict)
    print_reconciliation(console, outcome)
    return outcome.exit_code


def print_reconciliation(console: Console, outcome: Reconciliation) -> None:
    """Root causes first; then what they explain, what is provisional and what is verified."""
    for message in outcome.failed_tests:
        console.print(f"[red]data test failed[/red]: {message}")
    if outcome.causes:
        console.print(f"root causes ({len(outcome.causes)}):")
    for number, cause in enumerate(outcome.causes, 1):
        console.print(cause_line(number, cause), markup=False, highlight=False, soft_wrap=True)
    for line in summary_lines(outcome):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def cause_line(number: int, cause: Cause) -> str:
    when = f" {cause.happened_at:%Y-%m-%d %H:%M:%S}" if cause.happened_at else ""
    rows = f"{cause.symptoms} row{'s' if cause.symptoms != 1 else ''}"
    return (
        f"  {number}. [{cause.status}] {cause.cause_kind} {cause.assets}{when} ({rows}, "
        f"{cause.account}): {cause.description}"
    )


def summary_lines(outcome: Reconciliation) -> list[str]:
    found = (
        f"{len(outcome.counted)} break row(s) from {len(outcome.causes)} root cause(s)"
        " (each row and its cause: recon_breaks)"
        if outcome.counted
        else "no breaks"
    )
    if outcome.failed_tests:
        found += f"; but {len(outcome.failed_tests)} data test(s) failed: the data is not clean"
    return [f"reconciliation: {found}", provisional_line(outcome), *verified_lines(outcome)]


def provisional_line(outcome: Reconciliation) -> str:
    if not outcome.provisional:
        return "provisional: none"
    oldest = min(outcome.provisional, key=lambda b: (b.interval_end, b.kind, b.asset))
    counted = "counted as breaks" if outcome.strict else "not counted: --strict counts them"
    return (
        f"provisional: {len(outcome.provisional)} row(s) that may still change ({counted}); "
        f"the oldest at {oldest.interval_end:%Y-%m-%d %H:%M:%S} ({oldest.kind} {oldest.asset})"
    )


def verified_lines(outcome: Reconciliation) -> list[str]:
    """From when the assets are verified, one line per account (details: recon_coverage)."""
    lines = []
    for account in sorted({c.account for c in outcome.coverage}):
        assets = [c for c in outcome.coverage if c.account == account]
        verified = [c for c in assets if c.verified_from is not None]
        text = f"verified ({account}): {len(verified)} of {len(assets)} asset(s)"
        if verified:
            first = min(c.verified_from for c in verified if c.verified_from)
            last = max(c.verified_from for c in verified if c.verified_from)
            since = f"{first:%Y-%m-%d %H:%M}"
            if last != first:
                since += f" to {last:%Y-%m-%d %H:%M}"
            kinds = ", ".join(sorted({c.anchor_kind for c in verified}))
            text += f" from {since} on (anchored: {kinds})"
        if missing := sorted(c.asset for c in assets if c.verified_from is None):
            text += f"; not verified: {', '.join(missing)}"
        lines.append(text + "; per asset: recon_coverage, gaps: recon_unverified")
    return lines


def run_report(data_dir: Path, month: str, out: str | None) -> list[Path] | list[str]:
    _require_lake(data_dir)
    with _as_user_errors():
        return report(data_dir, month, out) if out is not None else report(data_dir, month)


def report_cli(data_dir: Path, month: str, out: str | None, console: Console | None = None) -> int:
    console = console or Console(stderr=True)
    for path in run_report(data_dir, month, out):
        console.print(f"wrote {path}")
    return EXIT_OK
