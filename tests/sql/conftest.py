"""Fixtures of the SQL tests: hand-made lakes built into warehouses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sql.runner import BuildResult, build, connect
from tests.sql.handmade import write_handmade_lake


class BuiltLake:
    """A hand-made lake in a data dir, built into its warehouse."""

    def __init__(self, data_dir: Path, result: BuildResult) -> None:
        self.data_dir = data_dir
        self.result = result

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with connect(self.data_dir) as con:
            return con.execute(sql, params or []).fetchall()


LakeFactory = Callable[..., BuiltLake]


@pytest.fixture
def handmade(tmp_path: Path) -> LakeFactory:
    """Write the hand-made lake (with whatever plants are given) and build it."""

    def make(
        late_window_hours: int = 24,
        after: Callable[[Path], Any] | None = None,
        pending_max_age_hours: int = 72,
        **plants: Any,
    ) -> BuiltLake:
        write_handmade_lake(tmp_path, **plants)
        if after:
            after(tmp_path)
        result = build(
            tmp_path,
            late_window_hours=late_window_hours,
            pending_max_age_hours=pending_max_age_hours,
        )
        return BuiltLake(tmp_path, result)

    return make


@pytest.fixture(scope="session")
def base_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltLake]:
    """The hand-made lake as it is, built once for the session."""
    data_dir = tmp_path_factory.mktemp("base_lake")
    write_handmade_lake(data_dir)
    yield BuiltLake(data_dir, build(data_dir))
