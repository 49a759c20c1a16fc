"""Reconciliation of the hand-made lake: clean, then with each kind of error planted."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sql.runner import Break, reconcile
from tests.sql.conftest import BuiltLake, LakeFactory
from tests.sql.handmade import (
    ACCOUNT,
    R3_FETCHED,
    S2,
    S3,
    Fetch,
    History,
    Row,
    at,
    base_history,
    snapshot_rows,
    write_fetch,
)

D = Decimal
NAIVE_S2 = S2.replace(tzinfo=None)
NAIVE_S3 = S3.replace(tzinfo=None)
RECON_KINDS = ("principal", "interest", "balance")


def recon_breaks(breaks: list[Break]) -> set[tuple[str, str, object, Decimal]]:
    return {
        (b.kind, b.asset, b.interval_end, b.difference) for b in breaks if b.kind in RECON_KINDS
    }


def find(rows: list[Row], **match: object) -> Row:
    return next(r for r in rows if all(r.get(k) == v for k, v in match.items()))


def test_hand_numbers_of_the_second_snapshot() -> None:
    # the snapshot model of the test itself, checked against figures worked out by hand
    rows = {r["asset"]: r for r in snapshot_rows(base_history(), S2, "live", {"BTC": D("0.001")})}
    assert rows["USDT"]["free"] == D("1154.77833332")
    assert rows["USDT"]["borrowed"] == D(400)
    assert rows["USDT"]["interest"] == D("0.00666668")
    assert rows["BTC"]["free"] == D("0.12399")
    assert rows["BTC"]["interest"] == D("0.0000006")


def test_clean_lake_reconciles_with_no_breaks(base_lake: BuiltLake) -> None:
    assert base_lake.result.ok, [t.message for t in base_lake.result.failures]
    assert reconcile(base_lake.data_dir, include_provisional=True) == []
    statuses = base_lake.query(
        "select distinct status from recon_principal union select distinct status "
        "from recon_interest union select distinct status from recon_balances"
    )
    assert statuses == [("matched",)]


def test_every_interval_is_reconciled(base_lake: BuiltLake) -> None:
    rows = base_lake.query(
        "select account, asset, interval_kind, interval_start, interval_end from recon_balances "
        "order by account, asset, interval_end, end_source"
    )
    btc = [r[2:] for r in rows if r[:2] == (ACCOUNT, "BTC")]
    assert btc == [
        ("opening", None, at(2).replace(tzinfo=None)),
        ("snapshots", at(2).replace(tzinfo=None), NAIVE_S2),
        ("snapshots", NAIVE_S2, NAIVE_S3),
    ]
    assert ("acct2", "USDT", "opening", None, at(1).replace(tzinfo=None)) in rows


def test_terms_are_shown_per_interval(base_lake: BuiltLake) -> None:
    (row,) = base_lake.query(
        "select transfers_in, transfers_out, borrowed, repaid_principal, repaid_interest, "
        "trades, commissions, expected_change, actual_change from recon_balances "
        "where account = ? and asset = 'USDT' and interval_end = ?",
        [ACCOUNT, NAIVE_S2],
    )
    assert row == (
        D(0),
        D(-50),
        D(500),
        D(-100),
        D("-0.01666668"),
        D(-400) + D(205),
        D("-0.205"),
        D("154.77833332"),
        D("154.77833332"),
    )


def test_dropped_loan_breaks_principal_and_balance(handmade: LakeFactory) -> None:
    def drop_loan(history: History) -> None:
        history["loans"] = [r for r in history["loans"] if r["txId"] != 12]

    lake = handmade(plant=drop_loan)
    breaks = reconcile(lake.data_dir)
    assert recon_breaks(breaks) == {
        ("principal", "BTC", NAIVE_S2, D("0.01")),
        ("balance", "BTC", NAIVE_S2, D("0.01")),
    }
    # the audit sees the BTC charges computed on twice the ledger's principal
    assert {(b.kind, b.asset) for b in breaks if b.kind not in RECON_KINDS} == {
        ("interest_principal", "BTC")
    }


def test_altered_repay_split_breaks_principal_and_interest(handmade: LakeFactory) -> None:
    def alter_split(history: History) -> None:
        repay = find(history["repays"], txId=20)
        repay.update(interest=D("0.01666667"), principal=D("100.00000001"))

    breaks = reconcile(handmade(plant=alter_split).data_dir)
    assert recon_breaks(breaks) == {
        ("principal", "USDT", NAIVE_S2, D("0.00000001")),
        ("interest", "USDT", NAIVE_S2, D("-0.00000001")),
    }


def test_duplicated_interest_row_breaks_interest(handmade: LakeFactory) -> None:
    # one BTC charge written again into r3's fetch of the BTC partition: a third copy in one
    # fetch, which (unlike a re-read by another run) counts
    def duplicate(data_dir: Path) -> None:
        row = find(base_history()["interest"], asset="BTC", interestAccuredTime=at(5))
        write_fetch(data_dir, Fetch("interest", [row], "r3", R3_FETCHED))

    breaks = reconcile(handmade(after=duplicate).data_dir)
    assert recon_breaks(breaks) == {("interest", "BTC", NAIVE_S2, D("-0.00000005"))}


def test_changed_commission_breaks_balance(handmade: LakeFactory) -> None:
    def change_commission(history: History) -> None:
        find(history["trades"], id=1001)["commission"] = D("0.2")

    breaks = reconcile(handmade(plant=change_commission).data_dir)
    assert recon_breaks(breaks) == {("balance", "USDT", NAIVE_S2, D("-0.005"))}


def test_flipped_transfer_breaks_balance(handmade: LakeFactory) -> None:
    def flip(history: History) -> None:
        find(history["transfers"], txId=3)["type"] = "ROLL_IN"

    breaks = reconcile(handmade(plant=flip).data_dir)
    assert recon_breaks(breaks) == {("balance", "USDT", NAIVE_S2, D(-100))}
    (only,) = breaks
    assert "transfers_in=50" in only.terms


def test_snapshot_off_by_one_unit_breaks_both_intervals(handmade: LakeFactory) -> None:
    def nudge(rows: list[Row]) -> None:
        for row in rows:
            if row["asset"] == "BTC" and row["snapshotTime"] == S2:
                row["free"] += D("0.00000001")
                row["netAsset"] += D("0.00000001")

    breaks = reconcile(handmade(plant_snapshots=nudge).data_dir)
    assert recon_breaks(breaks) == {
        ("balance", "BTC", NAIVE_S2, D("0.00000001")),
        ("balance", "BTC", NAIVE_S3, D("-0.00000001")),
    }


def test_rows_inside_the_late_window_are_provisional(handmade: LakeFactory) -> None:
    # the 12:00 transfer has not reached the lake yet
    def late(history: History) -> None:
        history["transfers"] = [r for r in history["transfers"] if r["txId"] != 4]

    lake = handmade(plant=late, late_window_hours=48)
    assert reconcile(lake.data_dir) == []
    (provisional,) = reconcile(lake.data_dir, include_provisional=True)
    assert (provisional.kind, provisional.asset, provisional.status) == (
        "balance",
        "USDT",
        "provisional",
    )
    assert provisional.interval_end == NAIVE_S3


def test_the_same_gap_outside_the_late_window_is_a_break(handmade: LakeFactory) -> None:
    def late(history: History) -> None:
        history["transfers"] = [r for r in history["transfers"] if r["txId"] != 4]

    breaks = reconcile(handmade(plant=late).data_dir)
    assert recon_breaks(breaks) == {("balance", "USDT", NAIVE_S3, D(5))}
    assert {b.status for b in breaks} == {"break"}


def test_pending_rows_make_an_interval_provisional(handmade: LakeFactory) -> None:
    def still_pending(history: History) -> None:
        find(history["repays"], txId=20)["status"] = "PENDING"

    lake = handmade(r3_history=still_pending)
    assert reconcile(lake.data_dir) == []
    provisional = reconcile(lake.data_dir, include_provisional=True)
    assert {(b.kind, b.asset, b.status, b.pending_rows) for b in provisional} == {
        ("principal", "USDT", "provisional", 1),
        ("interest", "USDT", "provisional", 1),
        ("balance", "USDT", "provisional", 2),
    }


def test_interest_audit_flags_a_charge_off_by_one_unit(handmade: LakeFactory) -> None:
    # the exchange charged one unit too much and its snapshot agrees: only the audit sees it
    def overcharge(history: History) -> None:
        row = find(history["interest"], asset="USDT", interestAccuredTime=at(7))
        row["interest"] += D("0.00000001")

    lake = handmade(plant=overcharge, plant_in_truth=True)
    (flagged,) = reconcile(lake.data_dir)
    assert (flagged.kind, flagged.asset, flagged.interval_end) == (
        "interest_charge",
        "USDT",
        at(7).replace(tzinfo=None),
    )
    assert (flagged.expected, flagged.actual, flagged.difference) == (
        D("0.00333334"),
        D("0.00333335"),
        D("0.00000001"),
    )
    statuses = lake.query("select audit_status, count(*) from interest_audit group by all")
    assert dict(statuses) == {"ok": 62, "charge_mismatch": 1}
