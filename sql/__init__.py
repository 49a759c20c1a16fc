"""DuckDB models over the lake: staging, ledger, reconciliation marts and accounting reports."""

from sql.reports import REPORTS, STATEMENT_FILE, cell, csv_bytes, plain_decimal, report
from sql.runner import (
    Break,
    BuildError,
    BuildResult,
    Cause,
    VerifiedFrom,
    WarehouseError,
    build,
    failed_data_tests,
    load_models,
    reconcile,
    root_causes,
    verified_from,
)
from sql.warehouse import Answer, Warehouse, open_warehouse

__all__ = [
    "REPORTS",
    "STATEMENT_FILE",
    "Answer",
    "Break",
    "BuildError",
    "BuildResult",
    "Cause",
    "VerifiedFrom",
    "Warehouse",
    "WarehouseError",
    "build",
    "cell",
    "csv_bytes",
    "failed_data_tests",
    "load_models",
    "open_warehouse",
    "plain_decimal",
    "reconcile",
    "report",
    "root_causes",
    "verified_from",
]
