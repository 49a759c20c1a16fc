"""The truth directory: what the account's history and state really are, for tests to compare
an export against. Rows are rendered exactly as the seed endpoints answer them (milliseconds,
current status), streamed to disk in time order; each file is replaced atomically.

Files: `<stream>.jsonl` for each cross-margin history stream, `account_snapshots.jsonl`,
`capital_flow.jsonl` (every cross row, ascending by id, no retention cut), `interest_rates.jsonl`
(each asset's hourly daily-rate rows, as interestRateHistory answers them, from the opening
hour or the oldest the endpoint serves, whichever is earlier), `prices.jsonl` (every symbol's
closed daily klines, `{"symbol", "kline": [...]}`), `account.json`; and per isolated pair
`isolated/<symbol>/<stream>.jsonl`, `isolated/<symbol>/capital_flow.jsonl` and
`isolated/<symbol>/account.json`.
"""

from __future__ import annotations

import heapq
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from simulator import capital, render
from simulator.contract import ExchangeProtocol
from simulator.handlers import btc_usdt
from simulator.klines import tape_of
from simulator.prices import DAY_MS, HOUR_MS
from simulator.reference import RATE_RETENTION_MS, kline_row

Row = dict[str, Any]
SortKey = Callable[[Row], tuple[int, int]]
CHUNK = 4096  # rows per write
KLINES_LIMIT = 1000


def write_truth(exchange: ExchangeProtocol, truth_dir: Path) -> None:
    """Write every stream, the daily snapshots, the rates and the accounts now. Call with the
    lock held."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    start, end = exchange.opened_ms, exchange.now_ms()
    for name, rows in history_streams(exchange, start, end, None).items():
        write_jsonl(truth_dir / f"{name}.jsonl", rows)
    snapshots = (render.snapshot_vo(s) for s in exchange.daily_snapshots(start, end))
    write_jsonl(truth_dir / "account_snapshots.jsonl", snapshots)
    write_jsonl(truth_dir / "capital_flow.jsonl", capital.flow_rows(exchange, start, end))
    # the rate history is the market's: served for its last months whenever the account opened
    rates_from = min(start, end - RATE_RETENTION_MS)
    write_jsonl(truth_dir / "interest_rates.jsonl", rate_rows(exchange, rates_from, end))
    write_jsonl(truth_dir / "prices.jsonl", price_rows(exchange, end))
    account = render.account(exchange.snapshot(), btc_usdt(exchange, end))
    write_atomic(truth_dir / "account.json", orjson.dumps(account, option=orjson.OPT_INDENT_2))
    for symbol in exchange.isolated_symbols:
        write_isolated(exchange, truth_dir / "isolated" / symbol, symbol, start, end)


def write_isolated(
    exchange: ExchangeProtocol, where: Path, symbol: str, start: int, end: int
) -> None:
    where.mkdir(parents=True, exist_ok=True)
    for name, rows in history_streams(exchange, start, end, symbol).items():
        write_jsonl(where / f"{name}.jsonl", rows)
    write_jsonl(where / "capital_flow.jsonl", capital.flow_rows(exchange, start, end, symbol))
    snap = exchange.snapshot(isolated_symbol=symbol)
    pair = render.isolated_pair(
        symbol, *exchange.symbols[symbol], snap, exchange.price(symbol, end)
    )
    write_atomic(where / "account.json", orjson.dumps(pair, option=orjson.OPT_INDENT_2))


def history_streams(
    exchange: ExchangeProtocol, start: int, end: int, pair: str | None
) -> dict[str, Iterable[Row]]:
    """One account's history streams as rendered rows, lazily, each ascending by (time, id)
    (the engine appends in that order; orders and trades are merged across symbols)."""
    pending = exchange.is_pending
    where = {"isolated_symbol": pair}
    isolated = pair is not None
    symbols = [pair] if pair is not None else sorted(exchange.symbols)

    def by(time_field: str, id_field: str) -> SortKey:
        return lambda row: (row[time_field], row[id_field])

    streams: dict[str, Iterable[Row]] = {
        "loans": (
            render.legacy_loan_row(r, pending) for r in exchange.loans(None, start, end, **where)
        ),
        "repays": (
            render.legacy_repay_row(r, pending) for r in exchange.repays(None, start, end, **where)
        ),
        "interest": (render.interest_row(r) for r in exchange.interest(None, start, end, **where)),
        "transfers": (
            render.transfer_row(r, pending)
            for r in exchange.transfers(None, None, start, end, **where)
        ),
        "liquidations": (
            ()
            if isolated
            else (render.liquidation_row(r) for r in exchange.liquidations(start, end))
        ),
        "orders": heapq.merge(
            *(
                map(render.order_row, exchange.orders(s, start, end, isolated=isolated))
                for s in symbols
            ),
            key=by("time", "orderId"),
        ),
        "trades": heapq.merge(
            *(
                map(render.trade_row, exchange.trades(s, start, end, isolated=isolated))
                for s in symbols
            ),
            key=by("time", "id"),
        ),
    }
    return streams


def rate_rows(exchange: ExchangeProtocol, start: int, end: int) -> Iterator[Row]:
    """Per asset (in the exchange's order), one row per hour from the opening hour to now."""
    first = start // HOUR_MS * HOUR_MS
    for asset in exchange.assets:
        for hour in range(first, end + 1, HOUR_MS):
            yield render.interest_rate_row(asset, exchange.rate(asset, hour), hour)


def price_rows(exchange: ExchangeProtocol, end: int) -> Iterator[Row]:
    """Per symbol, every closed daily candle since the market's listing, as GET /api/v3/klines
    answers it (an array), beside the symbol it belongs to."""
    tape = tape_of(exchange)
    last_open = end - end % DAY_MS - DAY_MS
    for symbol in sorted(exchange.symbols):
        start = tape.listing_ms - tape.listing_ms % DAY_MS  # the listing day's candle too
        while start <= last_open:
            found = tape.klines(symbol, "1d", 0, start, last_open, KLINES_LIMIT, end)
            for kline in found:
                yield {
                    "symbol": symbol,
                    "kline": kline_row(kline.open_ms, kline.close_ms, kline.bar),
                }
            if len(found) < KLINES_LIMIT:
                break
            start = found[-1].open_ms + DAY_MS


def write_jsonl(path: Path, rows: Iterable[Row]) -> None:
    """Stream rows to a temporary file in chunks, then move it into place."""

    def chunks() -> Iterator[bytes]:
        batch: list[bytes] = []
        for row in rows:
            batch.append(orjson.dumps(row) + b"\n")
            if len(batch) == CHUNK:
                yield b"".join(batch)
                batch.clear()
        yield b"".join(batch)

    write_atomic(path, chunks())


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            if isinstance(data, bytes):
                out.write(data)
            else:
                for part in data:
                    out.write(part)
        os.chmod(temp, 0o644)  # mkstemp makes it private; these are meant to be read
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
