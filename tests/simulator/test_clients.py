"""Third-party clients, unchanged, against the simulator over loopback: Binance's own SDK
(`binance-sdk-margin-trading`, today's endpoints) and python-binance (the seed generation's),
on one simulator serving both generations."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from binance.client import Client
from binance_common.configuration import ConfigurationRestAPI
from binance_sdk_margin_trading.margin_trading import MarginTrading
from binance_sdk_margin_trading.rest_api.models.enums import (
    MarginAccountBorrowRepayIsIsolatedEnum,
    MarginAccountBorrowRepayTypeEnum,
    MarginAccountNewOrderNewOrderRespTypeEnum,
    MarginAccountNewOrderSideEnum,
    MarginAccountNewOrderTypeEnum,
    QueryBorrowRepayRecordsInMarginAccountTypeEnum,
)

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
