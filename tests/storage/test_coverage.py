"""Coverage ledger: exact interval arithmetic, cursors, runs, persistence in SQLite."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.schemas import STREAMS
from storage.coverage import (
    Checkpoint,
    CoverageLedger,
    _upsert_cursor,
    ledger_path,
    merge_intervals,
    subtract_intervals,
)
from storage.lake import LakeWriter, WrittenFile, lake_files, read_stream_table

DAY = 86_400_000


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[CoverageLedger]:
    with CoverageLedger(tmp_path) as opened:
        yield opened


def set_cursor(
    ledger: CoverageLedger, account: str, stream: str, partition: str, next_id: int, run_id: str
) -> None:
    """Move an id cursor alone (an export moves one only together with its window's mark)."""
    with ledger._transaction() as conn:
        _upsert_cursor(conn, (account, stream, partition), next_id, run_id, 0)


def test_adjacent_and_overlapping_windows_merge_exactly(ledger: CoverageLedger) -> None:
    for start, end in [(10, 20), (0, 10), (30, 40), (35, 50), (41, 42), (60, 61)]:
        ledger.mark("main", "loans", "BTC", start, end, rows=1, run_id="r1")
    assert ledger.covered("main", "loans", "BTC") == [(0, 20), (30, 50), (60, 61)]
    assert ledger.gaps("main", "loans", "BTC", 5, 100) == [(20, 30), (50, 60), (61, 100)]
    assert ledger.gaps("main", "loans", "BTC", 0, 20) == []
    assert ledger.gaps("main", "loans", "BTC", 20, 20) == []
    assert ledger.gaps("main", "loans", "BTC", 19, 31) == [(20, 30)]
    assert ledger.high_water("main", "loans", "BTC") == 61


def test_partitions_streams_and_accounts_are_separate(ledger: CoverageLedger) -> None:
    ledger.mark("main", "loans", "BTC", 0, DAY, rows=5, run_id="r1")
    assert ledger.covered("main", "loans", "USDT") == []
    assert ledger.covered("main", "repays", "BTC") == []
    assert ledger.covered("other", "loans", "BTC") == []
    assert ledger.high_water("main", "loans", "USDT") is None
    assert ledger.gaps("main", "loans", "USDT", 0, DAY) == [(0, DAY)]
    assert ledger.partitions("main", "loans") == ["BTC"]


def test_marks_keep_rows_run_files_and_time(tmp_path: Path, ledger: CoverageLedger) -> None:
    written = WrittenFile(tmp_path / "lake" / "loans" / "x.parquet", "loans", "main", "2024-01", 3)
    before = datetime.now(UTC).replace(microsecond=0)
    ledger.mark("main", "loans", "", 0, DAY, rows=3, run_id="r1", files=[written, "/elsewhere/y"])
    [mark] = ledger.marks("main", "loans", "")
    assert (mark.rows, mark.run_id) == (3, "r1")
    assert mark.files == ("lake/loans/x.parquet", "/elsewhere/y")
    assert before <= mark.marked_at <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("start", "end", "rows", "error"),
    [(5, 5, 0, ValueError), (6, 5, 0, ValueError), (0, 5, -1, ValueError), (0.5, 5, 0, TypeError)],
)
def test_bad_marks_are_refused(
    ledger: CoverageLedger, start: int, end: int, rows: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        ledger.mark("main", "loans", "", start, end, rows=rows, run_id="r1")
    assert ledger.covered("main", "loans", "") == []


def test_unknown_stream_is_refused(ledger: CoverageLedger) -> None:
    with pytest.raises(ValueError, match="unknown stream"):
        ledger.mark("main", "loan", "", 0, 1, rows=0, run_id="r1")


def test_cursor_moves_with_its_mark_or_alone(ledger: CoverageLedger) -> None:
    assert ledger.cursor("main", "trades", "BTCUSDT") is None
    ledger.mark("main", "trades", "BTCUSDT", 0, DAY, rows=1000, run_id="r1", next_id=1001)
    assert ledger.cursor("main", "trades", "BTCUSDT") == 1001
    set_cursor(ledger, "main", "trades", "BTCUSDT", 2001, "r2")
    assert ledger.cursor("main", "trades", "BTCUSDT") == 2001
    assert ledger.cursor("main", "trades", "ETHUSDT") is None


def test_a_failed_mark_moves_nothing(ledger: CoverageLedger) -> None:
    set_cursor(ledger, "main", "trades", "BTCUSDT", 10, "r1")
    ledger._conn.execute(  # make the cursor upsert fail after the coverage insert
        "CREATE TRIGGER refuse BEFORE UPDATE ON cursors BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        ledger.mark("main", "trades", "BTCUSDT", 0, DAY, rows=5, run_id="r2", next_id=99)
    assert ledger.covered("main", "trades", "BTCUSDT") == []
    assert ledger.cursor("main", "trades", "BTCUSDT") == 10


def test_ledger_persists_in_wal_mode(tmp_path: Path) -> None:
    with CoverageLedger(tmp_path) as first:
        first.mark("main", "interest", "", 0, DAY, rows=24, run_id="r1")
        first.start_run("r1", "main", {"since": "2024-01-01"})
    assert ledger_path(tmp_path) == tmp_path / "state" / "coverage.sqlite"
    with sqlite3.connect(ledger_path(tmp_path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with CoverageLedger(tmp_path) as second:
        assert second.covered("main", "interest", "") == [(0, DAY)]
        run = second.last_run("main")
        assert run is not None and run.params == {"since": "2024-01-01"}


def test_forget_clears_coverage_and_cursors(ledger: CoverageLedger) -> None:
    ledger.mark("main", "orders", "BTCUSDT", 0, DAY, rows=1, run_id="r1", next_id=5)
    ledger.mark("main", "orders", "ETHUSDT", 0, DAY, rows=1, run_id="r1")
    ledger.mark("main", "loans", "BTC", 0, DAY, rows=1, run_id="r1")
    assert ledger.forget("main", "orders") == 2
    assert ledger.covered("main", "orders", "BTCUSDT") == []
    assert ledger.cursor("main", "orders", "BTCUSDT") is None
    assert ledger.covered("main", "loans", "BTC") == [(0, DAY)]


def test_summary_counts_windows_rows_and_holes(ledger: CoverageLedger) -> None:
    ledger.mark("main", "loans", "BTC", 0, 10, rows=2, run_id="r1")
    ledger.mark("main", "loans", "BTC", 20, 30, rows=3, run_id="r1")
    [line] = ledger.summary("main")
    assert (line.windows, line.rows, line.first_ms, line.high_water_ms, line.gaps) == (
        2,
        5,
        0,
        30,
        1,
    )


def test_runs_are_recorded_and_the_last_one_found(ledger: CoverageLedger) -> None:
    assert ledger.last_run("main") is None
    ledger.start_run("r1", "main", {"streams": ["loans"], "until": datetime(2024, 2, 1)})
    ledger.finish_run("r1", "completed", {"rows": 10})
    ledger.start_run("r2", "main", {})
    ledger.start_run("r2", "main", {})  # a retried flow run keeps its id
    ledger.start_run("r3", "other", {})
    last = ledger.last_run("main")
    assert last is not None and (last.run_id, last.status, last.attempts) == ("r2", "running", 2)
    done = ledger.last_run("main", status="completed")
    assert done is not None and done.summary == {"rows": 10} and done.finished_at is not None
    assert done.params == {"streams": ["loans"], "until": "2024-02-01 00:00:00"}
    assert ledger.close_abandoned_runs() == ["r2", "r3"]
    abandoned = ledger.run("r2")
    assert abandoned is not None and abandoned.status == "abandoned"
    with pytest.raises(ValueError, match="unknown run"):
        ledger.finish_run("nope", "completed", {})


# --- checkpoint: flush, then mark ---------------------------------------------------------------


def some_loans(n: int, start: int = 0) -> pa.Table:
    rows = [
        {
            "txId": start + i,
            "asset": "BTC",
            "principal": Decimal("0.1"),
            "amount": None,
            "interest": None,
            "type": None,
            "status": "CONFIRMED",
            "timestamp": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
            "isolatedSymbol": None,
            "_account": "main",
            "_run_id": "r1",
            "_fetched_at": datetime(2024, 2, 1, tzinfo=UTC),
            "_api": "legacy",
            "_partition": "BTC",
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=STREAMS["loans"].arrow)


def test_checkpoint_marks_only_after_the_rows_are_on_disk(
    tmp_path: Path, ledger: CoverageLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = LakeWriter(tmp_path, "r1")
    checkpoint = Checkpoint(writer, ledger)
    real_mark = ledger.mark_all
    rows_on_disk_at_mark: list[int] = []

    def spy(run_id: str, windows: Any) -> None:  # one transaction marks every window
        on_disk = read_stream_table(tmp_path, "loans").num_rows
        rows_on_disk_at_mark.extend(on_disk for _ in windows)
        real_mark(run_id, windows)

    monkeypatch.setattr(ledger, "mark_all", spy)
    writer.write("loans", some_loans(10))
    checkpoint.fetched("main", "loans", "BTC", 0, DAY, 10)
    writer.write("loans", some_loans(5, start=10))
    checkpoint.fetched("main", "loans", "BTC", DAY, 2 * DAY, 5, next_id=15)
    assert ledger.covered("main", "loans", "BTC") == [] and checkpoint.pending == 2

    [written] = checkpoint.commit()
    assert rows_on_disk_at_mark == [15, 15]
    assert ledger.covered("main", "loans", "BTC") == [(0, 2 * DAY)]
    assert ledger.cursor("main", "loans", "BTC") == 15
    assert {m.files for m in ledger.marks("main", "loans", "BTC")} == {
        (written.path.relative_to(tmp_path).as_posix(),)
    }
    assert checkpoint.pending == 0 and checkpoint.commit() == []


def test_a_failed_flush_marks_nothing_and_keeps_the_windows(
    tmp_path: Path, ledger: CoverageLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = LakeWriter(tmp_path, "r1")
    checkpoint = Checkpoint(writer, ledger)
    writer.write("loans", some_loans(4))
    checkpoint.fetched("main", "loans", "BTC", 0, DAY, 4)

    def no_space(*args: Any, **kwargs: Any) -> None:
        raise OSError("no space left")

    monkeypatch.setattr(pq, "write_table", no_space)
    with pytest.raises(OSError, match="no space"):
        checkpoint.commit()
    assert ledger.covered("main", "loans", "BTC") == [] and checkpoint.pending == 1
    assert lake_files(tmp_path, "loans") == []

    monkeypatch.undo()
    checkpoint.commit()
    assert ledger.covered("main", "loans", "BTC") == [(0, DAY)]
    assert read_stream_table(tmp_path, "loans").num_rows == 4


# --- properties -------------------------------------------------------------------------------

DOMAIN = 60
windows = st.lists(
    st.tuples(st.integers(0, DOMAIN), st.integers(1, 15)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=12,
)
spans = st.tuples(st.integers(-5, DOMAIN + 5), st.integers(0, DOMAIN + 20)).map(
    lambda p: (p[0], p[0] + p[1])
)


def points(intervals: list[tuple[int, int]]) -> set[int]:
    return {t for lo, hi in intervals for t in range(lo, hi)}


def check_shape(intervals: list[tuple[int, int]]) -> None:
    """Sorted, non-empty, disjoint and not even touching (else they would have been merged)."""
    assert all(lo < hi for lo, hi in intervals)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(intervals))


@given(windows, spans)
@settings(max_examples=300, deadline=None)
def test_gaps_and_coverage_partition_the_span(
    marked: list[tuple[int, int]], span: tuple[int, int]
) -> None:
    covered = merge_intervals(marked)
    gaps = subtract_intervals(span, covered)
    check_shape(covered)
    check_shape(gaps)
    assert points(covered) == points(marked)
    inside = set(range(*span))
    assert points(gaps) == inside - points(marked)
    assert points(gaps) | (points(covered) & inside) == inside
    assert all(span[0] <= lo and hi <= span[1] for lo, hi in gaps)


_partition_names = itertools.count()


@pytest.fixture(scope="module")
def shared_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoverageLedger]:
    with CoverageLedger(tmp_path_factory.mktemp("coverage")) as opened:
        yield opened


@given(windows, spans)
@settings(max_examples=60, deadline=None)
def test_the_ledger_reports_exactly_what_was_marked(
    shared_ledger: CoverageLedger, marked: list[tuple[int, int]], span: tuple[int, int]
) -> None:
    partition = f"p{next(_partition_names)}"  # a fresh partition per example
    for start, end in marked:
        shared_ledger.mark("main", "loans", partition, start, end, rows=0, run_id="r")
    covered = shared_ledger.covered("main", "loans", partition)
    gaps = shared_ledger.gaps("main", "loans", partition, *span)
    check_shape(covered)
    assert points(covered) == points(marked)
    assert points(gaps) == set(range(*span)) - points(marked)
    expected_high = max((end for _, end in marked), default=None)
    assert shared_ledger.high_water("main", "loans", partition) == expected_high
