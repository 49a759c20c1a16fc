"""DuckDB models over the lake: staging, ledger, reconciliation marts and accounting reports."""

from sql.reports import REPORTS, plain_decimal, report
from sql.runner import (
    Break,
    BuildError,
    BuildResult,
    WarehouseError,
    build,
    failed_data_tests,
    load_models,
    reconcile,
)

__all__ = [
    "REPORTS",
    "Break",
    "BuildError",
    "BuildResult",
    "WarehouseError",
    "build",
    "failed_data_tests",
    "load_models",
    "plain_decimal",
    "reconcile",
    "report",
]
