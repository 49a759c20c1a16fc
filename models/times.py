"""Time as the project keeps it: UTC epoch milliseconds, in integers, converted exactly.

The API speaks milliseconds (some rows and doc examples speak seconds: ``normalise_time_ms``);
the lake stores UTC millisecond timestamps; durations are multiples of the units below.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

SECOND_MS = 1_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# Row times below this are in seconds (10^11 ms is 1973; 10^11 s is year 5138).
SECONDS_THRESHOLD = 100_000_000_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    """This machine's clock in UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


def to_ms(instant: datetime) -> int:
    """Exact UTC epoch milliseconds (integer arithmetic, no float timestamps)."""
    return (instant - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """The UTC instant of epoch milliseconds ``ms``."""
    return _EPOCH + timedelta(milliseconds=ms)


def normalise_time_ms(value: int | str) -> int:
    """A row time in UTC milliseconds: values below 10^11 were sent in seconds."""
    number = int(value)
    return number * SECOND_MS if 0 <= number < SECONDS_THRESHOLD else number
