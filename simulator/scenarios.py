"""Seeded account histories, generated only through the ledger engine's public actions.

`build_exchange(scenario, seed, start_ms)` returns a live `Exchange` whose history runs from its
opening up to `start_ms` (the clock is pinned while the scenario acts in the past, then released:
simulated time continues from `start_ms` at wall-clock pace). Same arguments, same history.
Scenarios (`SCENARIOS`, name -> builder; `PROFILES`, name -> what it does per day): `default`
(~80 days, generated in ~0.5 s), `long` (~400 days, ~2.5 s), `large` (>= 1M records, ~25 s),
`tiny` (3 days, for fast tests), `empty` (an opened account with no activity) and `veteran`
(three years at a calm pace, older than every retention limit, with every rarer ledger rule:
BNB-paid interest, every auto-repay, a liquidation fee, rows PENDING for days, a delisted pair
and asset, isolated margin, dust conversion, quoteOrderQty orders).
Each rarer rule is a `Profile` knob that is off unless a profile turns it on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import ParamSpec, TypeVar

from simulator.contract import ExchangeError
from simulator.ledger import Exchange, wall_clock_ms
from simulator.prices import DAY_MS, HOUR_MS, MINUTE_MS, UNIT, AssetSpec, Crash, SymbolSpec
from simulator.records import OrderRecord

P = ParamSpec("P")
T = TypeVar("T")
_EIGHT_DP = Decimal(1).scaleb(-8)

ASSETS = (
    AssetSpec("BTC", Decimal("65000"), 45, Decimal("0.00005000"), Decimal("25")),
    AssetSpec("ETH", Decimal("3200"), 55, Decimal("0.00006000"), Decimal("400")),
    AssetSpec("BNB", Decimal("580"), 50, Decimal("0.00008000"), Decimal("3000")),
    AssetSpec("USDT", Decimal("1"), 0, Decimal("0.00030000"), Decimal("3000000")),
    AssetSpec("USDC", Decimal("1"), 1, Decimal("0.00025000"), Decimal("1000000")),
    AssetSpec("SOL", Decimal("150"), 70, Decimal("0.00012000"), Decimal("20000")),
    AssetSpec("XRP", Decimal("0.55"), 60, Decimal("0.00010000"), Decimal("5000000")),
    AssetSpec("ADA", Decimal("0.45"), 60, Decimal("0.00010000"), Decimal("5000000")),
)

SYMBOLS = (
    SymbolSpec("BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001")),
    SymbolSpec("ETHUSDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.0001")),
    SymbolSpec("BNBUSDT", "BNB", "USDT", Decimal("0.01"), Decimal("0.001")),
    SymbolSpec("SOLUSDT", "SOL", "USDT", Decimal("0.01"), Decimal("0.001")),
    SymbolSpec("XRPUSDT", "XRP", "USDT", Decimal("0.0001"), Decimal("0.1")),
    SymbolSpec("ADAUSDT", "ADA", "USDT", Decimal("0.0001"), Decimal("0.1")),
    SymbolSpec("USDCUSDT", "USDC", "USDT", Decimal("0.0001"), Decimal("1")),
    SymbolSpec("ETHBTC", "ETH", "BTC", Decimal("0.00001"), Decimal("0.001")),
    SymbolSpec("BNBBTC", "BNB", "BTC", Decimal("0.000001"), Decimal("0.01")),
)

# what the account holds (in USDT) per asset; trading leans back toward these levels
TARGET_USDT = {
    "BTC": 30_000,
    "ETH": 15_000,
    "BNB": 8_000,
    "SOL": 8_000,
    "XRP": 4_000,
    "ADA": 4_000,
    "USDC": 5_000,
    "USDT": 40_000,
}
BORROWED = ("USDT", "USDT", "BTC", "ETH", "BNB", "USDC", "SOL")  # weighted by repetition
CRASH_ASSET = "SOL"
CRASH_DROP_BP = 5_500
CRASH_FALL_MS = 10 * HOUR_MS
CRASH_HOLD_MS = 20 * HOUR_MS
CRASH_RECOVER_MS = 48 * HOUR_MS
END_PHASE_MS = 2 * HOUR_MS  # the last hours before start are scripted


@dataclass(frozen=True, slots=True)
class Profile:
    """How busy an account is: mean events per day of each kind, and when markets crash.
    The knobs after `scripted_end` switch on the rarer ledger rules; all are off by default."""

    days: int
    market_orders: Mapping[str, int] = field(default_factory=dict)  # per symbol per day
    limit_orders: int = 0
    usdt_transfers: int = 0
    other_transfers: int = 0
    borrows: int = 0
    repays: int = 0
    crash_days: tuple[int, ...] = ()
    failed_days: tuple[int, ...] = ()
    scripted_end: bool = True
    targets: Mapping[str, int] = field(default_factory=lambda: TARGET_USDT)
    extra_assets: tuple[AssetSpec, ...] = ()
    extra_symbols: tuple[SymbolSpec, ...] = ()
    liquidation_fee_bp: int = 0  # taken from what a force liquidation sells
    bnb_interest_days: tuple[tuple[int, int], ...] = ()  # [from, to) days paying interest in BNB
    auto_repays_per_week: Mapping[str, int] = field(default_factory=dict)  # by REPAY type
    quote_orders_per_week: int = 0  # MARKET orders sized by quoteOrderQty
    slow_days: tuple[int, ...] = ()  # days whose rows stay PENDING for days (CONFIRMED, FAILED)
    delistings: tuple[tuple[int, str], ...] = ()  # (day, asset or symbol)
    dust_days: tuple[int, ...] = ()  # days small balances are converted into BNB
    isolated_pairs: tuple[str, ...] = ()  # pairs traded on isolated margin too
    isolated_per_week: int = 0  # isolated transfers, borrows, repays and orders


DEFAULT = Profile(
    days=80,
    market_orders={
        "BTCUSDT": 14,
        "ETHUSDT": 4,
        "BNBUSDT": 1,
        "SOLUSDT": 1,
        "XRPUSDT": 1,
        "ADAUSDT": 1,
        "ETHBTC": 1,
        "BNBBTC": 1,
        "USDCUSDT": 1,
    },
    limit_orders=3,
    usdt_transfers=5,
    other_transfers=1,
    borrows=4,
    repays=3,
    crash_days=(45,),
    failed_days=(10, 20, 33, 50, 61),
    # the rarer rules a reconciliation must get right, on a small scale (`make demo` shows them)
    liquidation_fee_bp=200,
    bnb_interest_days=((30, 40),),
    auto_repays_per_week={"AUTO": 1, "BNB_AUTO_REPAY": 1, "POINT_AUTO_REPAY": 1},
    slow_days=(65,),  # PENDING for days, settled before start (rows PENDING at start settle
    # within the live hour: the scripted end's)
    isolated_pairs=("BTCUSDT",),
    isolated_per_week=2,
)

LONG = Profile(
    days=400,
    market_orders={"BTCUSDT": 6, "ETHUSDT": 2, "SOLUSDT": 1, "BNBUSDT": 1, "ETHBTC": 1},
    limit_orders=1,
    usdt_transfers=2,
    other_transfers=1,
    borrows=2,
    repays=2,
    crash_days=(130, 310),
    failed_days=(17, 95, 220, 333),
)

LARGE = Profile(
    days=120,
    market_orders={
        "BTCUSDT": 900,
        "ETHUSDT": 700,
        "BNBUSDT": 300,
        "SOLUSDT": 400,
        "XRPUSDT": 250,
        "ADAUSDT": 250,
        "ETHBTC": 200,
        "BNBBTC": 100,
        "USDCUSDT": 100,
    },
    limit_orders=40,
    usdt_transfers=6,
    other_transfers=2,
    borrows=6,
    repays=5,
    crash_days=(70,),
    failed_days=(9, 44, 101),
)

TINY = Profile(
    days=3,
    market_orders={"BTCUSDT": 4, "ETHUSDT": 2, "ETHBTC": 1},
    limit_orders=1,
    usdt_transfers=2,
    other_transfers=1,
    borrows=2,
    repays=1,
)

EMPTY = Profile(days=1, scripted_end=False)

LUNA = AssetSpec("LUNA", Decimal("80"), 80, Decimal("0.00015000"), Decimal("50000"))
LUNAUSDT = SymbolSpec("LUNAUSDT", "LUNA", "USDT", Decimal("0.001"), Decimal("0.01"))
VETERAN_DAYS = 1095

# Three years at a calm pace; the rare rules are spread so that some fall inside the API's
# retention windows (the last 90 / 30 days) and some only before them.
VETERAN = Profile(
    days=VETERAN_DAYS,
    market_orders={
        "BTCUSDT": 3,
        "ETHUSDT": 2,
        "BNBUSDT": 1,
        "SOLUSDT": 1,
        "LUNAUSDT": 1,
        "XRPUSDT": 1,
        "ETHBTC": 1,
        "BNBBTC": 1,
    },
    limit_orders=2,
    usdt_transfers=1,
    other_transfers=1,
    borrows=1,
    repays=2,
    crash_days=(420, 1030),
    failed_days=(30, 250, 640, 1000, 1080),
    targets={**TARGET_USDT, "LUNA": 3_000},
    extra_assets=(LUNA,),
    extra_symbols=(LUNAUSDT,),
    liquidation_fee_bp=200,
    bnb_interest_days=((150, 520), (1040, VETERAN_DAYS + 1)),
    auto_repays_per_week={"AUTO": 2, "BNB_AUTO_REPAY": 1, "POINT_AUTO_REPAY": 1},
    quote_orders_per_week=4,
    slow_days=(60, 333, 700, 1060, VETERAN_DAYS - 2),
    delistings=((600, "BNBBTC"), (1050, "LUNA")),
    dust_days=(365, 1065),
    isolated_pairs=("BTCUSDT",),
    isolated_per_week=5,
)


class AccountLife:
    """Drives one account through a profile's days, acting only via the public engine API."""

    def __init__(self, exchange: Exchange, profile: Profile, seed: int) -> None:
        self.ex = exchange
        self.profile = profile
        self.rng = random.Random(f"life:{seed}")
        self.quiet: list[tuple[int, int]] = []  # spans where only scripted events happen
        self._limit_ids: list[tuple[str, int]] = []

    # -- the plan --------------------------------------------------------------------------
    def run(self) -> None:
        ex, profile = self.ex, self.profile
        start = ex.start_ms
        if profile.scripted_end or profile.days > 1:
            self.open_account(ex.opened_ms)
        crash_starts = [c.start_ms for c in ex.market.crashes]
        for crash_start in crash_starts:
            self.quiet.append(
                (crash_start - 4 * HOUR_MS, crash_start + CRASH_FALL_MS + 3 * HOUR_MS)
            )
        pending_crashes = sorted(crash_starts)
        end_of_life = start - END_PHASE_MS if profile.scripted_end else start
        for day in range(profile.days + 1):
            day_start = ex.opened_ms + day * DAY_MS
            while pending_crashes and pending_crashes[0] < day_start + DAY_MS:
                self.crash(pending_crashes.pop(0), end_of_life)
            events = self.day_events(day, day_start, end_of_life)
            for t, _, action, argument in events:
                if t < ex.now_ms() or self.is_quiet(t):
                    continue
                ex.travel_to(t)
                self.act(action, argument)
        if profile.scripted_end:
            self.scripted_end(start)
        ex.travel_to(start)

    def day_events(self, day: int, day_start: int, end: int) -> list[tuple[int, int, str, str]]:
        """The day's random actions as (time, seq, action, argument), in time order."""
        profile, rng = self.profile, self.rng
        kinds: list[tuple[str, str]] = []
        for symbol, mean in profile.market_orders.items():
            kinds.extend([("market_order", symbol)] * _count(rng, mean))
        for action, mean in (
            ("limit", profile.limit_orders),
            ("usdt_transfer", profile.usdt_transfers),
            ("other_transfer", profile.other_transfers),
            ("borrow", profile.borrows),
            ("repay", profile.repays),
            ("cancel", profile.limit_orders // 2),
        ):
            kinds.extend([(action, "")] * _count(rng, mean))
        if day in profile.failed_days:
            kinds.extend([("failed_transfer", ""), ("failed_borrow", "")])
        if day == 3:
            kinds.append(("twin_borrows", ""))
        kinds.extend(self.rare_kinds())
        events = []
        for seq, (action, argument) in enumerate(kinds):
            t = day_start + rng.randrange(DAY_MS)
            if t < end:
                events.append((t, seq, action, argument))
        for offset, action, argument in self.scripted(day):
            t = day_start + offset
            if t < end:
                events.append((t, len(events), action, argument))
        events.sort()
        return events

    def rare_kinds(self) -> list[tuple[str, str]]:
        """Today's random actions of the rarer rules (no randomness drawn for a rule that is
        off, so the profiles without them keep their histories)."""
        profile, kinds = self.profile, []
        for kind, per_week in profile.auto_repays_per_week.items():
            kinds.extend([("auto_repay", kind)] * _weekly(self.rng, per_week))
        if profile.quote_orders_per_week:
            kinds.extend([("quote_order", "")] * _weekly(self.rng, profile.quote_orders_per_week))
        for pair in profile.isolated_pairs:
            kinds.extend([("isolated", pair)] * _weekly(self.rng, profile.isolated_per_week))
        return kinds

    def scripted(self, day: int) -> list[tuple[int, str, str]]:
        """Today's fixed moments of the rarer rules: (offset into the day, action, argument)."""
        profile, moments = self.profile, []
        for first, last in profile.bnb_interest_days:
            if day in (first, last):
                moments.append((30 * MINUTE_MS, "bnb_interest", "on" if day == first else "off"))
        if day in profile.slow_days:
            moments.append((5 * HOUR_MS + 13 * MINUTE_MS, "slow_rows", ""))
        if day in profile.dust_days:
            moments.append((9 * HOUR_MS + 41 * MINUTE_MS, "dust", ""))
        for when, name in profile.delistings:
            if day == when:
                moments.append((8 * HOUR_MS, "delist", name))
        return moments

    def is_quiet(self, t: int) -> bool:
        return any(lo <= t < hi for lo, hi in self.quiet)

    def act(self, action: str, argument: str) -> None:
        actions: dict[str, Callable[[], None]] = {
            "limit": self.limit,
            "usdt_transfer": self.usdt_transfer,
            "other_transfer": self.other_transfer,
            "borrow": self.borrow,
            "repay": self.repay,
            "cancel": self.cancel,
            "failed_transfer": self.failed_transfer,
            "failed_borrow": self.failed_borrow,
            "twin_borrows": self.twin_borrows,
            "quote_order": self.quote_order,
            "slow_rows": self.slow_rows,
            "dust": self.dust,
        }
        with_argument: dict[str, Callable[[str], None]] = {
            "market_order": self.market_order,
            "auto_repay": self.auto_repay,
            "isolated": self.isolated,
            "bnb_interest": lambda on: self.ex.set_bnb_interest(on == "on"),
            "delist": self.delist,
        }
        if action in with_argument:
            with_argument[action](argument)
        else:
            actions[action]()

    # -- scripted moments ------------------------------------------------------------------
    def open_account(self, t: int) -> None:
        self.ex.travel_to(t)
        self.deposit_targets()

    def deposit_targets(self) -> None:
        for asset, usdt in self.profile.targets.items():
            amount = self.units_for_usdt(asset, Decimal(usdt))
            if amount > 0:
                self.try_(self.ex.transfer, asset, amount, "ROLL_IN")

    def crash(self, crash_start: int, end: int) -> None:
        """Lever the account up into the crashing asset so the fall force-liquidates it."""
        ex = self.ex
        setup = crash_start - 3 * HOUR_MS
        if setup >= end or setup < ex.now_ms():
            return
        ex.travel_to(setup)
        for order in list(ex.open_orders(None)):
            self.try_(ex.cancel_order, order.symbol, order.order_id)
        self.repay_what_we_can()
        # the small holdings go into USDT; BTC and ETH stay, so a liquidation has several legs
        for symbol, (base, quote) in ex.symbols.items():
            if quote == "USDT" and base not in (CRASH_ASSET, "BTC", "ETH"):
                self.sell_all(symbol, base)
        for symbol, (base, quote) in ex.symbols.items():
            balance = ex.balance(base)
            short = balance.borrowed + balance.interest - balance.free
            if quote == "USDT" and short > 0:
                self.try_(self.place_market, symbol, "BUY", short * Decimal("1.003"))
        self.repay_what_we_can()
        room = ex.max_borrowable("USDT") * Decimal("0.97")
        self.try_(ex.borrow, "USDT", _round(room, "USDT"))
        ex.travel_to(setup + MINUTE_MS)
        spend = ex.balance("USDT").free * Decimal("0.995")
        qty = spend / ex.price(f"{CRASH_ASSET}USDT", ex.now_ms()) / Decimal("1.001")
        self.try_(self.place_market, f"{CRASH_ASSET}USDT", "BUY", qty)
        # after the fall the owner tops the account up again
        refill = crash_start + CRASH_FALL_MS + 3 * HOUR_MS
        if refill < end:
            ex.travel_to(refill)
            self.deposit_targets()

    def scripted_end(self, start: int) -> None:
        """The last two hours: debts left open, rows still PENDING at start, resting orders."""
        ex = self.ex
        ex.travel_to(max(ex.now_ms(), start - 100 * MINUTE_MS))
        for asset in ("USDT", "BTC", "ETH", "BNB"):
            room = ex.max_borrowable(asset) * Decimal("0.03")
            self.try_(ex.borrow, asset, _round(room, asset))
        ex.travel_to(max(ex.now_ms(), start - 40 * MINUTE_MS))
        t = ex.now_ms()
        # reported PENDING at start, confirmed 5 to 40 minutes into the live period
        delay = start - t + 10 * MINUTE_MS
        self.try_(ex.transfer, "USDT", Decimal(750), "ROLL_IN", confirm_delay_ms=delay)
        self.try_(ex.repay, "USDT", Decimal(120), confirm_delay_ms=start - t + 5 * MINUTE_MS)
        ex.travel_to(t + 3 * MINUTE_MS)
        t = ex.now_ms()
        room = ex.max_borrowable("SOL") * Decimal("0.02")
        delay = start - t + 40 * MINUTE_MS
        self.try_(ex.borrow, "SOL", _round(room, "SOL"), confirm_delay_ms=delay)
        ex.travel_to(max(ex.now_ms(), start - 5 * MINUTE_MS))
        for symbol, side, offset_bp in (
            ("BTCUSDT", "BUY", -40),
            ("ETHUSDT", "SELL", 40),
            ("SOLUSDT", "BUY", -300),
            ("BNBUSDT", "SELL", 500),
        ):
            self.try_(self.place_limit, symbol, side, offset_bp, Decimal(400))

    # -- random daily actions --------------------------------------------------------------
    def usdt_transfer(self) -> None:
        ex, rng = self.ex, self.rng
        delay = rng.randrange(MINUTE_MS, 10 * MINUTE_MS) if rng.randrange(20) == 0 else 0
        if rng.randrange(5) < 3:
            amount = Decimal(rng.randint(4, 40) * 50)
            self.try_(ex.transfer, "USDT", amount, "ROLL_IN", confirm_delay_ms=delay)
        else:
            room = min(ex.max_transferable("USDT") / 4, Decimal(rng.randint(2, 30) * 50))
            self.try_(ex.transfer, "USDT", _round(room, "USDT"), "ROLL_OUT", confirm_delay_ms=delay)

    def other_transfer(self) -> None:
        ex, rng = self.ex, self.rng
        targets = self.profile.targets
        asset = rng.choice([a for a in targets if a != "USDT"])
        held = self.usdt_value(asset, ex.balance(asset).free)
        if held < targets[asset]:
            amount = self.units_for_usdt(asset, Decimal(rng.randint(300, 3000)))
            self.try_(ex.transfer, asset, amount, "ROLL_IN")
        else:
            amount = min(ex.max_transferable(asset) / 5, self.units_for_usdt(asset, Decimal(1500)))
            self.try_(ex.transfer, asset, _round(amount, asset), "ROLL_OUT")

    def borrow(self) -> None:
        ex, rng = self.ex, self.rng
        asset = rng.choice(BORROWED)
        room = ex.max_borrowable(asset) * Decimal(rng.randint(2, 6)) / 100
        cap = self.units_for_usdt(asset, Decimal(rng.randint(500, 6000)))
        self.try_(ex.borrow, asset, _round(min(room, cap), asset))

    def twin_borrows(self) -> None:
        """Two equal borrows in the same millisecond: genuinely identical rows but for txId."""
        self.try_(self.ex.borrow, "BNB", Decimal("1.5"))
        self.try_(self.ex.borrow, "BNB", Decimal("1.5"))

    def repay(self) -> None:
        ex, rng = self.ex, self.rng
        owing = [a for a in ex.assets if ex.balance(a).borrowed > 0]
        if not owing:
            return
        asset = rng.choice(owing)
        balance = ex.balance(asset)
        owed = balance.borrowed + balance.interest
        share = Decimal(rng.randint(15, 100)) / 100
        amount = min(owed * share, balance.free)
        if rng.randrange(6) == 0:
            amount = min(owed, balance.free)  # repay it all when the balance allows
        self.try_(ex.repay, asset, amount.quantize(_EIGHT_DP, ROUND_DOWN))

    def failed_transfer(self) -> None:
        self.try_(self.ex.transfer, "USDT", Decimal(500), "ROLL_OUT", fail=True)

    def failed_borrow(self) -> None:
        self.try_(self.ex.borrow, "ETH", Decimal("2.5"), fail=True)

    def market_order(self, symbol: str) -> None:
        ex, rng = self.ex, self.rng
        base, _ = ex.symbols[symbol]
        held = self.usdt_value(base, ex.balance(base).free)
        side = "BUY" if held < self.profile.targets[base] else "SELL"
        if rng.randrange(4) == 0:
            side = "SELL" if side == "BUY" else "BUY"
        qty = self.units_for_usdt(base, Decimal(rng.randint(50, 1500)))
        self.try_(self.place_market, symbol, side, qty)

    def limit(self) -> None:
        ex, rng = self.ex, self.rng
        symbol = rng.choice(list(ex.symbols))
        side = rng.choice(("BUY", "SELL"))
        offset = rng.randint(15, 150) * (-1 if side == "BUY" else 1)
        usdt = Decimal(rng.randint(100, 800))
        order = self.try_(self.place_limit, symbol, side, offset, usdt)
        if order is not None:
            self._limit_ids.append((symbol, order.order_id))

    def cancel(self) -> None:
        ex = self.ex
        while self._limit_ids:
            symbol, order_id = self._limit_ids.pop(self.rng.randrange(len(self._limit_ids)))
            order = ex.order(symbol, order_id)
            if order is not None and order.status in ("NEW", "PARTIALLY_FILLED"):
                self.try_(ex.cancel_order, symbol, order_id)
                return

    # -- the rarer rules -------------------------------------------------------------------
    def auto_repay(self, kind: str) -> None:
        """A debt repaid automatically: AUTO by a MARKET order's proceeds, the others with BNB
        or points, a slice of what is owed each time."""
        ex, rng = self.ex, self.rng
        owing = [a for a in ex.assets if a != "BNB" and ex.balance(a).borrowed > 0]
        if not owing:
            return
        asset = rng.choice(owing)
        balance = ex.balance(asset)
        owed = balance.borrowed + balance.interest
        if kind == "AUTO":
            self.repaying_order(asset, owed * Decimal(rng.randint(10, 60)) / 100)
            return
        usdt = Decimal(rng.randint(20, 400) if kind == "BNB_AUTO_REPAY" else rng.randint(1, 15))
        amount = min(owed, self.units_for_usdt(asset, usdt))
        if amount > 0:
            self.try_(ex.repay, asset, amount, kind=kind)

    def repaying_order(self, asset: str, amount: Decimal) -> None:
        """Buy `asset` (or sell into it, for USDT) with sideEffectType AUTO_REPAY."""
        ex = self.ex
        if asset == "USDT":
            symbol, side = "BTCUSDT", "SELL"
            qty = self.units_for_usdt("BTC", amount)
        else:
            symbol, side = f"{asset}USDT", "BUY"
            qty = _round(amount, asset)
        if symbol in ex.symbols and qty > 0:
            self.try_(
                ex.place_order,
                symbol,
                side,
                "MARKET",
                qty,
                None,
                None,
                None,
                side_effect="AUTO_REPAY",
            )

    def quote_order(self) -> None:
        """A MARKET order for a USDT amount (quoteOrderQty) rather than a quantity."""
        ex, rng = self.ex, self.rng
        symbol = rng.choice([s for s in self.profile.market_orders if s.endswith("USDT")])
        base, _ = ex.symbols[symbol]
        held = self.usdt_value(base, ex.balance(base).free)
        side = "BUY" if held < self.profile.targets.get(base, 0) else "SELL"
        usdt = Decimal(rng.randint(20, 800))
        self.try_(
            ex.place_order, symbol, side, "MARKET", None, None, None, None, quote_order_qty=usdt
        )

    def slow_rows(self) -> None:
        """Rows that stay PENDING for days: a transfer and a repay that confirm, a borrow and a
        transfer out that fail."""
        ex, rng = self.ex, self.rng
        days = [DAY_MS * n + rng.randrange(HOUR_MS) for n in (2, 3, 4, 5)]
        self.try_(ex.transfer, "USDT", Decimal(1200), "ROLL_IN", confirm_delay_ms=days[0])
        self.try_(ex.borrow, "ETH", Decimal("0.8"), confirm_delay_ms=days[1], fail=True)
        self.try_(
            ex.transfer, "BTC", Decimal("0.01"), "ROLL_OUT", confirm_delay_ms=days[2], fail=True
        )
        owed = ex.balance("USDT")
        amount = min(owed.borrowed + owed.interest, owed.free, Decimal(150))
        if amount > 0:
            self.try_(ex.repay, "USDT", amount, confirm_delay_ms=days[3])

    def dust(self) -> None:
        """Sell the small holdings down to a few USDT, then convert what is left into BNB."""
        ex = self.ex
        chosen = []
        for asset in ("XRP", "ADA", "USDC"):
            balance = ex.balance(asset)
            if balance.borrowed or balance.interest or balance.locked:
                continue
            keep = self.units_for_usdt(asset, Decimal(3))
            excess = _round(balance.free - keep, asset)
            if excess > 0:
                self.try_(self.place_market, f"{asset}USDT", "SELL", excess)
            if ex.balance(asset).free > 0:
                chosen.append(asset)
        if chosen:
            self.try_(ex.convert_dust, chosen)

    def delist(self, name: str) -> None:
        ex = self.ex
        if name in ex.symbols:
            ex.delist_symbol(name)
            return
        for order in list(ex.open_orders(None)):
            if name in ex.symbols[order.symbol]:
                self.try_(ex.cancel_order, order.symbol, order.order_id)
        ex.delist_asset(name)

    def isolated(self, pair: str) -> None:
        """One isolated-margin move on `pair`: funds in or out (from spot or the cross
        account), a small borrow or repay, or a MARKET order."""
        ex, rng = self.ex, self.rng
        base, quote = ex.symbols[pair]
        if pair not in ex.isolated_symbols or rng.randrange(6) == 0:
            peer = rng.choice(("SPOT", "CROSS_MARGIN"))
            amount = Decimal(rng.randint(4, 20) * 50)
            self.try_(ex.transfer, quote, amount, "ROLL_IN", isolated_symbol=pair, peer=peer)
            return
        balances = {a: ex.balance(a, isolated_symbol=pair) for a in (base, quote)}
        choice = rng.randrange(5)
        if choice == 0:
            # mostly a long position on borrowed quote, now and then a short on the base
            asset = base if rng.randrange(4) == 0 else quote
            share = Decimal(rng.randint(5, 30)) / 100
            room = ex.max_borrowable(asset, isolated_symbol=pair) * share
            self.try_(ex.borrow, asset, _round(room, asset), isolated_symbol=pair)
        elif choice == 1:
            for b in balances.values():  # positions are closed whole
                amount = min(b.free, b.borrowed + b.interest)
                if amount > 0:
                    self.try_(ex.repay, b.asset, amount, isolated_symbol=pair)
        elif choice == 2:
            peer = rng.choice(("SPOT", "CROSS_MARGIN"))
            room = ex.max_transferable(quote, isolated_symbol=pair) / 5
            self.try_(
                ex.transfer,
                quote,
                _round(room, quote),
                "ROLL_OUT",
                isolated_symbol=pair,
                peer=peer,
            )
        else:
            side = rng.choice(("BUY", "SELL"))
            qty = self.units_for_usdt(base, Decimal(rng.randint(50, 400)))
            if side == "SELL":
                qty = min(qty, _round(balances[base].free, base))
            if qty > 0:
                self.try_(
                    ex.place_order, pair, side, "MARKET", qty, None, None, None, isolated=True
                )

    # -- building blocks -------------------------------------------------------------------
    def place_market(self, symbol: str, side: str, qty: Decimal) -> OrderRecord:
        order, _ = self.ex.place_order(symbol, side, "MARKET", qty, None, None, None)
        return order

    def place_limit(self, symbol: str, side: str, offset_bp: int, usdt: Decimal) -> OrderRecord:
        ex = self.ex
        base, _ = ex.symbols[symbol]
        price = ex.price(symbol, ex.now_ms()) * (10_000 + offset_bp) / 10_000
        qty = self.units_for_usdt(base, usdt)
        order, _ = ex.place_order(symbol, side, "LIMIT", qty, price, "GTC", None)
        return order

    def sell_all(self, symbol: str, base: str) -> None:
        free = self.ex.balance(base).free
        if free > 0:
            self.try_(self.place_market, symbol, "SELL", free)

    def repay_what_we_can(self) -> None:
        ex = self.ex
        for asset in ex.assets:
            balance = ex.balance(asset)
            amount = min(balance.free, balance.borrowed + balance.interest)
            if amount > 0:
                self.try_(ex.repay, asset, amount)

    def usdt_value(self, asset: str, amount: Decimal) -> Decimal:
        return amount * self.ex.market.asset_units(asset, self.ex.now_ms()) / UNIT

    def units_for_usdt(self, asset: str, usdt: Decimal) -> Decimal:
        units = self.ex.market.asset_units(asset, self.ex.now_ms())
        return _round(usdt * UNIT / units, asset)

    @staticmethod
    def try_(action: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """Act; a business rejection just means this action did not happen."""
        try:
            return action(*args, **kwargs)
        except ExchangeError:
            return None


def _count(rng: random.Random, mean: int) -> int:
    return rng.randint(mean // 2, mean + mean // 2) if mean > 1 else rng.randint(0, 2 * mean)


def _weekly(rng: random.Random, per_week: int) -> int:
    """How many of something that happens `per_week` times a week happen today."""
    return per_week // 7 + (rng.randrange(7) < per_week % 7)


_PLACES = {
    "BTC": 5,
    "ETH": 4,
    "BNB": 3,
    "SOL": 3,
    "XRP": 1,
    "ADA": 1,
    "USDC": 2,
    "USDT": 2,
    "LUNA": 2,
}


def _round(amount: Decimal, asset: str) -> Decimal:
    return max(Decimal(0), amount).quantize(Decimal(1).scaleb(-_PLACES.get(asset, 8)), ROUND_DOWN)


# -- building ------------------------------------------------------------------------------
def default_start_ms() -> int:
    """The wall clock floored to the UTC hour: where a server's generated history ends."""
    return wall_clock_ms() // HOUR_MS * HOUR_MS


def generate(
    profile: Profile,
    seed: int,
    start_ms: int,
    wall_clock: Callable[[], int] = wall_clock_ms,
) -> Exchange:
    """Generate a profile's history up to start_ms; the returned exchange is still pinned."""
    opened_ms = start_ms - profile.days * DAY_MS + 7 * MINUTE_MS
    crashes = [
        Crash(
            CRASH_ASSET,
            opened_ms + day * DAY_MS + 10 * HOUR_MS,
            CRASH_DROP_BP,
            CRASH_FALL_MS,
            CRASH_HOLD_MS,
            CRASH_RECOVER_MS,
        )
        for day in profile.crash_days
    ]
    exchange = Exchange(
        (*ASSETS, *profile.extra_assets),
        (*SYMBOLS, *profile.extra_symbols),
        seed=seed,
        opened_ms=opened_ms,
        start_ms=start_ms,
        crashes=crashes,
        wall_clock=wall_clock,
        liquidation_fee_bp=profile.liquidation_fee_bp,
    )
    AccountLife(exchange, profile, seed).run()
    return exchange


# four times `large`'s history at its pace: what memory benchmarks compare `large` with
LARGE4 = replace(
    LARGE,
    days=4 * LARGE.days,
    crash_days=(70, 190, 310, 430),
    failed_days=(9, 44, 101, 160, 222, 301, 388, 450),
)

PROFILES: dict[str, Profile] = {
    "default": DEFAULT,
    "long": LONG,
    "large": LARGE,
    "large4": LARGE4,
    "tiny": TINY,
    "empty": EMPTY,
    "veteran": VETERAN,
}

# name -> builder(seed, start_ms): the generated exchange, its clock still pinned at start_ms
SCENARIOS: dict[str, Callable[[int, int], Exchange]] = {
    name: partial(generate, profile) for name, profile in PROFILES.items()
}


def build_exchange(
    scenario: str = "default",
    seed: int = 1,
    start_ms: int | None = None,
    *,
    wall_clock: Callable[[], int] = wall_clock_ms,
    live: bool = True,
) -> Exchange:
    """The named scenario's exchange with history up to start_ms (default: this hour), live."""
    profile = PROFILES.get(scenario)
    if profile is None:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(PROFILES)}")
    start = default_start_ms() if start_ms is None else start_ms
    exchange = generate(profile, seed, start, wall_clock)
    if live:
        exchange.go_live()
    return exchange
