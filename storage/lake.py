"""The raw Parquet lake: atomic, append-only, Hive-partitioned files per stream, account and month.

Layout (the lake contract, see design.md)::

    DATA_DIR/lake/<stream>/account=<name>/month=YYYY-MM/part-<run_id>-<writer>-<n>.parquet
    DATA_DIR/lake/<stream>/account=<name>/month=YYYY-MM/compacted-<generation>.parquet
    DATA_DIR/lake/.compaction/<process>-<generation>/      work area of a compaction (no reader)

The lake can also live on an object store (``MARGIN_ETL_LAKE_URL=s3://bucket/prefix``, see
``storage.backends``): the same layout under the prefix, each file published by one upload that
makes it visible whole or not at all. Compaction is for local lakes only: an object store has no
atomic swap of a month's files, so readers could see a row twice.

Durability rules, which every function here keeps:

* A data file is written under a hidden temporary name in its final directory
  (``.<name>.parquet.<process>.tmp``: never matches ``*.parquet``), fsync'd, renamed into place
  with ``os.replace`` and its directory fsync'd. A reader globbing ``**/*.parquet`` sees whole
  files or nothing.
* Temporary names carry a token of the process that wrote them. ``recover_lake`` removes the
  leftovers of *other* processes only; the data-dir lock (``storage.lock.DataDirLock``) guarantees
  that those processes are dead. Threads of one process never clean up after each other.
* Compaction swaps a whole month directory for its compacted copy in one atomic step (see
  ``compact``), so a reader never sees a row twice, even if the process dies half-way.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Self

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models import AMOUNT, STREAMS, StreamSchema
from storage import crashpoints
from storage.backends import Storage, bind_lake, ensure_dir, fsync_dir, lake_storage, publish_file
from storage.errors import UserError, first_line

__all__ = [
    "COMPACTION_DIR",
    "DEFAULT_MAX_BUFFERED_ROWS",
    "DEFAULT_MAX_ROWS_PER_FILE",
    "LakeRecovery",
    "LakeWriter",
    "SchemaMismatch",
    "WrittenFile",
    "compact",
    "compact_stream",
    "conform",
    "lake_files",
    "lake_root",
    "lake_store",
    "lake_uris",
    "month_dir",
    "month_folder",
    "month_folders",
    "read_stream_table",
    "recover_lake",
    "validate_account_name",
]

DEFAULT_MAX_ROWS_PER_FILE = 100_000
DEFAULT_MAX_BUFFERED_ROWS = 1_000_000
COMPACTION_DIR = ".compaction"
PARQUET_COMPRESSION = "zstd"

# Safe in a path segment and in a Hive key=value (no '/', '=', '%', spaces or leading dot).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TEMP = re.compile(r"^\..+\.(?P<token>[0-9a-f]+)\.tmp$")
_MONTH_KEY = "__month"
# Identifies this process's temporary files and compaction work areas (pids get reused).
_PROCESS_TOKEN = secrets.token_hex(6)


def _new_process_token() -> None:
    global _PROCESS_TOKEN
    _PROCESS_TOKEN = secrets.token_hex(6)


os.register_at_fork(after_in_child=_new_process_token)


def _process_token() -> str:
    return _PROCESS_TOKEN


class SchemaMismatch(ValueError):
    """A batch does not fit its stream's Arrow schema and cannot be cast to it without loss."""


def validate_account_name(name: str) -> str:
    """Return ``name`` if it can name an account's folder in the lake; raise UserError otherwise."""
    if not _NAME.fullmatch(name):
        raise UserError(
            f"account name {name!r} is not usable in the lake: use letters, digits, '_', '-' "
            "or '.', starting with a letter or digit (at most 128 characters)"
        )
    return name


def _validate_run_id(run_id: str) -> str:
    if not _NAME.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r} is not usable in a file name")
    return run_id


def _stream(stream: str) -> StreamSchema:
    try:
        return STREAMS[stream]
    except KeyError:
        raise ValueError(f"unknown stream {stream!r}; known: {', '.join(STREAMS)}") from None


# --- layout -----------------------------------------------------------------------------------


def lake_root(data_dir: str | os.PathLike[str]) -> Path:
    """``DATA_DIR/lake``."""
    return Path(data_dir) / "lake"


