"""What each endpoint does: read the parameters, ask the ledger, render the answer.

Handlers run with the exchange lock held and the ledger caught up to `call.now_ms`. They raise
`ApiError` for anything the real API would refuse; the app turns it into Binance's error JSON.
"""

from __future__ import annotations

import heapq
import random
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from simulator import render
from simulator.contract import ExchangeError, ExchangeProtocol
from simulator.errors import EITHER_PARAM, ApiError
from simulator.params import (
    CAPITAL_FLOW_WINDOW,
    DAY_MS,
    INTEREST_WINDOW,
    ONE_DAY,
    SNAPSHOT_WINDOW,
    THIRTY_DAYS,
    UNIVERSAL_TRANSFER_WINDOW,
    Params,
    Window,
    WindowRule,
)
from simulator.records import OrderRecord, RepayRecord, TradeRecord, TransferRecord

T = TypeVar("T")
Json = Any


@dataclass(slots=True)
class SimState:
    """Server-side state that is not the ledger's: listen keys and answer modes."""

    seconds_timestamps: bool = False
    listen_keys: dict[str, str] = field(default_factory=dict)  # listenKey → API key
    rng: random.Random = field(default_factory=lambda: random.Random("listen-keys"))


@dataclass(slots=True)
class Call:
    """One request as a handler sees it."""

    exchange: ExchangeProtocol
    params: Params
    now_ms: int  # the exchange clock
    server_ms: int  # the clock the server shows (with any injected skew)
    api_key: str
    state: SimState
    has_margin_account: bool = True


Handler = Callable[[Call], Json]


# -- shared pieces -----------------------------------------------------------------------------


def paged(call: Call, rows: Sequence[T], to_json: Callable[[T], Json]) -> Json:
    """`current`/`size` paging over ascending rows: newest first, `total` = whole window."""
    current = call.params.bounded("current", 1, 1, 10**9)
    size = call.params.bounded("size", 10, 1, 100)
    total = len(rows)
    high = total - (current - 1) * size
    low = max(0, high - size)
    page = [to_json(rows[i]) for i in range(high - 1, low - 1, -1)]
    return {"rows": page, "total": total}


def pending(call: Call) -> Callable[[int], bool]:
    return call.exchange.is_pending


def ledger_action(action: Callable[[], T]) -> T:
    try:
        return action()
    except ExchangeError as exc:
        raise ApiError(exc.code, exc.msg) from exc


def known_asset(call: Call, name: str = "asset", *, required: bool = True) -> str | None:
    asset = call.params.text(name, required=required)
    if asset is not None and asset not in call.exchange.assets:
        raise ApiError(-3027)
    return asset


def required_asset(call: Call) -> str:
    asset = known_asset(call)
    assert asset is not None
    return asset


def known_symbol(call: Call, *, required: bool = True) -> str | None:
    symbol = call.params.text("symbol", required=required)
    if symbol is not None and symbol not in call.exchange.symbols:
        raise ApiError(-1121)
    return symbol


def required_symbol(call: Call) -> str:
    symbol = known_symbol(call)
    assert symbol is not None
    return symbol


def cross_only(call: Call, name: str = "isIsolated") -> None:
    """The simulated account has no isolated pairs."""
    if call.params.flag(name):
        raise ApiError(-11001)


def window(call: Call, rule: WindowRule) -> Window:
    return rule.resolve(call.params, call.now_ms)


def ever(call: Call) -> Window:
    return Window(call.exchange.opened_ms, call.now_ms)


# -- market data and time ----------------------------------------------------------------------


def server_time(call: Call) -> Json:
    return {"serverTime": call.server_ms}


def ping(call: Call) -> Json:
    return {}


def margin_asset(call: Call) -> Json:
    return render.asset_info(required_asset(call))


def all_assets(call: Call) -> Json:
    asset = known_asset(call, required=False)
    assets = [asset] if asset is not None else list(call.exchange.assets)
    return [render.asset_info(a) for a in assets]


