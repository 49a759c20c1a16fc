"""The ledger's rarer rules, one by one: BNB-paid interest, auto-repays, the liquidation fee,
rows PENDING for days, delistings, dust, isolated accounts and quoteOrderQty orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulator import capital
from simulator.contract import ExchangeError
from simulator.prices import DAY_MS, HOUR_MS, MINUTE_MS, Crash
from tests.simulator.history_audit import (
    assert_consistent,
    bnb_interest,
    ceil8,
    usdt_price,
)
from tests.simulator.test_ledger import OPENED, funded, make_exchange, step

D = Decimal


# -- interest paid in BNB ------------------------------------------------------------------
def test_bnb_paid_interest_converts_each_charge_and_leaves_nothing_unpaid() -> None:
    ex = funded()
    ex.transfer("BNB", D(20), "ROLL_IN")
    ex.set_bnb_interest(True)
    ex.borrow("USDT", D(5000))
    step(ex, 2 * HOUR_MS)  # 13:55 -> 15:55: the ON_BORROW hour, then 14:00 and 15:00
    rows = ex.interest(None, 0, ex.now_ms())
    types = ["ON_BORROW_CONVERTED", "PERIODIC_CONVERTED", "PERIODIC_CONVERTED"]
    assert [r.type for r in rows] == types
    for row in rows:
        assert (row.asset, row.raw_asset, row.principal) == ("BNB", "USDT", D(5000))
        assert row.rate == ex.rate("USDT", row.time_ms)
        # the documented conversion: ceil8(charge x P(USDT) x 0.95 / P(BNBUSDT))
        assert row.interest == bnb_interest(ex, row) > 0
    balances = ex.snapshot().balances
    assert balances["USDT"].interest == 0
    assert balances["BNB"].free == D(20) - sum(r.interest for r in rows)
    assert ex.interest("BNB", 0, ex.now_ms()) == rows  # filed under the asset paid in
    assert ex.interest("USDT", 0, ex.now_ms()) == []
    # switched off: the next hour is charged in USDT again
    ex.set_bnb_interest(False)
    step(ex, HOUR_MS)
    last = ex.interest(None, 0, ex.now_ms())[-1]
    assert (last.type, last.asset, last.raw_asset) == ("PERIODIC", "USDT", None)
    assert ex.snapshot().balances["USDT"].interest == last.interest
    assert_consistent(ex)


def test_bnb_interest_needs_bnb_and_never_converts_bnb_itself() -> None:
    ex = funded()
    ex.set_bnb_interest(True)  # but no BNB on the account yet
    ex.borrow("ETH", D(1))
    ex.transfer("BNB", D(5), "ROLL_IN")
    ex.borrow("BNB", D(1))
    rows = ex.interest(None, 0, ex.now_ms())
    assert [(r.type, r.asset) for r in rows] == [("ON_BORROW", "ETH"), ("ON_BORROW", "BNB")]
    step(ex, HOUR_MS)
    later = {r.borrowed_asset: r for r in ex.interest(None, OPENED + 1, ex.now_ms())}
    assert later["ETH"].type == "PERIODIC_CONVERTED" and later["BNB"].type == "PERIODIC"
    assert_consistent(ex)


def test_bnb_interest_shows_in_the_capital_flow_under_the_interest_txid() -> None:
    ex = funded()
    ex.transfer("BNB", D(3), "ROLL_IN")
    ex.set_bnb_interest(True)
    ex.borrow("BTC", D("0.2"))
    (row,) = ex.interest(None, 0, ex.now_ms())
    flows = [f for f in capital.account_flows(ex, 0, ex.now_ms()) if f.tran_id == row.tx_id]
    assert [(f.type, f.asset, f.amount) for f in flows] == [
        (capital.BNB_INTEREST, "BNB", -row.interest)
    ]


# -- auto-repays ---------------------------------------------------------------------------
def test_every_repay_type_pays_interest_first_and_debits_what_paid() -> None:
    ex = funded()
    ex.transfer("BNB", D(50), "ROLL_IN")
    ex.borrow("USDT", D(3000))
    step(ex, 3 * HOUR_MS)
    owed = ex.snapshot().balances["USDT"]
    before = ex.snapshot().balances
    points = ex.repay("USDT", D(1), kind="POINT_AUTO_REPAY")
    assert (points.interest, points.principal) == (min(D(1), owed.interest), D(1) - owed.interest)
    assert (points.debit_asset, points.debit) == ("USDT", D(0))
    assert ex.snapshot().balances["USDT"].free == before["USDT"].free  # points paid
    bnb = ex.repay("USDT", D(100), kind="BNB_AUTO_REPAY")
    t = bnb.time_ms
    expected = ceil8(D(100) * usdt_price(ex, "USDT", t) / usdt_price(ex, "BNB", t))
    assert (bnb.asset, bnb.debit_asset, bnb.debit) == ("USDT", "BNB", expected)
    after = ex.snapshot().balances
    assert after["BNB"].free == before["BNB"].free - expected
    assert after["USDT"].free == before["USDT"].free
    assert after["USDT"].borrowed == D(3000) - points.principal - D(100)
    with pytest.raises(ExchangeError) as too_much:
        ex.repay("USDT", D(10**6), kind="BNB_AUTO_REPAY")
    assert too_much.value.code == -3015
    with pytest.raises(ExchangeError) as unknown:
        ex.repay("USDT", D(1), kind="CHEQUE")
    assert unknown.value.code == -3026
    flows = {f.tran_id: f for f in capital.account_flows(ex, 0, ex.now_ms()) if f.type == "REPAY"}
    assert (flows[points.tx_id].asset, flows[points.tx_id].amount) == ("USDT", D(0))
    assert (flows[bnb.tx_id].asset, flows[bnb.tx_id].amount) == ("BNB", -expected)
    assert_consistent(ex)


def test_auto_repay_order_repays_from_what_it_bought() -> None:
    ex = funded()
    ex.borrow("ETH", D(2))
    step(ex, 90 * MINUTE_MS)
    owed = ex.snapshot().balances["ETH"]
    order, fills = ex.place_order(
        "ETHUSDT", "BUY", "MARKET", D("1.5"), None, None, None, side_effect="AUTO_REPAY"
    )
    received = sum(f.qty - f.commission for f in fills)
    (repay,) = ex.repays("ETH", order.time_ms, order.time_ms)
    assert (repay.kind, repay.amount, repay.by_liquidation) == ("AUTO", received, False)
    assert repay.interest == owed.interest and repay.principal == received - owed.interest
    assert_consistent(ex)


# -- force liquidation with a fee ----------------------------------------------------------
def test_force_liquidation_takes_its_fee_from_what_it_sold() -> None:
    crash = Crash("SOL", OPENED + 6 * HOUR_MS, 6000, 10 * HOUR_MS, 10 * HOUR_MS, 24 * HOUR_MS)
    ex = make_exchange(crashes=(crash,), liquidation_fee_bp=200)
    ex.transfer("USDT", D(10000), "ROLL_IN")
    ex.borrow("USDT", ex.max_borrowable("USDT") * D("0.95"))
    qty = ex.snapshot().balances["USDT"].free * D("0.99") / ex.price("SOLUSDT", ex.now_ms())
    ex.place_order("SOLUSDT", "BUY", "MARKET", qty.quantize(D("0.001")), None, None, None)
    step(ex, 30 * HOUR_MS)
    liquidations = ex.liquidations(0, ex.now_ms())
    assert liquidations
    t = liquidations[0].time_ms
    sold = [x for x in liquidations if x.side == "SELL"]
    proceeds = sum(x.executed_qty * x.avg_price for x in sold)
    (fee,) = [f for f in ex.flows(t, t) if f.type == "LIQUIDATION_FEE"]
    assert fee.asset == "USDT" and fee.amount == -ceil8(proceeds * D("0.02"))
    for record in liquidations:
        fills = [x for x in ex.trades(record.symbol, t, t) if x.order_id == record.order_id]
        assert sum(x.qty for x in fills) == record.executed_qty
        assert all(x.is_liquidation for x in fills)
    types = {f.type for f in capital.account_flows(ex, t, t)}
    assert {"SELL_LIQUIDATION", "REPAY_LIQUIDATION", "LIQUIDATION_FEE"} <= types
    assert not types & {"SELL_INCOME", "SELL_EXPENSE", "REPAY"}
    repays = ex.repays(None, t, t)
    assert repays and all(r.kind == "AUTO" and r.by_liquidation for r in repays)
    assert_consistent(ex)


# -- rows PENDING for days -----------------------------------------------------------------
def test_rows_pending_for_days_end_confirmed_or_failed() -> None:
    ex = funded()
    before = ex.snapshot().balances
    ok = ex.transfer("USDT", D(700), "ROLL_IN", confirm_delay_ms=3 * DAY_MS)
    failed = ex.borrow("ETH", D(1), confirm_delay_ms=2 * DAY_MS, fail=True)
    # while pending: the one that will confirm has moved its money, the failing one nothing
    assert ex.snapshot().balances["USDT"].free == before["USDT"].free + 700
    assert ex.snapshot().balances["ETH"] == before["ETH"]
    step(ex, 2 * DAY_MS - 1)
    assert ex.is_pending(ok.confirm_ms) and ex.is_pending(failed.confirm_ms)
    step(ex, 1)
    assert ex.is_pending(ok.confirm_ms) and not ex.is_pending(failed.confirm_ms)
    assert failed.status == "FAILED" and ex.interest("ETH", 0, ex.now_ms()) == []
    step(ex, DAY_MS)
    assert not ex.is_pending(ok.confirm_ms) and ok.status == "CONFIRMED"
    assert_consistent(ex)


# -- delistings and dust -------------------------------------------------------------------
def test_delisting_converts_the_balance_and_keeps_the_history() -> None:
    ex = funded()
    ex.transfer("XRP", D(1000), "ROLL_IN")
    ex.place_order("XRPUSDT", "SELL", "MARKET", D(100), None, None, None)
    resting, _ = ex.place_order("XRPUSDT", "SELL", "LIMIT", D(50), D(99), None, None)
    held = ex.balance("XRP").free + D(50)
    t = ex.now_ms()
    flows = ex.delist_asset("XRP")
    price = ex.price("XRPUSDT", t)
    assert [(f.asset, f.amount, f.type) for f in flows] == [
        ("XRP", -held, "SMALL_CONVERT"),
        ("USDT", (held * price).quantize(D("0.00000001"), "ROUND_DOWN"), "SMALL_CONVERT"),
    ]
    assert resting.status == "CANCELED" and ex.delisted == {"XRPUSDT": t, "XRP": t}
    assert "XRP" not in ex.snapshot().balances
    assert len(ex.trades("XRPUSDT", 0, ex.now_ms())) >= 1  # still served
    for action, code in (
        (lambda: ex.place_order("XRPUSDT", "BUY", "MARKET", D(10), None, None, None), -1121),
        (lambda: ex.transfer("XRP", D(1), "ROLL_IN"), -3027),
        (lambda: ex.borrow("XRP", D(1)), -3027),
    ):
        with pytest.raises(ExchangeError) as refused:
            action()
        assert refused.value.code == code
    ex.delist_symbol("ETHBTC")
    with pytest.raises(ExchangeError):
        ex.place_order("ETHBTC", "BUY", "MARKET", D(1), None, None, None)
    ex.place_order("ETHUSDT", "SELL", "MARKET", D("0.1"), None, None, None)  # ETH trades on
    step(ex, 2 * DAY_MS)
    assert_consistent(ex)


def test_dust_becomes_bnb_less_two_percent() -> None:
    ex = funded()
    ex.transfer("ADA", D(9), "ROLL_IN")
    ex.transfer("XRP", D(5), "ROLL_IN")
    t = ex.now_ms()
    flows = ex.convert_dust(["ADA", "XRP"])
    assert len({f.tran_id for f in flows}) == 1
    assert [(f.asset, f.type) for f in flows] == [
        ("ADA", "SMALL_BALANCE_CONVERT"),
        ("BNB", "SMALL_BALANCE_CONVERT"),
        ("XRP", "SMALL_BALANCE_CONVERT"),
        ("BNB", "SMALL_BALANCE_CONVERT"),
    ]
    bnb = usdt_price(ex, "BNB", t)
    for (gone, got), amount in zip(zip(flows[::2], flows[1::2], strict=True), (9, 5), strict=True):
        value = D(amount) * usdt_price(ex, gone.asset, t)
        assert gone.amount == -amount
        assert got.amount == (value * D("0.98") / bnb).quantize(D("0.00000001"), "ROUND_DOWN")
    assert ex.snapshot().balances["BNB"].free == sum(f.amount for f in flows if f.asset == "BNB")
    with pytest.raises(ExchangeError):
        ex.convert_dust(["ETH"])  # 10 ETH is no dust
    assert_consistent(ex)


# -- isolated margin -----------------------------------------------------------------------
def test_isolated_account_lives_apart_from_the_cross_one() -> None:
    ex = funded()
    cross_usdt = ex.balance("USDT").free
    moved = ex.transfer("USDT", D(1000), "ROLL_IN", isolated_symbol="BTCUSDT", peer="CROSS_MARGIN")
    ex.transfer("USDT", D(500), "ROLL_IN", isolated_symbol="BTCUSDT")  # from spot
    ex.borrow("USDT", D(700), isolated_symbol="BTCUSDT")
    order, _ = ex.place_order(
        "BTCUSDT", "BUY", "MARKET", D("0.02"), None, None, None, isolated=True
    )
    step(ex, 2 * HOUR_MS)
    now = ex.now_ms()
    # the cross side: only its half of the move between the two accounts
    (mirror,) = ex.transfers(None, None, OPENED, now)[-1:]
    assert (mirror.tx_id, mirror.type, mirror.trans_to, mirror.to_symbol) == (
        moved.tx_id,
        "ROLL_OUT",
        "ISOLATED_MARGIN",
        "BTCUSDT",
    )
    assert ex.balance("USDT").free == cross_usdt - 1000
    assert ex.loans("USDT", 0, now) == [] and ex.interest(None, 0, now) == []
    assert ex.trades("BTCUSDT", 0, now) == [] and ex.order("BTCUSDT", order.order_id) is None
    assert "isolated" not in repr(ex.snapshot().balances)
    # the isolated side
    iso = {"isolated_symbol": "BTCUSDT"}
    assert [r.trans_from for r in ex.transfers(None, None, 0, now, **iso)] == [
        "CROSS_MARGIN",
        "SPOT",
    ]
    interest = ex.interest(None, 0, now, **iso)
    assert [r.type for r in interest] == ["ON_BORROW", "PERIODIC", "PERIODIC"]
    assert all(r.isolated_symbol == "BTCUSDT" and r.raw_asset is None for r in interest)
    assert ex.trades("BTCUSDT", 0, now, isolated=True)[0].is_isolated
    assert ex.order("BTCUSDT", order.order_id, isolated=True) is order
    snap = ex.snapshot(**iso)
    assert set(snap.balances) == {"BTC", "USDT"} and snap.btc_prices["BTC"] == 1
    with pytest.raises(ExchangeError) as other_asset:
        ex.transfer("ETH", D(1), "ROLL_IN", isolated_symbol="BTCUSDT")
    assert other_asset.value.code == -3027
    with pytest.raises(ExchangeError) as none:
        ex.borrow("USDT", D(1), isolated_symbol="ETHUSDT")
    assert none.value.code == -11001
    assert_consistent(ex)


# -- MARKET orders by quoteOrderQty --------------------------------------------------------
@pytest.mark.parametrize(
    ("symbol", "side"), [("BTCUSDT", "BUY"), ("XRPUSDT", "BUY"), ("ETHUSDT", "SELL")]
)
def test_quote_order_qty_spends_at_most_the_quote(symbol: str, side: str) -> None:
    ex = funded()
    ex.transfer("XRP", D(5000), "ROLL_IN")
    spec = ex.symbol_spec(symbol)
    reference = ex.price(symbol, ex.now_ms())
    order, fills = ex.place_order(
        symbol, side, "MARKET", None, None, None, None, quote_order_qty=D("777.77")
    )
    cost = sum(f.quote_qty for f in fills)
    assert order.cumm_quote_qty == cost <= D("777.77")
    # short of it by less than one step plus the slippage of a few ticks
    assert D("777.77") - cost < spec.step * reference + order.executed_qty * 3 * spec.tick
    assert order.orig_qty == order.executed_qty == sum(f.qty for f in fills)
    assert order.price == 0 and order.status == "FILLED"
    assert order.executed_qty % spec.step == 0
    with pytest.raises(ExchangeError) as both:
        ex.place_order(symbol, side, "MARKET", D(1), None, None, None, quote_order_qty=D(5))
    assert both.value.code == -1106
    with pytest.raises(ExchangeError) as tiny:
        ex.place_order(symbol, side, "MARKET", None, None, None, None, quote_order_qty=D("0.00001"))
    assert tiny.value.code == -1013
    assert_consistent(ex)
