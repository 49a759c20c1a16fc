"""Market and reference-data endpoints: exchange info (spot, USDⓈ-M, COIN-M), klines, coin
configuration, isolated pairs, margin fee data and interest-rate history (facts-endpoints §1-8).

They describe the simulated market (its symbols, price paths and hourly rate schedule), not the
account's history. Choices the docs leave open are listed in docs/simulator.md, "API generations
and reference endpoints".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from simulator import render
from simulator.contract import ExchangeProtocol
from simulator.errors import ILLEGAL_PARAMETER, ApiError
from simulator.handlers import (
    Call,
    Json,
    known_asset,
    known_symbol,
    required_asset,
    required_symbol,
)
from simulator.klines import INTERVALS, Bar, tape_of
from simulator.limits import API_LIMIT, FUTURES_LIMIT
from simulator.params import DAY_MS, HOUR_MS, MINUTE_MS, Params
from simulator.prices import UNIT, SymbolSpec, from_units

# -- exchange information ------------------------------------------------------------------------

SYMBOLS_FORMAT = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'
PERMISSION_FORMAT = re.compile(r"^[A-Z0-9_]{1,20}$")
DEFAULT_PERMISSIONS = frozenset({"SPOT", "MARGIN", "LEVERAGED"})
SYMBOL_STATUSES = ("TRADING", "END_OF_DAY", "HALT", "BREAK", "CANCEL_ONLY")
PERMISSION_SETS = [["SPOT", "MARGIN"]]
# what the engine executes (docs/simulator.md): no stop, iceberg, OCO or trailing orders
ORDER_TYPES = ["LIMIT", "MARKET"]
STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
MAX_PRICE = Decimal(1_000_000)
MAX_QTY = Decimal(9_000_000)
MAX_NOTIONAL = Decimal(9_000_000)
# the smallest order value by quote asset (Binance's current figures); others: 5 USDT's worth
MIN_NOTIONAL = {
    "USDT": Decimal(5),
    "USDC": Decimal(5),
    "FDUSD": Decimal(5),
    "BTC": Decimal("0.0001"),
    "ETH": Decimal("0.001"),
    "BNB": Decimal("0.01"),
}
MIN_NOTIONAL_USDT = Decimal(5)


def rate_limit(kind: str, interval: str, number: int, limit: int) -> Json:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": number, "limit": limit}


SPOT_RATE_LIMITS = [
    rate_limit("REQUEST_WEIGHT", "MINUTE", 1, API_LIMIT),
    rate_limit("ORDERS", "SECOND", 10, 50),
    rate_limit("ORDERS", "DAY", 1, 160_000),
    rate_limit("RAW_REQUESTS", "MINUTE", 5, 61_000),
]
FAPI_RATE_LIMITS = [
    rate_limit("REQUEST_WEIGHT", "MINUTE", 1, FUTURES_LIMIT),
    rate_limit("ORDERS", "MINUTE", 1, 1200),
    rate_limit("ORDERS", "SECOND", 10, 300),
]
DAPI_RATE_LIMITS = [
    rate_limit("REQUEST_WEIGHT", "MINUTE", 1, FUTURES_LIMIT),
    rate_limit("ORDERS", "MINUTE", 1, 1200),
]


def exchange_info(call: Call) -> Json:
    """GET /api/v3/exchangeInfo: every margin pair as a spot symbol with its filters."""
    chosen = chosen_symbols(call.params, call.exchange)
    show_sets = call.params.choice("showPermissionSets", ("true", "false")) != "false"
    specs = call.exchange.market.symbol_specs
    return {
        "timezone": "UTC",
        "serverTime": call.server_ms,
        "rateLimits": SPOT_RATE_LIMITS,
        "exchangeFilters": [],
        "symbols": [spot_symbol(specs[s], call.exchange, show_sets) for s in chosen],
    }


def chosen_symbols(params: Params, exchange: ExchangeProtocol) -> list[str]:
    """The symbols asked for: `symbol`, `symbols`, or those matching permissions and status."""
    single, many = params.text("symbol"), params.text("symbols")
    permissions, status = params.text("permissions"), params.text("symbolStatus")
    named = single is not None or many is not None
    if (single is not None and many is not None) or (named and (permissions or status)):
        raise ApiError(-1128)
    if status is not None:
        params.choice("symbolStatus", SYMBOL_STATUSES)
    known = sorted(exchange.symbols)
    if single is not None:
        names = [single]
    elif many is not None:
        names = symbol_list(many)
    else:
        wanted = permission_list(permissions) if permissions else DEFAULT_PERMISSIONS
        listed = any(p in wanted for p in PERMISSION_SETS[0])
        # every simulated symbol has the same permission set; a delisted one is in BREAK
        return [s for s in known if listed and status in (None, symbol_status(exchange, s))]
    for name in names:
        if name not in exchange.symbols:
            raise ApiError(-1121)
    return names


def symbol_status(exchange: ExchangeProtocol, symbol: str) -> str:
    """TRADING, or BREAK once the pair is delisted (its history stays served)."""
    return "BREAK" if symbol in exchange.delisted else "TRADING"


def symbol_list(text: str) -> list[str]:
    if not re.match(SYMBOLS_FORMAT, text):
        raise ApiError.param(-1100, name="symbols", legal=SYMBOLS_FORMAT)
    return [str(name) for name in json.loads(text)]


def permission_list(text: str) -> frozenset[str]:
    try:
        names = json.loads(text) if text.startswith("[") else [text]
    except ValueError as exc:
        raise ApiError.param(-1130, name="permissions") from exc
    if not isinstance(names, list) or not all(
        isinstance(n, str) and PERMISSION_FORMAT.match(n) for n in names
    ):
        raise ApiError.param(-1130, name="permissions")
    return frozenset(names)


def spot_symbol(spec: SymbolSpec, exchange: ExchangeProtocol, show_sets: bool) -> Json:
    flags = dict.fromkeys(
        (
            "icebergAllowed",
            "ocoAllowed",
            "otoAllowed",
            "opoAllowed",
            "allowTrailingStop",
            "cancelReplaceAllowed",
            "amendAllowed",
            "pegInstructionsAllowed",
        ),
        False,
    )
    return {
        "symbol": spec.symbol,
        "status": symbol_status(exchange, spec.symbol),
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ORDER_TYPES,
        **flags,
        "quoteOrderQtyMarketAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": symbol_filters(spec, min_notional(spec.quote, exchange)),
        "permissions": [],
        "permissionSets": PERMISSION_SETS if show_sets else [],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": STP_MODES,
    }


def symbol_filters(spec: SymbolSpec, notional: Decimal) -> list[Json]:
    """Binance's filter set; prices and quantities follow the engine's tick and step."""
    dec = render.dec
    zero = dec(Decimal(0))
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": dec(spec.tick),
            "maxPrice": dec(MAX_PRICE),
            "tickSize": dec(spec.tick),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": dec(spec.step),
            "maxQty": dec(MAX_QTY),
            "stepSize": dec(spec.step),
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": zero, "maxQty": dec(MAX_QTY), "stepSize": zero},
        {
            "filterType": "TRAILING_DELTA",
            "minTrailingAboveDelta": 10,
            "maxTrailingAboveDelta": 2000,
            "minTrailingBelowDelta": 10,
            "maxTrailingBelowDelta": 2000,
        },
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": "5",
            "bidMultiplierDown": "0.2",
            "askMultiplierUp": "5",
            "askMultiplierDown": "0.2",
            "avgPriceMins": 5,
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": dec(notional),
            "applyMinToMarket": True,
            "maxNotional": dec(MAX_NOTIONAL),
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ]


def min_notional(quote: str, exchange: ExchangeProtocol) -> Decimal:
    known = MIN_NOTIONAL.get(quote)
    if known is not None:
        return known
    usdt = exchange.market.asset_specs[quote].usdt_price
    return from_units(-(-int(MIN_NOTIONAL_USDT * UNIT) * UNIT // int(usdt * UNIT)))


def futures_exchange_info(call: Call) -> Json:
    """GET /fapi/v1/exchangeInfo: the simulated exchange lists no USDⓈ-M contracts."""
    return {
        "timezone": "UTC",
        "serverTime": call.server_ms,
        "rateLimits": FAPI_RATE_LIMITS,
        "exchangeFilters": [],
        "assets": [],
        "symbols": [],
    }


def delivery_exchange_info(call: Call) -> Json:
    """GET /dapi/v1/exchangeInfo: no COIN-M contracts either."""
    return {
        "timezone": "UTC",
        "serverTime": call.server_ms,
        "rateLimits": DAPI_RATE_LIMITS,
        "exchangeFilters": [],
        "symbols": [],
    }


# -- klines ----------------------------------------------------------------------------------------

TIME_ZONE = re.compile(r"^([+-]?)([0-9]{1,2})(?::([0-9]{2}))?$")
TIME_ZONE_RANGE = (-12 * HOUR_MS, 14 * HOUR_MS)


def klines(call: Call) -> Json:
    """GET /api/v3/klines: candles of the engine's price path (see simulator.klines)."""
    symbol = required_symbol(call)
    interval = call.params.text("interval", required=True)
    if interval not in INTERVALS:
        raise ApiError(-1120)
    start = call.params.integer("startTime")
    end = call.params.integer("endTime")
    offset = time_zone(call.params)
    limit = call.params.bounded("limit", 500, 1, 1000)
    found = tape_of(call.exchange).klines(symbol, interval, offset, start, end, limit, call.now_ms)
    return [kline_row(k.open_ms, k.close_ms, k.bar) for k in found]


