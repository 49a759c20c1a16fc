"""The export and the demo as Prefect flow runs, on one loopback Prefect server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from bench.kill_runs import EVENTS
from cli.demo import run_demo
from flows.deployments import export_account_flow
from flows.export import ExportSummary
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from tests.fixtures_sim import SimFactory
from tests.flows.lake_truth import differences
from tests.flows.test_export import assert_matches_truth, cli_env, export_command, kill_and_resume


async def _artifact_keys() -> set[str]:
    async with get_client() as client:
        return {a.key for a in await client.read_artifacts() if a.key}


def test_export_flow_lands_the_account_and_reports_it(
    prefect_api: str, sim_factory: SimFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = sim_factory(scenario="tiny", seed=2)
    monkeypatch.setenv("BINANCE_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", DEFAULT_API_SECRET)
    monkeypatch.setenv("BINANCE_BASE_URL", sim.url)
    monkeypatch.setenv("MARGIN_ETL_ACCOUNT", "acct-1")
    data = tmp_path / "data"
    result = asyncio.run(export_account_flow(account="acct-1", data_dir=str(data)))
    summary = ExportSummary.from_dict(result)
    assert summary.account == "acct-1"
    assert summary.streams["interest"].rows_written > 0
    truth = tmp_path / "truth"
    with sim.exchange.lock:
        sim.app.write_truth(truth)
    assert differences(data, truth, until_ms=summary.cutoff_ms, live_clock=True) == {}
    assert {"export-acct-1", "export-acct-1-costs"} <= asyncio.run(_artifact_keys())


def test_demo_runs_end_to_end_without_breaks(prefect_api: str, tmp_path: Path) -> None:
    assert run_demo(tmp_path / "demo", seed=4) == 0
    reports = list((tmp_path / "demo" / "reports").rglob("*.csv"))
    assert reports and all(p.read_text().count("\n") >= 1 for p in reports)


def test_cli_export_on_a_private_prefect_server_keeps_the_screen_clean(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """No Prefect server configured: the CLI starts its own, and the user sees only our output."""
    sim = sim_factory(scenario="tiny", seed=6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")} | {
        "BINANCE_API_KEY": DEFAULT_API_KEY,
        "BINANCE_API_SECRET": DEFAULT_API_SECRET,
        "BINANCE_BASE_URL": sim.url,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    data = tmp_path / "data"
    command = [
        sys.executable,
        "-m",
        "cli",
        "export",
        "--no-progress",
        "--data-dir",
        str(data),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    screen = done.stdout + done.stderr
    for noise in ("Traceback", "CancelledError", "ERROR", "WARNING", "View at", "temporary server"):
        assert noise not in screen, screen
    assert "rows written" in screen
    assert (
        data / "state" / "prefect" / "prefect.db"
    ).exists()  # the run history stays with the data


def test_a_killed_prefect_run_resumes_to_the_same_lake(
    prefect_api: str, sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The CLI's export as a Prefect flow run, kill -9'd at seeded events, then finished."""
    sim = sim_factory(scenario="tiny", seed=8, weight_window_ms=2000)
    data = tmp_path / "data"
    env = cli_env(sim) | {"PREFECT_API_URL": prefect_api}
    command = export_command(data, "--no-progress")
    outcomes = kill_and_resume(sim, data, command, env, seed=9, sequence=EVENTS)
    assert all(o.killed for o in outcomes[:-1]), [(o.point, o.returncode) for o in outcomes]
    assert_matches_truth(sim, data, tmp_path)
