"""Ad-hoc analysis: `margin-etl sql` and the notebook API, on a data dir that has moved."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from cli.main import main
from sql import WarehouseError, open_warehouse
from tests.sql.conftest import BuiltLake


@pytest.fixture(scope="module")
def moved(base_lake: BuiltLake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built data dir, moved elsewhere; the original is gone."""
    copy = tmp_path_factory.mktemp("copies") / "copied"
    shutil.copytree(base_lake.data_dir, copy)
    moved = copy.parent / "moved"
    copy.rename(moved)
    return moved


def margin_etl(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as a person runs it, from a directory unrelated to the data dir."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd="/",
        capture_output=True,
        text=True,
    )


def test_a_moved_data_dir_still_answers_margin_etl_sql(moved: Path) -> None:
    out = margin_etl(
        "sql", "--data-dir", str(moved), "--csv", "select count(*) as n from stg_interest"
    )
    assert (out.returncode, out.stdout) == (0, "n\n63\n"), out.stderr
    # a view over the lake, through the ledger, down to a report
    out = margin_etl(
        "sql",
        "--data-dir",
        str(moved),
        "--json",
        "select asset, net_equity, as_of from report_balance_sheet"
        " where account = 'acct1' and line = 'asset' order by asset",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [
        {"asset": "BTC", "net_equity": "0.1049879", "as_of": "2024-01-31T23:59:59.999Z"},
        {"asset": "USDT", "net_equity": "759.72166654", "as_of": "2024-01-31T23:59:59.999Z"},
    ]


def test_sql_prints_a_table_by_default(moved: Path) -> None:
    out = margin_etl("sql", "--data-dir", str(moved), "select kind from recon_breaks")
    assert out.returncode == 0 and "kind" in out.stdout and "0 row(s)" in out.stdout


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("selec 1", "Parser Error"),
        ("drop table int_ledger", "read-only"),
        ("select * from no_such_table", "no_such_table"),
        ("  ", "the query is empty"),
    ],
)
def test_sql_mistakes_are_one_line_and_exit_2(
    moved: Path,
    query: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "argv", ["margin-etl", "sql", "--data-dir", str(moved), query])
    with pytest.raises(SystemExit) as exited:
        main()
    out = capsys.readouterr()
    assert exited.value.code == 2 and out.out == ""
    assert out.err.startswith("margin-etl: ") and out.err.count("\n") == 1
    assert message in out.err


def test_sql_without_a_warehouse_says_to_build(tmp_path: Path) -> None:
    out = margin_etl("sql", "--data-dir", str(tmp_path), "select 1")
    assert out.returncode == 2 and "margin-etl build" in out.stderr


def test_the_notebook_api_answers_dataframes_with_exact_decimals(moved: Path) -> None:
    with open_warehouse(moved) as warehouse:
        breaks = warehouse.table("recon_breaks")
        assert isinstance(breaks, pd.DataFrame) and breaks.empty and "terms" in breaks.columns
        sheet = warehouse.sql(
            "select asset, net_equity from report_balance_sheet where account = ? and line = ?"
            " order by asset",
            ["acct1", "asset"],
        )
        assert list(sheet["net_equity"]) == [Decimal("0.1049879"), Decimal("759.72166654")]
        assert "report_journal" in warehouse.relations()
        with pytest.raises(WarehouseError, match="no table or view"):
            warehouse.table("stg_interest; drop table x")
        with pytest.raises(WarehouseError, match="read-only"):
            warehouse.sql("create table x as select 1")
