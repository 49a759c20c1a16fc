"""Ledger records → the JSON rows of each API generation (decimals as 8-dp strings, ids and
times as numbers, milliseconds)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
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
}


def dec(value: Decimal) -> str:
    """A decimal as the API writes it: fixed point, 8 places."""
    return f"{value:.8f}"


def status_of(status: str, confirm_ms: int, pending: PendingCheck) -> str:
    """PENDING until the confirmation time, whatever the outcome will be."""
    return "PENDING" if pending(confirm_ms) else status


# -- borrow / repay ----------------------------------------------------------------------------


def legacy_loan_row(record: LoanRecord, pending: PendingCheck) -> Row:
    return {
        "txId": record.tx_id,
        "asset": record.asset,
        "principal": dec(record.principal),
        "timestamp": record.time_ms,
        "status": status_of(record.status, record.confirm_ms, pending),
    }


def legacy_repay_row(record: RepayRecord, pending: PendingCheck) -> Row:
    return {
        "amount": dec(record.amount),
        "asset": record.asset,
        "interest": dec(record.interest),
        "principal": dec(record.principal),
        "status": status_of(record.status, record.confirm_ms, pending),
        "timestamp": record.time_ms,
        "txId": record.tx_id,
    }


def borrow_row(record: LoanRecord, pending: PendingCheck) -> Row:
    return {
        "type": record.kind,
        "amount": dec(record.principal),
        "asset": record.asset,
        "interest": dec(Decimal(0)),
        "principal": dec(record.principal),
        "status": status_of(record.status, record.confirm_ms, pending),
        "timestamp": record.time_ms,
        "txId": record.tx_id,
    }


def repay_row(record: RepayRecord, pending: PendingCheck) -> Row:
    """Today's borrow-repay REPAY row: the legacy repay row with the repay's type first."""
    return {"type": record.kind, **legacy_repay_row(record, pending)}


def interest_row(record: InterestRecord) -> Row:
    return {
        "txId": record.tx_id,
        "interestAccuredTime": record.time_ms,
        "asset": record.asset,
        "rawAsset": record.asset,
        "principal": dec(record.principal),
        "interest": dec(record.interest),
        "interestRate": dec(record.rate),
        "type": record.type,
    }


# -- transfers ---------------------------------------------------------------------------------


def transfer_row(record: TransferRecord, pending: PendingCheck, *, seconds: bool = False) -> Row:
    return {
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


def other_wallet(record: TransferRecord) -> str:
    return record.trans_from if record.type == "ROLL_IN" else record.trans_to


def universal_type(record: TransferRecord) -> str | None:
    return UNIVERSAL_TYPES.get((record.type, other_wallet(record)))


def universal_transfer_row(record: TransferRecord, pending: PendingCheck) -> Row:
    return {
        "asset": record.asset,
        "amount": dec(record.amount),
        "type": universal_type(record),
        "status": status_of(record.status, record.confirm_ms, pending),
        "tranId": record.tx_id,
        "timestamp": record.time_ms,
    }


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
        "isIsolated": False,
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
        "isIsolated": False,
        "selfTradePreventionMode": "NONE",
    }


def order_ack(record: OrderRecord) -> Row:
    return {
        "symbol": record.symbol,
        "orderId": record.order_id,
        "clientOrderId": record.client_order_id,
        "isIsolated": False,
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
        "isIsolated": False,
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
        "isIsolated": False,
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


def asset_info(asset: str) -> Row:
    return {
        "assetFullName": ASSET_NAMES.get(asset, asset),
        "assetName": asset,
        "isBorrowable": True,
        "isMortgageable": True,
        "userMinBorrow": dec(Decimal(0)),
        "userMinRepay": dec(Decimal(0)),
    }


def pair_id(symbol: str) -> int:
    """A stable 18-digit id per symbol, like the doc examples' ids."""
    digest = hashlib.sha256(symbol.encode()).digest()
    return 10**17 + int.from_bytes(digest[:8], "big") % (9 * 10**17)


def pair_info(symbol: str, base: str, quote: str) -> Row:
    return {
        "id": pair_id(symbol),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "isMarginTrade": True,
        "isBuyAllowed": True,
        "isSellAllowed": True,
    }


def price_index(symbol: str, price: Decimal, now_ms: int) -> Row:
    return {"calcTime": now_ms, "price": dec(price), "symbol": symbol}
