"""Build the DuckDB warehouse from the model files under sql/, test it, and read its breaks.

Models are SQL files, one per model, named for what they hold (`staging/stg_*.sql`,
`intermediate/int_*.sql`, `marts/*.sql`). A model depends on the models it reads: the
relations its `from` and `join` clauses name (and a table macro's first argument there, as in
`from latest_version(renamed, ...)`); the build order is derived from that. A file may declare
`-- materialized: view|table`; otherwise it is a table (staging included: a stream's Parquet
is read and deduplicated once, not by every reader). Its `-- test:` lines declare its data tests
(sql/data_tests.py). The lake's streams come in as `src_<stream>` views
built from `models.schemas`, and `recon_settings` holds the build's parameters. What the
exports read (the coverage ledger, DATA_DIR/state/coverage.sqlite) comes in as `src_coverage`
(one row per window read completely) and `src_export_runs` (one row per run, with the
`--since` it was asked for), and `src_stream_retention` says how far back the exchange serves
each stream: what lets the reconciliation say from when each figure is verified.

A lake on an object store (`MARGIN_ETL_LAKE_URL`, see storage/backends.py) is read through its
pyarrow file system registered with DuckDB (no httpfs extension needed), and its `src_<stream>`
are tables instead: the warehouse then opens with plain `duckdb` and no S3 setup.
"""

from __future__ import annotations

import graphlib
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from connectors import SPECS
from models import STREAMS, StreamSchema
from sql.data_tests import (
    SAMPLE_ROWS,
    DataTest,
    DataTestDeclarationError,
    DataTestResult,
    declared_tests,
    run_data_tests,
    singular_tests,
)
from sql.in_place import (
    CUTS,
    KEPT,
    LOOK_BACK,
    Relation,
    create_kept,
    literal,
    of_accounts,
    replace_rows,
    shadow,
    since_reads,
    table_relation,
    views_between,
    write_cuts,
)
from sql.increments import (
    ALL_ACCOUNTS,
    FAILURES_TABLE,
    Failure,
    Inputs,
    account_files,
    account_inputs,
    account_of,
    failures_by_account,
    fingerprint,
    kept_inputs,
    kept_results,
    record,
    same_tables,
    vacuum_now,
)
from storage import (
    DataDir,
    FileVersion,
    LedgerRow,
    LocalStorage,
    Storage,
    ensure_dir,
    first_line,
    make_private,
    read_ledger,
    untrusted_files,
)

SQL_DIR = Path(__file__).resolve().parent
MACROS_FILE = SQL_DIR / "macros.sql"
LAKE_DIR = "lake"  # a local lake's folder in DATA_DIR
# the chart of accounts the journal books into: DATA_DIR's own, else this default
CHART_FILE = "chart_of_accounts.csv"
WAREHOUSE_NAME = "warehouse.duckdb"
# the covered stretch per account and stream: a rebuild compares where each starts
COVERAGE = "int_stream_coverage"
DATA_TESTS_TABLE = "build_data_tests"  # how the build's data tests went, one row per test
# model folders and how their models are materialized unless a file says otherwise
LAYERS: dict[str, str] = {"staging": "table", "intermediate": "table", "marts": "table"}
# partition keys the lake's paths carry; kept as text (an account named "2024" stays a name)
HIVE_KEYS = ("account", "month")
# a comment or a string literal: never a reference to a relation
_COMMENT_OR_STRING = re.compile(r"--[^\n]*|'(?:[^']|'')*'")
# `from x` / `join x`, and `from macro(x, ...)`: x is a relation the query reads
_READ_RELATION = re.compile(r'\b(?:from|join)\s+"?(\w+)"?(?:\s*\(\s*"?(\w+))?', re.IGNORECASE)

# the build's parameters, as `recon_settings` holds them (hours)
DEFAULT_LATE_WINDOW_HOURS = 24
DEFAULT_PENDING_MAX_AGE_HOURS = 72
_MS_PER_DAY = 86_400_000
# the coverage ledger's windows and runs, as storage.read_ledger gives them
Ledger = tuple[list[LedgerRow], list[LedgerRow]]

_DUCKDB_TYPES: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
    (pa.types.is_int64, "BIGINT"),
    (pa.types.is_string, "VARCHAR"),
    (pa.types.is_boolean, "BOOLEAN"),
)


class BuildError(Exception):
    """A model (or the lake it reads) could not be built; the previous warehouse is kept."""


class WarehouseError(Exception):
    """The warehouse cannot answer: missing, or asked something it does not hold."""


@dataclass(frozen=True)
class Model:
    """One SQL model file."""

    name: str
    path: Path
    materialized: str
    sql: str
    depends_on: frozenset[str]
    tests: tuple[DataTest, ...]
    # "account": each row is one account's, built from that account's rows alone; ALL_ACCOUNTS:
    # built from every account's rows (sql/increments.py)
    scope: str = "account"
    # `-- grain: time(<column>)`: each row, at its <column>, comes from the rows of its inputs
    # near that time only, so a rebuild since a cut keeps the rows before it (sql/in_place.py)
    grain: str | None = None
    # `-- grain: time(<column>), key(<key>)`: rows of one <key> come from its input rows
    # whatever their times; a rebuild makes again every key it gives a row of (sql/in_place.py)
    grain_key: str | None = None
    # `-- keeps: <column> <type>, ...`: the columns of its own rows before the cut it reads as
    # `kept_<name>` (typed here for a whole build, where there are none)
    keeps: str | None = None


