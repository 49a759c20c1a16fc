"""Which re-read rows are already in the lake unchanged, so look-back reads write nothing new.

Rows are compared by a hash of their API fields, counted per hash: a group of identical rows
(two interest charges alike to the last digit) is written again, whole, only when its count
changed, so the lake's "most copies seen in one fetch" rule for keyless rows stays exact.
Remembered after the rows are durable; forgetting is always safe (rows are written again and
staging deduplicates them).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import orjson

from storage.backends import ensure_dir, make_private
from storage.errors import state_database, writing

_SCHEMA = """
create table if not exists fingerprint (
    account text not null,
    stream text not null,
    partition text not null,
    hash blob not null,
    copies integer not null,
    row_time_ms integer not null,
    primary key (account, stream, partition, hash)
) without rowid;
"""


def row_hash(row: Mapping[str, Any]) -> bytes:
    return hashlib.blake2b(orjson.dumps(row, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


class RowFingerprints:
    """A small SQLite table beside the coverage ledger: (account, stream, partition, hash)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "state" / "fingerprints.sqlite"
        with writing(self.path.parent):
            ensure_dir(self.path.parent)
        with self._guarded():
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            make_private(self.path)
            self._db.execute("pragma journal_mode=wal")
            self._db.executescript(_SCHEMA)

    def _guarded(self) -> AbstractContextManager[None]:
        return state_database(self.path, "the row fingerprints")

    def close(self) -> None:
        self._db.close()

    def unseen(
        self, account: str, stream: str, partition: str, rows: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Mapping[str, Any]], Counter[bytes]]:
        """The rows whose identical-row group is new or changed in count, and all groups seen."""
        hashes = [row_hash(row) for row in rows]
        groups = Counter(hashes)
        with self._guarded():
            known = self._known(account, stream, partition, groups)
        fresh = {h for h, n in groups.items() if known.get(h) != n}
        return [row for row, h in zip(rows, hashes, strict=True) if h in fresh], groups

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside lands together, with one sync to disk (a commit's many windows)."""
        with self._guarded():
            yield from self._in_transaction()

    def _in_transaction(self) -> Iterator[None]:
        self._db.execute("begin")
        try:
            yield
        except BaseException:
            self._db.execute("rollback")
            raise
        self._db.execute("commit")

    def remember(
        self,
        account: str,
        stream: str,
        partition: str,
        groups: Mapping[bytes, int],
        row_time_ms: int,
    ) -> None:
        """Record a window's row groups (call inside ``transaction``)."""
        self._db.executemany(
            "insert into fingerprint values (?, ?, ?, ?, ?, ?) on conflict do update set"
            " copies = excluded.copies, row_time_ms = excluded.row_time_ms",
            ((account, stream, partition, h, n, row_time_ms) for h, n in groups.items()),
        )

    def forget_partition(self, account: str, stream: str, partition: str) -> None:
        self._db.execute(
            "delete from fingerprint where account = ? and stream = ? and partition = ?",
            (account, stream, partition),
        )

    def forget_before(self, account: str, stream: str, before_ms: int) -> None:
        """Drop groups no later run will re-read (older than its look-back)."""
        self._db.execute(
            "delete from fingerprint where account = ? and stream = ? and row_time_ms < ?",
            (account, stream, before_ms),
        )

    def _known(
        self, account: str, stream: str, partition: str, hashes: Iterable[bytes]
    ) -> dict[bytes, int]:
        wanted = list(hashes)
        found: dict[bytes, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(
                    "select hash, copies from fingerprint where account = ? and stream = ?"
                    f" and partition = ? and hash in ({marks})",
                    (account, stream, partition, *chunk),
                ).fetchall()
            )
        return found
