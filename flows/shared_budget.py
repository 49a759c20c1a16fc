"""Binance's weight budget shared by workers on many machines, through a Prefect global limit.

Binance counts weight per IP (or account) and per endpoint bucket in fixed windows. Inside one
process the connector's `WeightBudget` paces requests. Across processes one Prefect global
concurrency limit (GCL) per budget pool (one IP, or one key) splits the budget into slots: a
slot is 1/N of every bucket's per-window budget (`share` x its limit). A worker leases a block
of slots in one Prefect call, spends on it as many requests as the block's share of each bucket
allows, and releases it one window after the block's last request was answered: the rule the
local bucket follows, lifted across processes. Every block that carried weight into a window is
still held at that window's end, so the blocks of all workers never carry more than the budget
into any window. Prefect is called once per block and once per release, never per request.

Why held blocks and not `rate_limit()` with slot decay: a decaying limit is a leaky bucket,
which lets twice its size through a fixed window unless its rate is cut well below the budget,
and in Prefect 3.9 every refused acquisition resets the decay clock, so waiting workers starve
each other (prefect-facts §4.2 measured 47 s for 30 calls). Leased blocks also come back by
themselves when a worker dies: the server expires the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from connectors import BudgetSettings, EndpointSpec
from storage import UserError

__all__ = ["POOL_ENV", "LeaseStats", "SharedWeightBudget", "resolve_pool"]

POOL_ENV = "MARGIN_ETL_WEIGHT_POOL"
SLOTS = 16  # a new GCL's size: each slot is 1/16 of every bucket's budget per window
BLOCK_SLOTS = 2  # slots per lease, unless one request needs more
MIN_LEASE_S = 60.0  # the shortest lease Prefect grants
CLOSE_WAIT_MAX_S = 10.0  # at the end, wait this long for blocks to fall due; else let them expire
LOCKED = 423

log = logging.getLogger(__name__)


def resolve_pool(name: str | None) -> str | None:
    """The GCL to share weight through: the argument, else $MARGIN_ETL_WEIGHT_POOL, else none."""
    chosen = name if name is not None else os.environ.get(POOL_ENV, "")
    return chosen.strip() or None


@dataclass(frozen=True)
class _Claim:
    """What one request takes from one bucket: `amount` of `budget` per window."""

    bucket: str
    budget: int
    amount: int


@dataclass
class LeaseStats:
    """What the shared budget gave this process: a row of the run's budget artifact."""

    gcl: str
    slots: int  # the GCL's size
    blocks: int = 0
    slots_leased: int = 0
    waits: int = 0  # leases refused because other workers held the slots
    wait_s: float = 0.0
    weight: Counter[str] = field(default_factory=Counter)  # per bucket

    def row(self) -> dict[str, Any]:
        return {
            "gcl": self.gcl,
            "slots": self.slots,
            "blocks": self.blocks,
            "slots_leased": self.slots_leased,
            "waits": self.waits,
            "wait_s": round(self.wait_s, 2),
            "weight": sum(v for k, v in self.weight.items() if not k.endswith("#requests")),
            "buckets": ", ".join(f"{k}={v}" for k, v in sorted(self.weight.items())),
        }


@dataclass
class _Block:
    lease_id: UUID
    slots: int
    expires: float  # local monotonic estimate, never later than the server's
    last_used: float
    used: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0

    def room(self, claim: _Claim, total_slots: int) -> int:
        """What is left of this block's slots/total share of the claim's bucket budget."""
        return self.slots * claim.budget // total_slots - self.used[claim.bucket]


# (block, bucket, amount): the part of one request's claim a block carries
Allocation = list[tuple[_Block, str, int]]


