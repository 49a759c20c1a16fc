"""Request weight: independent per-endpoint budgets over fixed windows (facts §4), the shared
/api, /fapi and /dapi pools, the allOrders request cap, the optional 418 ban, and the counters
behind /_sim/stats."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

WeightKind = Literal["IP", "UID", "API", "FAPI", "DAPI"]

IP_LIMIT = 12_000
UID_LIMIT = 180_000
API_LIMIT = 6_000  # /api/* endpoints share one pool per IP (spot rules)
FUTURES_LIMIT = 2_400  # /fapi/* and /dapi/* each share one pool per IP (futures rules)
WINDOW_MS = 60_000
BAN_MS = 120_000  # the first step of the 418 ladder: 2 minutes

WEIGHT_HEADERS: dict[WeightKind, str] = {
    "IP": "X-SAPI-USED-IP-WEIGHT-1M",
    "UID": "X-SAPI-USED-UID-WEIGHT-1M",
    "API": "X-MBX-USED-WEIGHT-1M",
    "FAPI": "X-MBX-USED-WEIGHT-1M",
    "DAPI": "X-MBX-USED-WEIGHT-1M",
}
# Kinds whose endpoints share one bucket; every other endpoint has a bucket of its own.
SHARED_POOLS: dict[WeightKind, str] = {"API": "/api", "FAPI": "/fapi", "DAPI": "/dapi"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the limiter decided for one request."""

    allowed: bool
    used: int  # weight in the bucket after this request (what the header reports)
    retry_after_s: int  # seconds to the window's end (0 when allowed)
    banned: bool = False  # 418 rather than 429
    limit: int = 0
    capped: bool = False  # refused by the requests cap, not by weight


@dataclass(slots=True)
class _Bucket:
    window: int = -1
    used: int = 0
    requests: int = 0
    rejected: int = 0


@dataclass(slots=True)
class EndpointStats:
    requests: int = 0
    weight: int = 0
    throttled: int = 0  # 429
    banned: int = 0  # 418
    faults: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "weight": self.weight,
            "throttled": self.throttled,
            "banned": self.banned,
            "faults": self.faults,
        }


class WeightLimiter:
    """Fixed windows aligned to multiples of `window_ms` on the server clock.

    `weight_limit` is the IP budget of each endpoint; UID budgets keep Binance's 15x ratio, the
    shared /api pool half of it and the futures pools a fifth. A request over budget is refused
    and adds nothing.
    """

    def __init__(
        self,
        weight_limit: int = IP_LIMIT,
        window_ms: int = WINDOW_MS,
        *,
        ban_after_429s: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._banned_until = 0
        self.ban_after_429s = ban_after_429s
        self.configure(weight_limit, window_ms)

    def configure(self, weight_limit: int, window_ms: int) -> None:
        """Set the IP budget and the window length; every bucket starts empty."""
        with self._lock:
            self.weight_limit = weight_limit
            self.window_ms = window_ms
            self._limits: dict[WeightKind, int] = {
                "IP": weight_limit,
                "UID": weight_limit * UID_LIMIT // IP_LIMIT,
                "API": max(1, weight_limit * API_LIMIT // IP_LIMIT),
                "FAPI": max(1, weight_limit * FUTURES_LIMIT // IP_LIMIT),
                "DAPI": max(1, weight_limit * FUTURES_LIMIT // IP_LIMIT),
            }
            self._buckets = {}
            self._banned_until = 0

    def window_label(self) -> str:
        """The window as -1003 messages name it: `1 MINUTE`, `5 SECOND`."""
        if self.window_ms % WINDOW_MS == 0:
            return f"{self.window_ms // WINDOW_MS} MINUTE"
        return f"{max(1, self.window_ms // 1000)} SECOND"

    def limit_of(self, kind: WeightKind) -> int:
        return self._limits[kind]

    @staticmethod
    def bucket_of(kind: WeightKind, endpoint: str) -> str:
        """The bucket a request is charged to: its pool's, or the endpoint's own."""
        return SHARED_POOLS.get(kind, endpoint)

    def charge(
        self,
        bucket: str,
        kind: WeightKind,
        weight: int,
        now_ms: int,
        *,
        requests_cap: int | None = None,
    ) -> Verdict:
        with self._lock:
            window = now_ms // self.window_ms
            retry_after = -(-((window + 1) * self.window_ms - now_ms) // 1000)
            limit = self._limits[kind]
            if now_ms < self._banned_until:
                return Verdict(False, 0, -(-(self._banned_until - now_ms) // 1000), True, limit)
            state = self._current(bucket, window)
            over_cap = requests_cap is not None and state.requests >= requests_cap
            if over_cap or state.used + weight > limit:
                state.rejected += 1
                if self.ban_after_429s is not None and state.rejected > self.ban_after_429s:
                    self._banned_until = now_ms + BAN_MS
                    return Verdict(False, state.used, BAN_MS // 1000, True, limit)
                return Verdict(False, state.used, retry_after, False, limit, over_cap)
            state.used += weight
            state.requests += 1
            return Verdict(True, state.used, 0, False, limit)

    def _current(self, bucket: str, window: int) -> _Bucket:
        state = self._buckets.get(bucket)
        if state is None or state.window != window:
            state = _Bucket(window=window)
            self._buckets[bucket] = state
        return state


@dataclass(slots=True)
class RequestStats:
    """Per-endpoint counters (requests, weight, 429s, 418s, faults) and their totals."""

    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    unknown_paths: int = 0
    # injected faults by kind, and rows that arrived while a client paged ("rows_arrived")
    fault_kinds: Counter[str] = field(default_factory=Counter)

    def of(self, endpoint: str) -> EndpointStats:
        stats = self.endpoints.get(endpoint)
        if stats is None:
            stats = self.endpoints[endpoint] = EndpointStats()
        return stats

    def reset(self) -> None:
        self.endpoints.clear()
        self.unknown_paths = 0
        self.fault_kinds.clear()

    def as_json(self) -> dict[str, object]:
        totals = EndpointStats()
        for s in self.endpoints.values():
            totals.requests += s.requests
            totals.weight += s.weight
            totals.throttled += s.throttled
            totals.banned += s.banned
            totals.faults += s.faults
        return {
            "endpoints": {name: s.as_json() for name, s in sorted(self.endpoints.items())},
            "totals": totals.as_json(),
            "unknown_paths": self.unknown_paths,
            "fault_kinds": dict(sorted(self.fault_kinds.items())),
        }
