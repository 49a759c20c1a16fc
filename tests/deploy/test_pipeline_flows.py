"""The deployment flows in-process: a break ends a run Failed with its artifacts published; the
accounts, paths, months and `serve` schedules the flows are built from."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import State
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner

from cli.main import app
from flows.checks import artifact_key, check_warehouse, previous_month
from flows.config import configured_account_names
from flows.deployments import (
    CHILD_DEPLOYMENT,
    account_data_dir,
    account_pipeline,
    nightly_reconcile,
    serve_deployments,
    served_deployments,
)
from flows.export import ALL_STREAMS
from flows.schedules import ServePlan
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from storage.errors import UserError
from tests.fixtures_sim import SimFactory

REPO = Path(__file__).resolve().parents[2]


async def _artifacts(run_id: uuid.UUID) -> dict[str, Any]:
    async with get_client() as client:
        found = await client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    return {a.key: a.data for a in found if a.key}


@pytest.mark.prefect
def test_a_run_with_breaks_ends_failed_after_reporting_them(
    prefect_api: str, sim_factory: SimFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = sim_factory(scenario="tiny", seed=11)
    config = tmp_path / "accounts.toml"
    config.write_text(
        '[accounts.desk-1]\napi_key_env = "DESK_KEY"\napi_secret_env = "DESK_SECRET"\n'
        f'base_url = "{sim.url}"\n'
    )
    monkeypatch.setenv("DESK_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("DESK_SECRET", DEFAULT_API_SECRET)
    # without the transfers, the capital flow's transfers are explained by nothing: it breaks
    streams = [s for s in ALL_STREAMS if s != "transfers"]
    data = tmp_path / "data"

    async def pipeline() -> State[Any]:
        return await account_pipeline(
            account="desk-1",
            config_path=str(config),
            data_dir=str(data),
            streams=streams,
            return_state=True,
        )

    async def nightly_run() -> State[Any]:
        return await nightly_reconcile(
            config_path=str(config), data_dir=str(data), return_state=True
        )

    state = asyncio.run(pipeline())
    assert state.is_failed()
    assert "desk-1" in (state.message or "") and "break" in (state.message or "")
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    artifacts = asyncio.run(_artifacts(run_id))
    [status] = json.loads(artifacts["reconciliation-desk-1"])
    assert status["status"] == "breaks" and status["breaks"] >= 1
    breaks = artifacts["reconciliation-desk-1-breaks"]
    assert "| asset | kind |" in breaks and "capital_flow" in breaks
    rows = json.loads(artifacts["export-desk-1"])
    assert "transfers" not in {r["stream"] for r in rows}
    assert (data / "accounts" / "desk-1" / "lake").is_dir()  # the account's own data dir

    # the nightly run of the same account fails too, and says which account
    nightly = asyncio.run(nightly_run())
    assert nightly.is_failed() and "desk-1 (breaks" in (nightly.message or "")


def test_account_names_come_from_the_config_without_credentials(tmp_path: Path) -> None:
    config = tmp_path / "accounts.toml"
    config.write_text(
        '[accounts.b-desk]\napi_key_env = "UNSET_KEY_VAR"\napi_secret_env = "UNSET_SECRET"\n'
        '[accounts.a-desk]\napi_key_env = "UNSET_KEY_VAR"\napi_secret_env = "UNSET_SECRET"\n'
    )
    assert configured_account_names(config) == ["a-desk", "b-desk"]
    (tmp_path / "empty.toml").write_text("")
    with pytest.raises(UserError, match="no \\[accounts"):
        configured_account_names(tmp_path / "empty.toml")
    with pytest.raises(UserError, match="not found"):
        configured_account_names(tmp_path / "missing.toml")


def test_each_account_has_its_own_data_dir(tmp_path: Path) -> None:
    assert account_data_dir(tmp_path, "desk.1") == tmp_path / "accounts" / "desk.1"
    for bad in ("..", "../other", "a/b", ""):
        with pytest.raises(UserError):
            account_data_dir(tmp_path, bad)


def test_an_account_with_no_lake_is_an_error_not_a_pass(tmp_path: Path) -> None:
    check = check_warehouse("desk-1", tmp_path / "nothing")
    assert check.failed and check.status == "error" and "no lake" in check.message


def test_the_monthly_run_reports_the_month_before() -> None:
    assert previous_month(datetime(2025, 1, 1, 6, tzinfo=UTC)) == "2024-12"
    assert previous_month(datetime(2025, 3, 1, 0, 30, tzinfo=UTC)) == "2025-02"
    assert artifact_key("reconciliation", "Desk_1.eu") == "reconciliation-desk-1-eu"


def test_serve_schedules_the_deployments_prefect_yaml_declares() -> None:
    plan = ServePlan(config_path="/etc/accounts.toml", data_dir="/srv/data", weight_pool="ip-1")
    deployments = {f"{d.flow_name}/{d.name}": d for d in served_deployments(plan)}
    assert set(deployments) == {
        CHILD_DEPLOYMENT,
        "hourly-accounts/hourly",
        "nightly-reconcile/nightly",
        "monthly-report/monthly",
    }
    crons = {
        name: [(s.schedule.cron, s.schedule.timezone) for s in d.schedules]
        for name, d in deployments.items()
    }
    assert crons == {
        CHILD_DEPLOYMENT: [],
        "hourly-accounts/hourly": [("5 * * * *", "UTC")],
        "nightly-reconcile/nightly": [("30 2 * * *", "UTC")],
        "monthly-report/monthly": [("0 6 1 * *", "UTC")],
    }
    paths = {"config_path": "/etc/accounts.toml", "data_dir": "/srv/data"}
    assert deployments["hourly-accounts/hourly"].parameters == {**paths, "weight_pool": "ip-1"}
    assert deployments[CHILD_DEPLOYMENT].parameters == {**paths, "weight_pool": "ip-1"}
    assert deployments["monthly-report/monthly"].parameters == paths
    yaml_text = (REPO / "prefect.yaml").read_text()
    for entrypoint in (
        "account_pipeline",
        "hourly_accounts",
        "nightly_reconcile",
        "monthly_report",
    ):
        assert f"entrypoint: flows/deployments.py:{entrypoint}" in yaml_text
    assert f"child_deployment: {CHILD_DEPLOYMENT}" in yaml_text


def test_serve_without_a_server_says_how_to_start_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(UserError, match="prefect server start"):
            serve_deployments(ServePlan(), limit=1)
        result = CliRunner().invoke(app, ["serve", "--limit", "1"])
    assert isinstance(result.exception, UserError)


def test_serve_documents_its_options() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--config", "--data-dir", "--hourly", "--nightly", "--monthly", "--weight-pool"):
        assert option in result.output
