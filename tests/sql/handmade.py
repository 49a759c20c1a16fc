"""A small hand-made margin history, written into a Parquet lake the way the exporter would.

Two accounts. acct1 holds USDT and BTC on 2024-01-01 (UTC):
  00:00 ROLL_IN 1000 USDT (the account's opening)   01:00 ROLL_IN 0.1 BTC
  02:00 live snapshot S1
  03:30 borrow 500 USDT (current API), ON_BORROW then hourly PERIODIC interest at 0.0002/day
  03:45 two identical borrows of 0.01 BTC (legacy API): every BTC charge comes as an
        identical pair of interest rows without txId
  05:30 buy 0.01 BTC at 40000 (commission 0.00001 BTC)
  06:30 repay 100.01666668 USDT = 0.01666668 interest + 100 principal
  07:10 sell 0.005 BTC at 41000 (commission 0.205 USDT)   07:30 ROLL_OUT 50 USDT
  08:00 a sell order of 0.001 BTC is placed (NEW, locks 0.001 BTC; canceled at 10:00)
  08:30 live snapshot S2          12:00 ROLL_IN 5 USDT
  23:59:59 daily snapshot S3
acct2: ROLL_IN 10 USDT at 00:00, live snapshot at 01:00.

Three runs read it: r1 at 02:00 (S1 and what happened by then), r2 at 08:30 (S2, everything
so far; the repay still PENDING, the order NEW), r3 on 2024-01-03 (a look-back re-read of all
history up to 2024-01-02 00:00: repay CONFIRMED, order CANCELED; and the daily snapshot S3).
Snapshots, the capital flow (every balance movement, as the exchange records it) and the
published interest rates are computed from the true history, so a planted error in the lake
shows up. The runs were asked to read from 2023-12-31 (`--since`) and the coverage ledger
says they read every stream from there (HandmadeCoverage changes that): the history is
proven to reach the account's opening.
"""

from __future__ import annotations

import copy
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from models.schemas import STREAMS
from storage.coverage import CoverageLedger

Row = dict[str, Any]
History = dict[str, list[Row]]
D = Decimal

ACCOUNT = "acct1"
OTHER_ACCOUNT = "acct2"
DAY = datetime(2024, 1, 1, tzinfo=UTC)
S1 = DAY + timedelta(hours=2)
S2 = DAY + timedelta(hours=8, minutes=30)
S3 = DAY + timedelta(hours=23, minutes=59, seconds=59)
R3_FETCHED = datetime(2024, 1, 3, tzinfo=UTC)
R3_CUTOFF = DAY + timedelta(days=1)  # r3 read everything up to here
SINCE = DAY - timedelta(days=1)  # what the exports were asked to read from
USDT_RATE = D("0.0002")
BTC_RATE = D("0.0001")
# the last hourly charge before S3
LAST_HOUR = 23


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


def ceil8(value: Decimal) -> Decimal:
    return value.quantize(D("0.00000001"), rounding=ROUND_CEILING)


def charge(principal: Decimal, rate: Decimal) -> Decimal:
    return ceil8(principal * rate / 24)


def _interest(
    asset: str, when: datetime, principal: str, rate: Decimal, kind: str, tx_id: int | None
) -> Row:
    p = D(principal)
    return {
        "txId": tx_id,
        "asset": asset,
        "rawAsset": asset,
        "principal": p,
        "interest": charge(p, rate),
        "interestRate": rate,
        "type": kind,
        "interestAccuredTime": when,
    }


def _usdt_interest() -> list[Row]:
    rows = [_interest("USDT", at(3, 30), "500", USDT_RATE, "ON_BORROW", 100)]
    for hour in range(4, LAST_HOUR + 1):
        principal = "500" if hour <= 6 else "400"
        rows.append(_interest("USDT", at(hour), principal, USDT_RATE, "PERIODIC", 100 + hour))
    return rows


