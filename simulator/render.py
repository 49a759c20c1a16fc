"""Ledger records → the JSON rows of each API generation (decimals as 8-dp strings, ids and
times as numbers, milliseconds)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

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

Row = dict[str, Any]
# confirm_ms → still PENDING? (the exchange decides; see ExchangeProtocol.is_pending)
PendingCheck = Callable[[int], bool]

NO_DEBT_MARGIN_LEVEL = Decimal(999)
# Cross 3x thresholds (facts §6.5): below these, borrowing / transferring out stops.
BORROW_BAR = Decimal("1.5")
TRANSFER_OUT_BAR = Decimal(2)
LIQUIDATION_BAR = Decimal("1.1")
ISOLATED_MARGIN_RATIO = Decimal(5)  # the pairs' leverage ("marginRatio")
EIGHT_DP = Decimal(1).scaleb(-8)

ASSET_NAMES = {
    "BTC": "Bitcoin",
    "ETH": "Ethereum",
    "BNB": "BNB",
    "USDT": "TetherUS",
    "USDC": "USD Coin",
    "XRP": "Ripple",
    "TRX": "TRON",
    "EOS": "EOS",
    "SOL": "Solana",
    "ADA": "Cardano",
    "LUNA": "Terra",
    "DOGE": "Dogecoin",
    "LTC": "Litecoin",
}

# Universal-transfer type for a margin transfer, by (direction, the other wallet).
UNIVERSAL_TYPES = {
    ("ROLL_IN", "SPOT"): "MAIN_MARGIN",
    ("ROLL_OUT", "SPOT"): "MARGIN_MAIN",
    ("ROLL_IN", "FUNDING"): "FUNDING_MARGIN",
    ("ROLL_OUT", "FUNDING"): "MARGIN_FUNDING",
    ("ROLL_IN", "FUTURES"): "UMFUTURE_MARGIN",
    ("ROLL_OUT", "FUTURES"): "MARGIN_UMFUTURE",
    ("ROLL_IN", "ISOLATED_MARGIN"): "ISOLATEDMARGIN_MARGIN",
    ("ROLL_OUT", "ISOLATED_MARGIN"): "MARGIN_ISOLATEDMARGIN",
}


def dec(value: Decimal) -> str:
    """A decimal as the API writes it: fixed point, 8 places."""
    return f"{value:.8f}"


def status_of(status: str, confirm_ms: int, pending: PendingCheck) -> str:
    """PENDING until the confirmation time, whatever the outcome will be."""
    return "PENDING" if pending(confirm_ms) else status


def with_isolated(row: Row, isolated_symbol: str | None) -> Row:
    """`isolatedSymbol` last, and only on an isolated account's rows (absent, not null)."""
    if isolated_symbol is not None:
        row["isolatedSymbol"] = isolated_symbol
    return row


def kind_first(kind: str, isolated_symbol: str | None, row: Row) -> Row:
    """Today's borrow-repay row: `type`, then `isolatedSymbol` when isolated, then the rest."""
    head: Row = {"type": kind}
    if isolated_symbol is not None:
        head["isolatedSymbol"] = isolated_symbol
    return {**head, **row}


# -- borrow / repay ----------------------------------------------------------------------------


def legacy_loan_row(record: LoanRecord, pending: PendingCheck) -> Row:
    row = {
        "txId": record.tx_id,
        "asset": record.asset,
        "principal": dec(record.principal),
        "timestamp": record.time_ms,
        "status": status_of(record.status, record.confirm_ms, pending),
    }
    return with_isolated(row, record.isolated_symbol)


def repay_fields(record: RepayRecord, pending: PendingCheck) -> Row:
    return {
        "amount": dec(record.amount),
        "asset": record.asset,
        "interest": dec(record.interest),
        "principal": dec(record.principal),
        "status": status_of(record.status, record.confirm_ms, pending),
        "timestamp": record.time_ms,
        "txId": record.tx_id,
    }


def legacy_repay_row(record: RepayRecord, pending: PendingCheck) -> Row:
    return with_isolated(repay_fields(record, pending), record.isolated_symbol)


