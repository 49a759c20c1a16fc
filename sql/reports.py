"""Accounting CSVs per account and month, read from the warehouse's report views.

Cells: times as UTC ISO-8601 with milliseconds and a Z (`2024-01-01T05:30:00.000Z`), days as
`YYYY-MM-DD`, decimals as plain text (no exponent, trailing fractional zeros removed, `0` for
zero), booleans `true`/`false`, nothing for NULL. One header row; columns are documented in
sql/REPORTS.md. Each file is written to a temporary file and renamed into place, or, when the
output is an object store (`s3://bucket/prefix`), uploaded whole in one request
(storage/backends.py): a reader sees a complete file or none.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import overload

from sql.runner import WAREHOUSE_NAME, WarehouseError, build, connect
from storage import DataDir, LocalStorage, Storage

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
STATEMENT_FILE = "statement.html"  # the month's statement beside the CSVs (sql/statement.py)


@dataclass(frozen=True)
class Report:
    """One CSV: the view it reads and the order of its rows."""

    name: str
    view: str
    order_by: tuple[str, ...]


REPORTS: tuple[Report, ...] = (
    Report("general_ledger", "report_general_ledger", ("entry_time", "entry_type", "entry_key")),
    Report("interest_expense", "report_interest_expense", ("day", "asset")),
    Report("balance_statement", "report_balance_statement", ("asset",)),
    Report("trades", "report_trades", ("trade_time", "symbol", "trade_id")),
    Report("breaks", "report_breaks", ("interval_end", "kind", "asset", "interval_start")),
    Report("balance_sheet", "report_balance_sheet", ("line", "asset")),
    Report("loan_rollforward", "report_loan_rollforward", ("asset",)),
    Report("journal", "report_journal", ("entry_time", "journal_no", "line")),
    Report("realized_pnl", "report_realized_pnl", ("trade_time", "symbol", "trade_id")),
)


def plain_decimal(value: Decimal) -> str:
    """Plain decimal text: `1.500` -> `1.5`, `0E-18` -> `0`, never an exponent."""
    if value == 0:
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime):
        utc = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return utc.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """One CSV file's content: the header row, then the rows' cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([cell(v) for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Write one CSV atomically (temporary file in the same folder, then rename)."""
    LocalStorage(path.parent).write_bytes(path.name, csv_bytes(header, rows))


@overload
def report(data_dir: Path, month: str, out_dir: Path | None = None) -> list[Path]: ...
@overload
def report(data_dir: Path, month: str, out_dir: str) -> list[str]: ...
def report(
    data_dir: Path, month: str, out_dir: str | os.PathLike[str] | None = None
) -> list[Path] | list[str]:
    """Write every report for every account of the warehouse for `month` (YYYY-MM).

    Files land in OUT_DIR/<account>/<month>/<report>.csv (OUT_DIR defaults to
    DATA_DIR/reports; `s3://bucket/prefix` puts them on an object store); an account with
    nothing in the month still gets header-only files. The warehouse is built first if there
    is none. Returns Paths when given a Path (or nothing), else the files' paths or URLs as text.
    """
    if not MONTH.match(month):
        raise WarehouseError(f"month must look like 2024-01, not {month!r}")
    data_dir = Path(data_dir)
    out: Storage = DataDir(data_dir).report_storage(out_dir)
    out.check()
    if not (data_dir / WAREHOUSE_NAME).exists():
        build(data_dir)
    keys = _write_reports(data_dir, month, out)
    if isinstance(out_dir, str):
        return [out.uri(key) for key in keys]
    base = Path(out_dir) if out_dir is not None else DataDir(data_dir).reports_dir
    return [base / key for key in keys]


def _write_reports(data_dir: Path, month: str, out: Storage) -> list[str]:
    from sql.statement import statement_html  # it formats cells as this module does

    written = []
    with connect(data_dir) as con:
        accounts = [
            row[0]
            for row in con.execute(
                "select account from int_ledger union select account from stg_account_snapshots "
                "order by account"
            ).fetchall()
        ]
        for account in accounts:
            for spec in REPORTS:
                cursor = con.execute(
                    f"select * exclude (account, month) from {spec.view} "
                    f"where account = ? and month = ? order by {', '.join(spec.order_by)}",
                    [account, month],
                )
                header = [d[0] for d in cursor.description or ()]
                key = f"{account}/{month}/{spec.name}.csv"
                out.write_bytes(key, csv_bytes(header, cursor.fetchall()))
                written.append(key)
            key = f"{account}/{month}/{STATEMENT_FILE}"
            out.write_bytes(key, statement_html(con, account, month))
            written.append(key)
    return written
