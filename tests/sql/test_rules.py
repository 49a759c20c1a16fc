"""Binance's rules on hand-made lakes: each legitimate situation reconciles with no break, and
each rule broken in the data is caught and diagnosed to one root cause."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from sql.runner import reconcile, root_causes
from tests.sql.conftest import BuiltLake, LakeFactory
from tests.sql.handmade import (
    BTC_RATE,
    USDT_RATE,
    History,
    Row,
    at,
    charge,
)
from tests.sql.test_reconciliation import find, only_cause

D = Decimal
Planter = Callable[[History], None]


def assert_clean(lake: BuiltLake) -> None:
    """No break and no provisional row, every interval matched or unverified."""
    assert lake.result.ok, [t.message for t in lake.result.failures]
    rows = reconcile(lake.data_dir, include_provisional=True)
    assert rows == [], [(b.kind, b.asset, b.interval_end, b.detail) for b in rows]
    assert root_causes(lake.data_dir, include_provisional=True) == []


def transfer_in(tx_id: int, asset: str, amount: str, when: datetime, **extra: object) -> Row:
    return {
        "txId": tx_id,
        "asset": asset,
        "amount": D(amount),
        "type": "ROLL_IN",
        "status": "CONFIRMED",
        "timestamp": when,
        "transFrom": "SPOT",
        "transTo": "CROSS_MARGIN",
        **extra,
    }


def flow(tran_id: int, asset: str, kind: str, amount: str, when: datetime) -> Row:
    return {"tranId": tran_id, "asset": asset, "type": kind, "amount": D(amount), "timestamp": when}


def unpaid_interest(history: History, asset: str, moment: datetime) -> Decimal:
    """What the history leaves unpaid of `asset`'s interest just before `moment` (the charges
    at `moment` first)."""
    charged = sum(
        (
            r["interest"]
            for r in history["interest"]
            if r["asset"] == asset
            and r["interestAccuredTime"] <= moment
            and not str(r["type"]).endswith("_CONVERTED")
            and not r.get("isolatedSymbol")
        ),
        D(0),
    )
    paid = sum(
        (
            r["interest"]
            for r in history["repays"]
            if r["asset"] == asset and r["timestamp"] < moment and not r.get("isolatedSymbol")
        ),
        D(0),
    )
    return charged - paid


def repay(history: History, tx_id: int, asset: str, amount: str, when: datetime, kind: str) -> Row:
    """A repay paying interest first (facts §6.3)."""
    total = D(amount)
    interest = min(total, unpaid_interest(history, asset, when))
    return {
        "txId": tx_id,
        "asset": asset,
        "amount": total,
        "interest": interest,
        "principal": total - interest,
        "type": kind,
        "status": "CONFIRMED",
        "timestamp": when,
    }


def repay_principal(
    history: History, tx_id: int, asset: str, principal: str, when: datetime
) -> Row:
    """A MANUAL repay of exactly `principal`, with all the interest unpaid then."""
    amount = unpaid_interest(history, asset, when) + D(principal)
    return repay(history, tx_id, asset, str(amount), when, "MANUAL")


def with_bnb(history: History) -> None:
    history["transfers"].append(transfer_in(5, "BNB", "1", at(0, 30)))


# -- interest paid in BNB --------------------------------------------------------------------
BNB_PAID = {10: "0.00000546", 11: "0.00000547", 12: "0.00000545"}


def bnb_interest(history: History) -> None:
    """Interest paid in BNB for three hours: the charges are USDT's (principal and rate), the
    amount is the BNB taken at once (its conversion only the capital flow records)."""
    with_bnb(history)
    for hour, bnb in BNB_PAID.items():
        row = find(history["interest"], asset="USDT", interestAccuredTime=at(hour))
        row.update(type="PERIODIC_CONVERTED", asset="BNB", rawAsset="USDT", interest=D(bnb))


def test_interest_paid_in_bnb_reconciles(handmade: LakeFactory) -> None:
    lake = handmade(truth_plant=bnb_interest)
    assert_clean(lake)
    # audited on USDT's principal and rate, in USDT; the BNB matched the capital flow's
    assert lake.query(
        "select count(*), sum(expected_interest) from interest_audit "
        "where is_converted and audit_status = 'ok'"
    ) == [(3, 3 * D("0.00333334"))]
    assert lake.query(
        "select count(*) from int_capital_flow_matches "
        "where flow_type = 'BNB_INTEREST_DEDUCTION' and match_status = 'matched'"
    ) == [(3,)]


def test_bnb_paid_other_than_the_capital_flow_says_is_one_cause(handmade: LakeFactory) -> None:
    def more_bnb(history: History) -> None:
        row = find(history["interest"], asset="BNB", interestAccuredTime=at(11))
        row["interest"] += D("0.00000001")

    lake = handmade(truth_plant=bnb_interest, plant=more_bnb)
    assert {(b.kind, b.asset) for b in reconcile(lake.data_dir)} == {
        ("capital_flow", "BNB"),
        ("balance", "BNB"),
    }
    kind, description = only_cause(lake)
    assert kind == "capital_flow"
    assert description.startswith("charge paid in BNB txId 111 differs")
    assert "capital flow BNB_INTEREST_DEDUCTION -0.00000547 BNB" in description


# -- auto-repays -----------------------------------------------------------------------------
def auto_repays(history: History) -> None:
    """After the last hourly charge: BTC repaid with BNB (the BNB it took only in the capital
    flow), USDT with points (no balance moves), then USDT by an order's proceeds (AUTO)."""
    with_bnb(history)
    history["repays"].append(repay(history, 30, "BTC", "0.00001", at(23, 30), "BNB_AUTO_REPAY"))
    history["flows"] = [flow(30, "BNB", "REPAY", "-0.0000012", at(23, 30))]
    history["repays"].append(repay(history, 31, "USDT", "1", at(23, 40), "POINT_AUTO_REPAY"))
    history["repays"].append(repay(history, 32, "USDT", "2", at(23, 50), "AUTO"))


