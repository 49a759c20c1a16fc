"""What each endpoint does: read the parameters, ask the ledger, render the answer.

Handlers run with the exchange lock held and the ledger caught up to `call.now_ms`. They raise
`ApiError` for anything the real API would refuse; the app turns it into Binance's error JSON.
"""

from __future__ import annotations

import collections
import itertools
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from simulator import capital, render
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
from simulator.records import OrderRecord, TradeRecord, TransferRecord

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


def isolated_flag(call: Call, symbol: str | None) -> bool:
    """`isIsolated=TRUE`: the pair's isolated account, which must exist; else the cross one."""
    if not call.params.flag("isIsolated"):
        return False
    if symbol is None:
        raise ApiError.param(-1102, name="symbol")
    if symbol not in call.exchange.isolated_symbols:
        raise ApiError(-11001)
    return True


def isolated_symbol(call: Call, name: str = "isolatedSymbol") -> str | None:
    """The isolated pair a history or account call names (None: the cross account). A pair
    without an isolated account has an empty history."""
    symbol = call.params.text(name)
    if symbol is not None and symbol not in call.exchange.symbols:
        raise ApiError(-1121)
    return symbol


def isolated_target(call: Call) -> str | None:
    """The isolated pair a borrow or repay acts on: `isIsolated=TRUE` with its `symbol`."""
    if not call.params.flag("isIsolated"):
        return None
    return required_symbol(call)


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
    asset = required_asset(call)
    return render.asset_info(asset, call.exchange.delisted.get(asset))


def all_assets(call: Call) -> Json:
    asset = known_asset(call, required=False)
    assets = [asset] if asset is not None else list(call.exchange.assets)
    return [render.asset_info(a, call.exchange.delisted.get(a)) for a in assets]


def margin_pair(call: Call) -> Json:
    symbol = call.params.required_text("symbol")
    pair = call.exchange.symbols.get(symbol)
    if pair is None:
        raise ApiError(-3028)
    return render.pair_info(symbol, *pair, call.exchange.delisted.get(symbol))


def all_pairs(call: Call) -> Json:
    symbol = known_symbol(call, required=False)
    pairs = call.exchange.symbols
    chosen = [symbol] if symbol is not None else sorted(pairs)
    return [render.pair_info(s, *pairs[s], call.exchange.delisted.get(s)) for s in chosen]


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
    pair = isolated_target(call)
    asset = required_asset(call)
    amount = call.params.required_decimal("amount")
    return {"tranId": borrow_or_repay(call, "BORROW", asset, amount, pair)}


def legacy_repay(call: Call) -> Json:
    pair = isolated_target(call)
    asset = required_asset(call)
    amount = call.params.required_decimal("amount")
    return {"tranId": borrow_or_repay(call, "REPAY", asset, amount, pair)}


def borrow_repay(call: Call) -> Json:
    asset = required_asset(call)
    pair = isolated_target(call)
    amount = call.params.required_decimal("amount")
    kind = call.params.choice("type", ("BORROW", "REPAY"), required=True)
    return {"tranId": borrow_or_repay(call, kind, asset, amount, pair)}


def borrow_or_repay(
    call: Call, kind: str | None, asset: str, amount: Decimal, pair: str | None
) -> int:
    ex = call.exchange
    if kind == "BORROW":
        return ledger_action(lambda: ex.borrow(asset, amount, isolated_symbol=pair)).tx_id
    return ledger_action(lambda: ex.repay(asset, amount, isolated_symbol=pair)).tx_id


UNIVERSAL_DIRECTIONS = {"MAIN_MARGIN": "ROLL_IN", "MARGIN_MAIN": "ROLL_OUT"}
# cross <-> isolated: (direction into the isolated account, the parameter naming its pair)
UNIVERSAL_ISOLATED = {
    "MARGIN_ISOLATEDMARGIN": ("ROLL_IN", "toSymbol"),
    "ISOLATEDMARGIN_MARGIN": ("ROLL_OUT", "fromSymbol"),
}
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
    ex = call.exchange
    isolated = UNIVERSAL_ISOLATED.get(kind or "")
    if isolated is not None:
        into, name = isolated
        pair = call.params.required_text(name)
        record = ledger_action(
            lambda: ex.transfer(asset, amount, into, isolated_symbol=pair, peer="CROSS_MARGIN")
        )
        return {"tranId": record.tx_id}
    direction = UNIVERSAL_DIRECTIONS.get(kind or "")
    if direction is None:
        # only the spot, cross-margin and isolated-margin wallets exist in the simulation
        raise ApiError(-3026)
    record = ledger_action(lambda: ex.transfer(asset, amount, direction))
    return {"tranId": record.tx_id}


