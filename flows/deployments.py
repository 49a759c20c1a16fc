"""Flows for scheduled deployments: hourly account pipelines fanned out by a parent run, a
nightly full reconcile with the data tests, and a monthly report run.

Each account has a data dir of its own, DATA_DIR/accounts/<name>/ (lake, coverage ledger,
warehouse and lock), so accounts export in parallel on any worker that sees DATA_DIR, and one
account's lock never holds up another; every account's reports land under
DATA_DIR/reports/<account>/<month>/. Flows take account names and a config path, never
credentials: Prefect stores parameters in clear, so each run resolves its account's keys from
the environment variables the config file names, on the machine that runs it.

A run that finds reconciliation breaks or failed data tests ends Failed (after publishing its
artifacts), so Prefect's notifications fire; the parent run ends Failed when any account did.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_table_artifact,
    create_link_artifact,
)
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.deployments import arun_deployment
from prefect.runtime import flow_run
from prefect.states import Failed

from connectors.budget import BudgetSettings
from connectors.client import ClientSettings
from flows.config import (
    account_tables,
    budget_settings,
    data_dir_path,
    default_config_path,
    load_accounts,
    parse_date_ms,
    resolve_account,
)
from flows.errors import UserError
from flows.export import (
    AccountExport,
    ExportRequest,
    ExportSummary,
    StreamResult,
    export_account,
    new_run_id,
    parse_streams,
)
from flows.lake import validate_account_name
from flows.prefect_flows import publish_summary
from flows.shared_budget import SharedWeightBudget, resolve_pool
from flows.storage import is_object_url, lake_location
from sql.reports import STATEMENT_FILE, plain_decimal, report
from sql.runner import Break, BuildError, WarehouseError, build, reconcile

ACCOUNT_FLOW = "account-pipeline"
# "flow name/deployment name" of the per-account deployment, in prefect.yaml and `serve` alike
CHILD_DEPLOYMENT = f"{ACCOUNT_FLOW}/account"
HOURLY_CRON = "5 * * * *"
NIGHTLY_CRON = "30 2 * * *"
MONTHLY_CRON = "0 6 1 * *"
MAX_BREAKS_SHOWN = 50
OK = "ok"


# -- where things are --------------------------------------------------------------------------
def account_data_dir(data_root: Path, account: str) -> Path:
    """DATA_DIR/accounts/<name>: one account's lake, ledger, warehouse and lock."""
    return data_root / "accounts" / validate_account_name(account)


def reports_dir(data_root: Path) -> Path:
    return data_root / "reports"


def _config(config_path: str | None) -> Path | None:
    return Path(config_path) if config_path else default_config_path()


def _data_root(data_dir: str | None) -> Path:
    return data_dir_path(Path(data_dir) if data_dir else None)


def configured_account_names(config_path: Path | None) -> list[str]:
    """Account names from the config file, without touching their credentials.

    The parent run needs names only; each account's keys are resolved by its own run, so one
    missing environment variable fails that account alone. With no config file, the account
    the environment defines (BINANCE_API_KEY/SECRET) is the only one.
    """
    if config_path is None:
        return sorted(load_accounts(None))
    section = account_tables(config_path)
    if not section:
        raise UserError(f"{config_path}: no [accounts.<name>] tables")
    return sorted(validate_account_name(name) for name in section)


def artifact_key(*parts: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text)


def previous_month(instant: datetime) -> str:
    """The month before `instant`'s (UTC): what a run on the 1st reports."""
    moment = instant.astimezone(UTC)
    year, month = (moment.year - 1, 12) if moment.month == 1 else (moment.year, moment.month - 1)
    return f"{year:04d}-{month:02d}"


# -- what a check found --------------------------------------------------------------------------
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