def month_folder(stream: str, account: str, month: str) -> str:
    """The Hive folder of one (stream, account, month), relative to the lake's root."""
    _stream(stream)
    validate_account_name(account)
    if not re.fullmatch(r"\d{4}-\d{2}", month):
        raise ValueError(f"month {month!r} is not YYYY-MM")
    return f"{stream}/account={account}/month={month}"


def month_dir(data_dir: str | os.PathLike[str], stream: str, account: str, month: str) -> Path:
    """The month folder of one (stream, account, month) in a local lake."""
    return lake_root(data_dir) / month_folder(stream, account, month)


def lake_store(data_dir: str | os.PathLike[str], lake_url: str | None = None) -> Storage:
    """Where DATA_DIR's lake lives: ``DATA_DIR/lake`` or an object store (``storage.backends``)."""
    return lake_storage(data_dir, lake_url, temp_token=_process_token)


def _require_local(store: Storage, what: str, instead: str = "") -> None:
    if not store.is_local:
        raise UserError(f"{what} works on a local lake only; the lake is at {store.url}{instead}")


def lake_files(
    data_dir: str | os.PathLike[str], stream: str, *, lake_url: str | None = None
) -> list[Path]:
    """Every visible data file of a local lake's stream (what ``**/*.parquet`` matches), sorted.

    Raises UserError when the lake lives on an object store: use ``lake_uris`` there.
    """
    _stream(stream)
    _require_local(lake_store(data_dir, lake_url), "lake_files", " (use lake_uris)")
    return sorted((lake_root(data_dir) / stream).rglob("*.parquet"))


def lake_uris(
    data_dir: str | os.PathLike[str], stream: str, *, lake_url: str | None = None
) -> list[str]:
    """Every visible data file of a stream, wherever the lake lives: absolute paths or URLs."""
    store = lake_store(data_dir, lake_url)
    return [store.uri(key) for key in store.list_files(_stream(stream).name, ".parquet")]


def month_folders(
    data_dir: str | os.PathLike[str], stream: str, *, lake_url: str | None = None
) -> list[tuple[str, str]]:
    """The (account, month) folders of a stream that hold at least one file, sorted."""
    store = lake_store(data_dir, lake_url)
    found = set()
    for key in store.list_files(_stream(stream).name, ".parquet"):
        account, month = key.split("/")[-3:-1]
        found.add((account.removeprefix("account="), month.removeprefix("month=")))
    return sorted(found)


def read_stream_table(
    data_dir: str | os.PathLike[str], stream: str, *, lake_url: str | None = None
) -> pa.Table:
    """All rows of a stream as one table with the stream's schema (for tests and small lakes)."""
    schema = _stream(stream).arrow
    store = lake_store(data_dir, lake_url)
    tables = [_read_key(store, key, stream) for key in store.list_files(stream, ".parquet")]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _read_file(path: Path, stream: str) -> pa.Table:
    # ParquetFile reads one file as it is: no partition columns guessed from the path.
    return conform(stream, pq.ParquetFile(path).read())


def _read_key(store: Storage, key: str, stream: str) -> pa.Table:
    with store.open_input(key) as source:
        return conform(stream, pq.ParquetFile(source).read())


# --- schema -----------------------------------------------------------------------------------


def schema_problem(stream: str, schema: pa.Schema) -> str | None:
    """Why a file of ``schema`` cannot hold rows of ``stream``, or None when it can: no foreign
    column, every required column present, every type one ``conform`` accepts (a column added
    to the stream later may be absent from older files: it reads as null)."""
    target = _stream(stream).arrow
    extra = [name for name in schema.names if name not in target.names]
    missing = [f.name for f in target if f.name not in schema.names and not f.nullable]
    if extra or missing:
        return f"columns missing {missing}, unexpected {extra}"
    for wanted in target:
        if wanted.name in schema.names:
            source = schema.field(wanted.name).type
            if source != wanted.type and not _castable(source, wanted.type):
                return f"{wanted.name} is {source}, not {wanted.type}"
    return None


def untrusted_files(store: Storage, stream: str, keys: Iterable[str]) -> list[tuple[str, str]]:
    """Those of the stream's lake files `keys` that are not whole Parquet files of its schema,
    and why: a reader names them rather than read them (a truncated file, one dropped in from
    elsewhere)."""
    found = []
    for key in keys:
        try:
            with store.open_input(key) as source:
                schema = pq.read_schema(source)
        except (pa.ArrowInvalid, OSError) as exc:
            found.append((key, f"not a whole Parquet file ({first_line(exc)})"))
            continue
        problem = schema_problem(stream, schema)
        if problem is not None:
            found.append((key, f"not a {stream} file of this lake: {problem}"))
    return found