def time_zone(params: Params) -> int:
    """The timeZone parameter as an offset in ms: `0`, `8`, `-1:00`, `+05:45` (−12:00…+14:00)."""
    text = params.text("timeZone")
    if text is None:
        return 0
    match = TIME_ZONE.match(text)
    if match is None or int(match.group(3) or 0) >= 60:
        raise ApiError.param(-1130, name="timeZone")
    sign = -1 if match.group(1) == "-" else 1
    offset = sign * (int(match.group(2)) * HOUR_MS + int(match.group(3) or 0) * MINUTE_MS)
    if not TIME_ZONE_RANGE[0] <= offset <= TIME_ZONE_RANGE[1]:
        raise ApiError.param(-1130, name="timeZone")
    return offset


def kline_row(open_ms: int, close_ms: int, bar: Bar) -> Json:
    def dec(units: int) -> str:
        return render.dec(from_units(units))

    return [
        open_ms,
        dec(bar.open),
        dec(bar.high),
        dec(bar.low),
        dec(bar.close),
        dec(bar.volume),
        close_ms,
        dec(bar.quote_volume),
        bar.trades,
        dec(bar.taker_base),
        dec(bar.taker_quote),
        "0",
    ]


# -- all coins' information (the wallet's view of each asset) -------------------------------------


