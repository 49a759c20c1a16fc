"""JSON rows to Arrow record batches under the lake's schemas: exact decimals, UTC ms times.

Amounts arrive as JSON strings and become decimal128(38, 18) through `Decimal`, never through
a binary float; a value that does not fit exactly is an error, not a rounding. Times become UTC
milliseconds (a value below 10^11 was sent in seconds). Fields a row lacks become nulls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from itertools import islice
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from models.schemas import AMOUNT, ASSET_FIELDS, ID, STREAMS, TIME
from models.times import SECOND_MS, SECONDS_THRESHOLD, normalise_time_ms

SCALE = AMOUNT.scale
QUANTUM = Decimal(1).scaleb(-SCALE)
LIMIT = Decimal(10) ** (AMOUNT.precision - SCALE)  # 10^20: larger values do not fit
INT64_MAX = 2**63 - 1
WIDE = Context(prec=AMOUNT.precision + 20)  # quantize must not run out of digits
TRUE_WORDS = frozenset({"true", "1"})
FALSE_WORDS = frozenset({"false", "0"})


class RowError(ValueError):
    """A row value that cannot be stored exactly under its declared type."""


@dataclass(frozen=True)
class RowContext:
    """The metadata columns every raw row carries."""

    account: str
    run_id: str
    fetched_at_ms: int
    api: str  # "legacy" / "current"
    partition: str  # asset, symbol, transfer type, snapshot source, or ""


def parse_amount(value: Any) -> Decimal | None:
    """An exact decimal with at most 18 fractional digits, from a JSON string (or integer)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise RowError(f"amount {value!r} is not a decimal string")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise RowError(f"amount {value!r} is not a decimal") from None
    if not number.is_finite():
        raise RowError(f"amount {value!r} is not finite")
    scaled = number.quantize(QUANTUM, context=WIDE) if abs(number) < LIMIT else None
    if scaled is None or scaled != number:
        raise RowError(f"amount {value!r} does not fit decimal128(38, {SCALE}) exactly")
    return scaled


def parse_time(value: Any) -> int | None:
    """UTC milliseconds from an integer time in ms or s (strings of digits accepted)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RowError(f"time {value!r} is not an integer")
    try:
        return normalise_time_ms(value)
    except ValueError:
        raise RowError(f"time {value!r} is not an integer") from None


def parse_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RowError(f"id {value!r} is not an integer")
    number = int(value)
    if not -INT64_MAX - 1 <= number <= INT64_MAX:
        raise RowError(f"id {value!r} does not fit int64")
    return number


def parse_bool(value: Any) -> bool | None:
    """JSON booleans, or Binance's "TRUE"/"FALSE" strings."""
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise RowError(f"{value!r} is not a boolean")


def _parse_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _parser(arrow_type: pa.DataType) -> Any:
    if arrow_type == AMOUNT:
        return parse_amount
    if arrow_type == TIME:
        return parse_time
    if arrow_type == ID:
        return parse_id
    if arrow_type == pa.bool_():
        return parse_bool
    return _parse_text


def _fast_column(arrow_type: pa.DataType, values: list[Any]) -> pa.Array | None:
    """The column built by Arrow at once for the common shapes (decimal strings, integer times
    and ids), with the same results as the per-value parsers; None sends the values to those
    parsers, which also name what is wrong. Arrow's cast refuses any digit it would drop."""
    present = [v for v in values if v is not None]
    try:
        if arrow_type == AMOUNT and all(type(v) is str for v in present):
            return pc.cast(pa.array(values, pa.string()), AMOUNT)
        if arrow_type == pa.string() and all(type(v) is str for v in present):
            return pa.array(values, pa.string())
        if arrow_type in (ID, TIME) and all(type(v) is int for v in present):
            numbers = pa.array(values, pa.int64())
            if arrow_type == ID:
                return numbers
            in_seconds = pc.and_(pc.greater_equal(numbers, 0), pc.less(numbers, SECONDS_THRESHOLD))
            millis = pc.if_else(in_seconds, pc.multiply(numbers, SECOND_MS), numbers)
            return millis.cast(TIME)
    except (pa.ArrowInvalid, OverflowError):
        return None
    return None


def to_record_batch(
    stream: str, rows: Sequence[Mapping[str, Any]], context: RowContext
) -> pa.RecordBatch:
    """One record batch of `rows` under `models.schemas.STREAMS[stream]`."""
    schema = STREAMS[stream]
    arrays = []
    for field in schema.fields:
        raw = [row.get(field.name) for row in rows]
        if not field.nullable and any(v is None for v in raw):
            raise RowError(f"{stream}.{field.name} is required but missing in a row")
        column = _fast_column(field.type, raw)
        if column is None:
            parse = _parser(field.type)
            try:
                column = pa.array([parse(value) for value in raw], type=field.type)
            except RowError as exc:
                raise RowError(f"{stream}.{field.name}: {exc}") from None
        arrays.append(column)
    count = len(rows)
    metadata = (
        context.account,
        context.run_id,
        context.fetched_at_ms,
        context.api,
        context.partition,
    )
    arrow_schema = schema.arrow
    for value, field in zip(metadata, list(arrow_schema)[len(schema.fields) :], strict=True):
        arrays.append(pa.array([value] * count, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def record_batches(
    stream: str,
    rows: Iterable[Mapping[str, Any]],
    context: RowContext,
    batch_rows: int = 10_000,
) -> Iterator[pa.RecordBatch]:
    """Record batches of at most `batch_rows` rows: memory stays flat however many rows come."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, batch_rows)):
        yield to_record_batch(stream, chunk, context)


def named_assets(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """The assets `rows` name (asset, rawAsset, commission asset): each was borrowed or moved."""
    return {str(row[f]) for row in rows for f in ASSET_FIELDS if row.get(f)}


# -- account snapshots ------------------------------------------------------------------------
ACCOUNT_TOTALS = ("marginLevel", "totalAssetOfBtc", "totalLiabilityOfBtc", "totalNetAssetOfBtc")
BALANCE_FIELDS = ("asset", "free", "locked", "borrowed", "interest", "netAsset")


def snapshot_rows(source: str, time_ms: int, account: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`account_snapshots` rows, one per asset, from an account document (live or daily)."""
    totals = {name: account.get(name) for name in ACCOUNT_TOTALS}
    return [
        {
            "source": source,
            "snapshotTime": time_ms,
            **{name: balance.get(name) for name in BALANCE_FIELDS},
            **totals,
        }
        for balance in account.get("userAssets", [])
    ]


def live_snapshot_rows(account: Mapping[str, Any], time_ms: int) -> list[dict[str, Any]]:
    """Rows of a live GET /sapi/v1/margin/account answer taken at server time `time_ms`."""
    return snapshot_rows("live", time_ms, account)


def daily_snapshot_rows(snapshot_vos: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the `snapshotVos` of GET /sapi/v1/accountSnapshot?type=MARGIN."""
    rows: list[dict[str, Any]] = []
    for vo in snapshot_vos:
        rows += snapshot_rows("daily", int(vo["updateTime"]), vo.get("data", {}))
    return rows
