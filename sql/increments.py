"""What a build keeps of the warehouse before it: the accounts whose inputs did not change,
and of the others, their rows from before a cut.

Every table of the warehouse holds rows of one account each (an `account` column), and no
model reads another account's rows, except the models declared `-- scope: all accounts`
(int_symbols: a symbol splits at the assets of every account). So when the build's own inputs
are those of the warehouse's last build (its fingerprint: the model files, the runner, the
schemas and specs, the settings, the chart, where the lake is, DuckDB's version), only the
accounts whose inputs changed need building again: those with a new, removed or rewritten
lake file (its key, size and modification time) or a changed row in the coverage ledger. The
files each account was built from are kept too (`build_files`), so a build knows from when an
account's rows changed; sql/in_place.py rebuilds it from there, in the warehouse itself, in
one transaction: a failed build leaves the previous one whole.

Tables without an `account` column are the all-accounts models (built from every account's
rows: one that comes out different makes the build whole) and what depends on no lake row
(the chart's roles, the settings), which a rebuild leaves as they are.

A data test's failing rows are kept per account (`build_data_test_failures`), so a rebuild
of some accounts replaces theirs and keeps the others'; a failure that names no account
(a test whose rows have no `account`) can only be told again by a full build, which the next
build then is.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sql.data_tests import DataTest, DataTestResult
from storage import FileVersion

STATE_TABLE = "build_state"
ACCOUNTS_TABLE = "build_accounts"
FAILURES_TABLE = "build_data_test_failures"
FILES_TABLE = "build_files"
# the build's own bookkeeping: written by the build, never copied from a rebuilt piece
BOOKKEEPING = frozenset(
    {STATE_TABLE, ACCOUNTS_TABLE, FAILURES_TABLE, FILES_TABLE, "build_data_tests"}
)
ALL_ACCOUNTS = "all accounts"  # the `-- scope:` of a model that reads every account's rows
ROOT = Path(__file__).resolve().parent.parent
# what the warehouse is made by: a change to any of these files rebuilds it whole
MADE_BY = ("sql/**/*.sql", "sql/**/*.py", "sql/*.csv", "models/*.py", "connectors/specs.py")


def fingerprint(parts: Iterable[str]) -> str:
    """A digest of the files that make the warehouse and of the build's other inputs."""
    digest = hashlib.sha256()
    digest.update(duckdb.__version__.encode())
    for pattern in MADE_BY:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    for part in parts:
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()


def account_of(key: str) -> str | None:
    """The account a lake key's path names (`<stream>/account=<name>/...`)."""
    for part in key.split("/"):
        if part.startswith("account="):
            return part.removeprefix("account=")
    return None


def account_inputs(
    lake_files: Iterable[FileVersion], ledger_rows: Iterable[Sequence[object]]
) -> dict[str, str]:
    """Per account, a digest of what its rows are built from: its lake files (key, size and
    time) and its rows of the coverage ledger (each starting with the account)."""
    found: dict[str, list[str]] = defaultdict(list)
    for file in lake_files:
        account = account_of(file.key)
        if account is not None:
            found[account].append(f"{file.key} {file.size} {file.mtime_ns}")
    for row in ledger_rows:
        found[str(row[0])].append(json.dumps([str(v) for v in row]))
    return {
        account: hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()
        for account, items in found.items()
    }


def account_files(lake_files: Iterable[FileVersion]) -> dict[str, frozenset[FileVersion]]:
    """Per account, its lake files as listed (key, size and time)."""
    found: dict[str, set[FileVersion]] = defaultdict(set)
    for file in lake_files:
        account = account_of(file.key)
        if account is not None:
            found[account].add(file)
    return {account: frozenset(files) for account, files in found.items()}


@dataclass(frozen=True)
class Inputs:
    """What a build is made of: its fingerprint, each account's inputs, and each account's
    lake files (what tells a rebuild where an account's rows changed)."""

    fingerprint: str
    accounts: Mapping[str, str]
    files: Mapping[str, frozenset[FileVersion]] = field(default_factory=dict)

    def changed_since(self, kept: Inputs) -> frozenset[str]:
        """The accounts whose inputs differ from the kept build's (new and gone ones too)."""
        names = self.accounts.keys() | kept.accounts.keys()
        return frozenset(a for a in names if self.accounts.get(a) != kept.accounts.get(a))