def check_warehouse(account: str, directory: Path) -> AccountCheck:
    """Rebuild the account's warehouse, run the data tests, and read every break."""
    check = AccountCheck(account)
    if not _has_lake(directory):
        return _errored(check, f"no lake in {directory}: no export has landed yet")
    try:
        result = build(directory)
        # a lake shared on an object store holds other accounts too: this run answers for one
        found = [b for b in reconcile(directory, include_provisional=True) if b.account == account]
    except (BuildError, WarehouseError, UserError) as exc:
        return _errored(check, str(exc).splitlines()[0])
    check.data_tests = len(result.tests)
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


def _has_lake(directory: Path) -> bool:
    """A local lake in the data dir, or one on an object store (flows/storage.py)."""
    location = lake_location(directory)
    return is_object_url(location) or Path(location).is_dir()


def _errored(check: AccountCheck, message: str) -> AccountCheck:
    check.status, check.message = "error", message
    return check


def breaks_markdown(checks: Sequence[AccountCheck], title: str) -> str:
    """A summary of the breaks: per account, the first ones with both sides' terms."""
    lines = [f"# {title}", ""]
    for check in checks:
        lines.append(f"## {check.account}: {check.status}")
        lines.append("")
        if check.status == "error":
            lines += [f"Error: {check.message}", ""]
            continue
        if not check.break_rows:
            lines += [
                f"No breaks; {check.provisional} provisional interval(s); "
                f"{check.data_tests - check.data_tests_failed}/{check.data_tests} data tests "
                "passed.",
                "",
            ]
            if check.data_tests_failed:
                lines += [check.message, ""]
            continue
        lines += [
            "| asset | kind | interval | expected | actual | difference | terms |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [_break_line(b) for b in check.break_rows[:MAX_BREAKS_SHOWN]]
        if check.breaks > MAX_BREAKS_SHOWN:
            lines.append(f"\n…and {check.breaks - MAX_BREAKS_SHOWN} more.")
        lines.append("")
    return "\n".join(lines)


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


async def publish_checks(checks: Sequence[AccountCheck], key: str, title: str) -> None:
    """The status table (one row per account) and the markdown summary of breaks."""
    await acreate_table_artifact(
        table=[c.row() for c in checks], key=key, description=f"{title}: status per account"
    )
    await acreate_markdown_artifact(
        markdown=breaks_markdown(checks, title), key=f"{key}-breaks", description=title
    )


def _failure(checks: Sequence[AccountCheck], what: str) -> State[Any] | None:
    failed = [c for c in checks if c.failed]
    if not failed:
        return None
    names = ", ".join(f"{c.account} ({c.status}: {c.message})" for c in failed)
    return Failed(message=f"{what}: {len(failed)} of {len(checks)} account(s) failed: {names}")


# -- one account: export, build, reconcile -------------------------------------------------------
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

    def stream_finished(self, stream: str, result: StreamResult) -> None:
        get_run_logger(account=self.account, stream=stream).info(
            "account=%s stream=%s: %d rows read, %d new, %d window(s)",
            self.account,
            stream,
            result.rows_read,
            result.rows_written,
            result.windows,
        )


# The export job a stream task works on, by run id: task inputs are names, not live clients.
_JOBS: dict[str, AccountExport] = {}


@task(name="export-stream", task_run_name="{account}:{stream}")
async def export_stream(run_id: str, account: str, stream: str) -> dict[str, Any]:
    """Read one stream of one account (all its partitions) into the lake."""
    return asdict(await _JOBS[run_id].export_stream(stream))


async def _stream_as_task(job: AccountExport, stream: str) -> StreamResult:
    _JOBS[job.run_id] = job
    return StreamResult(**await export_stream(job.run_id, job.account, stream))


@task(name="check-account", task_run_name="check:{account}")
def check_account(account: str, directory: Path) -> AccountCheck:
    """Rebuild the account's DuckDB models, run the data tests and reconcile."""
    check = check_warehouse(account, directory)
    get_run_logger(account=account).info("account=%s: %s %s", account, check.status, check.message)
    return check


@asynccontextmanager
async def _shared_budget(
    pool: str | None, budget: BudgetSettings, run_id: str
) -> AsyncIterator[SharedWeightBudget | None]:
    if pool is None:
        yield None
        return
    async with SharedWeightBudget(pool, budget, holder=_flow_run_uuid(run_id)) as lease:
        yield lease


async def _export(
    request: ExportRequest, pool: str | None, run_id: str
) -> tuple[ExportSummary, list[dict[str, Any]]]:
    """Export, with the budget shared through a Prefect GCL when a pool is named."""
    budget = budget_settings()
    async with _shared_budget(pool, budget, run_id) as lease:
        settings = ClientSettings(
            api_generation=request.account.api_generation, budget=replace(budget, lease=lease)
        )
        summary = await export_account(
            replace(request, client_settings=settings),
            LoggedProgress(request.account.name),
            run_id=run_id,
            stream_runner=_stream_as_task,
        )
    return summary, [lease.stats.row()] if lease is not None else []


def _flow_run_uuid(run_id: str) -> UUID | None:
    try:
        return UUID(run_id)
    except ValueError:  # a run id of our own, outside Prefect
        return None


@flow(name=ACCOUNT_FLOW, flow_run_name="pipeline-{account}")
async def account_pipeline(
    account: str,
    config_path: str | None = None,
    data_dir: str | None = None,
    lookback_hours: int = 24,
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
    logger = get_run_logger(account=account)
    directory = account_data_dir(_data_root(data_dir), account)
    run_id = str(flow_run.get_id() or "") or new_run_id()
    pool = resolve_pool(weight_pool)
    status_key = artifact_key("reconciliation", account)
    try:
        request = ExportRequest(
            account=resolve_account(account, _config(config_path)),
            data_dir=directory,
            since_ms=parse_date_ms(since, "since") if since else None,
            until_ms=parse_date_ms(until, "until") if until else None,
            streams=parse_streams(",".join(streams)) if streams else None,
            lookback_ms=lookback_hours * 3_600_000,
        )
        logger.info("account=%s: exporting into %s (weight pool: %s)", account, directory, pool)
        summary, budget_rows = await _export(request, pool, run_id)
    except Exception as exc:  # the status table says so too, then the run fails with it
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        check = _errored(AccountCheck(account), f"export failed: {reason}")
        await publish_checks([check], status_key, f"{account} hourly")
        raise
    finally:
        _JOBS.pop(run_id, None)
    await publish_summary(summary)
    if budget_rows:
        await acreate_table_artifact(
            table=budget_rows,
            key=artifact_key("budget", account),
            description=f"weight leased from the shared budget {pool}",
        )
    check = check_account(account, directory)
    check.cutoff_ms = summary.cutoff_ms
    await publish_checks([check], status_key, f"{account} hourly")
    failure = _failure([check], f"account {account}")
    if failure is not None:
        logger.error("account=%s: %s", account, failure.message)
        return failure
    return {"export": summary.as_dict(), "check": check.row(), "budget": budget_rows}


# -- the parent: one child run per account -------------------------------------------------------
@flow(name="hourly-accounts")
async def hourly_accounts(
    config_path: str | None = None,
    data_dir: str | None = None,
    accounts: list[str] | None = None,
    lookback_hours: int = 24,
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
    logger = get_run_logger()
    names = accounts or configured_account_names(_config(config_path))
    slot = flow_run.get_scheduled_start_time().astimezone(UTC).strftime("%Y%m%dT%H%M")
    shared = {
        "config_path": config_path,
        "data_dir": data_dir,
        "lookback_hours": lookback_hours,
        "weight_pool": weight_pool,
    }
    logger.info("dispatching %d account run(s): %s", len(names), ", ".join(names))
    started: list[FlowRun] = []
    for name in names:  # one at a time: a SQLite server refuses concurrent writes (503, back-off)
        started.append(
            await arun_deployment(
                child_deployment,
                parameters={"account": name, **shared},
                flow_run_name=f"pipeline-{name}-{slot}",
                # a second dispatch of the same slot finds the same runs
                idempotency_key=f"{child_deployment}:{name}:{slot}",
                timeout=0,
            )
        )
    runs = await _until_final(started, timeout_s, poll_s)
    outcomes = [_outcome(name, run) for name, run in zip(names, runs, strict=True)]
    await acreate_table_artifact(
        table=outcomes, key="hourly-accounts", description=f"account runs of slot {slot}"
    )
    await acreate_markdown_artifact(
        markdown=_outcomes_markdown(outcomes, slot),
        key="hourly-accounts-summary",
        description="which accounts landed",
    )
    failed = [o for o in outcomes if o["state"] != StateType.COMPLETED.value]
    for item in failed:
        logger.error("account=%s: %s %s", item["account"], item["state"], item["message"])
    if failed:
        names_failed = ", ".join(o["account"] for o in failed)
        return Failed(message=f"{len(failed)} of {len(outcomes)} account(s) failed: {names_failed}")
    return {"accounts": outcomes}


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


def _outcomes_markdown(outcomes: Iterable[dict[str, Any]], slot: str) -> str:
    items = list(outcomes)
    landed = [o for o in items if o["state"] == StateType.COMPLETED.value]
    lines = [f"# Hourly run {slot}: {len(landed)} of {len(items)} account(s) landed", ""]
    for o in items:
        mark = "ok" if o in landed else f"**{o['state']}**"
        lines.append(f"- {o['account']}: {mark} {o['message']}".rstrip())
    return "\n".join(lines)


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
    root = _data_root(data_dir)
    names = accounts or configured_account_names(_config(config_path))
    checks = [check_account(name, account_data_dir(root, name)) for name in names]
    await publish_checks(checks, "nightly-reconciliation", "Nightly reconciliation")
    return _failure(checks, "nightly reconciliation") or {"accounts": [c.row() for c in checks]}


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
    root = _data_root(data_dir)
    chosen = month or previous_month(flow_run.get_scheduled_start_time())
    names = accounts or configured_account_names(_config(config_path))
    rows = [
        report_account(name, account_data_dir(root, name), reports_dir(root), chosen)
        for name in names
    ]
    await acreate_table_artifact(
        table=rows, key=artifact_key("monthly-report", chosen), description=f"reports {chosen}"
    )
    failed = [r for r in rows if r["status"] != OK]
    if failed:
        detail = ", ".join(f"{r['account']} ({r['status']}: {r['message']})" for r in failed)
        return Failed(message=f"monthly report {chosen}: {len(failed)} account(s): {detail}")
    return {"month": chosen, "accounts": rows}


# -- one box: `margin-etl serve` -------------------------------------------------------------------
@dataclass(frozen=True)
class ServePlan:
    """What `margin-etl serve` schedules, and with which parameters."""

    config_path: str | None = None
    data_dir: str | None = None
    weight_pool: str | None = None
    hourly_cron: str = HOURLY_CRON
    nightly_cron: str = NIGHTLY_CRON
    monthly_cron: str = MONTHLY_CRON
    timezone: str = "UTC"

    def parameters(self) -> dict[str, Any]:
        given = {"config_path": self.config_path, "data_dir": self.data_dir}
        return {k: v for k, v in given.items() if v is not None}


def served_deployments(plan: ServePlan) -> list[Any]:
    """The four deployments, named as in prefect.yaml, with their schedules."""
    from prefect.schedules import Cron

    common = plan.parameters()
    pooled = {**common, **({"weight_pool": plan.weight_pool} if plan.weight_pool else {})}
    return [
        account_pipeline.to_deployment(name="account", parameters=pooled),
        hourly_accounts.to_deployment(
            name="hourly",
            parameters=pooled,
            schedules=[Cron(plan.hourly_cron, timezone=plan.timezone)],
            concurrency_limit=1,
        ),
        nightly_reconcile.to_deployment(
            name="nightly",
            parameters=common,
            schedules=[Cron(plan.nightly_cron, timezone=plan.timezone)],
            concurrency_limit=1,
        ),
        monthly_report.to_deployment(
            name="monthly",
            parameters=common,
            schedules=[Cron(plan.monthly_cron, timezone=plan.timezone)],
            concurrency_limit=1,
        ),
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
