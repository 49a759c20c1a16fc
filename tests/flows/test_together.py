"""The first failure of reads run together stops the others before it is raised, as itself."""

from __future__ import annotations

import asyncio

import pytest

from flows.together import all_or_stop
from storage import UserError


def test_results_come_in_the_order_asked() -> None:
    async def value(n: int) -> int:
        await asyncio.sleep(0)
        return n

    assert asyncio.run(all_or_stop(value(n) for n in (3, 1, 2))) == [3, 1, 2]


def test_a_failure_stops_the_others_first_and_is_raised_as_itself() -> None:
    stopped: list[str] = []

    async def reads_on() -> None:
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            stopped.append("sibling")

    async def fails() -> None:
        await asyncio.sleep(0)  # the sibling is running by now
        raise UserError("the key was revoked")

    async def inner() -> None:  # a stream's scopes inside the run's streams
        await all_or_stop([reads_on(), fails()])

    async def scenario() -> None:
        try:
            await all_or_stop([inner(), reads_on()])
        finally:
            stopped.append("raised")

    with pytest.raises(UserError, match="the key was revoked"):
        asyncio.run(scenario())
    assert stopped == ["sibling", "sibling", "raised"]
