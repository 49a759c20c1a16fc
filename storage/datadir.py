"""A data directory: the one face of storage, owning its lock, lake, ledger and fingerprints.

Layout (the lake's own layout is in ``storage.lake``)::

    DATA_DIR/.lock                       one writing process at a time (storage.lock)
    DATA_DIR/lake/                       the Parquet lake, or LOCATION naming one on an object store
    DATA_DIR/state/coverage.sqlite       windows fetched, id cursors, runs (storage.coverage)
    DATA_DIR/state/fingerprints.sqlite   rows the lake already holds (storage.fingerprints)
    DATA_DIR/reports/                    the accounting CSVs, unless told elsewhere
    DATA_DIR/accounts/<name>/            one account's own data dir, for scheduled runs

A run opens it with ``open_run``: the lock is taken, the lake recovered and the run recorded;
the ``RunStore`` it yields reads coverage and lands rows, and ``commit`` makes them durable
before it marks their windows covered.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import RowContext, now_ms, record_batches
from storage.backends import Storage, is_object_url, lake_location, open_storage
from storage.coverage import Checkpoint, CoverageLedger, Interval, ledger_path
from storage.errors import UserError
from storage.fingerprints import RowFingerprints, row_hash
from storage.lake import (
    LakeWriter,
    WrittenFile,
    compact_stream,
    lake_store,
    recover_lake,
    validate_account_name,
)
from storage.lock import DataDirLock

__all__ = ["CoverageView", "DataDir", "RunStore"]


class DataDir:
    """DATA_DIR, and the lake it describes (``lake_url``, else its own or the one it records).

    Making one opens nothing; ``open_run`` holds the directory for one run.
    """

    def __init__(self, path: str | os.PathLike[str], *, lake_url: str | None = None) -> None:
        self.path = Path(path)
        self.lake_url = lake_url

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"

    @property
    def reports_dir(self) -> Path:
        """DATA_DIR/reports: where the accounting CSVs go unless told elsewhere."""
        return self.path / "reports"

    def account_dir(self, account: str) -> DataDir:
        """DATA_DIR/accounts/<name>: one account's lake, ledger, warehouse and lock."""
        return DataDir(self.path / "accounts" / validate_account_name(account))

    def lake(self) -> Storage:
        """Where the lake lives: DATA_DIR/lake or an object store (``storage.backends``)."""
        return lake_store(self.path, self.lake_url)

    def has_lake(self) -> bool:
        """A local lake in DATA_DIR, or one on an object store."""
        location = lake_location(self.path, self.lake_url)
        return is_object_url(location) or Path(location).is_dir()

    def report_storage(self, out: str | os.PathLike[str] | None = None) -> Storage:
        """Where report CSVs go: ``out`` (a directory or ``s3://`` URL), else DATA_DIR/reports."""
        return open_storage(out if out is not None else self.reports_dir)

    def compact(self, streams: Iterable[str], *, min_files: int = 2) -> Iterator[WrittenFile]:
        """Rewrite each month folder's small files as one, holding the lock (local lakes)."""
        if not (self.path / "lake").is_dir():
            raise UserError(f"no lake in {self.path}: run `margin-etl export` first")
        with DataDirLock(self.path):
            recover_lake(self.path, lake_url=self.lake_url)
            for stream in streams:
                yield from compact_stream(
                    self.path, stream, min_files=min_files, lake_url=self.lake_url
                )

    @contextmanager
    def read_coverage(self, account: str) -> Iterator[CoverageView]:
        """What earlier runs of ``account`` covered, read-only: no lock is taken and nothing is
        written (a plan may read while a run holds the directory). Empty before a first run."""
        validate_account_name(account)
        if not ledger_path(self.path).is_file():
            yield CoverageView(account, None)
            return
        with CoverageLedger(self.path, read_only=True) as ledger:
            yield CoverageView(account, ledger)

    @contextmanager
    def open_run(self, account: str, run_id: str, params: Mapping[str, Any]) -> Iterator[RunStore]:
        """Hold the directory for one run of ``account``: lock, recover, record, land.

        The run is recorded as completed, with ``RunStore.outcome``, when the block ends, or as
        failed when it raises, and then the rows not yet committed are dropped. Only
        ``RunStore.commit`` marks windows covered.
        """
        validate_account_name(account)
        with DataDirLock(self.path):
            recover_lake(self.path, lake_url=self.lake_url)
            with CoverageLedger(self.path) as ledger:
                ledger.close_abandoned_runs()
                ledger.start_run(run_id, account, params)
                try:
                    with (
                        closing(RowFingerprints(self.path)) as fingerprints,
                        LakeWriter(
                            self.path, run_id, recover=False, lake_url=self.lake_url
                        ) as writer,
                    ):
                        store = RunStore(account, run_id, ledger, fingerprints, writer)
                        yield store
                except BaseException as exc:
                    ledger.finish_run(run_id, "failed", {"error": type(exc).__name__})
                    raise
                ledger.finish_run(run_id, "completed", store.outcome)