def conform(stream: str, data: pa.Table | pa.RecordBatch) -> pa.Table:
    """Return ``data`` with exactly the stream's schema, casting only where no value can change.

    Accepted casts: any integer or string to an amount (rejected if a digit would be lost),
    narrower integers to ids, string views or dictionaries to strings, timestamps with a time
    zone to UTC milliseconds (rejected if sub-millisecond digits would be lost), all-null columns
    to any nullable type. Floats, naive timestamps and bare integers as times are refused: their
    meaning is ambiguous. Raises SchemaMismatch naming the stream and the column.
    """
    schema = _stream(stream).arrow
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    missing = [name for name in schema.names if name not in table.column_names]
    extra = [name for name in table.column_names if name not in schema.names]
    if missing or extra:
        raise SchemaMismatch(f"{stream}: columns missing {missing}, unexpected {extra}")
    if len(set(table.column_names)) != len(table.column_names):
        raise SchemaMismatch(f"{stream}: duplicate column names {table.column_names}")
    columns = [_conform_column(stream, f, table.column(f.name)) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _conform_column(stream: str, target: pa.Field, column: pa.ChunkedArray) -> pa.ChunkedArray:
    where = f"{stream}.{target.name}"
    source = column.type
    if source != target.type:
        if not _castable(source, target.type):
            raise SchemaMismatch(f"{where}: cannot store {source} as {target.type}")
        try:
            column = pc.cast(column, target.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatch(
                f"{where}: {source} to {target.type} would lose data: {exc}"
            ) from None
    if not target.nullable and column.null_count:
        raise SchemaMismatch(f"{where}: {column.null_count} null value(s) in a required column")
    return column


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    types = pa.types
    if types.is_dictionary(source):
        return _castable(source.value_type, target)
    stringy = types.is_string(source) or types.is_large_string(source)
    stringy = bool(stringy or types.is_string_view(source))
    integer = bool(types.is_integer(source))
    if types.is_null(source):
        return True
    if target == AMOUNT:
        return bool(types.is_decimal(source)) or integer or stringy
    if types.is_timestamp(target):
        return bool(types.is_timestamp(source) and source.tz is not None)
    if types.is_integer(target):
        return integer
    if types.is_string(target):
        return stringy
    return False


def _with_month(stream: str, table: pa.Table) -> pa.Table:
    times = table.column(_stream(stream).time_field)
    return table.append_column(_MONTH_KEY, pc.strftime(times, format="%Y-%m"))


def _split_by_month(stream: str, table: pa.Table) -> Iterator[tuple[str, str, pa.Table]]:
    """Yield (account, month, rows) for each month folder the rows fall in; month in UTC."""
    keyed = _with_month(stream, table)
    months, accounts = keyed.column(_MONTH_KEY), keyed.column("_account")
    if pc.count_distinct(months).as_py() == 1 and pc.count_distinct(accounts).as_py() == 1:
        # the common case (a window inside one month): no grouping, no filtering
        yield validate_account_name(str(accounts[0])), str(months[0]), table
        return
    for key in keyed.group_by(["_account", _MONTH_KEY]).aggregate([]).to_pylist():
        account, month = str(key["_account"]), str(key[_MONTH_KEY])
        mask = pc.and_(
            pc.equal(keyed.column("_account"), account), pc.equal(keyed.column(_MONTH_KEY), month)
        )
        yield validate_account_name(account), month, table.filter(mask)


# --- durable files ----------------------------------------------------------------------------


def _write_atomic(final: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through ``write(file)`` to a temp name, fsync, rename over ``final``, fsync the dir."""
    with publish_file(final, _PROCESS_TOKEN) as handle:
        write(handle)


def _write_table(handle: IO[bytes], table: pa.Table) -> None:
    pq.write_table(table, handle, compression=PARQUET_COMPRESSION)


def _write_parquet(final: Path, table: pa.Table) -> None:
    _write_atomic(final, lambda handle: _write_table(handle, table))


def _write_json(final: Path, value: dict[str, Any]) -> None:
    payload = json.dumps(value, indent=2, sort_keys=True).encode()
    _write_atomic(final, lambda handle: handle.write(payload))


_guards: dict[str, threading.Lock] = {}
_guards_lock = threading.Lock()


@contextmanager
def _folder_guard(directory: Path | str) -> Iterator[None]:
    """Serialise, within this process, file publishing and compaction of one month folder."""
    key = str(directory.absolute()) if isinstance(directory, Path) else directory
    with _guards_lock:
        guard = _guards.setdefault(key, threading.Lock())
    with guard:
        yield


# --- writer -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenFile:
    """A durable data file: fsync'd and renamed into place (or uploaded) before it was returned.

    ``path`` is a local Path, or the object's URL (``s3://bucket/key``) on an object store.
    """

    path: Path | str
    stream: str
    account: str
    month: str
    rows: int

    def __fspath__(self) -> str:
        return str(self.path)


@dataclass
class _Buffer:
    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0

    def take(self, rows: int) -> pa.Table:
        """Remove and return the first ``rows`` rows."""
        merged = pa.concat_tables(self.tables)
        head, rest = merged.slice(0, rows), merged.slice(rows)
        self.tables = [rest] if rest.num_rows else []
        self.rows = rest.num_rows
        return head

    def put_back(self, head: pa.Table) -> None:
        """Undo ``take`` (the file could not be written)."""
        self.tables.insert(0, head)
        self.rows += head.num_rows


class LakeWriter:
    """Buffers validated rows per (stream, account, month) and writes them as Parquet files.

    A file is written when a month folder's buffer reaches ``max_rows_per_file`` rows, when all
    buffers together exceed ``max_buffered_rows`` (the largest is written), and on ``flush()`` or
    ``close()``. Rows are durable only once a call has returned them in its list of
    ``WrittenFile``; mark coverage after ``flush()`` returns, never before. Thread-safe: all
    methods may be called from several threads; ``flush`` returns only once every row buffered
    before it is on disk.

    Used as a context manager, the writer flushes on a clean exit and drops its buffers when the
    block raises (those rows were never marked covered: the next run fetches them again).

    The lake is ``lake_url``, else ``$MARGIN_ETL_LAKE_URL``, else DATA_DIR's (``lake_store``).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        run_id: str,
        *,
        max_rows_per_file: int = DEFAULT_MAX_ROWS_PER_FILE,
        max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS,
        recover: bool = True,
        lake_url: str | None = None,
    ) -> None:
        if max_rows_per_file < 1 or max_buffered_rows < max_rows_per_file:
            raise ValueError("need 1 <= max_rows_per_file <= max_buffered_rows")
        self.data_dir = Path(data_dir)
        self.storage = lake_store(self.data_dir, lake_url)
        self.run_id = _validate_run_id(run_id)
        self.max_rows_per_file = max_rows_per_file
        self.max_buffered_rows = max_buffered_rows
        self._writer_id = secrets.token_hex(4)
        self._sequence = 0
        self._buffers: dict[tuple[str, str, str], _Buffer] = {}
        self._lock = threading.Lock()
        self._closed = False
        if not self.storage.is_local:
            self.storage.check()
            bind_lake(self.data_dir, self.storage)
        elif recover:
            recover_lake(self.data_dir)

    @property
    def buffered_rows(self) -> int:
        """Rows accepted but not yet durable."""
        with self._lock:
            return sum(buffer.rows for buffer in self._buffers.values())

    def write(self, stream: str, data: pa.Table | pa.RecordBatch) -> list[WrittenFile]:
        """Validate and buffer rows; return the files this call had to write (often none)."""
        parts = list(_split_by_month(stream, conform(stream, data)))
        with self._lock:
            self._check_open()
            written = []
            for account, month, rows in parts:
                key = (stream, account, month)
                buffer = self._buffers.setdefault(key, _Buffer())
                buffer.tables.append(rows)
                buffer.rows += rows.num_rows
                while buffer.rows >= self.max_rows_per_file:
                    written.append(self._write_from(key, buffer, self.max_rows_per_file))
            written.extend(self._relieve_memory())
            return written

    def flush(self) -> list[WrittenFile]:
        """Write every buffered row; return the files written, each with its row count."""
        with self._lock:
            return self._flush_all()

    def close(self) -> list[WrittenFile]:
        """Flush and refuse further writes."""
        with self._lock:
            written = self._flush_all()
            self._closed = True
            return written

    def discard(self) -> int:
        """Drop buffered rows without writing them; return how many were dropped."""
        with self._lock:
            dropped = sum(buffer.rows for buffer in self._buffers.values())
            self._buffers.clear()
            self._closed = True
            return dropped

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("LakeWriter is closed")

    def _flush_all(self) -> list[WrittenFile]:
        written = []
        for key, buffer in sorted(self._buffers.items()):
            while buffer.rows:
                written.append(self._write_from(key, buffer, self.max_rows_per_file))
        self._buffers.clear()
        return written

    def _relieve_memory(self) -> list[WrittenFile]:
        written = []
        while sum(b.rows for b in self._buffers.values()) > self.max_buffered_rows:
            key, buffer = max(self._buffers.items(), key=lambda item: item[1].rows)
            written.append(self._write_from(key, buffer, buffer.rows))
        return written

    def _write_from(self, key: tuple[str, str, str], buffer: _Buffer, rows: int) -> WrittenFile:
        """Write the first ``rows`` rows of a buffer; on failure they stay buffered."""
        head = buffer.take(rows)
        try:
            return self._write_file(key, head)
        except BaseException:
            buffer.put_back(head)
            raise

    def _write_file(self, key: tuple[str, str, str], table: pa.Table) -> WrittenFile:
        stream, account, month = key
        folder = month_folder(stream, account, month)
        name = f"part-{self.run_id}-{self._writer_id}-{self._sequence:05d}.parquet"
        self._sequence += 1
        with (
            _folder_guard(self.storage.locate(folder)),
            self.storage.open_output(f"{folder}/{name}") as handle,
        ):
            _write_table(handle, table)
        location = self.storage.locate(f"{folder}/{name}")
        return WrittenFile(location, stream, account, month, table.num_rows)


# --- compaction -------------------------------------------------------------------------------
#
# A month folder L with many files is compacted through a work area
# W = lake/.compaction/<process>-<generation>/, outside every stream's glob:
#   1. W/journal.json names L, its input files and the output file (written atomically first).
#   2. W/next/compacted-<generation>.parquet holds all input rows (temp + fsync + rename).
#   3. The switch: L and W/next are exchanged in one renameat2(RENAME_EXCHANGE) call, so a reader
#      sees either the old files or the compacted one. Where the kernel or file system lacks it,
#      two renames (L -> W/old, W/next -> L): in between the month is briefly absent, never
#      doubled.
#   4. W is deleted (subdirectories first, the journal last).
# Recovery (``recover_lake``) of a dead process's W: the output file inside L means the switch
# happened (delete W); L missing with the output in W/next means a crash between the two
# renames (finish the switch); anything else means L is untouched (delete W).

JOURNAL = "journal.json"


def _step(name: str) -> None:
    """A named step of the compaction protocol; tests replace this to simulate a crash."""
    crashpoints.reach(crashpoints.COMPACTION_STEP)


_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)
if _renameat2 is not None:
    _renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange_dirs(first: Path, second: Path) -> bool:
    """Atomically swap two directories; False if this kernel or file system cannot."""
    if _renameat2 is None:
        return False
    result = _renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(first))


