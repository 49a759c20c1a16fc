"""Request parameters as the real API reads them: typed getters that fail with Binance codes,
and the time-window rules (defaults, silent clamps, maximum spans) of the history endpoints."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl

from simulator.errors import MESSAGES, ApiError

INTEGER = re.compile(r"^[0-9]{1,20}$")
INTEGER_LEGAL = "^[0-9]{1,20}$"
DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
DECIMAL_LEGAL = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def parse_pairs(raw: bytes) -> list[tuple[str, str]]:
    """`k=v&k2=v2` → pairs, percent-decoded as UTF-8, blanks kept, order kept."""
    if not raw:
        return []
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8")


class Params:
    """The request's parameters: the query string wins over a form body (facts §1)."""

    def __init__(self, query: list[tuple[str, str]], body: list[tuple[str, str]]) -> None:
        self.values: dict[str, str] = {}
        self.duplicated: str | None = None
        for source in (query, body):
            seen: set[str] = set()
            for name, value in source:
                if name in seen:
                    self.duplicated = name
                seen.add(name)
                self.values.setdefault(name, value)

    @classmethod
    def of(cls, **values: str) -> Params:
        return cls(list(values.items()), [])

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def names(self) -> Iterable[str]:
        return self.values.keys()

    def raw(self, name: str) -> str | None:
        return self.values.get(name)

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise ApiError.param(-1102, name=name)
            return None
        if value == "":
            raise ApiError.param(-1102 if required else -1105, name=name)
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not INTEGER.match(value):
            raise ApiError.param(-1100, name=name, legal=INTEGER_LEGAL)
        return int(value)

    def bounded(self, name: str, default: int, low: int, high: int) -> int:
        """An integer with a documented range; out of range → -1130 (facts §10 q8: reject)."""
        value = self.integer(name)
        if value is None:
            return default
        if not low <= value <= high:
            raise ApiError.param(-1130, name=name)
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not DECIMAL.match(value):
            raise ApiError.param(-1100, name=name, legal=DECIMAL_LEGAL)
        return Decimal(value)

    def required_decimal(self, name: str) -> Decimal:
        value = self.decimal(name, required=True)
        assert value is not None
        return value

    def choice(self, name: str, allowed: Iterable[str], *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        if value is not None and value not in allowed:
            raise ApiError.param(-1102, name=name)
        return value

    def flag(self, name: str) -> bool:
        """`isIsolated`-style string booleans, default FALSE."""
        value = self.choice(name, ("TRUE", "FALSE", "true", "false"))
        return value is not None and value.upper() == "TRUE"


@dataclass(frozen=True, slots=True)
class Window:
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class WindowRule:
    """How an endpoint turns startTime/endTime into the range it serves.

    neither sent → [now - default, now]; endTime only → [end - default, end];
    startTime only → [max(start, now - max_span), now] (or [start, start + max_span] when
    `forward_from_start`); both → rejected with `error` if wider than `max_span`.
    `retention` silently hides anything older than now - retention.
    """

    default_span: int
    max_span: int
    error_code: int
    error_msg: str
    retention: int | None = None
    forward_from_start: bool = False

    def resolve(self, params: Params, now_ms: int) -> Window:
        start = params.integer("startTime")
        end = params.integer("endTime")
        if start is not None and end is not None:
            if start > end or end - start > self.max_span:
                raise ApiError(self.error_code, self.error_msg)
        elif start is not None:
            if self.forward_from_start:
                end = start + self.max_span
            else:
                start, end = max(start, now_ms - self.max_span), now_ms
        else:
            end = now_ms if end is None else end
            start = end - self.default_span
        if self.retention is not None:
            start = max(start, now_ms - self.retention)
        return Window(start, min(end, now_ms))


# Open question §10.2 (30-day endpoints): the margin service has -3011 BAD_DATE_RANGE for
# exactly this; the 24-hour endpoints answer -1127 as observed on the spot engine.
BAD_DATE = (-3011, MESSAGES[-3011])
OVER_24_HOURS = (-1127, MESSAGES[-1127].format(hours="24"))

THIRTY_DAYS = WindowRule(7 * DAY_MS, 30 * DAY_MS, *BAD_DATE)
INTEREST_WINDOW = WindowRule(7 * DAY_MS, 30 * DAY_MS, *BAD_DATE, retention=90 * DAY_MS)
UNIVERSAL_TRANSFER_WINDOW = WindowRule(7 * DAY_MS, 30 * DAY_MS, *BAD_DATE, retention=183 * DAY_MS)
SNAPSHOT_WINDOW = WindowRule(7 * DAY_MS, 30 * DAY_MS, *BAD_DATE, retention=30 * DAY_MS)
CAPITAL_FLOW_WINDOW = WindowRule(
    7 * DAY_MS, 7 * DAY_MS, -4047, MESSAGES[-4047], retention=90 * DAY_MS
)
ONE_DAY = WindowRule(DAY_MS, DAY_MS, *OVER_24_HOURS, forward_from_start=True)
