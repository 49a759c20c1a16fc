"""Reconciliation of the hand-made lake: clean, then with each kind of error planted, each
caught and diagnosed to one root cause."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sql.runner import Break, reconcile, root_causes
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
    transfer_row,
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


def only_cause(lake: BuiltLake, include_provisional: bool = False) -> tuple[str, str]:
    """The one root cause of the lake's breaks, as (cause_kind, description); every break row
    is linked to it."""
    causes = root_causes(lake.data_dir, include_provisional)
    assert len(causes) == 1, [(c.cause_kind, c.description) for c in causes]
    (cause,) = causes
    rows = reconcile(lake.data_dir, include_provisional)
    assert {b.cause_id for b in rows} == {cause.cause_id}
    assert cause.symptoms == len(rows)
    return cause.cause_kind, cause.description


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
    assert root_causes(base_lake.data_dir, include_provisional=True) == []
    statuses = base_lake.query(
        "select distinct status from recon_principal union select distinct status "
        "from recon_interest union select distinct status from recon_balances"
    )
    assert statuses == [("matched",)]
    # every capital-flow row matched one typed row, every charge, hour and repay checked
    assert base_lake.query("select distinct match_status from int_capital_flow_matches") == [
        ("matched",)
    ]
    assert base_lake.query("select distinct audit_status from interest_audit") == [("ok",)]
    assert base_lake.query("select status, count(*) from int_interest_hours group by 1") == [
        ("matched", 48 * 2 + 2)
    ]
    assert base_lake.query("select status, count(*) from int_repay_checks group by 1") == [
        ("matched", 1)
    ]


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


def test_a_dropped_loan_is_one_cause_not_a_page_of_breaks(handmade: LakeFactory) -> None:
    def drop_loan(history: History) -> None:
        history["loans"] = [r for r in history["loans"] if r["txId"] != 12]

    lake = handmade(plant=drop_loan)
    breaks = reconcile(lake.data_dir)
    assert recon_breaks(breaks) == {
        ("principal", "BTC", NAIVE_S2, D("0.01")),
        ("balance", "BTC", NAIVE_S2, D("0.01")),
    }
    # the hours from the loan to the next snapshot are charged on twice the ledger's principal,
    # and its first hour has no loan
    kinds = [b.kind for b in breaks]
    assert kinds.count("interest_principal") == 5 + 1
    assert kinds.count("capital_flow") == 1
    kind, description = only_cause(lake)
    assert kind == "capital_flow"
    assert description.startswith(
        "borrow of 0.01 BTC at 2024-01-01T03:45:00.000Z is in the capital flow but not in loans"
    )


def test_a_loan_lost_from_the_capital_flow_too_is_still_one_cause(handmade: LakeFactory) -> None:
    def drop_loan(history: History) -> None:
        history["loans"] = [r for r in history["loans"] if r["txId"] != 12]

    def drop_flow(rows: list[Row]) -> None:
        rows[:] = [r for r in rows if r["tranId"] != 12]

    lake = handmade(plant=drop_loan, plant_flows=drop_flow)
    kind, description = only_cause(lake)
    # its ON_BORROW charge still says a loan was made then
    assert kind == "interest_principal"
    assert description.startswith("ON_BORROW charges of BTC at 2024-01-01T03:45:00.000Z")


def test_altered_repay_split_breaks_the_interest_first_rule(handmade: LakeFactory) -> None:
    def alter_split(history: History) -> None:
        repay = find(history["repays"], txId=20)
        repay.update(interest=D("0.01666667"), principal=D("100.00000001"))

    lake = handmade(plant=alter_split)
    assert recon_breaks(reconcile(lake.data_dir)) == {
        ("principal", "USDT", NAIVE_S2, D("0.00000001")),
        ("interest", "USDT", NAIVE_S2, D("-0.00000001")),
    }
    kind, description = only_cause(lake)
    assert kind == "repay_split"
    assert "paid 0.01666667 of interest; interest first would pay 0.01666668" in description


def test_duplicated_interest_row_breaks_interest(handmade: LakeFactory) -> None:
    # one BTC charge written again into r3's fetch of the BTC partition: a third copy in one
    # fetch, which (unlike a re-read by another run) counts
    def duplicate(data_dir: Path) -> None:
        row = find(base_history()["interest"], asset="BTC", interestAccuredTime=at(5))
        write_fetch(data_dir, Fetch("interest", [row], "r3", R3_FETCHED))

    lake = handmade(after=duplicate)
    breaks = reconcile(lake.data_dir)
    assert recon_breaks(breaks) == {("interest", "BTC", NAIVE_S2, D("-0.00000005"))}
    assert {(b.kind, b.interval_end) for b in breaks if b.kind not in RECON_KINDS} == {
        ("interest_principal", at(5).replace(tzinfo=None))
    }
    kind, description = only_cause(lake)
    assert kind == "interval"
    assert "interest BTC -0.00000005" in description
    assert "first hour: PERIODIC charges of BTC at 2024-01-01T05:00:00.000Z" in description


def test_changed_commission_breaks_balance(handmade: LakeFactory) -> None:
    def change_commission(history: History) -> None:
        find(history["trades"], id=1001)["commission"] = D("0.2")

    lake = handmade(plant=change_commission)
    assert recon_breaks(reconcile(lake.data_dir)) == {("balance", "USDT", NAIVE_S2, D("-0.005"))}
    kind, description = only_cause(lake)
    assert (kind, description.split(" [")[0]) == (
        "capital_flow",
        "fill BTCUSDT id 1001 commission leg differs from its capital-flow row",
    )
    assert "capital flow TRADING_COMMISSION -0.205 USDT" in description
    assert "fill BTCUSDT id 1001 commission leg: -0.2 USDT" in description


def test_flipped_transfer_breaks_balance(handmade: LakeFactory) -> None:
    def flip(history: History) -> None:
        find(history["transfers"], txId=3)["type"] = "ROLL_IN"

    breaks = reconcile(handmade(plant=flip).data_dir)
    assert recon_breaks(breaks) == {("balance", "USDT", NAIVE_S2, D(-100))}
    (balance,) = [b for b in breaks if b.kind == "balance"]
    assert "transfers_in=50" in balance.terms
    (flow,) = [b for b in breaks if b.kind == "capital_flow"]
    assert flow.cause_id == balance.cause_id
    assert "capital flow TRANSFER -50 USDT" in str(flow.detail)
    assert "transfer txId 3: 50 USDT" in str(flow.detail)


def test_snapshot_off_by_one_unit_is_that_snapshot(handmade: LakeFactory) -> None:
    def nudge(rows: list[Row]) -> None:
        for row in rows:
            if row["asset"] == "BTC" and row["snapshotTime"] == S2:
                row["free"] += D("0.00000001")
                row["netAsset"] += D("0.00000001")

    lake = handmade(plant_snapshots=nudge)
    assert recon_breaks(reconcile(lake.data_dir)) == {
        ("balance", "BTC", NAIVE_S2, D("0.00000001")),
        ("balance", "BTC", NAIVE_S3, D("-0.00000001")),
    }
    kind, description = only_cause(lake)
    assert kind == "snapshot"
    assert description.startswith("the snapshot at 2024-01-01T08:30:00.000Z disagrees")


@pytest.mark.parametrize(("seconds_before", "breaks"), [(3, 0), (30, 2)])
def test_a_live_snapshot_stamped_seconds_late_matches_within_its_tolerance(
    handmade: LakeFactory, seconds_before: int, breaks: int
) -> None:
    """The live snapshot S2 shows the account as it was a little before its stamp: it misses a
    7 USDT transfer made `seconds_before` it. Within the stamp's tolerance (10 s) that is the
    snapshot's time, not a break; further back it is the snapshot, disagreeing both ways."""
    moved = S2 - timedelta(seconds=seconds_before)

    def late_transfer(history: History) -> None:
        history["transfers"].append(transfer_row(5, "USDT", "7", "ROLL_IN", moved))

    def missed_by_the_snapshot(rows: list[Row]) -> None:
        for row in rows:
            if row["asset"] == "USDT" and row["snapshotTime"] == S2:
                row["free"] -= D(7)
                row["netAsset"] -= D(7)

    lake = handmade(truth_plant=late_transfer, plant_snapshots=missed_by_the_snapshot)
    found = recon_breaks(reconcile(lake.data_dir))
    assert len(found) == breaks
    if breaks:
        assert found == {
            ("balance", "USDT", NAIVE_S2, D(-7)),
            ("balance", "USDT", NAIVE_S3, D(7)),
        }
        assert only_cause(lake)[0] == "snapshot"


