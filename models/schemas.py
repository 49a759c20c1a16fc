"""Arrow schemas of the lake: one per stream, API field names kept, amounts exact.

This module is the single place where column types are declared. The lake writer, the
row converter, the staging SQL and the tests all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# Amounts: exact decimals, parsed from the API's JSON strings. Never floats.
AMOUNT = pa.decimal128(38, 18)
# Times: UTC milliseconds, whatever unit the server sent (normalised on the way in).
TIME = pa.timestamp("ms", tz="UTC")
ID = pa.int64()

METADATA_FIELDS: tuple[pa.Field, ...] = (
    pa.field("_account", pa.string(), nullable=False),
    pa.field("_run_id", pa.string(), nullable=False),
    pa.field("_fetched_at", TIME, nullable=False),
    # which API generation produced the row: "legacy" (/margin/loan, /margin/repay) or "current"
    pa.field("_api", pa.string(), nullable=False),
    # the partition the row was read under (asset, symbol, transfer type, snapshot source) or ""
    pa.field("_partition", pa.string(), nullable=False),
)
# The columns that name an asset: a row's assets join the account's discovered ones.
ASSET_FIELDS = ("asset", "rawAsset", "commissionAsset")


@dataclass(frozen=True)
class StreamSchema:
    """A stream's raw columns, its time column and its natural key."""

    name: str
    fields: tuple[pa.Field, ...]
    time_field: str
    # Columns that identify a row; None means "content hash + ordinal" (rows may be identical).
    natural_key: tuple[str, ...] | None

    @property
    def arrow(self) -> pa.Schema:
        return pa.schema([*self.fields, *METADATA_FIELDS])


