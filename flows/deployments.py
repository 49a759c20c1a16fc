"""The Prefect flows: an export on demand, the scheduled runs, and serving them on one machine.

- `export-account`: one account's export, as `margin-etl export` runs it.
- `account-pipeline`: one account, incrementally: export, rebuild its models, reconcile.
- `hourly-accounts`: one `account-pipeline` run per configured account, fanned out.
- `nightly-reconcile`: every account's models rebuilt from the whole lake, tested, reconciled.
- `monthly-report`: the month's accounting CSVs of every account.

Each flow body is the pipeline's steps; the steps are tasks (`flows.tasks`) and plain code
(`flows.export`, `flows.checks`). Each account has a data dir of its own,
DATA_DIR/accounts/<name>/ (lake, coverage ledger, warehouse and lock), so accounts export in
parallel on any worker that sees DATA_DIR, and one account's lock never holds up another; every
account's reports land under DATA_DIR/reports/<account>/<month>/. Flows take account names and
a config path, never credentials: Prefect stores parameters in clear, so each run resolves its
account's keys from the environment variables the config file names, on the machine that runs
it.

A run that finds reconciliation breaks or failed data tests ends Failed (after publishing its
artifacts), so Prefect's notifications fire; the parent run ends Failed when any account did.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.deployments import arun_deployment
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.checks import (
    OK,
    AccountCheck,
    artifact_key,
    errored,
    failure_message,
    previous_month,
)
from flows.config import (
    LOOKBACK_HOURS,
    config_file,
    configured_account_names,
    data_dir_path,
    parse_date_ms,
    resolve_account,
)
from flows.export import ExportRequest
from flows.schedules import ServePlan
from flows.shared_budget import resolve_pool
from flows.tasks import (
    TERMINAL_PROGRESS,
    LoggedProgress,
    check_account,
    export_in_tasks,
    publish_budget,
    publish_checks,
    publish_outcomes,
    publish_summary,
    report_account,
    this_run_id,
)
from storage import DataDir, UserError, first_line

ACCOUNT_FLOW = "account-pipeline"
LANDED = StateType.COMPLETED.value  # the state of a child run that landed
# "flow name/deployment name" of the per-account deployment, in prefect.yaml and `serve` alike
CHILD_DEPLOYMENT = f"{ACCOUNT_FLOW}/account"


# -- one export, on demand -----------------------------------------------------------------------
@flow(name="export-account", flow_run_name="export-{account}")
async def export_account_flow(
    account: str,
    data_dir: str = "data",
    since_ms: int | None = None,
    until_ms: int | None = None,
    streams: list[str] | None = None,
    lookback_hours: int = LOOKBACK_HOURS,
    config_path: str | None = None,
) -> dict[str, Any]:
    """Export one account's margin history; credentials are resolved here, never passed in."""
    request = ExportRequest.of(
        resolve_account(account, config_file(config_path)),
        Path(data_dir),
        since_ms=since_ms,
        until_ms=until_ms,
        streams=streams,
        lookback_hours=lookback_hours,
    )
    summary, _ = await export_in_tasks(request, TERMINAL_PROGRESS.get(), this_run_id())
    await publish_summary(summary)
    return summary.as_dict()