def margin_pair(call: Call) -> Json:
    symbol = call.params.required_text("symbol")
    pair = call.exchange.symbols.get(symbol)
    if pair is None:
        raise ApiError(-3028)
    return render.pair_info(symbol, *pair)


def all_pairs(call: Call) -> Json:
    symbol = known_symbol(call, required=False)
    pairs = call.exchange.symbols
    chosen = [symbol] if symbol is not None else sorted(pairs)
    return [render.pair_info(s, *pairs[s]) for s in chosen]


def price_index(call: Call) -> Json:
    symbol = required_symbol(call)
    price = call.exchange.price(symbol, call.now_ms)
    return render.price_index(symbol, price, call.now_ms)


# -- borrow, repay, transfer (actions) ---------------------------------------------------------


def legacy_transfer(call: Call) -> Json:
    asset = required_asset(call)
    amount = call.params.required_decimal("amount")
    direction = call.params.choice("type", ("1", "2"), required=True)
    type_ = "ROLL_IN" if direction == "1" else "ROLL_OUT"
    record = ledger_action(lambda: call.exchange.transfer(asset, amount, type_))
    return {"tranId": record.tx_id}


def legacy_borrow(call: Call) -> Json:
    cross_only(call)
    asset = required_asset(call)
    amount = call.params.required_decimal("amount")
    return {"tranId": ledger_action(lambda: call.exchange.borrow(asset, amount)).tx_id}


def legacy_repay(call: Call) -> Json:
    cross_only(call)
    asset = required_asset(call)
    amount = call.params.required_decimal("amount")
    return {"tranId": ledger_action(lambda: call.exchange.repay(asset, amount)).tx_id}


def borrow_repay(call: Call) -> Json:
    asset = required_asset(call)
    cross_only(call)
    amount = call.params.required_decimal("amount")
    kind = call.params.choice("type", ("BORROW", "REPAY"), required=True)
    if kind == "BORROW":
        return {"tranId": ledger_action(lambda: call.exchange.borrow(asset, amount)).tx_id}
    return {"tranId": ledger_action(lambda: call.exchange.repay(asset, amount)).tx_id}


UNIVERSAL_DIRECTIONS = {"MAIN_MARGIN": "ROLL_IN", "MARGIN_MAIN": "ROLL_OUT"}
UNIVERSAL_KNOWN = (
    "MAIN_MARGIN",
    "MARGIN_MAIN",
    "MAIN_UMFUTURE",
    "UMFUTURE_MAIN",
    "MAIN_FUNDING",
    "FUNDING_MAIN",
    "FUNDING_MARGIN",
    "MARGIN_FUNDING",
    "UMFUTURE_MARGIN",
    "MARGIN_UMFUTURE",
    "CMFUTURE_MARGIN",
    "MARGIN_CMFUTURE",
    "MARGIN_ISOLATEDMARGIN",
    "ISOLATEDMARGIN_MARGIN",
    "ISOLATEDMARGIN_ISOLATEDMARGIN",
)


def universal_transfer(call: Call) -> Json:
    kind = call.params.choice("type", UNIVERSAL_KNOWN, required=True)
    asset = required_asset(call)
    amount = call.params.required_decimal("amount")
    direction = UNIVERSAL_DIRECTIONS.get(kind or "")
    if direction is None:
        # only the spot ↔ cross-margin wallets exist in the simulated account
        raise ApiError(-3026)
    record = ledger_action(lambda: call.exchange.transfer(asset, amount, direction))
    return {"tranId": record.tx_id}


# -- history ------------------------------------------------------------------------------------


def legacy_loans(call: Call) -> Json:
    cross_only(call, "isolatedSymbol")
    asset = required_asset(call)
    tx_id = call.params.integer("txId")
    span = ever(call) if tx_id is not None else window(call, THIRTY_DAYS)
    rows = call.exchange.loans(asset, span.start_ms, span.end_ms)
    if tx_id is not None:
        rows = [r for r in rows if r.tx_id == tx_id]
    check = pending(call)
    return paged(call, rows, lambda r: render.legacy_loan_row(r, check))