def borrow_row(record: LoanRecord, pending: PendingCheck) -> Row:
    row = {
        "amount": dec(record.principal),
        "asset": record.asset,
        "interest": dec(Decimal(0)),
        "principal": dec(record.principal),
        "status": status_of(record.status, record.confirm_ms, pending),
        "timestamp": record.time_ms,
        "txId": record.tx_id,
    }
    return kind_first(record.kind, record.isolated_symbol, row)


def repay_row(record: RepayRecord, pending: PendingCheck) -> Row:
    """Today's borrow-repay REPAY row: the legacy repay row with the repay's type first (a
    force liquidation's repay reports AUTO)."""
    return kind_first(record.kind, record.isolated_symbol, repay_fields(record, pending))


def interest_row(record: InterestRecord) -> Row:
    """`rawAsset` is the borrowed asset (cross rows only); `asset` is BNB when converted."""
    row: Row = {
        "txId": record.tx_id,
        "interestAccuredTime": record.time_ms,
        "asset": record.asset,
    }
    if record.isolated_symbol is None:
        row["rawAsset"] = record.borrowed_asset
    row.update(
        principal=dec(record.principal),
        interest=dec(record.interest),
        interestRate=dec(record.rate),
        type=record.type,
    )
    return with_isolated(row, record.isolated_symbol)


def interest_rate_row(asset: str, rate: Decimal, time_ms: int, vip_level: int = 0) -> Row:
    """One row of GET /sapi/v1/margin/interestRateHistory: the daily rate from an hour on."""
    return {
        "asset": asset,
        "dailyInterestRate": dec(rate),
        "timestamp": time_ms,
        "vipLevel": vip_level,
    }


# -- transfers ---------------------------------------------------------------------------------


def transfer_row(record: TransferRecord, pending: PendingCheck, *, seconds: bool = False) -> Row:
    row: Row = {
        "amount": dec(record.amount),
        "asset": record.asset,
        "status": status_of(record.status, record.confirm_ms, pending),
        # hostile mode: the 10-digit seconds of the doc example (facts §5.5, open question 1)
        "timestamp": record.time_ms // 1000 if seconds else record.time_ms,
        "txId": record.tx_id,
        "type": record.type,
        "transFrom": record.trans_from,
        "transTo": record.trans_to,
    }
    if record.from_symbol is not None:
        row["fromSymbol"] = record.from_symbol
    if record.to_symbol is not None:
        row["toSymbol"] = record.to_symbol
    return row


def other_wallet(record: TransferRecord) -> str:
    return record.trans_from if record.type == "ROLL_IN" else record.trans_to


def universal_type(record: TransferRecord) -> str | None:
    return UNIVERSAL_TYPES.get((record.type, other_wallet(record)))


def universal_transfer_row(record: TransferRecord, pending: PendingCheck) -> Row:
    row: Row = {
        "asset": record.asset,
        "amount": dec(record.amount),
        "type": universal_type(record),
        "status": status_of(record.status, record.confirm_ms, pending),
        "tranId": record.tx_id,
        "timestamp": record.time_ms,
    }
    if record.from_symbol is not None:
        row["fromSymbol"] = record.from_symbol
    if record.to_symbol is not None:
        row["toSymbol"] = record.to_symbol
    return row


# -- orders, trades, liquidations ----------------------------------------------------------------


def order_row(record: OrderRecord) -> Row:
    return {
        "clientOrderId": record.client_order_id,
        "cummulativeQuoteQty": dec(record.cumm_quote_qty),
        "executedQty": dec(record.executed_qty),
        "icebergQty": dec(Decimal(0)),
        "isWorking": True,  # LIMIT and MARKET orders are working from the start
        "orderId": record.order_id,
        "origQty": dec(record.orig_qty),
        "price": dec(record.price),
        "side": record.side,
        "status": record.status,
        "stopPrice": dec(Decimal(0)),
        "symbol": record.symbol,
        "isIsolated": record.is_isolated,
        "time": record.time_ms,
        "timeInForce": record.time_in_force,
        "type": record.type,
        "selfTradePreventionMode": "NONE",
        "updateTime": record.update_ms,
    }


