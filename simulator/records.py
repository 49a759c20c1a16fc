"""The ledger's history records: what happened, in exact decimals, API-neutral.

The engine (`simulator.ledger`) appends these; the HTTP layer renders them into each API
generation's JSON shape. Times are UTC milliseconds. A record whose `confirm_ms` lies in the
future is reported with status PENDING until the clock passes it; its effect on balances
happens at `time_ms` (the status is a reporting lag, as on the exchange). FAILED records had
no effect on the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Status = Literal["CONFIRMED", "FAILED"]


@dataclass(slots=True)
class LoanRecord:
    tx_id: int
    asset: str
    principal: Decimal
    time_ms: int
    status: Status = "CONFIRMED"
    confirm_ms: int = 0  # reported PENDING while now < confirm_ms
    kind: Literal["MANUAL", "AUTO"] = "MANUAL"


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
    kind: Literal["MANUAL", "AUTO"] = "MANUAL"  # AUTO: repaid by a force liquidation


@dataclass(slots=True)
class InterestRecord:
    tx_id: int
    asset: str
    principal: Decimal  # principal the charge was computed on
    interest: Decimal  # ceil8(principal * rate / 24)
    rate: Decimal  # daily rate in force for that hour
    time_ms: int  # on the hour for PERIODIC; the borrow time for ON_BORROW
    type: Literal["ON_BORROW", "PERIODIC"] = "PERIODIC"


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


# Stream names the engine keeps history for (the HTTP layer maps them to endpoints).
HISTORY_STREAMS = ("loans", "repays", "interest", "transfers", "liquidations", "orders", "trades")
