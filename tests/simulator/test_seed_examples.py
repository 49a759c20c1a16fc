"""The seed document's response examples, matched field for field by the simulator's answers:
the same keys (plus the fields the API has added since, listed per endpoint) and the same
JSON types (strings for decimals, numbers for ids and times, booleans)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from simulator.params import DAY_MS, HOUR_MS
from simulator.server import RunningSimulator
from tests.fixtures_sim import SignedClient, SimFactory

# The seed's examples, typos fixed (a lost quote, a missing `]`, Python `True`, a stray comma).
SEED = json.loads(
    """
{
  "transfer_post": {"tranId": 100000001},
  "loan_post": {"tranId": 100000001},
  "repay_post": {"tranId": 100000001},
  "asset": {"assetFullName": "Binance Coin", "assetName": "BNB", "isBorrowable": false,
            "isMortgageable": true, "userMinBorrow": "0.00000000", "userMinRepay": "0.00000000"},
  "pair": {"id": 323355778339572400, "symbol": "BTCUSDT", "base": "BTC", "quote": "USDT",
           "isMarginTrade": true, "isBuyAllowed": true, "isSellAllowed": true},
  "allAssets": [{"assetFullName": "USD coin", "assetName": "USDC", "isBorrowable": true,
                 "isMortgageable": true, "userMinBorrow": "0.00000000",
                 "userMinRepay": "0.00000000"}],
  "allPairs": [{"base": "BNB", "id": 351637150141315861, "isBuyAllowed": true,
                "isMarginTrade": true, "isSellAllowed": true, "quote": "BTC",
                "symbol": "BNBBTC"}],
  "priceIndex": {"calcTime": 1562046418000, "price": "0.00333930", "symbol": "BNBBTC"},
  "order_ack": {"symbol": "BTCUSDT", "orderId": 28, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
                "transactTime": 1507725176595},
  "order_result": {"symbol": "BTCUSDT", "orderId": 28, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
                   "transactTime": 1507725176595, "price": "1.00000000",
                   "origQty": "10.00000000", "executedQty": "10.00000000",
                   "cummulativeQuoteQty": "10.00000000", "status": "FILLED",
                   "timeInForce": "GTC", "type": "MARKET", "side": "SELL"},
  "order_full": {"symbol": "BTCUSDT", "orderId": 28, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
                 "transactTime": 1507725176595, "price": "1.00000000", "origQty": "10.00000000",
                 "executedQty": "10.00000000", "cummulativeQuoteQty": "10.00000000",
                 "status": "FILLED", "timeInForce": "GTC", "type": "MARKET", "side": "SELL",
                 "fills": [{"price": "4000.00000000", "qty": "1.00000000",
                            "commission": "4.00000000", "commissionAsset": "USDT"}]},
  "order_cancel": {"symbol": "LTCBTC", "orderId": 28, "origClientOrderId": "myOrder1",
                   "clientOrderId": "cancelMyOrder1", "transactTime": 1507725176595,
                   "price": "1.00000000", "origQty": "10.00000000",
                   "executedQty": "8.00000000", "cummulativeQuoteQty": "8.00000000",
                   "status": "CANCELED", "timeInForce": "GTC", "type": "LIMIT", "side": "SELL"},
  "transfer": {"rows": [{"amount": "0.10000000", "asset": "BNB", "status": "CONFIRMED",
                         "timestamp": 1566898617, "txId": 5240372201, "type": "ROLL_IN"}],
               "total": 3},
  "loan": {"rows": [{"asset": "BNB", "principal": "0.84624403", "timestamp": 1555056425000,
                     "status": "CONFIRMED"}], "total": 1},
  "repay": {"rows": [{"amount": "14.00000000", "asset": "BNB", "interest": "0.01866667",
                      "principal": "13.98133333", "status": "CONFIRMED",
                      "timestamp": 1563438204000, "txId": 2970933056}], "total": 1},
  "interestHistory": {"rows": [{"asset": "BNB", "interest": "0.02414667",
                                "interestAccuredTime": 1566813600,
                                "interestRate": "0.01600000", "principal": "36.22000000",
                                "type": "ON_BORROW"}], "total": 5},
  "forceLiquidationRec": {"rows": [{"avgPrice": "0.00388359", "executedQty": "31.39000000",
                                    "orderId": 180015097, "price": "0.00388110",
                                    "qty": "31.39000000", "side": "SELL", "symbol": "BNBBTC",
                                    "timeInForce": "GTC", "updatedTime": 1558941374745}],
                          "total": 1},
  "account": {"borrowEnabled": true, "marginLevel": "11.64405625",
              "totalAssetOfBtc": "6.82728457", "totalLiabilityOfBtc": "0.58633215",
              "totalNetAssetOfBtc": "6.24095242", "tradeEnabled": true, "transferEnabled": true,
              "userAssets": [{"asset": "BTC", "borrowed": "0.00000000", "free": "0.00499500",
                              "interest": "0.00000000", "locked": "0.00000000",
                              "netAsset": "0.00499500"}]},
  "order": {"clientOrderId": "ZwfQzuDIGpceVhKW5DvCmO", "cummulativeQuoteQty": "0.00000000",
            "executedQty": "0.00000000", "icebergQty": "0.00000000", "isWorking": true,
            "orderId": 213205622, "origQty": "0.30000000", "price": "0.00493630",
            "side": "SELL", "status": "NEW", "stopPrice": "0.00000000", "symbol": "BNBBTC",
            "time": 1562133008725, "timeInForce": "GTC", "type": "LIMIT",
            "updateTime": 1562133008725},
  "myTrades": [{"commission": "0.00006000", "commissionAsset": "BTC", "id": 34,
                "isBestMatch": true, "isBuyer": false, "isMaker": false, "orderId": 39324,
                "price": "0.02000000", "qty": "3.00000000", "symbol": "BNBBTC",
                "time": 1561973357171}],
  "maxBorrowable": {"amount": "1.69248805"},
  "maxTransferable": {"amount": "3.59498107"},
  "stream_open": {"listenKey": "T3ee22BIYuWqmvne0HNq2A2WsFlEtLhvWCtItw6ffhhdmjifQ2tRbuKkTHhr"},
  "stream_keep": {},
  "stream_close": {}
}
"""
)

ORDER_ADDED = {"isIsolated", "selfTradePreventionMode"}
ISOLATED_PAIR = {"fromSymbol", "toSymbol"}
# Fields the live API has added since the seed was written (facts §5), per example.
ADDED: dict[str, set[str]] = {
    "transfer": {"transFrom", "transTo"},
    "loan": {"txId"},
    "interestHistory": {"txId", "rawAsset"},
    "forceLiquidationRec": {"isIsolated"},
    "account": {
        "created",
        "collateralMarginLevel",
        "TotalCollateralValueInUSDT",
        "totalOpenOrderLossInUSDT",
        "transferInEnabled",
        "transferOutEnabled",
        "accountType",
    },
    "order": ORDER_ADDED,
    "openOrders": ORDER_ADDED,
    "allOrders": ORDER_ADDED,
    "myTrades": {"isIsolated"},
    "maxBorrowable": {"borrowLimit"},
    "order_ack": {"isIsolated"},
    "order_result": ORDER_ADDED,
    "order_full": ORDER_ADDED,
    "order_cancel": {"isIsolated"},
}


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return type(value).__name__


def assert_same_shape(example: Any, served: Any, added: set[str], where: str) -> None:
    """Same keys (the example's plus exactly `added`) and the same JSON type per key."""
    assert json_type(served) == json_type(example), where
    if isinstance(example, list):
        assert served, f"{where}: the simulator answered an empty list"
        for item in served:
            assert_same_shape(example[0], item, added, f"{where}[]")
    elif isinstance(example, dict) and "rows" in example:  # the paged envelope
        assert set(served) == {"rows", "total"} and isinstance(served["total"], int), where
        assert_same_shape(example["rows"], served["rows"], added, f"{where}.rows")
    elif isinstance(example, dict):
        assert set(served) == set(example) | added, where
        for key, value in example.items():
            if isinstance(value, list | dict):
                assert_same_shape(value, served[key], set(), f"{where}.{key}")
            else:
                assert json_type(served[key]) == json_type(value), f"{where}.{key}"


@pytest.fixture(scope="module")
def served(sim_factory: SimFactory) -> Iterator[dict[str, Any]]:
    """One answer per seed example, from a private simulator (the writes change its ledger)
    speaking the seed's generation."""
    running: RunningSimulator = sim_factory(scenario="default", seed=1, api_generation="seed")
    client = SignedClient(running.url)
    m = "/sapi/v1/margin"
    answers: dict[str, Any] = {}
    answers["transfer_post"] = client.ok(
        "POST", f"{m}/transfer", asset="USDT", amount="5", type="1"
    )
    answers["loan_post"] = client.ok("POST", f"{m}/loan", asset="USDT", amount="10")
    answers["repay_post"] = client.ok("POST", f"{m}/repay", asset="USDT", amount="1")
    answers["asset"] = client.ok("GET", f"{m}/asset", asset="BNB")
    answers["pair"] = client.ok("GET", f"{m}/pair", symbol="BTCUSDT")
    answers["allAssets"] = client.ok("GET", f"{m}/allAssets")
    answers["allPairs"] = client.ok("GET", f"{m}/allPairs")
    answers["priceIndex"] = client.ok("GET", f"{m}/priceIndex", symbol="BNBBTC")
    resting = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.001",
        "price": "1000",
        "timeInForce": "GTC",
    }
    answers["order_ack"] = client.ok("POST", f"{m}/order", newOrderRespType="ACK", **resting)
    answers["order_result"] = client.ok("POST", f"{m}/order", newOrderRespType="RESULT", **resting)
    answers["order_full"] = client.ok(
        "POST", f"{m}/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001"
    )
    order_id = answers["order_ack"]["orderId"]
    answers["order"] = client.ok("GET", f"{m}/order", symbol="BTCUSDT", orderId=order_id)
    answers["openOrders"] = client.ok("GET", f"{m}/openOrders", symbol="BTCUSDT")
    answers["allOrders"] = client.ok("GET", f"{m}/allOrders", symbol="BTCUSDT")
    answers["myTrades"] = client.ok("GET", f"{m}/myTrades", symbol="BTCUSDT")
    answers["order_cancel"] = client.ok(
        "DELETE", f"{m}/order", symbol="BTCUSDT", orderId=answers["order_result"]["orderId"]
    )
    answers["transfer"] = client.ok("GET", f"{m}/transfer")
    answers["loan"] = client.ok("GET", f"{m}/loan", asset="USDT")
    answers["repay"] = client.ok("GET", f"{m}/repay", asset="USDT")
    answers["interestHistory"] = client.ok("GET", f"{m}/interestHistory")
    with running.exchange.lock:
        liquidated = running.exchange.liquidations(
            running.exchange.opened_ms, running.exchange.now_ms()
        )[0].time_ms
    answers["forceLiquidationRec"] = client.ok(
        "GET",
        f"{m}/forceLiquidationRec",
        startTime=liquidated - DAY_MS,
        endTime=liquidated + HOUR_MS,
    )
    answers["account"] = client.ok("GET", f"{m}/account")
    answers["maxBorrowable"] = client.ok("GET", f"{m}/maxBorrowable", asset="USDT")
    answers["maxTransferable"] = client.ok("GET", f"{m}/maxTransferable", asset="USDT")
    answers["stream_open"] = client.ok("POST", "/sapi/v1/userDataStream")
    key = answers["stream_open"]["listenKey"]
    answers["stream_keep"] = client.ok("PUT", "/sapi/v1/userDataStream", listenKey=key)
    answers["stream_close"] = client.ok("DELETE", "/sapi/v1/userDataStream", listenKey=key)
    yield answers
    client.close()