def order_result(record: OrderRecord) -> Row:
    """The RESULT-style answer of a new order (also the body of a FULL answer)."""
    return {
        "symbol": record.symbol,
        "orderId": record.order_id,
        "clientOrderId": record.client_order_id,
        "transactTime": record.time_ms,
        "price": dec(record.price),
        "origQty": dec(record.orig_qty),
        "executedQty": dec(record.executed_qty),
        "cummulativeQuoteQty": dec(record.cumm_quote_qty),
        "status": record.status,
        "timeInForce": record.time_in_force,
        "type": record.type,
        "side": record.side,
        "isIsolated": record.is_isolated,
        "selfTradePreventionMode": "NONE",
    }


def order_ack(record: OrderRecord) -> Row:
    return {
        "symbol": record.symbol,
        "orderId": record.order_id,
        "clientOrderId": record.client_order_id,
        "isIsolated": record.is_isolated,
        "transactTime": record.time_ms,
    }


def fill_row(trade: TradeRecord) -> Row:
    return {
        "price": dec(trade.price),
        "qty": dec(trade.qty),
        "commission": dec(trade.commission),
        "commissionAsset": trade.commission_asset,
    }


def cancel_row(record: OrderRecord, cancel_client_id: str, now_ms: int) -> Row:
    return {
        "symbol": record.symbol,
        "orderId": record.order_id,
        "origClientOrderId": record.client_order_id,
        "clientOrderId": cancel_client_id,
        "transactTime": now_ms,
        "price": dec(record.price),
        "origQty": dec(record.orig_qty),
        "executedQty": dec(record.executed_qty),
        "cummulativeQuoteQty": dec(record.cumm_quote_qty),
        "status": record.status,
        "timeInForce": record.time_in_force,
        "type": record.type,
        "side": record.side,
        "isIsolated": record.is_isolated,
    }


def trade_row(record: TradeRecord) -> Row:
    return {
        "commission": dec(record.commission),
        "commissionAsset": record.commission_asset,
        "id": record.id,
        "isBestMatch": True,
        "isBuyer": record.is_buyer,
        "isMaker": record.is_maker,
        "orderId": record.order_id,
        "price": dec(record.price),
        "qty": dec(record.qty),
        "symbol": record.symbol,
        "isIsolated": record.is_isolated,
        "time": record.time_ms,
    }


def liquidation_row(record: LiquidationRecord) -> Row:
    return {
        "avgPrice": dec(record.avg_price),
        "executedQty": dec(record.executed_qty),
        "orderId": record.order_id,
        "price": dec(record.price),
        "qty": dec(record.qty),
        "side": record.side,
        "symbol": record.symbol,
        "timeInForce": record.time_in_force,
        "isIsolated": False,
        "updatedTime": record.time_ms,
    }


# -- account state -----------------------------------------------------------------------------


def user_asset(balance: AssetBalance) -> Row:
    return {
        "asset": balance.asset,
        "borrowed": dec(balance.borrowed),
        "free": dec(balance.free),
        "interest": dec(balance.interest),
        "locked": dec(balance.locked),
        "netAsset": dec(balance.net_asset),
    }


def margin_level(snapshot: Snapshot) -> Decimal:
    if snapshot.total_liability_btc == 0:
        return NO_DEBT_MARGIN_LEVEL
    return snapshot.margin_level


def account(snapshot: Snapshot, btc_usdt: Decimal | None) -> Row:
    """The GET /sapi/v1/margin/account answer (facts §5.9) from a snapshot."""
    level = margin_level(snapshot)
    collateral_usdt = snapshot.total_asset_btc * btc_usdt if btc_usdt is not None else Decimal(0)
    return {
        "created": True,
        "borrowEnabled": level > BORROW_BAR,
        "marginLevel": dec(level),
        "collateralMarginLevel": dec(level),
        "totalAssetOfBtc": dec(snapshot.total_asset_btc),
        "totalLiabilityOfBtc": dec(snapshot.total_liability_btc),
        "totalNetAssetOfBtc": dec(snapshot.total_asset_btc - snapshot.total_liability_btc),
        "TotalCollateralValueInUSDT": dec(collateral_usdt),
        "totalOpenOrderLossInUSDT": dec(Decimal(0)),
        "tradeEnabled": True,
        "transferEnabled": True,  # the seed generation's field, replaced 2024-09-13
        "transferInEnabled": True,
        "transferOutEnabled": level > TRANSFER_OUT_BAR,
        "accountType": "MARGIN_1",
        "userAssets": [user_asset(b) for b in snapshot.balances.values()],
    }