def test_every_auto_repay_type_reconciles(handmade: LakeFactory) -> None:
    lake = handmade(truth_plant=auto_repays)
    assert_clean(lake)
    lines = lake.query(
        "select asset, entry_type, balance_effect, principal_effect from int_ledger "
        "where tx_id in (30, 31) order by asset, entry_type"
    )
    assert lines == [
        ("BNB", "REPAY_DEBIT", D("-0.0000012"), D(0)),
        ("BTC", "REPAY_INTEREST", D(0), D(0)),
        ("BTC", "REPAY_PRINCIPAL", D(0), D("-0.0000079")),
        ("USDT", "REPAY_INTEREST", D(0), D(0)),
        ("USDT", "REPAY_PRINCIPAL", D(0), D("-0.94333322")),
    ]
    assert lake.query("select status, count(*) from int_repay_checks group by 1") == [
        ("matched", 4)
    ]


def test_a_bnb_repay_without_its_bnb_is_one_cause(handmade: LakeFactory) -> None:
    def drop_debit(rows: list[Row]) -> None:
        rows[:] = [r for r in rows if not (r["tranId"] == 30 and r["asset"] == "BNB")]

    lake = handmade(truth_plant=auto_repays, plant_flows=drop_debit)
    assert {(b.kind, b.asset) for b in reconcile(lake.data_dir)} == {
        ("capital_flow", "BNB"),
        ("balance", "BNB"),
    }
    kind, description = only_cause(lake)
    assert kind == "capital_flow"
    assert description.startswith("BNB_AUTO_REPAY repay txId 30 of 0.00001 BTC at")
    assert "is in repays but not in the capital flow" in description


