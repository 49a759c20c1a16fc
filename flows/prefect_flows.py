"""Prefect flows over the plain pipeline: one task run per stream, a summary artifact per run."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL

from flows.config import resolve_account
from flows.export import (
    AccountExport,
    ExportProgress,
    ExportRequest,
    ExportSummary,
    StreamResult,
    export_account,
)

# The job a stream task works on, by run id: tasks take names, not live clients, as inputs.
_JOBS: dict[str, AccountExport] = {}
# Set by the CLI so a flow run can drive the terminal display; None under a worker.
_PROGRESS: ExportProgress | None = None


@task(name="export-stream", task_run_name="{stream}")
async def export_stream_task(run_id: str, stream: str) -> dict[str, Any]:
    """Read one stream of the account (all its partitions) into the lake."""
    return asdict(await _JOBS[run_id].export_stream(stream))


async def _stream_as_task(job: AccountExport, stream: str) -> StreamResult:
    _JOBS[job.run_id] = job
    return StreamResult(**await export_stream_task(job.run_id, stream))


@flow(name="export-account", flow_run_name="export-{account}")
async def export_account_flow(
    account: str,
    data_dir: str = "data",
    since_ms: int | None = None,
    until_ms: int | None = None,
    streams: list[str] | None = None,
    lookback_hours: int = 24,
    config_path: str | None = None,
) -> dict[str, Any]:
    """Export one account's margin history; credentials are resolved here, never passed in."""
    request = ExportRequest(
        account=resolve_account(account, Path(config_path) if config_path else None),
        data_dir=Path(data_dir),
        since_ms=since_ms,
        until_ms=until_ms,
        streams=tuple(streams) if streams else None,
        lookback_ms=lookback_hours * 3_600_000,
    )
    run_id = str(flow_run.get_id() or "") or None
    try:
        summary = await export_account(
            request, _PROGRESS, run_id=run_id, stream_runner=_stream_as_task
        )
    finally:
        if run_id:
            _JOBS.pop(run_id, None)
    await publish_summary(summary)
    return summary.as_dict()


async def publish_summary(summary: ExportSummary) -> None:
    """Rows per stream as a table artifact, and the run's costs as markdown."""
    key = f"export-{summary.account}".lower().replace("_", "-").replace(".", "-")
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


def run_flow(request: ExportRequest, progress: ExportProgress | None) -> dict[str, Any]:
    """Run the export flow from a CLI process: on the configured API, else a private server."""
    from flows.prefect_runtime import local_prefect_server

    global _PROGRESS
    _PROGRESS = progress
    parameters: dict[str, Any] = {
        "account": request.account.name,
        "data_dir": str(request.data_dir),
        "since_ms": request.since_ms,
        "until_ms": request.until_ms,
        "streams": list(request.streams) if request.streams else None,
        "lookback_hours": request.lookback_ms // 3_600_000,
    }
    try:
        if PREFECT_API_URL.value():
            return asyncio.run(export_account_flow(**parameters))
        with local_prefect_server(request.data_dir / "state" / "prefect"):
            return asyncio.run(export_account_flow(**parameters))
    finally:
        _PROGRESS = None
