"""What the HTTP layer may ask of the ledger engine: the seam between the two.

`simulator.ledger.Exchange` implements this; the HTTP layer (and the truth writer) use only
these members. Every call must be made while holding `lock` (the server is threaded).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

from simulator.prices import MarketData
from simulator.records import (
    InterestRecord,
    LiquidationRecord,
    LoanRecord,
    OrderRecord,
    RepayRecord,
    Snapshot,
    TradeRecord,
    TransferRecord,
)


class ExchangeError(Exception):
    """A business rejection, carrying the Binance error code (e.g. -3041, -3015)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class ExchangeProtocol(Protocol):
    lock: threading.RLock
    # the account's opening (first event) and the moment the generated history ends
    opened_ms: int
    start_ms: int
    # the deterministic price paths and hourly rate schedule the engine trades on (read-only)
    market: MarketData

    # -- the clock -------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Simulated exchange time: wall clock + offset (see advance_clock)."""

    def advance_clock(self, delta_ms: int) -> None:
        """Move simulated time forward (tests travel in time instead of sleeping)."""

    def catch_up(self) -> None:
        """Process everything due up to now_ms(): hourly interest, fills, confirmations, daily
        snapshots, liquidations. Cheap when nothing is due; the HTTP layer calls it per request."""

    # -- reference data --------------------------------------------------------------------
    @property
    def assets(self) -> Sequence[str]: ...

    @property
    def symbols(self) -> dict[str, tuple[str, str]]:
        """symbol -> (base, quote) for every margin pair."""

    def price(self, symbol: str, time_ms: int) -> Decimal: ...

    def rate(self, asset: str, time_ms: int) -> Decimal:
        """The daily interest rate in force during the hour containing time_ms."""

    # -- history (ascending by time, both bounds inclusive, only what happened by now) ------
    def loans(self, asset: str | None, start_ms: int, end_ms: int) -> Sequence[LoanRecord]: ...
    def repays(self, asset: str | None, start_ms: int, end_ms: int) -> Sequence[RepayRecord]: ...
    def interest(
        self, asset: str | None, start_ms: int, end_ms: int
    ) -> Sequence[InterestRecord]: ...
    def transfers(
        self, asset: str | None, type_: str | None, start_ms: int, end_ms: int
    ) -> Sequence[TransferRecord]: ...
    def liquidations(self, start_ms: int, end_ms: int) -> Sequence[LiquidationRecord]: ...

    def orders(self, symbol: str, start_ms: int, end_ms: int) -> Sequence[OrderRecord]:
        """By creation time (`time_ms`)."""

    def orders_from_id(self, symbol: str, from_id: int, limit: int) -> Sequence[OrderRecord]:
        """Orders with order_id >= from_id, ascending by id, at most `limit`."""

    def trades(self, symbol: str, start_ms: int, end_ms: int) -> Sequence[TradeRecord]: ...

    def trades_from_id(self, symbol: str, from_id: int, limit: int) -> Sequence[TradeRecord]:
        """Trades with id >= from_id, ascending by id, at most `limit`."""

    def order(self, symbol: str, order_id: int) -> OrderRecord | None: ...
    def open_orders(self, symbol: str | None) -> Sequence[OrderRecord]: ...

    def is_pending(self, confirm_ms: int) -> bool:
        """True while a record with this confirm time is still reported PENDING."""

    # -- state -----------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The account now: balances, BTC valuations and margin level (999 with no debt)."""

    def daily_snapshots(self, start_ms: int, end_ms: int) -> Sequence[Snapshot]:
        """End-of-day snapshots (time 23:59:59.000 UTC of each day) within the bounds."""

    # -- actions (raise ExchangeError with the Binance code on a business rejection) --------
    def transfer(self, asset: str, amount: Decimal, type_: str) -> TransferRecord: ...
    def borrow(self, asset: str, amount: Decimal) -> LoanRecord: ...
    def repay(self, asset: str, amount: Decimal) -> RepayRecord: ...
    def max_borrowable(self, asset: str) -> Decimal: ...
    def max_transferable(self, asset: str) -> Decimal: ...

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
        """A new order at now_ms(); returns it and the fills it made at once."""

    def cancel_order(self, symbol: str, order_id: int) -> OrderRecord: ...