def test_a_repay_debiting_the_wrong_asset_is_one_cause(handmade: LakeFactory) -> None:
    # the BNB repay recorded as MANUAL: the ledger takes it from BTC, the exchange from BNB
    def as_manual(history: History) -> None:
        find(history["repays"], txId=30)["type"] = "MANUAL"

    lake = handmade(truth_plant=auto_repays, plant=as_manual)
    assert {(b.kind, b.asset) for b in reconcile(lake.data_dir)} == {
        ("capital_flow", "BNB"),
        ("balance", "BTC"),
    }
    kind, description = only_cause(lake)
    assert (kind, description.split(" [")[0]) == (
        "capital_flow",
        "MANUAL repay txId 30 of 0.00001 BTC differs from its capital-flow row",
    )


@pytest.mark.parametrize(
    ("tx_id", "when"), [(20, at(6, 30)), (31, at(23, 40))], ids=["old", "recent"]
)
def test_a_repay_paying_principal_before_interest_is_one_cause(
    handmade: LakeFactory, tx_id: int, when: datetime
) -> None:
    def principal_first(history: History) -> None:
        row = find(history["repays"], txId=tx_id)
        row.update(interest=row["interest"] - D("0.001"), principal=row["principal"] + D("0.001"))

    lake = handmade(truth_plant=auto_repays, plant=principal_first)
    kind, description = only_cause(lake)
    assert kind == "repay_split"
    assert description.startswith(f"repay txId {tx_id} of ")
    assert f"at {when:%Y-%m-%dT%H:%M}" in description


# -- force liquidation and its fee -----------------------------------------------------------
def liquidation_with_fee(history: History) -> None:
    """A force liquidation selling 0.002 BTC at 22:00, filled in myTrades, and its fee (only
    in the capital flow)."""
    history["liquidations"].append(
        {
            "orderId": 900,
            "symbol": "BTCUSDT",
            "side": "SELL",
            "price": D(40000),
            "qty": D("0.002"),
            "executedQty": D("0.002"),
            "avgPrice": D(40000),
            "timeInForce": "IOC",
            "isIsolated": False,
            "updatedTime": at(22),
        }
    )
    history["trades"].append(
        {
            "id": 1002,
            "symbol": "BTCUSDT",
            "orderId": 900,
            "price": D(40000),
            "qty": D("0.002"),
            "quoteQty": D(80),
            "commission": D("0.08"),
            "commissionAsset": "USDT",
            "isBuyer": False,
            "isMaker": False,
            "isBestMatch": True,
            "isIsolated": False,
            "time": at(22),
        }
    )
    history["flows"] = [flow(40, "USDT", "LIQUIDATION_FEE", "-1.6", at(22))]


def test_a_liquidation_with_its_fee_reconciles(handmade: LakeFactory) -> None:
    lake = handmade(truth_plant=liquidation_with_fee)
    assert_clean(lake)
    assert lake.query(
        "select entry_type, asset, balance_effect from int_ledger where ledger_at = ? "
        "and entry_type <> 'INTEREST' order by entry_type, asset",
        [at(22).replace(tzinfo=None)],
    ) == [
        ("COMMISSION", "USDT", D("-0.08")),
        ("LIQUIDATION_BASE", "BTC", D("-0.002")),
        ("LIQUIDATION_FEE", "USDT", D("-1.6")),
        ("LIQUIDATION_QUOTE", "USDT", D(80)),
    ]
    assert lake.query("select status from int_liquidation_checks") == [("matched",)]


def test_a_liquidation_without_its_fills_is_one_cause(handmade: LakeFactory) -> None:
    def drop_fill(history: History) -> None:
        history["trades"] = [r for r in history["trades"] if r["id"] != 1002]

    lake = handmade(truth_plant=liquidation_with_fee, plant=drop_fill)
    kinds = {(b.kind, b.asset) for b in reconcile(lake.data_dir)}
    assert ("liquidation_fills", "BTC") in kinds
    assert ("capital_flow", "USDT") in kinds
    kind, description = only_cause(lake)
    assert kind == "capital_flow"
    assert "is in the capital flow but not in trades" in description