class SharedWeightBudget:
    """A `connectors.budget.WeightLease`: weight leased in blocks of a Prefect GCL's slots.

    Use as `async with SharedWeightBudget(pool, settings) as lease:` in the event loop the
    client runs in, and give it to the client as `BudgetSettings(lease=lease)`. Every worker of
    a pool must use the same budget settings. A missing GCL is created with `slots` slots; an
    existing one is used as it is (an operator may resize it: `prefect gcl update`).
    """

    def __init__(
        self,
        pool: str,
        settings: BudgetSettings,
        *,
        slots: int = SLOTS,
        block_slots: int = BLOCK_SLOTS,
        holder: UUID | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.window_s = settings.window_s
        self.block_slots = block_slots
        self.lease_s = max(MIN_LEASE_S, 4 * self.window_s)
        self._stats = LeaseStats(pool, slots)
        self._holder = ConcurrencyLeaseHolder(type="flow_run", id=holder) if holder else None
        self._clock = clock
        self._blocks: list[_Block] = []
        self._ready = False
        self._client: PrefectClient | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._releaser: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> SharedWeightBudget:
        self._client = get_client()
        await self._client.__aenter__()
        self._releaser = asyncio.create_task(self._release_loop())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._releaser is not None:
                # a flag, not cancel(): wait_for can swallow a cancellation that races its wakeup
                self._closing = True
                self._changed.set()
                await self._releaser
            await self._give_back()
        finally:
            if self._client is not None:
                await self._client.__aexit__(exc_type, exc, tb)
                self._client = None

    @property
    def stats(self) -> LeaseStats:
        return self._stats

    @property
    def held_slots(self) -> int:
        return sum(b.slots for b in self._blocks)

    # -- the WeightLease hook ------------------------------------------------------------------
    @asynccontextmanager
    async def hold(self, spec: EndpointSpec) -> AsyncIterator[None]:
        """Cover one request with leased weight (and a request slot where counts are capped)."""
        blocks = await self._take(self._claims(spec))
        try:
            yield
        finally:
            now = self._clock()
            for block in blocks:
                block.in_flight -= 1
                block.last_used = now
            self._changed.set()

    def _claims(self, spec: EndpointSpec) -> list[_Claim]:
        share = self.settings.share
        claims = [_claim(spec.bucket, self.settings.limit(spec.weight_kind), share, spec.weight)]
        requests_cap = self.settings.request_limits.get(spec.path, spec.request_limit)
        if requests_cap is not None:
            claims.append(_claim(f"{spec.bucket}#requests", requests_cap, share, 1))
        return claims

    async def _take(self, claims: Sequence[_Claim]) -> list[_Block]:
        """Carry the claims on held blocks, leasing more slots for what they cannot carry."""
        # FIFO: a request waiting for a lease holds up those behind it, so the process's idle
        # blocks fall due and make room for it instead of being kept alive by smaller requests
        async with self._lock:
            if not self._ready:
                await self._ensure()
            while True:
                allocation, missing = self._allocate(claims)
                if missing == 0:
                    break
                # the releaser may retire idle blocks while we wait: allocate afresh after
                await self._lease(min(max(missing, self.block_slots), self._stats.slots))
            # no await from the allocation to here: the releaser cannot take these blocks
            touched: list[_Block] = []
            for block, bucket, amount in allocation:
                block.used[bucket] += amount
                self._stats.weight[bucket] += amount
                if block not in touched:
                    block.in_flight += 1
                    touched.append(block)
            return touched

    def _allocate(self, claims: Sequence[_Claim]) -> tuple[Allocation, int]:
        """Each claim spread over held blocks (newest first); the slots still missing, if any."""
        total = self._stats.slots
        allocation: Allocation = []
        missing = 0
        for claim in claims:
            need = claim.amount
            for block in reversed(self._blocks):
                part = min(block.room(claim, total), need)
                if part > 0:
                    allocation.append((block, claim.bucket, part))
                    need -= part
            if need:
                missing = max(missing, -(-need * total // claim.budget))  # exact ceiling
        return allocation, missing

    # -- Prefect calls -------------------------------------------------------------------------
    @property
    def client(self) -> PrefectClient:
        if self._client is None:
            raise RuntimeError("use SharedWeightBudget as `async with`")
        return self._client

    async def _ensure(self) -> None:
        """Create the pool's GCL if missing; adopt the size of an existing one."""
        name = self._stats.gcl
        try:
            found = await self.client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # another worker was first
                await self.client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=self._stats.slots)
                )
            found = await self.client.read_global_concurrency_limit_by_name(name)
        if found.limit < 1:
            raise UserError(f"global concurrency limit {name} has no slots: raise its limit")
        self._stats.slots = found.limit
        self._ready = True

    async def _lease(self, slots: int) -> None:
        """A new block of `slots`, waiting while other workers (or our idle blocks) hold them."""
        started = self._clock()
        while True:
            sent = self._clock()
            try:
                response = await self.client.increment_concurrency_slots_with_lease(
                    names=[self._stats.gcl],
                    slots=slots,
                    mode="concurrency",
                    lease_duration=self.lease_s,
                    holder=self._holder,
                )
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                if status == httpx.codes.UNPROCESSABLE_ENTITY:  # resized below our request
                    await self._ensure()
                    slots = min(slots, self._stats.slots)
                    continue
                if status != LOCKED:
                    raise
                self._stats.waits += 1
                await asyncio.sleep(self._retry_after(exc.response))
                continue
            body = response.json()
            lease_id = UUID(body["lease_id"])
            if not body.get("limits"):  # deleted since we looked: this lease holds nothing
                await self._release_lease(lease_id)
                await self._ensure()
                continue
            break
        self._stats.wait_s += self._clock() - started
        self._stats.blocks += 1
        self._stats.slots_leased += slots
        self._blocks.append(_Block(lease_id, slots, sent + self.lease_s, self._clock()))
        self._changed.set()

    def _retry_after(self, response: httpx.Response) -> float:
        """The server's hint, but never longer than a quarter window: blocks free up by then."""
        try:
            hint_ms = int(Decimal(response.headers.get("Retry-After", "")) * 1000)
        except (InvalidOperation, ValueError, OverflowError):
            hint_ms = int(self.window_s * 250)
        return min(max(hint_ms / 1000, 0.05), self.window_s / 4)

    async def _release_lease(self, lease_id: UUID) -> None:
        try:
            await self.client.release_concurrency_slots_with_lease(lease_id)
        except (httpx.HTTPError, OSError) as exc:  # the lease expires by itself
            log.warning("could not release weight lease %s: %s", lease_id, exc)

    async def _renew(self, block: _Block, seconds: float) -> None:
        sent = self._clock()
        try:
            await self.client.renew_concurrency_lease(block.lease_id, seconds)
            block.expires = sent + seconds
        except (httpx.HTTPError, OSError) as exc:
            log.warning("could not renew weight lease %s: %s", block.lease_id, exc)

    # -- giving blocks back --------------------------------------------------------------------
    def _due(self, block: _Block) -> float:
        return block.last_used + self.window_s

    def _detach_due(self, now: float) -> list[_Block]:
        """Blocks idle for a full window, removed from use (synchronously, so no race)."""
        due = [b for b in self._blocks if b.in_flight == 0 and self._due(b) <= now]
        self._blocks = [b for b in self._blocks if b not in due]
        return due

    async def _settle(self) -> float | None:
        """Release what is due, renew leases near expiry; seconds until the next such event."""
        for block in self._detach_due(self._clock()):
            await self._release_lease(block.lease_id)
        events: list[float] = []
        for block in list(self._blocks):
            if block.expires - self.lease_s / 2 <= self._clock():
                await self._renew(block, self.lease_s)
            events.append(block.expires - self.lease_s / 2)
            if block.in_flight == 0:
                events.append(self._due(block))
        return max(min(events) - self._clock(), 0.01) if events else None

    async def _release_loop(self) -> None:
        while not self._closing:
            self._changed.clear()  # before settling: a change during it wakes us at once
            wait = await self._settle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait)

    async def _give_back(self) -> None:
        """At the end: release once the last window has closed, or leave it to lease expiry."""
        if not self._blocks:
            return
        wait = max(self._due(b) for b in self._blocks) - self._clock()
        if wait <= CLOSE_WAIT_MAX_S:
            await asyncio.sleep(max(wait, 0.0))
            for block in self._detach_due(math.inf):
                await self._release_lease(block.lease_id)
            return
        for block in self._detach_due(self._clock()):
            await self._release_lease(block.lease_id)
        for block in self._blocks:  # held past our exit, until its window has closed
            await self._renew(block, max(MIN_LEASE_S, self._due(block) - self._clock() + 1))


def _claim(bucket: str, limit: int, share: float, amount: int) -> _Claim:
    """A bucket's budget per window (rounded as the local `WeightBudget` does) and the amount;
    a request heavier than the whole budget takes all of it, so it goes alone."""
    budget = max(int(limit * share), 1)
    return _Claim(bucket, budget, min(amount, budget))