def compact(
    data_dir: str | os.PathLike[str],
    stream: str,
    account: str,
    month: str,
    *,
    lake_url: str | None = None,
) -> WrittenFile | None:
    """Rewrite a month folder's files as one ``compacted-<generation>.parquet``; None if < 2.

    Keeps the exact multiset of rows. Crash-safe at every step (see the protocol above): readers
    never see a row twice, and ``recover_lake`` finishes or undoes an interrupted compaction.
    Call it while holding the data-dir lock; in this process it waits for writers of the same
    folder, and they wait for it. A lake on an object store raises UserError.
    """
    _require_local(lake_store(data_dir, lake_url), "compaction")
    live = month_dir(data_dir, stream, account, month)
    with _folder_guard(live):
        inputs = sorted(path.name for path in live.glob("*.parquet"))
        if len(inputs) < 2:
            return None
        table = pa.concat_tables([_read_file(live / name, stream) for name in inputs])
        generation = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        output = f"compacted-{generation}.parquet"
        work = lake_root(data_dir) / COMPACTION_DIR / f"{_PROCESS_TOKEN}-{generation}"
        ensure_dir(work / "next")
        folder = live.relative_to(lake_root(data_dir)).as_posix()
        # "partition" is the journal's key for the folder: journals of older versions use it too
        journal = {"partition": folder, "inputs": inputs, "output": output}
        _write_json(work / JOURNAL, journal | {"rows": table.num_rows})
        _step("journaled")
        _write_parquet(work / "next" / output, table)
        if pq.read_metadata(work / "next" / output).num_rows != table.num_rows:
            raise RuntimeError(f"compaction of {folder}: row count changed on write")
        _step("prepared")
        _switch(live, work)
        _step("switched")
        _discard_work(work)
        _step("cleaned")
    return WrittenFile(live / output, stream, account, month, table.num_rows)


