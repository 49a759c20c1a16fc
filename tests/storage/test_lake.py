"""Lake writer and compaction: atomic files, Hive layout, exact decimals, crash recovery."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.schemas import STREAMS
from sql.runner import source_sql
from storage import lake
from storage.errors import UserError
from storage.lake import (
    LakeWriter,
    SchemaMismatch,
    WrittenFile,
    compact,
    compact_stream,
    conform,
    lake_files,
    month_dir,
    read_stream_table,
    recover_lake,
)

REPO = Path(__file__).resolve().parents[2]
JAN = datetime(2024, 1, 1, tzinfo=UTC)
FETCHED = datetime(2024, 3, 1, tzinfo=UTC)
TINY = Decimal("0.000000000000000001")
HUGE = Decimal("12345678901234567890.123456789012345678")  # 38 digits, 18 after the point


def scan(data_dir: Path, stream: str) -> str:
    """The warehouse's own scan of a stream's files (``sql.runner.source_sql``), as a subquery,
    its relative paths resolved from the data dir as the warehouse resolves them."""
    return f"({source_sql(STREAMS[stream], data_dir / 'lake')})".replace(
        "'lake/", f"'{data_dir.as_posix()}/lake/"
    )


def loan_rows(
    n: int, *, start: int = 0, account: str = "main", when: datetime = JAN
) -> list[dict[str, Any]]:
    """``n`` distinct loan rows, an hour apart, with exact amounts at both ends of the scale."""
    return [
        {
            "txId": start + i,
            "asset": "BTC" if i % 2 else "USDT",
            "principal": HUGE if i % 3 == 0 else Decimal(i) + TINY,
            "amount": None,
            "interest": None,
            "type": None,
            "status": "CONFIRMED",
            "timestamp": when + timedelta(hours=i),
            "isolatedSymbol": None,
            "_account": account,
            "_run_id": "run-1",
            "_fetched_at": FETCHED,
            "_api": "legacy",
            "_partition": "BTC" if i % 2 else "USDT",
        }
        for i in range(n)
    ]


def interest_rows(n: int, *, when: datetime = JAN) -> list[dict[str, Any]]:
    """Interest rows where every row is identical to another: a key must never merge them."""
    row = {
        "txId": None,
        "asset": "USDT",
        "rawAsset": None,
        "principal": Decimal("1000.5"),
        "interest": TINY,
        "interestRate": Decimal("0.00000925"),
        "type": "PERIODIC",
        "interestAccuredTime": when,
        "isolatedSymbol": None,
        "_account": "main",
        "_run_id": "run-1",
        "_fetched_at": FETCHED,
        "_api": "legacy",
        "_partition": "USDT",
    }
    return [dict(row, interestAccuredTime=when + timedelta(days=i // 2)) for i in range(n)]


def table(stream: str, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=STREAMS[stream].arrow)


def multiset(t: pa.Table) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(row.values()) for row in t.to_pylist())


def temp_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "lake").rglob("*.tmp"))


# --- atomic writes ----------------------------------------------------------------------------


def test_no_parquet_is_visible_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    seen: list[tuple[str, int, list[Path]]] = []

    def spy(src: Any, dst: Any) -> None:
        seen.append((Path(src).name, pq.read_metadata(src).num_rows, lake_files(tmp_path, "loans")))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    with LakeWriter(tmp_path, "run-1") as writer:
        writer.write("loans", table("loans", loan_rows(10)))

    [(temp_name, rows, visible)] = seen
    assert visible == []  # nothing under *.parquet until the rename
    assert temp_name.startswith(".") and temp_name.endswith(".tmp")
    assert rows == 10  # the temp file was complete before it was renamed
    assert [p.name.endswith(".parquet") for p in lake_files(tmp_path, "loans")] == [True]
    assert temp_files(tmp_path) == []


def test_a_failed_write_leaves_no_file_no_temp_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_then_fail(t: pa.Table, where: Any, **kwargs: Any) -> None:
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    writer = LakeWriter(tmp_path, "run-1")
    writer.write("loans", table("loans", loan_rows(3)))
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    assert lake_files(tmp_path, "loans") == []
    assert temp_files(tmp_path) == []
    assert writer.buffered_rows == 3  # kept for the next flush, not silently dropped
    monkeypatch.undo()
    [written] = writer.flush()
    assert written.rows == 3 and read_stream_table(tmp_path, "loans").num_rows == 3


CRASHING_WRITER = textwrap.dedent(
    """
    import io, os, signal, sys
    import pyarrow.parquet as pq
    from storage import lake
    sys.path.insert(0, sys.argv[2])
    from test_lake import loan_rows, table

    real_write = pq.write_table

    def write_half_then_die(t, where, **kwargs):
        buffer = io.BytesIO()
        real_write(t, buffer, **kwargs)
        where.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        where.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    lake.pq.write_table = write_half_then_die
    writer = lake.LakeWriter(sys.argv[1], "run-crash")
    writer.write("loans", table("loans", loan_rows(50)))
    writer.flush()
    """
)


def test_a_crash_mid_write_leaves_only_a_temp_the_next_writer_removes(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(tmp_path), str(Path(__file__).parent)],
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()

    [orphan] = temp_files(tmp_path)
    assert lake_files(tmp_path, "loans") == []
    with pytest.raises(pa.ArrowInvalid):
        pq.read_metadata(orphan)  # half a file, and no reader's glob can reach it
    glob = str(tmp_path / "lake" / "loans" / "**" / "*.parquet")
    with pytest.raises(duckdb.IOException, match="No files found"):
        duckdb.connect().execute(f"select count(*) from read_parquet('{glob}')").fetchall()

    with LakeWriter(tmp_path, "run-next") as writer:
        assert temp_files(tmp_path) == []
        writer.write("loans", table("loans", loan_rows(5)))
    assert read_stream_table(tmp_path, "loans").num_rows == 5


def test_recovery_spares_temps_of_this_process(tmp_path: Path) -> None:
    directory = month_dir(tmp_path, "loans", "main", "2024-01")
    directory.mkdir(parents=True)
    mine = directory / f".part-x.parquet.{lake._PROCESS_TOKEN}.tmp"
    dead = directory / ".part-y.parquet.0123456789ab.tmp"
    mine.write_bytes(b"in flight")
    dead.write_bytes(b"orphan")
    assert recover_lake(tmp_path).removed_temp_files == 1
    assert mine.exists() and not dead.exists()


# --- layout and values ------------------------------------------------------------------------


def test_hive_layout_reads_back_in_duckdb_with_exact_decimals(tmp_path: Path) -> None:
    rows = loan_rows(40, account="main") + loan_rows(
        7, start=100, account="123", when=JAN + timedelta(days=40)
    )
    with LakeWriter(tmp_path, "run-1") as writer:
        writer.write("loans", table("loans", rows))

    relative = {p.parent.relative_to(tmp_path).as_posix() for p in lake_files(tmp_path, "loans")}
    assert relative == {
        "lake/loans/account=main/month=2024-01",
        "lake/loans/account=123/month=2024-02",
    }
    glob = str(tmp_path / "lake" / "loans" / "**" / "*.parquet")
    plain = (
        duckdb.connect()
        .execute(
            f"select account, month, txId, principal, typeof(principal) from read_parquet('{glob}',"
            " hive_partitioning = true) order by txId"
        )
        .fetchall()
    )
    assert {r[4] for r in plain} == {"DECIMAL(38,18)"}
    assert [(r[0], r[1]) for r in plain][:1] == [("main", "2024-01")]

    scanned = (
        duckdb.connect()
        .execute(
            f"select account, month, txId, principal, typeof(account), typeof(month)"
            f" from {scan(tmp_path, 'loans')} order by txId"
        )
        .fetchall()
    )
    expected = [
        (r["_account"], r["timestamp"].strftime("%Y-%m"), r["txId"], r["principal"]) for r in rows
    ]
    assert [r[:4] for r in scanned] == expected
    assert {r[4:] for r in scanned} == {("VARCHAR", "VARCHAR")}
    assert HUGE in {r[3] for r in scanned} and Decimal(1) + TINY in {r[3] for r in scanned}


def test_months_are_cut_at_utc_midnight(tmp_path: Path) -> None:
    last_ms_of_january = datetime(2024, 2, 1, tzinfo=UTC) - timedelta(milliseconds=1)
    rows = loan_rows(1, when=last_ms_of_january) + loan_rows(
        1, start=1, when=last_ms_of_january + timedelta(milliseconds=1)
    )
    with LakeWriter(tmp_path, "run-1") as writer:
        files = writer.write("loans", table("loans", rows)) + writer.flush()
    assert sorted((f.month, f.rows) for f in files) == [("2024-01", 1), ("2024-02", 1)]


def test_buffering_makes_few_files(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path, "run-1")
    for batch in range(10):
        assert writer.write("loans", table("loans", loan_rows(100, start=batch * 100))) == []
    assert writer.buffered_rows == 1000
    [written] = writer.flush()
    assert written.rows == 1000 and written.path.exists()
    assert pq.read_metadata(written.path).num_rows == 1000
    assert pq.ParquetFile(written.path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert writer.buffered_rows == 0 and writer.flush() == []


def test_a_full_buffer_is_written_at_once_in_files_of_max_rows(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path, "run-1", max_rows_per_file=250)
    written: list[WrittenFile] = []
    for batch in range(10):
        written += writer.write("loans", table("loans", loan_rows(100, start=batch * 100)))
    assert [f.rows for f in written] == [250, 250, 250, 250]
    assert writer.flush() == []
    assert read_stream_table(tmp_path, "loans").column("txId").to_pylist() == list(range(1000))


def test_memory_cap_writes_the_largest_buffer(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path, "run-1", max_rows_per_file=100, max_buffered_rows=150)
    assert writer.write("loans", table("loans", loan_rows(90))) == []
    [written] = writer.write(
        "loans", table("loans", loan_rows(70, start=500, when=JAN + timedelta(days=40)))
    )
    assert (written.month, written.rows) == ("2024-01", 90)
    assert writer.buffered_rows == 70


def test_writers_sharing_a_run_id_never_overwrite_each_other(tmp_path: Path) -> None:
    first, second = LakeWriter(tmp_path, "run-1"), LakeWriter(tmp_path, "run-1")
    first.write("loans", table("loans", loan_rows(3)))
    second.write("loans", table("loans", loan_rows(4, start=10)))
    files = first.flush() + second.flush()
    assert len({f.path for f in files}) == 2
    assert read_stream_table(tmp_path, "loans").num_rows == 7


def test_threads_share_a_writer_and_flush_waits_for_their_rows(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path, "run-1", max_rows_per_file=64)
    start = threading.Barrier(4)

    def work(thread: int) -> None:
        start.wait()
        for batch in range(5):
            writer.write("loans", table("loans", loan_rows(30, start=thread * 1000 + batch * 30)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    ids = read_stream_table(tmp_path, "loans").column("txId").to_pylist()
    assert sorted(ids) == sorted(t * 1000 + i for t in range(4) for i in range(150))
    with pytest.raises(RuntimeError, match="closed"):
        writer.write("loans", table("loans", loan_rows(1)))


def test_context_manager_drops_buffers_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(KeyError), LakeWriter(tmp_path, "run-1") as writer:
        writer.write("loans", table("loans", loan_rows(3)))
        raise KeyError("boom")
    assert lake_files(tmp_path, "loans") == []


def test_identical_rows_are_all_kept(tmp_path: Path) -> None:
    rows = interest_rows(6)
    with LakeWriter(tmp_path, "run-1") as writer:
        writer.write("interest", table("interest", rows))
    assert multiset(read_stream_table(tmp_path, "interest")) == multiset(table("interest", rows))


def test_bad_account_name_is_a_user_error(tmp_path: Path) -> None:
    writer = LakeWriter(tmp_path, "run-1")
    with pytest.raises(UserError, match="account name"):
        writer.write("loans", table("loans", loan_rows(2, account="a/../b")))
    assert writer.buffered_rows == 0


# --- schema validation ------------------------------------------------------------------------


def replaced(t: pa.Table, name: str, column: pa.Array) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, column)


def test_conform_casts_where_nothing_can_change() -> None:
    base = table("loans", loan_rows(2))
    narrow = replaced(
        base, "principal", pa.array([Decimal("1.5"), Decimal("2")], pa.decimal128(20, 8))
    )
    assert conform("loans", narrow).column("principal").to_pylist() == [Decimal("1.5"), Decimal(2)]
    text = replaced(base, "principal", pa.array(["0.000000000000000001", "7"]))
    assert conform("loans", text).column("principal").to_pylist() == [TINY, Decimal(7)]
    seconds = replaced(base, "timestamp", pa.array([0, 1], pa.timestamp("s", tz="UTC")))
    assert conform("loans", seconds).column("timestamp").to_pylist()[1] == datetime(
        1970, 1, 1, 0, 0, 1, tzinfo=UTC
    )
    paris = replaced(base, "timestamp", pa.array([0, 1], pa.timestamp("ms", tz="Europe/Paris")))
    assert conform("loans", paris).schema == STREAMS["loans"].arrow
    nulls = replaced(base, "isolatedSymbol", pa.nulls(2))
    assert conform("loans", nulls).schema == STREAMS["loans"].arrow
    dictionary = replaced(base, "asset", pa.array(["BTC", "BTC"]).dictionary_encode())
    assert conform("loans", dictionary).column("asset").to_pylist() == ["BTC", "BTC"]
    reordered = base.select(list(reversed(base.column_names)))
    assert conform("loans", reordered).equals(base)
    assert conform("loans", base.to_batches()[0]).equals(base)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["status"]), r"missing \['status'\]"),
        (lambda t: t.append_column("surprise", pa.array([1, 2])), r"unexpected \['surprise'\]"),
        (
            lambda t: replaced(t, "principal", pa.array([1.5, 2.5], pa.float32())),
            "cannot store float",
        ),
        (
            lambda t: replaced(
                t, "principal", pa.array([Decimal("1E-19")] * 2, pa.decimal128(38, 19))
            ),
            "would lose data",
        ),
        (
            lambda t: replaced(t, "principal", pa.array(["1.0000000000000000001"] * 2)),
            "would lose data",
        ),
        (lambda t: replaced(t, "status", pa.array(["CONFIRMED", None])), "1 null value"),
        (
            lambda t: replaced(t, "timestamp", pa.array([0, 1], pa.timestamp("ms"))),
            "cannot store timestamp",
        ),
        (lambda t: replaced(t, "timestamp", pa.array([0, 1], pa.int64())), "cannot store int64"),
        (
            lambda t: replaced(t, "timestamp", pa.array([1, 1001], pa.timestamp("us", tz="UTC"))),
            "would lose data",
        ),
    ],
)
def test_conform_rejects_what_would_change_or_is_ambiguous(change: Any, message: str) -> None:
    with pytest.raises(SchemaMismatch, match=message):
        conform("loans", change(table("loans", loan_rows(2))))


def test_unknown_stream_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown stream"):
        LakeWriter(tmp_path, "run-1").write("loanz", table("loans", loan_rows(1)))


# --- compaction -------------------------------------------------------------------------------


def small_files(data_dir: Path, count: int = 5) -> Counter[tuple[Any, ...]]:
    """``count`` files in loans/main/2024-01 (with a repeated batch) and one in 2024-02."""
    writer = LakeWriter(data_dir, "run-1")
    for i in range(count):
        writer.write("loans", table("loans", loan_rows(20, start=(i % (count - 1)) * 20)))
        writer.flush()
    writer.write("loans", table("loans", loan_rows(3, start=900, when=JAN + timedelta(days=40))))
    writer.close()
    assert len(lake_files(data_dir, "loans")) == count + 1
    return multiset(read_stream_table(data_dir, "loans"))


def test_compaction_keeps_the_exact_multiset(tmp_path: Path) -> None:
    before = small_files(tmp_path)
    result = compact(tmp_path, "loans", "main", "2024-01")
    assert result is not None and result.rows == 100
    january = month_dir(tmp_path, "loans", "main", "2024-01")
    assert [p.name for p in january.iterdir()] == [result.path.name]
    assert result.path.name.startswith("compacted-")
    assert multiset(read_stream_table(tmp_path, "loans")) == before
    assert list((tmp_path / "lake" / lake.COMPACTION_DIR).iterdir()) == []
    assert compact(tmp_path, "loans", "main", "2024-01") is None  # one file: nothing to do
    assert compact(tmp_path, "loans", "main", "2024-02") is None


def test_compact_stream_picks_partitions_with_enough_files(tmp_path: Path) -> None:
    before = small_files(tmp_path, count=3)
    [result] = compact_stream(tmp_path, "loans")
    assert (result.month, result.rows) == ("2024-01", 60)
    assert len(lake_files(tmp_path, "loans")) == 2
    assert multiset(read_stream_table(tmp_path, "loans")) == before


class Crash(BaseException):
    """Stands for the process dying at a checkpoint."""


# step -> what recovery must do after a crash there ("moved_old": only the two-rename switch)
RECOVERY = {
    "journaled": {"rolled_back": 1},
    "prepared": {"rolled_back": 1},
    "moved_old": {"rolled_forward": 1},
    "switched": {"committed": 1},
    "discarding": {"committed": 1},
    "cleaned": {},
}
CRASHES = [
    pytest.param(step, exchange, id=f"{step}-{'exchange' if exchange else 'two-renames'}")
    for step in RECOVERY
    for exchange in (True, False)
    if not (exchange and step == "moved_old")
]


@pytest.mark.parametrize(("step", "atomic_exchange"), CRASHES)
def test_a_crash_at_any_compaction_step_never_doubles_rows_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, atomic_exchange: bool
) -> None:
    before = small_files(tmp_path)
    january = Counter({k: v for k, v in before.items() if k[7].month == 1})

    def crash_at(name: str) -> None:
        if name == step:
            raise Crash(name)

    monkeypatch.setattr(lake, "_step", crash_at)
    if not atomic_exchange:
        monkeypatch.setattr(lake, "_exchange_dirs", lambda a, b: False)
    with pytest.raises(Crash):
        compact(tmp_path, "loans", "main", "2024-01")

    # What a reader sees right after the crash: every row once, or (mid two-rename) the month
    # briefly absent; never a row twice.
    after_crash = multiset(read_stream_table(tmp_path, "loans"))
    if step == "moved_old":
        assert after_crash == before - january
    else:
        assert after_crash == before

    monkeypatch.setattr(lake, "_PROCESS_TOKEN", secrets.token_hex(6))  # the next process
    monkeypatch.setattr(lake, "_step", lambda name: None)
    assert recover_lake(tmp_path).compactions == RECOVERY[step]

    assert multiset(read_stream_table(tmp_path, "loans")) == before
    assert list((tmp_path / "lake" / lake.COMPACTION_DIR).iterdir()) == []
    names = [p.name for p in month_dir(tmp_path, "loans", "main", "2024-01").iterdir()]
    committed = step in ("moved_old", "switched", "discarding", "cleaned")
    if committed:
        assert len(names) == 1 and names[0].startswith("compacted-")
    else:
        assert len(names) == 5 and all(n.startswith("part-") for n in names)
    # Compaction still works afterwards and the whole thing reads the same in DuckDB.
    compact(tmp_path, "loans", "main", "2024-01")
    count = duckdb.connect().execute(f"select count(*) from {scan(tmp_path, 'loans')}").fetchall()
    assert count == [(sum(before.values()),)]


def test_compaction_and_a_writer_of_the_same_month_take_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_files(tmp_path)
    january = month_dir(tmp_path, "loans", "main", "2024-01")
    paused, resume, flusher_waits = threading.Event(), threading.Event(), threading.Event()

    def pause(name: str) -> None:
        if name == "prepared":  # inputs listed and compacted, switch not yet done
            paused.set()
            assert resume.wait(timeout=30)

    real_guard = lake._folder_guard

    @contextmanager
    def spied_guard(directory: Path) -> Iterator[None]:
        if threading.current_thread().name == "flusher":
            flusher_waits.set()
        with real_guard(directory):
            yield

    monkeypatch.setattr(lake, "_step", pause)
    monkeypatch.setattr(lake, "_folder_guard", spied_guard)
    compactor = threading.Thread(target=compact, args=(tmp_path, "loans", "main", "2024-01"))
    compactor.start()
    assert paused.wait(timeout=30)
    assert lake._guards[str(january.absolute())].locked()
    writer = LakeWriter(tmp_path, "run-2", recover=False)
    writer.write("loans", table("loans", loan_rows(4, start=5000)))
    flusher = threading.Thread(target=writer.flush, name="flusher")
    flusher.start()
    assert flusher_waits.wait(timeout=30)
    resume.set()
    compactor.join()
    flusher.join()
    # The new file was neither swallowed by the switch nor lost: it sits beside the compacted one.
    names = sorted(p.name.split("-")[0] for p in january.iterdir())
    assert names == ["compacted", "part"]
    assert read_stream_table(tmp_path, "loans").num_rows == 103 + 4