@dataclass(frozen=True, slots=True)
class Network:
    code: str
    name: str
    address_regex: str
    min_confirm: int
    unlock_confirm: int
    arrival_minutes: int
    memo_regex: str = ""


EVM_ADDRESS = "^(0x)[0-9A-Fa-f]{40}$"
NETWORKS = {
    n.code: n
    for n in (
        Network(
            "BTC",
            "Bitcoin",
            "^[13][a-km-zA-HJ-NP-Z1-9]{25,34}$|^(bc1)[0-9A-Za-z]{39,59}$",
            1,
            2,
            60,
        ),
        Network("ETH", "Ethereum (ERC20)", EVM_ADDRESS, 6, 64, 5),
        Network("BSC", "BNB Smart Chain (BEP20)", EVM_ADDRESS, 5, 0, 1),
        Network("TRX", "Tron (TRC20)", "^T[1-9A-HJ-NP-Za-km-z]{33}$", 1, 0, 1),
        Network("SOL", "Solana", "^[1-9A-HJ-NP-Za-km-z]{32,44}$", 1, 0, 1),
        Network("XRP", "Ripple", "^r[1-9A-HJ-NP-Za-km-z]{25,34}$", 1, 0, 1, "^[0-9]{1,10}$"),
        Network("ADA", "Cardano", "^(([0-9A-Za-z]{57,59})|([0-9A-Za-z]{100,104}))$", 30, 0, 4),
    )
}
# coin → its networks (the first is the default): (network, withdrawFee, withdrawMin)
COIN_NETWORKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "BTC": (("BTC", "0.00002", "0.0001"), ("BSC", "0.000002", "0.000004")),
    "ETH": (("ETH", "0.0008", "0.0016"), ("BSC", "0.00001", "0.00002")),
    "BNB": (("BSC", "0.00001", "0.0001"),),
    "USDT": (("ETH", "3", "6"), ("BSC", "0", "0.01"), ("TRX", "1", "10")),
    "USDC": (("ETH", "3", "6"), ("BSC", "0", "0.01")),
    "SOL": (("SOL", "0.001", "0.01"),),
    "XRP": (("XRP", "0.2", "2"),),
    "ADA": (("ADA", "0.8", "1.6"),),
}
LEDGER_STEP = render.dec(from_units(1))  # every amount moves in steps of 1e-8