# -- history ------------------------------------------------------------------------------------


def legacy_loans(call: Call) -> Json:
    pair = isolated_symbol(call)
    asset = required_asset(call)
    tx_id = call.params.integer("txId")
    span = ever(call) if tx_id is not None else window(call, THIRTY_DAYS)
    rows = call.exchange.loans(asset, span.start_ms, span.end_ms, isolated_symbol=pair)
    if tx_id is not None:
        rows = [r for r in rows if r.tx_id == tx_id]
    check = pending(call)
    return paged(call, rows, lambda r: render.legacy_loan_row(r, check))


def legacy_repays(call: Call) -> Json:
    pair = isolated_symbol(call)
    asset = required_asset(call)
    tx_id = call.params.integer("txId")
    span = ever(call) if tx_id is not None else window(call, THIRTY_DAYS)
    rows = call.exchange.repays(asset, span.start_ms, span.end_ms, isolated_symbol=pair)
    if tx_id is not None:
        rows = [r for r in rows if r.tx_id == tx_id]
    check = pending(call)
    return paged(call, rows, lambda r: render.legacy_repay_row(r, check))


def borrow_repay_history(call: Call) -> Json:
    kind = call.params.choice("type", ("BORROW", "REPAY"), required=True)
    asset = known_asset(call, required=False)
    tx_id = call.params.integer("txId")
    pair = isolated_symbol(call)
    if tx_id is not None:  # "txId takes precedence" over the time range
        span = ever(call)
    else:
        span = window(call, THIRTY_DAYS)
        if asset is None:  # silently only 7 days before endTime (facts §5.2)
            span = Window(max(span.start_ms, span.end_ms - 7 * DAY_MS), span.end_ms)
    check = pending(call)
    if kind == "BORROW":
        loans = call.exchange.loans(asset, span.start_ms, span.end_ms, isolated_symbol=pair)
        if tx_id is not None:
            loans = [r for r in loans if r.tx_id == tx_id]
        return paged(call, loans, lambda r: render.borrow_row(r, check))
    repays = call.exchange.repays(asset, span.start_ms, span.end_ms, isolated_symbol=pair)
    if tx_id is not None:
        repays = [r for r in repays if r.tx_id == tx_id]
    return paged(call, repays, lambda r: render.repay_row(r, check))


def interest_history(call: Call) -> Json:
    asset = known_asset(call, required=False)
    pair = isolated_symbol(call)
    span = window(call, INTEREST_WINDOW)
    rows = call.exchange.interest(asset, span.start_ms, span.end_ms, isolated_symbol=pair)
    return paged(call, rows, render.interest_row)


def transfer_history(call: Call) -> Json:
    asset = known_asset(call, required=False)
    type_ = call.params.choice("type", ("ROLL_IN", "ROLL_OUT"))
    pair = isolated_symbol(call)
    span = window(call, THIRTY_DAYS)
    rows = call.exchange.transfers(asset, type_, span.start_ms, span.end_ms, isolated_symbol=pair)
    check = pending(call)
    seconds = call.state.seconds_timestamps
    return paged(call, rows, lambda r: render.transfer_row(r, check, seconds=seconds))


def universal_transfer_history(call: Call) -> Json:
    kind = call.params.choice("type", UNIVERSAL_KNOWN, required=True)
    span = window(call, UNIVERSAL_TRANSFER_WINDOW)
    from_symbol, to_symbol = call.params.text("fromSymbol"), call.params.text("toSymbol")
    rows: Sequence[TransferRecord] = [
        r
        for r in call.exchange.transfers(None, None, span.start_ms, span.end_ms)
        if render.universal_type(r) == kind
        and from_symbol in (None, r.from_symbol)
        and to_symbol in (None, r.to_symbol)
    ]
    check = pending(call)
    return paged(call, rows, lambda r: render.universal_transfer_row(r, check))


def liquidation_history(call: Call) -> Json:
    """No window is documented (facts §5.6, open question 5), so none is applied: every
    liquidation by default, any startTime/endTime span. Isolated accounts are never liquidated
    by the simulator, so an isolated pair's list is empty."""
    if isolated_symbol(call) is not None:
        return {"rows": [], "total": 0}
    start = call.params.integer("startTime")
    end = call.params.integer("endTime")
    rows = call.exchange.liquidations(
        call.exchange.opened_ms if start is None else start, call.now_ms if end is None else end
    )
    return paged(call, rows, render.liquidation_row)


