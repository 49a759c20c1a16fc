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
from sql.runner import build, reconcile, verified_from
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
    # only the rows still PENDING at the end are provisional, each excusing its own amount
    assert {b.kind for b in reconcile(data, include_provisional=True)} <= {
        "pending",
        "principal",
        "interest",
        "balance",
        "capital_flow",
        "interest_principal",
        "interest_missing_on_borrow",
    }

    # every asset verified from the start of what was read (90 days: before the account's
    # first event), back-solved from the first daily snapshot; nothing unverified inside
    coverage = verified_from(data)
    assert coverage and all(c.verified_from is not None for c in coverage)
    assert {c.anchor_kind for c in coverage} == {"snapshot"}
    with duckdb.connect(str(result.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from recon_unverified").fetchone() == (0,)
        statuses = dict(
            con.execute(
                "select interval_kind || ':' || status, count(*) from recon_balances group by 1"
            ).fetchall()
        )
        rare = dict(
            con.execute(
                "select entry_type, count(*) from int_ledger where entry_type in "
                "('INTEREST_CONVERTED', 'REPAY_DEBIT', 'LIQUIDATION_FEE') group by 1"
            ).fetchall()
        )
        flows = dict(
            con.execute(
                "select match_status, count(*) from int_capital_flow_matches group by 1"
            ).fetchall()
        )
        checked = con.execute(
            "select count(*) filter (where status = 'matched'), count(*) from int_interest_hours"
        ).fetchone()
        positions = {
            asset: (balance, borrowed, interest)
            for asset, balance, borrowed, interest in con.execute(
                "select asset, arg_max(balance, position_at), arg_max(borrowed, position_at),"
                " arg_max(interest, position_at) from int_positions group by asset"
            ).fetchall()
        }
        # rows still PENDING that will fail moved nothing: the capital flow has none of them
        failing = {
            asset: (balance, principal, interest)
            for asset, balance, principal, interest in con.execute(
                "select asset, sum(balance_effect), sum(principal_effect), sum(interest_effect)"
                " from int_pending_rows where row_key in (select row_key from"
                " int_capital_flow_matches where match_status = 'missing_flow') group by asset"
            ).fetchall()
        }
    # every daily interval is settled; the rarer rules are there and tie
    assert statuses.get("snapshots:matched", 0) >= 8 * 25
    assert not any(key.endswith(":break") for key in statuses)
    assert set(rare) == {"INTEREST_CONVERTED", "REPAY_DEBIT", "LIQUIDATION_FEE"}
    assert flows["matched"] > 10_000 and set(flows) <= {"matched", "missing_flow"}
    assert checked is not None and checked[0] > 10_000

    # the ledger, summed from the anchor, lands on the exchange's own account to 1e-8 (but
    # for the rows still PENDING that will fail: the ledger keeps them, they may confirm)
    account_now = json.loads((truth / "account.json").read_text())
    for entry in account_now["userAssets"]:
        expected = (
            Decimal(entry["free"]) + Decimal(entry["locked"]),
            Decimal(entry["borrowed"]),
            Decimal(entry["interest"]),
        )
        ledger = positions.get(entry["asset"], (0, 0, 0))
        unfailed = failing.get(entry["asset"], (0, 0, 0))
        assert tuple(a - b for a, b in zip(ledger, unfailed, strict=True)) == expected, entry