@pytest.mark.parametrize(("seen", "breaks"), [((), 0), ((8,), 2)])
def test_a_live_snapshot_taken_seconds_before_its_stamp_on_a_busy_account_matches(
    handmade: LakeFactory, seen: tuple[int, ...], breaks: int
) -> None:
    """Twenty transfers in the 5 s before S2's stamp (k x 0.01 USDT for the k-th), as a busy
    account makes while its clock estimate runs ahead. A snapshot taken before all of them
    is the account at one instant within its tolerance: matched, however many lines that
    takes. One that saw the 8th but none around it is at no instant: the snapshot breaks."""
    amounts = {k: D(k) / 100 for k in range(1, 21)}

    def busy_seconds(history: History) -> None:
        for k, amount in amounts.items():
            when = S2 - timedelta(milliseconds=250 * (21 - k))
            history["transfers"].append(transfer_row(100 + k, "USDT", str(amount), "ROLL_IN", when))

    missed = sum(amount for k, amount in amounts.items() if k not in seen)

    def missed_by_the_snapshot(rows: list[Row]) -> None:
        for row in rows:
            if row["asset"] == "USDT" and row["snapshotTime"] == S2:
                row["free"] -= missed
                row["netAsset"] -= missed

    lake = handmade(truth_plant=busy_seconds, plant_snapshots=missed_by_the_snapshot)
    found = recon_breaks(reconcile(lake.data_dir))
    assert len(found) == breaks
    if breaks:
        assert found == {
            ("balance", "USDT", NAIVE_S2, -missed),
            ("balance", "USDT", NAIVE_S3, missed),
        }
        assert only_cause(lake)[0] == "snapshot"


