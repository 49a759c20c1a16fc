"""Accounting CSVs: files per account and month, plain decimals, ISO times, documented columns."""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import pytest

from sql.reports import REPORTS, STATEMENT_FILE, plain_decimal, report
from sql.runner import SQL_DIR, WarehouseError
from tests.sql.conftest import BuiltLake

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d*[1-9])?$")


@pytest.fixture(scope="module")
def everything(base_lake: BuiltLake, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return report(base_lake.data_dir, "2024-01", tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="module")
def written(everything: list[Path]) -> list[Path]:
    """The CSVs (the statement beside them is tested in test_statement_html.py)."""
    return [p for p in everything if p.suffix == ".csv"]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def documented_columns() -> dict[str, list[str]]:
    """The column tables of sql/REPORTS.md, per report file."""
    text = (SQL_DIR / "REPORTS.md").read_text()
    sections = re.split(r"^## (\w+)\.csv$", text, flags=re.MULTILINE)
    return {
        name: [c for c in re.findall(r"^\| (\w+) \|", body, flags=re.MULTILINE) if c != "column"]
        for name, body in zip(sections[1::2], sections[2::2], strict=True)
    }


def test_one_file_per_report_account_and_month(everything: list[Path]) -> None:
    names = {(p.parent.parent.name, p.parent.name, p.name) for p in everything}
    files = [f"{r.name}.csv" for r in REPORTS] + [STATEMENT_FILE]
    assert names == {(account, "2024-01", f) for account in ("acct1", "acct2") for f in files}
    assert len(everything) == len(names)
    assert all(not p.name.startswith(".") for p in everything[0].parent.iterdir())


def test_headers_are_the_documented_columns(written: list[Path]) -> None:
    docs = documented_columns()
    for path in written:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle))
        assert header == docs[path.stem], path.stem


def test_cells_are_plain_decimals_and_iso_times(written: list[Path]) -> None:
    ledger = read(next(p for p in written if p.match("acct1/*/general_ledger.csv")))
    # transfers, borrows, repay (principal, interest), charges, trades (base, quote, fee)
    assert len(ledger) == 4 + 3 + 2 + 63 + 2 * 3
    assert all(ISO_TIME.match(row["entry_time"]) for row in ledger)
    amounts = [row[c] for row in ledger for c in ("amount", "balance_effect", "interest_effect")]
    assert all(PLAIN_DECIMAL.match(a) for a in amounts), amounts
    borrow = next(row for row in ledger if row["entry_type"] == "BORROW" and row["asset"] == "USDT")
    assert (borrow["entry_time"], borrow["amount"], borrow["tx_id"]) == (
        "2024-01-01T03:30:00.000Z",
        "500",
        "10",
    )


def test_trades_carry_their_fees(written: list[Path]) -> None:
    trades = read(next(p for p in written if p.match("acct1/*/trades.csv")))
    assert [
        (t["side"], t["qty"], t["quote_qty"], t["commission"], t["commission_asset"])
        for t in trades
    ] == [
        ("BUY", "0.01", "400", "0.00001", "BTC"),
        ("SELL", "0.005", "205", "0.205", "USDT"),
    ]


def test_balance_statement_adds_up_and_matches_the_snapshot(written: list[Path]) -> None:
    rows = {r["asset"]: r for r in read(next(p for p in written if p.match("acct1/*/bal*.csv")))}
    usdt = rows["USDT"]
    assert (usdt["opening_balance"], usdt["closing_balance"], usdt["difference"]) == (
        "0",
        "1159.77833332",
        "0",
    )
    terms = (
        "transfers_in",
        "transfers_out",
        "borrowed",
        "repaid_principal",
        "repaid_interest",
        "trades",
        "commissions",
        "liquidations",
        "interest_converted",
    )
    assert sum(Decimal(usdt[t]) for t in terms) == Decimal(usdt["closing_balance"])
    assert usdt["snapshot_time"] == "2024-01-01T23:59:59.000Z"


def test_interest_expense_per_day(written: list[Path]) -> None:
    rows = read(next(p for p in written if p.match("acct1/*/interest_expense.csv")))
    assert [(r["day"], r["asset"], r["charges"], r["interest_charged"]) for r in rows] == [
        ("2024-01-01", "BTC", "42", "0.0000021"),
        ("2024-01-01", "USDT", "21", "0.07333346"),
    ]


def test_a_month_without_activity_gives_header_only_files(
    base_lake: BuiltLake, tmp_path: Path
) -> None:
    paths = report(base_lake.data_dir, "2023-12", tmp_path)
    csvs = [p for p in paths if p.suffix == ".csv"]
    assert len(csvs) == 2 * len(REPORTS)
    assert all(len(p.read_text().splitlines()) == 1 for p in csvs)
    statement = (tmp_path / "acct1" / "2023-12" / STATEMENT_FILE).read_text()
    assert "Monthly statement: acct1, 2023-12" in statement and "None this month." in statement


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0E-18", "0"),
        ("1.500000000000000000", "1.5"),
        ("100.000", "100"),
        ("1E+3", "1000"),
        ("-0.205000", "-0.205"),
        ("0.000000010000000000", "0.00000001"),
    ],
)
def test_plain_decimal(value: str, text: str) -> None:
    assert plain_decimal(Decimal(value)) == text


def test_a_malformed_month_is_refused(base_lake: BuiltLake, tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="2024-01"):
        report(base_lake.data_dir, "2024-1", tmp_path)