def test_a_liquidation_whose_fills_do_not_add_up_is_one_cause(handmade: LakeFactory) -> None:
    def more_executed(history: History) -> None:
        find(history["liquidations"], orderId=900)["executedQty"] = D("0.003")

    lake = handmade(truth_plant=liquidation_with_fee, plant=more_executed)
    kind, description = only_cause(lake)
    assert kind == "liquidation_fills"
    assert description.endswith("executed 0.003; its fills in trades add up to 0.002 (1 fills)")


def test_a_fee_missing_from_the_capital_flow_is_one_cause(handmade: LakeFactory) -> None:
    def drop_fee(rows: list[Row]) -> None:
        rows[:] = [r for r in rows if r["type"] != "LIQUIDATION_FEE"]

    lake = handmade(truth_plant=liquidation_with_fee, plant_flows=drop_fee)
    kind, description = only_cause(lake)
    assert kind == "interval"
    assert "balance USDT -1.6" in description


# -- a time served in seconds ------------------------------------------------------------------
def transfer_4_at_871_ms(history: History) -> None:
    """What really happened: transfer 4 at 12:00:00.871 (the capital flow says so too)."""
    row = next(r for r in history["transfers"] if r["txId"] == 4)
    row["timestamp"] = at(12) + timedelta(milliseconds=871)


def served_at(seconds: int) -> Planter:
    """The transfers endpoint served transfer 4's time in seconds: 12:00:00 plus `seconds`."""

    def plant(history: History) -> None:
        row = next(r for r in history["transfers"] if r["txId"] == 4)
        row["timestamp"] = at(12) + timedelta(seconds=seconds)

    return plant


def test_a_transfer_time_served_in_seconds_matches_its_capital_flow(
    handmade: LakeFactory,
) -> None:
    assert_clean(handmade(truth_plant=transfer_4_at_871_ms, plant=served_at(0)))


def test_a_transfer_time_a_second_off_is_one_cause(handmade: LakeFactory) -> None:
    lake = handmade(truth_plant=transfer_4_at_871_ms, plant=served_at(1))
    kind, description = only_cause(lake)
    assert kind == "capital_flow"
    assert "transfer txId 4" in description and "12:00:01.000Z" in description


# -- isolated margin, delisting and dust -----------------------------------------------------
def isolated_activity(history: History) -> None:
    """100 USDT moved to the BTCUSDT isolated account, which borrows, pays interest and trades
    there: only the cross-margin move belongs to the cross account."""
    history["transfers"].append(
        {
            **transfer_in(6, "USDT", "100", at(9)),
            "type": "ROLL_OUT",
            "transFrom": "CROSS_MARGIN",
            "transTo": "ISOLATED_MARGIN",
        }
    )
    isolated = {"isolatedSymbol": "BTCUSDT"}
    history["transfers"].append(transfer_in(60, "USDT", "100", at(9), **isolated))
    history["loans"].append(
        {
            "txId": 61,
            "asset": "USDT",
            "principal": D(50),
            "amount": D(50),
            "interest": D(0),
            "type": "MANUAL",
            "status": "CONFIRMED",
            "timestamp": at(9, 10),
            **isolated,
        }
    )
    for hour in range(10, 24):
        history["interest"].append(
            {
                "txId": 600 + hour,
                "asset": "USDT",
                "principal": D(50),
                "interest": charge(D(50), USDT_RATE),
                "interestRate": USDT_RATE,
                "type": "PERIODIC",
                "interestAccuredTime": at(hour),
                **isolated,
            }
        )
    trade = copy.deepcopy(find(history["trades"], id=1000))
    trade.update(id=1003, orderId=503, isIsolated=True, time=at(9, 20), qty=D("0.001"))
    trade.update(quoteQty=D(40), commission=D("0.000001"))
    history["trades"].append(trade)