# -- orders and trades -------------------------------------------------------------------------


def limited(rows: Sequence[T], limit: int, *, from_start: bool) -> list[T]:
    """At most `limit` rows, ascending: the first ones from a start, else the most recent."""
    if from_start:
        return [rows[i] for i in range(min(limit, len(rows)))]
    return [rows[i] for i in range(max(0, len(rows) - limit), len(rows))]


def all_orders(call: Call) -> Json:
    symbol = required_symbol(call)
    isolated = isolated_flag(call, symbol)
    limit = call.params.bounded("limit", 500, 1, 500)
    order_id = call.params.integer("orderId")
    if order_id is not None:
        orders: Sequence[OrderRecord] = call.exchange.orders_from_id(
            symbol, order_id, limit, isolated=isolated
        )
        if "startTime" in call.params or "endTime" in call.params:
            span = window(call, ONE_DAY)
            orders = [o for o in orders if span.start_ms <= o.time_ms <= span.end_ms]
    else:
        span = window(call, ONE_DAY)
        found = call.exchange.orders(symbol, span.start_ms, span.end_ms, isolated=isolated)
        orders = limited(found, limit, from_start="startTime" in call.params)
    return [render.order_row(o) for o in orders]


def my_trades(call: Call) -> Json:
    symbol = required_symbol(call)
    isolated = isolated_flag(call, symbol)
    limit = call.params.bounded("limit", 500, 1, 1000)
    from_id = call.params.integer("fromId")
    order_id = call.params.integer("orderId")
    timed = "startTime" in call.params or "endTime" in call.params
    if from_id is not None and timed:
        raise ApiError(-1128)  # spot lists no fromId + time combination
    if from_id is not None:
        trades: Sequence[TradeRecord] = call.exchange.trades_from_id(
            symbol, from_id, limit, isolated=isolated
        )
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
    elif order_id is not None and not timed:
        found_of_order = trades_of_order(call, symbol, order_id, isolated)
        trades = limited(found_of_order, limit, from_start=True)
    else:
        span = window(call, ONE_DAY)
        found: Sequence[TradeRecord] = call.exchange.trades(
            symbol, span.start_ms, span.end_ms, isolated=isolated
        )
        if order_id is not None:
            found = [t for t in found if t.order_id == order_id]
        trades = limited(found, limit, from_start="startTime" in call.params)
    return [render.trade_row(t) for t in trades]


def trades_of_order(call: Call, symbol: str, order_id: int, isolated: bool) -> list[TradeRecord]:
    order = call.exchange.order(symbol, order_id, isolated=isolated)
    if order is None:
        return []
    found = call.exchange.trades(symbol, order.time_ms, order.update_ms, isolated=isolated)
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
    isolated = isolated_flag(call, symbol)
    order_id = call.params.integer("orderId")
    if order_id is not None:
        order = call.exchange.order(symbol, order_id, isolated=isolated)
        if order is None:
            raise ApiError(-2013)
        return render.order_row(order)
    order = find_order(
        call, symbol, lambda: call.exchange.orders(symbol, *ever_bounds(call), isolated=isolated)
    )
    return render.order_row(order)


def ever_bounds(call: Call) -> tuple[int, int]:
    span = ever(call)
    return span.start_ms, span.end_ms


def open_orders(call: Call) -> Json:
    symbol = known_symbol(call, required=False)
    isolated = isolated_flag(call, symbol)
    return [render.order_row(o) for o in call.exchange.open_orders(symbol, isolated=isolated)]


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


SIDE_EFFECTS = ("NO_SIDE_EFFECT", "MARGIN_BUY", "AUTO_REPAY", "AUTO_BORROW_REPAY")


def order_size(call: Call, type_: str) -> tuple[Decimal | None, Decimal | None]:
    """(quantity, quoteOrderQty): a MARKET order takes exactly one, any other `quantity`."""
    quantity = call.params.decimal("quantity")
    quote = call.params.decimal("quoteOrderQty")
    if type_ != "MARKET":
        if quote is not None:
            raise ApiError.param(-1106, name="quoteOrderQty")
        return call.params.required_decimal("quantity"), None
    if quantity is not None and quote is not None:
        raise ApiError.param(-1106, name="quantity")
    if quantity is None and quote is None:
        raise ApiError(-1102, EITHER_PARAM.format(name="quantity", other="quoteOrderQty"))
    return quantity, quote


