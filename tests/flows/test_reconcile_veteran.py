"""The veteran account (three years, every rarer rule, older than every retention limit),
exported from four years back, built and reconciled: no break, nothing unverified inside what
was read, and a time from which each asset is verified."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import duckdb

from connectors.budget import BudgetSettings
from connectors.client import ClientSettings
from flows.config import Account, Secret
from flows.export import ExportRequest, export_account
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.prices import DAY_MS
from simulator.scenarios import build_exchange
from sql.runner import build, reconcile, root_causes, verified_from
from tests.fixtures_sim import SimFactory

# a calm exchange and a client that spends without pacing: the hostile export is tested apart
UNLIMITED = BudgetSettings(
    ip_limit=10**9,
    uid_limit=10**9,
    api_limit=10**9,
    request_limits={"/sapi/v1/margin/allOrders": 10**6},
)


def test_veteran_reconciles_with_every_asset_verified(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    # the simulated clock creeps (1 ms per 50 readings) so the per-window request caps reset
    ticks = itertools.count()
    exchange = build_exchange("veteran", 7, wall_clock=lambda: next(ticks) // 50)
    sim = sim_factory(exchange=exchange, weight_window_ms=1)
    account = Account("main", Secret(DEFAULT_API_KEY), Secret(DEFAULT_API_SECRET), base_url=sim.url)
    since = exchange.now_ms() - 4 * 365 * DAY_MS
    settings = ClientSettings(api_generation="current", budget=UNLIMITED)
    data = tmp_path / "data"
    asyncio.run(
        export_account(ExportRequest(account, data, since_ms=since, client_settings=settings))
    )

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