def kept_inputs(warehouse: Path) -> Inputs | None:
    """The inputs the warehouse was last built from; None when it cannot be built on (none
    yet, made before builds kept them, or holding a failure no account owns)."""
    if not warehouse.exists():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            state = con.execute(f"select fingerprint from {STATE_TABLE}").fetchone()
            accounts = con.execute(f"select account, inputs from {ACCOUNTS_TABLE}").fetchall()
            unowned = con.execute(
                f"select count(*) from {FAILURES_TABLE} where account is null and not all_accounts"
            ).fetchone()
            files = con.execute(
                f"select account, key, size, mtime_ns from {FILES_TABLE}"
            ).fetchall()
    except duckdb.Error:
        return None
    if state is None or (unowned and unowned[0]):
        return None
    listed: dict[str, set[FileVersion]] = defaultdict(set)
    for account, key, size, mtime_ns in files:
        listed[str(account)].add(FileVersion(str(key), int(size), int(mtime_ns)))
    return Inputs(
        str(state[0]),
        {str(a): str(i) for a, i in accounts},
        {account: frozenset(versions) for account, versions in listed.items()},
    )


@dataclass(frozen=True)
class Failure:
    """A data test's failing rows of one account (None: rows that name no account)."""

    account: str | None
    test: DataTest
    failing_rows: int
    sample: tuple[dict[str, Any], ...]


def failures_by_account(
    con: duckdb.DuckDBPyConnection, results: Iterable[DataTestResult], sample_rows: int
) -> list[Failure]:
    """The failed tests' rows, counted per account where the rows say which."""
    failures = []
    for result in results:
        if result.passed:
            continue
        query = result.test.sql
        columns = [d[0] for d in con.execute(f"select * from ({query}) limit 0").description or ()]
        if "account" not in columns:
            failures.append(Failure(None, result.test, result.failing_rows, result.sample))
            continue
        counted = con.execute(
            f"select account, count(*) from ({query}) group by account order by account"
        ).fetchall()
        for account, rows in counted:
            cursor = con.execute(
                f"select * from ({query}) where account is not distinct from ? limit {sample_rows}",
                [account],
            )
            names = [d[0] for d in cursor.description or ()]
            sample = tuple(dict(zip(names, row, strict=True)) for row in cursor.fetchall())
            failures.append(Failure(account, result.test, int(rows), sample))
    return failures


def record(
    con: duckdb.DuckDBPyConnection,
    inputs: Inputs,
    failures: Iterable[Failure],
    all_accounts_models: frozenset[str],
    rebuilt: frozenset[str] | None = None,
    deleted_rows: int = 0,
) -> None:
    """Write the build's bookkeeping: its inputs, the rows deleted and not yet vacuumed, and
    the failures of the accounts it built (`rebuilt`; None: every account), keeping the other
    accounts' failures."""
    con.execute(f"create or replace table {STATE_TABLE} (fingerprint varchar, deleted_rows bigint)")
    con.execute(f"insert into {STATE_TABLE} values (?, ?)", [inputs.fingerprint, deleted_rows])
    con.execute(f"create or replace table {ACCOUNTS_TABLE} (account varchar, inputs varchar)")
    if inputs.accounts:
        con.executemany(
            f"insert into {ACCOUNTS_TABLE} values (?, ?)", list(inputs.accounts.items())
        )
    con.execute(
        f"create or replace table {FILES_TABLE} "
        "(account varchar, key varchar, size bigint, mtime_ns bigint)"
    )
    stamps = [
        (account, f.key, f.size, f.mtime_ns)
        for account, versions in inputs.files.items()
        for f in versions
    ]
    if stamps:
        con.execute(
            f"insert into {FILES_TABLE} select unnest(?), unnest(?), unnest(?), unnest(?)",
            [list(column) for column in zip(*stamps, strict=True)],
        )
    con.execute(
        f"create table if not exists {FAILURES_TABLE} (account varchar, model varchar, "
        "rule varchar, failing_rows bigint, sample varchar, all_accounts boolean)"
    )
    if rebuilt is None:
        con.execute(f"delete from {FAILURES_TABLE}")
    else:
        con.execute(
            f"delete from {FAILURES_TABLE} where account is null or list_contains(?, account)",
            [sorted(rebuilt)],
        )
    rows = [
        (
            f.account,
            f.test.model,
            f.test.rule,
            f.failing_rows,
            json.dumps(f.sample, default=str),
            f.test.model in all_accounts_models,
        )
        for f in failures
    ]
    if rows:
        con.executemany(f"insert into {FAILURES_TABLE} values (?, ?, ?, ?, ?, ?)", rows)


