"""A plan of an export against what the export then spends, as the simulator counted it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from flows.export import ExportRequest, export_account
from flows.plan import (
    BucketLoad,
    ExportPlan,
    Rows,
    Sample,
    answers_for,
    nearest,
    plan_export,
    planned_against_spent,
    pooled,
    window_calls,
)
from models import DAY_MS, HOUR_MS
from storage.lock import DataDirLock
from tests.fixtures_sim import SimFactory
from tests.flows.test_export import account_for, fast_settings

# what the issue asks of a plan: within 10 % of the requests and weight actually spent
TOLERANCE = 0.10


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def close(planned: int, spent: int) -> bool:
    return abs(planned - spent) <= TOLERANCE * spent


def test_a_plan_foresees_a_first_and_an_incremental_export(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """`default` pages every way there is (pages with totals, id cursors, windows walked by a
    cursor, windows of rates) over many windows, and its first run meets retention limits."""
    sim = sim_factory(scenario="default", seed=11)
    data = tmp_path / "data"
    data.mkdir()
    request = ExportRequest(account_for(sim), data, client_settings=fast_settings())
    for run in ("first", "incremental"):
        before = files(data)
        plan = asyncio.run(plan_export(request))
        assert files(data) == before, f"the {run} plan wrote to the data dir"
        httpx.post(f"{sim.url}/_sim/reset-stats").raise_for_status()
        summary = asyncio.run(export_account(request))
        served = httpx.get(f"{sim.url}/_sim/stats").json()["totals"]
        assert (summary.requests, summary.weight) == (served["requests"], served["weight"])
        assert summary.retries == 0
        figures = (run, plan.requests, served["requests"], plan.weight, served["weight"])
        assert close(plan.requests, served["requests"]), figures
        assert close(plan.weight, served["weight"]), figures
        if run == "first":
            assert plan.streams["capital_flow"].windows == 13  # 90 days' retention, 7-day windows
            assert plan.least_wall_s == 0  # under one window of every bucket
        else:  # what earlier runs read tells the rest: no guess is left
            assert plan.requests == served["requests"], figures
        planned_against_spent(plan, summary)
        assert summary.planned_requests == plan.requests
        assert summary.streams["trades"].planned_requests is not None


def test_a_page_or_a_cursor_walk_needs_one_answer_more_than_its_full_ones() -> None:
    assert [answers_for(Rows(n), 100) for n in (0, 99, 100, 250)] == [1, 1, 2, 3]
    uncertain = answers_for(Rows(100.0, 100.0), 100)  # as likely over the limit as under
    assert 1.4 < uncertain < 1.6


def test_an_unprobed_window_takes_the_density_of_its_nearest_probed_neighbours() -> None:
    early, late = Sample(10, DAY_MS, whole=True), Sample(1000, HOUR_MS, whole=False)
    known = {1: early, 5: late}
    assert nearest(known, 0) == [early]
    assert nearest(known, 3) == [early, late]
    assert nearest(known, 5) == [late]
    assert nearest(known, 9) == [late]
    density = pooled([early, late])
    assert density is not None and density.rows == 1010 and density.span_ms == DAY_MS + HOUR_MS


def test_a_window_of_rates_denser_than_an_answer_is_read_in_halves() -> None:
    from connectors import Window

    day = Window(0, DAY_MS)
    assert window_calls(day, HOUR_MS, 100) == 1  # 24 rows fit one answer
    assert window_calls(day, HOUR_MS, 24) == 3  # a full answer: both halves are read again
    assert window_calls(day, None, 1) == 1  # rows of no period: one call


def test_the_least_wall_time_is_the_busiest_buckets_windows_but_the_last() -> None:
    plan = ExportPlan("main", 0, probes=False, window_s=60.0)
    plan.buckets["ip:/sapi/v1/margin/allOrders"] = BucketLoad(
        weight=25_000, requests=125, weight_per_window=9_600, requests_per_window=48
    )
    plan.buckets["ip:/sapi/v1/margin/myTrades"] = BucketLoad(
        weight=500, requests=50, weight_per_window=9_600
    )
    assert plan.bottleneck() == ("ip:/sapi/v1/margin/allOrders", 3)
    assert plan.least_wall_s == 120.0  # two windows spent, the third one's weight goes at once
    plan.buckets["ip:/sapi/v1/margin/allOrders"].requests = 500  # 48 a window: 11 windows
    assert plan.least_wall_s == 600.0


def test_a_plan_reads_beside_a_run_that_holds_the_data_dir(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(scenario="tiny", seed=4)
    data = tmp_path / "data"
    request = ExportRequest(
        account_for(sim), data, streams=("transfers",), client_settings=fast_settings()
    )
    asyncio.run(export_account(request))  # a ledger to read
    with DataDirLock(data):  # as an export in progress holds it
        before = files(data)
        plan = asyncio.run(plan_export(request))
        assert files(data) == before
    assert plan.streams["transfers"].basis == "estimate"  # from the ledger: no probe
    assert plan.streams["transfers"].samples == 0
