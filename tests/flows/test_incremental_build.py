"""A build that rebuilds only the accounts whose data changed equals a whole build.

Two accounts on two simulators share one data dir; a random sequence of steps moves their
clocks and exports one, the other or both, and after each step the warehouse built on the
previous one is compared, table by table and view by view, with a whole build of a copy.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import duckdb
import httpx
import pytest

from bench.chaos_child import FAST_RETRY
from connectors.client import ClientSettings
from flows.config import Account, Secret
from flows.export import ExportRequest, ExportSummary, export_account
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.scenarios import build_exchange
from simulator.server import RunningSimulator
from sql import runner
from sql.increments import differing_warehouses
from sql.runner import WAREHOUSE_NAME, BuildError, BuildResult, build
from tests.fixtures_sim import SimFactory

HOUR_MS = 3_600_000
ACCOUNTS = ("alpha", "beta")


def export(sim: RunningSimulator, account: str, data: Path) -> ExportSummary:
    request = ExportRequest(
        Account(account, Secret(DEFAULT_API_KEY), Secret(DEFAULT_API_SECRET), base_url=sim.url),
        data,
        client_settings=ClientSettings(retry=FAST_RETRY),
    )
    return asyncio.run(export_account(request))


def advance(sim: RunningSimulator, hours: int) -> None:
    httpx.post(f"{sim.url}/_sim/advance", params={"ms": hours * HOUR_MS}).raise_for_status()


def differences_from_a_whole_build(
    data: Path, scratch: Path, *, tables_only: bool = False
) -> list[str]:
    """Build a copy of the data dir whole and name the relations whose rows differ."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(data, scratch)
    assert build(scratch, full=True).rebuilt is None
    return differing_warehouses(
        data / WAREHOUSE_NAME, scratch / WAREHOUSE_NAME, tables_only=tables_only
    )


def rewrite_a_file_of(data: Path, account: str) -> None:
    """One of the account's lake files written again, the same bytes: its account changed."""
    path = next((data / "lake" / "loans" / f"account={account}").rglob("*.parquet"))
    path.write_bytes(path.read_bytes())
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def plant_later_version(
    source: Path, into: Path, replaced: str, where: str = "true", order: str = "1"
) -> None:
    """Write into the lake folder `into` a later version (fetched a second after) of the first
    row, by `order`, of the parquet `source` (a file or a glob) where `where` holds, with the
    columns `replaced` (`expression as column, ...`) replaced."""
    with duckdb.connect() as con:
        con.execute(
            f"copy (select * replace ({replaced}, _fetched_at + interval 1 second as _fetched_at)"
            f" from read_parquet('{source}', hive_partitioning = false, union_by_name = true)"
            f" where {where} order by {order} limit 1) to '{into / 'part-later.parquet'}'"
            " (format parquet)"
        )


@pytest.fixture(scope="module")
def two_exchanges(sim_factory: SimFactory) -> dict[str, RunningSimulator]:
    """Frozen exchange clocks that only the tests move: each step is the same on any machine
    (the tests of this module share them, and each only moves them forward)."""
    return {
        account: sim_factory(exchange=build_exchange("default", seed, wall_clock=lambda: 0))
        for account, seed in zip(ACCOUNTS, (31, 32), strict=True)
    }


