"""The simulator's ledger engine: an exact margin account over a deterministic market.

All arithmetic runs on integers of 1e-8 (amounts, prices, rates); records carry Decimals with
8 decimal places (render them with format 'f'). Rules, chosen to match the facts page (the
choices the docs leave open are listed in docs/simulator.md, "Ledger and history choices"):
- interest: ON_BORROW row at the borrow, then one PERIODIC row per asset at every UTC hour while
  principal is outstanding, `ceil8(principal x daily_rate / 24)`; simple (never compounds).
  With BNB-paid interest on (cross only), each charge on a non-BNB asset is converted into BNB
  at once (`bnb_for`, 5 % off) and taken from free BNB: a *_CONVERTED row, no unpaid interest.
- repay: interest first, then principal; REPAY amount = interest + principal. MANUAL and AUTO
  repays debit the asset itself, BNB_AUTO_REPAY debits its BNB value, POINT_AUTO_REPAY nothing.
- commission: 0.1 % of what the fill delivers (buyer in base, seller in quote), rounded half up
  to 8 decimals.
- margin level: assets / (borrowed + interest), valued in BTC through USDT; 999 with no debt.
  Borrowing may not take it below 1.5, transfers out not below 2; at <= 1.1 the cross account
  is force-liquidated: open orders canceled, holdings beyond what each asset owes sold for USDT
  by MARKET liquidation orders, a liquidation fee taken from those proceeds (when configured),
  owed assets bought back, debts repaid by AUTO repays. The level is checked on each hour, and
  every minute of an hour whose price range could reach 1.1. Isolated accounts are not watched.
- orders: LIMIT orders lock quote (BUY) or base (SELL) and fill at their limit, in one or more
  pieces, in the first minutes the price path reaches them; MARKET orders fill at once in one
  to three pieces a tick apart (by quantity, or by `quoteOrderQty`: the most whole steps whose
  fills cost at most that much quote).
- isolated margin: an account per pair with its own balances and history, touching the cross
  account only through transfers between the two.
- time: a record's effect happens at its `time_ms`; `confirm_ms` only delays its reporting, and
  a FAILED record never has an effect. Work due at an instant (hourly interest, fills,
  liquidations) runs before actions at it; the daily snapshot at 23:59:59.000 holds every event
  at or before that instant.
"""

from __future__ import annotations

import random
import threading
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Generic, Literal, TypeVar

from simulator.contract import ExchangeError
from simulator.prices import (
    BP,
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    UNIT,
    AssetSpec,
    Crash,
    MarketData,
    SymbolSpec,
    from_units,
)
from simulator.records import (
    AssetBalance,
    FlowRecord,
    InterestRecord,
    InterestType,
    LiquidationRecord,
    LoanRecord,
    OrderRecord,
    RepayKind,
    RepayRecord,
    Snapshot,
    TradeRecord,
    TransferRecord,
)

SNAPSHOT_OFFSET_MS = DAY_MS - 1000  # 23:59:59.000 UTC
NEVER = 1 << 62
NO_DEBT_LEVEL = from_units(999 * UNIT)
VALUATION_ASSET = "BTC"
SETTLEMENT_ASSET = "USDT"  # liquidations sell into it; delisted assets are converted into it
BNB = "BNB"
MARKET_SLIPPAGE_TICKS = 3  # a MARKET order fills at most this many ticks off the reference
BNB_INTEREST_DISCOUNT_BP = 500  # interest paid in BNB costs 5 % less
DUST_FEE_BP = 200  # dust conversion keeps 2 % of the BNB
DUST_LIMIT_USDT = 10 * UNIT  # only balances worth at most this much are dust
_EIGHT_DP = Decimal(1).scaleb(-8)
_MAX_INPUT = Decimal(10) ** 12
_CONVERTED: dict[str, InterestType] = {
    "ON_BORROW": "ON_BORROW_CONVERTED",
    "PERIODIC": "PERIODIC_CONVERTED",
}
_REPAY_KINDS: dict[str, RepayKind] = {
    k: k for k in ("MANUAL", "AUTO", "BNB_AUTO_REPAY", "POINT_AUTO_REPAY")
}

Side = Literal["BUY", "SELL"]
R = TypeVar("R")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def hourly_interest_units(principal: int, daily_rate: int) -> int:
    """ceil8(principal x daily_rate / 24), all in 1e-8 units."""
    return ceil_div(principal * daily_rate, 24 * UNIT)


def commission_units(received: int) -> int:
    """0.1 % of what a fill delivers, rounded half up to 1e-8."""
    return (received + 500) // 1000


def bnb_units(units: int, asset_usdt: int, bnb_usdt: int, discount_bp: int = 0) -> int:
    """`units` of an asset worth `asset_usdt` each, in BNB worth `bnb_usdt` each, less a
    discount, rounded up to 1e-8 (what the account pays in BNB)."""
    return ceil_div(units * asset_usdt * (BP - discount_bp), bnb_usdt * BP)


class _Wallet:
    """One asset's balances in 1e-8 units."""

    __slots__ = ("borrowed", "free", "interest", "locked")

    def __init__(self) -> None:
        self.free = 0
        self.locked = 0
        self.borrowed = 0
        self.interest = 0

    @property
    def owed(self) -> int:
        return self.borrowed + self.interest


