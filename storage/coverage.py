"""The coverage ledger: which (account, stream, partition, window) was fetched completely, and runs.

One SQLite file, ``DATA_DIR/state/coverage.sqlite`` (WAL, full sync), stdlib ``sqlite3``. Windows
are half-open ``[start_ms, end_ms)`` in UTC milliseconds; coverage is the exact union of all
marked windows. Marks are a log (one row per fetched window, never updated): merged on read.

The rule that makes a re-run idempotent: **mark a window only after its rows are durable**, i.e.
after ``LakeWriter.flush()`` (or ``close()``) has returned the files holding them. A crash between
the flush and the mark only means the window is fetched again; staging keeps one row per key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from models import STREAMS, from_ms, now_ms
from storage import crashpoints
from storage.backends import ensure_dir, make_private
from storage.errors import state_database, writing
from storage.lake import LakeWriter, WrittenFile

__all__ = [
    "Checkpoint",
    "CoverageLedger",
    "CoverageSummary",
    "Interval",
    "Mark",
    "RunRecord",
    "ledger_path",
    "merge_intervals",
    "subtract_intervals",
]

Interval = tuple[int, int]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS coverage (
    id          INTEGER PRIMARY KEY,
    account     TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    partition   TEXT    NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL CHECK (end_ms > start_ms),
    rows        INTEGER NOT NULL CHECK (rows >= 0),
    run_id      TEXT    NOT NULL,
    files       TEXT    NOT NULL,
    marked_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS coverage_by_partition
    ON coverage (account, stream, partition, start_ms);
CREATE TABLE IF NOT EXISTS cursors (
    account     TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    partition   TEXT    NOT NULL,
    next_id     INTEGER NOT NULL,
    run_id      TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (account, stream, partition)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT    PRIMARY KEY,
    account     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    params      TEXT    NOT NULL,
    summary     TEXT,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS runs_by_account ON runs (account, started_at_ms);
"""

RUNNING = "running"
ABANDONED = "abandoned"


def ledger_path(data_dir: str | os.PathLike[str]) -> Path:
    """``DATA_DIR/state/coverage.sqlite``."""
    return Path(data_dir) / "state" / "coverage.sqlite"


LedgerRow = tuple[object, ...]


