"""The capital flow: every balance movement of a margin account, as its history implies it.

The one home of GET /sapi/v1/margin/capital-flow's rules, used by the endpoint, the truth
writer and the tests: which movement gets which type, signs, symbols and ids. Amounts are
signed (+ into the account). FAILED rows moved nothing; a row still PENDING that will confirm
moved its amount at its time, as on the ledger. Ids are `time_ms * 1000 + rank` over every
account's movements in that millisecond: ascending, stable across calls and windows.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulator import render
from simulator.contract import ExchangeProtocol
from simulator.records import RepayRecord, TradeRecord, TransferRecord

# The simulator's one type beyond Binance's documented list: interest paid in BNB moves BNB at
# once, and the documented list has no interest type (unpaid interest is a liability, not a
# movement). tranId = the interest row's txId.
BNB_INTEREST = "BNB_INTEREST_DEDUCTION"
DOCUMENTED_TYPES = (
    "TRANSFER",
    "BORROW",
    "REPAY",
    "BUY_INCOME",
    "BUY_EXPENSE",
    "SELL_INCOME",
    "SELL_EXPENSE",
    "TRADING_COMMISSION",
    "BUY_LIQUIDATION",
    "SELL_LIQUIDATION",
    "REPAY_LIQUIDATION",
    "OTHER_LIQUIDATION",
    "LIQUIDATION_FEE",
    "SMALL_BALANCE_CONVERT",
    "COMMISSION_RETURN",
    "SMALL_CONVERT",
)
FLOW_TYPES = (*DOCUMENTED_TYPES, BNB_INTEREST)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Flow:
    time_ms: int
    order: tuple[int, int, int]  # (kind rank, source id, leg): stable within a millisecond
    tran_id: int
    asset: str
    symbol: str | None  # a trade's pair; for an isolated account always its pair
    type: str
    amount: Decimal
    account: str | None = None  # None: cross; else the isolated pair


def out(amount: Decimal) -> Decimal:
    """A debit: never "-0"."""
    return ZERO - amount


def account_flows(
    exchange: ExchangeProtocol, start_ms: int, end_ms: int, isolated_symbol: str | None = None
) -> Iterator[Flow]:
    """One account's movements in [start, end], lazily, in (time, order) order."""
    where = {"isolated_symbol": isolated_symbol}
    symbol = isolated_symbol

    def flow(
        t: int,
        order: tuple[int, int, int],
        tran: int,
        asset: str,
        kind: str,
        amount: Decimal,
        pair: str | None = None,
    ) -> Flow:
        return Flow(t, order, tran, asset, symbol or pair, kind, amount, isolated_symbol)

    sources: list[Iterable[Flow]] = [
        (
            flow(r.time_ms, (0, r.tx_id, 0), r.tx_id, r.asset, "BORROW", r.principal)
            for r in exchange.loans(None, start_ms, end_ms, **where)
            if r.status != "FAILED"
        ),
        (
            flow(r.time_ms, (1, r.tx_id, 0), r.tx_id, r.debit_asset, repay_type(r), out(r.debit))
            for r in exchange.repays(None, start_ms, end_ms, **where)
            if r.status != "FAILED"
        ),
        (
            flow(r.time_ms, (2, r.tx_id, 0), r.tx_id, r.asset, "TRANSFER", signed(r))
            for r in exchange.transfers(None, None, start_ms, end_ms, **where)
            if r.status != "FAILED"
        ),
        *(
            pair_flows(
                exchange.trades(pair, start_ms, end_ms, isolated=symbol is not None),
                base,
                quote,
                flow,
            )
            for pair, (base, quote) in sorted(traded_pairs(exchange, isolated_symbol))
        ),
        (
            flow(r.time_ms, (4, r.tx_id, 0), r.tx_id, r.asset, BNB_INTEREST, out(r.interest))
            for r in exchange.interest(None, start_ms, end_ms, **where)
            if r.converted
        ),
        (
            flow(r.time_ms, (5, r.tran_id, n), r.tran_id, r.asset, r.type, r.amount)
            for n, r in enumerate(exchange.flows(start_ms, end_ms, **where))
        ),
    ]
    return heapq.merge(*sources, key=lambda f: (f.time_ms, f.order))


