"""One paginator per paging style, under one interface: pages, id cursors, plain time windows.

Page numbers (`current`/`size`, newest first): page 1 tells `total`, the other pages are read
concurrently, and the union is checked: every page must report the same total, the row count
must equal it and no natural key may repeat. Otherwise rows moved under us (a late row shifted
the pages) and the window is read again, a bounded number of times.

Id cursors (`fromId` for trades, `orderId` for orders; ids ascending with time): the cheapest
complete read is a walk from a known id with the largest `limit`, because one call returns up
to 1000 trades / 500 orders whatever their time span, while time windows cost one call per day
even for empty days. Without a known id, a short range (`cursor_probe_max_days`) is probed with
24-hour windows and limit=1 to find its first id; a longer one starts from id 0 and drops the
rows before the range (one pass over the scope's whole history, which a first export reads
anyway). The walk stops at a short page or at the first row past the range, and tells where the
next read resumes: at that first row past the range. Both cursors are ">=" filters
(facts §5.7/5.8), so id 0 selects from the first row, on the real API as on the simulator;
a cursor is never sent together with time bounds (the spot rules refuse fromId + time, -1128).

Plain windows (rates, candles): one call per window, sized so its rows fit one answer; a full
answer halves the window. Windows walked by a cursor (the capital flow): each window from id 0
with `fromId`, until an answer is short.

Every paginator yields `Batch`es covering consecutive time ranges; `PAGINATORS` maps a spec's
paging style to its class, so a reader looks one up and runs one loop (dlt's `PAGINATOR_MAP`).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any, TypeVar

from connectors.client import BinanceClient, ParamValue
from connectors.errors import MalformedResponse, PagingUnstable
from connectors.specs import EndpointSpec, Paging
from connectors.windows import Window, plan_windows
from models import DAY_MS, normalise_time_ms

log = logging.getLogger(__name__)

T = TypeVar("T")
Row = dict[str, Any]
Pairs = Sequence[tuple[str, ParamValue]]


def normalise_row(spec: EndpointSpec, row: Row) -> Row:
    """The row with its time field in milliseconds when the spec says the unit may vary."""
    field = spec.time_field
    if spec.time_unit == "auto" and field is not None and row.get(field) is not None:
        row[field] = normalise_time_ms(row[field])
    return row


def row_time(spec: EndpointSpec, row: Row) -> int:
    assert spec.time_field is not None
    return int(row[spec.time_field])


@dataclass(frozen=True)
class Batch:
    """Rows read, the time range they complete, and where an id cursor resumes."""

    rows: list[Row]
    covered: Window
    next_id: int | None = None


class Paginator(ABC):
    """Reads one scope of a stream over [start_ms, end_ms), as batches of consecutive ranges."""

    def __init__(self, client: BinanceClient, spec: EndpointSpec) -> None:
        self.client = client
        self.spec = spec

    @abstractmethod
    def batches(
        self, scope: str | None, start_ms: int, end_ms: int, from_id: int | None = None
    ) -> AsyncIterator[Batch]:
        """Every row of the range once, oldest batch first; `from_id` resumes an id cursor."""

    def scope_params(self, scope: str | None) -> Pairs:
        """The query parameter naming the scope (asset, symbol, type), if one is read."""
        param = self.spec.scope_param
        return [(param, scope)] if scope and param else []


class WindowedPaginator(Paginator):
    """Reads a range as planned windows, each completely, a few ahead and yielded in order."""

    async def batches(
        self, scope: str | None, start_ms: int, end_ms: int, from_id: int | None = None
    ) -> AsyncIterator[Batch]:
        """One batch per planned window."""
        limit = self.spec.window_limit(scoped=scope is not None)
        assert limit is not None
        params = self.scope_params(scope)
        windows = plan_windows(start_ms, end_ms, limit)
        reads = (partial(self._batch, scope, params, window) for window in windows)
        async for batch in in_order(reads, self.client.settings.window_prefetch):
            yield batch

    @abstractmethod
    async def read_window(self, params: Pairs, window: Window) -> list[Row]:
        """Every row of `window`, oldest first; `params` adds e.g. the scope."""

    async def _batch(self, scope: str | None, params: Pairs, window: Window) -> Batch:
        return Batch(self._with_scope(scope, await self.read_window(params, window)), window)

    def _with_scope(self, scope: str | None, rows: list[Row]) -> list[Row]:
        """Rows that do not name their scope (klines) get it under its parameter's name."""
        param = self.spec.scope_param
        if scope is None or not self.spec.row_fields or param is None:
            return rows
        return [{param: scope, **row} for row in rows]


@dataclass(frozen=True)
class _Page:
    number: int
    total: int
    rows: list[Row]


