"""The weight budget never lets a window hold more than its share, yet lets work through."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from connectors.budget import BudgetSettings, WeightBudget
from connectors.specs import SPECS

WINDOW_S = 0.2
SETTINGS = BudgetSettings(share=0.8, window_s=WINDOW_S, ip_limit=100, api_limit=50)
TRADES = SPECS["trades"]  # weight 10, IP
ORDERS = SPECS["orders"]  # weight 200, 60 requests a window


def max_in_any_window(events: list[tuple[float, int]], window: float) -> int:
    """The most weight whose send times fit in one sliding window."""
    events.sort()
    best = 0
    for i, (start, _) in enumerate(events):
        best = max(best, sum(w for t, w in events[i:] if t < start + window))
    return best


async def spend_many(
    budget: WeightBudget, spec: object, count: int, hold_s: float
) -> list[tuple[float, int]]:
    sent: list[tuple[float, int]] = []

    async def one() -> None:
        async with budget.spend(spec) as reservation:  # type: ignore[arg-type]
            sent.append((time.monotonic(), reservation.spec.weight))
            await asyncio.sleep(hold_s)

    await asyncio.gather(*(one() for _ in range(count)))
    return sent


def test_concurrent_requests_never_exceed_the_share_of_a_window() -> None:
    budget = WeightBudget(SETTINGS)
    started = time.monotonic()
    sent = asyncio.run(spend_many(budget, TRADES, 40, hold_s=0.005))
    elapsed = time.monotonic() - started
    assert max_in_any_window(sent, WINDOW_S) <= 80
    # 400 weight at 80 per window: at least 4 windows of waiting; the first 8 went at once
    assert elapsed >= 4 * WINDOW_S
    assert budget.waits == 40 - 8


def test_each_endpoint_has_its_own_bucket() -> None:
    budget = WeightBudget(SETTINGS)

    async def both() -> None:
        interest = replace(SPECS["interest"], weight=10)
        await asyncio.gather(
            spend_many(budget, TRADES, 8, 0.0), spend_many(budget, interest, 8, 0.0)
        )

    asyncio.run(both())
    assert budget.waits == 0  # 80 + 80 fit at once: separate buckets
    assert budget.used(TRADES.bucket) == 80


def test_a_request_cap_paces_all_orders() -> None:
    budget = WeightBudget(replace(SETTINGS, ip_limit=100_000, request_limits={ORDERS.path: 5}))
    sent = asyncio.run(spend_many(budget, ORDERS, 12, 0.0))
    starts = sorted(t for t, _ in sent)
    # 4 requests per window (80 % of 5): the 12th waits two full windows
    assert starts[-1] - starts[0] >= 2 * WINDOW_S * 0.95
    assert max_in_any_window([(t, 1) for t, _ in sent], WINDOW_S) <= 4


def test_the_used_weight_header_counts_what_others_spent() -> None:
    budget = WeightBudget(SETTINGS)

    async def scenario() -> float:
        async with budget.spend(TRADES) as reservation:
            reservation.observe({"x-sapi-used-ip-weight-1m": "75"})  # someone else spent 65
        assert budget.used(TRADES.bucket) == 75
        started = time.monotonic()
        await spend_many(budget, TRADES, 1, 0.0)
        return time.monotonic() - started

    assert asyncio.run(scenario()) >= WINDOW_S * 0.9


def test_an_oversized_request_goes_alone_instead_of_waiting_forever() -> None:
    budget = WeightBudget(SETTINGS)
    huge = replace(TRADES, weight=500)
    sent = asyncio.run(spend_many(budget, huge, 2, 0.0))
    assert len(sent) == 2
    assert sent[1][0] - sent[0][0] >= WINDOW_S * 0.9


def test_block_holds_a_bucket_after_a_429() -> None:
    budget = WeightBudget(SETTINGS)

    async def scenario() -> float:
        await spend_many(budget, TRADES, 1, 0.0)
        budget.block(TRADES, 0.1)
        started = time.monotonic()
        await spend_many(budget, TRADES, 1, 0.0)
        return time.monotonic() - started

    assert asyncio.run(scenario()) >= 0.09


def test_a_request_that_waits_a_window_says_so() -> None:
    told: list[tuple[str, float]] = []
    budget = WeightBudget(
        replace(SETTINGS, window_s=1.2), on_wait=lambda reason, s: told.append((reason, s))
    )
    asyncio.run(spend_many(budget, TRADES, 9, 0.0))  # 90 weight, 80 a window: the 9th waits
    assert [reason for reason, _ in told] == ["the weight budget's window"]
    assert 1.0 <= told[0][1] <= 1.2
