"""The warehouse's data tests: unique keys, required columns, accepted values and identities.

A model declares its tests in header lines, beside its SQL:
    -- test: unique(account, loan_key)
    -- test: not_null(account, asset, principal)
    -- test: accepted_values(status: LOAN_STATUSES)
    -- test: accepted_values(transfer_type: ROLL_IN, ROLL_OUT)
An accepted-values list is either the values themselves or the name of one of the sets below
(a set several models share, or that code outside the SQL reads, has its one home here).
Identities are SQL files in sql/tests/, named after their model and headed by `-- model:` and
`-- rule:`. Each test is a query returning the offending rows; none returned is a pass.
"""

from __future__ import annotations

import re
from collections.abc import Collection
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
    "LIQUIDATION_FEE",
    "LIQUIDATION_OTHER",
    "CONVERSION",
    "COMMISSION_RETURN",
    "REPAY_DEBIT",
)
RECON_STATUSES = ("matched", "break", "provisional", "unverified")
BREAK_KINDS = (
    "principal",
    "interest",
    "balance",
    "interest_charge",
    "interest_rate",
    "interest_principal",
    "interest_missing_hour",
    "interest_missing_on_borrow",
    "repay_split",
    "liquidation_fills",
    "capital_flow",
    "pending",
    "pending_stale",
)
AUDIT_STATUSES = (
    "ok",
    "charge_mismatch",
    "rate_mismatch",
    "principal_mismatch",
    "principal_unknown",
    "not_audited",
)
# how a report's figure was tied to the snapshots (statement_ties)
TIE_STATUSES = ("tied", "unverified", "provisional", "break")
# the sets a model's `accepted_values(column: NAME)` line may name
VALUE_SETS: dict[str, tuple[str, ...]] = {
    "LOAN_STATUSES": LOAN_STATUSES,
    "INTEREST_TYPES": INTEREST_TYPES,
    "ORDER_STATUSES": ORDER_STATUSES,
    "SIDES": SIDES,
    "ENTRY_TYPES": ENTRY_TYPES,
    "RECON_STATUSES": RECON_STATUSES,
    "BREAK_KINDS": BREAK_KINDS,
    "AUDIT_STATUSES": AUDIT_STATUSES,
    "TIE_STATUSES": TIE_STATUSES,
}

_TEST_LINE = re.compile(r"^--\s*test:\s*(.*?)\s*$", flags=re.MULTILINE)
_TEST_CALL = re.compile(r"^(\w+)\((.*)\)$")


class DataTestDeclarationError(ValueError):
    """A model's `-- test:` line or a singular test file that cannot be read as a test."""


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


_COLUMN_TESTS = {"unique": unique, "not_null": not_null}


def _columns(arguments: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in arguments.split(",") if c.strip())


def _accepted_values(model: str, arguments: str) -> DataTest:
    column, colon, listed = arguments.partition(":")
    values = _columns(listed)
    if not colon or not column.strip() or not values:
        raise DataTestDeclarationError(
            f"{model}: accepted_values needs `column: VALUE, ...` or `column: SET_NAME`"
        )
    if len(values) == 1 and values[0] in VALUE_SETS:
        values = VALUE_SETS[values[0]]
    return accepted_values(model, column.strip(), values)


def _declared_test(model: str, line: str) -> DataTest:
    call = _TEST_CALL.match(line)
    kind, arguments = call.groups() if call else ("", "")
    if kind == "accepted_values":
        return _accepted_values(model, arguments)
    if kind in _COLUMN_TESTS and _columns(arguments):
        return _COLUMN_TESTS[kind](model, *_columns(arguments))
    raise DataTestDeclarationError(
        f"{model}: cannot read `-- test: {line}` (unique(columns), not_null(columns) or "
        "accepted_values(column: values))"
    )


def declared_tests(model: str, sql: str) -> tuple[DataTest, ...]:
    """The tests a model's `-- test: kind(arguments)` header lines declare."""
    return tuple(_declared_test(model, line) for line in _TEST_LINE.findall(sql))


def singular_tests(folder: Path = SINGULAR_TESTS_DIR) -> tuple[DataTest, ...]:
    """Tests written as SQL files named `<model>__<rule>.sql`, headed by `-- model: <model>`
    and `-- rule: <text>`."""
    tests = []
    for path in sorted(folder.glob("*.sql")):
        text = path.read_text()
        header = dict(re.findall(r"^--\s*(model|rule):\s*(.+?)\s*$", text, flags=re.MULTILINE))
        if "model" not in header or "rule" not in header:
            raise DataTestDeclarationError(
                f"{path}: a data test needs '-- model:' and '-- rule:' lines"
            )
        if not path.stem.startswith(f"{header['model']}__"):
            raise DataTestDeclarationError(f"{path}: name it {header['model']}__<rule>.sql")
        tests.append(DataTest(header["model"], header["rule"], text.strip().rstrip(";")))
    return tuple(tests)


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
    con: duckdb.DuckDBPyConnection,
    tests: tuple[DataTest, ...],
    views: Collection[str] | None = None,
) -> tuple[DataTestResult, ...]:
    """Run every test. A view under test (staging reads the lake and dedups on every query) is
    computed once into a temporary table that its tests read instead; `views`: which models are
    (else the connection's views)."""
    if views is None:
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