def read_ledger(data_dir: str | os.PathLike[str]) -> tuple[list[LedgerRow], list[LedgerRow]]:
    """The ledger's windows (account, stream, partition, start_ms, end_ms, rows, run_id,
    marked_at_ms) and runs (account, run_id, status, since_ms, started_at_ms), read-only;
    none when no export wrote a ledger yet."""
    path = ledger_path(data_dir)
    if not path.exists():
        return [], []
    with (
        state_database(path, "the coverage ledger"),
        closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as ledger,
    ):
        windows: list[LedgerRow] = ledger.execute(
            "SELECT account, stream, partition, start_ms, end_ms, rows, run_id, marked_at_ms"
            " FROM coverage"
        ).fetchall()
        runs: list[LedgerRow] = [
            (account, run_id, status, json.loads(params or "{}").get("since_ms"), started)
            for account, run_id, status, params, started in ledger.execute(
                "SELECT account, run_id, status, params, started_at_ms FROM runs"
            ).fetchall()
        ]
    return windows, runs


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of half-open intervals as sorted, disjoint, non-adjacent intervals."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract_intervals(span: Interval, covered: Iterable[Interval]) -> list[Interval]:
    """The parts of ``span`` not in ``covered``, sorted and disjoint."""
    start, end = span
    gaps: list[Interval] = []
    cursor = start
    for lo, hi in merge_intervals(covered):
        if hi <= cursor:
            continue
        if lo >= end:
            break
        if lo > cursor:
            gaps.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def _datetime(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


def _json(value: Mapping[str, Any] | None) -> str | None:
    # default=str: dates, Decimals and paths in run parameters are kept as text, exactly.
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _check_ms(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of milliseconds, got {type(value).__name__}")


@dataclass(frozen=True)
class Mark:
    """One window recorded as fetched completely."""

    account: str
    stream: str
    partition: str
    start_ms: int
    end_ms: int
    rows: int
    run_id: str
    files: tuple[str, ...]
    marked_at: datetime


@dataclass(frozen=True)
class CoverageSummary:
    """What is covered for one (account, stream, partition)."""

    account: str
    stream: str
    partition: str
    windows: int
    rows: int
    first_ms: int
    high_water_ms: int
    gaps: int


@dataclass(frozen=True)
class RunRecord:
    """An export run as recorded by ``start_run``/``finish_run``."""

    run_id: str
    account: str
    status: str
    params: dict[str, Any]
    summary: dict[str, Any] | None
    started_at: datetime
    finished_at: datetime | None
    attempts: int


class CoverageLedger:
    """What has been fetched, where id cursors stand, and which runs happened.

    Every write is one transaction. Safe to share between threads of a process; several
    processes may open the same file (SQLite serialises writers; the wait is ``timeout_s``).
    Advance coverage only after the rows are durable: see the module docstring.
    """

    def __init__(
        self, data_dir: str | os.PathLike[str], *, timeout_s: float = 30.0, read_only: bool = False
    ) -> None:
        self.data_dir = Path(data_dir)
        self.path = ledger_path(data_dir)
        self._lock = threading.RLock()
        if read_only:  # a plan reads beside a run that may hold the dir: it changes nothing
            with self._guarded():
                # not mode=ro: a read-only reader of a WAL database leaves its -wal and -shm
                # files behind, where the last connection to close removes them
                self._conn = sqlite3.connect(
                    f"{self.path.absolute().as_uri()}?mode=rw",
                    uri=True,
                    timeout=timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._conn.execute("PRAGMA query_only=ON")
            return
        with writing(self.path.parent):
            ensure_dir(self.path.parent)
        with self._guarded():
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            make_private(self.path)  # its WAL files take its mode
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            if self._conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise sqlite3.DatabaseError("database disk image is malformed")
        with self._transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _guarded(self) -> AbstractContextManager[None]:
        return state_database(self.path, "the coverage ledger")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guarded():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock, self._guarded():
            return self._conn.execute(sql, params).fetchall()

    # --- coverage ----------------------------------------------------------------------------

    def mark(
        self,
        account: str,
        stream: str,
        partition: str,
        start_ms: int,
        end_ms: int,
        rows: int,
        run_id: str,
        files: Iterable[str | os.PathLike[str]] = (),
        *,
        next_id: int | None = None,
    ) -> None:
        """Record ``[start_ms, end_ms)`` as fetched completely, its rows durable in ``files``.

        ``next_id``, if given, also moves the stream's id cursor, in the same transaction.
        """
        window = Fetched(account, stream, partition, start_ms, end_ms, rows, next_id)
        self.mark_all(run_id, [(window, files)])

    def mark_all(
        self,
        run_id: str,
        windows: Sequence[tuple[Fetched, Iterable[str | os.PathLike[str]]]],
    ) -> None:
        """Record many windows (each with the files holding its rows) in one transaction: a
        commit of a thousand windows costs one sync to disk, and lands whole or not at all."""
        relative: dict[str, str] = {}  # a commit lists the same files under many windows

        def listed(files: Iterable[str | os.PathLike[str]]) -> str:
            paths = [os.fspath(f) for f in files]
            for path in paths:
                if path not in relative:
                    relative[path] = self._relative(path)
            return json.dumps([relative[path] for path in paths])

        checked = [(w, listed(files)) for w, files in windows]
        for window, _ in checked:
            window.check()
        now = now_ms()
        with self._transaction() as conn:
            for w, names in checked:
                crashpoints.reach(crashpoints.COVERAGE_MARK)
                where = (w.account, w.stream, w.partition, w.start_ms, w.end_ms)
                conn.execute(
                    "INSERT INTO coverage (account, stream, partition, start_ms, end_ms, rows,"
                    " run_id, files, marked_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*where, w.rows, run_id, names, now),
                )
                if w.next_id is not None:
                    key = (w.account, w.stream, w.partition)
                    _upsert_cursor(conn, key, w.next_id, run_id, now)

    def covered(self, account: str, stream: str, partition: str) -> list[Interval]:
        """The covered windows, merged: sorted, disjoint, adjacent ones joined."""
        rows = self._query(
            "SELECT start_ms, end_ms FROM coverage"
            " WHERE account = ? AND stream = ? AND partition = ? ORDER BY start_ms",
            (account, stream, partition),
        )
        return merge_intervals((int(s), int(e)) for s, e in rows)

    def gaps(
        self, account: str, stream: str, partition: str, start_ms: int, end_ms: int
    ) -> list[Interval]:
        """The parts of ``[start_ms, end_ms)`` not yet covered, sorted and disjoint."""
        _check_ms("start_ms", start_ms)
        _check_ms("end_ms", end_ms)
        if end_ms < start_ms:
            raise ValueError(f"reversed window [{start_ms}, {end_ms})")
        return subtract_intervals((start_ms, end_ms), self.covered(account, stream, partition))

    def high_water(self, account: str, stream: str, partition: str) -> int | None:
        """The end of the latest covered window, or None; earlier holes show in ``gaps``."""
        rows = self._query(
            "SELECT max(end_ms) FROM coverage WHERE account = ? AND stream = ? AND partition = ?",
            (account, stream, partition),
        )
        return None if rows[0][0] is None else int(rows[0][0])

    def marks(self, account: str, stream: str, partition: str) -> list[Mark]:
        """Every mark of one partition, oldest window first (the raw log)."""
        rows = self._query(
            "SELECT account, stream, partition, start_ms, end_ms, rows, run_id, files,"
            " marked_at_ms FROM coverage WHERE account = ? AND stream = ? AND partition = ?"
            " ORDER BY start_ms, id",
            (account, stream, partition),
        )
        return [
            Mark(a, s, p, lo, hi, n, run, tuple(json.loads(files)), from_ms(at))
            for a, s, p, lo, hi, n, run, files, at in rows
        ]

    def partitions(self, account: str, stream: str) -> list[str]:
        """The partitions of a stream with any coverage, sorted."""
        rows = self._query(
            "SELECT DISTINCT partition FROM coverage WHERE account = ? AND stream = ?"
            " ORDER BY partition",
            (account, stream),
        )
        return [str(row[0]) for row in rows]

    def summary(self, account: str | None = None) -> list[CoverageSummary]:
        """One line per (account, stream, partition) with coverage."""
        where, params = ("WHERE account = ?", [account]) if account is not None else ("", [])
        rows = self._query(
            "SELECT account, stream, partition, count(*), sum(rows), min(start_ms), max(end_ms)"
            f" FROM coverage {where} GROUP BY account, stream, partition"
            " ORDER BY account, stream, partition",
            params,
        )
        result = []
        for acc, stream, part, windows, total, first, last in rows:
            holes = len(self.gaps(acc, stream, part, int(first), int(last)))
            result.append(CoverageSummary(acc, stream, part, windows, total, first, last, holes))
        return result

    def forget(self, account: str, stream: str | None = None, partition: str | None = None) -> int:
        """Delete coverage and cursors (for a full refresh); return how many marks went."""
        clauses, params = ["account = ?"], [account]
        if stream is not None:
            clauses.append("stream = ?")
            params.append(stream)
        if partition is not None:
            clauses.append("partition = ?")
            params.append(partition)
        where = " AND ".join(clauses)
        with self._transaction() as conn:
            deleted = conn.execute(f"DELETE FROM coverage WHERE {where}", params).rowcount
            conn.execute(f"DELETE FROM cursors WHERE {where}", params)
        return int(deleted)

    # --- id cursors --------------------------------------------------------------------------

    def cursor(self, account: str, stream: str, partition: str) -> int | None:
        """The next id to fetch, or None if the stream was never paged by id."""
        rows = self._query(
            "SELECT next_id FROM cursors WHERE account = ? AND stream = ? AND partition = ?",
            (account, stream, partition),
        )
        return int(rows[0][0]) if rows else None

    # --- runs --------------------------------------------------------------------------------

    def start_run(self, run_id: str, account: str, params: Mapping[str, Any]) -> None:
        """Record a run as running; starting the same run id again counts one more attempt."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, account, status, params, started_at_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET"
                " status = excluded.status, params = excluded.params, summary = NULL,"
                " finished_at_ms = NULL, attempts = attempts + 1",
                (run_id, account, RUNNING, _json(params), now_ms()),
            )

    def finish_run(self, run_id: str, status: str, summary: Mapping[str, Any]) -> None:
        """Record how a run ended (e.g. "completed", "failed") with a JSON-able summary."""
        with self._transaction() as conn:
            updated = conn.execute(
                "UPDATE runs SET status = ?, summary = ?, finished_at_ms = ? WHERE run_id = ?",
                (status, _json(summary), now_ms(), run_id),
            ).rowcount
        if updated != 1:
            raise ValueError(f"unknown run {run_id!r}: call start_run first")

    def run(self, run_id: str) -> RunRecord | None:
        """One run by id."""
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return _run_record(rows[0]) if rows else None

    def last_run(self, account: str, status: str | None = None) -> RunRecord | None:
        """The latest started run of an account, optionally only those with ``status``."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE account = ?"
        params: list[Any] = [account]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        rows = self._query(sql + " ORDER BY started_at_ms DESC, rowid DESC LIMIT 1", params)
        return _run_record(rows[0]) if rows else None

    def close_abandoned_runs(self) -> list[str]:
        """Mark runs still "running" as "abandoned"; call it holding the data-dir lock."""
        with self._transaction() as conn:
            ids = [
                r[0] for r in conn.execute("SELECT run_id FROM runs WHERE status = ?", (RUNNING,))
            ]
            conn.execute(
                "UPDATE runs SET status = ?, finished_at_ms = ? WHERE status = ?",
                (ABANDONED, now_ms(), RUNNING),
            )
        return sorted(str(i) for i in ids)

    def _relative(self, path: str | os.PathLike[str]) -> str:
        candidate = Path(path)
        try:
            return candidate.absolute().relative_to(self.data_dir.absolute()).as_posix()
        except ValueError:
            return str(candidate)


_RUN_COLUMNS = "run_id, account, status, params, summary, started_at_ms, finished_at_ms, attempts"


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, account, status, params, summary, started, finished, attempts = row
    return RunRecord(
        run_id,
        account,
        status,
        json.loads(params),
        None if summary is None else json.loads(summary),
        from_ms(started),
        _datetime(finished),
        int(attempts),
    )


def _check_stream(stream: str) -> None:
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; known: {', '.join(STREAMS)}")


def _upsert_cursor(
    conn: sqlite3.Connection, key: tuple[str, str, str], next_id: int, run_id: str, now: int
) -> None:
    conn.execute(
        "INSERT INTO cursors (account, stream, partition, next_id, run_id, updated_at_ms)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, stream, partition) DO UPDATE SET"
        " next_id = excluded.next_id, run_id = excluded.run_id,"
        " updated_at_ms = excluded.updated_at_ms",
        (*key, next_id, run_id, now),
    )


@dataclass(frozen=True)
class Fetched:
    """A window read completely: where, how many rows, and where its id cursor goes next."""

    account: str
    stream: str
    partition: str
    start_ms: int
    end_ms: int
    rows: int
    next_id: int | None

    def check(self) -> None:
        _check_stream(self.stream)
        _check_ms("start_ms", self.start_ms)
        _check_ms("end_ms", self.end_ms)
        if self.end_ms <= self.start_ms:
            raise ValueError(f"empty or reversed window [{self.start_ms}, {self.end_ms})")
        if self.rows < 0:
            raise ValueError(f"negative row count {self.rows}")


class Checkpoint:
    """Pairs a LakeWriter with the ledger so windows are marked only after their rows are durable.

    Call ``fetched(...)`` for a window once all its rows went through ``writer.write``; call
    ``commit()`` whenever convenient (every few windows, at the end): it flushes the writer, then
    marks every window reported before the flush began. Thread-safe.
    """

    def __init__(self, writer: LakeWriter, ledger: CoverageLedger) -> None:
        self.writer = writer
        self.ledger = ledger
        self._pending: list[Fetched] = []
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Windows fetched but not yet marked."""
        with self._lock:
            return len(self._pending)

    def fetched(
        self,
        account: str,
        stream: str,
        partition: str,
        start_ms: int,
        end_ms: int,
        rows: int,
        *,
        next_id: int | None = None,
    ) -> None:
        """Queue a window whose rows have all been given to the writer."""
        window = Fetched(account, stream, partition, start_ms, end_ms, rows, next_id)
        with self._lock:
            self._pending.append(window)

    def commit(self) -> list[WrittenFile]:
        """Flush the writer, then mark the queued windows; return the files the flush wrote."""
        with self._lock:
            windows, self._pending = self._pending, []
        try:
            written = self.writer.flush()
        except BaseException:
            with self._lock:
                self._pending[:0] = windows  # not durable: keep them unmarked
            raise
        by_stream: dict[tuple[str, str], list[WrittenFile]] = {}
        for f in written:
            by_stream.setdefault((f.stream, f.account), []).append(f)
        marks = [(w, by_stream.get((w.stream, w.account), [])) for w in windows]
        self.ledger.mark_all(self.writer.run_id, marks)
        return written
