"""DuckDB models over the lake: staging, ledger, reconciliation marts and accounting reports."""

from sql.reports import REPORTS, report
from sql.runner import (
    Break,
    BuildError,
    BuildResult,
    WarehouseError,
    build,
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
    "load_models",
    "reconcile",
    "report",
]