def kept_results(
    con: duckdb.DuckDBPyConnection, tests: Sequence[DataTest], sample_rows: int
) -> tuple[DataTestResult, ...]:
    """Every test's result over all accounts, from the failures the warehouse keeps."""
    found: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for model, rule, rows, sample in con.execute(
        f"select model, rule, failing_rows, sample from {FAILURES_TABLE} "
        "order by account nulls first"
    ).fetchall():
        found[(model, rule)].append((int(rows), str(sample)))
    results = []
    for test in tests:
        kept = found.get((test.model, test.rule), [])
        samples = [row for _, sample in kept for row in json.loads(sample)]
        results.append(
            DataTestResult(test, sum(rows for rows, _ in kept), tuple(samples[:sample_rows]))
        )
    return tuple(results)


def same_tables(con: duckdb.DuckDBPyConnection, left: str, right: str) -> bool:
    """Whether two relations hold the same rows, as multisets."""
    differ = con.execute(
        f"select exists (select * from {left} except all select * from {right})"
        f" or exists (select * from {right} except all select * from {left})"
    ).fetchone()
    return not (differ and differ[0])


# Deleted rows are left in place (vacuuming them rewrites every row group that held one of
# the accounts' rows: 4 of a 12 s rebuild on 10 M lines) until they are this share of the
# warehouse's rows; the checkpoint of that swap vacuums them all.
VACUUM_SHARE = 0.10


def vacuum_now(con: duckdb.DuckDBPyConnection, deleted_now: int) -> int:
    """Let this swap's checkpoint vacuum, or not (`max_vacuum_tasks`); returns the deleted rows
    left to vacuum afterwards."""
    kept = con.execute(f"select deleted_rows from {STATE_TABLE}").fetchone()
    rows = con.execute(
        "select sum(estimated_size) from duckdb_tables() where database_name = current_database()"
    ).fetchone()
    waiting = (int(kept[0]) if kept and kept[0] is not None else 0) + deleted_now
    if waiting > VACUUM_SHARE * (int(rows[0]) if rows and rows[0] is not None else 0):
        con.execute("reset max_vacuum_tasks")
        return 0
    con.execute("set max_vacuum_tasks = 0")
    return waiting


def differing_warehouses(left: Path, right: Path, *, tables_only: bool = False) -> list[str]:
    """The tables and views (or tables only) whose rows differ between two warehouse files,
    bookkeeping aside: what a rebuild of some accounts and a whole build must never show.
    Views read the lake of `left`'s data dir."""
    with duckdb.connect() as con:
        con.execute("set enable_progress_bar = false")
        con.execute(f"set file_search_path = '{left.parent}'")
        con.execute(f"attach '{left}' as left_side (read_only)")
        con.execute(f"attach '{right}' as right_side (read_only)")
        return _differing_relations(con, "left_side", "right_side", tables_only)


def _differing_relations(
    con: duckdb.DuckDBPyConnection, left: str, right: str, tables_only: bool
) -> list[str]:
    kinds = ["BASE TABLE"] if tables_only else ["BASE TABLE", "VIEW"]
    names = [
        sorted(
            str(name)
            for (name,) in con.execute(
                "select table_name from information_schema.tables"
                " where table_catalog = ? and table_schema = 'main'"
                " and list_contains(?, table_type)",
                [catalog, kinds],
            ).fetchall()
            if name not in BOOKKEEPING
        )
        for catalog in (left, right)
    ]
    if names[0] != names[1]:
        return sorted(set(names[0]) ^ set(names[1]))
    return [n for n in names[0] if not same_tables(con, f"{left}.main.{n}", f"{right}.main.{n}")]
