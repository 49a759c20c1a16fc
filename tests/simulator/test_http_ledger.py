"""The rarer ledger rules over real HTTP, on the `veteran` scenario: isolated rows only where
asked for, the capital flow as documented (and adding up), forceLiquidationRec without a window,
delisted pairs, interest paid in BNB, every repay type, quoteOrderQty, truth files, and rows
PENDING for days."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from simulator import capital, render
from simulator.ledger import Exchange
from simulator.params import DAY_MS, HOUR_MS
from simulator.server import RunningSimulator
from tests.fixtures_sim import SignedClient, SimFactory
from tests.simulator.history_audit import bnb_interest

M = "/sapi/v1/margin"
START = 1_780_002_000_000 // HOUR_MS * HOUR_MS  # as tests/simulator/test_scenarios.py
FLOW_FIELDS = ["id", "tranId", "timestamp", "asset", "symbol", "type", "amount", "note"]
D = Decimal
Veteran = tuple[RunningSimulator, SignedClient]


@pytest.fixture(scope="module")
def veteran(sim_factory: SimFactory) -> Iterator[Veteran]:
    """The veteran account from START on, live; a budget that lets tests read widely."""
    running = sim_factory(scenario="veteran", seed=1, start_ms=START, weight_limit=10**8)
    client = SignedClient(running.url)
    yield running, client
    client.close()


def code_of(response: Any) -> int:
    assert response.status_code == 400, response.text
    return int(response.json()["code"])


def pages(client: SignedClient, path: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    current = 1
    while True:
        page = client.ok("GET", path, current=current, size=100, **params)["rows"]
        rows.extend(page)
        if len(page) < 100:
            return rows
        current += 1


def flows_between(client: SignedClient, start: int, end: int, **params: Any) -> list[Any]:
    """Every capital-flow row in [start, end], oldest first: 7-day windows, fromId pages."""
    rows: list[Any] = []
    while start <= end:
        stop = min(end, start + 7 * DAY_MS - 1)
        cursor = 0
        while True:
            page = client.ok(
                "GET",
                f"{M}/capital-flow",
                startTime=start,
                endTime=stop,
                fromId=cursor,
                limit=1000,
                **params,
            )
            rows.extend(page)
            if len(page) < 1000:
                break
            cursor = page[-1]["id"]
        start = stop + 1
    return rows


# -- isolated margin ---------------------------------------------------------------------------


def test_isolated_rows_come_only_when_asked_for(veteran: Veteran) -> None:
    running, client = veteran
    ex = running.exchange
    now = client.timestamp()
    month = {"startTime": now - 30 * DAY_MS, "endTime": now}
    iso = {"isolatedSymbol": "BTCUSDT"}
    for path, extra in (
        (f"{M}/borrow-repay", {"type": "BORROW", "asset": "USDT"}),
        (f"{M}/borrow-repay", {"type": "REPAY", "asset": "USDT"}),
        (f"{M}/interestHistory", {}),
    ):
        cross = pages(client, path, **month, **extra)
        isolated = pages(client, path, **month, **extra, **iso)
        assert cross and isolated, path
        assert not any("isolatedSymbol" in r for r in cross), path
        assert all(r["isolatedSymbol"] == "BTCUSDT" for r in isolated), path
        assert not {r["txId"] for r in cross} & {r["txId"] for r in isolated}, path
    interest = pages(client, f"{M}/interestHistory", **month, **iso)
    assert all("rawAsset" not in r for r in interest)
    moves = pages(client, f"{M}/transfer", **month, **iso)
    cross_moves = pages(client, f"{M}/transfer", **month)
    # a move between the two accounts is in both, as each side's own row
    mirrored = {
        r["txId"] for r in cross_moves if "ISOLATED_MARGIN" in (r["transFrom"], r["transTo"])
    }
    assert mirrored and mirrored <= {r["txId"] for r in moves}
    assert {r["transTo"] for r in moves if r["type"] == "ROLL_IN"} == {"ISOLATED_MARGIN"}
    assert all(r.get("toSymbol") == "BTCUSDT" for r in moves if r["type"] == "ROLL_IN")
    # orders and trades: isIsolated=TRUE for the pair's account, never mixed into the cross one
    mine = client.ok("GET", f"{M}/myTrades", symbol="BTCUSDT", isIsolated="TRUE", fromId=0)
    cross_trades = client.ok("GET", f"{M}/myTrades", symbol="BTCUSDT", fromId=0, limit=1000)
    assert mine and all(t["isIsolated"] for t in mine)
    assert not any(t["isIsolated"] for t in cross_trades)
    assert not {t["id"] for t in mine} & {t["id"] for t in cross_trades}
    with ex.lock:
        expected = [t.id for t in ex.trades("BTCUSDT", 0, ex.now_ms(), isolated=True)][:500]
    assert [t["id"] for t in mine] == expected
    orders = client.ok("GET", f"{M}/allOrders", symbol="BTCUSDT", isIsolated="TRUE", orderId=0)
    assert orders and all(o["isIsolated"] for o in orders)
    refused = client.get(f"{M}/allOrders", symbol="ETHUSDT", isIsolated="TRUE", orderId=0)
    assert code_of(refused) == -11001


def test_isolated_account_shows_the_pair_and_the_cross_account_leaves_it_out(
    veteran: Veteran,
) -> None:
    running, client = veteran
    ex = running.exchange
    answer = client.ok("GET", f"{M}/isolated/account")
    with ex.lock:
        isolated = ex.snapshot(isolated_symbol="BTCUSDT")
        cross = [render.user_asset(b) for b in ex.snapshot().balances.values()]
    (pair,) = answer["assets"]
    assert pair["symbol"] == "BTCUSDT" and pair["isolatedCreated"] is True
    for side, asset in (("baseAsset", "BTC"), ("quoteAsset", "USDT")):
        row, balance = pair[side], isolated.balances[asset]
        assert row["asset"] == asset and D(row["free"]) == balance.free
        assert D(row["borrowed"]) == balance.borrowed
        assert D(row["netAsset"]) == balance.net_asset
        assert D(row["totalAsset"]) == balance.free + balance.locked
    assert D(answer["totalAssetOfBtc"]) == isolated.total_asset_btc
    named = client.ok("GET", f"{M}/isolated/account", symbols="BTCUSDT")
    assert [a["symbol"] for a in named["assets"]] == ["BTCUSDT"]
    assert "totalAssetOfBtc" not in named
    assert client.ok("GET", f"{M}/account")["userAssets"] == cross
    room = client.ok("GET", f"{M}/maxBorrowable", asset="USDT", isolatedSymbol="BTCUSDT")
    cross_room = client.ok("GET", f"{M}/maxBorrowable", asset="USDT")
    assert D(room["amount"]) < D(cross_room["amount"])


# -- the capital flow --------------------------------------------------------------------------


def test_capital_flow_has_every_movement_and_adds_up_to_the_balances(veteran: Veteran) -> None:
    running, client = veteran
    ex = running.exchange
    with ex.lock:
        now_snapshot = ex.snapshot()
        then = ex.daily_snapshots(now_snapshot.time_ms - 85 * DAY_MS, now_snapshot.time_ms)[0]
    rows = flows_between(client, then.time_ms + 1, now_snapshot.time_ms)
    ids = [r["id"] for r in rows]
    assert ids == sorted(set(ids))
    for row in rows:
        assert list(row) == [f for f in FLOW_FIELDS if f in row] and row["note"] == ""
    types = {r["type"] for r in rows}
    assert types >= {
        "TRANSFER",
        "BORROW",
        "REPAY",
        "BUY_INCOME",
        "BUY_EXPENSE",
        "SELL_INCOME",
        "SELL_EXPENSE",
        "TRADING_COMMISSION",
        "SELL_LIQUIDATION",
        "REPAY_LIQUIDATION",
        "LIQUIDATION_FEE",
        "SMALL_BALANCE_CONVERT",
        "SMALL_CONVERT",
        capital.BNB_INTEREST,
    }
    assert types <= set(capital.FLOW_TYPES)
    (fee,) = [r for r in rows if r["type"] == "LIQUIDATION_FEE"]
    assert fee["asset"] == "USDT" and D(fee["amount"]) < 0 and "symbol" not in fee
    # the movements since a daily snapshot are exactly how the balances changed since
    moved: defaultdict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        moved[row["asset"]] += D(row["amount"])
    for asset in {*then.balances, *now_snapshot.balances}:
        before = then.balances.get(asset)
        after = now_snapshot.balances.get(asset)
        held_before = before.free + before.locked if before else D(0)
        held_after = after.free + after.locked if after else D(0)
        assert moved[asset] == held_after - held_before, asset
    # isolated rows only with `symbol`, each carrying it
    isolated = flows_between(client, then.time_ms + 1, now_snapshot.time_ms, symbol="BTCUSDT")
    assert isolated and all(r["symbol"] == "BTCUSDT" for r in isolated)
    assert not {r["id"] for r in isolated} & set(ids)


def test_capital_flow_latest_first_without_from_id(veteran: Veteran) -> None:
    _, client = veteran
    end = START - 20 * DAY_MS
    week = {"startTime": end - 7 * DAY_MS + 1, "endTime": end}
    every = flows_between(client, week["startTime"], week["endTime"])
    latest = client.ok("GET", f"{M}/capital-flow", limit=50, **week)
    assert [r["id"] for r in latest] == [r["id"] for r in reversed(every[-50:])]
    after = client.ok("GET", f"{M}/capital-flow", fromId=every[99]["id"], limit=20, **week)
    assert after == every[100:120]
    old = client.ok("GET", f"{M}/capital-flow", startTime=START - 200 * DAY_MS, limit=5)
    assert old and min(r["timestamp"] for r in old) >= client.timestamp() - 90 * DAY_MS - 60_000


# -- liquidations, delistings, interest, repays --------------------------------------------------


def test_force_liquidation_records_have_no_window_and_match_their_fills(veteran: Veteran) -> None:
    running, client = veteran
    with running.exchange.lock:
        count = len(running.exchange.liquidations(0, running.exchange.now_ms()))
    answer = client.ok("GET", f"{M}/forceLiquidationRec", size=100)
    assert answer["total"] == count == len(answer["rows"]) and count >= 2
    oldest = min(r["updatedTime"] for r in answer["rows"])
    assert oldest < client.timestamp() - 365 * DAY_MS  # no 30-day default, no retention
    spanned = client.ok(
        "GET", f"{M}/forceLiquidationRec", startTime=START - 1000 * DAY_MS, endTime=START, size=100
    )
    assert spanned["total"] == count
    for row in answer["rows"]:
        fills = client.ok("GET", f"{M}/myTrades", symbol=row["symbol"], orderId=row["orderId"])
        assert fills and sum(D(f["qty"]) for f in fills) == D(row["executedQty"])


def test_delisted_pair_and_asset_keep_their_history(veteran: Veteran) -> None:
    running, client = veteran
    delisted = running.exchange.delisted
    pairs = {p["symbol"]: p for p in client.ok("GET", f"{M}/allPairs")}
    for symbol in ("LUNAUSDT", "BNBBTC"):
        assert pairs[symbol]["delistTime"] == delisted[symbol]
        assert not pairs[symbol]["isMarginTrade"] and not pairs[symbol]["isBuyAllowed"]
    assert "delistTime" not in pairs["BTCUSDT"] and pairs["BTCUSDT"]["isMarginTrade"]
    assets = {a["assetName"]: a for a in client.ok("GET", f"{M}/allAssets")}
    assert assets["LUNA"]["delistTime"] == delisted["LUNA"] and not assets["LUNA"]["isBorrowable"]
    trades = client.ok("GET", f"{M}/myTrades", symbol="LUNAUSDT", fromId=0, limit=1000)
    orders = client.ok("GET", f"{M}/allOrders", symbol="LUNAUSDT", orderId=0)
    assert trades and orders
    assert max(t["time"] for t in trades) < delisted["LUNA"]
    refused = client.request(
        "POST", f"{M}/order", symbol="LUNAUSDT", side="BUY", type="MARKET", quantity="1"
    )
    assert code_of(refused) == -1121
    borrow = client.request(
        "POST", f"{M}/borrow-repay", asset="LUNA", isIsolated="FALSE", amount="1", type="BORROW"
    )
    assert code_of(borrow) == -3027
    account = client.ok("GET", f"{M}/account")
    assert "LUNA" not in {a["asset"] for a in account["userAssets"]}


def test_interest_paid_in_bnb_reads_as_documented(veteran: Veteran) -> None:
    running, client = veteran
    ex = running.exchange
    assert isinstance(ex, Exchange)
    now = client.timestamp()
    rows = pages(client, f"{M}/interestHistory", asset="BNB", startTime=now - 6 * DAY_MS)
    converted = [r for r in rows if r["type"].endswith("_CONVERTED")]
    assert converted
    with ex.lock:
        records = {r.tx_id: r for r in ex.interest("BNB", now - 7 * DAY_MS, now)}
    for row in converted:
        record = records[row["txId"]]
        assert row["asset"] == "BNB" and row["rawAsset"] not in ("BNB", None)
        assert D(row["interestRate"]) == ex.rate(row["rawAsset"], row["interestAccuredTime"])
        assert D(row["interest"]) == bnb_interest(ex, record)
    flows = flows_between(client, now - 6 * DAY_MS, now - HOUR_MS)
    deducted = {r["tranId"]: r for r in flows if r["type"] == capital.BNB_INTEREST}
    for row in converted:
        if row["interestAccuredTime"] <= now - HOUR_MS:
            flow = deducted[row["txId"]]
            assert (flow["asset"], D(flow["amount"])) == ("BNB", -D(row["interest"]))


def test_every_repay_type_is_reported(veteran: Veteran) -> None:
    _, client = veteran
    now = client.timestamp()
    kinds: set[str] = set()
    bnb_paid: list[dict[str, Any]] = []
    for asset in ("USDT", "BTC", "ETH", "SOL", "USDC"):
        for months in range(3):
            end = now - months * 30 * DAY_MS
            found = pages(
                client,
                f"{M}/borrow-repay",
                type="REPAY",
                asset=asset,
                startTime=end - 30 * DAY_MS + 1,
                endTime=end,
            )
            kinds.update(r["type"] for r in found)
            bnb_paid.extend(r for r in found if r["type"] == "BNB_AUTO_REPAY")
    assert kinds >= {"MANUAL", "AUTO", "BNB_AUTO_REPAY", "POINT_AUTO_REPAY"}
    # a BNB_AUTO_REPAY repays the asset's debt and takes BNB: its capital-flow row is in BNB
    paid = bnb_paid[0]
    around = flows_between(client, paid["timestamp"], paid["timestamp"])
    (flow,) = [r for r in around if r["tranId"] == paid["txId"]]
    assert (flow["type"], flow["asset"]) == ("REPAY", "BNB") and D(flow["amount"]) < 0


# -- quoteOrderQty -------------------------------------------------------------------------------


def test_market_orders_by_quote_order_qty(veteran: Veteran) -> None:
    _, client = veteran
    order = "/sapi/v1/margin/order"
    bought = client.ok(
        "POST", order, symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="250"
    )
    assert D(bought["executedQty"]) > 0 and D(bought["cummulativeQuoteQty"]) <= 250
    assert bought["origQty"] == bought["executedQty"] and D(bought["price"]) == 0
    assert sum(D(f["qty"]) for f in bought["fills"]) == D(bought["executedQty"])
    sold = client.ok(
        "POST", order, symbol="ETHUSDT", side="SELL", type="MARKET", quoteOrderQty="100.5"
    )
    assert 99 < D(sold["cummulativeQuoteQty"]) <= D("100.5")
    isolated = client.ok(
        "POST",
        order,
        symbol="BTCUSDT",
        isIsolated="TRUE",
        side="BUY",
        type="MARKET",
        quoteOrderQty="60",
    )
    assert isolated["isIsolated"] is True
    both = client.request(
        "POST", order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1", quoteOrderQty="5"
    )
    assert code_of(both) == -1106
    assert both.json()["msg"] == "Parameter 'quantity' sent when not required."
    neither = client.request("POST", order, symbol="BTCUSDT", side="BUY", type="MARKET")
    assert code_of(neither) == -1102
    limit = client.request(
        "POST",
        order,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        price="1000",
        quoteOrderQty="5",
    )
    assert code_of(limit) == -1106


def test_isolated_writes_and_auto_repay_orders(veteran: Veteran) -> None:
    _, client = veteran
    iso = {"isolatedSymbol": "BTCUSDT"}
    moved = client.ok(
        "POST",
        "/sapi/v1/asset/transfer",
        type="MARGIN_ISOLATEDMARGIN",
        toSymbol="BTCUSDT",
        asset="USDT",
        amount="25",
    )["tranId"]
    cross_side = client.ok("GET", f"{M}/transfer", size=5)["rows"]
    isolated_side = client.ok("GET", f"{M}/transfer", size=5, **iso)["rows"]
    (out,) = [r for r in cross_side if r["txId"] == moved]
    (into,) = [r for r in isolated_side if r["txId"] == moved]
    assert (out["type"], out["transTo"], out["toSymbol"]) == (
        "ROLL_OUT",
        "ISOLATED_MARGIN",
        "BTCUSDT",
    )
    assert (into["type"], into["transFrom"]) == ("ROLL_IN", "CROSS_MARGIN")
    borrowed = client.ok(
        "POST",
        f"{M}/borrow-repay",
        asset="USDT",
        isIsolated="TRUE",
        symbol="BTCUSDT",
        amount="10",
        type="BORROW",
    )["tranId"]
    (row,) = client.ok("GET", f"{M}/borrow-repay", type="BORROW", txId=borrowed, **iso)["rows"]
    assert (row["type"], row["isolatedSymbol"], row["amount"]) == (
        "MANUAL",
        "BTCUSDT",
        "10.00000000",
    )
    assert client.ok("GET", f"{M}/borrow-repay", type="BORROW", txId=borrowed)["rows"] == []
    # sideEffectType=AUTO_REPAY: what the order brings in repays the debt, typed AUTO
    balances = {a["asset"]: a for a in client.ok("GET", f"{M}/account")["userAssets"]}
    debt = D(balances["ETH"]["borrowed"]) + D(balances["ETH"]["interest"])
    assert debt > 0
    filled = client.ok(
        "POST",
        f"{M}/order",
        symbol="ETHUSDT",
        side="BUY",
        type="MARKET",
        quantity="0.05",
        sideEffectType="AUTO_REPAY",
    )
    repays = client.ok("GET", f"{M}/borrow-repay", type="REPAY", asset="ETH", size=3)["rows"]
    assert repays[0]["type"] == "AUTO" and repays[0]["timestamp"] == filled["transactTime"]


# -- truth and time ------------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_truth_keeps_cross_and_isolated_apart_and_flows_add_up(
    veteran: Veteran, tmp_path: Path
) -> None:
    running, _ = veteran
    ex = running.exchange
    now = running.app.write_truth(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"capital_flow.jsonl", "interest_rates.jsonl", "account.json", "isolated"} <= names
    for stream in ("loans", "repays", "interest", "transfers", "orders", "trades"):
        text = (tmp_path / f"{stream}.jsonl").read_text()
        assert "isolatedSymbol" not in text and '"isIsolated":true' not in text, stream
        assert (tmp_path / "isolated" / "BTCUSDT" / f"{stream}.jsonl").stat().st_size > 0
    account = json.loads((tmp_path / "account.json").read_text())
    held: defaultdict[str, Decimal] = defaultdict(Decimal)
    for row in read_jsonl(tmp_path / "capital_flow.jsonl"):
        held[row["asset"]] += D(row["amount"])
    for asset in account["userAssets"]:
        assert held[asset["asset"]] == D(asset["free"]) + D(asset["locked"]), asset["asset"]
    pair = json.loads((tmp_path / "isolated" / "BTCUSDT" / "account.json").read_text())
    iso_held: defaultdict[str, Decimal] = defaultdict(Decimal)
    for row in read_jsonl(tmp_path / "isolated" / "BTCUSDT" / "capital_flow.jsonl"):
        iso_held[row["asset"]] += D(row["amount"])
    for side in ("baseAsset", "quoteAsset"):
        assert iso_held[pair[side]["asset"]] == D(pair[side]["totalAsset"])
    rates = read_jsonl(tmp_path / "interest_rates.jsonl")
    hours = (now // HOUR_MS) - (ex.opened_ms // HOUR_MS) + 1
    assert len(rates) == hours * len(ex.assets)
    first = rates[0]
    assert list(first) == ["asset", "dailyInterestRate", "timestamp", "vipLevel"]
    assert D(first["dailyInterestRate"]) == ex.rate(first["asset"], first["timestamp"])
    assert first["timestamp"] % HOUR_MS == 0


def test_rows_pending_for_days_settle_days_later(veteran: Veteran) -> None:
    """Last in the module: it moves the simulator's clock days ahead."""
    _, client = veteran
    recent = pages(client, f"{M}/transfer")  # the last 7 days
    slow = [
        r
        for r in recent
        if r["status"] == "PENDING" and r["timestamp"] < client.timestamp() - DAY_MS
    ]
    assert {r["asset"] for r in slow} == {"USDT", "BTC"}
    client.http.post("/_sim/advance", params={"ms": 6 * DAY_MS}).raise_for_status()
    client.sync_time()
    later = pages(client, f"{M}/transfer", startTime=client.timestamp() - 13 * DAY_MS)
    settled = {r["txId"]: r["status"] for r in later}
    assert {settled[r["txId"]] for r in slow} == {"CONFIRMED", "FAILED"}
