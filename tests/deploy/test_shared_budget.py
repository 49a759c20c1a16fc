"""The weight budget shared through a Prefect GCL, on a real loopback server: blocks, waiting
for another process's window to close, no slot left behind; and the connector's hook."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from connectors.budget import BudgetSettings, WeightBudget
from connectors.specs import SPECS, EndpointSpec
from flows.shared_budget import SLOTS, SharedWeightBudget, resolve_pool

pytestmark = pytest.mark.prefect

WINDOW_S = 0.5
# 100 weight per window, 80 of it ours to share: a slot of 16 carries 5
SETTINGS = BudgetSettings(window_s=WINDOW_S, ip_limit=100, share=0.8)
HEAVY = replace(SPECS["orders"], weight=60, request_limit=None)
LIGHT = replace(SPECS["interest"], path=SPECS["orders"].path, weight=1)  # the same bucket


def _pool() -> str:
    return f"test-pool-{uuid.uuid4().hex[:8]}"


async def _active_slots(name: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(name)).active_slots


async def _request(budget: SharedWeightBudget, spec: EndpointSpec) -> float:
    """One request's hold on the shared budget; when it was admitted."""
    async with budget.hold(spec):
        return time.monotonic()


def test_a_second_process_waits_for_the_first_ones_window_to_close(prefect_api: str) -> None:
    pool = _pool()

    async def scenario() -> tuple[float, float, SharedWeightBudget, SharedWeightBudget]:
        async with (
            SharedWeightBudget(pool, SETTINGS) as first,
            SharedWeightBudget(pool, SETTINGS) as second,
        ):
            answered = await _request(first, HEAVY)  # 60 of 80: 12 of the 16 slots
            admitted = await _request(second, HEAVY)  # 12 more do not fit until then
        return answered, admitted, first, second

    answered, admitted, first, second = asyncio.run(scenario())
    assert admitted - answered >= WINDOW_S * 0.9  # released one window after its answer
    assert second.stats.waits >= 1 and first.stats.waits == 0
    assert (first.stats.blocks, first.stats.slots_leased) == (1, 12)
    assert first.stats.weight == {HEAVY.bucket: 60}
    assert asyncio.run(_active_slots(pool)) == 0  # both gave everything back


def test_one_process_adds_slots_to_what_it_holds(prefect_api: str) -> None:
    pool = _pool()

    async def scenario() -> SharedWeightBudget:
        async with SharedWeightBudget(pool, SETTINGS) as budget:
            await _request(budget, LIGHT)  # a block of 2 slots: 10 weight, 1 used
            # 79 more: 9 on the held block, 70 on 14 new slots; no wait for its own block
            await _request(budget, replace(HEAVY, weight=79))
            assert budget.held_slots == SLOTS
            return budget

    budget = asyncio.run(scenario())
    assert (budget.stats.blocks, budget.stats.slots_leased, budget.stats.waits) == (2, 16, 0)
    assert budget.stats.weight == {HEAVY.bucket: 80}


def test_a_request_heavier_than_the_budget_takes_every_slot(prefect_api: str) -> None:
    pool = _pool()

    async def scenario() -> SharedWeightBudget:
        async with SharedWeightBudget(pool, SETTINGS) as budget:
            await _request(budget, replace(HEAVY, weight=500))
            return budget

    budget = asyncio.run(scenario())
    assert budget.stats.slots_leased == SLOTS and budget.stats.weight == {HEAVY.bucket: 80}


def test_an_existing_gcl_keeps_the_size_an_operator_gave_it(prefect_api: str) -> None:
    pool = _pool()

    async def scenario() -> SharedWeightBudget:
        async with get_client() as client:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=pool, limit=4)
            )
        async with SharedWeightBudget(pool, SETTINGS) as budget:
            await _request(budget, LIGHT)
            await _request(budget, replace(HEAVY, weight=19))  # 20 = one slot of 4
            return budget

    budget = asyncio.run(scenario())
    assert budget.stats.slots == 4
    assert (budget.stats.blocks, budget.stats.slots_leased) == (1, 2)


def test_the_pool_comes_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARGIN_ETL_WEIGHT_POOL", "binance-ip-1")
    assert resolve_pool(None) == "binance-ip-1"
    assert resolve_pool("other") == "other"
    assert resolve_pool("") is None  # an explicit empty name turns sharing off
    monkeypatch.delenv("MARGIN_ETL_WEIGHT_POOL")
    assert resolve_pool(None) is None


class RecordingLease:
    """A WeightLease that notes what it was asked to cover, and when."""

    def __init__(self, budget: WeightBudget) -> None:
        self.budget = budget
        self.held: list[tuple[str, int]] = []

    @asynccontextmanager
    async def hold(self, spec: EndpointSpec) -> AsyncIterator[None]:
        # entered after the local bucket admitted the request: its weight is in flight there
        self.held.append((spec.bucket, self.budget.used(spec.bucket)))
        yield


def test_the_connector_budget_asks_the_lease_for_every_request() -> None:
    lease = RecordingLease(WeightBudget())
    budget = WeightBudget(replace(BudgetSettings(), lease=lease))
    lease.budget = budget

    async def spend() -> None:
        for spec in (SPECS["orders"], SPECS["account"]):
            async with budget.spend(spec):
                pass

    asyncio.run(spend())
    assert lease.held == [(SPECS["orders"].bucket, 200), (SPECS["account"].bucket, 10)]
    assert BudgetSettings(lease=lease) == BudgetSettings()  # not part of what settings compare
