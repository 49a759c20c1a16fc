"""Awaiting several reads at once, so that the first failure stops the others before it is
raised: a run that fails leaves no sibling read running (and writing, or logging a traceback
at shutdown) after its error, and the error keeps its own type for the caller's handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a group of errors, nested groups included."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def all_or_stop(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Await every one concurrently and return their results in order. When one fails, the
    rest are cancelled and awaited, then its error is raised as itself (not as a group)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(a)) for a in awaitables]
    except BaseExceptionGroup as failed:
        raise _first_cause(failed) from None
    return [task.result() for task in tasks]