def _btc_interest() -> list[Row]:
    rows = [_interest("BTC", at(3, 45), "0.01", BTC_RATE, "ON_BORROW", None)] * 2
    for hour in range(4, LAST_HOUR + 1):
        rows += [_interest("BTC", at(hour), "0.01", BTC_RATE, "PERIODIC", None)] * 2
    return [dict(r) for r in rows]


def transfer_row(tx_id: int, asset: str, amount: str, kind: str, when: datetime) -> Row:
    return {
        "txId": tx_id,
        "asset": asset,
        "amount": D(amount),
        "type": kind,
        "status": "CONFIRMED",
        "timestamp": when,
        "transFrom": "SPOT" if kind == "ROLL_IN" else "CROSS_MARGIN",
        "transTo": "CROSS_MARGIN" if kind == "ROLL_IN" else "SPOT",
    }


def _order(order_id: int, side: str, kind: str, price: str, qty: str, when: datetime) -> Row:
    return {
        "orderId": order_id,
        "symbol": "BTCUSDT",
        "clientOrderId": f"c{order_id}",
        "side": side,
        "type": kind,
        "status": "FILLED",
        "price": D(price),
        "origQty": D(qty),
        "executedQty": D(qty),
        "cummulativeQuoteQty": D(price) * D(qty),
        "timeInForce": "GTC",
        "isWorking": True,
        "isIsolated": False,
        "time": when,
        "updateTime": when,
    }


def _trade(
    trade_id: int, order_id: int, price: str, qty: str, fee: str, fee_asset: str, buyer: bool
) -> Row:
    when = at(5, 30) if buyer else at(7, 10)
    return {
        "id": trade_id,
        "symbol": "BTCUSDT",
        "orderId": order_id,
        "price": D(price),
        "qty": D(qty),
        "quoteQty": D(price) * D(qty),
        "commission": D(fee),
        "commissionAsset": fee_asset,
        "isBuyer": buyer,
        "isMaker": not buyer,
        "isBestMatch": True,
        "isIsolated": False,
        "time": when,
    }


def base_history() -> History:
    """acct1's true history, final state (all rows CONFIRMED, the order canceled)."""
    open_order = _order(502, "SELL", "LIMIT", "50000", "0.001", at(8))
    open_order.update(status="CANCELED", executedQty=D(0), cummulativeQuoteQty=D(0))
    open_order["updateTime"] = at(10)
    return {
        "transfers": [
            transfer_row(1, "USDT", "1000", "ROLL_IN", at(0)),
            transfer_row(2, "BTC", "0.1", "ROLL_IN", at(1)),
            transfer_row(3, "USDT", "50", "ROLL_OUT", at(7, 30)),
            transfer_row(4, "USDT", "5", "ROLL_IN", at(12)),
        ],
        "loans": [
            {
                "txId": 10,
                "asset": "USDT",
                "principal": D(500),
                "amount": D(500),
                "interest": D(0),
                "type": "MANUAL",
                "status": "CONFIRMED",
                "timestamp": at(3, 30),
            },
            # legacy API rows: no amount, interest or type
            {
                "txId": 11,
                "asset": "BTC",
                "principal": D("0.01"),
                "status": "CONFIRMED",
                "timestamp": at(3, 45),
            },
            {
                "txId": 12,
                "asset": "BTC",
                "principal": D("0.01"),
                "status": "CONFIRMED",
                "timestamp": at(3, 45),
            },
        ],
        "repays": [
            {
                "txId": 20,
                "asset": "USDT",
                "amount": D("100.01666668"),
                "interest": D("0.01666668"),
                "principal": D(100),
                "type": "MANUAL",
                "rawAsset": "USDT",
                "status": "CONFIRMED",
                "timestamp": at(6, 30),
            }
        ],
        "interest": _usdt_interest() + _btc_interest(),
        "orders": [
            _order(500, "BUY", "MARKET", "40000", "0.01", at(5, 30)),
            _order(501, "SELL", "LIMIT", "41000", "0.005", at(7, 10)),
            open_order,
        ],
        "trades": [
            _trade(1000, 500, "40000", "0.01", "0.00001", "BTC", buyer=True),
            _trade(1001, 501, "41000", "0.005", "0.205", "USDT", buyer=False),
        ],
        "liquidations": [],
        "interest_rates": rate_rows({"USDT": USDT_RATE, "BTC": BTC_RATE}),
    }