def capital_config(call: Call) -> Json:
    """GET /sapi/v1/capital/config/getall: every asset, with its deposit/withdraw networks."""
    return [coin_info(asset) for asset in call.exchange.assets]


def coin_info(coin: str) -> Json:
    zero = render.dec(Decimal(0))
    networks = COIN_NETWORKS.get(coin, ((coin, "0", "0"),))
    return {
        "coin": coin,
        "depositAllEnable": True,
        "withdrawAllEnable": True,
        "name": render.ASSET_NAMES.get(coin, coin),
        # the spot wallet is not simulated: its balances are zero (docs/simulator.md)
        **dict.fromkeys(
            ("free", "locked", "freeze", "withdrawing", "ipoing", "ipoable", "storage"), zero
        ),
        "isLegalMoney": False,
        "trading": True,
        "networkList": [
            network_info(coin, code, fee, minimum, default=i == 0)
            for i, (code, fee, minimum) in enumerate(networks)
        ],
    }


def network_info(coin: str, code: str, fee: str, minimum: str, *, default: bool) -> Json:
    network = NETWORKS.get(code, Network(code, code, "", 1, 0, 1))
    return {
        "network": code,
        "coin": coin,
        "withdrawIntegerMultiple": LEDGER_STEP,
        "isDefault": default,
        "depositEnable": True,
        "withdrawEnable": True,
        "depositDesc": "",
        "withdrawDesc": "",
        "specialTips": "",
        "specialWithdrawTips": "",
        "name": network.name,
        "resetAddressStatus": False,
        "addressRegex": network.address_regex,
        "memoRegex": network.memo_regex,
        "withdrawFee": fee,
        "withdrawMin": minimum,
        "withdrawMax": "9999999999",
        "withdrawInternalMin": LEDGER_STEP,
        "depositDust": LEDGER_STEP,
        "minConfirm": network.min_confirm,
        "unLockConfirm": network.unlock_confirm,
        "sameAddress": bool(network.memo_regex),
        "withdrawTag": bool(network.memo_regex),
        "estimatedArrivalTime": network.arrival_minutes,
        "busy": False,
    }


# -- margin reference data -------------------------------------------------------------------------

ISOLATED_LEVERAGE = "10"
MAX_VIP_LEVEL = 9


def isolated_all_pairs(call: Call) -> Json:
    """GET /sapi/v1/margin/isolated/allPairs: every margin pair is also an isolated pair."""
    symbol = known_symbol(call, required=False)
    pairs, delisted = call.exchange.symbols, call.exchange.delisted
    chosen = [symbol] if symbol is not None else sorted(pairs)
    return [
        {k: v for k, v in render.pair_info(s, *pairs[s], delisted.get(s)).items() if k != "id"}
        for s in chosen
    ]


def vip_level(call: Call) -> int:
    """The VIP level asked for; the simulated account is VIP 0 and every level pays the same."""
    return call.params.bounded("vipLevel", 0, 0, MAX_VIP_LEVEL)