# -- one account: export, build, reconcile -------------------------------------------------------
@flow(name=ACCOUNT_FLOW, flow_run_name="pipeline-{account}")
async def account_pipeline(
    account: str,
    config_path: str | None = None,
    data_dir: str | None = None,
    lookback_hours: int = LOOKBACK_HOURS,
    since: str | None = None,
    until: str | None = None,
    streams: list[str] | None = None,
    weight_pool: str | None = None,
) -> dict[str, Any] | State[Any]:
    """One account, incrementally: export new rows, rebuild its models, reconcile.

    Parameters (no secrets: the account's keys come from the environment variables its config
    entry names):
    - account: a name from the config file's [accounts.<name>] tables.
    - config_path: the accounts file (default: $MARGIN_ETL_CONFIG, else ./margin-etl.toml).
    - data_dir: DATA_DIR (default: $MARGIN_ETL_DATA_DIR, else ./data); the account's data live
      in DATA_DIR/accounts/<account>/.
    - lookback_hours: trailing hours re-read for late or changed rows.
    - since / until: a backfill range (UTC date or ISO time); default: resume from coverage.
    - streams: a subset of streams (default: all).
    - weight_pool: share the weight budget with other workers under this GCL name prefix
      (default: $MARGIN_ETL_WEIGHT_POOL; unset: this run paces only itself).

    Ends Failed when reconciliation breaks or a data test fails, after publishing artifacts.
    """
    log = get_run_logger(account=account)
    directory = _account_dir(data_dir, account)
    pool = resolve_pool(weight_pool)
    status_key, title = artifact_key("reconciliation", account), f"{account} hourly"
    try:
        request = ExportRequest.of(
            resolve_account(account, config_file(config_path)),
            directory,
            since_ms=parse_date_ms(since, "since") if since else None,
            until_ms=parse_date_ms(until, "until") if until else None,
            streams=streams,
            lookback_hours=lookback_hours,
        )
        log.info("account=%s: exporting into %s (weight pool: %s)", account, directory, pool)
        summary, budget_rows = await export_in_tasks(
            request, LoggedProgress(account), this_run_id(), pool
        )
    except Exception as exc:  # the status table says so too, then the run fails with it
        failed_export = errored(account, f"export failed: {first_line(exc)}")
        await publish_checks([failed_export], status_key, title)
        raise
    await publish_summary(summary)
    await publish_budget(budget_rows, account, pool)
    check = check_account(account, directory)
    check.cutoff_ms = summary.cutoff_ms
    await publish_checks([check], status_key, title)
    failed = _failed([check], f"account {account}")
    if failed is not None:
        log.error("account=%s: %s", account, failed.message)
    return failed or {"export": summary.as_dict(), "check": check.row(), "budget": budget_rows}


# -- the parent: one child run per account -------------------------------------------------------
@flow(name="hourly-accounts")
async def hourly_accounts(
    config_path: str | None = None,
    data_dir: str | None = None,
    accounts: list[str] | None = None,
    lookback_hours: int = LOOKBACK_HOURS,
    weight_pool: str | None = None,
    child_deployment: str = CHILD_DEPLOYMENT,
    timeout_s: float = 3000,
    poll_s: float = 5,
) -> dict[str, Any] | State[Any]:
    """Fan out one `account-pipeline` run per account; fail if any account failed.

    Parameters: config_path, data_dir, lookback_hours and weight_pool are passed to every child
    as given (None: each child resolves its own default, on the machine it runs on); accounts
    defaults to every account in the config file; child_deployment is the per-account
    deployment ("flow/deployment"); timeout_s bounds the wait for the children.
    Children run on any worker of the pool; each fails or lands on its own.
    """
    names = accounts or configured_account_names(config_file(config_path))
    slot = flow_run.get_scheduled_start_time().astimezone(UTC).strftime("%Y%m%dT%H%M")
    shared = {
        "config_path": config_path,
        "data_dir": data_dir,
        "lookback_hours": lookback_hours,
        "weight_pool": weight_pool,
    }
    log = get_run_logger()
    log.info("dispatching %d account run(s): %s", len(names), ", ".join(names))
    started = await _dispatch(child_deployment, names, shared, slot)
    runs = await _until_final(started, timeout_s, poll_s)
    outcomes = [_outcome(name, run) for name, run in zip(names, runs, strict=True)]
    await publish_outcomes(outcomes, slot)
    failed = [o for o in outcomes if o["state"] != LANDED]
    for item in failed:
        log.error("account=%s: %s %s", item["account"], item["state"], item["message"])
    if failed:
        names_failed = ", ".join(o["account"] for o in failed)
        return Failed(message=f"{len(failed)} of {len(outcomes)} account(s) failed: {names_failed}")
    return {"accounts": outcomes}


async def _dispatch(
    deployment: str, names: Sequence[str], shared: dict[str, Any], slot: str
) -> list[FlowRun]:
    """Start one child run per account, one at a time (a SQLite server refuses concurrent
    writes: 503, back-off); a second dispatch of the same slot finds the same runs."""
    return [
        await arun_deployment(
            deployment,
            parameters={"account": name, **shared},
            flow_run_name=f"pipeline-{name}-{slot}",
            idempotency_key=f"{deployment}:{name}:{slot}",
            timeout=0,
        )
        for name in names
    ]


async def _until_final(runs: Sequence[FlowRun], timeout_s: float, poll_s: float) -> list[FlowRun]:
    """The runs once each is final, or as they are when `timeout_s` has passed."""
    latest = {run.id: run for run in runs}
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with get_client() as client:
        while True:
            pending = [i for i, r in latest.items() if not (r.state and r.state.is_final())]
            if not pending or asyncio.get_running_loop().time() >= deadline:
                return [latest[run.id] for run in runs]
            await asyncio.sleep(poll_s)
            for run_id in pending:
                latest[run_id] = await client.read_flow_run(run_id)


