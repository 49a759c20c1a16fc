"""High-level reads: a stream's history in complete windows, the account, daily snapshots.

`MarginClient` is the connector's public face: a `BinanceClient` with the reads the export
flows need. Every read spends the client's shared weight budget and respects its concurrency
bound, so many reads may run at once under one `asyncio.gather`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

from connectors.client import BinanceClient
from connectors.errors import EndpointNotFound
from connectors.paging import (
    IdCursorPaginator,
    PageNumberPaginator,
    Pairs,
    Row,
    WindowCursorPaginator,
    WindowPaginator,
)
from connectors.specs import HISTORY_STREAMS, HOUR_MS, SPECS, EndpointSpec
from connectors.windows import Window, plan_windows

log = logging.getLogger(__name__)

T = TypeVar("T")


class WindowReader(Protocol):
    """Reads one closed time window of a stream completely."""

    async def read_window(self, params: Pairs, window: Window) -> list[Row]: ...


# Start a little inside a retention limit: the server's "now" moves on while we read.
RETENTION_MARGIN_MS = HOUR_MS
# Which API generation rows came from: one of them, or both alike (the endpoint is the same).
RowsApi: TypeAlias = Literal["legacy", "current", "both"]
BOTH_GENERATIONS: RowsApi = "both"


@dataclass(frozen=True)
class StreamBatch:
    """Rows of one stream partition, and the time range they complete.

    Every row of the stream and partition whose time lies in `covered` has been delivered by
    this batch or an earlier one of the same read; consecutive batches cover consecutive
    ranges. A coverage ledger may record `covered` once the rows are durable.
    """

    stream: str
    partition: str  # the partition value, "" when the stream is read unpartitioned
    api: RowsApi
    rows: list[Row]
    covered: Window
    next_from_id: int | None = None  # id-cursor streams: where an incremental read resumes


@dataclass(frozen=True)
class AccountSnapshot:
    """The live /sapi/v1/margin/account answer and the server time it was taken at."""

    time_ms: int
    data: dict[str, Any]


@dataclass(frozen=True)
class Partitions:
    """What to read per stream: assets (borrow/repay, rates), symbols (orders/trades) and the
    pairs that price the assets in the reporting quote asset (prices)."""

    assets: tuple[str, ...]
    symbols: tuple[str, ...]
    price_symbols: tuple[str, ...] = ()

    def values(self, spec: EndpointSpec) -> tuple[str | None, ...]:
        """The partition values to read `spec` under (None: one unpartitioned pass)."""
        if not spec.partition_required:
            return (None,)
        if spec.partition_values:
            return spec.partition_values
        by_kind = {"asset": self.assets, "price_symbol": self.price_symbols}
        return by_kind.get(spec.partition, self.symbols)


async def read_stream(
    client: BinanceClient,
    stream: str | EndpointSpec,
    partition: str | None,
    start_ms: int,
    end_ms: int,
    *,
    from_id: int | None = None,
) -> AsyncIterator[StreamBatch]:
    """The rows of `stream` for one partition in [start_ms, end_ms), in batches.

    The range is clamped to what the server can answer: not beyond its current time, not
    before the stream's retention. Page-number streams yield one batch per planned window
    (windows are read a few at a time, in order); id-cursor streams yield one batch per call,
    starting at `from_id` when given (see `connectors.paging`).
    """
    spec = stream if isinstance(stream, EndpointSpec) else await client.spec(stream)
    if spec.partition_required and partition is None:
        raise ValueError(f"{spec.name} needs a {spec.partition} partition")
    start_ms, end_ms = _readable_range(client, spec, start_ms, end_ms)
    if start_ms >= end_ms:
        return
    # a stream both generations serve alike needs no probe: its rows say so
    api: RowsApi = spec.api or BOTH_GENERATIONS
    params: Pairs = (
        [(spec.partition_param, partition)] if partition and spec.partition_param else []
    )
    label = partition or ""
    assert spec.stream is not None
    windowed = WINDOW_PAGINATORS.get(spec.paging)
    if windowed is not None:
        limit = spec.window_limit(partitioned=partition is not None)
        assert limit is not None
        paginator = windowed(client, spec)
        windows = plan_windows(start_ms, end_ms, limit)

        def job(window: Window) -> Callable[[], Awaitable[StreamBatch]]:
            async def read() -> StreamBatch:
                rows = _with_partition(spec, partition, await paginator.read_window(params, window))
                return StreamBatch(spec.stream or "", label, api, rows, window)

            return read

        async for batch in _in_order((job(w) for w in windows), client.settings.window_prefetch):
            yield batch
    elif spec.paging == "id":
        covered_from = start_ms
        carried: list[Row] = []
        cursor = IdCursorPaginator(client, spec)
        async for page in cursor.walk(params, start_ms, end_ms, from_id):
            carried += page.rows
            if page.covered_until_ms > covered_from:
                covered = Window(covered_from, page.covered_until_ms)
                yield StreamBatch(spec.stream, label, api, carried, covered, page.next_id)
                covered_from, carried = page.covered_until_ms, []
    else:
        raise ValueError(f"{spec.name} is not a history stream")


def oldest_readable_ms(spec: EndpointSpec, now_ms: int) -> int | None:
    """The oldest time a read of `spec` can ask for at `now_ms` (None: no retention limit)."""
    if spec.retention_ms is None:
        return None
    return now_ms - spec.retention_ms + RETENTION_MARGIN_MS


WINDOW_PAGINATORS: dict[str, Callable[[BinanceClient, EndpointSpec], WindowReader]] = {
    "page": PageNumberPaginator,
    "window": WindowPaginator,
    "window_cursor": WindowCursorPaginator,
}


def _with_partition(spec: EndpointSpec, partition: str | None, rows: list[Row]) -> list[Row]:
    """Rows that do not name their partition (klines) get it under its parameter's name."""
    if partition is None or not spec.row_fields or spec.partition_param is None:
        return rows
    return [{spec.partition_param: partition, **row} for row in rows]


