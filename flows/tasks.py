"""The Prefect tasks the flows are made of, and the artifacts a run leaves.

One task per stream of an export (`export-stream`), one check and one report per account;
the rest is plain code in `flows.export` and `flows.checks`. Tasks take names, not live
objects: the stream task finds its export job by the run's id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_table_artifact,
    create_link_artifact,
)
from prefect.client.schemas.objects import StateType
from prefect.runtime import flow_run

from connectors import BudgetSettings, ClientSettings
from flows.checks import (
    OK,
    AccountCheck,
    artifact_key,
    breaks_markdown,
    check_warehouse,
    outcomes_markdown,
)
from flows.config import budget_settings
from flows.export import (
    AccountExport,
    ExportProgress,
    ExportRequest,
    ExportSummary,
    StreamResult,
    export_account,
    new_run_id,
)
from flows.shared_budget import SharedWeightBudget
from sql import STATEMENT_FILE, report

# The export job a stream task works on, by run id: task inputs are names, not live clients.
_JOBS: dict[str, AccountExport] = {}
# A display the process that runs the flow shows progress on (the CLI's); none under a worker.
TERMINAL_PROGRESS: ContextVar[ExportProgress | None] = ContextVar("terminal_progress", default=None)


def this_run_id() -> str:
    """The flow run's id, which the export takes as its own (a fresh one outside Prefect)."""
    return str(flow_run.get_id() or "") or new_run_id()


# -- the export, one task run per stream ---------------------------------------------------------
@task(name="export-stream", task_run_name="{account}:{stream}")
async def export_stream(run_id: str, account: str, stream: str) -> dict[str, Any]:
    """Read one stream of one account (all its scopes) into the lake."""
    return asdict(await _JOBS[run_id].export_stream(stream))


async def _stream_as_task(job: AccountExport, stream: str) -> StreamResult:
    _JOBS[job.run_id] = job
    return StreamResult(**await export_stream(job.run_id, job.account, stream))


async def export_in_tasks(
    request: ExportRequest, progress: ExportProgress | None, run_id: str, pool: str | None = None
) -> tuple[ExportSummary, list[dict[str, Any]]]:
    """Export with a task run per stream, the weight budget shared through `pool` if named.

    Returns the summary and what the shared budget lent (a row, or none without a pool).
    """
    budget = budget_settings()
    try:
        async with _shared_budget(pool, budget, run_id) as lease:
            settings = ClientSettings(
                api_generation=request.account.api_generation, budget=replace(budget, lease=lease)
            )
            summary = await export_account(
                replace(request, client_settings=settings),
                progress,
                run_id=run_id,
                stream_runner=_stream_as_task,
            )
    finally:
        _JOBS.pop(run_id, None)
    return summary, [lease.stats.row()] if lease is not None else []


@asynccontextmanager
async def _shared_budget(
    pool: str | None, budget: BudgetSettings, run_id: str
) -> AsyncIterator[SharedWeightBudget | None]:
    if pool is None:
        yield None
        return
    async with SharedWeightBudget(pool, budget, holder=_flow_run_uuid(run_id)) as lease:
        yield lease


def _flow_run_uuid(run_id: str) -> UUID | None:
    try:
        return UUID(run_id)
    except ValueError:  # a run id of our own, outside Prefect
        return None


class LoggedProgress:
    """Export progress as run-log lines that name the account and the stream."""

    def __init__(self, account: str) -> None:
        self.account = account

    def stream_started(self, stream: str, partitions: int) -> None:
        get_run_logger(account=self.account, stream=stream).info(
            "account=%s stream=%s: reading %d partition(s)", self.account, stream, partitions
        )

    def window_done(self, stream: str, rows: int) -> None:
        pass  # a line per window would drown the run log

    def waiting(self, reason: str, seconds: float) -> None:
        get_run_logger(account=self.account).info(
            "account=%s: waiting %.0f s for %s", self.account, seconds, reason
        )

    def stream_finished(self, stream: str, result: StreamResult) -> None:
        get_run_logger(account=self.account, stream=stream).info(
            "account=%s stream=%s: %d rows read, %d new, %d window(s)",
            self.account,
            stream,
            result.rows_read,
            result.rows_written,
            result.windows,
        )


