"""Ad-hoc analysis of a data dir's warehouse: read-only queries, answered as pandas DataFrames.

    from sql import open_warehouse

    with open_warehouse("data/demo") as wh:
        breaks = wh.table("recon_breaks")
        by_day = wh.sql("select day, sum(interest_charged) from report_interest_expense group by 1")

Amounts stay exact: DECIMAL columns arrive as `decimal.Decimal` objects (through Arrow, never
through floats); times are naive UTC. The connection is read-only and resolves the lake's
relative paths in the data dir, so a moved or copied data dir answers the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb

from sql.runner import WarehouseError, connect

if TYPE_CHECKING:
    import pandas as pd

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Answer:
    """A query's answer as plain rows: column names, then values (Decimal, datetime, ...)."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


class Warehouse:
    """A read-only connection to DATA_DIR/warehouse.duckdb (close it, or use `with`)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self._con = connect(self.data_dir)

    def sql(self, query: str, params: Sequence[object] | None = None) -> pd.DataFrame:
        """The answer to `query` (with `?` parameters) as a DataFrame."""
        import pandas as pd

        relation = self._relation(query, params)
        if relation is None:  # a statement with no answer (`set ...`)
            return pd.DataFrame()
        frame: pd.DataFrame = relation.to_arrow_table().to_pandas()
        return frame

    def table(self, name: str) -> pd.DataFrame:
        """A whole table or view of the warehouse (`relations()` lists them)."""
        if not _NAME.match(name) or name not in self.relations():
            raise WarehouseError(f"the warehouse has no table or view {name!r}")
        return self.sql(f'select * from "{name}"')

    def relations(self) -> list[str]:
        """Every table and view of the warehouse, by name."""
        rows = self._con.execute(
            "select table_name from information_schema.tables order by table_name"
        ).fetchall()
        return [str(name) for (name,) in rows]

    def answer(self, query: str, params: Sequence[object] | None = None) -> Answer:
        """The answer to `query` as plain rows (what `margin-etl sql` prints)."""
        relation = self._relation(query, params)
        if relation is None:
            return Answer((), [])
        return Answer(tuple(relation.columns), relation.fetchall())

    def _relation(self, query: str, params: Sequence[object] | None) -> Any:
        if not query.strip():
            raise WarehouseError("the query is empty")
        try:
            return self._con.sql(query, params=list(params or ()))
        except duckdb.Error as exc:
            raise WarehouseError(str(exc).strip().splitlines()[0]) from None

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def open_warehouse(data_dir: str | os.PathLike[str] = "data") -> Warehouse:
    """Open DATA_DIR's warehouse read-only (WarehouseError when it has none: build it first)."""
    return Warehouse(data_dir)