@dataclass(frozen=True)
class BuildResult:
    """What a build made and how its data tests went."""

    warehouse: Path
    models: tuple[str, ...]
    tests: tuple[DataTestResult, ...]
    seconds: float
    # the accounts rebuilt into the warehouse kept from the last build; None: built whole
    rebuilt: tuple[str, ...] | None = None

    @property
    def failures(self) -> tuple[DataTestResult, ...]:
        return tuple(t for t in self.tests if not t.passed)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Break:
    """A reconciliation row that does not match (a row of `recon_breaks`)."""

    account: str
    kind: str
    asset: str
    status: str
    interval_kind: str
    interval_start: datetime | None
    interval_end: datetime
    expected: Decimal | None
    actual: Decimal | None
    difference: Decimal
    pending_rows: int
    terms: str
    break_id: str | None = None
    cause_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Cause:
    """A root cause (a row of `recon_causes`): what went wrong once, and how many break rows
    of `recon_breaks` it explains."""

    cause_id: str
    account: str
    status: str
    cause_kind: str
    assets: str
    happened_at: datetime | None
    description: str
    symptoms: int


def read_relations(sql: str) -> frozenset[str]:
    """The relations a query reads: those its `from` and `join` clauses name (CTEs included)."""
    code = _COMMENT_OR_STRING.sub(" ", sql)
    return frozenset(name for match in _READ_RELATION.findall(code) for name in match if name)


def _materialization(sql: str, layer: str) -> str:
    declared = re.search(r"^--\s*materialized:\s*(view|table)\s*$", sql, flags=re.MULTILINE)
    return declared.group(1) if declared else LAYERS[layer]


def _scope(sql: str, path: Path) -> str:
    declared = re.search(r"^--\s*scope:\s*(.+?)\s*$", sql, flags=re.MULTILINE)
    if declared is None:
        return "account"
    if declared.group(1) != ALL_ACCOUNTS:
        raise BuildError(
            f"{path}: unknown `-- scope: {declared.group(1)}` (the one scope is `{ALL_ACCOUNTS}`)"
        )
    return ALL_ACCOUNTS


def _grain(sql: str, path: Path) -> tuple[str | None, str | None]:
    """A model's grain: its time column and its key column, each None when not declared."""
    declared = re.search(r"^--\s*grain:\s*(.+?)\s*$", sql, flags=re.MULTILINE)
    if declared is None:
        return None, None
    grain = re.fullmatch(r"time\((\w+)\)(?:,\s*key\((\w+)\))?", declared.group(1))
    if grain is None:
        raise BuildError(
            f"{path}: unknown `-- grain: {declared.group(1)}`"
            " (say `time(<column>)` or `time(<column>), key(<column>)`)"
        )
    return grain.group(1), grain.group(2)


def _keeps(sql: str) -> str | None:
    declared = re.findall(r"^--\s*keeps:\s*(.+?)\s*$", sql, flags=re.MULTILINE)
    return ", ".join(declared) if declared else None


def _kept_inputs(reads: frozenset[str]) -> frozenset[str]:
    """The models whose kept rows a model reads (`kept_<model>`)."""
    return frozenset(r.removeprefix(KEPT) for r in reads if r.startswith(KEPT))


def _check_kept(model: Model, models: dict[str, Model]) -> None:
    """What a model reads of kept rows and cuts, it may: a table reading grained models'."""
    reads = read_relations(model.sql)
    if not (_kept_inputs(reads) or CUTS in reads):
        return
    if model.materialized != "table" or model.grain is None:
        raise BuildError(f"{model.path}: only a grained table reads {CUTS} or {KEPT}<model>")
    for name in _kept_inputs(reads):
        if name not in models or models[name].grain is None:
            raise BuildError(f"{model.path}: reads {KEPT}{name}, but {name} is no grained model")
        if name == model.name and model.keeps is None:
            raise BuildError(f"{model.path}: reads its own kept rows: declare `-- keeps:`")


def _read_models(sql_dir: Path) -> dict[str, Model]:
    files = {
        p.stem: (layer, p) for layer in LAYERS for p in sorted((sql_dir / layer).glob("*.sql"))
    }
    singular = singular_tests(sql_dir / "tests")
    if unknown := {t.model for t in singular} - files.keys():
        raise DataTestDeclarationError(f"sql/tests/ tests models that do not exist: {unknown}")
    models: dict[str, Model] = {}
    for name, (layer, path) in files.items():
        sql = path.read_text().strip().rstrip(";")
        reads = read_relations(sql)
        depends_on = (reads | _kept_inputs(reads)) & files.keys() - {name}
        tests = declared_tests(name, sql) + tuple(t for t in singular if t.model == name)
        grain, grain_key = _grain(sql, path)
        models[name] = Model(
            name,
            path,
            _materialization(sql, layer),
            sql,
            depends_on,
            tests,
            _scope(sql, path),
            grain=grain,
            grain_key=grain_key,
            keeps=_keeps(sql),
        )
    for model in models.values():
        _check_kept(model, models)
        narrower = {d for d in model.depends_on if models[d].scope != model.scope}
        if model.scope == ALL_ACCOUNTS and narrower:
            raise BuildError(
                f"{model.name} is built from all accounts but reads {sorted(narrower)}"
            )
    return models


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Every model file, in an order where each comes after the models it reads."""
    try:
        models = _read_models(sql_dir)
        order = graphlib.TopologicalSorter({m.name: m.depends_on for m in models.values()})
        return [models[name] for name in order.static_order()]
    except DataTestDeclarationError as exc:
        raise BuildError(str(exc)) from exc
    except graphlib.CycleError as exc:
        raise BuildError(f"models depend on each other in a cycle: {exc.args[1]}") from exc


def data_tests(models: list[Model]) -> tuple[DataTest, ...]:
    """Every model's data tests, in build order."""
    return tuple(test for model in models for test in model.tests)