def legacy_repays(call: Call) -> Json:
    cross_only(call, "isolatedSymbol")
    asset = required_asset(call)
    tx_id = call.params.integer("txId")
    span = ever(call) if tx_id is not None else window(call, THIRTY_DAYS)
    rows = call.exchange.repays(asset, span.start_ms, span.end_ms)
    if tx_id is not None:
        rows = [r for r in rows if r.tx_id == tx_id]
    check = pending(call)
    return paged(call, rows, lambda r: render.legacy_repay_row(r, check))


def borrow_repay_history(call: Call) -> Json:
    kind = call.params.choice("type", ("BORROW", "REPAY"), required=True)
    asset = known_asset(call, required=False)
    tx_id = call.params.integer("txId")
    if call.params.text("isolatedSymbol") is not None:
        return {"rows": [], "total": 0}
    if tx_id is not None:  # "txId takes precedence" over the time range
        span = ever(call)
    else:
        span = window(call, THIRTY_DAYS)
        if asset is None:  # silently only 7 days before endTime (facts §5.2)
            span = Window(max(span.start_ms, span.end_ms - 7 * DAY_MS), span.end_ms)
    check = pending(call)
    if kind == "BORROW":
        loans = call.exchange.loans(asset, span.start_ms, span.end_ms)
        if tx_id is not None:
            loans = [r for r in loans if r.tx_id == tx_id]
        return paged(call, loans, lambda r: render.borrow_row(r, check))
    repays = call.exchange.repays(asset, span.start_ms, span.end_ms)
    if tx_id is not None:
        repays = [r for r in repays if r.tx_id == tx_id]
    return paged(call, repays, lambda r: render.repay_row(r, check))


def interest_history(call: Call) -> Json:
    asset = known_asset(call, required=False)
    if call.params.text("isolatedSymbol") is not None:
        return {"rows": [], "total": 0}
    span = window(call, INTEREST_WINDOW)
    rows = call.exchange.interest(asset, span.start_ms, span.end_ms)
    return paged(call, rows, render.interest_row)


def transfer_history(call: Call) -> Json:
    asset = known_asset(call, required=False)
    type_ = call.params.choice("type", ("ROLL_IN", "ROLL_OUT"))
    if call.params.text("isolatedSymbol") is not None:
        return {"rows": [], "total": 0}
    span = window(call, THIRTY_DAYS)
    rows = call.exchange.transfers(asset, type_, span.start_ms, span.end_ms)
    check = pending(call)
    seconds = call.state.seconds_timestamps
    return paged(call, rows, lambda r: render.transfer_row(r, check, seconds=seconds))


def universal_transfer_history(call: Call) -> Json:
    kind = call.params.choice("type", UNIVERSAL_KNOWN, required=True)
    span = window(call, UNIVERSAL_TRANSFER_WINDOW)
    rows: Sequence[TransferRecord] = [
        r
        for r in call.exchange.transfers(None, None, span.start_ms, span.end_ms)
        if render.universal_type(r) == kind
    ]
    check = pending(call)
    return paged(call, rows, lambda r: render.universal_transfer_row(r, check))


def liquidation_history(call: Call) -> Json:
    if call.params.text("isolatedSymbol") is not None:
        return {"rows": [], "total": 0}
    # Open question §10.5: no documented window; we apply the 30-day rules (stricter is safer).
    span = window(call, THIRTY_DAYS)
    rows = call.exchange.liquidations(span.start_ms, span.end_ms)
    return paged(call, rows, render.liquidation_row)


# -- orders and trades -------------------------------------------------------------------------


def limited(rows: Sequence[T], limit: int, *, from_start: bool) -> list[T]:
    """At most `limit` rows, ascending: the first ones from a start, else the most recent."""
    if from_start:
        return [rows[i] for i in range(min(limit, len(rows)))]
    return [rows[i] for i in range(max(0, len(rows) - limit), len(rows))]


