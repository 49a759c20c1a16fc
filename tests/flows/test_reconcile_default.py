"""The default scenario, exported and built: it reconciles, and the ledger explains the truth."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import duckdb

from flows.config import Account, Secret
from flows.export import ExportRequest, export_account
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.scenarios import build_exchange
from sql.runner import build, reconcile
from tests.fixtures_sim import SimFactory


def test_default_scenario_reconciles_to_the_truth(sim_factory: SimFactory, tmp_path: Path) -> None:
    # the exchange's clock is frozen so nothing happens between the export and the truth
    sim = sim_factory(exchange=build_exchange("default", 21, wall_clock=lambda: 0))
    data = tmp_path / "data"
    account = Account("main", Secret(DEFAULT_API_KEY), Secret(DEFAULT_API_SECRET), base_url=sim.url)
    asyncio.run(export_account(ExportRequest(account, data)))
    truth = tmp_path / "truth"
    with sim.exchange.lock:
        sim.app.write_truth(truth)

    result = build(data)
    assert result.ok, [f.message for f in result.failures]
    assert reconcile(data) == []

    with duckdb.connect(str(result.warehouse), read_only=True) as con:
        statuses = dict(
            con.execute(
                "select interval_kind || ':' || status, count(*) from recon_balances group by 1"
            ).fetchall()
        )
        positions = {
            asset: (balance, borrowed, interest)
            for asset, balance, borrowed, interest in con.execute(
                "select asset, arg_max(balance, position_at), arg_max(borrowed, position_at),"
                " arg_max(interest, position_at) from int_positions group by asset"
            ).fetchall()
        }
    # the history reaches the opening, and every daily interval but the newest is settled
    assert statuses.get("opening:matched", 0) >= 8
    assert statuses.get("snapshots:matched", 0) >= 8 * 25
    assert not any(key.endswith(":break") for key in statuses)

    # the ledger, summed from the opening, lands on the exchange's own account to 1e-8
    account_now = json.loads((truth / "account.json").read_text())
    for entry in account_now["userAssets"]:
        expected = (
            Decimal(entry["free"]) + Decimal(entry["locked"]),
            Decimal(entry["borrowed"]),
            Decimal(entry["interest"]),
        )
        assert positions.get(entry["asset"], (0, 0, 0)) == expected, entry["asset"]