def pair_flows(
    trades: Sequence[TradeRecord], base: str, quote: str, flow: Callable[..., Flow]
) -> Iterator[Flow]:
    """A pair's fills as flows (a function of its own: a generator expression here would
    read `base` and `quote` late, after the loop over pairs had moved on)."""
    for t in trades:
        for n, (asset, kind, amount) in enumerate(trade_legs(t, base, quote)):
            yield flow(t.time_ms, (3, t.id, n), t.id, asset, kind, amount, t.symbol)


def traded_pairs(
    exchange: ExchangeProtocol, isolated_symbol: str | None
) -> list[tuple[str, tuple[str, str]]]:
    if isolated_symbol is None:
        return list(exchange.symbols.items())
    return [(isolated_symbol, exchange.symbols[isolated_symbol])]


def all_flows(exchange: ExchangeProtocol, start_ms: int, end_ms: int) -> Iterator[Flow]:
    """Every account's movements (cross first, then each isolated pair), merged in time."""
    accounts: list[str | None] = [None, *exchange.isolated_symbols]
    streams = [account_flows(exchange, start_ms, end_ms, a) for a in accounts]
    return heapq.merge(*streams, key=lambda f: f.time_ms)


def numbered(found: Iterable[Flow]) -> Iterator[tuple[int, Flow]]:
    """(id, flow): `found` must come in time order with every flow of each millisecond."""
    previous, rank = -1, 0
    for flow in found:
        rank = rank + 1 if flow.time_ms == previous else 0
        previous = flow.time_ms
        yield flow.time_ms * 1000 + rank, flow


def flow_row(flow_id: int, flow: Flow) -> dict[str, Any]:
    """The documented field order (SDK model): id, tranId, timestamp, asset, symbol (when
    there is one), type, amount, then `note` (only institutional loans have one: "" here)."""
    row: dict[str, Any] = {
        "id": flow_id,
        "tranId": flow.tran_id,
        "timestamp": flow.time_ms,
        "asset": flow.asset,
    }
    if flow.symbol is not None:
        row["symbol"] = flow.symbol
    row.update(type=flow.type, amount=render.dec(flow.amount), note="")
    return row


def flow_rows(
    exchange: ExchangeProtocol, start_ms: int, end_ms: int, isolated_symbol: str | None = None
) -> Iterator[dict[str, Any]]:
    """One account's rows in [start, end], ascending by id (the truth file's order)."""
    for flow_id, flow in numbered(all_flows(exchange, start_ms, end_ms)):
        if flow.account == isolated_symbol:
            yield flow_row(flow_id, flow)


def repay_type(record: RepayRecord) -> str:
    return "REPAY_LIQUIDATION" if record.by_liquidation else "REPAY"


def signed(record: TransferRecord) -> Decimal:
    return record.amount if record.type == "ROLL_IN" else out(record.amount)


def trade_legs(trade: TradeRecord, base: str, quote: str) -> Sequence[tuple[str, str, Decimal]]:
    """(asset, type, amount) of a fill: what came in, what went out, then the commission. A
    force liquidation's fills are BUY_LIQUIDATION / SELL_LIQUIDATION on both legs."""
    side = "BUY" if trade.is_buyer else "SELL"
    if trade.is_liquidation:
        income = expense = f"{side}_LIQUIDATION"
    else:
        income, expense = f"{side}_INCOME", f"{side}_EXPENSE"
    if trade.is_buyer:
        legs = [(base, income, trade.qty), (quote, expense, out(trade.quote_qty))]
    else:
        legs = [(base, expense, out(trade.qty)), (quote, income, trade.quote_qty)]
    if trade.commission:
        legs.append((trade.commission_asset, "TRADING_COMMISSION", out(trade.commission)))
    return legs
