"""Klines (candlesticks) from the engine's price path, in exact integers, for GET /api/v3/klines.

The engine's price is a step function at minute resolution (`MarketData.price_units`), so a
minute's candle opens and closes at that price. On top of it every minute carries a synthetic
market volume (a hash of seed, symbol and minute: deterministic, no state) spread evenly over its
seconds, and the account's own fills in that second or minute: they widen high/low and add to the
volumes and counts. Candles of any interval are therefore exact merges of smaller ones; complete
hours and days are cached per exchange, so long intervals stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from weakref import WeakKeyDictionary

import numpy as np

from simulator.contract import ExchangeProtocol
from simulator.prices import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    UNIT,
    exact_share,
    mix64,
    mix64_array,
    stable_key,
    to_units,
)
from simulator.records import TradeRecord

SECOND_MS = 1_000
WEEK_ANCHOR_MS = 4 * DAY_MS  # 1970-01-05 was a Monday: weekly candles open on Mondays
MARKET_MINUTE_USDT = 20_000  # the synthetic market's mean turnover per symbol and minute
MAX_TRADES_PER_MINUTE = 60

# Binance's interval names (case-sensitive) → length; None: calendar months.
INTERVALS: dict[str, int | None] = {
    "1s": SECOND_MS,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
    "1M": None,
}


@dataclass(frozen=True, slots=True)
class Bar:
    """One candle's figures in 1e-8 units (prices in the quote, volumes in base or quote)."""

    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    taker_base: int
    taker_quote: int


def merge(bars: Sequence[Bar]) -> Bar:
    """Consecutive bars as one."""
    return Bar(
        open=bars[0].open,
        high=max(b.high for b in bars),
        low=min(b.low for b in bars),
        close=bars[-1].close,
        volume=sum(b.volume for b in bars),
        quote_volume=sum(b.quote_volume for b in bars),
        trades=sum(b.trades for b in bars),
        taker_base=sum(b.taker_base for b in bars),
        taker_quote=sum(b.taker_quote for b in bars),
    )


def with_fills(bar: Bar, fills: Sequence[TradeRecord]) -> Bar:
    """The bar with the account's own fills added (a fill is a taker buy when the account
    bought as taker or sold as maker)."""
    if not fills:
        return bar
    prices = [to_units(f.price) for f in fills]
    bought = [f for f in fills if f.is_buyer != f.is_maker]
    return Bar(
        open=bar.open,
        high=max(bar.high, *prices),
        low=min(bar.low, *prices),
        close=bar.close,
        volume=bar.volume + sum(to_units(f.qty) for f in fills),
        quote_volume=bar.quote_volume + sum(to_units(f.quote_qty) for f in fills),
        trades=bar.trades + len(fills),
        taker_base=bar.taker_base + sum(to_units(f.qty) for f in bought),
        taker_quote=bar.taker_quote + sum(to_units(f.quote_qty) for f in bought),
    )