def isolated_side(balance: AssetBalance, btc_price: Decimal, borrow_enabled: bool) -> Row:
    """`baseAsset` / `quoteAsset` of an isolated pair (SDK model field order)."""
    return {
        "asset": balance.asset,
        "borrowEnabled": borrow_enabled,
        "borrowed": dec(balance.borrowed),
        "free": dec(balance.free),
        "interest": dec(balance.interest),
        "locked": dec(balance.locked),
        "netAsset": dec(balance.net_asset),
        "netAssetOfBtc": dec((balance.net_asset * btc_price).quantize(EIGHT_DP, ROUND_DOWN)),
        "repayEnabled": True,
        "totalAsset": dec(balance.free + balance.locked),
    }


def level_status(level: Decimal) -> str:
    """marginLevelStatus by the cross 3x bars (facts §6.5)."""
    for bar, status in ((TRANSFER_OUT_BAR, "EXCESSIVE"), (BORROW_BAR, "NORMAL")):
        if level >= bar:
            return status
    return "MARGIN_CALL" if level > LIQUIDATION_BAR else "FORCE_LIQUIDATION"


def isolated_pair(
    symbol: str, base: str, quote: str, snapshot: Snapshot, index_price: Decimal
) -> Row:
    """One pair of GET /sapi/v1/margin/isolated/account."""
    level = margin_level(snapshot)
    sides = {}
    for name, asset in (("baseAsset", base), ("quoteAsset", quote)):
        balance = snapshot.balances.get(asset, AssetBalance(asset))
        sides[name] = isolated_side(
            balance, snapshot.btc_prices.get(asset, Decimal(0)), level > BORROW_BAR
        )
    return {
        **sides,
        "symbol": symbol,
        "isolatedCreated": True,
        "enabled": True,
        "marginLevel": dec(level),
        "marginLevelStatus": level_status(level),
        "marginRatio": dec(ISOLATED_MARGIN_RATIO),
        "indexPrice": dec(index_price),
        "liquidatePrice": dec(Decimal(0)),
        "liquidateRate": dec(Decimal(0)),
        "tradeEnabled": True,
    }


def snapshot_vo(snapshot: Snapshot) -> Row:
    """One day of GET /sapi/v1/accountSnapshot?type=MARGIN (facts §12)."""
    return {
        "type": "margin",
        "updateTime": snapshot.time_ms,
        "data": {
            "marginLevel": dec(margin_level(snapshot)),
            "totalAssetOfBtc": dec(snapshot.total_asset_btc),
            "totalLiabilityOfBtc": dec(snapshot.total_liability_btc),
            "totalNetAssetOfBtc": dec(snapshot.total_asset_btc - snapshot.total_liability_btc),
            "userAssets": [user_asset(b) for b in snapshot.balances.values()],
        },
    }


# -- reference data ----------------------------------------------------------------------------


def asset_info(asset: str, delist_ms: int | None = None) -> Row:
    """A margin asset; a delisted one is neither borrowable nor collateral, with `delistTime`."""
    row: Row = {
        "assetFullName": ASSET_NAMES.get(asset, asset),
        "assetName": asset,
        "isBorrowable": delist_ms is None,
        "isMortgageable": delist_ms is None,
        "userMinBorrow": dec(Decimal(0)),
        "userMinRepay": dec(Decimal(0)),
    }
    if delist_ms is not None:
        row["delistTime"] = delist_ms
    return row


def pair_id(symbol: str) -> int:
    """A stable 18-digit id per symbol, like the doc examples' ids."""
    digest = hashlib.sha256(symbol.encode()).digest()
    return 10**17 + int.from_bytes(digest[:8], "big") % (9 * 10**17)


def pair_info(symbol: str, base: str, quote: str, delist_ms: int | None = None) -> Row:
    """A cross-margin pair; a delisted one still listed, closed, with `delistTime` (ms)."""
    trading = delist_ms is None
    row: Row = {
        "id": pair_id(symbol),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "isMarginTrade": trading,
        "isBuyAllowed": trading,
        "isSellAllowed": trading,
    }
    if delist_ms is not None:
        row["delistTime"] = delist_ms
    return row


def price_index(symbol: str, price: Decimal, now_ms: int) -> Row:
    return {"calcTime": now_ms, "price": dec(price), "symbol": symbol}
