"""JSON rows become Arrow batches with exact decimals, ms times, nulls and metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from models.rows import (
    RowContext,
    RowError,
    daily_snapshot_rows,
    live_snapshot_rows,
    parse_amount,
    record_batches,
    to_record_batch,
)
from models.schemas import STREAMS

CONTEXT = RowContext("acct-1", "run-7", 1_700_000_000_123, "current", "ROLL_IN")


def test_decimals_are_exact_and_seconds_become_ms() -> None:
    rows = [
        {
            "txId": 5240372201,
            "asset": "BNB",
            "amount": "0.10000000",
            "type": "ROLL_IN",
            "status": "CONFIRMED",
            "timestamp": 1566898617,  # seconds, as in the doc example
        },
        {
            "txId": 1352286576452864727,  # > 2^53: must stay exact
            "asset": "USDT",
            "amount": "12345678901234567890.123456789012345678",
            "type": "ROLL_OUT",
            "status": "PENDING",
            "timestamp": 1566898617123,
            "transFrom": "CROSS_MARGIN",
            "transTo": "SPOT",
        },
    ]
    batch = to_record_batch("transfers", rows, CONTEXT)
    assert batch.schema == STREAMS["transfers"].arrow
    data = batch.to_pydict()
    assert data["amount"] == [
        Decimal("0.1"),
        Decimal("12345678901234567890.123456789012345678"),
    ]
    assert data["txId"] == [5240372201, 1352286576452864727]
    assert data["timestamp"] == [
        datetime(2019, 8, 27, 9, 36, 57, tzinfo=UTC),
        datetime(2019, 8, 27, 9, 36, 57, 123000, tzinfo=UTC),
    ]
    assert data["transFrom"] == [None, "CROSS_MARGIN"]  # missing optional → null
    assert data["_account"] == ["acct-1"] * 2 and data["_run_id"] == ["run-7"] * 2
    assert data["_api"] == ["current"] * 2 and data["_partition"] == ["ROLL_IN"] * 2
    assert batch.column("_fetched_at").type == pa.timestamp("ms", tz="UTC")


@pytest.mark.parametrize(
    ("raw", "exact"),
    [
        ("0.00024995", Decimal("0.00024995")),
        ("1E-8", Decimal("0.00000001")),  # exponent form parsed exactly
        (" 7 ", Decimal(7)),
        (3, Decimal(3)),
        ("-0.5", Decimal("-0.5")),
    ],
)
def test_amounts_parse_exactly(raw: object, exact: Decimal) -> None:
    assert parse_amount(raw) == exact


@pytest.mark.parametrize(
    "raw",
    [
        0.1,  # a binary float: refused, never guessed
        "0.0000000000000000001",  # 19 places: would round
        "100000000000000000000",  # 10^20: does not fit
        "NaN",
        "Infinity",
        "abc",
        True,
    ],
)
def test_amounts_that_cannot_be_stored_exactly_are_refused(raw: object) -> None:
    with pytest.raises(RowError):
        parse_amount(raw)


def test_a_missing_required_field_is_an_error_naming_it() -> None:
    with pytest.raises(RowError, match=r"transfers\.amount"):
        to_record_batch(
            "transfers",
            [{"txId": 1, "asset": "BTC", "type": "ROLL_IN", "status": "CONFIRMED", "timestamp": 1}],
            CONTEXT,
        )


def test_string_booleans_and_all_stream_schemas() -> None:
    trade = {
        "id": 1,
        "symbol": "BTCUSDT",
        "orderId": 2,
        "price": "65000.01",
        "qty": "0.001",
        "commission": "0.00000100",
        "commissionAsset": "BTC",
        "isBuyer": "TRUE",
        "isMaker": False,
        "isBestMatch": True,
        "time": 1700000000000,
    }
    batch = to_record_batch("trades", [trade], CONTEXT)
    assert batch.column("isBuyer").to_pylist() == [True]
    assert batch.column("isIsolated").to_pylist() == [None]
    for stream in STREAMS:  # an empty batch of every stream has its declared schema
        assert to_record_batch(stream, [], CONTEXT).schema == STREAMS[stream].arrow


def test_batches_stream_out_in_bounded_chunks() -> None:
    rows = (
        {
            "orderId": i,
            "symbol": "BTCUSDT",
            "side": "SELL",
            "price": "1",
            "qty": "1",
            "executedQty": "1",
            "avgPrice": "1",
            "updatedTime": 1700000000000 + i,
        }
        for i in range(25)
    )
    sizes = [b.num_rows for b in record_batches("liquidations", rows, CONTEXT, batch_rows=10)]
    assert sizes == [10, 10, 5]


ACCOUNT = {
    "marginLevel": "999.00000000",
    "totalAssetOfBtc": "1.50000000",
    "totalLiabilityOfBtc": "0.00000000",
    "totalNetAssetOfBtc": "1.50000000",
    "userAssets": [
        {
            "asset": "BTC",
            "borrowed": "0.00000000",
            "free": "1.00000000",
            "interest": "0",
            "locked": "0.50000000",
            "netAsset": "1.50000000",
        },
        {
            "asset": "USDT",
            "borrowed": "10.00000000",
            "free": "10.00000000",
            "interest": "0.00000001",
            "locked": "0",
            "netAsset": "-0.00000001",
        },
    ],
}


def test_live_and_daily_snapshots_flatten_to_one_row_per_asset() -> None:
    live = live_snapshot_rows(ACCOUNT, 1_700_000_000_000)
    daily = daily_snapshot_rows(
        [{"type": "margin", "updateTime": 1_699_999_999_000, "data": ACCOUNT}]
    )
    batch = to_record_batch("account_snapshots", live + daily, CONTEXT)
    data = batch.to_pydict()
    assert data["source"] == ["live", "live", "daily", "daily"]
    assert data["asset"] == ["BTC", "USDT", "BTC", "USDT"]
    assert data["netAsset"][1] == Decimal("-0.00000001")
    assert data["marginLevel"] == [Decimal(999)] * 4
    assert data["snapshotTime"][2] == datetime(2023, 11, 14, 22, 13, 19, tzinfo=UTC)