def spread(total: int, first: int, count: int) -> int:
    """What seconds first..first+count-1 of a minute hold of `total` spread evenly over its 60
    (the first total % 60 seconds hold one more)."""
    extra = max(0, min(first + count, total % 60) - first)
    return count * (total // 60) + extra


# -- interval arithmetic (all in UTC ms; `offset_ms` is the timeZone parameter) -----------------


def open_of(t_ms: int, interval: str, offset_ms: int) -> int:
    """The open time of the `interval` candle holding t, boundaries in local time."""
    size = INTERVALS[interval]
    local = t_ms + offset_ms
    if size is None:
        day = datetime.fromtimestamp(local // 1000, UTC)
        return _month_start(day.year, day.month) - offset_ms
    anchor = WEEK_ANCHOR_MS if interval == "1w" else 0
    return local - (local - anchor) % size - offset_ms


def shift(open_ms: int, interval: str, offset_ms: int, steps: int) -> int:
    """The open time `steps` candles after (or before) the one opening at open_ms."""
    size = INTERVALS[interval]
    if size is not None:
        return open_ms + steps * size
    local = datetime.fromtimestamp((open_ms + offset_ms) // 1000, UTC)
    months = local.year * 12 + local.month - 1 + steps
    return _month_start(months // 12, months % 12 + 1) - offset_ms


def _month_start(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1000


# -- the tape ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kline:
    open_ms: int
    close_ms: int  # the next open - 1 ms
    bar: Bar


class Tape:
    """Candles of one exchange's symbols. Call with the exchange lock held."""

    def __init__(self, exchange: ExchangeProtocol) -> None:
        self.exchange = exchange
        market = exchange.market
        # every symbol lists when the price paths start: the first hour of the market
        self.listing_ms = market.origin_ms - market.origin_ms % HOUR_MS
        self._keys = {s: stable_key("volume", market.seed, s) for s in market.symbol_specs}
        self._mean_lots = {s: self._lots_per_minute(s) for s in market.symbol_specs}
        self._cache: dict[tuple[str, int, int], Bar] = {}
        # one small number per way of pricing: cache keys stay cheap to hash
        self._fingerprint = _MARKETS.setdefault(market.fingerprint, len(_MARKETS))

    def _lots_per_minute(self, symbol: str) -> int:
        spec = self.exchange.market.symbol_specs[symbol]
        reference = to_units(self.exchange.market.asset_specs[spec.base].usdt_price)
        lot_usdt = max(1, spec.step_units * reference // UNIT)
        return max(1, MARKET_MINUTE_USDT * UNIT // lot_usdt)

    def klines(
        self,
        symbol: str,
        interval: str,
        offset_ms: int,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        now_ms: int,
    ) -> list[Kline]:
        """Up to `limit` candles, ascending: from the first opening at or after `start_ms`, else
        the most recent ones opening at or before `end_ms` (or now)."""
        first = open_of(self.listing_ms, interval, offset_ms)
        last = open_of(min(now_ms, end_ms if end_ms is not None else now_ms), interval, offset_ms)
        opens: list[int] = []
        if start_ms is not None:
            at = open_of(start_ms, interval, offset_ms)
            at = max(first, at if at >= start_ms else shift(at, interval, offset_ms, 1))
            while at <= last and len(opens) < limit:
                opens.append(at)
                at = shift(at, interval, offset_ms, 1)
        else:
            at = last
            while at >= first and len(opens) < limit:
                opens.append(at)
                at = shift(at, interval, offset_ms, -1)
            opens.reverse()
        klines = []
        for at in opens:
            following = shift(at, interval, offset_ms, 1)
            bar = self.bar(symbol, max(at, self.listing_ms), following, now_ms)
            klines.append(Kline(at, following - 1, bar))
        return klines

    def bar(self, symbol: str, start_ms: int, end_ms: int, now_ms: int) -> Bar:
        """The candle of [start_ms, end_ms) as far as it has happened (up to the current
        second). Both bounds are whole seconds; the range must have begun by now."""
        end_ms = min(end_ms, now_ms - now_ms % SECOND_MS + SECOND_MS)
        parts: list[Bar] = []
        t = start_ms
        while t < end_ms:
            for size in (DAY_MS, HOUR_MS):
                if t % size == 0 and t + size <= end_ms:
                    parts.append(self._whole(symbol, t, size, now_ms))
                    t += size
                    break
            else:
                stop = min(end_ms, t - t % MINUTE_MS + MINUTE_MS)
                parts.append(self._seconds(symbol, t, stop))
                t = stop
        return merge(parts)

    def _whole(self, symbol: str, start_ms: int, size: int, now_ms: int) -> Bar:
        """A whole day or hour, kept once it is over. Max, min and sums commute, so it is the
        market's own candle with the account's fills in it added."""
        key = (symbol, size, start_ms)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        fills = self.exchange.trades(symbol, start_ms, start_ms + size - 1)
        bar = with_fills(self._market(symbol, start_ms // HOUR_MS, size // HOUR_MS), fills)
        if start_ms + size <= now_ms:  # nothing can happen in it any more
            self._cache[key] = bar
        return bar

    def _market(self, symbol: str, hour: int, hours: int) -> Bar:
        """The synthetic market's own candle of one hour (hours=1) or UTC day (24) from an hour
        index: a pure function of the price paths, so kept for every exchange that prices
        alike, and computed a whole day at a time (the hot path of long candles)."""
        key = (self._fingerprint, symbol, hour, hours)
        cached = _MARKET_BARS.get(key)
        if cached is None:
            if len(_MARKET_BARS) >= MARKET_BARS_KEPT:
                _MARKET_BARS.clear()  # a plain bound: tests build many markets in one process
            first_hour = hour - hour % 24
            day = self._market_day(symbol, first_hour)
            for offset, bar in enumerate(day):
                _MARKET_BARS[(self._fingerprint, symbol, first_hour + offset, 1)] = bar
            _MARKET_BARS[(self._fingerprint, symbol, first_hour, 24)] = merge(day)
            cached = _MARKET_BARS[key]
        return cached

    def _market_day(self, symbol: str, first_hour: int) -> list[Bar]:
        """The market's 24 hour candles from `first_hour`, from its 1440 minutes at once."""
        minutes = 24 * 60
        first_minute = first_hour * 60
        market = self.exchange.market
        prices = market.minute_prices(symbol, first_minute, minutes)
        step = market.symbol_specs[symbol].step_units
        ids = np.arange(first_minute, first_minute + minutes, dtype=np.int64).astype(np.uint64)
        h = mix64_array(np.uint64(self._keys[symbol]) ^ ids)
        lots = (np.uint64(1) + h % np.uint64(2 * self._mean_lots[symbol])).astype(np.int64)
        taker_lots = lots * ((h >> np.uint64(24)) % np.uint64(101)).astype(np.int64) // 100
        spread_trades = np.uint64(1) + (h >> np.uint64(44)) % np.uint64(MAX_TRADES_PER_MINUTE)
        trades = np.minimum(lots, spread_trades.astype(np.int64))
        volume, taker = lots * step, taker_lots * step
        figures = (
            prices,
            volume,
            exact_share(volume, prices),
            trades,
            taker,
            exact_share(taker, prices),
        )
        price, *amounts = (figure.reshape(24, 60) for figure in figures)
        columns = zip(
            price[:, 0].tolist(),
            price.max(axis=1).tolist(),
            price.min(axis=1).tolist(),
            price[:, -1].tolist(),
            *(amount.sum(axis=1).tolist() for amount in amounts),
            strict=True,
        )
        return [Bar(*column) for column in columns]

    def _seconds(self, symbol: str, start_ms: int, end_ms: int) -> Bar:
        """Seconds [start_ms, end_ms) within one minute."""
        minute = start_ms // MINUTE_MS
        price = self.exchange.market.price_units(symbol, start_ms)
        step = self.exchange.market.symbol_specs[symbol].step_units
        lots, taker_lots, trades = self._market_minute(symbol, minute)
        first, count = (start_ms % MINUTE_MS) // SECOND_MS, (end_ms - start_ms) // SECOND_MS
        volume = spread(lots, first, count) * step
        taker = spread(taker_lots, first, count) * step
        market = Bar(
            open=price,
            high=price,
            low=price,
            close=price,
            volume=volume,
            quote_volume=volume * price // UNIT,  # exact: tick x step is a multiple of 1e-8
            trades=spread(trades, first, count),
            taker_base=taker,
            taker_quote=taker * price // UNIT,
        )
        return with_fills(market, self.exchange.trades(symbol, start_ms, end_ms - 1))

    def _market_minute(self, symbol: str, minute: int) -> tuple[int, int, int]:
        """The synthetic market's lots, taker-buy lots and trades in one minute."""
        h = mix64(self._keys[symbol] ^ minute)
        lots = 1 + h % (2 * self._mean_lots[symbol])
        taker_lots = lots * ((h >> 24) % 101) // 100
        trades = min(lots, 1 + (h >> 44) % MAX_TRADES_PER_MINUTE)
        return lots, taker_lots, trades


_TAPES: WeakKeyDictionary[ExchangeProtocol, Tape] = WeakKeyDictionary()
# the market's own hour and day candles, shared by every exchange whose prices walk alike
_MARKET_BARS: dict[tuple[int, str, int, int], Bar] = {}
_MARKETS: dict[tuple[object, ...], int] = {}
MARKET_BARS_KEPT = 500_000


def tape_of(exchange: ExchangeProtocol) -> Tape:
    """The exchange's tape (one per exchange, so its cache outlives a request)."""
    tape = _TAPES.get(exchange)
    if tape is None:
        tape = _TAPES[exchange] = Tape(exchange)
    return tape