def _f(name: str, typ: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


STREAMS: dict[str, StreamSchema] = {
    s.name: s
    for s in (
        StreamSchema(
            "loans",
            (
                _f("txId", ID),
                _f("asset", pa.string(), False),
                _f("principal", AMOUNT, False),
                _f("amount", AMOUNT),  # current API only (= principal for a borrow)
                _f("interest", AMOUNT),  # current API only (0 on borrows)
                _f("type", pa.string()),  # current API only: AUTO / MANUAL
                _f("status", pa.string(), False),
                _f("timestamp", TIME, False),
                _f("isolatedSymbol", pa.string()),
            ),
            time_field="timestamp",
            natural_key=("txId",),
        ),
        StreamSchema(
            "repays",
            (
                _f("txId", ID, False),
                _f("asset", pa.string(), False),
                _f("amount", AMOUNT, False),
                _f("interest", AMOUNT, False),
                _f("principal", AMOUNT, False),
                _f("type", pa.string()),  # current API only
                _f("rawAsset", pa.string()),
                _f("status", pa.string(), False),
                _f("timestamp", TIME, False),
                _f("isolatedSymbol", pa.string()),
            ),
            time_field="timestamp",
            natural_key=("txId",),
        ),
        StreamSchema(
            "interest",
            (
                _f("txId", ID),
                _f("asset", pa.string(), False),
                _f("rawAsset", pa.string()),
                _f("principal", AMOUNT, False),
                _f("interest", AMOUNT, False),
                _f("interestRate", AMOUNT, False),
                _f("type", pa.string(), False),
                _f("interestAccuredTime", TIME, False),
                _f("isolatedSymbol", pa.string()),
            ),
            time_field="interestAccuredTime",
            natural_key=None,
        ),
        StreamSchema(
            "transfers",
            (
                _f("txId", ID, False),
                _f("asset", pa.string(), False),
                _f("amount", AMOUNT, False),
                _f("type", pa.string(), False),  # ROLL_IN / ROLL_OUT
                _f("status", pa.string(), False),
                _f("timestamp", TIME, False),
                _f("transFrom", pa.string()),
                _f("transTo", pa.string()),
                _f("isolatedSymbol", pa.string()),
            ),
            time_field="timestamp",
            natural_key=("txId",),
        ),
        StreamSchema(
            "liquidations",
            (
                _f("orderId", ID, False),
                _f("symbol", pa.string(), False),
                _f("side", pa.string(), False),
                _f("price", AMOUNT, False),
                _f("qty", AMOUNT, False),
                _f("executedQty", AMOUNT, False),
                _f("avgPrice", AMOUNT, False),
                _f("timeInForce", pa.string()),
                _f("isIsolated", pa.bool_()),
                _f("updatedTime", TIME, False),
            ),
            time_field="updatedTime",
            natural_key=("orderId",),
        ),
        StreamSchema(
            "orders",
            (
                _f("orderId", ID, False),
                _f("symbol", pa.string(), False),
                _f("clientOrderId", pa.string()),
                _f("side", pa.string(), False),
                _f("type", pa.string(), False),
                _f("status", pa.string(), False),
                _f("price", AMOUNT, False),
                _f("origQty", AMOUNT, False),
                _f("executedQty", AMOUNT, False),
                _f("cummulativeQuoteQty", AMOUNT, False),
                _f("icebergQty", AMOUNT),
                _f("stopPrice", AMOUNT),
                _f("timeInForce", pa.string()),
                _f("isWorking", pa.bool_()),
                _f("isIsolated", pa.bool_()),
                _f("selfTradePreventionMode", pa.string()),
                _f("time", TIME, False),
                _f("updateTime", TIME, False),
            ),
            time_field="time",
            natural_key=("symbol", "orderId"),
        ),
        StreamSchema(
            "trades",
            (
                _f("id", ID, False),
                _f("symbol", pa.string(), False),
                _f("orderId", ID, False),
                _f("price", AMOUNT, False),
                _f("qty", AMOUNT, False),
                _f("quoteQty", AMOUNT),
                _f("commission", AMOUNT, False),
                _f("commissionAsset", pa.string(), False),
                _f("isBuyer", pa.bool_(), False),
                _f("isMaker", pa.bool_(), False),
                _f("isBestMatch", pa.bool_()),
                _f("isIsolated", pa.bool_()),
                _f("time", TIME, False),
            ),
            time_field="time",
            natural_key=("symbol", "id"),
        ),
        StreamSchema(
            # The margin account's own ledger of balance changes, by type (today's API only,
            # 90 days back): each row should be explained by one row of the typed history.
            "capital_flow",
            (
                _f("id", ID, False),
                _f("tranId", ID),
                _f("timestamp", TIME, False),
                _f("asset", pa.string(), False),
                _f("symbol", pa.string()),
                _f("type", pa.string(), False),
                _f("amount", AMOUNT, False),
                _f("note", pa.string()),
            ),
            time_field="timestamp",
            natural_key=("id",),
        ),
        StreamSchema(
            # The daily rate in force from each hour on, per borrowable asset.
            "interest_rates",
            (
                _f("asset", pa.string(), False),
                _f("dailyInterestRate", AMOUNT, False),
                _f("timestamp", TIME, False),
                _f("vipLevel", ID),
            ),
            time_field="timestamp",
            natural_key=("asset", "timestamp"),
        ),
        StreamSchema(
            # Closed daily candles of each asset against the reporting quote asset (klines:
            # arrays on the wire, named here as Binance's documentation names the positions).
            "prices",
            (
                _f("symbol", pa.string(), False),
                _f("openTime", TIME, False),
                _f("open", AMOUNT, False),
                _f("high", AMOUNT, False),
                _f("low", AMOUNT, False),
                _f("close", AMOUNT, False),
                _f("volume", AMOUNT),
                _f("closeTime", TIME, False),
                _f("quoteAssetVolume", AMOUNT),
                _f("numberOfTrades", ID),
                _f("takerBuyBaseAssetVolume", AMOUNT),
                _f("takerBuyQuoteAssetVolume", AMOUNT),
            ),
            time_field="openTime",
            natural_key=("symbol", "openTime"),
        ),
        StreamSchema(
            # One row per (source, snapshot time, asset): the live /margin/account answer
            # taken by each run ("live") and the exchange's daily /accountSnapshot ("daily").
            "account_snapshots",
            (
                _f("source", pa.string(), False),
                _f("snapshotTime", TIME, False),
                _f("asset", pa.string(), False),
                _f("free", AMOUNT, False),
                _f("locked", AMOUNT, False),
                _f("borrowed", AMOUNT, False),
                _f("interest", AMOUNT, False),
                _f("netAsset", AMOUNT, False),
                _f("marginLevel", AMOUNT),
                _f("totalAssetOfBtc", AMOUNT),
                _f("totalLiabilityOfBtc", AMOUNT),
                _f("totalNetAssetOfBtc", AMOUNT),
            ),
            time_field="snapshotTime",
            natural_key=("source", "snapshotTime", "asset"),
        ),
    )
}
