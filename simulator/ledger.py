"""The simulator's ledger engine: an exact cross-margin account over a deterministic market.

All arithmetic runs on integers of 1e-8 (amounts, prices, rates); records carry Decimals with
8 decimal places (render them with format 'f'). Rules, chosen to match the facts page:
- interest: ON_BORROW row at the borrow, then one PERIODIC row per asset at every UTC hour while
  principal is outstanding, `ceil8(principal x daily_rate / 24)`; simple (never compounds).
- repay: interest first, then principal; REPAY amount = interest + principal.
- commission: 0.1 % of what the fill delivers (buyer in base, seller in quote), rounded half up
  to 8 decimals.
- margin level: assets / (borrowed + interest), valued in BTC through USDT; 999 with no debt.
  Borrowing may not take it below 1.5, transfers out not below 2; at <= 1.1 the account is
  force-liquidated: open orders canceled, holdings beyond what each asset owes sold for USDT by
  MARKET liquidation orders, owed assets bought back, debts repaid by AUTO repays. The level is
  checked on each hour, and every minute of an hour whose price range could reach 1.1.
- orders: LIMIT orders lock quote (BUY) or base (SELL) and fill at their limit, in one or more
  pieces, in the first minutes the price path reaches them; MARKET orders fill at once in one
  to three pieces a tick apart.
- time: a record's effect happens at its `time_ms`; `confirm_ms` only delays its reporting.
  Work due at an instant (hourly interest, fills, liquidations) runs before actions at it; the
  daily snapshot at 23:59:59.000 holds every event at or before that instant.
"""

from __future__ import annotations

import random
import threading
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Generic, Literal, TypeVar

from simulator.contract import ExchangeError
from simulator.prices import (
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
    InterestRecord,
    LiquidationRecord,
    LoanRecord,
    OrderRecord,
    RepayRecord,
    Snapshot,
    TradeRecord,
    TransferRecord,
)

SNAPSHOT_OFFSET_MS = DAY_MS - 1000  # 23:59:59.000 UTC
NEVER = 1 << 62
NO_DEBT_LEVEL = from_units(999 * UNIT)
VALUATION_ASSET = "BTC"
SETTLEMENT_ASSET = "USDT"  # liquidations sell into it
MARKET_SLIPPAGE_TICKS = 3  # a MARKET order fills at most this many ticks off the reference
_EIGHT_DP = Decimal(1).scaleb(-8)
_MAX_INPUT = Decimal(10) ** 12

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


@dataclass(slots=True)
class _Working:
    """An open LIMIT order with the exact amounts behind it."""

    order: OrderRecord
    spec: SymbolSpec
    price: int
    remaining: int
    executed: int = 0
    cumm_quote: int = 0