def rate_rows(rates: dict[str, Decimal]) -> list[Row]:
    """The published daily rates, one row per asset and hour from SINCE to R3_CUTOFF."""
    hours = int((R3_CUTOFF - SINCE) / timedelta(hours=1))
    return [
        {"asset": asset, "dailyInterestRate": rate, "timestamp": SINCE + timedelta(hours=h)}
        for asset, rate in rates.items()
        for h in range(hours)
    ]


def other_account_history() -> History:
    return {"transfers": [transfer_row(1, "USDT", "10", "ROLL_IN", at(0))]}


@dataclass
class Position:
    balance: Decimal = field(default_factory=Decimal)
    borrowed: Decimal = field(default_factory=Decimal)
    interest: Decimal = field(default_factory=Decimal)


def cross(history: History, stream: str) -> list[Row]:
    """A stream's cross-margin rows (isolated ones name their pair)."""
    return [
        r
        for r in history.get(stream, [])
        if not r.get("isolatedSymbol") and not r.get("isIsolated")
    ]


def account_state(history: History, moment: datetime) -> dict[str, Position]:
    """What the history implies for each asset at `moment` (inclusive): an independent model."""
    state: dict[str, Position] = defaultdict(Position)

    def upto(stream: str) -> list[Row]:
        time_field = STREAMS[stream].time_field if stream in STREAMS else "timestamp"
        return [
            r
            for r in cross(history, stream)
            if r[time_field] <= moment and r.get("status") != "FAILED"
        ]

    for r in upto("transfers"):
        state[r["asset"]].balance += r["amount"] if r["type"] == "ROLL_IN" else -r["amount"]
    for r in upto("loans"):
        state[r["asset"]].balance += r["principal"]
        state[r["asset"]].borrowed += r["principal"]
    for r in upto("repays"):
        if r.get("type") not in ("BNB_AUTO_REPAY", "POINT_AUTO_REPAY"):
            state[r["asset"]].balance -= r["amount"]
        state[r["asset"]].borrowed -= r["principal"]
        state[r["asset"]].interest -= r["interest"]
    for r in upto("interest"):
        if str(r["type"]).endswith("_CONVERTED"):
            state[r["asset"]].balance -= r["interest"]
        else:
            state[r["asset"]].interest += r["interest"]
    for r in upto("trades"):
        base, quote = split_symbol(r["symbol"])
        sign = 1 if r["isBuyer"] else -1
        state[base].balance += sign * r["qty"]
        state[quote].balance -= sign * r["quoteQty"]
        state[r["commissionAsset"]].balance -= r["commission"]
    for r in upto("flows"):
        state[r["asset"]].balance += r["amount"]
    return state


def split_symbol(symbol: str) -> tuple[str, str]:
    quote = next(q for q in ("USDT", "BTC", "BNB") if symbol.endswith(q))
    return symbol[: -len(quote)], quote


def snapshot_rows(
    history: History, moment: datetime, source: str, locked: dict[str, Decimal] | None = None
) -> list[Row]:
    locked = locked or {}
    rows = []
    for asset, pos in sorted(account_state(history, moment).items()):
        if not (pos.balance or pos.borrowed or pos.interest):
            continue  # the exchange lists no empty asset
        lock = locked.get(asset, D(0))
        rows.append(
            {
                "source": source,
                "snapshotTime": moment,
                "asset": asset,
                "free": pos.balance - lock,
                "locked": lock,
                "borrowed": pos.borrowed,
                "interest": pos.interest,
                "netAsset": pos.balance - pos.borrowed - pos.interest,
            }
        )
    return rows


