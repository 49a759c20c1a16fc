"""The warehouse's data tests, declared as data: unique keys, required columns, accepted values
and identities. Each test is a query returning the offending rows; none returned is a pass."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

SINGULAR_TESTS_DIR = Path(__file__).resolve().parent / "tests"
SAMPLE_ROWS = 5

LOAN_STATUSES = ("PENDING", "CONFIRMED", "FAILED")
INTEREST_TYPES = ("PERIODIC", "ON_BORROW", "PERIODIC_CONVERTED", "ON_BORROW_CONVERTED", "PORTFOLIO")
ORDER_STATUSES = (
    "NEW",
    "PARTIALLY_FILLED",
    "FILLED",
    "CANCELED",
    "PENDING_CANCEL",
    "REJECTED",
    "EXPIRED",
    "EXPIRED_IN_MATCH",
)
SIDES = ("BUY", "SELL")
ENTRY_TYPES = (
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "BORROW",
    "REPAY_PRINCIPAL",
    "REPAY_INTEREST",
    "INTEREST",
    "INTEREST_CONVERTED",
    "TRADE_BASE",
    "TRADE_QUOTE",
    "COMMISSION",
    "LIQUIDATION_BASE",
    "LIQUIDATION_QUOTE",
)
RECON_STATUSES = ("matched", "break", "provisional")
BREAK_KINDS = ("principal", "interest", "balance", "interest_charge", "interest_principal")
AUDIT_STATUSES = ("ok", "charge_mismatch", "principal_mismatch", "principal_unknown", "not_audited")
RECON_KEY = ("account", "asset", "interval_end", "end_source")


@dataclass(frozen=True)
class DataTest:
    """One rule on one model; `sql` selects the rows that break it."""

    model: str
    rule: str
    sql: str


def unique(model: str, *columns: str) -> DataTest:
    cols = ", ".join(columns)
    return DataTest(
        model,
        f"unique ({cols})",
        f"select {cols}, count(*) as copies from {model} group by {cols} having count(*) > 1",
    )


def not_null(model: str, *columns: str) -> DataTest:
    where = " or ".join(f"{c} is null" for c in columns)
    return DataTest(
        model, f"not null: {', '.join(columns)}", f"select * from {model} where {where}"
    )


def accepted_values(model: str, column: str, values: tuple[str, ...]) -> DataTest:
    listed = ", ".join(f"'{v}'" for v in values)
    return DataTest(
        model,
        f"{column} in ({', '.join(values)})",
        f"select * from {model} where {column} is not null and {column} not in ({listed})",
    )


def singular_tests(folder: Path = SINGULAR_TESTS_DIR) -> tuple[DataTest, ...]:
    """Tests written as SQL files, each headed by `-- model: <name>` and `-- rule: <text>`."""
    tests = []
    for path in sorted(folder.glob("*.sql")):
        text = path.read_text()
        header = dict(re.findall(r"^--\s*(model|rule):\s*(.+?)\s*$", text, flags=re.MULTILINE))
        if "model" not in header or "rule" not in header:
            raise ValueError(f"{path}: a data test needs '-- model:' and '-- rule:' lines")
        tests.append(DataTest(header["model"], header["rule"], text.strip().rstrip(";")))
    return tuple(tests)


DATA_TESTS: tuple[DataTest, ...] = (
    unique("stg_loans", "account", "loan_key"),
    not_null("stg_loans", "account", "loan_key", "asset", "principal", "status", "loaned_at"),
    accepted_values("stg_loans", "status", LOAN_STATUSES),
    unique("stg_repays", "account", "repay_key"),
    not_null("stg_repays", "account", "tx_id", "asset", "amount", "interest", "principal"),
    accepted_values("stg_repays", "status", LOAN_STATUSES),
    unique("stg_interest", "account", "interest_key"),
    not_null("stg_interest", "account", "asset", "principal", "interest", "accrued_at"),
    accepted_values("stg_interest", "interest_type", INTEREST_TYPES),
    unique("stg_transfers", "account", "transfer_key"),
    not_null("stg_transfers", "account", "tx_id", "asset", "amount", "transferred_at"),
    accepted_values("stg_transfers", "transfer_type", ("ROLL_IN", "ROLL_OUT")),
    accepted_values("stg_transfers", "status", LOAN_STATUSES),
    unique("stg_liquidations", "account", "liquidation_key"),
    accepted_values("stg_liquidations", "side", SIDES),
    unique("stg_orders", "account", "order_key"),
    accepted_values("stg_orders", "side", SIDES),
    accepted_values("stg_orders", "status", ORDER_STATUSES),
    unique("stg_trades", "account", "trade_key"),
    not_null("stg_trades", "account", "symbol", "price", "qty", "commission", "traded_at"),
    unique("stg_account_snapshots", "account", "snapshot_key"),
    accepted_values("stg_account_snapshots", "snapshot_source", ("live", "daily")),
    unique("int_symbols", "symbol"),
    unique("int_ledger", "account", "entry_key"),
    not_null("int_ledger", "account", "ledger_at", "asset", "entry_type", "balance_effect"),
    accepted_values("int_ledger", "entry_type", ENTRY_TYPES),
    accepted_values("int_ledger", "side", SIDES),
    unique("int_snapshot_intervals", *RECON_KEY),
    unique("recon_principal", *RECON_KEY),
    accepted_values("recon_principal", "status", RECON_STATUSES),
    unique("recon_interest", *RECON_KEY),
    accepted_values("recon_interest", "status", RECON_STATUSES),
    unique("recon_balances", *RECON_KEY),
    accepted_values("recon_balances", "status", RECON_STATUSES),
    accepted_values("recon_breaks", "kind", BREAK_KINDS),
    accepted_values("recon_breaks", "status", ("break", "provisional")),
    unique("interest_audit", "account", "interest_key"),
    accepted_values("interest_audit", "audit_status", AUDIT_STATUSES),
    *singular_tests(),
)


@dataclass(frozen=True)
class DataTestResult:
    """How one data test went: the number of offending rows and a few of them."""

    test: DataTest
    failing_rows: int
    sample: tuple[dict[str, Any], ...]

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0

    @property
    def message(self) -> str:
        if self.passed:
            return f"{self.test.model}: {self.test.rule}: ok"
        rows = "; ".join(
            ", ".join(f"{k}={v}" for k, v in row.items() if v is not None) for row in self.sample
        )
        return (
            f"{self.test.model}: {self.test.rule}: {self.failing_rows} failing row(s), e.g. {rows}"
        )


def run_data_test(
    con: duckdb.DuckDBPyConnection, test: DataTest, sql: str | None = None
) -> DataTestResult:
    """Run one test (its SQL, or `sql`: the same test reading a cached copy of the model)."""
    query = sql or test.sql
    failing = con.execute(f"select count(*) from ({query})").fetchone()
    count = int(failing[0]) if failing else 0
    if count == 0:
        return DataTestResult(test, 0, ())
    cursor = con.execute(f"select * from ({query}) limit {SAMPLE_ROWS}")
    names = [d[0] for d in cursor.description or ()]
    sample = tuple(dict(zip(names, row, strict=True)) for row in cursor.fetchall())
    return DataTestResult(test, count, sample)


def run_data_tests(
    con: duckdb.DuckDBPyConnection, tests: tuple[DataTest, ...] = DATA_TESTS
) -> tuple[DataTestResult, ...]:
    """Run every test. A view under test (staging reads the lake and dedups on every query) is
    computed once into a temporary table that its tests read instead."""
    views = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_type = 'VIEW'"
        ).fetchall()
    }
    cached: dict[str, str] = {}
    results = []
    for test in tests:
        sql = None
        if test.model in views:
            if test.model not in cached:
                cached[test.model] = f"data_test_{test.model}"
                con.execute(f"create temp table {cached[test.model]} as select * from {test.model}")
            sql = re.sub(rf"\b{test.model}\b", cached[test.model], test.sql)
        results.append(run_data_test(con, test, sql))
    for table in cached.values():
        con.execute(f"drop table {table}")
    return tuple(results)