class Exchange:
    """A cross-margin account with full history; implements `simulator.contract.ExchangeProtocol`.

    The clock starts pinned at `opened_ms` so a scenario can act in the past (`travel_to`);
    `go_live()` releases it, after which now = the pinned time + wall-clock time elapsed.
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
        self._wallets = {a.name: _Wallet() for a in assets}
        self._asset_names = tuple(self._wallets)
        self._pairs = {s.symbol: (s.base, s.quote) for s in symbols}
        self._limits = {a.name: _units_of(a.borrow_limit) for a in assets}
        self._usdt_pairs = {
            s.base: s for s in symbols if s.quote == SETTLEMENT_ASSET and s.base != s.quote
        }
        # ids: ascending, with gaps, in the ranges the real API uses
        self._last_tran_id = 200_000_000_000 + self._rng.randrange(10**9)
        self._last_interest_id = 1_352_286_576_452_864_727 + self._rng.randrange(10**12)
        self._last_order_id = 3_000_000_000 + self._rng.randrange(10**6)
        self._last_trade_id = 400_000_000 + self._rng.randrange(10**6)
        # history, partitioned the ways the API asks for it
        self._loans: defaultdict[str | None, _Series[LoanRecord]] = defaultdict(_Series)
        self._repays: defaultdict[str | None, _Series[RepayRecord]] = defaultdict(_Series)
        self._interest: defaultdict[str | None, _Series[InterestRecord]] = defaultdict(_Series)
        self._transfers: defaultdict[tuple[str | None, str | None], _Series[TransferRecord]] = (
            defaultdict(_Series)
        )
        self._liquidations: _Series[LiquidationRecord] = _Series()
        self._orders: defaultdict[str, _Book[OrderRecord]] = defaultdict(_Book)
        self._trades: defaultdict[str, _Book[TradeRecord]] = defaultdict(_Book)
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
        for asset, wallet in self._wallets.items():
            if wallet.borrowed:
                rate = self.market.rate_units(asset, t)
                self._charge_interest(asset, wallet, wallet.borrowed, rate, t, "PERIODIC")
            in_debt = in_debt or wallet.owed > 0
        if in_debt:
            self._check_margin(t)
        self._next_hour = t + HOUR_MS
        self._watch_hour = -1
        self._watch_margin(t)

    def _check_margin(self, t: int) -> None:
        held, owed = self._exposure(t)
        if owed and held * 10 <= owed * 11:
            self._liquidate(t)

    def _watch_margin(self, t: int) -> None:
        """Check the margin every minute of this hour if its price range could force a sale."""
        hour = t // HOUR_MS
        if self._watch_hour == hour:
            return
        held = owed = 0
        for asset, w in self._wallets.items():
            gross, debt = w.free + w.locked, w.owed
            if gross or debt:
                lo, hi = self.market.paths[asset].hour_range(hour)
                held += gross * lo
                owed += debt * hi
        if owed and held * 10 <= owed * 11:
            self._watch_hour = hour
            self._wake_minutes(t)

    def _snapshot_step(self, t: int) -> None:
        self._snapshots.add(t, self._snapshot_at(t))
        self._next_snapshot = t + DAY_MS

    def _minute_step(self, t: int) -> None:
        hour = t // HOUR_MS
        if hour != self._fill_hour:
            self._fill_hour = hour
            self._fill_candidates = [w for w in self._working.values() if self._may_fill(w, hour)]
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

    def _may_fill(self, working: _Working, hour: int) -> bool:
        lo, hi = self.market.price_range(working.spec.symbol, hour)
        return lo <= working.price if working.order.side == "BUY" else hi >= working.price

    # -- reference data --------------------------------------------------------------------
    @property
    def assets(self) -> Sequence[str]:
        return self._asset_names

    @property
    def symbols(self) -> dict[str, tuple[str, str]]:
        return self._pairs

    def symbol_spec(self, symbol: str) -> SymbolSpec:
        return self._spec(symbol)

    def price(self, symbol: str, time_ms: int) -> Decimal:
        return self.market.price(self._spec(symbol).symbol, time_ms)

    def rate(self, asset: str, time_ms: int) -> Decimal:
        """The daily interest rate in force during the hour containing time_ms."""
        return self.market.rate(asset, time_ms)

    # -- history ---------------------------------------------------------------------------
    def loans(self, asset: str | None, start_ms: int, end_ms: int) -> Sequence[LoanRecord]:
        return self._window(self._loans.get(asset), start_ms, end_ms)

    def repays(self, asset: str | None, start_ms: int, end_ms: int) -> Sequence[RepayRecord]:
        return self._window(self._repays.get(asset), start_ms, end_ms)

    def interest(self, asset: str | None, start_ms: int, end_ms: int) -> Sequence[InterestRecord]:
        return self._window(self._interest.get(asset), start_ms, end_ms)

    def transfers(
        self, asset: str | None, type_: str | None, start_ms: int, end_ms: int
    ) -> Sequence[TransferRecord]:
        return self._window(self._transfers.get((asset, type_)), start_ms, end_ms)

    def liquidations(self, start_ms: int, end_ms: int) -> Sequence[LiquidationRecord]:
        return self._window(self._liquidations, start_ms, end_ms)

    def orders(self, symbol: str, start_ms: int, end_ms: int) -> Sequence[OrderRecord]:
        return self._window(self._orders.get(symbol), start_ms, end_ms)

    def orders_from_id(self, symbol: str, from_id: int, limit: int) -> Sequence[OrderRecord]:
        book = self._orders.get(symbol)
        return book.from_id(from_id, limit) if book else []

    def trades(self, symbol: str, start_ms: int, end_ms: int) -> Sequence[TradeRecord]:
        return self._window(self._trades.get(symbol), start_ms, end_ms)

    def trades_from_id(self, symbol: str, from_id: int, limit: int) -> Sequence[TradeRecord]:
        book = self._trades.get(symbol)
        return book.from_id(from_id, limit) if book else []

    def order(self, symbol: str, order_id: int) -> OrderRecord | None:
        return self._order_index.get((symbol, order_id))

    def open_orders(self, symbol: str | None) -> Sequence[OrderRecord]:
        return [
            w.order for w in self._working.values() if symbol is None or w.order.symbol == symbol
        ]

    def is_pending(self, confirm_ms: int) -> bool:
        return self.now_ms() < confirm_ms

    def daily_snapshots(self, start_ms: int, end_ms: int) -> Sequence[Snapshot]:
        return self._window(self._snapshots, start_ms, end_ms)

    def balance(self, asset: str) -> AssetBalance:
        """One asset's balances now."""
        w = self._wallet(asset)
        return AssetBalance(
            asset,
            from_units(w.free),
            from_units(w.locked),
            from_units(w.borrowed),
            from_units(w.interest),
        )

    def record_counts(self) -> dict[str, int]:
        """How many records each history stream holds (all partitions)."""
        return {
            "loans": len(self._loans[None].items),
            "repays": len(self._repays[None].items),
            "interest": len(self._interest[None].items),
            "transfers": len(self._transfers[(None, None)].items),
            "liquidations": len(self._liquidations.items),
            "orders": sum(len(b.items) for b in self._orders.values()),
            "trades": sum(len(b.items) for b in self._trades.values()),
            "snapshots": len(self._snapshots.items),
        }

    def _window(self, series: _Series[R] | None, start_ms: int, end_ms: int) -> list[R]:
        if series is None:
            return []
        return series.window(start_ms, min(end_ms, self.now_ms()))

    # -- state -----------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        with self.lock:
            return self._snapshot_at(self._caught_up_now())

    def _snapshot_at(self, t: int) -> Snapshot:
        balances = {
            asset: AssetBalance(
                asset,
                from_units(w.free),
                from_units(w.locked),
                from_units(w.borrowed),
                from_units(w.interest),
            )
            for asset, w in self._wallets.items()
        }
        held, owed = self._exposure(t)
        btc = self.market.asset_units(VALUATION_ASSET, t)
        level = from_units(held * UNIT // owed) if owed else NO_DEBT_LEVEL
        return Snapshot(t, balances, from_units(held // btc), from_units(owed // btc), level)

    def _exposure(self, t: int) -> tuple[int, int]:
        """(assets, liabilities) valued in 1e-16 USDT at t."""
        held = owed = 0
        for asset, w in self._wallets.items():
            gross, debt = w.free + w.locked, w.borrowed + w.interest
            if gross or debt:
                px = self.market.asset_units(asset, t)
                held += gross * px
                owed += debt * px
        return held, owed

    def max_borrowable(self, asset: str) -> Decimal:
        with self.lock:
            return from_units(self._max_borrowable_units(asset, self._caught_up_now()))

    def _max_borrowable_units(self, asset: str, t: int) -> int:
        wallet = self._wallet(asset)
        held, owed = self._exposure(t)
        # borrowing x adds x to both sides; keep (A + x) / (L + x) >= 1.5
        room = (2 * held - 3 * owed) // self.market.asset_units(asset, t)
        return max(0, min(room, self._limits[asset] - wallet.borrowed))

    def max_transferable(self, asset: str) -> Decimal:
        with self.lock:
            return from_units(self._max_transferable_units(asset, self._caught_up_now()))

    def _max_transferable_units(self, asset: str, t: int) -> int:
        wallet = self._wallet(asset)
        held, owed = self._exposure(t)
        if not owed:
            return wallet.free
        # keep A / L >= 2 after the transfer
        room = (held - 2 * owed) // self.market.asset_units(asset, t)
        return max(0, min(wallet.free, room))

    # -- actions: transfers, borrows, repays -----------------------------------------------
    def transfer(
        self,
        asset: str,
        amount: Decimal,
        type_: str,
        *,
        confirm_delay_ms: int = 0,
        fail: bool = False,
    ) -> TransferRecord:
        """Move `amount` into (ROLL_IN) or out of (ROLL_OUT) the margin account now."""
        with self.lock:
            t = self._caught_up_now()
            wallet = self._wallet(asset)
            units = _amount_units(amount)
            if type_ not in ("ROLL_IN", "ROLL_OUT"):
                raise ExchangeError(-3026, "Your input param is invalid.")
            if type_ == "ROLL_OUT" and not fail:
                if wallet.free < units:
                    raise ExchangeError(-3041, "Balance is not enough")
                if units > self._max_transferable_units(asset, t):
                    raise ExchangeError(
                        -3023, "You can't transfer out/place order under current margin level."
                    )
            inbound = type_ == "ROLL_IN"
            record = TransferRecord(
                tx_id=self._tran_id(),
                asset=asset,
                amount=from_units(units),
                time_ms=t,
                type="ROLL_IN" if inbound else "ROLL_OUT",
                status="FAILED" if fail else "CONFIRMED",
                confirm_ms=t + confirm_delay_ms,
                trans_from="SPOT" if inbound else "CROSS_MARGIN",
                trans_to="CROSS_MARGIN" if inbound else "SPOT",
            )
            if not fail:
                wallet.free += units if inbound else -units
                if not inbound:
                    self._watch_margin(t)
            for key in ((asset, type_), (asset, None), (None, type_), (None, None)):
                self._transfers[key].add(t, record)
            return record

    def borrow(
        self, asset: str, amount: Decimal, *, confirm_delay_ms: int = 0, fail: bool = False
    ) -> LoanRecord:
        """Borrow now; one hour of interest is charged at once (the ON_BORROW row)."""
        with self.lock:
            t = self._caught_up_now()
            wallet = self._wallet(asset)
            units = _amount_units(amount)
            if not fail and units > self._max_borrowable_units(asset, t):
                raise ExchangeError(-3006, "Your borrow amount has exceed maximum borrow amount.")
            record = LoanRecord(
                tx_id=self._tran_id(),
                asset=asset,
                principal=from_units(units),
                time_ms=t,
                status="FAILED" if fail else "CONFIRMED",
                confirm_ms=t + confirm_delay_ms,
            )
            self._loans[asset].add(t, record)
            self._loans[None].add(t, record)
            if not fail:
                wallet.free += units
                wallet.borrowed += units
                rate = self.market.rate_units(asset, t)
                self._charge_interest(asset, wallet, units, rate, t, "ON_BORROW")
                self._watch_margin(t)
            return record

    def repay(
        self, asset: str, amount: Decimal, *, confirm_delay_ms: int = 0, fail: bool = False
    ) -> RepayRecord:
        """Repay now: unpaid interest first, then principal."""
        with self.lock:
            t = self._caught_up_now()
            wallet = self._wallet(asset)
            units = _amount_units(amount)
            if units > wallet.owed:
                raise ExchangeError(-3015, "Repay amount exceeds borrow amount.")
            if wallet.free < units and not fail:
                raise ExchangeError(-3041, "Balance is not enough")
            return self._repay(asset, units, t, "MANUAL", confirm_delay_ms, fail)

    def _repay(
        self,
        asset: str,
        units: int,
        t: int,
        kind: Literal["MANUAL", "AUTO"],
        confirm_delay_ms: int = 0,
        fail: bool = False,
    ) -> RepayRecord:
        wallet = self._wallets[asset]
        interest = min(units, wallet.interest)
        principal = units - interest
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
        )
        self._repays[asset].add(t, record)
        self._repays[None].add(t, record)
        if not fail:
            wallet.free -= units
            wallet.interest -= interest
            wallet.borrowed -= principal
        return record

    def _charge_interest(
        self,
        asset: str,
        wallet: _Wallet,
        principal: int,
        rate: int,
        t: int,
        type_: Literal["ON_BORROW", "PERIODIC"],
    ) -> None:
        charge = hourly_interest_units(principal, rate)
        self._last_interest_id += 1 + self._rng.getrandbits(20)
        record = InterestRecord(
            tx_id=self._last_interest_id,
            asset=asset,
            principal=from_units(principal),
            interest=from_units(charge),
            rate=from_units(rate),
            time_ms=t,
            type=type_,
        )
        wallet.interest += charge
        self._interest[asset].add(t, record)
        self._interest[None].add(t, record)

    # -- actions: orders -------------------------------------------------------------------
    def place_order(
        self,
        symbol: str,
        side: str,
        type_: str,
        quantity: Decimal,
        price: Decimal | None,
        time_in_force: str | None,
        client_order_id: str | None,
    ) -> tuple[OrderRecord, Sequence[TradeRecord]]:
        with self.lock:
            t = self._caught_up_now()
            spec = self._spec(symbol)
            if side not in ("BUY", "SELL"):
                raise ExchangeError(-1117, "Invalid side.")
            side_: Side = "BUY" if side == "BUY" else "SELL"
            if type_ not in ("LIMIT", "MARKET"):
                raise ExchangeError(-1116, "Invalid orderType.")
            qty = _floor_to(_input_units(quantity, "LOT_SIZE"), spec.step_units)
            if qty <= 0:
                raise ExchangeError(-1013, "Filter failure: LOT_SIZE")
            client_id = client_order_id or self._client_id()
            if type_ == "MARKET":
                order, trades = self._market_order(spec, side_, qty, t, client_id, False)
                return order, trades
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
            return self._limit_order(spec, side_, qty, limit, tif, t, client_id)

    def cancel_order(self, symbol: str, order_id: int) -> OrderRecord:
        with self.lock:
            t = self._caught_up_now()
            spec = self._spec(symbol)
            working = self._working.get(order_id)
            if working is None or working.spec.symbol != spec.symbol:
                raise ExchangeError(-2011, "Unknown order sent.")
            self._cancel(working, t)
            return working.order

    def _limit_order(
        self,
        spec: SymbolSpec,
        side: Side,
        qty: int,
        limit: int,
        tif: str,
        t: int,
        client_id: str,
    ) -> tuple[OrderRecord, list[TradeRecord]]:
        base, quote = self._wallets[spec.base], self._wallets[spec.quote]
        cost = qty * limit // UNIT
        if (quote.free < cost) if side == "BUY" else (base.free < qty):
            raise ExchangeError(-2010, "Account has insufficient balance for requested action.")
        order = self._new_order(spec, side, "LIMIT", from_units(limit), qty, t, client_id, tif)
        if side == "BUY":
            quote.free -= cost
            quote.locked += cost
        else:
            base.free -= qty
            base.locked += qty
        working = _Working(order, spec, limit, qty)
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
        order = working.order
        trade, quote = self._apply_fill(order, working.spec, qty, working.price, t, is_maker, True)
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
        return trade

    def _cancel(self, working: _Working, t: int, status: str = "CANCELED") -> None:
        order, spec = working.order, working.spec
        if order.side == "BUY":
            wallet, amount = self._wallets[spec.quote], working.remaining * working.price // UNIT
        else:
            wallet, amount = self._wallets[spec.base], working.remaining
        wallet.locked -= amount
        wallet.free += amount
        order.status = "EXPIRED" if status == "EXPIRED" else "CANCELED"
        order.update_ms = t
        del self._working[order.order_id]

    def _market_order(
        self,
        spec: SymbolSpec,
        side: Side,
        qty: int,
        t: int,
        client_id: str,
        liquidation: bool,
    ) -> tuple[OrderRecord, list[TradeRecord]]:
        fills = self._plan_market_fills(spec, side, qty, t)
        if side == "BUY":
            cost = sum(q * p // UNIT for q, p in fills)
            short = self._wallets[spec.quote].free < cost
        else:
            short = self._wallets[spec.base].free < qty
        if short:
            raise ExchangeError(-2010, "Account has insufficient balance for requested action.")
        order = self._new_order(spec, side, "MARKET", Decimal(0), qty, t, client_id, "GTC")
        order.is_liquidation = liquidation
        if liquidation:
            order.time_in_force = "IOC"
        trades = []
        executed = cumm = 0
        for fill_qty, fill_price in fills:
            trade, quote = self._apply_fill(order, spec, fill_qty, fill_price, t, False, False)
            trades.append(trade)
            executed += fill_qty
            cumm += quote
        order.executed_qty = from_units(executed)
        order.cumm_quote_qty = from_units(cumm)
        order.status = "FILLED"
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

    def _apply_fill(
        self,
        order: OrderRecord,
        spec: SymbolSpec,
        qty: int,
        price: int,
        t: int,
        is_maker: bool,
        from_locked: bool,
    ) -> tuple[TradeRecord, int]:
        base, quote = self._wallets[spec.base], self._wallets[spec.quote]
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
        )
        self._trades[spec.symbol].add_with_id(trade.id, t, trade)
        return trade, quote_qty

    def _new_order(
        self,
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
        )
        self._orders[spec.symbol].add_with_id(order.order_id, t, order)
        self._order_index[(spec.symbol, order.order_id)] = order
        return order

    # -- force liquidation -----------------------------------------------------------------
    def _liquidate(self, t: int) -> None:
        for working in list(self._working.values()):
            self._cancel(working, t)
        owed_assets = [a for a, w in self._wallets.items() if w.owed]
        # everything beyond what an asset itself owes is sold for USDT ...
        for asset, wallet in self._wallets.items():
            spec = self._usdt_pairs.get(asset)
            if spec is None:
                continue
            qty = _floor_to(wallet.free - wallet.owed, spec.step_units)
            if qty > 0:
                self._liquidation_order(spec, "SELL", qty, t)
        # ... which buys back the owed assets the account is short of
        for asset in owed_assets:
            spec = self._usdt_pairs.get(asset)
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
                self._repay(asset, amount, t, "AUTO")

    def _liquidation_buy_qty(self, spec: SymbolSpec, short: int, t: int) -> int:
        """Enough base to cover `short` after commission, capped by the USDT on hand."""
        step = spec.step_units
        wanted = ceil_div(ceil_div(short * 1000, 999), step) * step
        worst = self.market.price_units(spec.symbol, t) + MARKET_SLIPPAGE_TICKS * spec.tick_units
        affordable = _floor_to(self._wallets[spec.quote].free * UNIT // worst, step)
        return min(wanted, affordable)

    def _liquidation_order(self, spec: SymbolSpec, side: Side, qty: int, t: int) -> None:
        client_id = f"autoclose-{t}{self._rng.randrange(10**6):06d}"
        try:
            order, _ = self._market_order(spec, side, qty, t, client_id, True)
        except ExchangeError:
            return  # the balance moved under the plan; the next check tries again
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

    # -- small lookups ---------------------------------------------------------------------
    def _wallet(self, asset: str) -> _Wallet:
        wallet = self._wallets.get(asset)
        if wallet is None:
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