def _outcome(account: str, run: FlowRun) -> dict[str, Any]:
    state = run.state
    return {
        "account": account,
        "flow_run": run.name,
        "flow_run_id": str(run.id),
        "state": state.type.value if state else "UNKNOWN",
        "message": ((state.message or "") if state else "")[:300],
    }


# -- nightly and monthly -------------------------------------------------------------------------
@flow(name="nightly-reconcile")
async def nightly_reconcile(
    config_path: str | None = None,
    data_dir: str | None = None,
    accounts: list[str] | None = None,
) -> dict[str, Any] | State[Any]:
    """Every account: rebuild its models from the whole lake, run the data tests, reconcile.

    Publishes one status table for all accounts and one markdown summary of their breaks;
    ends Failed when any account has a break, a failed data test, or no warehouse.
    """
    names = accounts or configured_account_names(config_file(config_path))
    checks = [check_account(name, _account_dir(data_dir, name)) for name in names]
    await publish_checks(checks, "nightly-reconciliation", "Nightly reconciliation")
    return _failed(checks, "nightly reconciliation") or {"accounts": [c.row() for c in checks]}


@flow(name="monthly-report")
async def monthly_report(
    config_path: str | None = None,
    data_dir: str | None = None,
    accounts: list[str] | None = None,
    month: str | None = None,
) -> dict[str, Any] | State[Any]:
    """The month's accounting CSVs for every account, under DATA_DIR/reports/<account>/<month>/.

    month defaults to the month before the run's scheduled time (a run on the 1st reports the
    month just closed). Ends Failed when an account cannot be reported or has breaks that month.
    """
    chosen = month or previous_month(flow_run.get_scheduled_start_time())
    names = accounts or configured_account_names(config_file(config_path))
    out = DataDir(data_dir_path(_path(data_dir))).reports_dir
    rows = [report_account(name, _account_dir(data_dir, name), out, chosen) for name in names]
    await acreate_table_artifact(
        table=rows, key=artifact_key("monthly-report", chosen), description=f"reports {chosen}"
    )
    failed = [r for r in rows if r["status"] != OK]
    if failed:
        detail = ", ".join(f"{r['account']} ({r['status']}: {r['message']})" for r in failed)
        return Failed(message=f"monthly report {chosen}: {len(failed)} account(s): {detail}")
    return {"month": chosen, "accounts": rows}


def account_data_dir(data_root: Path, account: str) -> Path:
    """DATA_DIR/accounts/<name>: one account's lake, ledger, warehouse and lock."""
    return DataDir(data_root).account_dir(account).path


def _account_dir(data_dir: str | None, account: str) -> Path:
    return account_data_dir(data_dir_path(_path(data_dir)), account)


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _failed(checks: Sequence[AccountCheck], what: str) -> State[Any] | None:
    """A Failed state naming the failed accounts, or None when none failed."""
    message = failure_message(checks, what)
    return None if message is None else Failed(message=message)


# -- one box: `margin-etl serve` -------------------------------------------------------------------
def served_deployments(plan: ServePlan) -> list[Any]:
    """The four deployments, named as in prefect.yaml, with their schedules."""
    from prefect.schedules import Cron

    def every(cron: str) -> dict[str, Any]:
        return {"schedules": [Cron(cron, timezone=plan.timezone)], "concurrency_limit": 1}

    common, pooled = plan.parameters(), plan.pooled_parameters()
    return [
        account_pipeline.to_deployment(name="account", parameters=pooled),
        hourly_accounts.to_deployment(name="hourly", parameters=pooled, **every(plan.hourly_cron)),
        nightly_reconcile.to_deployment(
            name="nightly", parameters=common, **every(plan.nightly_cron)
        ),
        monthly_report.to_deployment(name="monthly", parameters=common, **every(plan.monthly_cron)),
    ]


def serve_deployments(plan: ServePlan, limit: int) -> None:
    """Run the schedules on this machine until stopped (needs a `prefect server start`)."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    if not (PREFECT_API_URL.value() or os.environ.get("PREFECT_API_URL")):
        raise UserError(
            "serve needs a Prefect server for its schedules: run `prefect server start` and "
            "set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api); see docs/deployments.md"
        )
    serve(*served_deployments(plan), limit=limit)
