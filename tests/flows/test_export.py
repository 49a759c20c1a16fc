"""The export against a real simulator over loopback: complete, incremental, resumable."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.chaos_child import FAST_RETRY
from bench.kill_runs import (
    DEFAULT_SEQUENCE,
    Event,
    EventCounts,
    RunOutcome,
    kill_plan,
    run_export,
)
from connectors.client import ClientSettings
from connectors.retry import RetrySettings
from flows.config import Account, Secret
from flows.export import ExportRequest, ExportSummary, export_account
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.scenarios import build_exchange
from simulator.server import RunningSimulator
from storage.errors import UserError
from storage.lake import lake_files
from storage.lock import DataDirLock
from tests.fixtures_sim import SimFactory
from tests.flows.lake_truth import HISTORY, differences, latest_lake_rows

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
STREAMS = (*HISTORY, "account_snapshots")


def account_for(sim: RunningSimulator, secret: str = DEFAULT_API_SECRET) -> Account:
    return Account("main", Secret(DEFAULT_API_KEY), Secret(secret), base_url=sim.url)


def fast_settings() -> ClientSettings:
    """Retries that wait milliseconds, so fault profiles cost no real time."""
    return ClientSettings(retry=FAST_RETRY)


def export(sim: RunningSimulator, data_dir: Path, **options: Any) -> ExportSummary:
    request = ExportRequest(account_for(sim), data_dir, client_settings=fast_settings(), **options)
    return asyncio.run(export_account(request))


def all_files(data_dir: Path) -> set[Path]:
    return {f for stream in STREAMS for f in lake_files(data_dir, stream)}


def stats(sim: RunningSimulator) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{sim.url}/_sim/stats").json()
    return result


def assert_matches_truth(
    sim: RunningSimulator, data_dir: Path, tmp_path: Path, since_ms: int | None = None
) -> None:
    """A final export, then the truth at that moment, then every stream compared (from
    `since_ms` when the exports began there, else as far back as a first export reads).

    The exchange's clock stands still meanwhile: an order filling between the export and the
    truth would be a difference of timing, not of data."""
    sim.exchange.pin()
    try:
        pinned_at = sim.exchange.now_ms()
        summary = export(sim, data_dir)
        truth = tmp_path / "truth"
        sim.app.write_truth(truth)
    finally:
        sim.exchange.go_live()
    # a row arriving during this export (a fault) is stamped at the pinned instant, which a
    # server clock jumped ahead puts before the cutoff after the stream was read: the next
    # run's, as rows at the cutoff are
    until = min(summary.cutoff_ms, pinned_at)
    in_seconds = ("transfers",) if sim.app.state.seconds_timestamps else ()
    found = differences(
        data_dir,
        truth,
        until_ms=until,
        seconds_streams=in_seconds,
        since_ms=None if since_ms is None else dict.fromkeys(HISTORY, since_ms),
    )
    assert found == {}, (f"cutoff {summary.cutoff_ms}, pinned at {pinned_at}", found)


@pytest.fixture
def private_sim(sim_factory: SimFactory) -> RunningSimulator:
    return sim_factory(scenario="default", seed=7)


def test_single_export_equals_truth(private_sim: RunningSimulator, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = export(private_sim, data)
    assert first.rows_written > 10_000
    assert {"interest", "trades", "orders", "loans"} <= set(first.streams)
    assert_matches_truth(private_sim, data, tmp_path)


def test_prices_cover_every_asset_in_the_report_currency(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(exchange=build_exchange("default", 7, wall_clock=lambda: 0))
    in_usdt = export(sim, tmp_path / "usdt", streams=("prices",))
    symbols = {r["symbol"] for r in latest_lake_rows(tmp_path / "usdt", "prices")}
    assets = {a for a in sim.exchange.assets if a != "USDT"}
    pairs = sim.exchange.symbols
    assert symbols == {
        s for s, (base, quote) in pairs.items() if base in assets and quote == "USDT"
    }
    assert in_usdt.streams["prices"].partitions == len(symbols)
    account = replace(account_for(sim), report_currency="BTC")
    request = ExportRequest(account, tmp_path / "btc", streams=("prices",))
    asyncio.run(export_account(request))
    in_btc = {r["symbol"] for r in latest_lake_rows(tmp_path / "btc", "prices")}
    assert in_btc == {s for s, (_, quote) in pairs.items() if quote == "BTC"}


def test_incremental_runs_equal_one_run(private_sim: RunningSimulator, tmp_path: Path) -> None:
    data = tmp_path / "data"
    now = private_sim.exchange.now_ms()
    since = now - 85 * DAY_MS
    for until in (now - 60 * DAY_MS, now - 31 * DAY_MS, now - 3 * DAY_MS):
        export(private_sim, data, since_ms=since, until_ms=until)
    assert_matches_truth(private_sim, data, tmp_path, since_ms=since)


NO_OP_ARGUMENTS = {
    "defaults": {},
    "since older than every retention": {"since_days": 420},
    "since inside the history": {"since_days": 10},
    "until in the past": {"until_days": 20},
    "since and until": {"since_days": 60, "until_days": 5},
    "some streams": {"streams": ("interest", "trades", "account_snapshots")},
    "some streams since long ago": {"since_days": 400, "streams": ("interest", "transfers")},
}


@pytest.fixture
def frozen_sim(sim_factory: SimFactory) -> RunningSimulator:
    """A frozen exchange clock: no interest hour, no fill can happen between two runs (and a
    budget of its own: runs of other tests must not make this one wait)."""
    return sim_factory(exchange=build_exchange("default", 7, wall_clock=lambda: 0))


@pytest.mark.parametrize("arguments", list(NO_OP_ARGUMENTS))
def test_a_second_identical_run_writes_nothing_and_is_cheap(
    arguments: str, frozen_sim: RunningSimulator, tmp_path: Path
) -> None:
    given = NO_OP_ARGUMENTS[arguments]
    now = frozen_sim.exchange.now_ms()
    options: dict[str, Any] = {}
    if "since_days" in given:
        options["since_ms"] = now - int(given["since_days"]) * DAY_MS
    if "until_days" in given:
        options["until_ms"] = now - int(given["until_days"]) * DAY_MS
    if "streams" in given:
        options["streams"] = given["streams"]
    data = tmp_path / "data"
    first = export(frozen_sim, data, **options)
    assert first.rows_written > 0
    files_before = all_files(data)
    requests_before = stats(frozen_sim)["totals"]["requests"]
    second = export(frozen_sim, data, **options)
    spent = stats(frozen_sim)["totals"]["requests"] - requests_before
    partitions = sum(r.partitions for r in second.streams.values())
    assert spent < 2 * partitions, (spent, partitions)
    assert second.rows_written == 0
    assert all_files(data) == files_before


def test_changed_rows_end_in_final_state(sim_factory: SimFactory, tmp_path: Path) -> None:
    # history that ends now, not at the top of the hour: its newest rows are still PENDING
    sim = sim_factory(scenario="default", seed=11, start_ms=time.time_ns() // 1_000_000)
    data = tmp_path / "data"
    export(sim, data)
    pending = [
        r
        for s in ("loans", "repays", "transfers")
        for r in latest_lake_rows(data, s)
        if r["status"] == "PENDING"
    ]
    open_orders = [r for r in latest_lake_rows(data, "orders") if r["status"] == "NEW"]
    assert pending, "the scenario has rows still PENDING at its start"
    assert open_orders, "the scenario ends with open orders"
    httpx.post(f"{sim.url}/_sim/advance", params={"ms": 3 * HOUR_MS}).raise_for_status()
    assert_matches_truth(sim, data, tmp_path)
    statuses = {
        r["status"] for s in ("loans", "repays", "transfers") for r in latest_lake_rows(data, s)
    }
    assert "PENDING" not in statuses
    was_open = {(r["symbol"], r["orderId"]) for r in open_orders}
    filled = [
        r
        for r in latest_lake_rows(data, "orders")
        if (r["symbol"], r["orderId"]) in was_open and r["status"] != "NEW"
    ]
    assert filled, "some order open at the first run has filled (or been cancelled) since"


def test_faulty_exchange_still_exports_exactly(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(scenario="default", seed=3, faults="hostile")
    data = tmp_path / "data"
    summary = export(sim, data)
    assert summary.retries > 0
    assert_matches_truth(sim, data, tmp_path)


def test_wrong_secret_fails_in_one_line_and_leaves_lake(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    request = ExportRequest(account_for(sim, secret="not-the-secret"), data)
    with pytest.raises(UserError) as caught:
        asyncio.run(export_account(request))
    message = str(caught.value)
    assert "\n" not in message and "not-the-secret" not in message
    assert all_files(data) == set()


def test_unreachable_host_fails_in_one_line(tmp_path: Path) -> None:
    account = Account(
        "main", Secret("some-key"), Secret("some-secret"), base_url="http://127.0.0.1:9"
    )
    settings = ClientSettings(
        retry=RetrySettings(backoff_base_s=0.001, backoff_max_s=0.01, max_attempts=2)
    )
    request = ExportRequest(account, tmp_path / "data", client_settings=settings)
    with pytest.raises(UserError, match=r"127\.0\.0\.1:9"):
        asyncio.run(export_account(request))


def test_second_run_on_locked_data_dir_is_refused(sim: RunningSimulator, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with DataDirLock(data), pytest.raises(UserError, match="in use"):
        export(sim, data)


def cli_env(sim: RunningSimulator) -> dict[str, str]:
    window_s = sim.app.config.weight_window_ms // 1000
    return {
        **os.environ,
        "MARGIN_ETL_WEIGHT_WINDOW_S": str(window_s),
        "BINANCE_API_KEY": DEFAULT_API_KEY,
        "BINANCE_API_SECRET": DEFAULT_API_SECRET,
        "BINANCE_BASE_URL": sim.url,
    }


def export_command(data: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli", "export", "--data-dir", str(data), *args]


def kill_and_resume(
    sim: RunningSimulator,
    data: Path,
    command: list[str],
    env: dict[str, str],
    seed: int,
    sequence: tuple[Event, ...] = DEFAULT_SEQUENCE,
) -> list[RunOutcome]:
    """kill -9 the export at seeded event points of its own run, then let one run finish."""
    counts = EventCounts.of(export(sim, data.parent / "reference"))
    plan = kill_plan(counts, random.Random(seed), sequence)
    outcomes = [run_export(command, env, sim, point) for point in plan]
    finished = run_export(command, env, sim)
    assert finished.returncode == 0, finished.stderr
    return [*outcomes, finished]


def test_killed_runs_resume_to_the_same_lake(sim_factory: SimFactory, tmp_path: Path) -> None:
    """kill -9 a real export process at seeded events (a request, a file, a mark): nothing lost."""
    # a 2-second weight window (told to the client too): the killed runs' spent budget must
    # not make the next one wait a real minute
    sim = sim_factory(scenario="default", seed=5, weight_window_ms=2000)
    data = tmp_path / "data"
    command = export_command(data, "--no-prefect", "--no-progress")
    outcomes = kill_and_resume(sim, data, command, cli_env(sim), seed=20261126)
    killed = [o.point for o in outcomes if o.killed]
    assert killed == [o.point for o in outcomes[:-1]], [(o.point, o.returncode) for o in outcomes]
    assert {p.event for p in killed if p} == {"request", "file", "mark"}
    assert_matches_truth(sim, data, tmp_path)


def test_cli_reports_a_bad_key_in_one_line(sim: RunningSimulator, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "cli", "export", "--no-prefect", "--no-progress"]
    command += ["--data-dir", str(tmp_path / "data")]
    env = {
        **os.environ,
        "BINANCE_API_KEY": DEFAULT_API_KEY,
        "BINANCE_API_SECRET": "wrong",
        "BINANCE_BASE_URL": sim.url,
    }
    done = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("margin-etl:") and "wrong" not in lines[0]
