"""Deterministic market data for the simulator: price paths and hourly rates, in integers only.

Every asset has a USDT price path held in integer units of 1e-8 USDT: a seeded random walk
between hourly knots (`random.Random` per asset, extended lazily so any instant is defined),
linear interpolation inside the hour, a per-minute jitter from an integer hash, and optional
designed crashes. A symbol's price is base/quote of those paths floored to its tick, so every
asset is valued in BTC through USDT and pair prices never contradict valuations.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

Int64s = npt.NDArray[np.int64]
UInt64s = npt.NDArray[np.uint64]

UNIT = 10**8  # amounts and prices are integers of 1e-8
HALF_UNIT = 10**4  # the step of the vectorised long divisions (see exact_ratio)
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
BP = 10_000  # basis points in one

_MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread integer hash (stable across runs)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix64_array(x: UInt64s) -> UInt64s:
    """`mix64` of every element (uint64 arithmetic wraps exactly as the masks do)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def exact_ratio(base: Int64s, quote: Int64s) -> Int64s:
    """floor(base * UNIT / quote) elementwise, in int64 without overflow: long division in two
    steps of 10^4 (remainders stay below the quote, itself far below 10^14)."""
    whole, rest = np.divmod(base, quote)
    high, rest = np.divmod(rest * HALF_UNIT, quote)
    ratio: Int64s = whole * UNIT + high * HALF_UNIT + rest * HALF_UNIT // quote
    return ratio


def exact_share(volume: Int64s, price: Int64s) -> Int64s:
    """floor(volume * price / UNIT) elementwise, in int64 without overflow (volumes below
    10^14, prices below 10^14): the products are split at 10^8 and 10^4."""
    price_whole, price_part = np.divmod(price, UNIT)
    volume_high, volume_low = np.divmod(volume, HALF_UNIT)
    upper = volume_high * price_part  # the volume's high digits times the price's fraction
    upper_high, upper_low = np.divmod(upper, HALF_UNIT)
    fraction = (upper_low * HALF_UNIT + volume_low * price_part) // UNIT
    share: Int64s = volume * price_whole + upper_high + fraction
    return share


def stable_key(*parts: object) -> int:
    """A 64-bit integer from text parts; unlike hash() it does not change between processes."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def to_units(value: Decimal) -> int:
    """Exact 1e-8 units of a decimal; raises if it has more than 8 decimal places."""
    scaled = value.scaleb(8)
    units = int(scaled)
    if units != scaled:
        raise ValueError(f"{value} has more than 8 decimal places")
    return units


_ONE_UNIT = Decimal(1).scaleb(-8)
_EXACT_DIGITS = 10**27  # below this a product in the default 28-digit context is exact


def from_units(units: int) -> Decimal:
    """A decimal with exactly 8 decimal places (render with format 'f')."""
    if -_EXACT_DIGITS < units < _EXACT_DIGITS:
        return Decimal(units) * _ONE_UNIT  # fast, and exact at this size
    return Decimal(f"{units}E-8")  # construction from text is exact at any size


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """A margin asset: where its price walks, how fast, and what borrowing it costs."""

    name: str
    usdt_price: Decimal  # the level the walk starts at and reverts to
    hourly_vol_bp: int  # largest random step between hourly knots, basis points
    daily_rate: Decimal  # base daily interest rate, 8 dp
    borrow_limit: Decimal  # most that may be outstanding at once


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A margin pair with its price tick and quantity step (powers of ten, 8 dp together)."""

    symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    tick_units: int = field(init=False, repr=False, compare=False)
    step_units: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # frozen: the derived integer forms are set once, here
        object.__setattr__(self, "tick_units", to_units(self.tick))
        object.__setattr__(self, "step_units", to_units(self.step))


@dataclass(frozen=True, slots=True)
class Crash:
    """A designed fall of one asset's price: linear fall, hold at the bottom, linear recovery."""

    asset: str
    start_ms: int
    drop_bp: int
    fall_ms: int
    hold_ms: int
    recover_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.fall_ms + self.hold_ms + self.recover_ms

    def depth_bp(self, t_ms: int) -> int:
        """How far below the walk the price is at t, in basis points."""
        dt = t_ms - self.start_ms
        if dt <= 0 or t_ms >= self.end_ms:
            return 0
        if dt < self.fall_ms:
            return self.drop_bp * dt // self.fall_ms
        dt -= self.fall_ms
        if dt < self.hold_ms:
            return self.drop_bp
        dt -= self.hold_ms
        return self.drop_bp * (self.recover_ms - dt) // self.recover_ms

    def depth_bp_array(self, t_ms: Int64s) -> Int64s:
        """`depth_bp` of every time at once."""
        dt = t_ms - self.start_ms
        falling = self.drop_bp * dt // self.fall_ms
        recovery = dt - self.fall_ms - self.hold_ms
        recovering = self.drop_bp * (self.recover_ms - recovery) // self.recover_ms
        depth = np.where(
            dt < self.fall_ms,
            falling,
            np.where(dt < self.fall_ms + self.hold_ms, self.drop_bp, recovering),
        )
        return np.where((dt <= 0) | (t_ms >= self.end_ms), 0, depth)

    def breakpoints(self) -> tuple[int, int, int, int]:
        fall_end = self.start_ms + self.fall_ms
        return self.start_ms, fall_end, fall_end + self.hold_ms, self.end_ms


