"""Third-party clients, unchanged, against the simulator over loopback: Binance's own SDK
(`binance-sdk-margin-trading`, today's endpoints) and python-binance (the seed generation's) on
one simulator serving both generations; ccxt (default options) on one serving today's only."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt
import httpx
import pytest
from binance.client import Client
from binance_common.configuration import ConfigurationRestAPI
from binance_sdk_margin_trading.margin_trading import MarginTrading
from binance_sdk_margin_trading.rest_api.models.enums import (
    GetFutureHourlyInterestRateIsIsolatedEnum,
    MarginAccountBorrowRepayIsIsolatedEnum,
    MarginAccountBorrowRepayTypeEnum,
    MarginAccountNewOrderNewOrderRespTypeEnum,
    MarginAccountNewOrderSideEnum,
    MarginAccountNewOrderTypeEnum,
    QueryBorrowRepayRecordsInMarginAccountTypeEnum,
)

from simulator import render
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.params import DAY_MS, HOUR_MS
from simulator.server import RunningSimulator
from tests.fixtures_sim import SimFactory


@pytest.fixture(scope="module")
def live(sim_factory: SimFactory) -> RunningSimulator:
    """A private simulator (the clients write to it) on the wall clock: neither client syncs
    its clock with the server, as is common."""
    return sim_factory(scenario="default", seed=21, api_generation="both")


@pytest.fixture(scope="module")
def sdk(live: RunningSimulator) -> Any:
    config = ConfigurationRestAPI(
        api_key=DEFAULT_API_KEY,
        api_secret=DEFAULT_API_SECRET,
        base_path=live.url,
        timeout=10_000,
        retries=0,
    )
    return MarginTrading(config_rest_api=config).rest_api


@pytest.fixture(scope="module")
def legacy(live: RunningSimulator) -> Iterator[Client]:
    client = Client(DEFAULT_API_KEY, DEFAULT_API_SECRET, ping=False)
    client.API_URL = f"{live.url}/api"
    client.MARGIN_API_URL = f"{live.url}/sapi"
    yield client
    client.close_connection()


@pytest.fixture()
def strict_models(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The SDK logs a warning when an answer does not fit its declared types; none may."""
    with caplog.at_level(logging.WARNING):
        yield
    mismatches = [r.getMessage() for r in caplog.records if "response" in r.getMessage()]
    assert not mismatches


def window(live: RunningSimulator, days: int = 20) -> tuple[int, int]:
    with live.exchange.lock:
        now = live.exchange.now_ms()
    return now - days * DAY_MS, now - HOUR_MS


def test_sdk_reads_history(sdk: Any, live: RunningSimulator, strict_models: None) -> None:
    start, end = window(live)
    borrows = sdk.query_borrow_repay_records_in_margin_account(
        type=QueryBorrowRepayRecordsInMarginAccountTypeEnum.BORROW,
        asset="USDT",
        start_time=start,
        end_time=end,
        size=100,
    ).data()
    with live.exchange.lock:
        expected = {r.tx_id for r in live.exchange.loans("USDT", start, end)}
    assert {row.tx_id for row in borrows.rows} == expected and borrows.total == len(expected)
    assert all(isinstance(row.amount, str) and row.type == "MANUAL" for row in borrows.rows)
    interest = sdk.get_interest_history(asset="BTC", start_time=start, end_time=end, size=100)
    rows = interest.data().rows
    assert rows and all(start <= row.interest_accured_time <= end for row in rows)
    assert int(interest.headers["X-SAPI-USED-IP-WEIGHT-1M"]) >= 1
    transfers = sdk.get_cross_margin_transfer_history(start_time=start, end_time=end, size=100)
    assert transfers.data().rows and transfers.data().rows[0].trans_to in ("CROSS_MARGIN", "SPOT")


