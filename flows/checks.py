"""What a scheduled run found, in plain terms: each account's check, and how to show it.

No Prefect here: the flows publish these rows and this markdown as artifacts, and the tests
read them without a server. An account check rebuilds the account's warehouse, runs the data
tests and reads every break; the markdown shows the first breaks with both sides' terms.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sql import Break, BuildError, WarehouseError, build, plain_decimal, reconcile
from storage import DataDir, UserError, first_line

OK = "ok"
MAX_BREAKS_SHOWN = 50


@dataclass
class AccountCheck:
    """One account's reconciliation status: a row of the status table artifact."""

    account: str
    status: str = OK  # ok | breaks | data-tests-failed | error
    breaks: int = 0
    provisional: int = 0
    data_tests: int = 0
    data_tests_failed: int = 0
    cutoff_ms: int | None = None
    message: str = ""
    break_rows: list[Break] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "break_rows"}

    @property
    def failed(self) -> bool:
        return self.status != OK


def errored(account: str, message: str) -> AccountCheck:
    """An account that could not be checked, and why."""
    return AccountCheck(account, status="error", message=message)


def check_warehouse(account: str, directory: Path) -> AccountCheck:
    """Rebuild the account's warehouse, run the data tests, and read every break."""
    if not DataDir(directory).has_lake():
        return errored(account, f"no lake in {directory}: no export has landed yet")
    try:
        result = build(directory)
        # a lake shared on an object store holds other accounts too: this run answers for one
        found = [b for b in reconcile(directory, include_provisional=True) if b.account == account]
    except (BuildError, WarehouseError, UserError) as exc:
        return errored(account, first_line(exc))
    check = AccountCheck(account, data_tests=len(result.tests))
    check.data_tests_failed = len(result.failures)
    check.break_rows = [b for b in found if b.status == "break"]
    check.breaks = len(check.break_rows)
    check.provisional = len(found) - check.breaks
    if check.breaks:
        check.status = "breaks"
    elif check.data_tests_failed:
        check.status = "data-tests-failed"
    failures = "; ".join(f.message for f in result.failures)
    check.message = f"{check.breaks} break(s), {check.data_tests_failed} failed data test(s)" + (
        f": {failures}" if failures else ""
    )
    return check


def failure_message(checks: Sequence[AccountCheck], what: str) -> str | None:
    """Why a run over these accounts fails, naming each failed one; None when none failed."""
    failed = [c for c in checks if c.failed]
    if not failed:
        return None
    names = ", ".join(f"{c.account} ({c.status}: {c.message})" for c in failed)
    return f"{what}: {len(failed)} of {len(checks)} account(s) failed: {names}"


def breaks_markdown(checks: Sequence[AccountCheck], title: str) -> str:
    """A summary of the breaks: per account, the first ones with both sides' terms."""
    lines = [f"# {title}", ""]
    for check in checks:
        lines += [f"## {check.account}: {check.status}", "", *_account_section(check), ""]
    return "\n".join(lines)


def _account_section(check: AccountCheck) -> list[str]:
    if check.status == "error":
        return [f"Error: {check.message}"]
    if not check.break_rows:
        passed = check.data_tests - check.data_tests_failed
        lines = [
            f"No breaks; {check.provisional} provisional interval(s); "
            f"{passed}/{check.data_tests} data tests passed."
        ]
        return [*lines, "", check.message] if check.data_tests_failed else lines
    lines = [
        "| asset | kind | interval | expected | actual | difference | terms |",
        "|---|---|---|---|---|---|---|",
        *(_break_line(b) for b in check.break_rows[:MAX_BREAKS_SHOWN]),
    ]
    if check.breaks > MAX_BREAKS_SHOWN:
        lines.append(f"\n…and {check.breaks - MAX_BREAKS_SHOWN} more.")
    return lines


def _break_line(item: Break) -> str:
    def amount(value: Any) -> str:
        return "" if value is None else plain_decimal(value)

    start = item.interval_start.isoformat() if item.interval_start else "opening"
    interval = f"{start} → {item.interval_end.isoformat()}"
    terms = item.terms.replace("|", "/").replace("\n", " ")
    return (
        f"| {item.asset} | {item.kind} | {interval} | {amount(item.expected)} | "
        f"{amount(item.actual)} | {amount(item.difference)} | {terms} |"
    )


def outcomes_markdown(outcomes: Iterable[dict[str, Any]], slot: str, landed_state: str) -> str:
    """Which account runs of an hourly slot landed (state ``landed_state``), one line each."""
    items = list(outcomes)
    landed = [o for o in items if o["state"] == landed_state]
    lines = [f"# Hourly run {slot}: {len(landed)} of {len(items)} account(s) landed", ""]
    for o in items:
        mark = "ok" if o in landed else f"**{o['state']}**"
        lines.append(f"- {o['account']}: {mark} {o['message']}".rstrip())
    return "\n".join(lines)


def artifact_key(*parts: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text)


def previous_month(instant: datetime) -> str:
    """The month before `instant`'s (UTC): what a run on the 1st reports."""
    moment = instant.astimezone(UTC)
    year, month = (moment.year - 1, 12) if moment.month == 1 else (moment.year, moment.month - 1)
    return f"{year:04d}-{month:02d}"
