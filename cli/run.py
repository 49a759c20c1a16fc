"""An export run from a terminal: a live display, as a Prefect flow or plain, then its summary."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from rich.console import Console

from cli.progress import RichExportProgress, cost_table, summary_table
from flows.export import ExportProgress, ExportRequest, ExportSummary, export_account
from flows.plan import ExportPlan, plan_export, planned_against_spent
from storage import UserError


def run_export(request: ExportRequest, *, prefect: bool, progress: bool) -> ExportSummary:
    """Plan, run one export with a live display, then print the one-screen summary with the
    planned cost beside the spent one."""
    console = Console(stderr=True)
    planned = quick_plan(request)
    display = RichExportProgress(console) if progress else None
    with display if display else contextlib.nullcontext():
        if prefect:
            summary = ExportSummary.from_dict(run_flow(request, display))
        else:
            summary = asyncio.run(export_account(request, display))
    console.print(summary_table(summary))
    if planned is not None:
        planned_against_spent(planned, summary)
        console.print(cost_table(summary))
    return summary


def quick_plan(request: ExportRequest) -> ExportPlan | None:
    """The run's plan from the coverage ledger and the specs alone: a few light calls, no
    probes (`export --plan` probes). None when it cannot be made: the run then says why."""
    try:
        return asyncio.run(plan_export(request, probes=False))
    except UserError:
        return None


def run_flow(request: ExportRequest, progress: ExportProgress | None) -> dict[str, Any]:
    """Run the export flow in this process: on the configured API, else a private server."""
    from prefect.settings import PREFECT_API_URL

    from flows.deployments import export_account_flow
    from flows.prefect_runtime import local_prefect_server
    from flows.tasks import TERMINAL_PROGRESS

    parameters: dict[str, Any] = {
        "account": request.account.name,
        "data_dir": str(request.data_dir),
        "since_ms": request.since_ms,
        "until_ms": request.until_ms,
        "streams": list(request.streams) if request.streams else None,
        "lookback_hours": request.lookback_hours,
    }
    shown = TERMINAL_PROGRESS.set(progress)
    try:
        if PREFECT_API_URL.value():
            return asyncio.run(export_account_flow(**parameters))
        with local_prefect_server(request.data_dir / "state" / "prefect"):
            return asyncio.run(export_account_flow(**parameters))
    finally:
        TERMINAL_PROGRESS.reset(shown)