def capital_flow_rows(history: History) -> list[Row]:
    """The capital flow the exchange keeps for this history: one row per balance movement
    (facts §5.11, docs/simulator.md), ids ascending in time. A BNB_AUTO_REPAY's BNB and the
    movements only the capital flow reports are the history's "flows" rows."""
    moves: list[tuple[datetime, int, Row]] = []

    def move(
        when: datetime, tran_id: int, asset: str, kind: str, amount: Decimal, **extra: Any
    ) -> None:
        row = {"tranId": tran_id, "timestamp": when, "asset": asset, "type": kind}
        moves.append((when, len(moves), {**row, "amount": amount, "note": "", **extra}))

    def confirmed(stream: str) -> list[Row]:
        return [r for r in cross(history, stream) if r.get("status") != "FAILED"]

    for r in confirmed("transfers"):
        sign = 1 if r["type"] == "ROLL_IN" else -1
        move(r["timestamp"], r["txId"], r["asset"], "TRANSFER", sign * r["amount"])
    for r in confirmed("loans"):
        move(r["timestamp"], r["txId"], r["asset"], "BORROW", r["principal"])
    for r in confirmed("repays"):
        if r.get("type") == "POINT_AUTO_REPAY":
            move(r["timestamp"], r["txId"], r["asset"], "REPAY", D(0))
        elif r.get("type") != "BNB_AUTO_REPAY":
            move(r["timestamp"], r["txId"], r["asset"], "REPAY", -r["amount"])
    liquidated = {r["orderId"] for r in history.get("liquidations", [])}
    for r in cross(history, "trades"):
        base, quote = split_symbol(r["symbol"])
        side = "BUY" if r["isBuyer"] else "SELL"
        income, expense = (
            (f"{side}_LIQUIDATION",) * 2
            if r["orderId"] in liquidated
            else (f"{side}_INCOME", f"{side}_EXPENSE")
        )
        legs = [(base, income, r["qty"]), (quote, expense, -r["quoteQty"])]
        if not r["isBuyer"]:
            legs = [(base, expense, -r["qty"]), (quote, income, r["quoteQty"])]
        if r["commission"]:
            legs.append((r["commissionAsset"], "TRADING_COMMISSION", -r["commission"]))
        for asset, kind, amount in legs:
            move(r["time"], r["id"], asset, kind, amount, symbol=r["symbol"])
    for r in cross(history, "interest"):
        if str(r["type"]).endswith("_CONVERTED"):
            deduction = -r["interest"]
            move(
                r["interestAccuredTime"], r["txId"], r["asset"], "BNB_INTEREST_DEDUCTION", deduction
            )
    for r in history.get("flows", []):
        move(r["timestamp"], r["tranId"], r["asset"], r["type"], r["amount"])
    rows, previous, rank = [], None, 0
    for when, _, row in sorted(moves, key=lambda m: (m[0], m[1])):
        rank = rank + 1 if when == previous else 0
        previous = when
        rows.append({"id": int(when.timestamp() * 1000) * 1000 + rank, **row})
    return rows


PARTITION_FIELD = {
    "loans": "asset",
    "repays": "asset",
    "interest": "asset",
    "transfers": "type",
    "orders": "symbol",
    "trades": "symbol",
    "account_snapshots": "source",
    "interest_rates": "asset",
}


@dataclass
class Fetch:
    """The rows one run read of one stream (written split by partition and month)."""

    stream: str
    rows: list[Row]
    run_id: str
    fetched_at: datetime
    account: str = ACCOUNT
    api: str = "current"
    extra: dict[str, Any] = field(default_factory=dict)