# -- checks and reports ------------------------------------------------------------------------
@task(name="check-account", task_run_name="check:{account}")
def check_account(account: str, directory: Path) -> AccountCheck:
    """Rebuild the account's DuckDB models, run the data tests and reconcile."""
    check = check_warehouse(account, directory)
    get_run_logger(account=account).info("account=%s: %s %s", account, check.status, check.message)
    return check


@task(name="report-account", task_run_name="report:{account}:{month}")
def report_account(account: str, directory: Path, out: Path, month: str) -> dict[str, Any]:
    """Write the month's CSVs of one account; count the breaks that end in that month."""
    check = check_warehouse(account, directory)
    row: dict[str, Any] = {"account": account, "month": month, "files": 0, **check.row()}
    if check.status == "error":
        return row
    # the warehouse may hold other accounts (a shared object-store lake): count this one's
    files = [f for f in report(directory, month, out) if Path(f).parent.parent.name == account]
    for statement in (Path(f) for f in files if Path(f).name == STATEMENT_FILE):
        create_link_artifact(
            link=statement.resolve().as_uri(),
            link_text=f"{account} {month} statement",
            key=artifact_key("statement", account, month),
            description=f"monthly statement of {account} for {month} (one HTML file)",
        )
    in_month = [b for b in check.break_rows if b.interval_end.strftime("%Y-%m") == month]
    row.update(files=len(files), breaks=len(in_month))
    row["status"] = "breaks" if in_month else OK
    get_run_logger(account=account).info(
        "account=%s: %d report file(s) for %s, %d break(s)",
        account,
        len(files),
        month,
        len(in_month),
    )
    return row


# -- artifacts ---------------------------------------------------------------------------------
async def publish_summary(summary: ExportSummary) -> None:
    """Rows per stream as a table artifact, and the run's costs as markdown."""
    key = artifact_key("export", summary.account)
    table = [
        {
            "stream": r.stream,
            "partitions": r.partitions,
            "windows": r.windows,
            "rows_read": r.rows_read,
            "rows_written": r.rows_written,
        }
        for r in summary.streams.values()
    ]
    await acreate_table_artifact(
        table=table, key=key, description=f"rows per stream, run {summary.run_id}"
    )
    await acreate_markdown_artifact(
        key=f"{key}-costs",
        markdown=(
            f"**{summary.account}** up to `{summary.cutoff_ms}` ms: "
            f"{summary.rows_written} rows written in {summary.files} files; "
            f"{summary.requests} requests, weight {summary.weight}, {summary.retries} retries, "
            f"{summary.duration_s:.1f} s"
        ),
        description="export costs",
    )


async def publish_budget(rows: list[dict[str, Any]], account: str, pool: str | None) -> None:
    """What the shared budget lent the run, when it had one."""
    if rows:
        await acreate_table_artifact(
            table=rows,
            key=artifact_key("budget", account),
            description=f"weight leased from the shared budget {pool}",
        )


async def publish_outcomes(outcomes: list[dict[str, Any]], slot: str) -> None:
    """The hourly slot's child runs as a table, and which accounts landed as markdown."""
    await acreate_table_artifact(
        table=outcomes, key="hourly-accounts", description=f"account runs of slot {slot}"
    )
    await acreate_markdown_artifact(
        markdown=outcomes_markdown(outcomes, slot, StateType.COMPLETED.value),
        key="hourly-accounts-summary",
        description="which accounts landed",
    )


async def publish_checks(checks: Sequence[AccountCheck], key: str, title: str) -> None:
    """The status table (one row per account) and the markdown summary of breaks."""
    await acreate_table_artifact(
        table=[c.row() for c in checks], key=key, description=f"{title}: status per account"
    )
    await acreate_markdown_artifact(
        markdown=breaks_markdown(checks, title), key=f"{key}-breaks", description=title
    )
