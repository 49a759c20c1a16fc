"""A three-year-old account, as real accounts are: older than every retention limit, with
BNB-paid interest, auto-repays, a liquidation fee, slow PENDING rows, a delisting, isolated
margin and dust. Exported under the hostile fault profile, killed with kill -9 at seeded
events of its own run, resumed, and compared with the truth for all eleven streams."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

from bench.chaos_child import export_to
from bench.kill_runs import KillPoint, run_export
from connectors.specs import DAY_MS, HOUR_MS, SPECS
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
