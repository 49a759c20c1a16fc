"""Where verification starts: facts from the coverage ledger and the snapshots, never a guess.
Retention cuts at any point leave no break, only unverified spans with their reason."""

from __future__ import annotations

from datetime import datetime

import pytest

from sql.runner import reconcile, verified_from
from tests.sql.conftest import BuiltLake, LakeFactory
from tests.sql.handmade import ACCOUNT, S2, S3, SINCE, HandmadeCoverage, at
from tests.sql.test_rules import assert_clean

RETENTION_STREAMS = ("interest", "capital_flow", "interest_rates")


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def figures(lake: BuiltLake, asset: str = "USDT") -> dict[str, tuple[object, ...]]:
    rows = lake.query(
        "select figure, anchor_kind, anchor_at, verified_from from int_figure_coverage "
        "where account = ? and asset = ?",
        [ACCOUNT, asset],
    )
    return {row[0]: row[1:] for row in rows}


def test_the_opening_is_claimed_only_where_the_coverage_proves_it(base_lake: BuiltLake) -> None:
    (opening,) = base_lake.query(
        "select reaches_opening, asked_from, history_read_from, first_event_at "
        "from int_account_openings where account = ?",
        [ACCOUNT],
    )
    assert opening == (True, naive(SINCE), naive(SINCE), naive(at(0)))
    coverage = {c.asset: c for c in verified_from(base_lake.data_dir) if c.account == ACCOUNT}
    assert {(c.anchor_kind, c.verified_from) for c in coverage.values()} == {
        ("opening", naive(SINCE))
    }
    assert base_lake.query("select count(*) from recon_unverified") == [(0,)]


def test_without_a_ledger_nothing_is_verified_and_nothing_breaks(handmade: LakeFactory) -> None:
    lake = handmade(coverage=HandmadeCoverage(since=None))
    assert reconcile(lake.data_dir, include_provisional=True) == []
    assert lake.query(
        "select distinct status from recon_balances union select distinct status "
        "from recon_principal"
    ) == [("unverified",)]
    assert {(c.anchor_kind, c.verified_from) for c in verified_from(lake.data_dir)} == {
        ("none", None)
    }
    spans = lake.query(
        "select distinct figure, reason from recon_unverified where account = ? order by 1",
        [ACCOUNT],
    )
    assert [figure for figure, _ in spans] == ["balance", "interest", "principal"]
    assert all(reason.startswith("never read: ") for _, reason in spans)


def test_a_lost_opening_without_proof_is_unverified_not_guessed(handmade: LakeFactory) -> None:
    # the exports started at 00:30 and were not asked to go further back: the 1000 USDT
    # brought in at 00:00 are not in the lake. Nothing claims an opening from zero: the
    # figures are back-solved from the first snapshot, and the span before is unverified
    lake = handmade(
        coverage=HandmadeCoverage(since=at(0, 30), asked=None, starts=all_from(at(0, 30)))
    )
    assert_clean(lake)
    assert figures(lake)["balance"] == ("snapshot", naive(at(2)), naive(at(0, 30)))
    (reason,) = lake.query("select reason from int_account_openings where account = ?", [ACCOUNT])[
        0
    ]
    assert reason == "no export was asked to read from before the first event (--since)"


def all_from(start: datetime) -> dict[str, datetime]:
    streams = ("loans", "repays", "transfers", "trades", "orders", "liquidations")
    return {stream: start for stream in (*streams, *RETENTION_STREAMS)}


CUTS = [at(1, 30), at(3, 40), at(6), at(7), at(13)]


@pytest.mark.parametrize("cut", CUTS, ids=[f"{c:%H:%M}" for c in CUTS])
def test_a_retention_cut_anywhere_breaks_nothing(handmade: LakeFactory, cut: datetime) -> None:
    # the interest history, the capital flow and the rate history start at `cut` (what the
    # exchange still kept); the typed history was read from before the opening
    lake = handmade(coverage=HandmadeCoverage(starts=dict.fromkeys(RETENTION_STREAMS, cut)))
    assert_clean(lake)
    anchors = figures(lake)
    anchor = S2 if cut <= S2 else S3
    first = at(2) if cut <= at(2) else anchor
    assert anchors["principal"] == ("opening", None, naive(SINCE))
    assert anchors["interest"] == ("snapshot", naive(first), naive(cut))
    assert anchors["balance"] == ("snapshot", naive(first), naive(cut))
    # what lies before the cut is listed, with the stream that cut it
    spans = lake.query(
        "select figure, span_start, span_end, reason from recon_unverified "
        "where account = ? and asset = 'USDT' order by figure",
        [ACCOUNT],
    )
    assert [(figure, start, end) for figure, start, end, _ in spans] == [
        ("balance", naive(at(0)), naive(cut)),
        ("interest", naive(at(0)), naive(cut)),
    ]
    assert "which the exchange keeps 90 days" in spans[1][3]


@pytest.mark.parametrize("cut", [at(4), at(7), at(13)], ids=["04:00", "07:00", "13:00"])
def test_a_cut_of_every_stream_anywhere_breaks_nothing(
    handmade: LakeFactory, cut: datetime
) -> None:
    # a first export of an account older than what it read (no --since): every figure is
    # back-solved from the first snapshot after the cut, debts and interest included
    lake = handmade(coverage=HandmadeCoverage(since=cut, asked=None, starts=all_from(cut)))
    assert_clean(lake)
    anchor = S2 if cut <= S2 else S3
    assert {figure: row[:2] for figure, row in figures(lake).items()} == {
        "principal": ("snapshot", naive(anchor)),
        "interest": ("snapshot", naive(anchor)),
        "balance": ("snapshot", naive(anchor)),
    }
    # the hours from the cut on are checked on the back-solved principal
    assert lake.query(
        "select min(accrued_at), count(*) from int_interest_hours "
        "where account = ? and borrowed_asset = 'USDT' and charge_kind = 'PERIODIC' "
        "and status = 'matched'",
        [ACCOUNT],
    ) == [(naive(cut), 24 - cut.hour)]


def test_a_hole_in_the_coverage_makes_what_precedes_it_unverified(handmade: LakeFactory) -> None:
    # the capital flow was read from 13:00 only: the balance is verified from then, the
    # intervals before are unverified (with the reason), not broken
    lake = handmade(coverage=HandmadeCoverage(starts={"capital_flow": at(13)}))
    assert_clean(lake)
    rows = lake.query(
        "select interval_end, status, unverified_reason from recon_balances "
        "where account = ? and asset = 'USDT' order by interval_end",
        [ACCOUNT],
    )
    assert [(end, status) for end, status, _ in rows] == [
        (naive(at(2)), "unverified"),
        (naive(S2), "unverified"),
        (naive(S3), "unverified"),
    ]
    assert rows[0][2].startswith("opening not proven: back-solved from the snapshot at")
    assert rows[1][2].startswith("before 2024-01-01T13:00:00.000Z: back-solved")
    assert lake.query(
        "select status from recon_principal where account = ? and asset = 'USDT' "
        "and interval_end = ?",
        [ACCOUNT, naive(S3)],
    ) == [("matched",)]