class AssetPath:
    """One asset's USDT price in 1e-8 units at minute resolution, for any time."""

    def __init__(
        self, seed: int, spec: AssetSpec, origin_ms: int, crashes: Iterable[Crash]
    ) -> None:
        self.spec = spec
        self._ref = to_units(spec.usdt_price)
        self._vol = spec.hourly_vol_bp
        self._jitter = spec.hourly_vol_bp // 4
        self._key = stable_key("jitter", seed, spec.name)
        self._rng = random.Random(f"walk:{seed}:{spec.name}")
        self._origin_hour = origin_ms // HOUR_MS
        self._knots = [self._ref]
        self._knots_array: Int64s = np.zeros(0, dtype=np.int64)
        self._crashes = tuple(c for c in crashes if c.asset == spec.name)
        self._cache_minute = -1
        self._cache_units = 0
        self._range_hour = -1
        self._range = (0, 0)

    def _knot(self, index: int) -> int:
        knots = self._knots
        while len(knots) <= index:
            level = knots[-1]
            # a bounded random step plus a pull back toward the reference level
            pull = (self._ref - level) * 50 // self._ref
            step = self._rng.randint(-self._vol, self._vol) + max(-self._vol, min(self._vol, pull))
            knots.append(max(1, level * (BP + step) // BP))
        return knots[index]

    def _knot_array(self, last: int) -> Int64s:
        """The knots up to index `last` as an array (extended, not rebuilt, as time goes on)."""
        self._knot(last)
        if len(self._knots_array) < len(self._knots):
            grown = np.asarray(self._knots[len(self._knots_array) :], dtype=np.int64)
            self._knots_array = np.concatenate([self._knots_array, grown])
        return self._knots_array

    def _walk(self, minute: int) -> int:
        index = minute // 60 - self._origin_hour
        if index < 0:
            return self._knots[0]
        a = self._knot(index)
        b = self._knot(index + 1)
        return a + (b - a) * (minute % 60) // 60

    def _crash_bp(self, t_ms: int) -> int:
        return sum(c.depth_bp(t_ms) for c in self._crashes)

    def units(self, t_ms: int) -> int:
        """Price at t (constant within a minute)."""
        minute = t_ms // MINUTE_MS
        if minute == self._cache_minute:
            return self._cache_units
        level = self._walk(minute)
        if self._jitter:
            span = 2 * self._jitter + 1
            level += level * (mix64(self._key ^ minute) % span - self._jitter) // BP
        if self._crashes:
            level = level * (BP - min(BP - 1, self._crash_bp(minute * MINUTE_MS))) // BP
        level = max(1, level)
        self._cache_minute, self._cache_units = minute, level
        return level

    def minute_units(self, first_minute: int, count: int) -> Int64s:
        """`units` of `count` consecutive minutes at once, vectorised and exact (every
        intermediate stays far inside int64): what klines need, hours or days at a time."""
        minutes = np.arange(first_minute, first_minute + count, dtype=np.int64)
        index = minutes // 60 - self._origin_hour
        knots = self._knot_array(max(0, int(index[-1]) + 1))
        at = np.maximum(index, 0)
        a, b = knots[at], knots[at + 1]
        levels = np.where(index < 0, knots[0], a + (b - a) * (minutes % 60) // 60)
        if self._jitter:
            span, jitter = 2 * self._jitter + 1, self._jitter
            noise = mix64_array(np.uint64(self._key) ^ minutes.astype(np.uint64)) % np.uint64(span)
            levels = levels + levels * (noise.astype(np.int64) - jitter) // BP
        for crash in self._crashes:
            depth = crash.depth_bp_array(minutes * MINUTE_MS)
            if depth.any():
                levels = levels * (BP - np.minimum(BP - 1, depth)) // BP
        floored: Int64s = np.maximum(levels, 1)
        return floored

    def hour_range(self, hour: int) -> tuple[int, int]:
        """Bounds (inclusive, conservative) of the price during the given hour index."""
        if hour != self._range_hour:  # asked for every hour, often several times
            self._range = self._hour_range(hour)
            self._range_hour = hour
        return self._range

    def _hour_range(self, hour: int) -> tuple[int, int]:
        # the walk at the hour's first minute and the next hour's: the two knots themselves
        index = hour - self._origin_hour
        knots = self._knots
        if index >= 0 and index + 1 < len(knots):
            a, b = knots[index], knots[index + 1]
        else:
            a = self._knot(index) if index >= 0 else knots[0]
            b = self._knot(index + 1) if index >= -1 else knots[0]
        lo, hi = min(a, b), max(a, b)
        lo -= lo * self._jitter // BP + 1
        hi += hi * self._jitter // BP + 1
        if self._crashes:
            t0, t1 = hour * HOUR_MS, (hour + 1) * HOUR_MS
            instants = [t0, t1]
            for crash in self._crashes:
                instants.extend(p for p in crash.breakpoints() if t0 < p < t1)
            depths = [self._crash_bp(t) for t in instants]
            lo = lo * (BP - min(BP - 1, max(depths))) // BP
            hi = hi * (BP - min(BP - 1, min(depths))) // BP + 1
        return max(1, lo), hi


class MarketData:
    """Price paths for every asset and symbol plus the hourly interest-rate schedule."""

    def __init__(
        self,
        seed: int,
        assets: Sequence[AssetSpec],
        symbols: Sequence[SymbolSpec],
        origin_ms: int,
        crashes: Sequence[Crash] = (),
    ) -> None:
        self.seed = seed
        self.origin_ms = origin_ms  # where every path starts: the markets' listing time
        self.crashes = tuple(crashes)
        self.asset_specs = {a.name: a for a in assets}
        self.symbol_specs = {s.symbol: s for s in symbols}
        self.paths = {a.name: AssetPath(seed, a, origin_ms, crashes) for a in assets}
        self._rate_keys = {a.name: stable_key("rate", seed, a.name) for a in assets}
        self._base_rates = {a.name: to_units(a.daily_rate) for a in assets}
        for spec in symbols:
            if spec.base not in self.paths or spec.quote not in self.paths:
                raise ValueError(f"{spec.symbol}: unknown asset")
            if spec.tick_units * spec.step_units % UNIT:
                raise ValueError(f"{spec.symbol}: tick x step must be a multiple of 1e-8")

    def asset_units(self, asset: str, t_ms: int) -> int:
        """USDT price of one asset unit, in 1e-8 USDT."""
        return self.paths[asset].units(t_ms)

    def price_units(self, symbol: str, t_ms: int) -> int:
        """Symbol price in 1e-8 of its quote asset, floored to the tick."""
        spec = self.symbol_specs[symbol]
        raw = self.asset_units(spec.base, t_ms) * UNIT // self.asset_units(spec.quote, t_ms)
        tick = spec.tick_units
        return max(tick, raw - raw % tick)

    def minute_prices(self, symbol: str, first_minute: int, count: int) -> Int64s:
        """`price_units` of `count` consecutive minutes at once, vectorised and exact."""
        spec = self.symbol_specs[symbol]
        base = self.paths[spec.base].minute_units(first_minute, count)
        quote = self.paths[spec.quote].minute_units(first_minute, count)
        raw = exact_ratio(base, quote)
        tick = spec.tick_units
        ticked: Int64s = np.maximum(raw - raw % tick, tick)
        return ticked

    @property
    def fingerprint(self) -> tuple[object, ...]:
        """What the paths depend on: two markets with equal fingerprints price alike."""
        return (
            self.seed,
            self.origin_ms,
            tuple(self.asset_specs.values()),
            tuple(self.symbol_specs.values()),
            self.crashes,
        )

    def price(self, symbol: str, t_ms: int) -> Decimal:
        return from_units(self.price_units(symbol, t_ms))

    def price_range(self, symbol: str, hour: int) -> tuple[int, int]:
        """Conservative bounds of the symbol price (1e-8 units) during an hour index."""
        spec = self.symbol_specs[symbol]
        base_lo, base_hi = self.paths[spec.base].hour_range(hour)
        quote_lo, quote_hi = self.paths[spec.quote].hour_range(hour)
        return base_lo * UNIT // quote_hi - spec.tick_units, base_hi * UNIT // quote_lo + 1

    def rate_units(self, asset: str, t_ms: int) -> int:
        """Daily interest rate in force during the hour containing t, in 1e-8 units."""
        base = self._base_rates[asset]
        hour = t_ms // HOUR_MS
        # small integer-tick moves around the base rate, fresh every hour
        ticks = mix64(self._rate_keys[asset] ^ hour) % 11 - 5
        return max(1, base + ticks * max(1, base // 100))

    def rate(self, asset: str, t_ms: int) -> Decimal:
        return from_units(self.rate_units(asset, t_ms))
