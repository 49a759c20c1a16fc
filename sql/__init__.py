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
from sql.warehouse import Warehouse, open_warehouse

__all__ = [
    "REPORTS",
    "Break",
    "BuildError",
    "BuildResult",
    "Warehouse",
    "WarehouseError",
    "build",
    "load_models",
    "open_warehouse",
    "reconcile",
    "report",
]