@dataclass(frozen=True)
class _Seen:
    """Row groups landed in one window, remembered once they are durable."""

    stream: str
    partition: str
    groups: Mapping[bytes, int]
    row_time_ms: int
    latest_only: bool = False


class CoverageView:
    """The coverage ledger of one account as a reader sees it (``None``: nothing covered yet)."""

    def __init__(self, account: str, ledger: CoverageLedger | None) -> None:
        self.account = account
        self._ledger = ledger

    def high_water(self, stream: str, partition: str) -> int | None:
        if self._ledger is None:
            return None
        return self._ledger.high_water(self.account, stream, partition)

    def gaps(self, stream: str, partition: str, start_ms: int, end_ms: int) -> list[Interval]:
        if self._ledger is None:
            return [(start_ms, end_ms)] if end_ms > start_ms else []
        return self._ledger.gaps(self.account, stream, partition, start_ms, end_ms)

    def cursor(self, stream: str, partition: str) -> int | None:
        if self._ledger is None:
            return None
        return self._ledger.cursor(self.account, stream, partition)

    def partitions(self, stream: str) -> list[str]:
        """The partitions of a stream that earlier runs covered."""
        if self._ledger is None:
            return []
        return self._ledger.partitions(self.account, stream)

    def windows(self, stream: str, partition: str) -> list[tuple[int, int, int]]:
        """Every window marked fetched, as (start_ms, end_ms, rows read), oldest first."""
        if self._ledger is None:
            return []
        marks = self._ledger.marks(self.account, stream, partition)
        return [(m.start_ms, m.end_ms, m.rows) for m in marks]


class RunStore(CoverageView):
    """One run's hold on its data dir: the coverage it reads, the rows it lands and commits."""

    def __init__(
        self,
        account: str,
        run_id: str,
        ledger: CoverageLedger,
        fingerprints: RowFingerprints,
        writer: LakeWriter,
    ) -> None:
        super().__init__(account, ledger)
        self.run_id = run_id
        self.files_written = 0
        self.outcome: dict[str, Any] = {}  # recorded with the run when it completes
        self._fingerprints = fingerprints
        self._writer = writer
        self._checkpoint = Checkpoint(writer, ledger)
        self._seen: list[_Seen] = []

    # -- landing -------------------------------------------------------------------------------
    @property
    def buffered_rows(self) -> int:
        """Rows landed but not yet durable."""
        return self._writer.buffered_rows

    def land(
        self,
        stream: str,
        partition: str,
        api: str,
        rows: Sequence[Mapping[str, Any]],
        window: Interval,
        *,
        next_id: int | None = None,
    ) -> int:
        """Write a fetched window's rows that the lake lacks; queue the window; count the new."""
        fresh, groups = self._fingerprints.unseen(self.account, stream, partition, rows)
        context = RowContext(self.account, self.run_id, now_ms(), api, partition)
        for batch in record_batches(stream, fresh, context):
            self._writer.write(stream, batch)
        start_ms, end_ms = window
        self._checkpoint.fetched(
            self.account, stream, partition, start_ms, end_ms, len(rows), next_id=next_id
        )
        self._seen.append(_Seen(stream, partition, groups, end_ms))
        return len(fresh)

    def changed(self, stream: str, label: str, state: Mapping[str, Any], at_ms: int) -> bool:
        """Whether ``state`` differs from the last one committed under ``label`` (only the
        latest is kept)."""
        digest = {"state": row_hash(state).hex()}
        fresh, groups = self._fingerprints.unseen(self.account, stream, label, [digest])
        if fresh:
            self._seen.append(_Seen(stream, label, groups, at_ms, latest_only=True))
        return bool(fresh)

    def commit(self, *, forget_before_ms: int, keep: Collection[str] = ()) -> int:
        """Make the landed rows durable, mark their windows, then remember their fingerprints.

        Fingerprints older than ``forget_before_ms`` are dropped (no later run re-reads them),
        except for the streams in ``keep``. Returns how many files the flush wrote.
        """
        files = len(self._checkpoint.commit())
        self.files_written += files
        seen, self._seen = self._seen, []
        with self._fingerprints.transaction():
            for item in seen:
                if item.latest_only:
                    self._fingerprints.forget_partition(self.account, item.stream, item.partition)
                self._fingerprints.remember(
                    self.account, item.stream, item.partition, item.groups, item.row_time_ms
                )
            for stream in {item.stream for item in seen if item.stream not in keep}:
                self._fingerprints.forget_before(self.account, stream, forget_before_ms)
        return files