@pytest.fixture(scope="module")
def first_built(
    two_exchanges: dict[str, RunningSimulator], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Both accounts exported and built once (whole, as a first build is)."""
    data = tmp_path_factory.mktemp("first") / "data"
    for account, sim in two_exchanges.items():
        export(sim, account, data)
    assert build(data).rebuilt is None
    return data


@pytest.fixture
def built(first_built: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(first_built, data)
    return data


# each seed is a sequence of four steps (MARGIN_ETL_TEST_SEEDS=1,2,3 runs more); every step's
# rows stay in the warehouse until their account is rebuilt, so the last step's comparison
# holds each earlier rebuild to a whole build too
SEEDS = [int(s) for s in os.environ.get("MARGIN_ETL_TEST_SEEDS", "1").split(",")]


@pytest.mark.parametrize("seed", SEEDS)
def test_rebuilding_changed_accounts_equals_a_whole_build(
    seed: int, two_exchanges: dict[str, RunningSimulator], built: Path, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    for _ in range(4):
        exported = set(rng.sample(ACCOUNTS, rng.choice((1, 2))))
        for account in sorted(exported):
            advance(two_exchanges[account], rng.choice((1, 5, 30)))
            export(two_exchanges[account], account, built)
        result = build(built)
        assert result.ok, [f.message for f in result.failures]
        # each exported account is rebuilt in place from its new rows on, both ones too
        assert result.rebuilt == tuple(sorted(exported))
    assert differences_from_a_whole_build(built, tmp_path / "whole") == []


def test_a_build_with_nothing_new_writes_nothing(built: Path) -> None:
    before = (built / WAREHOUSE_NAME).read_bytes()
    result = build(built)
    assert result.rebuilt == ()
    assert result.ok and len(result.tests) > 50
    assert (built / WAREHOUSE_NAME).read_bytes() == before


def test_changed_settings_build_every_account(built: Path) -> None:
    assert build(built, late_window_hours=12).rebuilt is None
    assert build(built, late_window_hours=12).rebuilt == ()


def test_a_failed_swap_leaves_the_previous_warehouse_whole(
    built: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rewrite_a_file_of(built, "beta")
    before = tmp_path / "before"
    shutil.copytree(built, before)

    def fail_when_replaced(con: duckdb.DuckDBPyConnection, deleted: int) -> int:
        raise duckdb.IOException("disk gone")  # after every table's rows were replaced

    monkeypatch.setattr("sql.runner.vacuum_now", fail_when_replaced)
    with pytest.raises(BuildError, match="rebuilding beta: disk gone"):
        build(built)
    after, before_swap = built / WAREHOUSE_NAME, before / WAREHOUSE_NAME
    assert differing_warehouses(after, before_swap, tables_only=True) == []
    monkeypatch.undo()
    assert build(built).rebuilt == ("beta",)


def test_a_reader_holding_the_warehouse_gets_a_whole_build(built: Path) -> None:
    rewrite_a_file_of(built, "alpha")
    # another process reads the warehouse until told to stop
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(built / WAREHOUSE_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        result: BuildResult = build(built)
        assert result.rebuilt is None  # renamed over it, not written in place under it
    finally:
        out, _ = reader.communicate("stop\n")
    assert reader.returncode == 0 and int(out) > 0  # it read its warehouse to the end
    assert build(built).rebuilt == ()


READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("open", flush=True)
sys.stdin.readline()
print(con.execute("select count(*) from int_ledger").fetchone()[0])
"""


def test_deleted_rows_wait_for_a_vacuum_and_change_nothing(
    built: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def deleted_rows() -> int:
        with runner.connect(built) as con:
            kept = con.execute("select deleted_rows from build_state").fetchone()
        assert kept is not None
        return int(kept[0])

    monkeypatch.setattr("sql.increments.VACUUM_SHARE", 1.0)  # never vacuum yet
    rewrite_a_file_of(built, "beta")
    assert build(built).rebuilt == ("beta",)
    assert deleted_rows() > 0

    monkeypatch.setattr("sql.increments.VACUUM_SHARE", 0.0)  # vacuum at this swap
    rewrite_a_file_of(built, "alpha")
    assert build(built).rebuilt == ("alpha",)
    assert deleted_rows() == 0
    assert differences_from_a_whole_build(built, tmp_path / "whole", tables_only=True) == []


def test_a_failed_data_test_of_one_account_outlives_a_rebuild_of_another(built: Path) -> None:
    # a later version of one of alpha's loans, with a status no loan has
    loans = next((built / "lake" / "loans" / "account=alpha").rglob("*.parquet"))
    plant_later_version(loans, loans.parent, "'BOGUS' as status")
    assert build(built).rebuilt == ("alpha",)
    rewrite_a_file_of(built, "beta")
    result = build(built)
    assert result.rebuilt == ("beta",)
    assert [(f.test.model, f.failing_rows) for f in result.failures] == [("stg_loans", 1)]
    assert "BOGUS" in result.failures[0].message


def test_a_failed_data_test_before_the_cut_outlives_a_rebuild_since_it(
    built: Path, two_exchanges: dict[str, RunningSimulator]
) -> None:
    # a later version of alpha's first trade, priced to nine decimals: a trade's test fails
    trades = min((built / "lake" / "trades" / "account=alpha").rglob("*.parquet"))
    plant_later_version(trades, trades.parent, "price + 0.000000001 as price", order='"time"')
    assert build(built).rebuilt == ("alpha",)
    advance(two_exchanges["alpha"], 5)
    export(two_exchanges["alpha"], "alpha", built)
    result = build(built)  # since a cut after that trade: its rows are kept, not tested again
    assert result.rebuilt == ("alpha",)
    assert [(f.test.model, f.failing_rows) for f in result.failures] == [("stg_trades", 1)]


def test_an_account_gone_from_the_lake_is_rebuilt_whole_in_place(
    built: Path, tmp_path: Path
) -> None:
    for stream in (built / "lake").iterdir():
        shutil.rmtree(stream / "account=beta", ignore_errors=True)
    result = build(built)  # beta's rows are those of its coverage alone now; alpha's are kept
    assert result.rebuilt == ("beta",)
    assert differences_from_a_whole_build(built, tmp_path / "whole") == []


def test_a_capital_flow_row_pairs_with_its_typed_row_days_before_the_cut(
    built: Path, tmp_path: Path
) -> None:
    # a capital-flow row today, with the transaction id of alpha's first transfer and a
    # smaller id than its own flow row: it takes the transfer (the time differs), and the old
    # flow row is left without one; both sides are days before the rebuild's cut
    flows = built / "lake" / "capital_flow" / "account=alpha"
    every_file = flows / "*" / "*.parquet"
    now = f"(select max(timestamp) from read_parquet('{every_file}', hive_partitioning = false))"
    plant_later_version(
        every_file,
        max(flows.rglob("*.parquet")).parent,
        f'-1 as id, {now} as "timestamp"',
        where="type = 'TRANSFER'",
        order='"timestamp"',
    )
    assert build(built).rebuilt == ("alpha",)
    with runner.connect(built) as con:
        statuses = con.execute(
            "select match_status, count(*) from int_capital_flow_matches where account ="
            " 'alpha' and match_status <> 'matched' group by all order by all"
        ).fetchall()
    assert statuses == [("differs", 1), ("missing_typed", 1)]
    assert differences_from_a_whole_build(built, tmp_path / "whole") == []


def test_coverage_that_starts_elsewhere_rebuilds_the_account_whole(
    built: Path, tmp_path: Path
) -> None:
    # alpha's capital flow no longer read in its first three weeks (the first had no row):
    # the cross-check now leaves out the typed rows of the other two, however old
    with closing(sqlite3.connect(built / "state" / "coverage.sqlite")) as ledger, ledger:
        ledger.execute(
            "delete from coverage where rowid in (select rowid from coverage where account ="
            " 'alpha' and stream = 'capital_flow' order by start_ms limit 3)"
        )
    assert build(built).rebuilt == ("alpha",)
    assert differences_from_a_whole_build(built, tmp_path / "whole") == []