def all_orders(call: Call) -> Json:
    symbol = required_symbol(call)
    cross_only(call)
    limit = call.params.bounded("limit", 500, 1, 500)
    order_id = call.params.integer("orderId")
    if order_id is not None:
        orders: Sequence[OrderRecord] = call.exchange.orders_from_id(symbol, order_id, limit)
        if "startTime" in call.params or "endTime" in call.params:
            span = window(call, ONE_DAY)
            orders = [o for o in orders if span.start_ms <= o.time_ms <= span.end_ms]
    else:
        span = window(call, ONE_DAY)
        found = call.exchange.orders(symbol, span.start_ms, span.end_ms)
        orders = limited(found, limit, from_start="startTime" in call.params)
    return [render.order_row(o) for o in orders]


def my_trades(call: Call) -> Json:
    symbol = required_symbol(call)
    cross_only(call)
    limit = call.params.bounded("limit", 500, 1, 1000)
    from_id = call.params.integer("fromId")
    order_id = call.params.integer("orderId")
    timed = "startTime" in call.params or "endTime" in call.params
    if from_id is not None and timed:
        raise ApiError(-1128)  # spot lists no fromId + time combination
    if from_id is not None:
        trades: Sequence[TradeRecord] = call.exchange.trades_from_id(symbol, from_id, limit)
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
    elif order_id is not None and not timed:
        trades = limited(trades_of_order(call, symbol, order_id), limit, from_start=True)
    else:
        span = window(call, ONE_DAY)
        found: Sequence[TradeRecord] = call.exchange.trades(symbol, span.start_ms, span.end_ms)
        if order_id is not None:
            found = [t for t in found if t.order_id == order_id]
        trades = limited(found, limit, from_start="startTime" in call.params)
    return [render.trade_row(t) for t in trades]


def trades_of_order(call: Call, symbol: str, order_id: int) -> list[TradeRecord]:
    order = call.exchange.order(symbol, order_id)
    if order is None:
        return []
    found = call.exchange.trades(symbol, order.time_ms, order.update_ms)
    return [t for t in found if t.order_id == order_id]


def find_order(call: Call, symbol: str, orders: Callable[[], Sequence[OrderRecord]]) -> OrderRecord:
    order_id = call.params.integer("orderId")
    client_id = call.params.text("origClientOrderId")
    if order_id is None and client_id is None:
        raise ApiError(-1102, EITHER_PARAM.format(name="orderId", other="origClientOrderId"))
    for order in orders():
        if order.order_id == order_id or (order_id is None and order.client_order_id == client_id):
            return order
    raise ApiError(-2013)


def query_order(call: Call) -> Json:
    symbol = required_symbol(call)
    cross_only(call)
    order_id = call.params.integer("orderId")
    if order_id is not None:
        order = call.exchange.order(symbol, order_id)
        if order is None:
            raise ApiError(-2013)
        return render.order_row(order)
    order = find_order(call, symbol, lambda: call.exchange.orders(symbol, *ever_bounds(call)))
    return render.order_row(order)


def ever_bounds(call: Call) -> tuple[int, int]:
    span = ever(call)
    return span.start_ms, span.end_ms


def open_orders(call: Call) -> Json:
    symbol = known_symbol(call, required=False)
    cross_only(call)
    return [render.order_row(o) for o in call.exchange.open_orders(symbol)]


ORDER_TYPES = ("LIMIT", "MARKET")
ALL_ORDER_TYPES = (
    "LIMIT",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
    "LIMIT_MAKER",
)


def new_order(call: Call) -> Json:
    symbol = required_symbol(call)
    cross_only(call)
    side = call.params.choice("side", ("BUY", "SELL"), required=True)
    type_ = call.params.text("type", required=True)
    if type_ not in ORDER_TYPES:
        raise ApiError(-1116)
    quantity = call.params.required_decimal("quantity")
    price = call.params.decimal("price")
    tif = call.params.choice("timeInForce", ("GTC", "IOC", "FOK"))
    if type_ == "LIMIT" and price is None:
        raise ApiError.param(-1102, name="price")
    if type_ == "LIMIT" and tif is None:
        raise ApiError.param(-1102, name="timeInForce")
    client_id = call.params.text("newClientOrderId")
    answer = call.params.choice("newOrderRespType", ("ACK", "RESULT", "FULL")) or "FULL"
    assert side is not None
    order, fills = ledger_action(
        lambda: call.exchange.place_order(symbol, side, type_, quantity, price, tif, client_id)
    )
    if answer == "ACK":
        return render.order_ack(order)
    result = render.order_result(order)
    if answer == "FULL":
        result["fills"] = [render.fill_row(t) for t in fills]
    return result


