"""The weight budget: spend Binance's per-endpoint rate limits fully but never exceed them.

Every /sapi endpoint has its own bucket (12 000 weight a minute for IP-weighted ones, 180 000
for UID-weighted ones; /api endpoints share one 6 000 pool), and allOrders also caps requests.
A request reserves its weight BEFORE it is sent and waits while the bucket is full; the weight
then stays counted for one window after the answer arrived, later than the server counts it,
so the local view never undercounts. The used-weight headers correct the view upward when
someone else spends the same budget. All concurrent requests of a client share one budget.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Protocol

from connectors.specs import EndpointSpec, WeightKind

USED_WEIGHT_HEADERS: Mapping[WeightKind, str] = {
    "ip": "x-sapi-used-ip-weight-1m",
    "uid": "x-sapi-used-uid-weight-1m",
    "api": "x-mbx-used-weight-1m",
}


# A person is told about waits longer than this (shorter ones are part of a request's time).
WAIT_WORTH_TELLING_S = 1.0
# what a wait is for, and for how many seconds
WaitObserver = Callable[[str, float], None]


class WeightLease(Protocol):
    """Weight granted from outside this process: a budget several workers share."""

    def hold(self, spec: EndpointSpec) -> AbstractAsyncContextManager[None]:
        """Entered once the local bucket admitted a request; left when its answer arrived."""
        ...


@dataclass(frozen=True)
class BudgetSettings:
    """Limits per window, and the share of them this client allows itself."""

    share: float = 0.8
    window_s: float = 60.0
    ip_limit: int = 12_000
    uid_limit: int = 180_000
    api_limit: int = 6_000
    # path -> requests per window, overriding the spec's own request_limit (allOrders: 60)
    request_limits: Mapping[str, int] = field(default_factory=dict)
    # shared with other processes (flows.shared_budget): each request is also covered by it
    lease: WeightLease | None = field(default=None, compare=False, repr=False)

    def limit(self, kind: WeightKind) -> int:
        return {"ip": self.ip_limit, "uid": self.uid_limit, "api": self.api_limit}[kind]


@dataclass
class _Bucket:
    capacity: int
    # (stamp, weight) of answered requests, oldest first; they leave after one window
    spent: deque[tuple[float, int]] = field(default_factory=deque)
    in_flight: int = 0
    blocked_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def used(self) -> int:
        return self.in_flight + sum(w for _, w in self.spent)

    def prune(self, horizon: float) -> None:
        while self.spent and self.spent[0][0] <= horizon:
            self.spent.popleft()

    def seconds_until_room(self, weight: int, now: float, window_s: float) -> float | None:
        """0 if `weight` fits now; the wait until it fits; None if only in-flight weight blocks."""
        # a single request heavier than the bucket may go alone, once the bucket is empty
        allowed = max(self.capacity - weight, 0)
        over = self.used() - allowed
        if over <= 0:
            return 0.0
        for stamp, spent in self.spent:
            over -= spent
            if over <= 0:
                return max(stamp + window_s - now, 0.0)
        return None


class WeightBudget:
    """Shared, asyncio-safe weight accounting for every bucket a client touches."""

    def __init__(
        self,
        settings: BudgetSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_wait: WaitObserver | None = None,
    ) -> None:
        self.settings = settings or BudgetSettings()
        self._clock = clock
        self.on_wait = on_wait  # told what a request waits for, and for how long
        self._buckets: dict[str, _Bucket] = {}
        self._blocked_all_until = 0.0  # an IP ban (418) stops buckets not yet created too
        self.waits = 0  # requests that had to wait for room (a window, a block)

    @asynccontextmanager
    async def spend(self, spec: EndpointSpec) -> AsyncIterator[Reservation]:
        """Reserve `spec`'s weight (and a request slot if capped) for one request."""
        reservation = Reservation(spec)
        async with AsyncExitStack() as stack:
            requests_cap = self.settings.request_limits.get(spec.path, spec.request_limit)
            if requests_cap is not None:
                key = f"{spec.bucket}#requests"
                await stack.enter_async_context(self._hold(key, requests_cap, 1))
            await stack.enter_async_context(
                self._hold(spec.bucket, self.settings.limit(spec.weight_kind), spec.weight)
            )
            if self.settings.lease is not None:
                await stack.enter_async_context(self.settings.lease.hold(spec))
            yield reservation
        if reservation.used_header is not None:
            self._correct(spec.bucket, reservation.used_header)

    def block(self, spec: EndpointSpec | None, seconds: float) -> None:
        """Send nothing on `spec`'s bucket (every bucket if None) for `seconds` (after 429/418)."""
        until = self._clock() + seconds
        if spec is None:
            self._blocked_all_until = max(self._blocked_all_until, until)
        for key, bucket in self._buckets.items():
            if spec is None or key.split("#")[0] == spec.bucket:
                bucket.blocked_until = max(bucket.blocked_until, until)

    def used(self, bucket: str) -> int:
        """Weight counted in `bucket` over the current window (in flight included)."""
        state = self._buckets.get(bucket)
        if state is None:
            return 0
        state.prune(self._clock() - self.settings.window_s)
        return state.used()

    def _bucket(self, key: str, limit: int) -> _Bucket:
        if key not in self._buckets:
            capacity = max(int(limit * self.settings.share), 1)
            self._buckets[key] = _Bucket(capacity, blocked_until=self._blocked_all_until)
        return self._buckets[key]

    @asynccontextmanager
    async def _hold(self, key: str, limit: int, weight: int) -> AsyncIterator[None]:
        bucket = self._bucket(key, limit)
        await self._acquire(bucket, weight)
        try:
            yield
        finally:
            bucket.in_flight -= weight
            bucket.spent.append((self._clock(), weight))
            bucket.settled.set()

    async def _acquire(self, bucket: _Bucket, weight: int) -> None:
        window = self.settings.window_s
        waited = self._count_wait(False) if bucket.lock.locked() else False  # queued behind one
        async with bucket.lock:  # FIFO: waiters on one bucket are served in order
            while True:
                now = self._clock()
                bucket.prune(now - window)
                if bucket.blocked_until > now:
                    waited = self._count_wait(waited)
                    self._tell("the server asked to slow down", bucket.blocked_until - now)
                    await asyncio.sleep(bucket.blocked_until - now)
                    continue
                delay = bucket.seconds_until_room(weight, now, window)
                if delay == 0.0:
                    bucket.in_flight += weight
                    return
                waited = self._count_wait(waited)
                if delay is not None:
                    self._tell("the weight budget's window", delay)
                bucket.settled.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(bucket.settled.wait(), timeout=delay)

    def _tell(self, reason: str, seconds: float) -> None:
        if self.on_wait is not None and seconds >= WAIT_WORTH_TELLING_S:
            self.on_wait(reason, seconds)

    def _count_wait(self, already: bool) -> bool:
        if not already:
            self.waits += 1
        return True

    def _correct(self, key: str, server_used: int) -> None:
        """Count weight the server saw but we did not send (another process, other weights)."""
        bucket = self._buckets[key]
        bucket.prune(self._clock() - self.settings.window_s)
        missing = server_used - bucket.used()
        if missing > 0:
            bucket.spent.append((self._clock(), missing))


class Reservation:
    """One request's claim on the budget; record the server's used-weight header on it."""

    def __init__(self, spec: EndpointSpec) -> None:
        self.spec = spec
        self.used_header: int | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        raw = headers.get(USED_WEIGHT_HEADERS[self.spec.weight_kind], "")
        if raw.strip().isdigit():
            self.used_header = int(raw)
