"""The data's shapes: each stream's Arrow schema, row conversion, and time in UTC milliseconds.

The lowest layer: it imports nothing of the project, and everything above reads it.
"""

from models.rows import (
    RowContext,
    RowError,
    daily_snapshot_rows,
    live_snapshot_rows,
    named_assets,
    record_batches,
    to_record_batch,
)
from models.schemas import AMOUNT, ID, STREAMS, TIME, StreamSchema
from models.times import (
    DAY_MS,
    HOUR_MS,
    from_ms,
    normalise_time_ms,
    now_ms,
    to_ms,
)

__all__ = [
    "AMOUNT",
    "DAY_MS",
    "HOUR_MS",
    "ID",
    "STREAMS",
    "TIME",
    "RowContext",
    "RowError",
    "StreamSchema",
    "daily_snapshot_rows",
    "from_ms",
    "live_snapshot_rows",
    "named_assets",
    "normalise_time_ms",
    "now_ms",
    "record_batches",
    "to_ms",
    "to_record_batch",
]
