"""Benchmark of the hourly cycle: one account's new hour, built on the last warehouse against
built whole, side by side in one run, with the same result.

Two lakes of bench_sql's, 10 M ledger lines each: over 50 accounts, and in one account (a
year of a market maker's fills). Each is built once. Then, hour after hour, one account
exports its next hour (about 1,000 fills, each with its three capital-flow legs, and the
coverage of that hour) and the warehouse is built on (that account is rebuilt in place, since
its cut) and reconciled: CYCLES times. Then a copy of the data dir is built whole
(`build(full=True)`) and reconciled, and every table of the two warehouses is compared. The
export of the new rows is the same requests in both cycles and is not timed here
(`bench export` measures exports).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from bench import bench_sql
from sql.increments import differing_warehouses
from sql.runner import WAREHOUSE_NAME, build, reconcile
from storage.coverage import CoverageLedger

ACCOUNT = "acct0"  # the account with a new hour
NEW_FILLS = 1_000
CYCLES = 8


def add_hour(data_dir: Path, fills: int, end_ms: int) -> int:
    """The account's next hour, as its hourly export lands it: fills from `end_ms` on and
    their capital-flow legs, and the hour's coverage. Returns the new end."""
    lake = data_dir / "lake"
    hour_end = end_ms + bench_sql.HOUR_MS
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        template = next((lake / "trades" / f"account={ACCOUNT}").rglob("*.parquet"))
        con.execute(
            f"""
            create temp table fills as
            select * replace (
                {end_ms} + i as id, {end_ms} + i as "orderId",
                make_timestamptz(({end_ms} + i * 3000) * 1000) as "time",
                make_timestamptz(({hour_end} + 60000) * 1000) as _fetched_at
            )
            from (select * from read_parquet('{template}', hive_partitioning = false) limit 1),
                range({fills}) as new (i)
            """
        )
        con.execute("alter table fills drop column i")
        month = con.execute("select strftime(min(\"time\"), '%Y-%m') from fills").fetchone()
        folder = f"account={ACCOUNT}/month={month[0] if month else ''}"
        for stream, select in (
            ("trades", "select * from fills"),
            ("capital_flow", _legs()),
        ):
            target = lake / stream / folder
            target.mkdir(parents=True, exist_ok=True)
            name = f"part-hourly-{end_ms}.parquet"
            con.execute(f"copy ({select}) to '{target / name}' (format parquet)")
    with CoverageLedger(data_dir) as ledger:
        run = f"bench-hourly-{end_ms}"
        ledger.start_run(run, ACCOUNT, {})
        for stream, partition in (("trades", "BTCUSDT"), ("capital_flow", "")):
            ledger.mark(ACCOUNT, stream, partition, end_ms, hour_end, fills, run)
        ledger.finish_run(run, "completed", {})
    return hour_end


def _legs() -> str:
    """Each new fill's base, quote and commission legs, as the capital flow reports them."""
    return """
        select id * 3 + leg as id, id as "tranId", "time" as "timestamp",
            asset, symbol, "type", cast(amount as decimal(38, 18)) as amount, '' as note,
            _account, _run_id, _fetched_at, _api, '' as _partition
        from (
            select id, symbol, "time", _account, _run_id, _fetched_at, _api, 0 as leg,
                'BTC' as asset,
                case when "isBuyer" then 'BUY_INCOME' else 'SELL_EXPENSE' end as "type",
                case when "isBuyer" then qty else -qty end as amount
            from fills
            union all
            select id, symbol, "time", _account, _run_id, _fetched_at, _api, 1, 'USDT',
                case when "isBuyer" then 'BUY_EXPENSE' else 'SELL_INCOME' end,
                case when "isBuyer" then -"quoteQty" else "quoteQty" end
            from fills
            union all
            select id, symbol, "time", _account, _run_id, _fetched_at, _api, 2,
                "commissionAsset", 'TRADING_COMMISSION', -commission
            from fills
        )
    """


def _cycle(data_dir: Path, full: bool) -> dict[str, Any]:
    started = time.perf_counter()
    result = build(data_dir, full=full)
    built = time.perf_counter() - started
    breaks = reconcile(data_dir)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "build_seconds": round(built, 2),
        "rebuilt": "every account" if result.rebuilt is None else list(result.rebuilt),
        "breaks": len(breaks),
        "failed_data_tests": len(result.failures),
    }


def run(rows: int = 10_000_000) -> dict[str, Any]:
    """The hourly cycle over 50 accounts and in one account of `rows` ledger lines each."""
    return {
        "many_accounts": measure(rows, bench_sql.ACCOUNTS),
        "one_account": measure(rows, 1, bench_sql.ONE_ACCOUNT_HOURS),
    }


def measure(rows: int, accounts: int, hours: int | None = None) -> dict[str, Any]:
    """Generate and build the lake, then time hourly cycles on it and one whole cycle."""
    with tempfile.TemporaryDirectory(prefix="bench_hourly_") as tmp:
        incremental, whole = Path(tmp) / "incremental", Path(tmp) / "whole"
        sizes = bench_sql.generate(incremental / "lake", rows, accounts, hours)
        end_ms = bench_sql.START_MS + (sizes["hours"] + 1) * bench_sql.HOUR_MS
        first = build(incremental)
        hourly = []
        for _ in range(CYCLES):
            end_ms = add_hour(incremental, NEW_FILLS, end_ms)
            hourly.append(_cycle(incremental, full=False) | {"vacuumed": _vacuumed(incremental)})
        shutil.copytree(incremental, whole)
        whole_cycle = _cycle(whole, full=True)
        differing = differing_warehouses(
            incremental / WAREHOUSE_NAME, whole / WAREHOUSE_NAME, tables_only=True
        )
    mean = sum(c["seconds"] for c in hourly) / len(hourly)
    return {
        **sizes,
        "first_build_seconds": round(first.seconds, 2),
        "new_fills_an_hour": NEW_FILLS,
        "new_ledger_lines_an_hour": 3 * NEW_FILLS,
        "hourly_cycles": hourly,
        "hourly_cycle_mean_seconds": round(mean, 2),
        "whole_cycle": whole_cycle,
        "speedup_on_the_mean": round(whole_cycle["seconds"] / mean, 1),
        "speedup_on_the_median": round(whole_cycle["seconds"] / _median(hourly), 1),
        "differing_tables": differing,
    }


def _median(cycles: list[dict[str, Any]]) -> float:
    seconds = sorted(float(c["seconds"]) for c in cycles)
    return seconds[len(seconds) // 2]


def _vacuumed(data_dir: Path) -> bool:
    """Whether the last build's swap vacuumed the deleted rows (none wait)."""
    with duckdb.connect(str(data_dir / WAREHOUSE_NAME), read_only=True) as con:
        waiting = con.execute("select deleted_rows from build_state").fetchone()
    return bool(waiting and waiting[0] == 0)


if __name__ == "__main__":
    print(run())