def compact_stream(
    data_dir: str | os.PathLike[str],
    stream: str,
    *,
    min_files: int = 2,
    lake_url: str | None = None,
) -> list[WrittenFile]:
    """Compact every month folder of a stream with at least ``min_files`` files (local lakes)."""
    _require_local(lake_store(data_dir, lake_url), "compaction")
    written = []
    for account, month in month_folders(data_dir, stream):
        directory = month_dir(data_dir, stream, account, month)
        if len(list(directory.glob("*.parquet"))) >= max(min_files, 2):
            result = compact(data_dir, stream, account, month)
            if result is not None:
                written.append(result)
    return written


def _switch(live: Path, work: Path) -> None:
    following = work / "next"
    if _exchange_dirs(following, live):
        fsync_dir(live.parent)
        fsync_dir(work)
        return
    os.rename(live, work / "old")
    fsync_dir(work)
    fsync_dir(live.parent)
    _step("moved_old")
    os.rename(following, live)
    fsync_dir(live.parent)
    fsync_dir(work)


def _discard_work(work: Path) -> None:
    for sub in ("next", "old"):
        if (work / sub).exists():
            shutil.rmtree(work / sub)
    _step("discarding")
    (work / JOURNAL).unlink(missing_ok=True)
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()
    fsync_dir(work.parent)