class _Series(Generic[R]):
    """Records of one partition, ascending by time, for O(log n + k) window queries."""

    __slots__ = ("items", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.items: list[R] = []

    def add(self, t: int, item: R) -> None:
        # the engine acts in time order; a record from the past would be a bug upstream
        if self.times and t < self.times[-1]:
            raise RuntimeError(f"record at {t} after one at {self.times[-1]}")
        self.times.append(t)
        self.items.append(item)

    def window(self, start_ms: int, end_ms: int) -> list[R]:
        lo = bisect_left(self.times, start_ms)
        hi = bisect_right(self.times, end_ms)
        return self.items[lo:hi]


class _Book(_Series[R]):
    """Orders or trades of one symbol: ascending by id and by time alike."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[int] = []

    def add_with_id(self, record_id: int, t: int, item: R) -> None:
        if self.ids and record_id < self.ids[-1]:
            raise ValueError("ids must ascend")
        self.ids.append(record_id)
        self.add(t, item)

    def from_id(self, from_id: int, limit: int) -> list[R]:
        lo = bisect_left(self.ids, from_id)
        return self.items[lo : lo + max(0, limit)]


class _Account:
    """One margin account: its balances and its history, partitioned the ways the API asks.
    `symbol` is None for the cross-margin account, else the isolated pair."""

    __slots__ = (
        "flows",
        "interest",
        "loans",
        "orders",
        "repays",
        "symbol",
        "trades",
        "transfers",
        "wallets",
    )

    def __init__(self, symbol: str | None, assets: Iterable[str]) -> None:
        self.symbol = symbol
        self.wallets = {a: _Wallet() for a in assets}
        # by asset, and None: every asset
        self.loans: defaultdict[str | None, _Series[LoanRecord]] = defaultdict(_Series)
        self.repays: defaultdict[str | None, _Series[RepayRecord]] = defaultdict(_Series)
        self.interest: defaultdict[str | None, _Series[InterestRecord]] = defaultdict(_Series)
        # by (asset, type), either may be None: all
        self.transfers: defaultdict[tuple[str | None, str | None], _Series[TransferRecord]] = (
            defaultdict(_Series)
        )
        self.orders: defaultdict[str, _Book[OrderRecord]] = defaultdict(_Book)
        self.trades: defaultdict[str, _Book[TradeRecord]] = defaultdict(_Book)
        self.flows: _Series[FlowRecord] = _Series()

    @property
    def is_isolated(self) -> bool:
        return self.symbol is not None

    def add_loan(self, record: LoanRecord) -> None:
        self.loans[record.asset].add(record.time_ms, record)
        self.loans[None].add(record.time_ms, record)

    def add_repay(self, record: RepayRecord) -> None:
        self.repays[record.asset].add(record.time_ms, record)
        self.repays[None].add(record.time_ms, record)

    def add_interest(self, record: InterestRecord) -> None:
        self.interest[record.asset].add(record.time_ms, record)
        self.interest[None].add(record.time_ms, record)

    def add_transfer(self, record: TransferRecord) -> None:
        asset, type_ = record.asset, record.type
        for key in ((asset, type_), (asset, None), (None, type_), (None, None)):
            self.transfers[key].add(record.time_ms, record)


_NO_HISTORY = _Account(None, ())


@dataclass(slots=True)
class _Working:
    """An open LIMIT order with the exact amounts behind it."""

    order: OrderRecord
    spec: SymbolSpec
    price: int
    remaining: int
    account: _Account
    auto_repay: bool = False
    executed: int = 0
    cumm_quote: int = 0


class Exchange:
    """A margin account (cross, plus any isolated pairs) with full history; implements
    `simulator.contract.ExchangeProtocol`.

    The clock starts pinned at `opened_ms` so a scenario can act in the past (`travel_to`);
    `go_live()` releases it, after which now = the pinned time + wall-clock time elapsed.
    `liquidation_fee_bp` is the fee a force liquidation takes from what it sells (0: none).
    """

    def __init__(
        self,
        assets: Sequence[AssetSpec],
        symbols: Sequence[SymbolSpec],
        *,
        seed: int,
        opened_ms: int,
        start_ms: int,
        crashes: Sequence[Crash] = (),
        wall_clock: Callable[[], int] = wall_clock_ms,
        liquidation_fee_bp: int = 0,
    ) -> None:
        if VALUATION_ASSET not in {a.name for a in assets}:
            raise ValueError("the BTC asset is needed for valuations")
        self.lock = threading.RLock()
        self.opened_ms = opened_ms
        self.start_ms = start_ms
        self.seed = seed
        self.market = MarketData(seed, assets, symbols, opened_ms - DAY_MS, crashes)
        self._wall = wall_clock
        self._pinned: int | None = opened_ms
        self._offset = 0
        self._rng = random.Random(f"engine:{seed}")
        self._cross = _Account(None, (a.name for a in assets))
        self._wallets = self._cross.wallets
        self._isolated: dict[str, _Account] = {}
        self._asset_names = tuple(self._wallets)
        self._pairs = {s.symbol: (s.base, s.quote) for s in symbols}
        self._limits = {a.name: _units_of(a.borrow_limit) for a in assets}
        self._usdt_pairs = {
            s.base: s for s in symbols if s.quote == SETTLEMENT_ASSET and s.base != s.quote
        }
        self._liquidation_fee_bp = liquidation_fee_bp
        self._bnb_interest = False
        self._delisted: dict[str, int] = {}  # asset or symbol -> when it was delisted
        # ids: ascending, with gaps, in the ranges the real API uses
        self._last_tran_id = 200_000_000_000 + self._rng.randrange(10**9)
        self._last_interest_id = 1_352_286_576_452_864_727 + self._rng.randrange(10**12)
        self._last_order_id = 3_000_000_000 + self._rng.randrange(10**6)
        self._last_trade_id = 400_000_000 + self._rng.randrange(10**6)
        self._liquidations: _Series[LiquidationRecord] = _Series()
        self._order_index: dict[tuple[str, int], OrderRecord] = {}
        self._working: dict[int, _Working] = {}
        self._snapshots: _Series[Snapshot] = _Series()
        # the due-work schedule
        self._next_hour = (opened_ms // HOUR_MS + 1) * HOUR_MS
        first_snapshot = opened_ms // DAY_MS * DAY_MS + SNAPSHOT_OFFSET_MS
        self._next_snapshot = (
            first_snapshot if first_snapshot >= opened_ms else first_snapshot + DAY_MS
        )
        # minute-level work: resting orders that may fill, and margin watched closely in an
        # hour where prices could take it to the liquidation level
        self._next_minute = NEVER
        self._fill_hour = -1
        self._fill_candidates: list[_Working] = []  # orders this hour's price range can reach
        self._watch_hour = -1
        self._next_due = min(self._next_hour, self._next_snapshot + 1)

    # -- the clock -------------------------------------------------------------------------
    def now_ms(self) -> int:
        if self._pinned is not None:
            return self._pinned
        return self._wall() + self._offset

    @property
    def is_live(self) -> bool:
        return self._pinned is None

    def travel_to(self, time_ms: int) -> None:
        """Generation only: move the pinned clock forward and process what fell due."""
        with self.lock:
            if self._pinned is None:
                raise RuntimeError("the clock is live; use advance_clock")
            if time_ms < self._pinned:
                raise ValueError("time never goes back")
            self._pinned = time_ms
            self.catch_up()

    def pin(self) -> None:
        """Stop the clock where it is (a test takes the truth of one instant); `go_live`
        releases it, `advance_clock` still moves it."""
        with self.lock:
            if self._pinned is None:
                self._pinned = self.now_ms()
                self.catch_up()

    def go_live(self) -> None:
        """Release the pinned clock: from now on simulated time follows the wall clock."""
        with self.lock:
            if self._pinned is None:
                return
            self.catch_up()
            self._offset = self._pinned - self._wall()
            self._pinned = None

    def advance_clock(self, delta_ms: int) -> None:
        if delta_ms < 0:
            raise ValueError("time never goes back")
        with self.lock:
            if self._pinned is not None:
                self._pinned += delta_ms
            else:
                self._offset += delta_ms

    def catch_up(self) -> None:
        if self.now_ms() < self._next_due:
            return
        with self.lock:
            self._caught_up_now()

    def _caught_up_now(self) -> int:
        """Now, with everything due by now processed: an action at now comes after all of it."""
        t = self.now_ms()
        if t >= self._next_due:
            self._run_until(t)
        return t

    def _run_until(self, until: int) -> None:
        while True:
            t_minute = self._next_minute if self._minute_work() else NEVER
            t_hour = self._next_hour
            t_snap = self._next_snapshot
            # a snapshot at S holds every event at S, so it waits until time has passed S
            if t_minute <= until and t_minute <= t_hour and t_minute <= t_snap:
                self._minute_step(t_minute)
            elif t_hour <= until and t_hour <= t_snap:
                self._hour_step(t_hour)
            elif t_snap < until:
                self._snapshot_step(t_snap)
            else:
                break
        self._reschedule()

    def _reschedule(self) -> None:
        t_minute = self._next_minute if self._minute_work() else NEVER
        self._next_due = min(t_minute, self._next_hour, self._next_snapshot + 1)

    def _minute_work(self) -> bool:
        return bool(self._working) or self._watch_hour >= 0

    def _wake_minutes(self, t: int) -> None:
        """Minute work became necessary at t: the next minute after t is due."""
        self._next_minute = (t // MINUTE_MS + 1) * MINUTE_MS
        self._reschedule()

    def _hour_step(self, t: int) -> None:
        in_debt = False
        cross = self._cross
        for asset, wallet in self._wallets.items():
            if wallet.borrowed:
                rate = self.market.rate_units(asset, t)
                self._charge_interest(cross, asset, wallet.borrowed, rate, t, "PERIODIC")
            in_debt = in_debt or wallet.owed > 0
        for account in self._isolated.values():
            for asset, wallet in account.wallets.items():
                if wallet.borrowed:
                    rate = self.market.rate_units(asset, t)
                    self._charge_interest(account, asset, wallet.borrowed, rate, t, "PERIODIC")
        hour = t // HOUR_MS
        risky = in_debt and self._may_liquidate(hour)
        if risky and self._check_margin(t):
            risky = self._may_liquidate(hour)  # what the liquidation left
        self._next_hour = t + HOUR_MS
        self._watch_hour = -1
        if risky:
            self._watch_hour = hour
            self._wake_minutes(t)

    def _check_margin(self, t: int) -> bool:
        """Force-liquidate if the margin level is at or below 1.1; whether it did."""
        held, owed = self._exposure(self._cross, t)
        if owed and held * 10 <= owed * 11:
            self._liquidate(t)
            return True
        return False

    def _watch_margin(self, t: int) -> None:
        """Check the margin every minute of this hour if its price range could force a sale."""
        hour = t // HOUR_MS
        if self._watch_hour == hour:
            return
        if self._may_liquidate(hour):
            self._watch_hour = hour
            self._wake_minutes(t)

    def _may_liquidate(self, hour: int) -> bool:
        """Whether the cross margin level could reach 1.1 at some minute of the hour: assets at
        their lowest and debts at their highest price of the hour (conservative bounds)."""
        held = owed = 0
        for asset, w in self._wallets.items():
            gross, debt = w.free + w.locked, w.owed
            if gross or debt:
                lo, hi = self.market.paths[asset].hour_range(hour)
                held += gross * lo
                owed += debt * hi
        return bool(owed) and held * 10 <= owed * 11

    def _snapshot_step(self, t: int) -> None:
        self._snapshots.add(t, self._snapshot_at(self._cross, t))
        self._next_snapshot = t + DAY_MS

    def _minute_step(self, t: int) -> None:
        hour = t // HOUR_MS
        if hour != self._fill_hour:
            self._fill_hour = hour
            ranges: dict[str, tuple[int, int]] = {}  # one price range per symbol and hour
            self._fill_candidates = [
                w for w in self._working.values() if self._may_fill(w, hour, ranges)
            ]
        if self._fill_candidates:
            self._fill_minute(t)
        watching = self._watch_hour == hour
        if watching:
            self._check_margin(t)
        busy = watching or bool(self._fill_candidates)
        self._next_minute = t + MINUTE_MS if busy else (hour + 1) * HOUR_MS

    def _fill_minute(self, t: int) -> None:
        prices: dict[str, int] = {}
        for working in self._fill_candidates:
            if working.order.order_id not in self._working:
                continue  # filled or canceled since the hour began
            symbol = working.spec.symbol
            market = prices.get(symbol)
            if market is None:
                market = prices[symbol] = self.market.price_units(symbol, t)
            if _crosses(working.order.side, working.price, market):
                self._fill_working(working, t)
        self._fill_candidates = [
            w for w in self._fill_candidates if w.order.order_id in self._working
        ]

    def _may_fill(self, working: _Working, hour: int, ranges: dict[str, tuple[int, int]]) -> bool:
        symbol = working.spec.symbol
        bounds = ranges.get(symbol)
        if bounds is None:
            bounds = ranges[symbol] = self.market.price_range(symbol, hour)
        lo, hi = bounds
        return lo <= working.price if working.order.side == "BUY" else hi >= working.price

    # -- reference data --------------------------------------------------------------------
    @property
    def assets(self) -> Sequence[str]:
        return self._asset_names

    @property
    def symbols(self) -> dict[str, tuple[str, str]]:
        return self._pairs

    @property
    def delisted(self) -> Mapping[str, int]:
        """Delisted assets and symbols -> when (ms). Their history stays served."""
        return self._delisted

    @property
    def isolated_symbols(self) -> Sequence[str]:
        """The pairs with an isolated-margin account, in the order they were opened."""
        return tuple(self._isolated)

    @property
    def bnb_interest(self) -> bool:
        """Whether cross-margin interest is paid in BNB now."""
        return self._bnb_interest

    def symbol_spec(self, symbol: str) -> SymbolSpec:
        return self._spec(symbol)

    def price(self, symbol: str, time_ms: int) -> Decimal:
        return self.market.price(self._spec(symbol).symbol, time_ms)

    def rate(self, asset: str, time_ms: int) -> Decimal:
        """The daily interest rate in force during the hour containing time_ms."""
        return self.market.rate(asset, time_ms)

    def usdt_price(self, asset: str, time_ms: int) -> Decimal:
        """What conversions value one unit of `asset` at: its USDT pair's price."""
        return from_units(self._usdt_units(asset, time_ms))

    # -- history ---------------------------------------------------------------------------
    def loans(
        self, asset: str | None, start_ms: int, end_ms: int, *, isolated_symbol: str | None = None
    ) -> Sequence[LoanRecord]:
        history = self._history(isolated_symbol)
        return self._window(history.loans.get(asset), start_ms, end_ms)

    def repays(
        self, asset: str | None, start_ms: int, end_ms: int, *, isolated_symbol: str | None = None
    ) -> Sequence[RepayRecord]:
        history = self._history(isolated_symbol)
        return self._window(history.repays.get(asset), start_ms, end_ms)

    def interest(
        self, asset: str | None, start_ms: int, end_ms: int, *, isolated_symbol: str | None = None
    ) -> Sequence[InterestRecord]:
        history = self._history(isolated_symbol)
        return self._window(history.interest.get(asset), start_ms, end_ms)

    def transfers(
        self,
        asset: str | None,
        type_: str | None,
        start_ms: int,
        end_ms: int,
        *,
        isolated_symbol: str | None = None,
    ) -> Sequence[TransferRecord]:
        history = self._history(isolated_symbol)
        return self._window(history.transfers.get((asset, type_)), start_ms, end_ms)

    def flows(
        self, start_ms: int, end_ms: int, *, isolated_symbol: str | None = None
    ) -> Sequence[FlowRecord]:
        """Fees and conversions: the movements no other history reports."""
        history = self._history(isolated_symbol)
        return self._window(history.flows, start_ms, end_ms)

    def liquidations(self, start_ms: int, end_ms: int) -> Sequence[LiquidationRecord]:
        return self._window(self._liquidations, start_ms, end_ms)

    def orders(
        self, symbol: str, start_ms: int, end_ms: int, *, isolated: bool = False
    ) -> Sequence[OrderRecord]:
        history = self._history(symbol if isolated else None)
        return self._window(history.orders.get(symbol), start_ms, end_ms)

    def orders_from_id(
        self, symbol: str, from_id: int, limit: int, *, isolated: bool = False
    ) -> Sequence[OrderRecord]:
        history = self._history(symbol if isolated else None)
        book = history.orders.get(symbol)
        return book.from_id(from_id, limit) if book else []

    def trades(
        self, symbol: str, start_ms: int, end_ms: int, *, isolated: bool = False
    ) -> Sequence[TradeRecord]:
        history = self._history(symbol if isolated else None)
        return self._window(history.trades.get(symbol), start_ms, end_ms)

    def trades_from_id(
        self, symbol: str, from_id: int, limit: int, *, isolated: bool = False
    ) -> Sequence[TradeRecord]:
        history = self._history(symbol if isolated else None)
        book = history.trades.get(symbol)
        return book.from_id(from_id, limit) if book else []

    def order(self, symbol: str, order_id: int, *, isolated: bool = False) -> OrderRecord | None:
        order = self._order_index.get((symbol, order_id))
        return order if order is not None and order.is_isolated == isolated else None

    def open_orders(self, symbol: str | None, *, isolated: bool = False) -> Sequence[OrderRecord]:
        return [
            w.order
            for w in self._working.values()
            if (symbol is None or w.order.symbol == symbol) and w.account.is_isolated == isolated
        ]

    def is_pending(self, confirm_ms: int) -> bool:
        return self.now_ms() < confirm_ms

    def daily_snapshots(self, start_ms: int, end_ms: int) -> Sequence[Snapshot]:
        return self._window(self._snapshots, start_ms, end_ms)

    def balance(self, asset: str, *, isolated_symbol: str | None = None) -> AssetBalance:
        """One asset's balances now."""
        w = self._wallet(self._account(isolated_symbol), asset, trading=False)
        return _balance(asset, w)

    def record_counts(self) -> dict[str, int]:
        """How many records each cross-margin history stream holds (all partitions)."""
        cross = self._cross
        return {
            "loans": len(cross.loans[None].items),
            "repays": len(cross.repays[None].items),
            "interest": len(cross.interest[None].items),
            "transfers": len(cross.transfers[(None, None)].items),
            "liquidations": len(self._liquidations.items),
            "orders": sum(len(b.items) for b in cross.orders.values()),
            "trades": sum(len(b.items) for b in cross.trades.values()),
            "snapshots": len(self._snapshots.items),
        }

    def _history(self, isolated_symbol: str | None) -> _Account:
        """The account whose history to read; a pair without an isolated account has none."""
        if isolated_symbol is None:
            return self._cross
        return self._isolated.get(isolated_symbol) or _NO_HISTORY

    def _window(self, series: _Series[R] | None, start_ms: int, end_ms: int) -> list[R]:
        if not series:
            return []
        return series.window(start_ms, min(end_ms, self.now_ms()))

    # -- state -----------------------------------------------------------------------------
    def snapshot(self, *, isolated_symbol: str | None = None) -> Snapshot:
        """The cross account now, or an isolated pair's (its two assets, BTC prices filled)."""
        with self.lock:
            t = self._caught_up_now()
            return self._snapshot_at(self._account(isolated_symbol), t)

    def _snapshot_at(self, account: _Account, t: int) -> Snapshot:
        balances = {
            asset: _balance(asset, w)
            for asset, w in account.wallets.items()
            if asset not in self._delisted or w.free or w.locked or w.owed
        }
        held, owed = self._exposure(account, t)
        btc = self.market.asset_units(VALUATION_ASSET, t)
        level = from_units(held * UNIT // owed) if owed else NO_DEBT_LEVEL
        snap = Snapshot(t, balances, from_units(held // btc), from_units(owed // btc), level)
        if account.is_isolated:
            snap.btc_prices = {
                a: from_units(self.market.asset_units(a, t) * UNIT // btc) for a in balances
            }
        return snap

    def _exposure(self, account: _Account, t: int) -> tuple[int, int]:
        """(assets, liabilities) valued in 1e-16 USDT at t."""
        held = owed = 0
        for asset, w in account.wallets.items():
            gross, debt = w.free + w.locked, w.borrowed + w.interest
            if gross or debt:
                px = self.market.asset_units(asset, t)
                held += gross * px
                owed += debt * px
        return held, owed

    def max_borrowable(self, asset: str, *, isolated_symbol: str | None = None) -> Decimal:
        with self.lock:
            t = self._caught_up_now()
            account = self._account(isolated_symbol)
            return from_units(self._max_borrowable_units(account, asset, t))

    def _max_borrowable_units(self, account: _Account, asset: str, t: int) -> int:
        wallet = self._wallet(account, asset)
        held, owed = self._exposure(account, t)
        # borrowing x adds x to both sides; keep (A + x) / (L + x) >= 1.5
        room = (2 * held - 3 * owed) // self.market.asset_units(asset, t)
        return max(0, min(room, self._limits[asset] - wallet.borrowed))

    def max_transferable(self, asset: str, *, isolated_symbol: str | None = None) -> Decimal:
        with self.lock:
            t = self._caught_up_now()
            account = self._account(isolated_symbol)
            return from_units(self._max_transferable_units(account, asset, t))

    def _max_transferable_units(self, account: _Account, asset: str, t: int) -> int:
        wallet = self._wallet(account, asset, trading=False)
        held, owed = self._exposure(account, t)
        if not owed:
            return wallet.free
        # keep A / L >= 2 after the transfer
        room = (held - 2 * owed) // self.market.asset_units(asset, t)
        return max(0, min(wallet.free, room))

    # -- actions: settings, transfers, borrows, repays -------------------------------------
    def set_bnb_interest(self, on: bool) -> None:
        """Pay cross-margin interest in BNB from now on (or stop)."""
        with self.lock:
            self._caught_up_now()
            self._bnb_interest = on

    def transfer(
        self,
        asset: str,
        amount: Decimal,
        type_: str,
        *,
        confirm_delay_ms: int = 0,
        fail: bool = False,
        isolated_symbol: str | None = None,
        peer: str = "SPOT",
    ) -> TransferRecord:
        """Move `amount` into (ROLL_IN) or out of (ROLL_OUT) a margin account now: the cross
        account, or `isolated_symbol`'s (opened by its first transfer in). An isolated account's
        `peer` is SPOT or CROSS_MARGIN (then the cross account holds the other side's record)."""
        with self.lock:
            t = self._caught_up_now()
            inbound = type_ == "ROLL_IN"
            if isolated_symbol is None:
                self._wallet(self._cross, asset, trading=inbound)
            units = _amount_units(amount)
            if type_ not in ("ROLL_IN", "ROLL_OUT"):
                raise ExchangeError(-3026, "Your input param is invalid.")
            if isolated_symbol is None:
                return self._cross_transfer(asset, units, inbound, t, confirm_delay_ms, fail)
            if peer not in ("SPOT", "CROSS_MARGIN"):
                raise ExchangeError(-3026, "Your input param is invalid.")
            return self._isolated_transfer(
                isolated_symbol, asset, units, inbound, peer, t, confirm_delay_ms, fail
            )

    def _cross_transfer(
        self, asset: str, units: int, inbound: bool, t: int, delay: int, fail: bool
    ) -> TransferRecord:
        cross = self._cross
        wallet = self._wallet(cross, asset, trading=inbound)
        if not inbound and not fail:
            self._check_transfer_out(cross, asset, units, t)
        record = TransferRecord(
            tx_id=self._tran_id(),
            asset=asset,
            amount=from_units(units),
            time_ms=t,
            type="ROLL_IN" if inbound else "ROLL_OUT",
            status="FAILED" if fail else "CONFIRMED",
            confirm_ms=t + delay,
            trans_from="SPOT" if inbound else "CROSS_MARGIN",
            trans_to="CROSS_MARGIN" if inbound else "SPOT",
        )
        if not fail:
            wallet.free += units if inbound else -units
            if not inbound:
                self._watch_margin(t)
        cross.add_transfer(record)
        return record

    def _isolated_transfer(
        self,
        symbol: str,
        asset: str,
        units: int,
        inbound: bool,
        peer: str,
        t: int,
        delay: int,
        fail: bool,
    ) -> TransferRecord:
        spec = self._spec(symbol)
        if spec.symbol in self._delisted:
            raise ExchangeError(-1121, "Invalid symbol.")
        account = self._isolated.get(spec.symbol)
        if account is None and not inbound:
            raise ExchangeError(-11001, "Isolated margin account does not exist.")
        if asset not in (spec.base, spec.quote):
            raise ExchangeError(-3027, "Not a valid margin asset.")
        from_cross = peer == "CROSS_MARGIN"
        if not fail:
            if inbound and from_cross:
                self._check_transfer_out(self._cross, asset, units, t)
            elif account is not None and not inbound:
                self._check_transfer_out(account, asset, units, t)
        if account is None:  # opened by its first transfer in
            account = self._isolated[spec.symbol] = _Account(spec.symbol, (spec.base, spec.quote))
        wallet = account.wallets[asset]
        here = "ISOLATED_MARGIN"
        record = TransferRecord(
            tx_id=self._tran_id(),
            asset=asset,
            amount=from_units(units),
            time_ms=t,
            type="ROLL_IN" if inbound else "ROLL_OUT",
            status="FAILED" if fail else "CONFIRMED",
            confirm_ms=t + delay,
            trans_from=peer if inbound else here,
            trans_to=here if inbound else peer,
            isolated_symbol=spec.symbol,
            from_symbol=None if inbound else spec.symbol,
            to_symbol=spec.symbol if inbound else None,
        )
        account.add_transfer(record)
        if from_cross:
            # the cross account's side of the same move, under the same id
            mirror = TransferRecord(
                tx_id=record.tx_id,
                asset=asset,
                amount=record.amount,
                time_ms=t,
                type="ROLL_OUT" if inbound else "ROLL_IN",
                status=record.status,
                confirm_ms=record.confirm_ms,
                trans_from=record.trans_from,
                trans_to=record.trans_to,
                from_symbol=record.from_symbol,
                to_symbol=record.to_symbol,
            )
            self._cross.add_transfer(mirror)
        if not fail:
            wallet.free += units if inbound else -units
            if from_cross:
                self._wallet(self._cross, asset, trading=False).free -= units if inbound else -units
                if inbound:
                    self._watch_margin(t)
        return record

    def _check_transfer_out(self, account: _Account, asset: str, units: int, t: int) -> None:
        if account.wallets[asset].free < units:
            raise ExchangeError(-3041, "Balance is not enough")
        if units > self._max_transferable_units(account, asset, t):
            raise ExchangeError(
                -3023, "You can't transfer out/place order under current margin level."
            )

    def borrow(
        self,
        asset: str,
        amount: Decimal,
        *,
        confirm_delay_ms: int = 0,
        fail: bool = False,
        isolated_symbol: str | None = None,
    ) -> LoanRecord:
        """Borrow now; one hour of interest is charged at once (the ON_BORROW row)."""
        with self.lock:
            t = self._caught_up_now()
            account = self._account(isolated_symbol)
            wallet = self._wallet(account, asset)
            units = _amount_units(amount)
            if not fail and units > self._max_borrowable_units(account, asset, t):
                raise ExchangeError(-3006, "Your borrow amount has exceed maximum borrow amount.")
            record = LoanRecord(
                tx_id=self._tran_id(),
                asset=asset,
                principal=from_units(units),
                time_ms=t,
                status="FAILED" if fail else "CONFIRMED",
                confirm_ms=t + confirm_delay_ms,
                isolated_symbol=account.symbol,
            )
            account.add_loan(record)
            if not fail:
                wallet.free += units
                wallet.borrowed += units
                rate = self.market.rate_units(asset, t)
                self._charge_interest(account, asset, units, rate, t, "ON_BORROW")
                if not account.is_isolated:
                    self._watch_margin(t)
            return record

    def repay(
        self,
        asset: str,
        amount: Decimal,
        *,
        confirm_delay_ms: int = 0,
        fail: bool = False,
        kind: str = "MANUAL",
        isolated_symbol: str | None = None,
    ) -> RepayRecord:
        """Repay now: unpaid interest first, then principal. `kind` is how it was paid (see the
        module notes); BNB_AUTO_REPAY is a cross-margin feature."""
        with self.lock:
            t = self._caught_up_now()
            account = self._account(isolated_symbol)
            wallet = self._wallet(account, asset, trading=False)
            units = _amount_units(amount)
            repay_kind = _repay_kind(kind)
            if repay_kind == "BNB_AUTO_REPAY" and account.is_isolated:
                raise ExchangeError(-3026, "Your input param is invalid.")
            if units > wallet.owed:
                raise ExchangeError(-3015, "Repay amount exceeds borrow amount.")
            debit_asset, debit = self._repay_debit(asset, units, repay_kind, t)
            if account.wallets[debit_asset].free < debit and not fail:
                raise ExchangeError(-3041, "Balance is not enough")
            return self._repay(account, asset, units, t, repay_kind, confirm_delay_ms, fail)

    def _repay_debit(self, asset: str, units: int, kind: RepayKind, t: int) -> tuple[str, int]:
        """What a repay takes from the balances: (asset, units)."""
        if kind == "BNB_AUTO_REPAY":
            return BNB, self.bnb_for(asset, units, t)
        if kind == "POINT_AUTO_REPAY":
            return asset, 0
        return asset, units

    def _repay(
        self,
        account: _Account,
        asset: str,
        units: int,
        t: int,
        kind: RepayKind,
        confirm_delay_ms: int = 0,
        fail: bool = False,
        *,
        by_liquidation: bool = False,
    ) -> RepayRecord:
        wallet = account.wallets[asset]
        interest = min(units, wallet.interest)
        principal = units - interest
        debit_asset, debit = self._repay_debit(asset, units, kind, t)
        record = RepayRecord(
            tx_id=self._tran_id(),
            asset=asset,
            amount=from_units(units),
            interest=from_units(interest),
            principal=from_units(principal),
            time_ms=t,
            status="FAILED" if fail else "CONFIRMED",
            confirm_ms=t + confirm_delay_ms,
            kind=kind,
            isolated_symbol=account.symbol,
            by_liquidation=by_liquidation,
            debit_asset=debit_asset,
            debit=from_units(debit),
        )
        account.add_repay(record)
        if not fail:
            account.wallets[debit_asset].free -= debit
            wallet.interest -= interest
            wallet.borrowed -= principal
        return record

    def _charge_interest(
        self,
        account: _Account,
        asset: str,
        principal: int,
        rate: int,
        t: int,
        type_: Literal["ON_BORROW", "PERIODIC"],
    ) -> None:
        charge = hourly_interest_units(principal, rate)
        self._last_interest_id += 1 + self._rng.getrandbits(20)
        in_bnb = self._interest_in_bnb(account, asset, charge, t)
        if in_bnb is None:
            record = InterestRecord(
                tx_id=self._last_interest_id,
                asset=asset,
                principal=from_units(principal),
                interest=from_units(charge),
                rate=from_units(rate),
                time_ms=t,
                type=type_,
                isolated_symbol=account.symbol,
            )
            account.wallets[asset].interest += charge
        else:
            record = InterestRecord(
                tx_id=self._last_interest_id,
                asset=BNB,
                principal=from_units(principal),
                interest=from_units(in_bnb),
                rate=from_units(rate),
                time_ms=t,
                type=_CONVERTED[type_],
                raw_asset=asset,
            )
            self._wallets[BNB].free -= in_bnb
        account.add_interest(record)

    def _interest_in_bnb(self, account: _Account, asset: str, charge: int, t: int) -> int | None:
        """The BNB that pays this charge at once, or None: charged in the asset as usual (the
        setting is off, the asset is BNB, or free BNB does not cover it)."""
        if not self._bnb_interest or account.is_isolated or asset == BNB:
            return None
        cost = self.bnb_for(asset, charge, t, BNB_INTEREST_DISCOUNT_BP)
        return cost if self._wallets[BNB].free >= cost else None

    def bnb_for(self, asset: str, units: int, t: int, discount_bp: int = 0) -> int:
        """What `units` of `asset` cost in BNB at t (1e-8 units, rounded up), valued through
        the USDT pairs' prices at t, less `discount_bp`."""
        return bnb_units(units, self._usdt_units(asset, t), self._usdt_units(BNB, t), discount_bp)

    def _usdt_units(self, asset: str, t: int) -> int:
        if asset == SETTLEMENT_ASSET:
            return UNIT
        spec = self._usdt_pairs.get(asset)
        if spec is None:
            return self.market.asset_units(asset, t)
        return self.market.price_units(spec.symbol, t)

    # -- actions: conversions and delistings -----------------------------------------------
    def convert_dust(self, assets: Sequence[str]) -> list[FlowRecord]:
        """Convert the cross account's small balances of `assets` into BNB now (each worth at
        most 10 USDT, nothing owed or locked): BNB value at the USDT pairs' prices, 2 % kept."""
        with self.lock:
            t = self._caught_up_now()
            if not assets:
                raise ExchangeError(-3026, "Your input param is invalid.")
            bnb_usdt = self._usdt_units(BNB, t)
            plan: list[tuple[str, int, int]] = []
            for asset in assets:
                wallet = self._wallet(self._cross, asset, trading=False)
                value = wallet.free * self._usdt_units(asset, t) // UNIT
                dust = wallet.free > 0 and not wallet.locked and not wallet.owed
                if asset == BNB or not dust or value > DUST_LIMIT_USDT:
                    raise ExchangeError(-3026, "Your input param is invalid.")
                credit = value * UNIT * (BP - DUST_FEE_BP) // (bnb_usdt * BP)
                plan.append((asset, wallet.free, credit))
            tran_id = self._tran_id()
            flows = []
            for asset, units, credit in plan:
                self._wallets[asset].free -= units
                self._wallets[BNB].free += credit
                flows.append(self._flow(tran_id, asset, -units, t, "SMALL_BALANCE_CONVERT"))
                flows.append(self._flow(tran_id, BNB, credit, t, "SMALL_BALANCE_CONVERT"))
            return flows

    def delist_symbol(self, symbol: str) -> None:
        """Stop trading a pair now: its open orders are canceled; its history stays served."""
        with self.lock:
            t = self._caught_up_now()
            spec = self._spec(symbol)
            for working in list(self._working.values()):
                if working.spec.symbol == spec.symbol:
                    self._cancel(working, t)
            self._delisted.setdefault(spec.symbol, t)

    def delist_asset(self, asset: str) -> list[FlowRecord]:
        """Delist an asset and its pairs now. What the cross account holds of it is converted
        into USDT at its USDT pair's price (SMALL_CONVERT rows). It must owe nothing."""
        with self.lock:
            t = self._caught_up_now()
            wallet = self._wallet(self._cross, asset)
            if asset == SETTLEMENT_ASSET or wallet.owed:
                raise ExchangeError(-3026, "Your input param is invalid.")
            for symbol, (base, quote) in self._pairs.items():
                if asset in (base, quote):
                    self.delist_symbol(symbol)
            flows = []
            if wallet.free:
                units = wallet.free
                usdt = units * self._usdt_units(asset, t) // UNIT
                tran_id = self._tran_id()
                wallet.free = 0
                self._wallets[SETTLEMENT_ASSET].free += usdt
                flows.append(self._flow(tran_id, asset, -units, t, "SMALL_CONVERT"))
                flows.append(self._flow(tran_id, SETTLEMENT_ASSET, usdt, t, "SMALL_CONVERT"))
            self._delisted[asset] = t
            return flows

    def _flow(self, tran_id: int, asset: str, units: int, t: int, type_: str) -> FlowRecord:
        record = FlowRecord(tran_id, asset, from_units(units), t, type_)
        self._cross.flows.add(t, record)
        return record

    # -- actions: orders -------------------------------------------------------------------
    def place_order(
        self,
        symbol: str,
        side: str,
        type_: str,
        quantity: Decimal | None,
        price: Decimal | None,
        time_in_force: str | None,
        client_order_id: str | None,
        *,
        quote_order_qty: Decimal | None = None,
        isolated: bool = False,
        side_effect: str = "NO_SIDE_EFFECT",
    ) -> tuple[OrderRecord, Sequence[TradeRecord]]:
        """A new order now, in the cross account or the pair's isolated one. A MARKET order
        takes `quantity` or `quote_order_qty`; AUTO_REPAY repays debt from what fills bring."""
        with self.lock:
            t = self._caught_up_now()
            spec = self._spec(symbol)
            account = self._trading_account(spec, isolated)
            if side not in ("BUY", "SELL"):
                raise ExchangeError(-1117, "Invalid side.")
            side_: Side = "BUY" if side == "BUY" else "SELL"
            if type_ not in ("LIMIT", "MARKET"):
                raise ExchangeError(-1116, "Invalid orderType.")
            auto_repay = side_effect in ("AUTO_REPAY", "AUTO_BORROW_REPAY")
            if quote_order_qty is not None:
                if type_ != "MARKET" or quantity is not None:
                    name = "quoteOrderQty" if type_ != "MARKET" else "quantity"
                    raise ExchangeError(-1106, f"Parameter '{name}' sent when not required.")
                quote = _input_units(quote_order_qty, "NOTIONAL")
                client_id = client_order_id or self._client_id()
                return self._market_order(
                    account, spec, side_, None, t, client_id, False, quote, auto_repay
                )
            if quantity is None:
                raise ExchangeError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty!"
                )
            qty = _floor_to(_input_units(quantity, "LOT_SIZE"), spec.step_units)
            if qty <= 0:
                raise ExchangeError(-1013, "Filter failure: LOT_SIZE")
            client_id = client_order_id or self._client_id()
            if type_ == "MARKET":
                return self._market_order(
                    account, spec, side_, qty, t, client_id, False, None, auto_repay
                )
            if price is None:
                raise ExchangeError(
                    -1102,
                    "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
                )
            tif = time_in_force or "GTC"
            if tif not in ("GTC", "IOC", "FOK"):
                raise ExchangeError(-1115, "Invalid timeInForce.")
            limit = _floor_to(_input_units(price, "PRICE_FILTER"), spec.tick_units)
            if limit <= 0:
                raise ExchangeError(-1013, "Filter failure: PRICE_FILTER")
            return self._limit_order(
                account, spec, side_, qty, limit, tif, t, client_id, auto_repay
            )

    def cancel_order(self, symbol: str, order_id: int, *, isolated: bool = False) -> OrderRecord:
        with self.lock:
            t = self._caught_up_now()
            spec = self._spec(symbol)
            working = self._working.get(order_id)
            if (
                working is None
                or working.spec.symbol != spec.symbol
                or working.account.is_isolated != isolated
            ):
                raise ExchangeError(-2011, "Unknown order sent.")
            self._cancel(working, t)
            return working.order

    def _trading_account(self, spec: SymbolSpec, isolated: bool) -> _Account:
        if spec.symbol in self._delisted:
            raise ExchangeError(-1121, "Invalid symbol.")
        if not isolated:
            return self._cross
        return self._account(spec.symbol)

    def _limit_order(
        self,
        account: _Account,
        spec: SymbolSpec,
        side: Side,
        qty: int,
        limit: int,
        tif: str,
        t: int,
        client_id: str,
        auto_repay: bool,
    ) -> tuple[OrderRecord, list[TradeRecord]]:
        base, quote = account.wallets[spec.base], account.wallets[spec.quote]
        cost = qty * limit // UNIT
        if (quote.free < cost) if side == "BUY" else (base.free < qty):
            raise ExchangeError(-2010, "Account has insufficient balance for requested action.")
        order = self._new_order(
            account, spec, side, "LIMIT", from_units(limit), qty, t, client_id, tif
        )
        if side == "BUY":
            quote.free -= cost
            quote.locked += cost
        else:
            base.free -= qty
            base.locked += qty
        working = _Working(order, spec, limit, qty, account, auto_repay)
        self._working[order.order_id] = working
        if _crosses(side, limit, self.market.price_units(spec.symbol, t)):
            # marketable on arrival: fills at once, at its limit, as taker
            return order, [self._fill_working(working, t, qty, is_maker=False)]
        if tif != "GTC":
            self._cancel(working, t, "EXPIRED")
            return order, []
        self._fill_hour = -1
        self._wake_minutes(t)
        return order, []

    def _fill_working(
        self, working: _Working, t: int, qty: int | None = None, is_maker: bool = True
    ) -> TradeRecord:
        if qty is None:
            step = working.spec.step_units
            lots = working.remaining // step
            # a resting order fills in one to a few pieces as the market trades through it
            if lots <= 1 or self._rng.randrange(5) < 2:
                qty = working.remaining
            else:
                qty = step * max(1, lots * self._rng.randint(25, 75) // 100)
        order, account = working.order, working.account
        trade, quote = self._apply_fill(
            account, order, working.spec, qty, working.price, t, is_maker, True
        )
        working.remaining -= qty
        working.executed += qty
        working.cumm_quote += quote
        order.executed_qty = from_units(working.executed)
        order.cumm_quote_qty = from_units(working.cumm_quote)
        order.update_ms = t
        if working.remaining:
            order.status = "PARTIALLY_FILLED"
        else:
            order.status = "FILLED"
            del self._working[order.order_id]
        if working.auto_repay:
            self._auto_repay(account, working.spec, [trade], t)
        return trade

    def _cancel(self, working: _Working, t: int, status: str = "CANCELED") -> None:
        order, spec, wallets = working.order, working.spec, working.account.wallets
        if order.side == "BUY":
            wallet, amount = wallets[spec.quote], working.remaining * working.price // UNIT
        else:
            wallet, amount = wallets[spec.base], working.remaining
        wallet.locked -= amount
        wallet.free += amount
        order.status = "EXPIRED" if status == "EXPIRED" else "CANCELED"
        order.update_ms = t
        del self._working[order.order_id]

    def _market_order(
        self,
        account: _Account,
        spec: SymbolSpec,
        side: Side,
        qty: int | None,
        t: int,
        client_id: str,
        liquidation: bool,
        quote_qty: int | None = None,
        auto_repay: bool = False,
    ) -> tuple[OrderRecord, list[TradeRecord]]:
        if qty is None:
            assert quote_qty is not None
            fills = self._plan_quote_fills(spec, side, quote_qty, t)
            qty = sum(q for q, _ in fills)
        else:
            fills = self._plan_market_fills(spec, side, qty, t)
        if side == "BUY":
            cost = sum(q * p // UNIT for q, p in fills)
            short = account.wallets[spec.quote].free < cost
        else:
            short = account.wallets[spec.base].free < qty
        if short:
            raise ExchangeError(-2010, "Account has insufficient balance for requested action.")
        order = self._new_order(account, spec, side, "MARKET", Decimal(0), qty, t, client_id, "GTC")
        order.is_liquidation = liquidation
        if quote_qty is not None:
            order.orig_quote_qty = from_units(quote_qty)
        if liquidation:
            order.time_in_force = "IOC"
        trades = []
        executed = cumm = 0
        for fill_qty, fill_price in fills:
            trade, quote = self._apply_fill(
                account, order, spec, fill_qty, fill_price, t, False, False
            )
            trades.append(trade)
            executed += fill_qty
            cumm += quote
        order.executed_qty = from_units(executed)
        order.cumm_quote_qty = from_units(cumm)
        order.status = "FILLED"
        if auto_repay:
            self._auto_repay(account, spec, trades, t)
        return order, trades

    def _plan_market_fills(
        self, spec: SymbolSpec, side: Side, qty: int, t: int
    ) -> list[tuple[int, int]]:
        """One to three fills, each a tick further from the reference price."""
        reference = self.market.price_units(spec.symbol, t)
        tick, step = spec.tick_units, spec.step_units
        lots = qty // step
        pieces = min(lots, 1 + self._rng.randrange(MARKET_SLIPPAGE_TICKS))
        cuts = {1 + self._rng.randrange(lots - 1) for _ in range(pieces - 1)}
        bounds = [0, *sorted(cuts), lots]
        direction = 1 if side == "BUY" else -1
        return [
            ((bounds[i + 1] - bounds[i]) * step, max(tick, reference + direction * i * tick))
            for i in range(len(bounds) - 1)
        ]

    def _plan_quote_fills(
        self, spec: SymbolSpec, side: Side, quote: int, t: int
    ) -> list[tuple[int, int]]:
        """The fills of a `quoteOrderQty` order: whole steps at the reference price, then the
        last pieces trimmed until the fills cost at most `quote`."""
        step = spec.step_units
        qty = _floor_to(quote * UNIT // self.market.price_units(spec.symbol, t), step)
        if qty <= 0:
            raise ExchangeError(-1013, "Filter failure: NOTIONAL")
        fills = self._plan_market_fills(spec, side, qty, t)
        while fills:
            over = sum(q * p // UNIT for q, p in fills) - quote
            if over <= 0:
                return fills
            piece, price = fills[-1]
            piece -= ceil_div(over * UNIT, step * price) * step
            if piece > 0:
                fills[-1] = (piece, price)
            else:
                fills.pop()
        raise ExchangeError(-1013, "Filter failure: NOTIONAL")

    def _auto_repay(
        self, account: _Account, spec: SymbolSpec, trades: Sequence[TradeRecord], t: int
    ) -> None:
        """AUTO_REPAY: what the fills brought in repays the debt in that asset (interest first)."""
        buy = trades[0].is_buyer
        asset = spec.base if buy else spec.quote
        received = sum(
            _units_of(x.qty if buy else x.quote_qty) - _units_of(x.commission) for x in trades
        )
        wallet = account.wallets[asset]
        amount = min(received, wallet.owed, wallet.free)
        if amount > 0:
            self._repay(account, asset, amount, t, "AUTO")

    def _apply_fill(
        self,
        account: _Account,
        order: OrderRecord,
        spec: SymbolSpec,
        qty: int,
        price: int,
        t: int,
        is_maker: bool,
        from_locked: bool,
    ) -> tuple[TradeRecord, int]:
        base, quote = account.wallets[spec.base], account.wallets[spec.quote]
        quote_qty = qty * price // UNIT  # exact: tick x step is a multiple of 1e-8
        if order.side == "BUY":
            fee, fee_asset = commission_units(qty), spec.base
            base.free += qty - fee
            if from_locked:
                quote.locked -= quote_qty
            else:
                quote.free -= quote_qty
        else:
            fee, fee_asset = commission_units(quote_qty), spec.quote
            quote.free += quote_qty - fee
            if from_locked:
                base.locked -= qty
            else:
                base.free -= qty
        self._last_trade_id += 1 + self._rng.getrandbits(1)
        trade = TradeRecord(
            id=self._last_trade_id,
            symbol=spec.symbol,
            order_id=order.order_id,
            price=from_units(price),
            qty=from_units(qty),
            quote_qty=from_units(quote_qty),
            commission=from_units(fee),
            commission_asset=fee_asset,
            is_buyer=order.side == "BUY",
            is_maker=is_maker,
            time_ms=t,
            is_isolated=account.is_isolated,
            is_liquidation=order.is_liquidation,
        )
        account.trades[spec.symbol].add_with_id(trade.id, t, trade)
        return trade, quote_qty

    def _new_order(
        self,
        account: _Account,
        spec: SymbolSpec,
        side: Side,
        type_: Literal["LIMIT", "MARKET"],
        price: Decimal,
        qty: int,
        t: int,
        client_id: str,
        tif: str,
    ) -> OrderRecord:
        self._last_order_id += 1 + self._rng.getrandbits(2)
        order = OrderRecord(
            order_id=self._last_order_id,
            symbol=spec.symbol,
            client_order_id=client_id,
            side=side,
            type=type_,
            price=price,
            orig_qty=from_units(qty),
            time_ms=t,
            update_ms=t,
            time_in_force=tif,
            is_isolated=account.is_isolated,
        )
        account.orders[spec.symbol].add_with_id(order.order_id, t, order)
        self._order_index[(spec.symbol, order.order_id)] = order
        return order

    # -- force liquidation -----------------------------------------------------------------
    def _liquidate(self, t: int) -> None:
        for working in list(self._working.values()):
            if not working.account.is_isolated:
                self._cancel(working, t)
        owed_assets = [a for a, w in self._wallets.items() if w.owed]
        # everything beyond what an asset itself owes is sold for USDT ...
        proceeds = 0
        for asset, wallet in self._wallets.items():
            spec = self._liquidation_pair(asset)
            if spec is None:
                continue
            qty = _floor_to(wallet.free - wallet.owed, spec.step_units)
            if qty > 0:
                sold = self._liquidation_order(spec, "SELL", qty, t)
                proceeds += _units_of(sold.cumm_quote_qty) if sold is not None else 0
        self._charge_liquidation_fee(proceeds, t)
        # ... which buys back the owed assets the account is short of
        for asset in owed_assets:
            spec = self._liquidation_pair(asset)
            wallet = self._wallets[asset]
            short = wallet.owed - wallet.free
            if spec is None or short <= 0:
                continue
            qty = self._liquidation_buy_qty(spec, short, t)
            if qty > 0:
                self._liquidation_order(spec, "BUY", qty, t)
        for asset in owed_assets:
            wallet = self._wallets[asset]
            amount = min(wallet.free, wallet.owed)
            if amount > 0:
                self._repay(self._cross, asset, amount, t, "AUTO", by_liquidation=True)

    def _liquidation_pair(self, asset: str) -> SymbolSpec | None:
        spec = self._usdt_pairs.get(asset)
        return None if spec is None or spec.symbol in self._delisted else spec

    def _charge_liquidation_fee(self, proceeds: int, t: int) -> None:
        """The fee: a share of what the liquidation sold, taken from its USDT at once."""
        usdt = self._wallets[SETTLEMENT_ASSET]
        fee = min(ceil_div(proceeds * self._liquidation_fee_bp, BP), usdt.free)
        if fee > 0:
            usdt.free -= fee
            self._flow(self._tran_id(), SETTLEMENT_ASSET, -fee, t, "LIQUIDATION_FEE")

    def _liquidation_buy_qty(self, spec: SymbolSpec, short: int, t: int) -> int:
        """Enough base to cover `short` after commission, capped by the USDT on hand."""
        step = spec.step_units
        wanted = ceil_div(ceil_div(short * 1000, 999), step) * step
        worst = self.market.price_units(spec.symbol, t) + MARKET_SLIPPAGE_TICKS * spec.tick_units
        affordable = _floor_to(self._wallets[spec.quote].free * UNIT // worst, step)
        return min(wanted, affordable)

    def _liquidation_order(
        self, spec: SymbolSpec, side: Side, qty: int, t: int
    ) -> OrderRecord | None:
        client_id = f"autoclose-{t}{self._rng.randrange(10**6):06d}"
        try:
            order, _ = self._market_order(self._cross, spec, side, qty, t, client_id, True)
        except ExchangeError:
            return None  # the balance moved under the plan; the next check tries again
        executed = _units_of(order.executed_qty)
        average = _units_of(order.cumm_quote_qty) * UNIT // executed
        record = LiquidationRecord(
            order_id=order.order_id,
            symbol=spec.symbol,
            side=side,
            price=self.market.price(spec.symbol, t),
            qty=order.orig_qty,
            executed_qty=order.executed_qty,
            avg_price=from_units(average),
            time_ms=t,
        )
        self._liquidations.add(t, record)
        return order

    # -- small lookups ---------------------------------------------------------------------
    def _account(self, isolated_symbol: str | None) -> _Account:
        if isolated_symbol is None:
            return self._cross
        account = self._isolated.get(isolated_symbol)
        if account is None:
            raise ExchangeError(-11001, "Isolated margin account does not exist.")
        return account

    def _wallet(self, account: _Account, asset: str, *, trading: bool = True) -> _Wallet:
        """An asset's wallet; `trading`: one that may still be borrowed, bought or moved in."""
        wallet = account.wallets.get(asset)
        if wallet is None or (trading and asset in self._delisted):
            raise ExchangeError(-3027, "Not a valid margin asset.")
        return wallet

    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self.market.symbol_specs.get(symbol)
        if spec is None:
            raise ExchangeError(-1121, "Invalid symbol.")
        return spec

    def _tran_id(self) -> int:
        self._last_tran_id += 1 + self._rng.getrandbits(6)
        return self._last_tran_id

    def _client_id(self) -> str:
        return f"web_{self._rng.getrandbits(96):024x}"


def _balance(asset: str, w: _Wallet) -> AssetBalance:
    return AssetBalance(
        asset,
        from_units(w.free),
        from_units(w.locked),
        from_units(w.borrowed),
        from_units(w.interest),
    )


def _repay_kind(kind: str) -> RepayKind:
    known = _REPAY_KINDS.get(kind)
    if known is None:
        raise ExchangeError(-3026, "Your input param is invalid.")
    return known


def _crosses(side: str, limit: int, market: int) -> bool:
    return market <= limit if side == "BUY" else market >= limit


def _floor_to(units: int, step: int) -> int:
    return units - units % step


def _units_of(value: Decimal) -> int:
    return int(value.scaleb(8))


def _input_units(value: Decimal, filter_name: str) -> int:
    """A request's quantity or price in 1e-8 units (extra decimals are cut)."""
    try:
        if not value.is_finite() or value <= 0 or value > _MAX_INPUT:
            raise ExchangeError(-1013, f"Filter failure: {filter_name}")
        return _units_of(value.quantize(_EIGHT_DP, rounding=ROUND_DOWN))
    except InvalidOperation as exc:
        raise ExchangeError(-1013, f"Filter failure: {filter_name}") from exc


def _amount_units(amount: Decimal) -> int:
    """A transfer, borrow or repay amount in 1e-8 units (extra decimals are cut)."""
    try:
        if not amount.is_finite() or amount > _MAX_INPUT:
            raise ExchangeError(-3026, "Your input param is invalid.")
        units = _units_of(amount.quantize(_EIGHT_DP, rounding=ROUND_DOWN))
    except InvalidOperation as exc:
        raise ExchangeError(-3026, "Your input param is invalid.") from exc
    if units <= 0:
        raise ExchangeError(-3026, "Your input param is invalid.")
    return units
