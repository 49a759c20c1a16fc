"""Staging: one row per natural key, latest version, identical interest rows kept."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sql.runner import build
from tests.sql.conftest import BuiltLake
from tests.sql.handmade import ACCOUNT, DAY, Fetch, Row, at, write_fetch

D = Decimal


def interest_row(tx_id: int | None, hour: int = 4) -> Row:
    return {
        "txId": tx_id,
        "asset": "BTC",
        "rawAsset": "BTC",
        "principal": D("0.01"),
        "interest": D("0.00000005"),
        "interestRate": D("0.0001"),
        "type": "PERIODIC",
        "interestAccuredTime": at(hour),
    }


def build_lake(data_dir: Path, *fetches: Fetch) -> BuiltLake:
    for fetch in fetches:
        write_fetch(data_dir, fetch)
    return BuiltLake(data_dir, build(data_dir))


def test_identical_interest_rows_in_one_fetch_are_all_kept(base_lake: BuiltLake) -> None:
    # every BTC charge of the hand-made lake is a pair of identical rows without txId; r2 read
    # the 6 charges made by 08:30 and r3 all 21 again: 21 charges x 2 rows, each counted once
    rows = base_lake.query(
        "select count(*), count(distinct interest_key) from stg_interest "
        "where account = ? and asset = 'BTC'",
        [ACCOUNT],
    )
    assert rows == [(42, 42)]
    assert base_lake.query("select count(*) from src_interest where asset = 'BTC'") == [
        (6 * 2 + 21 * 2,)
    ]


def test_rows_read_again_by_later_runs_are_counted_once(base_lake: BuiltLake) -> None:
    raw = base_lake.query("select count(*) from src_transfers where _account = ?", [ACCOUNT])
    staged = base_lake.query("select count(*) from stg_transfers where account = ?", [ACCOUNT])
    assert (raw, staged) == ([(2 + 3 + 4,)], [(4,)])
    assert base_lake.query("select count(*) from stg_interest where asset = 'USDT'") == [(21,)]


def test_latest_version_wins(base_lake: BuiltLake) -> None:
    # r2 read the repay PENDING and the order NEW; r3 read them CONFIRMED and CANCELED
    assert base_lake.query("select status, run_id from stg_repays where tx_id = 20") == [
        ("CONFIRMED", "r3")
    ]
    assert base_lake.query("select status from stg_orders where order_id = 502") == [("CANCELED",)]


def test_a_charge_read_with_and_without_txid_counts_once(tmp_path: Path) -> None:
    fetched = DAY + timedelta(days=1)
    lake = build_lake(
        tmp_path,
        # the seed API (no txId) saw a pair of identical charges; the current API sends txIds
        Fetch("interest", [interest_row(None), interest_row(None)], "r1", fetched, api="legacy"),
        Fetch("interest", [interest_row(7), interest_row(8)], "r2", fetched + timedelta(hours=1)),
        Fetch("interest", [interest_row(None, hour=5)], "r2", fetched + timedelta(hours=1)),
    )
    assert lake.query(
        "select interest_key, tx_id from stg_interest where accrued_at = ? order by tx_id",
        [at(4).replace(tzinfo=None)],
    ) == [("7", 7), ("8", 8)]
    assert lake.query("select count(*) from stg_interest") == [(3,)]


def test_seed_loans_without_txid_keep_identical_pairs_and_latest_status(tmp_path: Path) -> None:
    loan = {"asset": "BTC", "principal": D("0.5"), "status": "PENDING", "timestamp": at(3)}
    confirmed = {**loan, "status": "CONFIRMED"}
    lake = build_lake(
        tmp_path,
        Fetch("loans", [loan, loan], "r1", at(4), api="legacy"),
        Fetch("loans", [confirmed, confirmed], "r2", at(9), api="legacy"),
    )
    rows = lake.query("select status, amount, interest from stg_loans order by loan_key")
    assert rows == [("CONFIRMED", D("0.5"), D(0))] * 2


def test_an_empty_lake_builds_typed_models(tmp_path: Path) -> None:
    lake = BuiltLake(tmp_path, build(tmp_path))
    assert lake.result.ok
    columns = dict(
        lake.query(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'stg_loans'"
        )
    )
    assert columns["principal"] == "DECIMAL(38,18)"
    assert columns["loaned_at"] == "TIMESTAMP"
    assert lake.query("select count(*) from recon_breaks") == [(0,)]


def test_every_amount_column_is_an_exact_decimal(base_lake: BuiltLake) -> None:
    floats = base_lake.query(
        "select table_name, column_name from information_schema.columns "
        "where data_type similar to '(DOUBLE|FLOAT|REAL).*'"
    )
    assert floats == []
    decimals = base_lake.query(
        "select distinct data_type from information_schema.columns where data_type like 'DECIMAL%'"
        " order by 1"
    )
    # lists of amounts: the PENDING amounts a check may excuse
    assert decimals == [("DECIMAL(38,18)",), ("DECIMAL(38,18)[]",)]