def _duckdb_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    for matches, name in _DUCKDB_TYPES:
        if matches(arrow_type):
            return name
    raise BuildError(f"no DuckDB type declared for Arrow type {arrow_type}")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _empty_relation(stream: StreamSchema) -> str:
    """The stream's columns, typed as models.schemas declares them, with no rows."""
    columns = [
        f"cast(null as {_duckdb_type(f.type)}) as {_quote(f.name)}" for f in stream.arrow
    ] + [f"cast(null as VARCHAR) as {key}" for key in HIVE_KEYS]
    return "select " + ", ".join(columns) + " where false"


def source_sql(
    stream: StreamSchema,
    lake: Path | Storage,
    accounts: frozenset[str] | None = None,
    files: list[str] | None = None,
    *,
    by_file: bool = False,
) -> str:
    """The `src_<stream>` view: every raw row of the stream in the lake, every version (of
    the `accounts` only, when given; `by_file`: of the `files` only).

    With no files yet the view is the empty typed relation, so every model still builds;
    otherwise the Parquet files are read in place and unioned by name with that relation, so
    a column missing from all files still exists, typed. `lake` is a local directory or a
    Storage (an object store's must be registered with the connection: `register_with`).
    `files`: the stream's files as the build listed them (else they are listed here).
    """
    store = lake if isinstance(lake, Storage) else LocalStorage(lake)
    if files is None:
        files = store.list_files(stream.name, ".parquet")
    if accounts is not None:
        files = [key for key in files if account_of(key) in accounts]
    if not files:
        return _empty_relation(stream)
    keys = {part.split("=", 1)[0] for part in files[0].split("/")[1:] if "=" in part}
    hive_types = ", ".join(f"'{k}': VARCHAR" for k in HIVE_KEYS if k in keys)
    # a local lake (always DATA_DIR/lake) by a path relative to DATA_DIR, which every
    # connection sets as its file_search_path: the data dir can be moved or copied
    if by_file:
        globs = files
    elif accounts is None:
        globs = [f"{stream.name}/**/*.parquet"]
    else:
        folders = {f"{stream.name}/account={account_of(key)}" for key in files}
        globs = [f"{folder}/**/*.parquet" for folder in sorted(folders)]
    patterns = ", ".join(literal(_lake_path(store, glob)) for glob in globs)
    return (
        f"select * from read_parquet([{patterns}], hive_partitioning = true, "
        f"union_by_name = true, hive_types = {{{hive_types}}}, hive_types_autocast = false)\n"
        f"union all by name\n{_empty_relation(stream)}"
    )


def _create(con: duckdb.DuckDBPyConnection, name: str, materialized: str, sql: str) -> None:
    try:
        con.execute(f"create or replace {materialized} {name} as\n{sql}")
    except duckdb.Error as exc:
        raise BuildError(f"{name}: {exc}") from exc


def _refuse_untrusted(lake: ListedLake, accounts: frozenset[str] | None = None) -> None:
    """Stop before reading a lake file that is not a whole file of its stream: its rows would
    be read silently wrong or not at all. BuildError names the first one and counts the rest.
    With `accounts`, only their files are read (the others' are as the last build found them)."""
    found = [
        untrusted
        for stream in STREAMS
        for untrusted in untrusted_files(lake.store, stream, lake.files(stream, accounts))
    ]
    if found:
        key, why = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise BuildError(
            f"lake file {lake.store.locate(key)} is {why}{more}: restore it, or move it out of"
            " the lake and export its month again into a new data directory"
        )