@pytest.mark.parametrize("name", sorted(SEED))
def test_seed_example_shape(served: dict[str, Any], name: str) -> None:
    example = SEED[name]
    if name in ("openOrders", "allOrders"):
        example = [SEED["order"]]
    answer = served[name]
    if name == "transfer":  # today's rows to or from an isolated pair name it; others do not
        rows = [{k: v for k, v in r.items() if k not in ISOLATED_PAIR} for r in answer["rows"]]
        answer = {**answer, "rows": rows}
    assert_same_shape(example, answer, ADDED.get(name, set()), name)


@pytest.mark.parametrize("name", ["openOrders", "allOrders"])
def test_order_lists_have_the_order_shape(served: dict[str, Any], name: str) -> None:
    assert_same_shape([SEED["order"]], served[name], ADDED[name], name)


def test_answers_make_sense(served: dict[str, Any]) -> None:
    assert served["order_ack"]["orderId"] == served["order"]["orderId"]
    assert served["order"]["status"] == "NEW"
    assert served["order_cancel"]["status"] == "CANCELED"
    assert served["order_full"]["status"] == "FILLED" and served["order_full"]["fills"]
    assert served["loan"]["rows"][0]["txId"] == served["loan_post"]["tranId"]
    repay = served["repay"]["rows"][0]
    assert repay["txId"] == served["repay_post"]["tranId"]
    assert Decimal(repay["amount"]) == Decimal(repay["interest"]) + Decimal(repay["principal"])
    assert served["transfer"]["rows"][0]["txId"] == served["transfer_post"]["tranId"]
    for user_asset in served["account"]["userAssets"]:
        net = (
            Decimal(user_asset["free"])
            + Decimal(user_asset["locked"])
            - Decimal(user_asset["borrowed"])
            - Decimal(user_asset["interest"])
        )
        assert Decimal(user_asset["netAsset"]) == net
    assert len(served["stream_open"]["listenKey"]) == 60
    assert {p["symbol"] for p in served["allPairs"]} >= {"BTCUSDT", "BNBBTC"}