def test_sdk_reads_liquidations_orders_trades_account(
    sdk: Any, live: RunningSimulator, strict_models: None
) -> None:
    with live.exchange.lock:
        first = live.exchange.liquidations(live.exchange.opened_ms, live.exchange.now_ms())[0]
        orders = live.exchange.orders("BTCUSDT", live.exchange.opened_ms, live.exchange.now_ms())
        trades = live.exchange.trades("BTCUSDT", live.exchange.opened_ms, live.exchange.now_ms())
    liquidations = sdk.get_force_liquidation_record(
        start_time=first.time_ms - DAY_MS, end_time=first.time_ms + DAY_MS, size=100
    ).data()
    assert first.order_id in {row.order_id for row in liquidations.rows}
    listed = sdk.query_margin_accounts_all_orders(
        symbol="BTCUSDT", order_id=orders[0].order_id, limit=50
    ).data()
    assert [o.order_id for o in listed] == [o.order_id for o in orders[:50]]
    fills = sdk.query_margin_accounts_trade_list(
        symbol="BTCUSDT", from_id=trades[0].id, limit=20
    ).data()
    assert [t.id for t in fills] == [t.id for t in trades[:20]]
    account = sdk.query_cross_margin_account_details().data()
    assert account.user_assets and account.created is True
    for asset in account.user_assets:
        net = Decimal(asset.free) + Decimal(asset.locked) - Decimal(asset.borrowed)
        assert Decimal(asset.net_asset) == net - Decimal(asset.interest)


def test_sdk_borrows_trades_and_repays(sdk: Any, live: RunningSimulator) -> None:
    borrowed = sdk.margin_account_borrow_repay(
        asset="USDT",
        is_isolated=MarginAccountBorrowRepayIsIsolatedEnum.FALSE,
        amount="25",
        type=MarginAccountBorrowRepayTypeEnum.BORROW,
    ).data()
    order = sdk.margin_account_new_order(
        symbol="BTCUSDT",
        side=MarginAccountNewOrderSideEnum.BUY,
        type=MarginAccountNewOrderTypeEnum.MARKET,
        quantity=0.0002,
        new_order_resp_type=MarginAccountNewOrderNewOrderRespTypeEnum.FULL,
    ).data()
    assert order.status == "FILLED" and order.fills
    repaid = sdk.margin_account_borrow_repay(
        asset="USDT",
        is_isolated=MarginAccountBorrowRepayIsIsolatedEnum.FALSE,
        amount="10",
        type=MarginAccountBorrowRepayTypeEnum.REPAY,
    ).data()
    with live.exchange.lock:
        now = live.exchange.now_ms()
        loan = live.exchange.loans("USDT", now - HOUR_MS, now)[-1]
        repay = live.exchange.repays("USDT", now - HOUR_MS, now)[-1]
        placed = live.exchange.order("BTCUSDT", order.order_id)
    assert (loan.tx_id, loan.principal) == (borrowed.tran_id, Decimal(25))
    assert (repay.tx_id, repay.amount) == (repaid.tran_id, Decimal(10))
    assert placed is not None and placed.status == "FILLED"


def test_sdk_reads_rates_fee_data_and_isolated_pairs(
    sdk: Any, live: RunningSimulator, strict_models: None
) -> None:
    start, end = window(live, days=3)
    history = sdk.query_margin_interest_rate_history(
        asset="USDT", start_time=start, end_time=end
    ).data()
    assert len(history) == 20 and all(isinstance(r.daily_interest_rate, str) for r in history)
    assert all(
        Decimal(r.daily_interest_rate) == live.exchange.rate("USDT", r.timestamp) for r in history
    )
    upcoming = sdk.get_future_hourly_interest_rate(
        assets="BTC,ETH", is_isolated=GetFutureHourlyInterestRateIsIsolatedEnum.FALSE
    ).data()
    assert [r.asset for r in upcoming] == ["BTC", "ETH"]
    cross = sdk.query_cross_margin_fee_data(coin="BTC").data()
    assert cross[0].coin == "BTC" and "BTCUSDT" in cross[0].marginable_pairs
    isolated = sdk.query_isolated_margin_fee_data(symbol="ETHBTC").data()
    assert [d.coin for d in isolated[0].data] == ["ETH", "BTC"]
    pairs = sdk.get_all_isolated_margin_symbol().data()
    assert sorted(p.symbol for p in pairs) == sorted(live.exchange.symbols)


def test_python_binance_reads_the_seed_generation(legacy: Client, live: RunningSimulator) -> None:
    start, end = window(live)
    loans = legacy.get_margin_loan_details(asset="USDT", startTime=start, endTime=end, size=100)
    repays = legacy.get_margin_repay_details(asset="USDT", startTime=start, endTime=end, size=100)
    with live.exchange.lock:
        expected_loans = {r.tx_id for r in live.exchange.loans("USDT", start, end)}
        expected_repays = {r.tx_id for r in live.exchange.repays("USDT", start, end)}
    assert {r["txId"] for r in loans["rows"]} == expected_loans
    assert loans["total"] == len(expected_loans)
    assert {r["txId"] for r in repays["rows"]} == expected_repays
    assert all(
        set(r) == {"txId", "asset", "principal", "timestamp", "status"} for r in loans["rows"]
    )
    assert legacy.get_server_time()["serverTime"] > end