def _load_chart(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """The `chart_of_accounts` table: DATA_DIR/chart_of_accounts.csv if there is one."""
    own = data_dir / CHART_FILE
    chart = own if own.is_file() else SQL_DIR / CHART_FILE
    try:
        con.execute(
            "create or replace table chart_of_accounts as select * from read_csv(?, header = true,"
            " columns = {'role': 'VARCHAR', 'account_code': 'VARCHAR', 'account_name': 'VARCHAR',"
            " 'account_type': 'VARCHAR'})",
            [str(chart)],
        )
    except duckdb.Error as exc:
        raise BuildError(f"{chart}: {exc}") from exc


@dataclass(frozen=True)
class Settings:
    """The build's parameters (`recon_settings`): how long rows may still arrive late, and how
    long a PENDING row may excuse its own amount before it is a break."""

    late_window_hours: int = DEFAULT_LATE_WINDOW_HOURS
    pending_max_age_hours: int = DEFAULT_PENDING_MAX_AGE_HOURS

    def check(self) -> None:
        for name, hours in (
            ("late_window_hours", self.late_window_hours),
            ("pending_max_age_hours", self.pending_max_age_hours),
        ):
            if hours < 0:
                raise ValueError(f"{name} must be >= 0")

    def sql(self) -> str:
        return (
            f"select {self.late_window_hours} as late_window_hours, "
            f"{self.pending_max_age_hours} as pending_max_age_hours"
        )


COVERAGE_COLUMNS = (
    "account VARCHAR, stream VARCHAR, partition_key VARCHAR, start_at TIMESTAMP, "
    "end_at TIMESTAMP, window_rows BIGINT, run_id VARCHAR, marked_at TIMESTAMP"
)
RUN_COLUMNS = (
    "account VARCHAR, run_id VARCHAR, status VARCHAR, since_at TIMESTAMP, started_at TIMESTAMP"
)


def _load_coverage(
    con: duckdb.DuckDBPyConnection,
    ledger: Ledger,
    accounts: frozenset[str] | None,
    *,
    into: str | None = None,
) -> tuple[str, ...]:
    """`src_coverage`, `src_export_runs` (of the `accounts` only, when given) and
    `src_stream_retention` (times in ms made naive UTC timestamps, as the staging models' are).
    `into` a schema that holds them already: the accounts' rows of the first two are replaced,
    and the retention is kept. Returns the names of the first two."""
    windows, runs = (
        [row for row in rows if accounts is None or row[0] in accounts] for rows in ledger
    )
    tables = {"src_coverage": COVERAGE_COLUMNS, "src_export_runs": RUN_COLUMNS}
    for table, columns in tables.items():
        if into is None:
            con.execute(f"create or replace table {table} ({columns})")
        else:
            con.execute(
                f"delete from {into}.{table} where list_contains(?, account)",
                [sorted(accounts or ())],
            )
    schema = f"{into}." if into else ""
    as_time = "make_timestamp(cast(? as bigint) * 1000)"
    if windows:
        con.executemany(
            f"insert into {schema}src_coverage values"
            f" (?, ?, ?, {as_time}, {as_time}, ?, ?, {as_time})",
            windows,
        )
    if runs:
        con.executemany(
            f"insert into {schema}src_export_runs values (?, ?, ?, {as_time}, {as_time})", runs
        )
    if into is None:
        _load_retention(con)
    return tuple(tables)


def _load_retention(con: duckdb.DuckDBPyConnection) -> None:
    """`src_stream_retention`: how far back the exchange serves each stream (days)."""
    retention = sorted(
        {
            (s.stream, s.retention_ms // _MS_PER_DAY)
            for s in SPECS.values()
            if s.stream and s.retention_ms
        }
    )
    con.execute(
        "create or replace table src_stream_retention (stream VARCHAR, retention_days BIGINT)"
    )
    con.executemany("insert into src_stream_retention values (?, ?)", retention)


@dataclass(frozen=True)
class ListedLake:
    """The lake with its files, listed once per build: the fingerprint of what changed, the
    check of the files and the sources all read this one listing, not the folders again."""

    store: Storage
    versions: dict[str, list[FileVersion]]  # per stream

    @classmethod
    def of(cls, store: Storage) -> ListedLake:
        return cls(store, {s: store.list_versions(s, ".parquet") for s in STREAMS})

    def files(self, stream: str, accounts: frozenset[str] | None = None) -> list[str]:
        """The stream's file keys (of the `accounts` only, when given)."""
        keys = [version.key for version in self.versions[stream]]
        return keys if accounts is None else [k for k in keys if account_of(k) in accounts]


def _create_sources(con: duckdb.DuckDBPyConnection, lake: ListedLake) -> None:
    # a view over an object store would need its file system registered by every reader
    sources = "view" if lake.store.is_local else "table"
    for stream in STREAMS.values():
        files = lake.files(stream.name)
        _create(con, f"src_{stream.name}", sources, source_sql(stream, lake.store, None, files))


def _build_into(
    con: duckdb.DuckDBPyConnection,
    lake: ListedLake,
    settings: Settings,
    ledger: Ledger,
    models: list[Model],
) -> None:
    """Every model, of every account."""
    lake.store.register_with(con)
    _create_sources(con, lake)
    _create(con, "recon_settings", "table", settings.sql())
    con.execute(MACROS_FILE.read_text())
    _load_coverage(con, ledger, None)
    write_cuts(con, {})  # none: every account whole
    by_name = {m.name: m for m in models}
    for model in models:
        create_kept(con, None, model.name, _kept_of(model, by_name))
        _create(con, model.name, model.materialized, model.sql)


def build(
    data_dir: Path,
    late_window_hours: int = DEFAULT_LATE_WINDOW_HOURS,
    *,
    pending_max_age_hours: int = DEFAULT_PENDING_MAX_AGE_HOURS,
    lake_url: str | None = None,
    full: bool = False,
) -> BuildResult:
    """Build DATA_DIR/warehouse.duckdb from DATA_DIR's lake, then run the data tests.

    The lake is DATA_DIR/lake unless `lake_url`, `$MARGIN_ETL_LAKE_URL` or DATA_DIR's record
    puts it on an object store (storage/backends.py). The coverage ledger is read from DATA_DIR.
    `late_window_hours`: a difference in an interval ending this close to the account's newest
    fetch is provisional (rows may still arrive); `pending_max_age_hours`: how long a PENDING
    row excuses its own amount before it is a break.

    A warehouse built from the same model files and settings is built on: only the accounts
    whose lake files or coverage changed since are rebuilt (sql/increments.py), and nothing is
    written when none did. Otherwise, or with `full`, the whole warehouse is built into a
    temporary file renamed over the old one. Either way a failed build (BuildError) leaves
    the previous warehouse whole. Failed data tests do not stop the build: they are in the
    result (`failures`, each with a message naming model, rule, rows).
    """
    settings = Settings(late_window_hours, pending_max_age_hours)
    settings.check()
    started = time.perf_counter()
    data_dir = Path(data_dir).resolve()
    ensure_dir(data_dir)
    store = DataDir(data_dir, lake_url=lake_url).lake()
    store.check()
    lake = ListedLake.of(store)
    ledger = read_ledger(data_dir)
    models = load_models()
    inputs = _inputs(data_dir, lake, settings, ledger)
    target = data_dir / WAREHOUSE_NAME
    kept = None if full else kept_inputs(target)
    rebuilt: tuple[str, ...] | None = None
    results = None
    if kept is not None and kept.fingerprint == inputs.fingerprint:
        changed = inputs.changed_since(kept)
        _refuse_untrusted(lake, changed)
        cuts = _cuts(data_dir, lake, kept, inputs, changed)
        if _builds_on(kept, inputs, cuts):
            results = _rebuild_accounts(data_dir, lake, ledger, models, inputs, cuts)
            rebuilt = tuple(sorted(changed))
    if results is None:
        _refuse_untrusted(lake)
        results = _build_whole(data_dir, lake, settings, ledger, models, inputs)
        rebuilt = None
    return BuildResult(
        target, tuple(m.name for m in models), results, time.perf_counter() - started, rebuilt
    )


def _builds_on(kept: Inputs, inputs: Inputs, cuts: dict[str, datetime | str]) -> bool:
    """Whether a build can keep the warehouse: some account unchanged, or some changed one
    with rows to keep before its cut (when every account is built whole, a whole build
    renamed in costs less)."""
    every = inputs.accounts.keys() | kept.accounts.keys()
    return cuts.keys() < every or any(cut != _WHOLE for cut in cuts.values())


_WHOLE = "-infinity"  # the cut of an account rebuilt whole
_NONE = "infinity"  # the cut of an account none of whose time-grained rows changed


def _cuts(
    data_dir: Path, lake: ListedLake, kept: Inputs, inputs: Inputs, changed: frozenset[str]
) -> dict[str, datetime | str]:
    """Per changed account, where a rebuild of it starts: its earliest row in a lake file the
    warehouse was not built from (a file gone or rewritten: its month's start), less
    LOOK_BACK. Whole for an account new or gone; none when only its coverage changed."""
    cuts: dict[str, datetime | str] = {}
    added: dict[str, list[str]] = {}
    starts: dict[str, list[datetime]] = {}
    for account in sorted(changed):
        before, now = kept.files.get(account), inputs.files.get(account)
        if before is None or now is None:
            cuts[account] = _WHOLE
            continue
        gone = {f.key for f in before - now}
        starts[account] = [_month_start(key) for key in gone]
        for file in now - before:
            if file.key not in gone:
                added.setdefault(file.key.split("/", 1)[0], []).append(file.key)
    for account, earliest in _earliest_rows(data_dir, lake, added).items():
        starts.setdefault(account, []).append(earliest)
    for account, times in starts.items():
        cuts[account] = min(times) - LOOK_BACK if times else _NONE
    return cuts


def _month_start(key: str) -> datetime:
    year, month = _month_of(key).split("-")
    return datetime(int(year), int(month), 1)


def _earliest_rows(
    data_dir: Path, lake: ListedLake, keys: dict[str, list[str]]
) -> dict[str, datetime]:
    """Per account, the earliest row time (naive UTC) in the given files of each stream."""
    earliest: dict[str, datetime] = {}
    if not keys:
        return earliest
    with duckdb.connect() as con:
        _search_data_dir(con, data_dir)
        lake.store.register_with(con)
        for stream, files in keys.items():
            paths = ", ".join(literal(_lake_path(lake.store, key)) for key in files)
            time = _quote(STREAMS[stream].time_field)
            for account, at in con.execute(
                f"select account, min(timezone('UTC', {time})) from read_parquet([{paths}],"
                " hive_partitioning = true, hive_types = {'account': VARCHAR},"
                " union_by_name = true) group by account"
            ).fetchall():
                if at is not None:
                    earliest[str(account)] = min(at, earliest.get(str(account), at))
    return earliest


def _lake_path(store: Storage, key: str) -> str:
    """Where a lake key is read from: a local lake's by a path relative to DATA_DIR."""
    return f"{LAKE_DIR}/{key}" if store.is_local else store.uri(key)


def _inputs(data_dir: Path, lake: ListedLake, settings: Settings, ledger: Ledger) -> Inputs:
    own_chart = data_dir / CHART_FILE
    chart = own_chart if own_chart.is_file() else SQL_DIR / CHART_FILE
    store = lake.store
    files = [file for versions in lake.versions.values() for file in versions]
    return Inputs(
        # a local lake is the data dir's own, wherever it is moved; an object store's is named
        fingerprint([settings.sql(), chart.read_text(), "" if store.is_local else store.uri()]),
        account_inputs(files, [*ledger[0], *ledger[1]]),
        account_files(files),
    )


def _open_build(path: Path, data_dir: Path) -> duckdb.DuckDBPyConnection:
    """A connection to a warehouse file being built, set up as every build is."""
    con = duckdb.connect(str(path))
    try:
        con.execute("set enable_progress_bar = false")
        _bound_resources(con, data_dir)
        _search_data_dir(con, data_dir)
        _load_chart(con, data_dir)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def _tested_build(
    path: Path,
    data_dir: Path,
    lake: ListedLake,
    settings: Settings,
    ledger: Ledger,
    models: list[Model],
) -> Iterator[tuple[duckdb.DuckDBPyConnection, tuple[DataTestResult, ...], list[Failure]]]:
    """Every model built into the database file at `path` and the data tests run: its
    connection, the results and the failures by account, open for the caller to add to;
    checkpointed and closed after."""
    con = _open_build(path, data_dir)
    try:
        _build_into(con, lake, settings, ledger, models)
        results = run_data_tests(con, data_tests(models))
        yield con, results, failures_by_account(con, results, SAMPLE_ROWS)
        con.execute("checkpoint")
    finally:
        con.close()


def _build_whole(
    data_dir: Path,
    lake: ListedLake,
    settings: Settings,
    ledger: Ledger,
    models: list[Model],
    inputs: Inputs,
) -> tuple[DataTestResult, ...]:
    """Every account, into a temporary file renamed over the warehouse when it is whole."""
    temp = data_dir / f".{WAREHOUSE_NAME}.{uuid.uuid4().hex}.tmp"
    try:
        with _tested_build(temp, data_dir, lake, settings, ledger, models) as built:
            con, results, failures = built
            record(con, inputs, failures, _all_accounts(models))
            _record_data_tests(con, results)
        make_private(temp)
        os.replace(temp, data_dir / WAREHOUSE_NAME)
    finally:
        _remove_database(temp)
    return results


def _rebuild_accounts(
    data_dir: Path,
    lake: ListedLake,
    ledger: Ledger,
    models: list[Model],
    inputs: Inputs,
    cuts: dict[str, datetime | str],
) -> tuple[DataTestResult, ...] | None:
    """Rebuild the accounts of `cuts` in the warehouse itself, each since its cut, in one
    transaction (nothing is written when there are none; sql/in_place.py). None when that
    cannot stand for a whole build: an all-accounts model changed, a failed test names no
    account, or a reader holds the warehouse open."""
    target = data_dir / WAREHOUSE_NAME
    if not cuts:
        with connect(data_dir) as con:
            return kept_results(con, data_tests(models), SAMPLE_ROWS)
    try:
        con = duckdb.connect(str(target))
    except (duckdb.IOException, duckdb.ConnectionException):
        # a reader has it open (another process holds its lock, or this one a read-only
        # connection): the whole build's rename does not disturb it
        return None
    try:
        con.execute("set enable_progress_bar = false")
        _bound_resources(con, data_dir)
        _search_data_dir(con, data_dir)
        lake.store.register_with(con)
        con.execute("begin transaction")
        try:
            results = _rebuild_in_transaction(con, lake, ledger, models, inputs, cuts)
            con.execute("commit" if results is not None else "rollback")
        except BaseException as exc:
            con.execute("rollback")
            if isinstance(exc, duckdb.Error | ValueError):
                accounts = ", ".join(sorted(cuts))
                raise BuildError(f"rebuilding {accounts}: {first_line(exc)}") from exc
            raise
        if results is not None:
            con.execute("checkpoint")
        return results
    finally:
        con.close()


def _rebuild_in_transaction(
    con: duckdb.DuckDBPyConnection,
    lake: ListedLake,
    ledger: Ledger,
    models: list[Model],
    inputs: Inputs,
    cuts: dict[str, datetime | str],
) -> tuple[DataTestResult, ...] | None:
    catalog = str(_one(con, "select current_database()"))
    accounts = frozenset(cuts)
    coverage = _load_coverage(con, ledger, accounts, into=f"{catalog}.main")
    by_name = {m.name: m for m in models}
    cuts = cuts | dict.fromkeys(_coverage_moved(con, catalog, by_name[COVERAGE], accounts), _WHOLE)
    write_cuts(con, cuts)
    relations, deleted = _rebuilt_sources(con, catalog, lake, cuts)
    for name in coverage:
        relations[name] = table_relation(catalog, name, None)
    reads = {m.name: read_relations(m.sql) for m in models}
    views = {m.name for m in models if m.materialized == "view"}
    unchanged = _reading_no_lake(models) - _all_accounts(models)
    for model in models:
        if model.scope == ALL_ACCOUNTS:
            shadow(con, relations, (), grained=False)
            if not _same_as_kept(con, catalog, model):
                return None
        elif model.materialized == "table" and model.name not in unchanged:
            between = views_between(model.name, reads, views)
            shadow(con, relations, between, grained=model.grain is not None)
            create_kept(con, catalog, model.name, _kept_of(model, by_name))
            try:
                deleted += replace_rows(
                    con, catalog, model.name, model.sql, model.grain, model.grain_key
                )
            except duckdb.Error as exc:
                raise BuildError(f"{model.name}: {first_line(exc)}") from exc
            relations[model.name] = table_relation(catalog, model.name, model.grain)
    tests = data_tests(models)
    failures = _test_rebuilt_rows(con, models, tests, relations, views, accounts)
    shadow(con, relations, (), grained=False)
    all_accounts = _all_accounts(models)
    if any(f.account is None and f.test.model not in all_accounts for f in failures):
        return None
    waiting = vacuum_now(con, deleted)
    record(con, inputs, failures, all_accounts, accounts, waiting)
    results = kept_results(con, tests, SAMPLE_ROWS)
    _record_data_tests(con, results)
    return results


def _test_rebuilt_rows(
    con: duckdb.DuckDBPyConnection,
    models: list[Model],
    tests: tuple[DataTest, ...],
    relations: dict[str, Relation],
    views: set[str],
    accounts: frozenset[str],
) -> list[Failure]:
    """The data tests' failures in the rows the rebuild made. A grained model's tests hold row
    by row or per key whose time is fixed, so they read its rows since the cut, unless a kept
    failure of the accounts may lie before it (then all their rows, as every other test)."""
    failing = set(
        con.execute(
            f"select model, rule from {FAILURES_TABLE} where list_contains(?, account)",
            [sorted(accounts)],
        ).fetchall()
    )
    grained = {m.name for m in models if m.grain is not None}
    since = tuple(t for t in tests if t.model in grained and (t.model, t.rule) not in failing)
    failures: list[Failure] = []
    for batch, from_cut in ((since, True), (tuple(t for t in tests if t not in since), False)):
        shadow(con, relations, relations, grained=from_cut)
        results = run_data_tests(con, batch, views)
        failures += failures_by_account(con, results, SAMPLE_ROWS)
    return failures


def _coverage_moved(
    con: duckdb.DuckDBPyConnection, catalog: str, coverage: Model, accounts: frozenset[str]
) -> set[str]:
    """The accounts where a stream's covered stretch starts elsewhere than in the last build
    (the coverage ledger's rows of the accounts loaded anew): a grained model may leave out
    rows from before it (the capital-flow check does), so they are rebuilt whole."""
    columns = "account, stream, partition_key, covered_from"
    theirs = "where list_contains($1, r.account)"
    now = f"select {columns} from ({coverage.sql}) as r {theirs}"
    before = f"select {columns} from {catalog}.main.{coverage.name} as r {theirs}"
    rows = con.execute(
        f"select account from (({now}) except ({before})) union"
        f" select account from (({before}) except ({now}))",
        [sorted(accounts)],
    ).fetchall()
    return {str(account) for (account,) in rows}


def _rebuilt_sources(
    con: duckdb.DuckDBPyConnection,
    catalog: str,
    lake: ListedLake,
    cuts: dict[str, datetime | str],
) -> tuple[dict[str, Relation], int]:
    """The lake's streams of the accounts, as the models will read them: a local lake's views
    read the files in place (since a cut, only the months from it); an object store's tables
    get the accounts' rows anew first."""
    relations: dict[str, Relation] = {}
    deleted = 0
    accounts = frozenset(cuts)
    for stream in STREAMS.values():
        name = f"src_{stream.name}"
        files = lake.files(stream.name, accounts)
        time = f"timezone('UTC', r.{_quote(stream.time_field)})"
        if lake.store.is_local:
            recent = [k for k in files if _read_since(cuts.get(account_of(k) or ""), k)]
            whole = f"({source_sql(stream, lake.store, accounts, files)})"
            since = f"({source_sql(stream, lake.store, accounts, recent, by_file=True)})"
            relations[name] = Relation(name, of_accounts(whole), since_reads(since, time))
        else:
            sql = source_sql(stream, lake.store, accounts, files)
            deleted += replace_rows(con, catalog, name, sql, None)
            table = f"{catalog}.main.{name}"
            relations[name] = Relation(name, of_accounts(table), since_reads(table, time))
    return relations, deleted


def _read_since(cut: datetime | str | None, key: str) -> bool:
    """Whether a rebuild since `cut` reads the lake file `key` (its month is not all before
    where the account's reads start)."""
    if cut is None or cut == _NONE:
        return False
    if cut == _WHOLE or isinstance(cut, str):
        return True
    return _month_of(key) >= f"{cut - LOOK_BACK:%Y-%m}"


def _month_of(key: str) -> str:
    """The month folder (YYYY-MM) a lake key lies in."""
    for part in key.split("/"):
        if part.startswith("month="):
            return part.removeprefix("month=")
    return ""


def _kept_of(model: Model, models: dict[str, Model]) -> dict[str, tuple[str, str | None]]:
    """The grained models whose kept rows `model` reads: each one's grain and `keeps`."""
    found: dict[str, tuple[str, str | None]] = {}
    for name in _kept_inputs(read_relations(model.sql)):
        grain = models[name].grain
        if grain is not None:  # load_models refused any other
            found[name] = (grain, models[name].keeps)
    return found


def _same_as_kept(con: duckdb.DuckDBPyConnection, catalog: str, model: Model) -> bool:
    """Whether an all-accounts model built now holds what the warehouse keeps of it."""
    fresh = f"rebuilt_{model.name}"
    con.execute(f"create or replace temp table {fresh} as {model.sql}")
    try:
        return same_tables(con, f"temp.main.{fresh}", f"{catalog}.main.{model.name}")
    finally:
        con.execute(f"drop table temp.main.{fresh}")


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    return row[0] if row else None


def _all_accounts(models: list[Model]) -> frozenset[str]:
    return frozenset(m.name for m in models if m.scope == ALL_ACCOUNTS)


# tables the runner makes that hold no lake row: a rebuild of some accounts replaces them whole
_STATIC_TABLES = frozenset({"chart_of_accounts", "recon_settings", "src_stream_retention"})


def _reading_no_lake(models: list[Model]) -> frozenset[str]:
    """The tables that read no lake row, all the way down (the chart's roles, the settings): a
    rebuild of some accounts leaves them as they are."""
    reads_lake: set[str] = set()
    for model in models:  # in build order: a model's inputs come before it
        reads = read_relations(model.sql)
        if reads & reads_lake or any(r.startswith("src_") for r in reads - _STATIC_TABLES):
            reads_lake.add(model.name)
    return _STATIC_TABLES | ({m.name for m in models} - reads_lake)


def _remove_database(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(f"{path}.wal").unlink(missing_ok=True)


def _record_data_tests(con: duckdb.DuckDBPyConnection, results: tuple[DataTestResult, ...]) -> None:
    """Keep the build's data tests in the warehouse: whoever reads it later knows if it is clean."""
    con.execute(
        f"create or replace table {DATA_TESTS_TABLE} "
        "(model varchar, rule varchar, failing_rows bigint, message varchar)"
    )
    con.executemany(
        f"insert into {DATA_TESTS_TABLE} values (?, ?, ?, ?)",
        [(r.test.model, r.test.rule, r.failing_rows, r.message) for r in results],
    )


def failed_data_tests(data_dir: Path) -> list[str]:
    """The messages of the data tests that failed when the warehouse was built."""
    with connect(data_dir) as con:
        try:
            rows = con.execute(
                f"select message from {DATA_TESTS_TABLE} where failing_rows > 0"
                " order by model, rule"
            ).fetchall()
        except duckdb.CatalogException:
            raise WarehouseError(
                "the warehouse does not say how its data tests went: run `margin-etl build`"
            ) from None
    return [str(message) for (message,) in rows]


# What a build may take of the machine, whatever the size of the history: DuckDB spills to
# DATA_DIR beyond the memory limit. A person can change each with the environment.
RESOURCE_SETTINGS = {
    "memory_limit": ("MARGIN_ETL_DUCKDB_MEMORY_LIMIT", "1GB"),
    "threads": ("MARGIN_ETL_DUCKDB_THREADS", "2"),
}


def _bound_resources(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Memory, threads and spill space for a build, from the environment or the defaults;
    insertion order is not kept (no model relies on it, and keeping it costs memory), and an
    as-of join is never a nested loop."""
    for setting, (variable, default) in RESOURCE_SETTINGS.items():
        value = os.environ.get(variable, default)
        try:
            con.execute(f"set {setting} = {literal(value)}")
        except duckdb.Error as exc:
            raise BuildError(f"{variable}={value!r}: {first_line(exc)}") from None
    con.execute("set preserve_insertion_order = false")
    _sort_merge_as_of_joins(con)
    con.execute("set temp_directory = " + literal(str(data_dir / ".duckdb-spill")))


def _sort_merge_as_of_joins(con: duckdb.DuckDBPyConnection) -> None:
    """An as-of join whose left side DuckDB guesses small (a CTE, an aggregate) runs as a
    nested loop over every pair: minutes on a large lake (int_interval_terms' hours, guessed
    at 10 rows, are 43,800 in one account's year). The sort-merge join costs little on a
    small side. Builds and readers both: the report views join as of a time when read."""
    con.execute("set asof_loop_join_threshold = 0")


def _search_data_dir(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Relative paths in the warehouse's views (the lake's) resolve in DATA_DIR."""
    con.execute("set file_search_path = " + literal(str(Path(data_dir).resolve())))


def connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse (raises WarehouseError when there is none).

    Its views read the lake by paths relative to DATA_DIR, resolved here: the data dir can be
    moved or copied. (A plain `duckdb.connect` of the file must run with DATA_DIR as its
    working directory, or `set file_search_path` to it.)
    """
    warehouse = Path(data_dir).resolve() / WAREHOUSE_NAME
    if not warehouse.exists():
        raise WarehouseError(f"no warehouse at {warehouse}: run `margin-etl build` first")
    con = _open_when_free(warehouse)
    _search_data_dir(con, warehouse.parent)
    _sort_merge_as_of_joins(con)
    return con


# how long a reader waits for a build that is swapping rebuilt accounts in (seconds)
SWAP_WAIT_S = 120.0


def _open_when_free(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only, waiting while a build holds it to swap accounts in."""
    deadline = time.monotonic() + SWAP_WAIT_S
    while True:
        try:
            return duckdb.connect(str(warehouse), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise WarehouseError(f"cannot open {warehouse}: {first_line(exc)}") from None
        time.sleep(0.05)


@dataclass(frozen=True)
class VerifiedFrom:
    """From when an asset's figures are verified, and how (a row of `recon_coverage`)."""

    account: str
    asset: str
    verified_from: datetime | None
    anchor_kind: str
    anchor_snapshot_at: datetime | None
    reason: str


def _query(data_dir: Path, sql: str, params: list[object]) -> list[tuple[object, ...]]:
    """Rows of the warehouse (built first if there is none)."""
    if not (Path(data_dir) / WAREHOUSE_NAME).exists():
        build(data_dir)
    with connect(data_dir) as con:
        return con.execute(sql, params).fetchall()


def reconcile(data_dir: Path, include_provisional: bool = False) -> list[Break]:
    """The break rows of the warehouse's reconciliation (built first if there is none).

    Provisional rows (may still change: young PENDING rows or inside the late-arrival window)
    are left out unless asked for.
    """
    rows = _query(
        data_dir,
        """
        select account, kind, asset, status, interval_kind, interval_start, interval_end,
            expected, actual, difference, pending_rows, terms, break_id, cause_id, detail
        from recon_breaks
        where status = 'break' or ?
        order by account, interval_end, asset, kind, break_id
        """,
        [include_provisional],
    )
    return [Break(*row) for row in rows]  # type: ignore[arg-type]


def root_causes(data_dir: Path, include_provisional: bool = False) -> list[Cause]:
    """The breaks by root cause (`recon_causes`), breaks first, then by time."""
    rows = _query(
        data_dir,
        """
        select cause_id, account, status, cause_kind, assets, happened_at, description,
            symptoms
        from recon_causes
        where status = 'break' or ?
        order by account, status, coalesce(happened_at, span_start, span_end), cause_id
        """,
        [include_provisional],
    )
    return [Cause(*row) for row in rows]  # type: ignore[arg-type]


def verified_from(data_dir: Path) -> list[VerifiedFrom]:
    """From when each account's assets are verified (`recon_coverage`)."""
    rows = _query(
        data_dir,
        """
        select account, asset, verified_from, anchor_kind, anchor_snapshot_at, reason
        from recon_coverage
        order by account, asset
        """,
        [],
    )
    return [VerifiedFrom(*row) for row in rows]  # type: ignore[arg-type]
