"""prefect.yaml deployed on a loopback Prefect server, run by two real process workers.

One module-scoped setup: a process work pool, `prefect deploy --all` from the repository's
prefect.yaml, and two `prefect worker start` processes polling that pool. The tests trigger the
deployments the way schedules do and check run states, lakes, reports, artifacts and logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import arun_deployment
from prefect.exceptions import ObjectAlreadyExists
from prefect.workers.process import ProcessWorker

from simulator.auth import ApiCredential
from simulator.holds import KeyBarrier
from simulator.server import RunningSimulator
from tests.fixtures_sim import SimFactory
from tests.flows.lake_truth import differences

pytestmark = pytest.mark.prefect

REPO = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]
POOL = "margin-etl"  # as prefect.yaml names it
CREDENTIALS = (ApiCredential("key-a", "secret-a"), ApiCredential("key-b", "secret-b"))
KEYS = {
    "A_KEY": "key-a",
    "A_SECRET": "secret-a",
    "B_KEY": "key-b",
    "B_SECRET": "secret-b",
    "BAD_SECRET": "not-the-secret",
}
RUN_TIMEOUT_S = 150


def _worker_environment(api_url: str, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        **KEYS,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        # the run logs must carry the flows' INFO lines (account=..., stream=...)
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
        "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
    }


async def _create_pool() -> None:
    template = ProcessWorker.get_default_base_job_template()
    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(
                WorkPoolCreate(name=POOL, type="process", base_job_template=template)
            )


@pytest.fixture(scope="module")
def workers(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A process pool, prefect.yaml deployed into it, and two workers polling it."""
    home = tmp_path_factory.mktemp("worker-home")
    env = _worker_environment(prefect_api, home)
    asyncio.run(_create_pool())
    started: list[subprocess.Popen[bytes]] = []
    for number in (1, 2):  # they start while the deployments are made
        log = open(home / f"worker-{number}.log", "wb")  # noqa: SIM115 - the child writes it
        command = [*PREFECT, "worker", "start", "--pool", POOL, "--type", "process"]
        command += ["--limit", "4", "--name", f"worker-{number}"]
        # a session of its own: teardown stops the worker and the runs it started, all at once
        started.append(
            subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True
            )
        )
        log.close()
    try:
        deployed = subprocess.run(
            [*PREFECT, "--no-prompt", "deploy", "--all"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        asyncio.run(_until_online({"worker-1", "worker-2"}))
        yield prefect_api
    finally:
        # The tests are over: nothing of the workers is kept. `prefect worker start` forwards
        # a SIGINT to its worker process and waits for it, which here took the full 30 s
        # allowed, twice, at every teardown (60 s of each `make test`).
        for process in started:
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _until_online(names: set[str]) -> None:
    """Workers register themselves when they first poll: wait for both, with a deadline."""
    async with get_client() as client:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            online = {w.name for w in await client.read_workers_for_work_pool(POOL)}
            if names <= online:
                return
            assert asyncio.get_running_loop().time() < deadline, f"workers online: {online}"
            await asyncio.sleep(0.2)


def _config(path: Path, sim: RunningSimulator, *, bad_account: bool) -> Path:
    accounts = {"acct-a": ("A_KEY", "A_SECRET"), "acct-b": ("B_KEY", "B_SECRET")}
    if bad_account:  # a real key with the wrong secret: the exchange refuses its signatures
        accounts["acct-bad"] = ("A_KEY", "BAD_SECRET")
    text = "".join(
        f'[accounts.{name}]\napi_key_env = "{key}"\napi_secret_env = "{secret}"\n'
        f'base_url = "{sim.url}"\n\n'
        for name, (key, secret) in accounts.items()
    )
    path.write_text(text)
    return path


Trigger = tuple[str, dict[str, Any], dict[str, Any]]  # deployment, parameters, options


async def _run(*triggers: Trigger) -> list[FlowRun]:
    """Create the runs one after another (a SQLite server serialises writes), then wait for
    all of them to end, polling their states with a deadline."""
    created = [
        await arun_deployment(name, parameters=parameters, timeout=0, as_subflow=False, **options)
        for name, parameters, options in triggers
    ]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RUN_TIMEOUT_S
    async with get_client() as client:
        while True:
            runs = [await client.read_flow_run(run.id) for run in created]
            if all(run.state and run.state.is_final() for run in runs):
                return runs
            assert loop.time() < deadline, [run.state for run in runs]
            await asyncio.sleep(0.5)


def _state(run: FlowRun) -> StateType | None:
    return run.state.type if run.state else None


async def _table(client: PrefectClient, key: str, run_id: uuid.UUID) -> list[dict[str, Any]]:
    artifacts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
    )
    assert artifacts, f"no artifact {key} for run {run_id}"
    rows: list[dict[str, Any]] = json.loads(str(artifacts[0].data))
    return rows


async def _markdown(client: PrefectClient, key: str, run_id: uuid.UUID) -> str:
    artifacts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
    )
    assert artifacts, f"no artifact {key} for run {run_id}"
    return str(artifacts[0].data)