def test_python_binance_writes_with_a_signed_form_body(
    legacy: Client, live: RunningSimulator
) -> None:
    # POSTs go as sorted form bodies with the signature last: the server signs totalParams
    moved = legacy.transfer_spot_to_margin(asset="USDT", amount="3")
    loan = legacy.create_margin_loan(asset="USDT", amount="4")
    with live.exchange.lock:
        now = live.exchange.now_ms()
        transfer = live.exchange.transfers("USDT", "ROLL_IN", now - HOUR_MS, now)[-1]
        borrowed = live.exchange.loans("USDT", now - HOUR_MS, now)[-1]
    assert (transfer.tx_id, transfer.amount) == (moved["tranId"], Decimal(3))
    assert (borrowed.tx_id, borrowed.principal) == (loan["tranId"], Decimal(4))


# -- ccxt (default options; only its URLs point at the simulator) --------------------------------
# ccxt parses amounts into floats; exact comparisons below use the raw `info` it keeps.


@pytest.fixture(scope="module")
def today(sim_factory: SimFactory) -> RunningSimulator:
    """A private simulator speaking today's API only, on the wall clock (ccxt signs with its
    local clock and does not sync it)."""
    return sim_factory(scenario="default", seed=22, api_generation="current")


@pytest.fixture(scope="module")
def exchange(today: RunningSimulator) -> ccxt.binance:
    client = ccxt.binance({"apiKey": DEFAULT_API_KEY, "secret": DEFAULT_API_SECRET})
    for name, url in list(client.urls["api"].items()):
        if isinstance(url, str):  # every Binance host (api, fapi, dapi, ...) → the simulator
            client.urls["api"][name] = today.url + urlsplit(url).path
    return client


def requests_made(running: RunningSimulator) -> Counter[str]:
    stats = httpx.get(f"{running.url}/_sim/stats").json()
    return Counter({name: s["requests"] for name, s in stats["endpoints"].items()})


def test_ccxt_loads_markets_and_currencies(exchange: ccxt.binance, today: RunningSimulator) -> None:
    before = requests_made(today)
    markets = exchange.load_markets()
    calls = requests_made(today) - before
    assert calls == Counter(
        {
            "GET /sapi/v1/capital/config/getall": 1,
            "GET /sapi/v1/margin/allPairs": 2,
            "GET /api/v3/exchangeInfo": 1,
            "GET /sapi/v1/margin/isolated/allPairs": 1,
            "GET /fapi/v1/exchangeInfo": 1,
            "GET /dapi/v1/exchangeInfo": 1,
        }
    )
    ledger = today.exchange
    assert {m["id"]: (m["baseId"], m["quoteId"]) for m in markets.values()} == ledger.symbols
    served = {code: c for code, c in exchange.currencies.items() if c["info"]}  # ccxt adds BNFCR
    assert {c["info"]["coin"] for c in served.values()} == set(served) == set(ledger.assets)
    for market in markets.values():
        spec = ledger.market.symbol_specs[market["id"]]
        filters = {f["filterType"]: f for f in market["info"]["filters"]}
        assert Decimal(filters["PRICE_FILTER"]["tickSize"]) == spec.tick
        assert Decimal(filters["LOT_SIZE"]["stepSize"]) == spec.step
        assert market["spot"] and market["margin"] and market["active"]
        assert market["marginModes"] == {"cross": True, "isolated": True}


def test_ccxt_reads_the_margin_balance(exchange: ccxt.binance, today: RunningSimulator) -> None:
    exchange.load_markets()
    fields = ("free", "locked", "borrowed", "interest", "netAsset")
    for _ in range(2):  # an hour may turn (and interest accrue) between read and truth
        balance = exchange.fetch_balance({"type": "margin"})
        served = {
            row["asset"]: tuple(Decimal(row[f]) for f in fields)
            for row in balance["info"]["userAssets"]
        }
        with today.exchange.lock:
            truth = {
                b.asset: (b.free, b.locked, b.borrowed, b.interest, b.net_asset)
                for b in today.exchange.snapshot().balances.values()
            }
        if served == truth:
            break
    assert served == truth
    assert {code for code, total in balance["total"].items() if total} <= set(truth)


