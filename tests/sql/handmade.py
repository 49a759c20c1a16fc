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
history: repay CONFIRMED, order CANCELED; and the daily snapshot S3).
Snapshots are computed from the true history, so a planted error in the lake shows up.
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


def _transfer(tx_id: int, asset: str, amount: str, kind: str, when: datetime) -> Row:
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
            _transfer(1, "USDT", "1000", "ROLL_IN", at(0)),
            _transfer(2, "BTC", "0.1", "ROLL_IN", at(1)),
            _transfer(3, "USDT", "50", "ROLL_OUT", at(7, 30)),
            _transfer(4, "USDT", "5", "ROLL_IN", at(12)),
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
    }


def other_account_history() -> History:
    return {"transfers": [_transfer(1, "USDT", "10", "ROLL_IN", at(0))]}


@dataclass
class Position:
    balance: Decimal = field(default_factory=Decimal)
    borrowed: Decimal = field(default_factory=Decimal)
    interest: Decimal = field(default_factory=Decimal)


def account_state(history: History, moment: datetime) -> dict[str, Position]:
    """What the history implies for each asset at `moment` (inclusive): an independent model."""
    state: dict[str, Position] = defaultdict(Position)

    def upto(stream: str) -> list[Row]:
        time_field = STREAMS[stream].time_field
        return [
            r
            for r in history.get(stream, [])
            if r[time_field] <= moment and r.get("status") != "FAILED"
        ]

    for r in upto("transfers"):
        state[r["asset"]].balance += r["amount"] if r["type"] == "ROLL_IN" else -r["amount"]
    for r in upto("loans"):
        state[r["asset"]].balance += r["principal"]
        state[r["asset"]].borrowed += r["principal"]
    for r in upto("repays"):
        state[r["asset"]].balance -= r["amount"]
        state[r["asset"]].borrowed -= r["principal"]
        state[r["asset"]].interest -= r["interest"]
    for r in upto("interest"):
        state[r["asset"]].interest += r["interest"]
    for r in upto("trades"):
        base, quote = r["symbol"][:-4], r["symbol"][-4:]
        sign = 1 if r["isBuyer"] else -1
        state[base].balance += sign * r["qty"]
        state[quote].balance -= sign * r["quoteQty"]
        state[r["commissionAsset"]].balance -= r["commission"]
    return state


def snapshot_rows(
    history: History, moment: datetime, source: str, locked: dict[str, Decimal] | None = None
) -> list[Row]:
    locked = locked or {}
    rows = []
    for asset, pos in sorted(account_state(history, moment).items()):
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


PARTITION_FIELD = {
    "loans": "asset",
    "repays": "asset",
    "interest": "asset",
    "transfers": "type",
    "orders": "symbol",
    "trades": "symbol",
    "account_snapshots": "source",
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
    return {
        stream: [r for r in rows if r[STREAMS[stream].time_field] <= moment]
        for stream, rows in history.items()
    }


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
SnapshotPlanter = Callable[[list[Row]], None]


def write_handmade_lake(
    data_dir: Path,
    plant: Planter | None = None,
    plant_in_truth: bool = False,
    plant_snapshots: SnapshotPlanter | None = None,
    r3_history: Planter | None = None,
) -> History:
    """Write the hand-made lake; return the history the lake holds.

    `plant` changes the history the runs read (an error in the data); with `plant_in_truth`
    the snapshots follow the changed history too (only the audit can see it then).
    `plant_snapshots` changes snapshot rows; `r3_history` changes only what r3 read.
    """
    truth = base_history()
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
    r3 = copy.deepcopy(lake_history)
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
    other = other_account_history()
    write_fetch(data_dir, Fetch("transfers", other["transfers"], "r1", S1, OTHER_ACCOUNT))
    write_fetch(
        data_dir,
        Fetch("account_snapshots", snapshot_rows(other, at(1), "live"), "r1", S1, OTHER_ACCOUNT),
    )
    return lake_history