def _recover_compaction(lake: Path, work: Path) -> str:
    """Finish or undo one dead process's compaction; return what was done."""
    try:
        journal = json.loads((work / JOURNAL).read_text())
        live = lake / journal["partition"]
        output = str(journal["output"])
    except (OSError, ValueError, KeyError, TypeError):
        _discard_work(work)  # no journal: the month folder was never touched
        return "rolled_back"
    outcome = "rolled_back"
    if (live / output).exists():
        outcome = "committed"
    elif not live.exists() and (work / "next" / output).exists():
        os.rename(work / "next", live)
        fsync_dir(live.parent)
        outcome = "rolled_forward"
    elif not live.exists() and (work / "old").exists():
        os.rename(work / "old", live)
        fsync_dir(live.parent)
    _discard_work(work)
    return outcome


# --- recovery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LakeRecovery:
    """What ``recover_lake`` cleaned up."""

    removed_temp_files: int = 0
    compactions: dict[str, int] = field(default_factory=dict)


def recover_lake(data_dir: str | os.PathLike[str], *, lake_url: str | None = None) -> LakeRecovery:
    """Remove other processes' temp files and finish or undo their interrupted compactions.

    Only safe while holding the data-dir lock (any other process's leftovers are then from a
    dead process); this process's own in-flight files are never touched. An object-store lake
    has nothing to recover: no temporary object is ever written there.
    """
    lake = lake_root(data_dir)
    if not lake_store(data_dir, lake_url).is_local or not lake.is_dir():
        return LakeRecovery()
    outcomes: dict[str, int] = {}
    for work in _foreign_work_dirs(lake):
        outcome = _recover_compaction(lake, work)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    removed = 0
    for temp in _foreign_temp_files(lake):
        temp.unlink(missing_ok=True)
        removed += 1
    return LakeRecovery(removed, outcomes)


def _foreign_work_dirs(lake: Path) -> list[Path]:
    root = lake / COMPACTION_DIR
    if not root.is_dir():
        return []
    mine = f"{_PROCESS_TOKEN}-"
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(mine))


def _foreign_temp_files(lake: Path) -> Iterable[Path]:
    for directory, subdirs, names in os.walk(lake):
        if Path(directory) == lake:
            subdirs[:] = [name for name in subdirs if name != COMPACTION_DIR]
        for name in names:
            match = _TEMP.match(name)
            if match and match["token"] != _PROCESS_TOKEN:
                yield Path(directory) / name