def conversions(history: History) -> None:
    """LUNA bought on a pair later delisted, then converted into USDT at the delisting
    (SMALL_CONVERT); a little XRP converted into BNB as dust (SMALL_BALANCE_CONVERT)."""
    history["transfers"].append(transfer_in(8, "LUNA", "10", at(0, 40)))
    history["transfers"].append(transfer_in(9, "XRP", "5", at(0, 50)))
    luna = copy.deepcopy(find(history["trades"], id=1000))
    luna.update(symbol="LUNAUSDT", id=7000, orderId=7000, price=D(80), qty=D(1), quoteQty=D(80))
    luna.update(commission=D("0.001"), commissionAsset="LUNA", time=at(1, 30))
    history["trades"].append(luna)
    history["flows"] = [
        flow(50, "LUNA", "SMALL_CONVERT", "-10.999", at(15)),
        flow(50, "USDT", "SMALL_CONVERT", "879.92", at(15)),
        flow(51, "XRP", "SMALL_BALANCE_CONVERT", "-5", at(16)),
        flow(51, "BNB", "SMALL_BALANCE_CONVERT", "0.0045", at(16)),
    ]


@pytest.mark.parametrize(
    "situation", [isolated_activity, conversions], ids=["isolated", "delisting and dust"]
)
def test_isolated_activity_and_conversions_reconcile(
    handmade: LakeFactory, situation: Planter
) -> None:
    assert_clean(handmade(truth_plant=situation))


def test_half_a_conversion_is_caught(handmade: LakeFactory) -> None:
    # the USDT leg is gone: the LUNA leg is explained by nothing, and USDT's balance breaks
    def drop_usdt_leg(rows: list[Row]) -> None:
        rows[:] = [r for r in rows if not (r["tranId"] == 50 and r["asset"] == "USDT")]

    lake = handmade(truth_plant=conversions, plant_flows=drop_usdt_leg)
    causes = {c.cause_kind: c.description for c in root_causes(lake.data_dir)}
    assert causes["capital_flow"].startswith(
        "small convert of -10.999 LUNA at 2024-01-01T15:00:00.000Z is in the capital flow but"
    )
    assert "balance USDT 879.92" in causes["interval"]


# -- interest charges: every hour, every loan, the published rate, the same instant ----------
@pytest.mark.parametrize("hour", [5, 20], ids=["old", "recent"])
def test_a_missing_hour_is_one_cause(handmade: LakeFactory, hour: int) -> None:
    def drop_hour(history: History) -> None:
        row = find(history["interest"], asset="USDT", interestAccuredTime=at(hour))
        history["interest"].remove(row)

    lake = handmade(plant=drop_hour)
    assert {(b.kind, b.interval_start) for b in reconcile(lake.data_dir)} >= {
        ("interest_missing_hour", at(hour).replace(tzinfo=None))
    }
    kind, description = only_cause(lake)
    assert kind == "interval"
    assert f"first hour: no interest charged on USDT at 2024-01-01T{hour:02d}:00" in description


def test_a_loan_without_its_on_borrow_charge_is_one_cause(handmade: LakeFactory) -> None:
    def drop_on_borrow(history: History) -> None:
        history["interest"] = [r for r in history["interest"] if r.get("txId") != 100]

    lake = handmade(plant=drop_on_borrow)
    kind, description = only_cause(lake)
    assert kind == "interest_missing_on_borrow"
    assert description == "loans of 500 USDT at 2024-01-01T03:30:00.000Z have no ON_BORROW charge"


@pytest.mark.parametrize("hour", [5, 20], ids=["old", "recent"])
def test_a_charge_at_another_rate_than_published_is_one_cause(
    handmade: LakeFactory, hour: int
) -> None:
    # the charge is right for the rate it states, but the rate is not the one published
    def other_rate(history: History) -> None:
        row = find(history["interest"], asset="USDT", interestAccuredTime=at(hour))
        row.update(interestRate=D("0.00021"), interest=charge(row["principal"], D("0.00021")))

    lake = handmade(plant=other_rate, plant_in_truth=True)
    kind, description = only_cause(lake)
    assert kind == "interest_rate"
    assert description.endswith("used the rate 0.00021; the published rate was 0.0002")


