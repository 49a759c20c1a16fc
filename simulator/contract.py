"""What the HTTP layer may ask of the ledger engine: the seam between the two.

`simulator.ledger.Exchange` implements this; the HTTP layer (and the truth writer) use only
these members. Every call must be made while holding `lock` (the server is threaded).
History and state are the cross-margin account's unless an isolated pair is named
(`isolated_symbol`, or `isolated=True` with the pair's symbol); a pair without an isolated
account has an empty history.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from simulator.prices import MarketData
from simulator.records import (
    FlowRecord,
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

    def pin(self) -> None:
        """Stop the clock where it is now (a test takes the truth of one instant)."""

    def catch_up(self) -> None:
        """Process everything due up to now_ms(): hourly interest, fills, confirmations, daily
        snapshots, liquidations. Cheap when nothing is due; the HTTP layer calls it per request."""

    # -- reference data --------------------------------------------------------------------
    @property
    def assets(self) -> Sequence[str]: ...

    @property
    def symbols(self) -> dict[str, tuple[str, str]]:
        """symbol -> (base, quote) for every margin pair, delisted ones included."""

    @property
    def delisted(self) -> Mapping[str, int]:
        """Delisted assets and symbols -> delist time (ms); their history is still served."""

    @property
    def isolated_symbols(self) -> Sequence[str]:
        """The pairs that have an isolated-margin account."""

    def price(self, symbol: str, time_ms: int) -> Decimal: ...

    def rate(self, asset: str, time_ms: int) -> Decimal:
        """The daily interest rate in force during the hour containing time_ms (it changes
        only on the hour; the same for cross and isolated loans)."""

    # -- history (ascending by time, both bounds inclusive, only what happened by now) ------
    def loans(
        self, asset: str | None, start_ms: int, end_ms: int, *, isolated_symbol: str | None = None
    ) -> Sequence[LoanRecord]: ...
    def repays(
        self, asset: str | None, start_ms: int, end_ms: int, *, isolated_symbol: str | None = None
    ) -> Sequence[RepayRecord]: ...
    def interest(
        self, asset: str | None, start_ms: int, end_ms: int, *, isolated_symbol: str | None = None
    ) -> Sequence[InterestRecord]:
        """`asset` matches the row's asset (BNB for interest converted into BNB)."""

    def transfers(
        self,
        asset: str | None,
        type_: str | None,
        start_ms: int,
        end_ms: int,
        *,
        isolated_symbol: str | None = None,
    ) -> Sequence[TransferRecord]: ...
    def flows(
        self, start_ms: int, end_ms: int, *, isolated_symbol: str | None = None
    ) -> Sequence[FlowRecord]:
        """Balance movements no other history reports (fees, conversions)."""

    def liquidations(self, start_ms: int, end_ms: int) -> Sequence[LiquidationRecord]: ...

    def orders(
        self, symbol: str, start_ms: int, end_ms: int, *, isolated: bool = False
    ) -> Sequence[OrderRecord]:
        """By creation time (`time_ms`)."""

    def orders_from_id(
        self, symbol: str, from_id: int, limit: int, *, isolated: bool = False
    ) -> Sequence[OrderRecord]:
        """Orders with order_id >= from_id, ascending by id, at most `limit`."""

    def trades(
        self, symbol: str, start_ms: int, end_ms: int, *, isolated: bool = False
    ) -> Sequence[TradeRecord]: ...

    def trades_from_id(
        self, symbol: str, from_id: int, limit: int, *, isolated: bool = False
    ) -> Sequence[TradeRecord]:
        """Trades with id >= from_id, ascending by id, at most `limit`."""

    def order(
        self, symbol: str, order_id: int, *, isolated: bool = False
    ) -> OrderRecord | None: ...
    def open_orders(
        self, symbol: str | None, *, isolated: bool = False
    ) -> Sequence[OrderRecord]: ...

    def is_pending(self, confirm_ms: int) -> bool:
        """True while a record with this confirm time is still reported PENDING."""

    # -- state -----------------------------------------------------------------------------
    def snapshot(self, *, isolated_symbol: str | None = None) -> Snapshot:
        """The account now: balances, BTC valuations and margin level (999 with no debt); an
        isolated pair's snapshot also carries each asset's BTC price."""

    def daily_snapshots(self, start_ms: int, end_ms: int) -> Sequence[Snapshot]:
        """The cross account's end-of-day snapshots (23:59:59.000 UTC) within the bounds."""

    # -- actions (raise ExchangeError with the Binance code on a business rejection) --------
    def transfer(
        self,
        asset: str,
        amount: Decimal,
        type_: str,
        *,
        isolated_symbol: str | None = None,
        peer: str = "SPOT",
    ) -> TransferRecord: ...
    def borrow(
        self, asset: str, amount: Decimal, *, isolated_symbol: str | None = None
    ) -> LoanRecord: ...
    def repay(
        self,
        asset: str,
        amount: Decimal,
        *,
        kind: str = "MANUAL",
        isolated_symbol: str | None = None,
    ) -> RepayRecord: ...
    def max_borrowable(self, asset: str, *, isolated_symbol: str | None = None) -> Decimal: ...
    def max_transferable(self, asset: str, *, isolated_symbol: str | None = None) -> Decimal: ...

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
        """A new order at now_ms(); returns it and the fills it made at once."""

    def cancel_order(
        self, symbol: str, order_id: int, *, isolated: bool = False
    ) -> OrderRecord: ...
