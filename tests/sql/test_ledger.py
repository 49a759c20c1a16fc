"""The ledger's rarer lines: liquidations, interest paid in BNB, isolated and FAILED rows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sql.runner import build
from tests.sql.conftest import BuiltLake
from tests.sql.handmade import Fetch, Row, at, write_fetch

D = Decimal


def transfer(tx_id: int, asset: str, amount: str, **extra: Any) -> Row:
    row: Row = {
        "txId": tx_id,
        "asset": asset,
        "amount": D(amount),
        "type": "ROLL_IN",
        "status": "CONFIRMED",
        "timestamp": at(0),
    }
    return {**row, **extra}


def trade(trade_id: int, symbol: str, order_id: int, qty: str, fee: str, fee_asset: str) -> Row:
    return {
        "id": trade_id,
        "symbol": symbol,
        "orderId": order_id,
        "price": D(40000),
        "qty": D(qty),
        "commission": D(fee),
        "commissionAsset": fee_asset,
        "isBuyer": False,
        "isMaker": False,
        "time": at(2),
    }


def liquidation(order_id: int, side: str, qty: str, price: str) -> Row:
    return {
        "orderId": order_id,
        "symbol": "BTCUSDT",
        "side": side,
        "price": D(price),
        "qty": D(qty),
        "executedQty": D(qty),
        "avgPrice": D(price),
        "timeInForce": "IOC",
        "isIsolated": False,
        "updatedTime": at(2),
    }


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> BuiltLake:
    data_dir: Path = tmp_path_factory.mktemp("ledger")
    fetched = at(5)
    converted = {
        "txId": 77,
        "asset": "BNB",
        "rawAsset": "USDT",
        "principal": D(100),
        "interest": D("0.0001"),
        "interestRate": D("0.0002"),
        "type": "PERIODIC_CONVERTED",
        "interestAccuredTime": at(1),
    }
    fetches = (
        Fetch(
            "transfers",
            [
                transfer(1, "USDT", "100"),
                transfer(2, "BNB", "1"),
                transfer(3, "USDT", "7", status="FAILED"),
                transfer(4, "USDT", "9", isolatedSymbol="BTCUSDT"),
            ],
            "r1",
            fetched,
        ),
        # liquidation 900 filled through myTrades (quoteQty not sent: price x qty);
        # liquidation 901 has no trades exported
        Fetch("trades", [trade(2000, "BTCUSDT", 900, "0.001", "0.04", "USDT")], "r1", fetched),
        Fetch("trades", [trade(2001, "ETHBTC", 5, "0.5", "0", "BTC")], "r1", fetched),
        Fetch(
            "liquidations",
            [liquidation(900, "SELL", "0.001", "40000"), liquidation(901, "BUY", "0.002", "39000")],
            "r1",
            fetched,
        ),
        Fetch("interest", [converted], "r1", fetched),
    )
    for fetch in fetches:
        write_fetch(data_dir, fetch)
    return BuiltLake(data_dir, build(data_dir))


def test_liquidations_interest_in_bnb_and_skipped_rows(lake: BuiltLake) -> None:
    lines = lake.query(
        "select entry_type, asset, balance_effect, interest_effect, source_stream from int_ledger "
        "where symbol is distinct from 'ETHBTC' order by entry_type, asset, entry_key"
    )
    assert lines == [
        ("COMMISSION", "USDT", D("-0.04"), D(0), "trades"),
        ("INTEREST_CONVERTED", "BNB", D("-0.0001"), D(0), "interest"),
        ("LIQUIDATION_BASE", "BTC", D("0.002"), D(0), "liquidations"),
        ("LIQUIDATION_BASE", "BTC", D("-0.001"), D(0), "trades"),
        ("LIQUIDATION_QUOTE", "USDT", D(-78), D(0), "liquidations"),
        ("LIQUIDATION_QUOTE", "USDT", D(40), D(0), "trades"),
        ("TRANSFER_IN", "BNB", D(1), D(0), "transfers"),
        ("TRANSFER_IN", "USDT", D(100), D(0), "transfers"),
    ]


def test_symbols_split_into_base_and_quote(lake: BuiltLake) -> None:
    assert lake.query("select symbol, base_asset, quote_asset from int_symbols order by 1") == [
        ("BTCUSDT", "BTC", "USDT"),
        ("ETHBTC", "ETH", "BTC"),
    ]
    assert lake.query(
        "select entry_type, asset, balance_effect from int_ledger where symbol = 'ETHBTC' "
        "order by entry_type"
    ) == [("TRADE_BASE", "ETH", D("-0.5")), ("TRADE_QUOTE", "BTC", D(20000))]


def test_ledger_data_tests_pass(lake: BuiltLake) -> None:
    assert lake.result.ok, [t.message for t in lake.result.failures]