class PageNumberPaginator(WindowedPaginator):
    """Reads closed windows of a `current`/`size` endpoint completely, each row once."""

    def __init__(self, client: BinanceClient, spec: EndpointSpec) -> None:
        assert spec.paging == "page" and spec.page_size is not None
        super().__init__(client, spec)
        self.size = spec.page_size
        self.rows_key = spec.rows_key or "rows"

    async def read_window(self, params: Pairs, window: Window) -> list[Row]:
        """Every row of `window`, oldest first; `params` adds e.g. the scope."""
        for attempt in range(1, self.client.settings.page_rereads + 1):
            first = await self._page(params, window, 1)
            last_number = max(1, -(-first.total // self.size))
            pages = [first, *await self._pages(params, window, range(2, last_number + 1))]
            if len(pages[-1].rows) == self.size:
                # a full last page: make sure `total` was not capped and nothing follows
                pages += await self._pages(params, window, [last_number + 1])
            rows = [row for page in pages for row in page.rows]
            problem = self._inconsistency(first.total, pages, rows)
            if problem is None:
                return sorted(rows, key=lambda r: row_time(self.spec, r))
            log.info("%s %s: %s; re-reading (%d)", self.spec.name, window, problem, attempt)
        raise PagingUnstable(
            f"rows kept moving in window {window.start_ms}..{window.end_ms}",
            where=f"{self.spec.method} {self.spec.path}",
        )

    async def _pages(self, params: Pairs, window: Window, numbers: Sequence[int]) -> list[_Page]:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._page(params, window, n)) for n in numbers]
        return [task.result() for task in tasks]

    async def _page(self, params: Pairs, window: Window, number: int) -> _Page:
        query = [
            *params,
            *window.params().items(),
            ("current", number),
            ("size", self.size),
        ]
        doc = await self.client.call(self.spec, query)
        listed = doc.get(self.rows_key, []) if isinstance(doc, Mapping) else None
        if not isinstance(listed, list) or "total" not in doc:
            raise MalformedResponse("paged answer without rows and total", where=self.spec.path)
        rows = [normalise_row(self.spec, dict(r)) for r in listed]
        return _Page(number, int(doc["total"]), rows)

    def _inconsistency(self, total: int, pages: list[_Page], rows: list[Row]) -> str | None:
        if any(page.total != total for page in pages):
            return "total changed between pages"
        if len(rows) != total:
            return f"{len(rows)} rows for a total of {total}"
        key = self.spec.natural_key
        if key is not None and len({tuple(r.get(k) for k in key) for r in rows}) != len(rows):
            return "a row appeared on two pages"
        return None


@dataclass(frozen=True)
class CursorPage:
    """Rows of one cursor call inside the range, and where the next call starts."""

    rows: list[Row]
    next_id: int | None  # resume here next time (None: nothing read, keep the old cursor)
    covered_until_ms: int  # every in-range row with a time before this has been returned


class IdCursorPaginator(Paginator):
    """Walks an ascending id cursor (fromId / orderId) over [start_ms, end_ms)."""

    def __init__(self, client: BinanceClient, spec: EndpointSpec) -> None:
        assert spec.paging == "id" and spec.cursor_param and spec.cursor_field
        assert spec.page_size is not None
        super().__init__(client, spec)
        self.limit = spec.page_size
        self.cursor_field = spec.cursor_field

    async def batches(
        self, scope: str | None, start_ms: int, end_ms: int, from_id: int | None = None
    ) -> AsyncIterator[Batch]:
        """A batch each time the walk's covered range moves on, with where to resume."""
        covered_from = start_ms
        carried: list[Row] = []
        async for page in self.walk(self.scope_params(scope), start_ms, end_ms, from_id):
            carried += page.rows
            if page.covered_until_ms > covered_from:
                yield Batch(carried, Window(covered_from, page.covered_until_ms), page.next_id)
                covered_from, carried = page.covered_until_ms, []

    async def walk(
        self, params: Pairs, start_ms: int, end_ms: int, from_id: int | None = None
    ) -> AsyncIterator[CursorPage]:
        """Pages of in-range rows, ascending by id; the last one covers up to `end_ms`."""
        cursor = from_id if from_id is not None else await self.first_id(params, start_ms, end_ms)
        if cursor is None:  # the probe found nothing in the range
            yield CursorPage([], None, end_ms)
        while cursor is not None:
            rows = await self._call(params, [(self.spec.cursor_param or "", cursor)])
            rows = [r for r in rows if int(r[self.cursor_field]) >= cursor]
            rows.sort(key=lambda r: int(r[self.cursor_field]))
            done = len(rows) < self.limit or any(row_time(self.spec, r) >= end_ms for r in rows)
            inside = [r for r in rows if start_ms <= row_time(self.spec, r) < end_ms]
            # resume at the first row past the range, so the next read starts exactly there
            beyond = [int(r[self.cursor_field]) for r in rows if row_time(self.spec, r) >= end_ms]
            next_id = (
                min(beyond) if beyond else int(rows[-1][self.cursor_field]) + 1 if rows else cursor
            )
            covered = end_ms if done else max(start_ms, row_time(self.spec, rows[-1]))
            yield CursorPage(inside, next_id, covered)
            cursor = None if done else next_id

    async def first_id(self, params: Pairs, start_ms: int, end_ms: int) -> int | None:
        """The cursor to start from: probed for short ranges, 0 for long ones; None if empty."""
        if end_ms - start_ms > self.client.settings.cursor_probe_max_days * DAY_MS:
            return 0
        assert self.spec.max_window_ms is not None
        for window in plan_windows(start_ms, end_ms, self.spec.max_window_ms):
            rows = await self._call(params, [*window.params().items()], limit=1)
            if rows:
                return min(int(r[self.cursor_field]) for r in rows)
        return None

    async def _call(self, params: Pairs, extra: Pairs, limit: int | None = None) -> list[Row]:
        query = [*params, *extra, ("limit", limit or self.limit)]
        doc = await self.client.call(self.spec, query)
        if not isinstance(doc, list):
            raise MalformedResponse("cursor answer is not a list", where=self.spec.path)
        return [normalise_row(self.spec, dict(r)) for r in doc]


