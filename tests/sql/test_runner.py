"""The runner: build order, atomic builds, data tests, a warehouse usable with no setup."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from sql.runner import (
    CHART_FILE,
    SQL_DIR,
    BuildError,
    build,
    data_tests,
    failed_data_tests,
    load_models,
)
from storage.lake import lake_files
from tests.sql.conftest import BuiltLake, LakeFactory
from tests.sql.handmade import S2, Row

REQUIRED_MARTS = {"recon_principal", "recon_interest", "recon_balances", "recon_breaks"}


def test_models_come_after_what_they_read() -> None:
    models = load_models()
    position = {m.name: i for i, m in enumerate(models)}
    for model in models:
        assert all(position[dep] < position[model.name] for dep in model.depends_on), model.name
    assert position["int_ledger"] > position["stg_interest"]
    assert position["recon_breaks"] > max(position[m] for m in REQUIRED_MARTS - {"recon_breaks"})
    materialized = {m.name: m.materialized for m in models}
    assert (materialized["stg_loans"], materialized["int_ledger_loans"]) == ("table", "view")


def write_models(sql_dir: Path, **models: str) -> None:
    for name, sql in models.items():
        layer = "staging" if name.startswith("stg_") else "marts"
        (sql_dir / layer).mkdir(parents=True, exist_ok=True)
        (sql_dir / layer / f"{name}.sql").write_text(sql)


def test_a_model_depends_on_what_its_from_and_join_clauses_read(tmp_path: Path) -> None:
    write_models(
        tmp_path,
        stg_a="select 1 as id",
        stg_b="select 2 as id",
        stg_c="select 3 as id",
        stg_d="select * from latest_version(stg_c, (id))",
        # named only in a string, a column alias and a comment: read from stg_a alone
        mart="""-- not read: stg_c
            with a as (select * from stg_a)
            select 'stg_b' as source, a.id as stg_c, 'it''s from stg_b' as note
            from a left join "stg_d" on a.id = stg_d.id""",
    )
    depends_on = {m.name: m.depends_on for m in load_models(tmp_path)}
    assert depends_on["mart"] == {"stg_a", "stg_d"}
    assert depends_on["stg_d"] == {"stg_c"}
    assert depends_on["stg_b"] == frozenset()


def test_tests_are_declared_beside_their_models(tmp_path: Path) -> None:
    write_models(
        tmp_path,
        stg_a="\n".join(
            (
                "-- test: unique(account, a_key)",
                "-- test: not_null(account, asset)",
                "-- test: accepted_values(status: LOAN_STATUSES)",
                "-- test: accepted_values(kind: ROLL_IN, ROLL_OUT)",
                "select 1 as id",
            )
        ),
    )
    (model,) = load_models(tmp_path)
    assert [t.rule for t in model.tests] == [
        "unique (account, a_key)",
        "not null: account, asset",
        "status in (PENDING, CONFIRMED, FAILED)",
        "kind in (ROLL_IN, ROLL_OUT)",
    ]
    write_models(tmp_path, stg_a="-- test: unique\nselect 1 as id")
    with pytest.raises(BuildError, match=r"stg_a: cannot read `-- test: unique`"):
        load_models(tmp_path)


def test_a_model_scope_is_declared_or_refused(tmp_path: Path) -> None:
    write_models(tmp_path, stg_a="-- scope: all accounts\nselect 1 as id", stg_b="select 2 as id")
    scopes = {m.name: m.scope for m in load_models(tmp_path)}
    assert scopes == {"stg_a": "all accounts", "stg_b": "account"}
    write_models(tmp_path, stg_a="-- scope: everyone\nselect 1 as id")
    with pytest.raises(BuildError, match=r"stg_a\.sql: unknown `-- scope: everyone`"):
        load_models(tmp_path)
    write_models(tmp_path, stg_a="-- scope: all accounts\nselect * from stg_b")
    with pytest.raises(BuildError, match=r"stg_a is built from all accounts but reads \['stg_b'\]"):
        load_models(tmp_path)


def test_every_model_is_in_the_warehouse(base_lake: BuiltLake) -> None:
    names = {row[0] for row in base_lake.query("select table_name from information_schema.tables")}
    streams = ("loans", "repays", "interest", "transfers", "liquidations", "orders", "trades")
    assert {f"stg_{s}" for s in (*streams, "account_snapshots")} <= names
    assert REQUIRED_MARTS | {"interest_audit", "int_ledger", "report_breaks"} <= names
    assert set(base_lake.result.models) <= names


def test_the_warehouse_opens_from_its_data_dir_with_no_setup(base_lake: BuiltLake) -> None:
    # the views read the lake by paths relative to the data dir (so it can move): a plain
    # duckdb connection finds them from there
    script = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(con.execute('select count(*) from stg_interest').fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, "warehouse.duckdb"],
        cwd=base_lake.data_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "63"
    views = base_lake.query("select sql from duckdb_views() where view_name like 'src_%'")
    assert views and not any(str(base_lake.data_dir) in sql for (sql,) in views)


def test_a_failed_build_keeps_the_previous_warehouse(handmade: LakeFactory) -> None:
    lake = handmade()
    before = lake.query("select count(*) from int_ledger")
    # a corrupt file: an amount that is not a number
    folder = lake.data_dir / "lake" / "loans" / "account=acct1" / "month=2024-01"
    bad = pa.table({"asset": ["BTC"], "principal": ["not-a-number"], "_account": ["acct1"]})
    pq.write_table(bad, folder / "part-bad.parquet")
    with pytest.raises(BuildError, match=r"part-bad.parquet is not a loans file"):
        build(lake.data_dir)
    assert lake.query("select count(*) from int_ledger") == before
    assert sorted(p.name for p in lake.data_dir.iterdir()) == ["lake", "state", "warehouse.duckdb"]


def test_a_failed_data_test_names_model_rule_and_rows(handmade: LakeFactory) -> None:
    def break_identity(rows: list[Row]) -> None:
        for row in rows:
            if row["asset"] == "USDT" and row["snapshotTime"] == S2:
                row["netAsset"] += Decimal(1)

    lake = handmade(plant_snapshots=break_identity)
    assert not lake.result.ok
    (failure,) = lake.result.failures
    assert failure.failing_rows == 1
    assert failure.message.startswith(
        "stg_account_snapshots: netAsset = free + locked - borrowed - interest: 1 failing row(s)"
    )
    assert "asset=USDT" in failure.message and "snapshot_at=2024-01-01 08:30:00" in failure.message


def test_reconcile_fails_on_a_warehouse_whose_data_tests_failed(handmade: LakeFactory) -> None:
    def break_identity(rows: list[Row]) -> None:
        for row in rows:
            if row["asset"] == "USDT" and row["snapshotTime"] == S2:
                row["netAsset"] += Decimal(1)

    lake = handmade(plant_snapshots=break_identity)
    assert failed_data_tests(lake.data_dir) == [f.message for f in lake.result.failures]
    done = CliRunner().invoke(app, ["reconcile", "--data-dir", str(lake.data_dir)])
    assert done.exit_code == 2, done.output
    assert "data test failed: stg_account_snapshots: netAsset" in done.output
    assert "1 data test(s) failed" in done.output


def test_a_chart_of_accounts_missing_a_role_fails_the_journal_roles_test(
    handmade: LakeFactory,
) -> None:
    def drop_trading_fees(data_dir: Path) -> None:
        default = (Path(SQL_DIR) / CHART_FILE).read_text().splitlines(keepends=True)
        own = [line for line in default if not line.startswith("trading_fees,")]
        (data_dir / CHART_FILE).write_text("".join(own))

    lake = handmade(after=drop_trading_fees)
    failures = [(f.test.model, f.test.rule) for f in lake.result.failures]
    assert failures == [
        ("int_journal_roles", "not null: role, account_code, account_name, account_type")
    ]
    assert "role=trading_fees" in lake.result.failures[0].message


def test_reconcile_passes_a_clean_warehouse(base_lake: BuiltLake) -> None:
    assert failed_data_tests(base_lake.data_dir) == []
    done = CliRunner().invoke(app, ["reconcile", "--data-dir", str(base_lake.data_dir)])
    assert done.exit_code == 0, done.output


def test_a_repay_that_does_not_add_up_fails_its_data_test(handmade: LakeFactory) -> None:
    def bad_amount(history: dict[str, list[Row]]) -> None:
        history["repays"][0]["amount"] += Decimal("0.00000001")

    lake = handmade(plant=bad_amount)
    rules = {(f.test.model, f.test.rule) for f in lake.result.failures}
    assert ("stg_repays", "repay amount = principal + interest") in rules


def test_keys_and_enums_are_declared_for_every_staging_model() -> None:
    rules = {(t.model, t.rule.split(" ")[0]) for t in data_tests(load_models())}
    staging = [m.name for m in load_models() if m.name.startswith("stg_")]
    assert all((name, "unique") in rules for name in staging)
    assert ("int_ledger", "entry_type") in rules
    assert ("recon_balances", "status") in rules


def test_build_rejects_a_negative_late_window(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="late_window_hours"):
        build(tmp_path, late_window_hours=-1)


def test_a_truncated_lake_file_stops_the_build_naming_it(handmade: LakeFactory) -> None:
    lake = handmade()
    victim = max(lake_files(lake.data_dir, "trades"), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(BuildError, match=f"{re.escape(victim.name)} is not a whole Parquet file"):
        build(lake.data_dir)


def test_a_foreign_parquet_file_stops_the_build_naming_it(handmade: LakeFactory) -> None:
    lake = handmade()
    folder = lake_files(lake.data_dir, "loans")[0].parent
    pq.write_table(pa.table({"customer": ["x"], "amount": [1.5]}), folder / "part-foreign.parquet")
    with pytest.raises(BuildError, match=r"part-foreign\.parquet is not a loans file"):
        build(lake.data_dir)


def test_reconcile_prints_root_causes_first(handmade: LakeFactory) -> None:
    def drop_loan(history: dict[str, list[Row]]) -> None:
        history["loans"] = [r for r in history["loans"] if r["txId"] != 12]

    lake = handmade(plant=drop_loan)
    done = CliRunner().invoke(app, ["reconcile", "--data-dir", str(lake.data_dir)])
    assert done.exit_code == 1, done.output
    lines = done.output.splitlines()
    assert lines[0] == "root causes (1):"
    assert lines[1].startswith(
        "  1. [break] capital_flow BTC 2024-01-01 03:45:00 (9 rows, acct1): borrow of 0.01 BTC"
    )
    assert "reconciliation: 9 break row(s) from 1 root cause(s)" in done.output
    assert "verified (acct1): 2 of 2 asset(s) from 2023-12-31 00:00 on (anchored: opening)" in (
        done.output
    )


def test_reconcile_strict_counts_provisional_rows(handmade: LakeFactory) -> None:
    def still_pending(history: dict[str, list[Row]]) -> None:
        next(r for r in history["repays"] if r["txId"] == 20)["status"] = "PENDING"

    lake = handmade(r3_history=still_pending)
    lenient = CliRunner().invoke(app, ["reconcile", "--data-dir", str(lake.data_dir)])
    assert lenient.exit_code == 0, lenient.output
    assert (
        "provisional: 4 row(s) that may still change (not counted: --strict counts them); "
        "the oldest at 2024-01-01 06:30:00 (pending USDT)"
    ) in lenient.output
    strict = CliRunner().invoke(app, ["reconcile", "--strict", "--data-dir", str(lake.data_dir)])
    assert strict.exit_code == 1, strict.output
    assert "  1. [provisional] pending USDT 2024-01-01 06:30:00 (4 rows, acct1)" in strict.output