def write_fetch(data_dir: Path, fetch: Fetch) -> list[Path]:
    """Write a fetch into DATA_DIR/lake like the exporter: Hive partitions, one file per part."""
    schema = STREAMS[fetch.stream]
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in fetch.rows:
        key_field = PARTITION_FIELD.get(fetch.stream)
        partition = str(row[key_field]) if key_field else ""
        month = row[schema.time_field].strftime("%Y-%m")
        groups[(partition, month)].append(row)
    written = []
    for (partition, month), rows in sorted(groups.items()):
        records = [
            {
                **{f.name: None for f in schema.fields},
                **row,
                "_account": fetch.account,
                "_run_id": fetch.run_id,
                "_fetched_at": fetch.fetched_at,
                "_api": "legacy" if "amount" not in row and fetch.stream == "loans" else fetch.api,
                "_partition": partition,
                **fetch.extra,
            }
            for row in rows
        ]
        table = pa.Table.from_pylist(records, schema=schema.arrow)
        folder = data_dir / "lake" / fetch.stream / f"account={fetch.account}" / f"month={month}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{fetch.run_id}-{uuid.uuid4().hex[:8]}.parquet"
        pq.write_table(table, path)
        written.append(path)
    return written


def _until(history: History, moment: datetime) -> History:
    """What a read up to `moment` found of each stream (the capital-flow-only "flows" are
    not a stream of their own: they are in the capital flow)."""
    return {
        stream: [r for r in rows if r[STREAMS[stream].time_field] <= moment]
        for stream, rows in history.items()
        if stream in STREAMS
    }


def _from(history: History, starts: dict[str, datetime]) -> None:
    """Drop what the exchange no longer served: rows before each cut stream's start."""
    for stream, start in starts.items():
        if stream in history:
            field_name = STREAMS[stream].time_field
            history[stream] = [r for r in history[stream] if r[field_name] >= start]


@dataclass
class HandmadeCoverage:
    """What the coverage ledger says the runs read: every stream from `since` (None: no
    ledger at all) up to each run's cutoff, asked for with `--since asked` (None: no
    --since). `starts` moves some streams' start later: a retention cut, where the exchange
    served nothing older (so the lake holds nothing older either)."""

    since: datetime | None = SINCE
    asked: datetime | None = SINCE
    starts: dict[str, datetime] = field(default_factory=dict)


def _partitions(history: History) -> list[tuple[str, str]]:
    """The (stream, partition) pairs an export of this history reads."""
    assets = {
        r["asset"] for s in ("transfers", "loans", "repays", "interest") for r in history.get(s, [])
    }
    assets |= {r["commissionAsset"] for r in history.get("trades", [])}
    symbols = {
        r["symbol"] for s in ("trades", "orders", "liquidations") for r in history.get(s, [])
    }
    for symbol in symbols:
        assets |= set(split_symbol(symbol))
    pairs = [("transfers", "ROLL_IN"), ("transfers", "ROLL_OUT"), ("interest", "")]
    pairs += [("liquidations", ""), ("capital_flow", "")]
    pairs += [(stream, asset) for asset in sorted(assets) for stream in ("loans", "repays")]
    pairs += [("interest_rates", asset) for asset in sorted(assets)]
    pairs += [(stream, symbol) for symbol in sorted(symbols) for stream in ("orders", "trades")]
    return pairs


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def write_coverage(
    data_dir: Path,
    account: str,
    history: History,
    runs: tuple[tuple[str, datetime], ...],
    coverage: HandmadeCoverage,
) -> None:
    """Record in the coverage ledger that each run read every partition up to its cutoff."""
    if coverage.since is None:
        return
    asked = None if coverage.asked is None else _ms(coverage.asked)
    with CoverageLedger(data_dir) as ledger:
        for run_id, cutoff in runs:
            ledger.start_run(f"{account}-{run_id}", account, {"since_ms": asked})
            for stream, partition in _partitions(history):
                start = coverage.starts.get(stream, coverage.since)
                if start < cutoff:
                    ledger.mark(account, stream, partition, _ms(start), _ms(cutoff), 0, run_id)
            ledger.finish_run(f"{account}-{run_id}", "completed", {})


