"""Rebuild some accounts in the warehouse itself, each since a cut in time.

Writing a row costs what computing it does (copying one account's 10 M ledger lines into a
new file took 7.5 s, building them 8.2 s), so a rebuild that keeps years of rows must keep
them where they are: it runs in the warehouse, in one transaction, model by model in build
order. Each model reads its inputs through temporary views of the same names, which DuckDB
resolves before the warehouse's own (a view's body is bound when it is read, so the views
between see them too):

- a model declared `-- grain: time(<column>)` reads its grained inputs from the account's cut
  less `LOOK_BACK` (the rows it can pair with), its other inputs whole, and only its rows at or
  after the cut are replaced;
- a grained model that carries a running state reads it from `kept_<model>` (a grained
  model's rows before the cut) and finds each account's cut in `build_cuts`; a whole build
  has neither (runner.load_models checks who may read them);
- any other model reads its inputs' rows of the accounts, all of them, and its rows of the
  accounts are replaced.

A cut of `-infinity` rebuilds an account whole (new, or a file gone); `infinity` rebuilds none
of its grained rows (only its coverage changed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

CUTS = "build_cuts"  # a temporary table: per account, its cut and where its reads start
KEPT = "kept_"  # `kept_<model>`: a grained model's rows of the accounts before their cut
# how far apart two rows of one account may be and still make one row together (a
# liquidation's fills and its record, a repay and its capital-flow rows): a rebuild reads
# this far before its cut
LOOK_BACK = timedelta(days=1)


@dataclass(frozen=True)
class Relation:
    """A relation a model may read, as a rebuild shadows it.

    `whole` reads every row of the accounts being rebuilt and `since` (grained relations
    only) their rows from where each account's reads start; both are queries over the
    warehouse's own relation or the lake, whose rows have an `account` column."""

    name: str
    whole: str
    since: str | None = None


def write_cuts(con: duckdb.DuckDBPyConnection, cuts: Mapping[str, datetime | str]) -> None:
    """The temporary table of cuts: a naive UTC time, or '-infinity' / 'infinity'."""
    con.execute(f"create or replace temp table {CUTS} (account varchar, cut_at timestamp)")
    if cuts:
        con.executemany(f"insert into {CUTS} values (?, cast(? as timestamp))", list(cuts.items()))
    con.execute(f"alter table {CUTS} add column read_from timestamp")
    seconds = int(LOOK_BACK.total_seconds())
    con.execute(f"update {CUTS} set read_from = cut_at - interval '{seconds} seconds'")


def of_accounts(relation: str, alias: str = "r") -> str:
    """The rows of `relation` (a name or a parenthesised query) of the accounts rebuilt."""
    return (
        f"select {alias}.* from {relation} as {alias} "
        f"semi join {CUTS} as c on {alias}.account = c.account"
    )


def since_reads(relation: str, time: str, alias: str = "r") -> str:
    """The rows of `relation` of the accounts rebuilt, from where each account's reads start;
    `time` is an expression over `alias` giving a row's naive UTC time."""
    return (
        f"select {alias}.* from {relation} as {alias} "
        f"semi join {CUTS} as c on {alias}.account = c.account and {time} >= c.read_from"
    )


def table_relation(catalog: str, name: str, grain: str | None) -> Relation:
    """A model's table in the warehouse, shadowed."""
    table = f"{catalog}.main.{name}"
    return Relation(name, of_accounts(table), since_reads(table, f"r.{grain}") if grain else None)


def declared_columns(keeps: str) -> list[tuple[str, str]]:
    """`name type, ...` (a type may hold commas: `decimal(38, 18)`) as (name, type) pairs."""
    columns = re.split(r",\s*(?![^()]*\))", keeps.strip())
    return [(c.split(maxsplit=1)[0], c.split(maxsplit=1)[1]) for c in columns]


def kept_relation(catalog: str | None, name: str, grain: str, keeps: str | None) -> str:
    """`kept_<name>`: the grained model's rows of the accounts rebuilt before their cut (its
    `keeps` columns only, when given: the model reading its own). In a whole build (`catalog`
    None) there are none: the model read empty, or its own rows, which do not exist yet, as
    the `keeps` columns typed."""
    columns = ["account", *(c for c, _ in declared_columns(keeps))] if keeps else ["*"]
    if catalog is not None:
        return (
            f"select {', '.join(columns)} from {catalog}.main.{name} as r semi join {CUTS} as c"
            f" on r.account = c.account and r.{grain} < c.cut_at"
        )
    if keeps is None:
        return f"select * from {name} where false"
    typed = [("account", "varchar"), *declared_columns(keeps)]
    return "select " + ", ".join(f"cast(null as {t}) as {c}" for c, t in typed) + " where false"


