"""The ledger's history records: what happened, in exact decimals, API-neutral.

The engine (`simulator.ledger`) appends these; the HTTP layer renders them into each API
generation's JSON shape. Times are UTC milliseconds. A record whose `confirm_ms` lies in the
future is reported with status PENDING until the clock passes it; its outcome is fixed when it
is made: one that ends CONFIRMED takes effect at `time_ms`, one that ends FAILED never has any
effect (see docs/simulator.md, "Ledger and history choices").

`isolated_symbol` (or `is_isolated`) marks a record of an isolated-margin account; None/False
is the cross-margin account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Status = Literal["CONFIRMED", "FAILED"]
RepayKind = Literal["MANUAL", "AUTO", "BNB_AUTO_REPAY", "POINT_AUTO_REPAY"]
InterestType = Literal["ON_BORROW", "PERIODIC", "ON_BORROW_CONVERTED", "PERIODIC_CONVERTED"]


@dataclass(slots=True)
class LoanRecord:
    tx_id: int
    asset: str
    principal: Decimal
    time_ms: int
    status: Status = "CONFIRMED"
    confirm_ms: int = 0  # reported PENDING while now < confirm_ms
    kind: Literal["MANUAL", "AUTO"] = "MANUAL"
    isolated_symbol: str | None = None


@dataclass(slots=True)
class RepayRecord:
    tx_id: int
    asset: str
    amount: Decimal  # = interest + principal
    interest: Decimal
    principal: Decimal
    time_ms: int
    status: Status = "CONFIRMED"
    confirm_ms: int = 0
    kind: RepayKind = "MANUAL"
    isolated_symbol: str | None = None
    by_liquidation: bool = False  # repaid by a force liquidation (reported as AUTO)
    # what left the account's balances: `amount` of `asset`, except BNB_AUTO_REPAY (BNB) and
    # POINT_AUTO_REPAY (nothing: points paid)
    debit_asset: str = ""
    debit: Decimal = Decimal(0)


@dataclass(slots=True)
class InterestRecord:
    tx_id: int
    asset: str  # what the interest is paid in: BNB for the *_CONVERTED types
    principal: Decimal  # principal (of the borrowed asset) the charge was computed on
    interest: Decimal  # ceil8(principal * rate / 24), converted to BNB for *_CONVERTED
    rate: Decimal  # daily rate in force for that hour
    time_ms: int  # on the hour for PERIODIC; the borrow time for ON_BORROW
    type: InterestType = "PERIODIC"
    raw_asset: str | None = None  # the borrowed asset when it differs from `asset`
    isolated_symbol: str | None = None

    @property
    def borrowed_asset(self) -> str:
        return self.raw_asset or self.asset

    @property
    def converted(self) -> bool:
        return self.raw_asset is not None


@dataclass(slots=True)
class TransferRecord:
    tx_id: int
    asset: str
    amount: Decimal
    time_ms: int
    type: Literal["ROLL_IN", "ROLL_OUT"]
    status: Status = "CONFIRMED"
    confirm_ms: int = 0
    trans_from: str = "SPOT"
    trans_to: str = "CROSS_MARGIN"
    isolated_symbol: str | None = None  # the isolated account whose history holds the record
    from_symbol: str | None = None  # the isolated pair money left, if any
    to_symbol: str | None = None  # the isolated pair money went to, if any


@dataclass(slots=True)
class TradeRecord:
    id: int
    symbol: str
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal  # price * qty, exact
    commission: Decimal
    commission_asset: str
    is_buyer: bool
    is_maker: bool
    time_ms: int
    is_isolated: bool = False
    is_liquidation: bool = False


@dataclass(slots=True)
class OrderRecord:
    """Mutable: status, executed quantities and update time change as the order fills."""

    order_id: int
    symbol: str
    client_order_id: str
    side: Literal["BUY", "SELL"]
    type: Literal["LIMIT", "MARKET"]
    price: Decimal  # 0 for MARKET
    orig_qty: Decimal
    time_ms: int
    update_ms: int
    time_in_force: str = "GTC"
    executed_qty: Decimal = Decimal(0)
    cumm_quote_qty: Decimal = Decimal(0)
    status: Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"] = "NEW"
    is_liquidation: bool = False
    is_isolated: bool = False
    orig_quote_qty: Decimal = Decimal(0)  # a MARKET order's quoteOrderQty, if it had one


@dataclass(slots=True)
class LiquidationRecord:
    order_id: int
    symbol: str
    side: Literal["BUY", "SELL"]
    price: Decimal
    qty: Decimal
    executed_qty: Decimal
    avg_price: Decimal
    time_ms: int  # updatedTime
    time_in_force: str = "IOC"


@dataclass(slots=True)
class FlowRecord:
    """A balance movement that no other history row reports: a liquidation fee, or one leg of a
    conversion (dust to BNB, a delisted asset to USDT). Reported only by the capital flow."""

    tran_id: int
    asset: str
    amount: Decimal  # signed: + into the account, - out of it
    time_ms: int
    type: str  # the capital-flow type
    isolated_symbol: str | None = None


@dataclass(slots=True)
class AssetBalance:
    asset: str
    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)
    borrowed: Decimal = Decimal(0)
    interest: Decimal = Decimal(0)

    @property
    def net_asset(self) -> Decimal:
        return self.free + self.locked - self.borrowed - self.interest


@dataclass(slots=True)
class Snapshot:
    """The account at one instant: balances per asset plus BTC valuations."""

    time_ms: int
    balances: dict[str, AssetBalance] = field(default_factory=dict)
    total_asset_btc: Decimal = Decimal(0)
    total_liability_btc: Decimal = Decimal(0)
    margin_level: Decimal = Decimal(999)
    btc_prices: dict[str, Decimal] = field(default_factory=dict)  # isolated snapshots only


# Stream names the engine keeps history for (the HTTP layer maps them to endpoints).
HISTORY_STREAMS = ("loans", "repays", "interest", "transfers", "liquidations", "orders", "trades")