async def _log_lines(client: PrefectClient, run_id: uuid.UUID, needle: str) -> list[str]:
    """Run logs arrive in batches after the run's state: wait for them with a deadline."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200
        )
        lines = [log.message for log in logs if needle in log.message]
        if lines or asyncio.get_running_loop().time() > deadline:
            return lines
        await asyncio.sleep(0.5)


def _truth(sim: RunningSimulator, directory: Path) -> Path:
    with sim.exchange.lock:
        sim.app.write_truth(directory)
    return directory


def test_the_deployments_carry_their_schedules(workers: str) -> None:
    async def read() -> dict[str, Any]:
        async with get_client() as client:
            found = {}
            for name in ("hourly-accounts/hourly", "nightly-reconcile/nightly"):
                deployment = await client.read_deployment_by_name(name)
                found[name] = deployment
            found["monthly"] = await client.read_deployment_by_name("monthly-report/monthly")
            found["account"] = await client.read_deployment_by_name("account-pipeline/account")
            return found

    found = asyncio.run(read())
    crons = {
        name: [(s.schedule.cron, s.schedule.timezone) for s in d.schedules]
        for name, d in found.items()
    }
    assert crons == {
        "hourly-accounts/hourly": [("5 * * * *", "UTC")],
        "nightly-reconcile/nightly": [("30 2 * * *", "UTC")],
        "monthly": [("0 6 1 * *", "UTC")],
        "account": [],
    }
    assert all(d.work_pool_name == POOL for d in found.values())
    assert found["hourly-accounts/hourly"].parameters["child_deployment"] == (
        "account-pipeline/account"
    )


@pytest.mark.slow
def test_hourly_fans_out_and_a_failing_account_fails_alone(
    workers: str, sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(scenario="tiny", seed=11, credentials=CREDENTIALS)
    config = _config(tmp_path / "accounts.toml", sim, bad_account=True)
    data = tmp_path / "data"
    common = {"config_path": str(config), "data_dir": str(data)}

    async def scenario() -> None:
        [parent] = await _run(("hourly-accounts/hourly", {**common, "poll_s": 0.5}, {}))
        assert _state(parent) == StateType.FAILED
        assert parent.state is not None and "1 of 3" in (parent.state.message or "")
        async with get_client() as client:
            outcomes = await _table(client, "hourly-accounts", parent.id)
            states = {o["account"]: o["state"] for o in outcomes}
            assert states == {"acct-a": "COMPLETED", "acct-b": "COMPLETED", "acct-bad": "FAILED"}
            children = {o["account"]: uuid.UUID(o["flow_run_id"]) for o in outcomes}
            bad = await client.read_flow_run(children["acct-bad"])
            assert bad.parent_task_run_id is not None  # linked under the parent run
            message = (bad.state.message if bad.state else None) or ""
            assert "acct-bad" in message and "not-the-secret" not in message
            [bad_status] = await _table(client, "reconciliation-acct-bad", bad.id)
            assert bad_status["status"] == "error", bad_status
            assert bad_status["message"].startswith("export failed: account acct-bad")
            summary = await _markdown(client, "hourly-accounts-summary", parent.id)
            assert "2 of 3 account(s) landed" in summary and "acct-bad" in summary

            truth = _truth(sim, tmp_path / "truth")
            months = set()
            for account in ("acct-a", "acct-b"):
                run_id = children[account]
                [status] = await _table(client, f"reconciliation-{account}", run_id)
                assert status["status"] == "ok" and status["breaks"] == 0, status
                assert status["data_tests"] > 0 and status["data_tests_failed"] == 0
                cutoff = int(status["cutoff_ms"])
                lake = data / "accounts" / account
                # the simulator's clock runs on while the runs end and the truth is taken
                found = differences(lake, truth, until_ms=cutoff, live_clock=True)
                assert found == {}, account
                rows = await _table(client, f"export-{account}", run_id)
                assert {r["stream"] for r in rows} >= {"loans", "interest", "trades"}
                assert sum(r["rows_written"] for r in rows) > 0
                assert "No breaks" in await _markdown(
                    client, f"reconciliation-{account}-breaks", run_id
                )
                lines = await _log_lines(client, run_id, "stream=interest")
                assert any(f"account={account}" in line for line in lines), lines
                months.add(datetime.fromtimestamp(cutoff // 1000, UTC).strftime("%Y-%m"))

        # the nightly and monthly runs of the same two accounts, side by side on the workers
        [month] = months
        good = {**common, "accounts": ["acct-a", "acct-b"]}
        nightly, monthly = await _run(
            ("nightly-reconcile/nightly", good, {}),
            ("monthly-report/monthly", {**good, "month": month}, {}),
        )
        assert _state(nightly) == StateType.COMPLETED, nightly.state
        assert _state(monthly) == StateType.COMPLETED, monthly.state
        async with get_client() as client:
            checks = await _table(client, "nightly-reconciliation", nightly.id)
            assert {(c["account"], c["status"]) for c in checks} == {
                ("acct-a", "ok"),
                ("acct-b", "ok"),
            }
        for account in ("acct-a", "acct-b"):
            folder = data / "reports" / account / month
            ledger = (folder / "general_ledger.csv").read_text().splitlines()
            assert len(ledger) > 1, f"{account}: no ledger rows in {month}"
            with (folder / "breaks.csv").open() as handle:  # provisional rows may be listed
                assert all(row["status"] != "break" for row in csv.DictReader(handle))
            async with get_client() as client:  # the statement, linked from the monthly run
                link = await _markdown(client, f"statement-{account}-{month}", monthly.id)
            assert (folder / "statement.html").as_uri() in link

    asyncio.run(scenario())


def test_two_workers_share_one_weight_budget_without_429s(
    workers: str, sim_factory: SimFactory, tmp_path: Path
) -> None:
    # 3000 weight per endpoint per 3 s: one daily snapshot (2400) per window fits, two do not;
    # the client is told the same, and both runs share it through the GCLs of `pool`
    limit, window_s = 3000, 3
    sim = sim_factory(
        scenario="tiny",
        seed=12,
        credentials=CREDENTIALS,
        weight_limit=limit,
        weight_window_ms=window_s * 1000,
    )
    config = _config(tmp_path / "accounts.toml", sim, bad_account=False)
    data = tmp_path / "data"
    pool = f"test-weight-{uuid.uuid4().hex[:8]}"
    env = {"MARGIN_ETL_WEIGHT_LIMIT": str(limit), "MARGIN_ETL_WEIGHT_WINDOW_S": str(window_s)}
    # both runs' first account reads leave together: their daily snapshots (2400 weight each,
    # read next) then compete for one window, and one run must wait for the other's slots
    sim.app.barrier = KeyBarrier("/sapi/v1/margin/account", parties=len(CREDENTIALS))

    async def both() -> list[FlowRun]:
        # scheduled for one moment: the server holds each run until then, so however their
        # processes' start-ups differ, both exports begin together and compete for the budget
        start_at = datetime.now(UTC) + timedelta(seconds=8)
        return await _run(
            *(
                (
                    "account-pipeline/account",
                    {
                        "account": account,
                        "config_path": str(config),
                        "data_dir": str(data),
                        "weight_pool": pool,
                    },
                    {"job_variables": {"env": env}, "scheduled_time": start_at},
                )
                for account in ("acct-a", "acct-b")
            )
        )

    runs = asyncio.run(both())
    assert [_state(r) for r in runs] == [StateType.COMPLETED] * 2, [r.state for r in runs]

    stats = httpx.get(f"{sim.url}/_sim/stats").json()
    assert stats["totals"]["throttled"] == 0 and stats["totals"]["banned"] == 0
    # the budget bound: two snapshots' weight cannot fit in one window of the limit
    snapshot = stats["endpoints"]["GET /sapi/v1/accountSnapshot"]
    assert snapshot["weight"] == 2 * 2400 > limit

    accounts = ("acct-a", "acct-b")

    async def evidence() -> tuple[list[FlowRun], list[list[dict[str, Any]]], list[Any], list[int]]:
        async with get_client() as client:
            fresh = [await client.read_flow_run(r.id) for r in runs]
            budgets = [
                await _table(client, f"budget-{a}", r.id)
                for a, r in zip(accounts, runs, strict=True)
            ]
            cutoffs = [
                int((await _table(client, f"reconciliation-{a}", r.id))[0]["cutoff_ms"])
                for a, r in zip(accounts, runs, strict=True)
            ]
            limits = await client.read_global_concurrency_limits(limit=200)
            return fresh, budgets, [gcl for gcl in limits if gcl.name == pool], cutoffs

    fresh, budgets, gcls, cutoffs = asyncio.run(evidence())
    # two processes, running at the same time
    assert fresh[0].infrastructure_pid != fresh[1].infrastructure_pid
    first, second = sorted(fresh, key=lambda r: r.start_time or datetime.max.replace(tzinfo=UTC))
    assert first.end_time and second.start_time and second.start_time < first.end_time
    # the pool's GCL was made and used by both: blocks leased, one run waited for the other's
    [gcl] = gcls
    rows = [row for [row] in budgets]
    assert all(r["gcl"] == pool and r["blocks"] >= 1 for r in rows), rows
    assert all("accountSnapshot=2400" in r["buckets"] for r in rows), rows
    assert sum(r["waits"] for r in rows) >= 1, rows
    # every block was given back: nothing stays held after the runs
    assert gcl.active_slots == 0, gcl

    truth = _truth(sim, tmp_path / "truth")
    for account, cutoff in zip(accounts, cutoffs, strict=True):
        found = differences(data / "accounts" / account, truth, until_ms=cutoff, live_clock=True)
        assert found == {}, account