def drop_transfer(tx_id: int) -> object:
    def plant(history: History) -> None:
        history["transfers"] = [r for r in history["transfers"] if r["txId"] != tx_id]

    return plant


def test_rows_inside_the_late_window_are_provisional(handmade: LakeFactory) -> None:
    # the 12:00 transfer has not reached the lake yet (its capital-flow row has)
    lake = handmade(plant=drop_transfer(4), late_window_hours=48)
    assert reconcile(lake.data_dir) == []
    provisional = reconcile(lake.data_dir, include_provisional=True)
    assert {(b.kind, b.asset, b.status) for b in provisional} == {
        ("balance", "USDT", "provisional"),
        ("capital_flow", "USDT", "provisional"),
    }
    assert only_cause(lake, include_provisional=True)[0] == "capital_flow"


@pytest.mark.parametrize(
    ("tx_id", "asset", "interval_end", "amount"),
    [(2, "BTC", at(2), D("0.1")), (4, "USDT", S3, D(5))],
    ids=["old: the opening's BTC", "recent: after the second snapshot"],
)
def test_a_missing_transfer_is_one_cause_old_or_recent(
    handmade: LakeFactory, tx_id: int, asset: str, interval_end: object, amount: Decimal
) -> None:
    lake = handmade(plant=drop_transfer(tx_id))
    breaks = reconcile(lake.data_dir)
    naive_end = interval_end.replace(tzinfo=None)  # type: ignore[attr-defined]
    assert recon_breaks(breaks) == {("balance", asset, naive_end, amount)}
    assert {b.status for b in breaks} == {"break"}
    kind, description = only_cause(lake)
    assert kind == "capital_flow"
    assert description.startswith(f"transfer of {amount} {asset}")
    assert "is in the capital flow but not in transfers" in description


def test_a_lost_first_transfer_breaks_the_proven_opening(handmade: LakeFactory) -> None:
    # the account's very first row, lost from both the transfers and the capital flow: the
    # coverage proves the history reaches the opening, so the opening does not tie from zero
    def drop_flow(rows: list[Row]) -> None:
        rows[:] = [r for r in rows if r["tranId"] != 1]

    lake = handmade(plant=drop_transfer(1), plant_flows=drop_flow)
    assert recon_breaks(reconcile(lake.data_dir)) == {
        ("balance", "USDT", at(2).replace(tzinfo=None), D(1000))
    }
    kind, description = only_cause(lake)
    assert kind == "interval"
    assert description.startswith("unexplained between the opening and 2024-01-01T02:00:00.000Z")


def test_pending_rows_excuse_their_own_amount(handmade: LakeFactory) -> None:
    def still_pending(history: History) -> None:
        find(history["repays"], txId=20)["status"] = "PENDING"

    lake = handmade(r3_history=still_pending)
    assert reconcile(lake.data_dir) == []
    provisional = reconcile(lake.data_dir, include_provisional=True)
    assert {(b.kind, b.asset, b.status) for b in provisional} == {
        ("principal", "USDT", "provisional"),
        ("interest", "USDT", "provisional"),
        ("balance", "USDT", "provisional"),
        ("pending", "USDT", "provisional"),
    }
    kind, description = only_cause(lake, include_provisional=True)
    assert kind == "pending"
    assert description.startswith("repays:20 at 2024-01-01T06:30:00.000Z has been PENDING for 41")


def test_a_pending_row_past_the_bound_hides_nothing(handmade: LakeFactory) -> None:
    def still_pending(history: History) -> None:
        find(history["repays"], txId=20)["status"] = "PENDING"

    lake = handmade(r3_history=still_pending, pending_max_age_hours=24)
    breaks = reconcile(lake.data_dir)
    assert {(b.kind, b.status) for b in breaks} == {
        ("principal", "break"),
        ("interest", "break"),
        ("balance", "break"),
        ("pending_stale", "break"),
    }
    kind, description = only_cause(lake)
    assert kind == "pending_stale"
    assert "PENDING for 41 hours, past the 24 hours" in description


def test_a_young_pending_row_does_not_excuse_another_difference(handmade: LakeFactory) -> None:
    # the repay is still PENDING, and a transfer of the same interval is missing: the
    # difference is not the repay's own amount, so it breaks
    def still_pending(history: History) -> None:
        find(history["repays"], txId=20)["status"] = "PENDING"

    lake = handmade(plant=drop_transfer(3), r3_history=still_pending)
    (balance,) = [b for b in reconcile(lake.data_dir) if b.kind == "balance"]
    assert (balance.status, balance.difference) == ("break", D("-150.01666668"))


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
    assert only_cause(lake)[0] == "interest_charge"