def test_ccxt_reads_margin_trades_and_orders(
    exchange: ccxt.binance, today: RunningSimulator
) -> None:
    exchange.load_markets()
    since = now_ms(today) - 2 * DAY_MS  # a complete day: [since, since + 24 h]
    trades = exchange.fetch_my_trades("BTC/USDT", since, 1000, {"type": "margin"})
    orders = exchange.fetch_orders("BTC/USDT", since, 500, {"type": "margin"})
    with today.exchange.lock:
        true_trades = today.exchange.trades("BTCUSDT", since, since + DAY_MS)
        true_orders = today.exchange.orders("BTCUSDT", since, since + DAY_MS)
    assert trades and [t["info"] for t in trades] == [render.trade_row(t) for t in true_trades]
    assert [t["id"] for t in trades] == [str(t.id) for t in true_trades]
    assert [t["order"] for t in trades] == [str(t.order_id) for t in true_trades]
    fixed = ("orderId", "clientOrderId", "side", "type", "price", "origQty", "time")
    assert [{k: o["info"][k] for k in fixed} for o in orders] == [
        {k: render.order_row(o)[k] for k in fixed} for o in true_orders
    ]


def test_ccxt_reads_borrow_interest(exchange: ccxt.binance, today: RunningSimulator) -> None:
    exchange.load_markets()
    until = now_ms(today) // HOUR_MS * HOUR_MS - HOUR_MS  # a window entirely in the past
    since = until - 2 * DAY_MS
    charges = exchange.fetch_borrow_interest("USDT", None, since, 100, {"until": until})
    with today.exchange.lock:
        truth = {
            r.tx_id: render.interest_row(r) for r in today.exchange.interest("USDT", since, until)
        }
    assert len(charges) == min(100, len(truth)) > 24
    assert all(c["info"] == truth[c["info"]["txId"]] for c in charges)
    assert all(c["currency"] == "USDT" and c["marginMode"] == "cross" for c in charges)


def test_ccxt_reads_borrow_rate_history(exchange: ccxt.binance, today: RunningSimulator) -> None:
    exchange.load_markets()
    before = now_ms(today)
    history = exchange.fetch_borrow_rate_history("BTC", before - 10 * DAY_MS, 93)
    current = exchange.fetch_cross_borrow_rate("BTC")
    after = now_ms(today)
    stamps = [h["timestamp"] for h in history]
    assert len(history) == 93 and stamps == sorted(stamps)
    assert all(b - a == HOUR_MS for a, b in itertools.pairwise(stamps))
    for row in [*history, current]:
        daily = today.exchange.rate("BTC", row["timestamp"])
        assert Decimal(row["info"]["dailyInterestRate"]) == daily
    hours = {before // HOUR_MS * HOUR_MS, after // HOUR_MS * HOUR_MS}
    assert current["timestamp"] in hours and current["currency"] == "BTC"


def test_ccxt_borrows_and_repays(exchange: ccxt.binance, today: RunningSimulator) -> None:
    exchange.load_markets()
    before = requests_made(today)
    borrowed = exchange.borrow_cross_margin("USDT", 25)
    repaid = exchange.repay_cross_margin("USDT", 10)
    assert requests_made(today) - before == Counter({"POST /sapi/v1/margin/borrow-repay": 2})
    with today.exchange.lock:
        now = today.exchange.now_ms()
        loan = today.exchange.loans("USDT", now - HOUR_MS, now)[-1]
        repay = today.exchange.repays("USDT", now - HOUR_MS, now)[-1]
    assert (borrowed["info"]["tranId"], loan.principal) == (loan.tx_id, Decimal(25))
    assert (repaid["info"]["tranId"], repay.amount) == (repay.tx_id, Decimal(10))
    assert borrowed["id"] == str(loan.tx_id) and repaid["currency"] == "USDT"


def test_ccxt_reads_candles(exchange: ccxt.binance, today: RunningSimulator) -> None:
    exchange.load_markets()
    candles = exchange.fetch_ohlcv("ETH/BTC", "1h", limit=5)
    opens = [c[0] for c in candles]
    assert len(candles) == 5 and all(len(c) == 6 for c in candles)
    assert opens == list(range(opens[0], opens[0] + 5 * HOUR_MS, HOUR_MS))
    assert opens[-1] <= now_ms(today) < opens[-1] + HOUR_MS


def now_ms(running: RunningSimulator) -> int:
    with running.exchange.lock:
        return running.exchange.now_ms()