def create_kept(
    con: duckdb.DuckDBPyConnection,
    catalog: str | None,
    reader: str,
    kept: Mapping[str, tuple[str, str | None]],
) -> None:
    """The `kept_<model>` views a model reads: `kept` maps each such model to its grain and,
    for the reader itself, its declared `keeps`."""
    for name, (grain, keeps) in kept.items():
        query = kept_relation(catalog, name, grain, keeps if name == reader else None)
        con.execute(f"create or replace temp view {KEPT}{name} as {query}")


def shadow(
    con: duckdb.DuckDBPyConnection,
    relations: Mapping[str, Relation],
    names: Iterable[str],
    grained: bool,
) -> None:
    """Shadow the `names` among `relations` for a model: since the cut for a grained one,
    whole otherwise; every other temporary view goes."""
    wanted = {n for n in names if n in relations}
    for (view,) in con.execute(
        "select view_name from duckdb_views() where temporary and not internal"
    ).fetchall():
        if view not in wanted:
            con.execute(f"drop view temp.main.{view}")
    for name in sorted(wanted):
        relation = relations[name]
        query = relation.since if grained and relation.since is not None else relation.whole
        con.execute(f"create or replace temp view {name} as {query}")


def literal(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    catalog: str,
    name: str,
    sql: str,
    grain: str | None,
    key: str | None = None,
) -> int:
    """Replace the accounts' rows of the warehouse's table `name` by those `sql` gives (of a
    grained table, those at or after each account's cut; of one with a `key` too, every row
    it gives, and the old rows of each key it gives go as well); the rows deleted."""
    table = f"{catalog}.main.{name}"
    if grain is None:
        gone = con.execute(f"delete from {table} where account in (select account from {CUTS})")
        con.execute(f"insert into {table} by name select * from ({sql}) as r")
        return _count(gone)
    if key is None:
        deleted = _delete_since_cut(con, table, grain)
        con.execute(
            f"insert into {table} by name select r.* from ({sql}) as r semi join {CUTS} as c"
            f" on r.account = c.account and r.{grain} >= c.cut_at"
        )
        return deleted
    fresh = f"fresh_{name}"
    con.execute(f"create or replace temp table {fresh} as {sql}")  # it reads its kept rows
    try:
        deleted = _delete_since_cut(con, table, grain)
        gone = con.execute(
            f"delete from {table} as t using (select distinct account, {key} from {fresh}) as f"
            f" where t.account = f.account and t.{key} is not distinct from f.{key}"
        )
        con.execute(f"insert into {table} by name select * from {fresh}")
    finally:
        con.execute(f"drop table temp.main.{fresh}")
    return deleted + _count(gone)


def _delete_since_cut(con: duckdb.DuckDBPyConnection, table: str, grain: str) -> int:
    """Delete the rows at or after each account's cut, an account at a time with its cut as a
    constant, so that the row groups wholly before it are skipped (deleting through a join
    with the cuts read every row: 0.8 s of a 10 M-line ledger)."""
    deleted = 0
    cuts = con.execute(f"select account, cast(cut_at as varchar) from {CUTS}").fetchall()
    for account, cut in cuts:
        deleted += _count(
            con.execute(
                f"delete from {table} where account = {literal(account)}"
                f" and {grain} >= cast({literal(cut)} as timestamp)"
            )
        )
    return deleted


def _count(result: duckdb.DuckDBPyConnection) -> int:
    """The rows a DELETE reports."""
    row = result.fetchone()
    return int(row[0]) if row else 0


def views_between(name: str, reads: Mapping[str, frozenset[str]], views: set[str]) -> set[str]:
    """What a model reads, and what the views it reads read, all the way down."""
    found: set[str] = set()
    todo = [name]
    while todo:
        for read in reads.get(todo.pop(), frozenset()):
            if read not in found:
                found.add(read)
                if read in views:
                    todo.append(read)
    return found
