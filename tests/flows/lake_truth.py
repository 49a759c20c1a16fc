"""Compare an exported lake with the simulator's truth files, deduplicating as staging does."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors import RETENTION_MARGIN_MS, SPECS
from flows.export import DEFAULT_HISTORY_MS
from models import daily_snapshot_rows, live_snapshot_rows, to_ms
from models.schemas import STREAMS
from storage.lake import lake_uris, read_stream_table

HISTORY = (
    "loans",
    "repays",
    "interest",
    "transfers",
    "liquidations",
    "orders",
    "trades",
    "capital_flow",
    "interest_rates",
    "prices",
)
Canon = tuple[tuple[str, Any], ...]


def _canon_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, datetime):
        return to_ms(value)
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, str):
        try:
            return Decimal(value).normalize()
        except ArithmeticError:
            return value
    if isinstance(value, int):
        return value
    return value


def canonical(row: Mapping[str, Any], fields: Iterable[str]) -> Canon:
    return tuple((f, _canon_value(row.get(f))) for f in sorted(fields))


def truth_rows(truth_dir: Path, stream: str) -> list[dict[str, Any]]:
    path = truth_dir / f"{stream}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    fields = SPECS[stream].row_fields if stream in SPECS else ()
    if fields:  # array rows (klines) beside their symbol: named as the lake names them
        return [
            {"symbol": r["symbol"], **dict(zip(fields, r["kline"], strict=False))} for r in rows
        ]
    return rows


def _time_ms(row: Mapping[str, Any], field: str) -> int:
    value = row[field]
    if isinstance(value, datetime):
        return to_ms(value)
    number = int(value)
    return number * 1000 if number < 10**11 else number


def latest_lake_rows(data_dir: Path, stream: str) -> list[dict[str, Any]]:
    """One row per natural key (latest fetch wins); keyless rows by their most copies in a fetch."""
    if not lake_uris(data_dir, stream):  # wherever the lake lives, local or object store
        return []
    table: pa.Table = read_stream_table(data_dir, stream)
    rows = table.to_pylist()
    schema = STREAMS[stream]
    api_fields = [f.name for f in schema.fields]
    if schema.natural_key is None:
        per_fetch: dict[tuple[str, str], Counter[Canon]] = {}
        for row in rows:
            fetch = (row["_run_id"], row["_partition"])
            per_fetch.setdefault(fetch, Counter())[canonical(row, api_fields)] += 1
        best: Counter[Canon] = Counter()
        for counts in per_fetch.values():
            best |= counts  # max of the counts
        return [dict(c) for c, n in best.items() for _ in range(n)]
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["_fetched_at"], r["_run_id"])):
        latest[tuple(row[k] for k in schema.natural_key)] = row
    return list(latest.values())


def _to_seconds(row: Mapping[str, Any], field: str) -> dict[str, Any]:
    return {**row, field: _time_ms(row, field) // 1000 * 1000}


def differences(
    data_dir: Path,
    truth_dir: Path,
    streams: Iterable[str] = HISTORY,
    until_ms: int | None = None,
    seconds_streams: Iterable[str] = (),
    since_ms: Mapping[str, int] | None = None,
    history_ms: int | None = DEFAULT_HISTORY_MS,
    live_clock: bool = False,
) -> dict[str, dict[str, list[Canon]]]:
    """Per stream: truth rows missing from the lake and lake rows not in the truth.

    `live_clock`: the exchange's clock ran on between the export and the truth, so a row the
    lake holds PENDING may have settled since it was read (the next run's look-back reads its
    final state): only that it is there is compared.

    `seconds_streams` are served with times in seconds (a fault mode): compared to the second.
    `since_ms` gives, per stream, where the export's reads began; otherwise `history_ms`
    before `until_ms` (a first export's default reach, less the retention margin). Rows older
    than that are left out on both sides.
    Prices are compared for the symbols the export chose (which ones is a test of its own);
    streams read in closed periods (a day's candle, an hour's rate) up to the last one closed.
    """
    found: dict[str, dict[str, list[Canon]]] = {}
    for stream in streams:
        schema = STREAMS[stream]
        truth = truth_rows(truth_dir, stream)
        lake = latest_lake_rows(data_dir, stream)
        if until_ms is not None:
            # an export covers up to its cutoff, not the instant itself: a row made at the
            # cutoff (a pinned clock's arrival) is the next run's, on both sides
            period = SPECS[stream].closed_periods_ms if stream in SPECS else None
            last = until_ms - until_ms % period - 1 if period else until_ms - 1
            truth = [r for r in truth if _time_ms(r, schema.time_field) <= last]
            lake = [r for r in lake if _time_ms(r, schema.time_field) <= last]
        since = (since_ms or {}).get(stream)
        if since is None and history_ms is not None and until_ms is not None:
            since = until_ms - history_ms + RETENTION_MARGIN_MS
        if since is not None:
            truth = [r for r in truth if _time_ms(r, schema.time_field) >= since]
            lake = [r for r in lake if _time_ms(r, schema.time_field) >= since]
        if stream == "prices":
            chosen = {r["symbol"] for r in lake}
            truth = [r for r in truth if r["symbol"] in chosen]
        if stream in seconds_streams:
            truth = [_to_seconds(r, schema.time_field) for r in truth]
            lake = [_to_seconds(r, schema.time_field) for r in lake]
        fields = set().union(*(r.keys() for r in truth)) if truth else set()
        fields &= {f.name for f in schema.fields}
        # a row the exchange changed after the cutoff (a resting order filled later on a live
        # clock) was read in an earlier state: only that it is there is compared
        changed = _changed_after(truth, schema.natural_key, until_ms)
        if live_clock:
            changed |= _settled_since_read(lake, truth, schema.natural_key)
        want = Counter(_compared(r, fields, schema.natural_key, changed) for r in truth)
        got = Counter(_compared(r, fields, schema.natural_key, changed) for r in lake)
        missing, extra = want - got, got - want
        if missing or extra:
            found[stream] = {"missing": list(missing.elements()), "extra": list(extra.elements())}
    return found


def _changed_after(
    truth: list[dict[str, Any]], key: tuple[str, ...] | None, until_ms: int | None
) -> set[Canon]:
    if key is None or until_ms is None:
        return set()
    return {
        canonical(r, key)
        for r in truth
        if "updateTime" in r and _time_ms(r, "updateTime") > until_ms
    }


def _settled_since_read(
    lake: list[dict[str, Any]], truth: list[dict[str, Any]], key: tuple[str, ...] | None
) -> set[Canon]:
    if key is None:
        return set()
    pending = {canonical(r, key) for r in lake if r.get("status") == "PENDING"}
    return {
        canonical(r, key)
        for r in truth
        if r.get("status") not in (None, "PENDING") and canonical(r, key) in pending
    }


def _compared(
    row: Mapping[str, Any], fields: set[str], key: tuple[str, ...] | None, changed: set[Canon]
) -> Canon:
    if key is not None and changed and canonical(row, key) in changed:
        return canonical(row, key)
    return canonical(row, fields)


SNAPSHOT_FIELDS = ("source", "snapshotTime", "asset", "free", "locked", "borrowed", "interest")


def snapshot_differences(data_dir: Path, truth_dir: Path, until_ms: int) -> dict[str, Any]:
    """The daily snapshots the exchange still serves, and the newest live one, against truth.

    Daily: every snapshot of the last month (the endpoint's retention) row for row. Live: the
    newest live snapshot in the lake against `account.json`, balance for balance (call this
    with the exchange's clock pinned, right after the export that took it).
    """
    rows = latest_lake_rows(data_dir, "account_snapshots")
    since = until_ms - (SPECS["daily_snapshots"].retention_ms or 0) + RETENTION_MARGIN_MS
    vos = [json.loads(line) for line in (truth_dir / "account_snapshots.jsonl").open()]
    want = Counter(
        canonical(r, SNAPSHOT_FIELDS)
        for r in daily_snapshot_rows(v for v in vos if since <= int(v["updateTime"]) <= until_ms)
    )
    got = Counter(canonical(r, SNAPSHOT_FIELDS) for r in rows if r["source"] == "daily")
    found: dict[str, Any] = {}
    if want != got:
        found["daily"] = {"missing": list((want - got).elements()), "extra": list(got - want)}
    live = [r for r in rows if r["source"] == "live"]
    newest = max((_time_ms(r, "snapshotTime") for r in live), default=None)
    account = json.loads((truth_dir / "account.json").read_text())
    balances = ("asset", "free", "locked", "borrowed", "interest", "netAsset")
    want_live = {canonical(r, balances) for r in live_snapshot_rows(account, 0)}
    got_live = {canonical(r, balances) for r in live if _time_ms(r, "snapshotTime") == newest}
    if want_live != got_live:
        found["live"] = {
            "missing": sorted(want_live - got_live),
            "extra": sorted(got_live - want_live),
        }
    return found