def _as_seen_by_r2(history: History) -> History:
    """r2 saw the repay while still PENDING and order 502 while still NEW."""
    seen = copy.deepcopy(_until(history, S2))
    for row in seen["repays"]:
        if row["txId"] == 20:
            row["status"] = "PENDING"
    for row in seen["orders"]:
        if row["orderId"] == 502:
            row.update(status="NEW", updateTime=at(8))
    return seen


Planter = Callable[[History], None]
RowsPlanter = Callable[[list[Row]], None]
SnapshotPlanter = RowsPlanter


def write_handmade_lake(
    data_dir: Path,
    plant: Planter | None = None,
    plant_in_truth: bool = False,
    plant_snapshots: SnapshotPlanter | None = None,
    r3_history: Planter | None = None,
    plant_flows: RowsPlanter | None = None,
    truth_plant: Planter | None = None,
    coverage: HandmadeCoverage | None = None,
) -> History:
    """Write the hand-made lake and its coverage ledger; return the history the lake holds.

    `truth_plant` changes what really happened (a legitimate situation: snapshots and the
    capital flow follow it); `plant` then changes the history the runs read (an error in the
    data), and with `plant_in_truth` the snapshots and the capital flow follow it too (only
    the audit can see it then). `plant_snapshots` and `plant_flows` change snapshot and
    capital-flow rows; `r3_history` changes only what r3 read; `coverage` what the ledger says.
    """
    coverage = coverage or HandmadeCoverage()
    truth = base_history()
    if truth_plant:
        truth_plant(truth)
    lake_history = copy.deepcopy(truth)
    if plant:
        plant(lake_history)
    if plant_in_truth:
        truth = lake_history
    snapshots = {
        "r1": snapshot_rows(truth, S1, "live"),
        "r2": snapshot_rows(truth, S2, "live", locked={"BTC": D("0.001")}),
        "r3": snapshot_rows(truth, S3, "daily"),
    }
    if plant_snapshots:
        for rows in snapshots.values():
            plant_snapshots(rows)
    lake_history["capital_flow"] = capital_flow_rows(truth)
    if plant_flows:
        plant_flows(lake_history["capital_flow"])
    _from(lake_history, coverage.starts)
    r3 = _until(copy.deepcopy(lake_history), R3_CUTOFF)
    if r3_history:
        r3_history(r3)
    runs = (
        ("r1", S1, _until(lake_history, S1)),
        ("r2", S2, _as_seen_by_r2(lake_history)),
        ("r3", R3_FETCHED, r3),
    )
    for run_id, fetched_at, seen in runs:
        for stream, rows in seen.items():
            if rows:
                write_fetch(data_dir, Fetch(stream, rows, run_id, fetched_at))
        write_fetch(data_dir, Fetch("account_snapshots", snapshots[run_id], run_id, fetched_at))
    cutoffs = (("r1", S1), ("r2", S2), ("r3", R3_CUTOFF))
    write_coverage(data_dir, ACCOUNT, {**truth, **lake_history}, cutoffs, coverage)
    _write_other_account(data_dir, coverage)
    return lake_history


def _write_other_account(data_dir: Path, coverage: HandmadeCoverage) -> None:
    other = other_account_history()
    other["capital_flow"] = capital_flow_rows(other)
    for stream in ("transfers", "capital_flow"):
        write_fetch(data_dir, Fetch(stream, other[stream], "r1", S1, OTHER_ACCOUNT))
    write_fetch(
        data_dir,
        Fetch("account_snapshots", snapshot_rows(other, at(1), "live"), "r1", S1, OTHER_ACCOUNT),
    )
    write_coverage(data_dir, OTHER_ACCOUNT, other, (("r1", S1),), coverage)