def new_order(call: Call) -> Json:
    symbol = required_symbol(call)
    isolated = isolated_flag(call, symbol)
    side = call.params.choice("side", ("BUY", "SELL"), required=True)
    type_ = call.params.text("type", required=True)
    if type_ not in ORDER_TYPES:
        raise ApiError(-1116)
    quantity, quote = order_size(call, type_)
    side_effect = call.params.choice("sideEffectType", SIDE_EFFECTS) or "NO_SIDE_EFFECT"
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
        lambda: call.exchange.place_order(
            symbol,
            side,
            type_,
            quantity,
            price,
            tif,
            client_id,
            quote_order_qty=quote,
            isolated=isolated,
            side_effect=side_effect,
        )
    )
    if answer == "ACK":
        return render.order_ack(order)
    result = render.order_result(order)
    if answer == "FULL":
        result["fills"] = [render.fill_row(t) for t in fills]
    return result


def cancel_order(call: Call) -> Json:
    symbol = required_symbol(call)
    isolated = isolated_flag(call, symbol)
    try:
        order = find_order(
            call, symbol, lambda: call.exchange.open_orders(symbol, isolated=isolated)
        )
    except ApiError as exc:
        raise ApiError(-2011) from exc
    canceled = ledger_action(
        lambda: call.exchange.cancel_order(symbol, order.order_id, isolated=isolated)
    )
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


MAX_ISOLATED_SYMBOLS = 5


def isolated_account(call: Call) -> Json:
    """Every isolated pair with its totals; with `symbols` (at most 5) just those pairs, and no
    totals (as the docs describe)."""
    ex = call.exchange
    named = call.params.text("symbols")
    chosen = list(ex.isolated_symbols)
    if named is not None:
        wanted = named.split(",")
        if len(wanted) > MAX_ISOLATED_SYMBOLS:
            raise ApiError.param(-1130, name="symbols")
        for symbol in wanted:
            if symbol not in ex.symbols:
                raise ApiError(-1121)
        chosen = [s for s in chosen if s in wanted]
    pairs = []
    held = owed = Decimal(0)
    for symbol in chosen:
        snap = ex.snapshot(isolated_symbol=symbol)
        held += snap.total_asset_btc
        owed += snap.total_liability_btc
        pairs.append(
            render.isolated_pair(symbol, *ex.symbols[symbol], snap, ex.price(symbol, call.now_ms))
        )
    if named is not None:
        return {"assets": pairs}
    return {
        "assets": pairs,
        "totalAssetOfBtc": render.dec(held),
        "totalLiabilityOfBtc": render.dec(owed),
        "totalNetAssetOfBtc": render.dec(held - owed),
    }


def max_borrowable(call: Call) -> Json:
    asset = required_asset(call)
    pair = isolated_symbol(call)
    amount = ledger_action(lambda: call.exchange.max_borrowable(asset, isolated_symbol=pair))
    balance = call.exchange.snapshot(isolated_symbol=pair).balances.get(asset)
    borrowed = balance.borrowed if balance is not None else Decimal(0)
    return {"amount": render.dec(amount), "borrowLimit": render.dec(amount + borrowed)}


def max_transferable(call: Call) -> Json:
    asset = required_asset(call)
    pair = isolated_symbol(call)
    amount = ledger_action(lambda: call.exchange.max_transferable(asset, isolated_symbol=pair))
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


def capital_flow(call: Call) -> Json:
    """Cross rows, or with `symbol` that isolated pair's. With `fromId`: ids above it, oldest
    first; without: the latest `limit` rows, newest first."""
    asset = known_asset(call, required=False)
    pair = known_symbol(call, required=False)
    flow_type = call.params.text("type")
    from_id = call.params.integer("fromId")
    limit = call.params.bounded("limit", 500, 1, 1000)
    span = window(call, CAPITAL_FLOW_WINDOW)
    found = (
        capital.flow_row(flow_id, flow)
        for flow_id, flow in capital.numbered(
            capital.all_flows(call.exchange, span.start_ms, span.end_ms)
        )
        if flow.account == pair
        and asset in (None, flow.asset)
        and flow_type in (None, flow.type)
        and (from_id is None or flow_id > from_id)
    )
    if from_id is not None:
        return list(itertools.islice(found, limit))
    return list(reversed(collections.deque(found, maxlen=limit)))