def cancel_order(call: Call) -> Json:
    symbol = required_symbol(call)
    cross_only(call)
    try:
        order = find_order(call, symbol, lambda: call.exchange.open_orders(symbol))
    except ApiError as exc:
        raise ApiError(-2011) from exc
    canceled = ledger_action(lambda: call.exchange.cancel_order(symbol, order.order_id))
    cancel_id = call.params.text("newClientOrderId") or random_id(call.state.rng, 22)
    return render.cancel_row(canceled, cancel_id, call.now_ms)


def random_id(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(length))


# -- account -----------------------------------------------------------------------------------


def btc_usdt(exchange: ExchangeProtocol, now_ms: int) -> Decimal | None:
    """BTC in USDT, for the account's USDT valuation (None without a BTC/USDT pair)."""
    for symbol, pair in exchange.symbols.items():
        if pair == ("BTC", "USDT"):
            return exchange.price(symbol, now_ms)
    return None


def margin_account(call: Call) -> Json:
    return render.account(call.exchange.snapshot(), btc_usdt(call.exchange, call.now_ms))


def isolated_account(call: Call) -> Json:
    """The simulated account has no isolated pairs: an empty list, zero totals."""
    zero = render.dec(Decimal(0))
    totals = ("totalAssetOfBtc", "totalLiabilityOfBtc", "totalNetAssetOfBtc")
    return {"assets": [], **dict.fromkeys(totals, zero)}


def max_borrowable(call: Call) -> Json:
    asset = required_asset(call)
    cross_only(call, "isolatedSymbol")
    amount = ledger_action(lambda: call.exchange.max_borrowable(asset))
    balance = call.exchange.snapshot().balances.get(asset)
    borrowed = balance.borrowed if balance is not None else Decimal(0)
    return {"amount": render.dec(amount), "borrowLimit": render.dec(amount + borrowed)}


def max_transferable(call: Call) -> Json:
    asset = required_asset(call)
    cross_only(call, "isolatedSymbol")
    amount = ledger_action(lambda: call.exchange.max_transferable(asset))
    return {"amount": render.dec(amount)}


def account_snapshot(call: Call) -> Json:
    kind = call.params.choice("type", ("SPOT", "MARGIN", "FUTURES"), required=True)
    limit = call.params.bounded("limit", 7, 7, 30)
    span = window(call, SNAPSHOT_WINDOW)
    vos: list[Json] = []
    if kind == "MARGIN" and call.has_margin_account:
        days = call.exchange.daily_snapshots(span.start_ms, span.end_ms)
        vos = [render.snapshot_vo(s) for s in limited(days, limit, from_start=True)]
    return {"code": 200, "msg": "", "snapshotVos": vos}


# -- user data streams -------------------------------------------------------------------------


def open_stream(call: Call) -> Json:
    key = random_id(call.state.rng, 60)
    call.state.listen_keys[key] = call.api_key
    return {"listenKey": key}


def keep_stream(call: Call) -> Json:
    key = call.params.required_text("listenKey")
    if call.state.listen_keys.get(key) != call.api_key:
        raise ApiError(-1125)
    return {}


def close_stream(call: Call) -> Json:
    keep_stream(call)
    del call.state.listen_keys[call.params.required_text("listenKey")]
    return {}


def close_own_streams(call: Call) -> Json:
    """Today's DELETE takes no listenKey (as the SDK sends it): it closes the caller's key;
    one that is named must exist."""
    if call.params.text("listenKey") is not None:
        return close_stream(call)
    for key, owner in list(call.state.listen_keys.items()):
        if owner == call.api_key:
            del call.state.listen_keys[key]
    return {}