def _listed(spec: EndpointSpec, doc: Any) -> list[Row]:
    """The rows of a bare-list answer as dicts (array rows named by the spec's `row_fields`)."""
    if not isinstance(doc, list):
        raise MalformedResponse("answer is not a list", where=spec.path)
    if spec.row_fields:
        named = []
        for row in doc:
            if not isinstance(row, list) or len(row) < len(spec.row_fields):
                raise MalformedResponse("array row shorter than its fields", where=spec.path)
            named.append(dict(zip(spec.row_fields, row, strict=False)))
        return [normalise_row(spec, r) for r in named]
    return [normalise_row(spec, dict(r)) for r in doc]


class WindowPaginator(WindowedPaginator):
    """One call per window, the window sized so its rows fit one answer (rates, candles).

    An answer as long as the limit may have been cut short: the window is then halved and
    each half read again, so a denser history than planned costs calls, never rows.
    """

    def __init__(self, client: BinanceClient, spec: EndpointSpec) -> None:
        assert spec.paging == "window" and spec.page_size is not None
        super().__init__(client, spec)
        self.limit = spec.page_size

    async def read_window(self, params: Pairs, window: Window) -> list[Row]:
        query = [*params, *window.params().items(), (self.spec.limit_param, self.limit)]
        rows = _listed(self.spec, await self.client.call(self.spec, query))
        if len(rows) < self.limit:
            return sorted(rows, key=lambda r: row_time(self.spec, r))
        if window.length_ms < 2:
            raise PagingUnstable(
                "a millisecond holds more rows than one answer", where=self.spec.path
            )
        middle = window.start_ms + window.length_ms // 2
        halves = (Window(window.start_ms, middle), Window(middle, window.end_ms))
        return [row for half in halves for row in await self.read_window(params, half)]


class WindowCursorPaginator(WindowedPaginator):
    """Time windows, each walked with an ascending cursor from id 0 (the capital flow).

    With both times and `fromId`, the answer holds the window's rows with a larger id, oldest
    first, up to the limit; the walk goes on from the last id until an answer is short.
    """

    def __init__(self, client: BinanceClient, spec: EndpointSpec) -> None:
        assert spec.paging == "window_cursor" and spec.page_size is not None
        assert spec.cursor_param and spec.cursor_field
        super().__init__(client, spec)
        self.limit = spec.page_size
        self.cursor_param = spec.cursor_param
        self.cursor_field = spec.cursor_field

    async def read_window(self, params: Pairs, window: Window) -> list[Row]:
        found: dict[int, Row] = {}
        cursor = 0
        while True:
            query = [
                *params,
                *window.params().items(),
                (self.cursor_param, cursor),
                (self.spec.limit_param, self.limit),
            ]
            rows = _listed(self.spec, await self.client.call(self.spec, query))
            ahead = [r for r in rows if int(r[self.cursor_field]) > cursor]
            for row in ahead:
                found[int(row[self.cursor_field])] = row
            if len(rows) < self.limit or not ahead:
                return [found[key] for key in sorted(found)]
            cursor = max(int(r[self.cursor_field]) for r in ahead)


# A new paging style is a new class here and a row in this map.
PAGINATORS: dict[Paging, type[Paginator]] = {
    "page": PageNumberPaginator,
    "window": WindowPaginator,
    "window_cursor": WindowCursorPaginator,
    "id": IdCursorPaginator,
}


async def in_order(jobs: Iterable[Callable[[], Awaitable[T]]], depth: int) -> AsyncIterator[T]:
    """Run up to `depth` jobs ahead, yielding results in job order; cancel the rest on exit."""
    pending: deque[asyncio.Task[T]] = deque()
    queue = iter(jobs)
    try:
        pending.extend(asyncio.ensure_future(job()) for job in islice(queue, max(depth, 1)))
        while pending:
            result = await pending.popleft()
            pending.extend(asyncio.ensure_future(job()) for job in islice(queue, 1))
            yield result
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