def cross_margin_data(call: Call) -> Json:
    """GET /sapi/v1/margin/crossMarginData: rates and limits per asset, rate of this hour."""
    vip = vip_level(call)
    coin = known_asset(call, "coin", required=False)
    exchange = call.exchange
    coins = [coin] if coin is not None else list(exchange.assets)
    rows = []
    for asset in coins:
        daily = exchange.rate(asset, call.now_ms)
        rows.append(
            {
                "vipLevel": vip,
                "coin": asset,
                "transferIn": True,
                "borrowable": True,
                "dailyInterest": render.dec(daily),
                "yearlyInterest": render.dec(daily * 365),
                "borrowLimit": render.dec(borrow_limit(exchange, asset)),
                "marginablePairs": [
                    s for s, pair in sorted(exchange.symbols.items()) if asset in pair
                ],
            }
        )
    return rows


def isolated_margin_data(call: Call) -> Json:
    """GET /sapi/v1/margin/isolatedMarginData: base then quote, per isolated pair."""
    vip = vip_level(call)
    symbol = known_symbol(call, required=False)
    exchange = call.exchange
    chosen = [symbol] if symbol is not None else sorted(exchange.symbols)
    return [
        {
            "vipLevel": vip,
            "symbol": s,
            "leverage": ISOLATED_LEVERAGE,
            "data": [
                {
                    "coin": asset,
                    "dailyInterest": render.dec(exchange.rate(asset, call.now_ms)),
                    "borrowLimit": render.dec(borrow_limit(exchange, asset)),
                }
                for asset in exchange.symbols[s]
            ],
        }
        for s in chosen
    ]


def borrow_limit(exchange: ExchangeProtocol, asset: str) -> Decimal:
    return exchange.market.asset_specs[asset].borrow_limit


# -- interest rates --------------------------------------------------------------------------------

RATE_DEFAULT_SPAN_MS = 7 * DAY_MS
RATE_MAX_SPAN_MS = 93 * DAY_MS  # what ccxt asks for; Binance's page says one month
RATE_RETENTION_MS = 183 * DAY_MS  # "up to 6 months of records via API"
MAX_NEXT_RATE_ASSETS = 20
_EIGHT_DP = Decimal(1).scaleb(-8)


def interest_rate_history(call: Call) -> Json:
    """GET /sapi/v1/margin/interestRateHistory: one row per hour (the engine's rates change
    hourly), newest first, at most `limit`."""
    asset = required_asset(call)
    vip = vip_level(call)
    limit = call.params.bounded("limit", 20, 1, 100)
    end = call.params.integer("endTime")
    end = call.now_ms if end is None else end
    start = call.params.integer("startTime")
    start = end - RATE_DEFAULT_SPAN_MS if start is None else start
    too_old = start < call.now_ms - RATE_RETENTION_MS
    if end > call.now_ms or start > end or end - start > RATE_MAX_SPAN_MS or too_old:
        raise ApiError(-1100, ILLEGAL_PARAMETER)
    rows: list[Json] = []
    hour = end - end % HOUR_MS
    while hour >= start and len(rows) < limit:
        rows.append(render.interest_rate_row(asset, call.exchange.rate(asset, hour), hour, vip))
        hour -= HOUR_MS
    return rows


def next_hourly_interest_rate(call: Call) -> Json:
    """GET /sapi/v1/margin/next-hourly-interest-rate: the next hour's daily rate / 24."""
    names = call.params.required_text("assets").split(",")
    if len(names) > MAX_NEXT_RATE_ASSETS:
        raise ApiError.param(-1130, name="assets")
    if any(name not in call.exchange.assets for name in names):
        raise ApiError(-3027)
    call.params.choice("isIsolated", ("TRUE", "FALSE", "true", "false"), required=True)
    next_hour = call.now_ms - call.now_ms % HOUR_MS + HOUR_MS
    return [
        {
            "asset": name,
            "nextHourlyInterestRate": render.dec(hourly(call.exchange, name, next_hour)),
        }
        for name in names
    ]


def hourly(exchange: ExchangeProtocol, asset: str, time_ms: int) -> Decimal:
    return (exchange.rate(asset, time_ms) / 24).quantize(_EIGHT_DP, rounding=ROUND_HALF_UP)