# -- capital flow ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flow:
    time_ms: int
    order: tuple[int, int, int]  # (kind rank, source id, leg): stable within a millisecond
    tran_id: int
    asset: str
    symbol: str | None
    type: str
    amount: Decimal


def capital_flow(call: Call) -> Json:
    asset = known_asset(call, required=False)
    flow_type = call.params.text("type")
    from_id = call.params.integer("fromId")
    limit = call.params.bounded("limit", 500, 1, 1000)
    span = window(call, CAPITAL_FLOW_WINDOW)
    rows = []
    for flow_id, flow in numbered(flows(call.exchange, span)):
        if from_id is not None and flow_id <= from_id:
            continue
        if (asset is None or flow.asset == asset) and flow_type in (None, flow.type):
            rows.append(flow_row(flow_id, flow))
            if len(rows) == limit:
                break
    return rows


def flow_row(flow_id: int, flow: Flow) -> Json:
    row: dict[str, Json] = {
        "id": flow_id,
        "tranId": flow.tran_id,
        "timestamp": flow.time_ms,
        "asset": flow.asset,
        "type": flow.type,
        "amount": render.dec(flow.amount),
    }
    if flow.symbol is not None:
        row["symbol"] = flow.symbol
    return row


def numbered(found: Iterable[Flow]) -> Iterator[tuple[int, Flow]]:
    """Ids = time_ms * 1000 + rank within the millisecond: stable across calls and windows.
    `found` must come in (time_ms, order) order."""
    previous, rank = -1, 0
    for flow in found:
        rank = rank + 1 if flow.time_ms == previous else 0
        previous = flow.time_ms
        yield flow.time_ms * 1000 + rank, flow


def flows(exchange: ExchangeProtocol, span: Window) -> Iterator[Flow]:
    """Every balance movement in the window, lazily, in (time, order) order."""
    start, end = span.start_ms, span.end_ms
    sources = [
        (
            Flow(r.time_ms, (0, r.tx_id, 0), r.tx_id, r.asset, None, "BORROW", r.principal)
            for r in exchange.loans(None, start, end)
            if r.status != "FAILED"
        ),
        (
            Flow(r.time_ms, (1, r.tx_id, 0), r.tx_id, r.asset, None, repay_type(r), -r.amount)
            for r in exchange.repays(None, start, end)
            if r.status != "FAILED"
        ),
        (
            Flow(r.time_ms, (2, r.tx_id, 0), r.tx_id, r.asset, None, "TRANSFER", signed(r))
            for r in exchange.transfers(None, None, start, end)
            if r.status != "FAILED"
        ),
        *(
            symbol_flows(exchange.trades(symbol, start, end), *pair)
            for symbol, pair in sorted(exchange.symbols.items())
        ),
    ]
    return heapq.merge(*sources, key=lambda f: (f.time_ms, f.order))


def symbol_flows(trades: Sequence[TradeRecord], base: str, quote: str) -> Iterator[Flow]:
    for trade in trades:
        yield from trade_flows(trade, base, quote)


def repay_type(record: RepayRecord) -> str:
    return "REPAY_LIQUIDATION" if record.kind == "AUTO" else "REPAY"


def signed(record: TransferRecord) -> Decimal:
    return record.amount if record.type == "ROLL_IN" else -record.amount


def trade_flows(trade: TradeRecord, base: str, quote: str) -> list[Flow]:
    def leg(n: int, asset: str, kind: str, amount: Decimal) -> Flow:
        return Flow(trade.time_ms, (3, trade.id, n), trade.id, asset, trade.symbol, kind, amount)

    if trade.is_buyer:
        legs = [
            leg(0, base, "BUY_INCOME", trade.qty),
            leg(1, quote, "BUY_EXPENSE", -trade.quote_qty),
        ]
    else:
        legs = [
            leg(0, base, "SELL_EXPENSE", -trade.qty),
            leg(1, quote, "SELL_INCOME", trade.quote_qty),
        ]
    if trade.commission:
        legs.append(leg(2, trade.commission_asset, "TRADING_COMMISSION", -trade.commission))
    return legs
