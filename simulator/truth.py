"""The truth directory: what the account's history and state really are, for tests to compare
an export against. Rows are rendered exactly as the seed endpoints answer them (milliseconds,
current status); each file is replaced atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from simulator import render
from simulator.contract import ExchangeProtocol
from simulator.handlers import btc_usdt

Row = dict[str, Any]
SortKey = Callable[[Row], tuple[int, int]]


def write_truth(exchange: ExchangeProtocol, truth_dir: Path) -> None:
    """Write every stream, the daily snapshots and the account now. Call with the lock held."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    start, end = exchange.opened_ms, exchange.now_ms()
    pending = exchange.is_pending

    def by(time_field: str, id_field: str) -> SortKey:
        return lambda row: (row[time_field], row[id_field])

    streams: dict[str, tuple[Iterable[Row], SortKey]] = {
        "loans": (
            (render.legacy_loan_row(r, pending) for r in exchange.loans(None, start, end)),
            by("timestamp", "txId"),
        ),
        "repays": (
            (render.legacy_repay_row(r, pending) for r in exchange.repays(None, start, end)),
            by("timestamp", "txId"),
        ),
        "interest": (
            (render.interest_row(r) for r in exchange.interest(None, start, end)),
            by("interestAccuredTime", "txId"),
        ),
        "transfers": (
            (render.transfer_row(r, pending) for r in exchange.transfers(None, None, start, end)),
            by("timestamp", "txId"),
        ),
        "liquidations": (
            (render.liquidation_row(r) for r in exchange.liquidations(start, end)),
            by("updatedTime", "orderId"),
        ),
        "orders": (
            (
                render.order_row(r)
                for symbol in sorted(exchange.symbols)
                for r in exchange.orders(symbol, start, end)
            ),
            by("time", "orderId"),
        ),
        "trades": (
            (
                render.trade_row(r)
                for symbol in sorted(exchange.symbols)
                for r in exchange.trades(symbol, start, end)
            ),
            by("time", "id"),
        ),
        "account_snapshots": (
            (render.snapshot_vo(s) for s in exchange.daily_snapshots(start, end)),
            lambda row: (row["updateTime"], 0),
        ),
    }
    for name, (rows, key) in streams.items():
        write_jsonl(truth_dir / f"{name}.jsonl", sorted(rows, key=key))
    account = render.account(exchange.snapshot(), btc_usdt(exchange, end))
    write_atomic(truth_dir / "account.json", orjson.dumps(account, option=orjson.OPT_INDENT_2))


def write_jsonl(path: Path, rows: Iterable[Row]) -> None:
    write_atomic(path, b"".join(orjson.dumps(row) + b"\n" for row in rows))


def write_atomic(path: Path, data: bytes) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temp, 0o644)  # mkstemp makes it private; these are meant to be read
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