def loan_and_repay_on_the_hour(history: History) -> None:
    """A loan at exactly 10:00:00.000 and a repay at exactly 15:00:00.000: each hour's charge
    is computed before the loans and repays of that very instant (docs/simulator.md)."""
    history["loans"].append(
        {
            "txId": 13,
            "asset": "USDT",
            "principal": D(100),
            "amount": D(100),
            "interest": D(0),
            "type": "MANUAL",
            "status": "CONFIRMED",
            "timestamp": at(10),
        }
    )
    history["interest"].append(
        {
            "txId": 99,
            "asset": "USDT",
            "rawAsset": "USDT",
            "principal": D(100),
            "interest": charge(D(100), USDT_RATE),
            "interestRate": USDT_RATE,
            "type": "ON_BORROW",
            "interestAccuredTime": at(10),
        }
    )
    for row in history["interest"]:
        hour = row["interestAccuredTime"]
        if row["asset"] == "USDT" and row["type"] == "PERIODIC" and hour > at(10):
            principal = D(500) if hour <= at(15) else D(450)
            row.update(principal=principal, interest=charge(principal, USDT_RATE))
    history["repays"].append(repay_principal(history, 21, "USDT", "50", at(15)))


def test_a_loan_and_a_repay_on_the_hour_reconcile(handmade: LakeFactory) -> None:
    lake = handmade(truth_plant=loan_and_repay_on_the_hour)
    assert_clean(lake)
    assert lake.query(
        "select charge_kind, charged_principal, ledger_principal from int_interest_hours "
        "where borrowed_asset = 'USDT' and accrued_at in (?, ?) order by 2",
        [at(10).replace(tzinfo=None), at(15).replace(tzinfo=None)],
    ) == [("ON_BORROW", D(100), D(100)), ("PERIODIC", D(400), D(400)), ("PERIODIC", D(500), D(500))]


def test_an_hour_charged_on_the_loan_of_that_instant_is_one_cause(handmade: LakeFactory) -> None:
    def count_the_loan(history: History) -> None:
        row = find(history["interest"], asset="USDT", interestAccuredTime=at(10), type="PERIODIC")
        row.update(principal=D(500), interest=charge(D(500), USDT_RATE))

    lake = handmade(truth_plant=loan_and_repay_on_the_hour, plant=count_the_loan)
    kind, description = only_cause(lake)
    assert kind == "interval"
    assert (
        "first hour: PERIODIC charges of USDT at 2024-01-01T10:00:00.000Z on a principal of 500"
        in (description)
    )


# -- what the late window may excuse ---------------------------------------------------------
def test_the_late_window_excuses_only_what_late_rows_can_change(handmade: LakeFactory) -> None:
    # inside a 48-hour late window: a missing transfer may still arrive, a wrong charge or a
    # repay paying principal first will not be fixed by any row to come
    def errors(history: History) -> None:
        history["transfers"] = [r for r in history["transfers"] if r["txId"] != 4]
        row = find(history["interest"], asset="BTC", interestAccuredTime=at(20))
        row["interest"] += D("0.00000001")

    lake = handmade(plant=errors, late_window_hours=48)
    statuses = {(b.kind, b.status) for b in reconcile(lake.data_dir, include_provisional=True)}
    assert ("interest_charge", "break") in statuses
    assert ("capital_flow", "provisional") in statuses
    assert ("balance", "provisional") in statuses
    assert {c.cause_kind for c in root_causes(lake.data_dir)} == {"interest_charge"}


def test_btc_rate_history_is_read(base_lake: BuiltLake) -> None:
    assert base_lake.query(
        "select count(*), min(daily_rate), max(daily_rate) from stg_interest_rates "
        "where account = 'acct1' and asset = 'BTC'"
    ) == [(48, BTC_RATE, BTC_RATE)]