def _readable_range(
    client: BinanceClient, spec: EndpointSpec, start_ms: int, end_ms: int
) -> tuple[int, int]:
    """Clamped to the server's now (to the last closed period for rows that change until their
    period closes), and to its retention where `start_ms` is already past it.

    A start inside the margin is kept: a caller that computed it from an earlier "now" (the
    export's cutoff) reads exactly what it planned, and its coverage says so.
    """
    now = client.server_now_ms()
    end_ms = min(end_ms, now)
    if spec.closed_periods_ms is not None:
        end_ms -= end_ms % spec.closed_periods_ms
    oldest = oldest_readable_ms(spec, now)
    if oldest is None or start_ms >= oldest - RETENTION_MARGIN_MS:
        return start_ms, end_ms
    log.warning("%s: history before %d is past retention; reading from there", spec.name, oldest)
    return oldest, end_ms


async def _in_order(jobs: Iterable[Callable[[], Awaitable[T]]], depth: int) -> AsyncIterator[T]:
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


async def read_account(client: BinanceClient) -> AccountSnapshot:
    """The cross-margin account now (balances, debts, margin level)."""
    data = await client.call(SPECS["account"])
    return AccountSnapshot(client.server_now_ms(), data)


async def read_daily_snapshots(
    client: BinanceClient, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """The exchange's end-of-day margin snapshots (`snapshotVos`) in [start_ms, end_ms).

    Only about the last month is served; older days are skipped. Weight is 2400 a call.
    """
    spec = SPECS["daily_snapshots"]
    start_ms, end_ms = _readable_range(client, spec, start_ms, end_ms)
    assert spec.max_window_ms is not None and spec.page_size is not None
    found: dict[int, dict[str, Any]] = {}
    # 2400 weight a call: the fewest windows, not day-aligned ones
    for window in plan_windows(start_ms, end_ms, spec.max_window_ms, aligned=False):
        doc = await client.call(spec, [*window.params().items(), ("limit", spec.page_size)])
        for vo in doc.get(spec.rows_key or "", []) or []:
            found[int(vo["updateTime"])] = vo
    return [found[t] for t in sorted(found)]


def _nonzero(balance: Mapping[str, Any]) -> bool:
    fields = ("free", "locked", "borrowed", "interest", "netAsset")
    return any(Decimal(str(balance.get(f, "0"))) != 0 for f in fields)


ASSET_FIELDS = ("asset", "rawAsset", "commissionAsset")


async def discover_partitions(
    client: BinanceClient,
    *,
    account: AccountSnapshot | None = None,
    assets: Iterable[str] = (),
    symbols: Iterable[str] = (),
    rows: Iterable[Mapping[str, Any]] = (),
    quote_asset: str | None = None,
) -> Partitions:
    """Assets and symbols worth reading, without scanning every pair of the exchange.

    Assets: those with a non-zero balance or debt in the live account, plus `assets` (from
    configuration or earlier exports), plus those named in `rows` (e.g. interest and transfer
    history already read, which name every asset ever borrowed or moved in). Symbols:
    `symbols` plus every margin pair (from allPairs) whose base and quote are both known assets.
    Price symbols: the pair of each known asset against `quote_asset`, where there is one.
    """
    snapshot = account or await read_account(client)
    known = {b["asset"] for b in snapshot.data.get("userAssets", []) if _nonzero(b)}
    known.update(assets)
    for row in rows:
        known.update(str(row[f]) for f in ASSET_FIELDS if row.get(f))
    chosen = set(symbols)
    try:
        pairs = await client.call(SPECS["all_pairs"])
    except EndpointNotFound:
        log.warning("allPairs is not served here; reading configured symbols only")
        pairs = []
    priced = set()
    for pair in pairs:
        if pair.get("base") in known and pair.get("quote") in known:
            chosen.add(str(pair["symbol"]))
        if pair.get("base") in known and pair.get("quote") == quote_asset:
            priced.add(str(pair["symbol"]))
    return Partitions(tuple(sorted(known)), tuple(sorted(chosen)), tuple(sorted(priced)))


# Streams whose rows name the assets an account ever borrowed or moved: read them before
# choosing the partitions of the others.
ASSET_NAMING_STREAMS = ("interest", "transfers")


async def read_history(
    client: BinanceClient,
    start_ms: int,
    end_ms: int,
    sink: Callable[[StreamBatch], None],
    *,
    streams: Iterable[str] = (),
    assets: Iterable[str] = (),
    symbols: Iterable[str] = (),
) -> Partitions:
    """Read `streams` (default: all history streams) for every partition, concurrently.

    Each batch goes to `sink` as it completes (nothing is kept here, so memory stays flat).
    The interest and transfer histories are read first: the assets they name join discovery.
    Returns the partitions that were read.
    """
    chosen = tuple(streams) or HISTORY_STREAMS
    seen: set[str] = set()

    def collect(batch: StreamBatch) -> None:
        for row in batch.rows:
            seen.update(str(row[f]) for f in ASSET_FIELDS if row.get(f))
        sink(batch)

    async def read_all(stream: str, parts: Partitions) -> None:
        spec = await client.spec(stream)
        await asyncio.gather(*(drain(spec, value) for value in parts.values(spec)))

    async def drain(spec: EndpointSpec, value: str | None) -> None:
        async for batch in read_stream(client, spec, value, start_ms, end_ms):
            collect(batch)

    account = await read_account(client)
    nothing = Partitions((), ())
    first = [s for s in chosen if s in ASSET_NAMING_STREAMS]
    await asyncio.gather(*(read_all(s, nothing) for s in first))
    parts = await discover_partitions(
        client,
        account=account,
        assets=[*assets, *sorted(seen)],
        symbols=symbols,
    )
    await asyncio.gather(*(read_all(s, parts) for s in chosen if s not in first))
    return parts


class MarginClient(BinanceClient):
    """The Binance cross-margin client the export uses; `async with MarginClient(...) as c:`.

    Construct it with (base_url, api_key, api_secret, settings); see `BinanceClient` for the
    transport, budget and retry knobs.
    """

    def read_stream(
        self,
        stream: str | EndpointSpec,
        partition: str | None,
        start_ms: int,
        end_ms: int,
        *,
        from_id: int | None = None,
    ) -> AsyncIterator[StreamBatch]:
        """See `connectors.reader.read_stream`."""
        return read_stream(self, stream, partition, start_ms, end_ms, from_id=from_id)

    async def read_account(self) -> AccountSnapshot:
        """See `connectors.reader.read_account`."""
        return await read_account(self)

    async def read_daily_snapshots(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """See `connectors.reader.read_daily_snapshots`."""
        return await read_daily_snapshots(self, start_ms, end_ms)

    async def discover_partitions(
        self,
        *,
        account: AccountSnapshot | None = None,
        assets: Iterable[str] = (),
        symbols: Iterable[str] = (),
        rows: Iterable[Mapping[str, Any]] = (),
        quote_asset: str | None = None,
    ) -> Partitions:
        """See `connectors.reader.discover_partitions`."""
        return await discover_partitions(
            self,
            account=account,
            assets=assets,
            symbols=symbols,
            rows=rows,
            quote_asset=quote_asset,
        )

    async def __aenter__(self) -> MarginClient:
        await self.open()
        return self
