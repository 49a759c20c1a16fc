"""A three-year-old account, as real accounts are: older than every retention limit, with
BNB-paid interest, auto-repays, a liquidation fee, slow PENDING rows, a delisting, isolated
margin and dust. Exported from four years back under the hostile fault profile, killed with
kill -9 at seeded events of its own run, resumed, compared with the truth for all eleven
streams, then built and reconciled: no break, nothing unverified inside what was read, and a
time from which each asset is verified."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import duckdb
import pytest

from bench.chaos_child import export_to
from bench.kill_runs import KillPoint, run_export
from connectors.specs import DAY_MS, HOUR_MS, SPECS
from sql.runner import build, reconcile, root_causes, verified_from
from tests.fixtures_sim import SimFactory
from tests.flows.lake_truth import HISTORY, differences, snapshot_differences

YEARS_BACK = 4  # further back than the account's opening: every stream reads all it can
# A first export of `veteran` makes well over 1,500 requests and marks over 1,000 windows in
# its commit: kill points drawn below these counts always land.
REQUESTS_DRAWN_FROM = 1_000
MARKS_DRAWN_FROM = 1_000


def read_from(cutoff_ms: int, since_ms: int) -> dict[str, int]:
    """From where each stream must be complete: --since, or as far back as its retention lets
    the last export read (older rows are left out on both sides)."""
    starts = {}
    for stream in HISTORY:
        retention = (SPECS.get(stream) or SPECS[f"{stream}.current"]).retention_ms
        starts[stream] = since_ms if retention is None else cutoff_ms - retention + HOUR_MS
    return starts


@pytest.mark.slow
def test_a_veteran_account_survives_hostile_faults_and_kills(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(scenario="veteran", seed=3, faults="hostile", weight_window_ms=2000)
    data = tmp_path / "data"
    since = sim.exchange.now_ms() - YEARS_BACK * 365 * DAY_MS
    rng = random.Random(2026_12_01)
    plan = [
        KillPoint("request", rng.randint(1, REQUESTS_DRAWN_FROM)),
        KillPoint("mark", rng.randint(1, MARKS_DRAWN_FROM)),
    ]
    command = [sys.executable, "-m", "bench.chaos_child", sim.url, str(data), str(since)]
    env = {**os.environ, "MARGIN_ETL_WEIGHT_WINDOW_S": "2"}
    outcomes = [run_export(command, env, sim, point) for point in plan]
    assert [o.killed for o in outcomes] == [True, True], [(o.point, o.returncode) for o in outcomes]
    export_to(sim.url, data, since_ms=since)  # resumed, still under the hostile profile
    sim.app.set_faults("none")
    sim.exchange.pin()  # one instant: the last export and the truth see the same account
    summary = export_to(sim.url, data, since_ms=since)
    truth = tmp_path / "truth"
    sim.app.write_truth(truth)
    found = differences(
        data,
        truth,
        until_ms=summary.cutoff_ms,
        seconds_streams=("transfers",),
        since_ms=read_from(summary.cutoff_ms, since),
        history_ms=None,
    )
    assert found == {}, {s: (len(d["missing"]), len(d["extra"])) for s, d in found.items()}
    assert snapshot_differences(data, truth, summary.cutoff_ms) == {}

    assert_reconciles_with_every_asset_verified(data)


def assert_reconciles_with_every_asset_verified(data: Path) -> None:
    result = build(data)
    assert result.ok, [f.message for f in result.failures]
    assert reconcile(data) == []
    assert root_causes(data) == []
    # the rows still PENDING at the end (the veteran's last slow rows) excuse their own
    # amounts, nothing else is provisional
    assert {c.cause_kind for c in root_causes(data, include_provisional=True)} <= {
        "pending",
        "capital_flow",
    }
    coverage = verified_from(data)
    assert len(coverage) >= 9 and all(c.verified_from is not None for c in coverage)
    with duckdb.connect(str(result.warehouse), read_only=True) as con:
        anchors = dict(
            con.execute(
                "select figure, string_agg(distinct anchor_kind, ',') from int_figure_coverage "
                "group by 1"
            ).fetchall()
        )
        inside = con.execute(
            "select count(*) from recon_unverified as spans inner join int_figure_coverage as f"
            " using (account, asset, figure)"
            " where spans.span_end > f.verified_from and spans.span_start < f.verified_to"
        ).fetchone()
        rare = dict(
            con.execute(
                "select entry_type, count(*) from int_ledger where entry_type in ("
                "'INTEREST_CONVERTED', 'REPAY_DEBIT', 'LIQUIDATION_FEE', 'CONVERSION') "
                "group by 1"
            ).fetchall()
        )
        opening = con.execute(
            "select bool_and(reaches_opening) from int_account_openings"
        ).fetchone()
    # the typed history reaches the opening; interest and balances start where the exchange's
    # interest history and capital flow (90 days) do, back-solved from the first snapshot
    assert opening == (True,)
    assert anchors == {"principal": "opening", "interest": "snapshot", "balance": "snapshot"}
    assert inside == (0,)
    assert set(rare) == {"INTEREST_CONVERTED", "REPAY_DEBIT", "LIQUIDATION_FEE", "CONVERSION"}
