"""`MarginClient`: the connector's public face, a `BinanceClient` with the margin reads.

A stream's history is read per scope in complete time ranges; the live account and the
exchange's daily snapshots are read whole; `discover_scopes` finds the assets and symbols
worth reading. Every read spends the client's shared weight budget and respects its
concurrency bound, so many reads may run at once under one `asyncio.gather`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from connectors.client import BinanceClient
from connectors.errors import EndpointNotFound
from connectors.paging import PAGINATORS, Row
from connectors.specs import SPECS, EndpointSpec
from connectors.windows import Window, plan_windows
from models import HOUR_MS, named_assets

log = logging.getLogger(__name__)

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
    partition: str  # the scope the rows were read under ("" when the stream has none)
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
class Scopes:
    """What to read per stream: assets (borrow/repay, rates), symbols (orders/trades) and the
    pairs that price the assets in the reporting quote asset (prices)."""

    assets: tuple[str, ...]
    symbols: tuple[str, ...]
    price_symbols: tuple[str, ...] = ()

    def values(self, spec: EndpointSpec) -> tuple[str | None, ...]:
        """The scopes to read `spec` under (None: one pass with no scope)."""
        if not spec.scope_required:
            return (None,)
        if spec.scope_values:
            return spec.scope_values
        by_kind = {"asset": self.assets, "price_symbol": self.price_symbols}
        return by_kind.get(spec.scope, self.symbols)


def oldest_readable_ms(spec: EndpointSpec, now_ms: int) -> int | None:
    """The oldest time a read of `spec` can ask for at `now_ms` (None: no retention limit)."""
    if spec.retention_ms is None:
        return None
    return now_ms - spec.retention_ms + RETENTION_MARGIN_MS


def _nonzero(balance: Mapping[str, Any]) -> bool:
    fields = ("free", "locked", "borrowed", "interest", "netAsset")
    return any(Decimal(str(balance.get(f, "0"))) != 0 for f in fields)


class MarginClient(BinanceClient):
    """The Binance cross-margin client the export uses; `async with MarginClient(...) as c:`.

    Construct it with (base_url, api_key, api_secret, settings); see `BinanceClient` for the
    transport, budget and retry knobs.
    """

    async def __aenter__(self) -> MarginClient:
        await self.open()
        return self

    async def read_stream(
        self,
        stream: str | EndpointSpec,
        scope: str | None,
        start_ms: int,
        end_ms: int,
        *,
        from_id: int | None = None,
    ) -> AsyncIterator[StreamBatch]:
        """The rows of `stream` for one scope in [start_ms, end_ms), in batches.

        The range is clamped to what the server can answer: not beyond its current time, not
        before the stream's retention. Page-number streams yield one batch per planned window
        (windows are read a few at a time, in order); id-cursor streams yield one batch per
        call, starting at `from_id` when given (see `connectors.paging`).
        """
        spec = stream if isinstance(stream, EndpointSpec) else await self.spec(stream)
        if spec.scope_required and scope is None:
            raise ValueError(f"{spec.name} is read per {spec.scope}: name one")
        start_ms, end_ms = self.readable_range(spec, start_ms, end_ms)
        if start_ms >= end_ms:
            return
        paging = PAGINATORS.get(spec.paging)
        if paging is None or spec.stream is None:
            raise ValueError(f"{spec.name} is not a history stream")
        # a stream both generations serve alike needs no probe: its rows say so
        api: RowsApi = spec.api or BOTH_GENERATIONS
        async for batch in paging(self, spec).batches(scope, start_ms, end_ms, from_id):
            yield StreamBatch(
                spec.stream, scope or "", api, batch.rows, batch.covered, batch.next_id
            )

    async def read_account(self) -> AccountSnapshot:
        """The cross-margin account now (balances, debts, margin level)."""
        data = await self.call(SPECS["account"])
        return AccountSnapshot(self.server_now_ms(), data)

    async def read_daily_snapshots(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """The exchange's end-of-day margin snapshots (`snapshotVos`) in [start_ms, end_ms).

        Only about the last month is served; older days are skipped. Weight is 2400 a call.
        """
        spec = SPECS["daily_snapshots"]
        start_ms, end_ms = self.readable_range(spec, start_ms, end_ms)
        assert spec.max_window_ms is not None and spec.page_size is not None
        found: dict[int, dict[str, Any]] = {}
        # 2400 weight a call: the fewest windows, not day-aligned ones
        for window in plan_windows(start_ms, end_ms, spec.max_window_ms, aligned=False):
            doc = await self.call(spec, [*window.params().items(), ("limit", spec.page_size)])
            for vo in doc.get(spec.rows_key or "", []) or []:
                found[int(vo["updateTime"])] = vo
        return [found[t] for t in sorted(found)]

    async def discover_scopes(
        self,
        *,
        account: AccountSnapshot | None = None,
        assets: Iterable[str] = (),
        symbols: Iterable[str] = (),
        rows: Iterable[Mapping[str, Any]] = (),
        quote_asset: str | None = None,
    ) -> Scopes:
        """Assets and symbols worth reading, without scanning every pair of the exchange.

        Assets: those with a non-zero balance or debt in the live account, plus `assets` (from
        configuration or earlier exports), plus those named in `rows` (e.g. interest and
        transfer history already read, which name every asset ever borrowed or moved in).
        Symbols: `symbols` plus every margin pair (from allPairs) whose base and quote are both
        known assets. Price symbols: the pair of each known asset against `quote_asset`, where
        there is one.
        """
        snapshot = account or await self.read_account()
        known = {b["asset"] for b in snapshot.data.get("userAssets", []) if _nonzero(b)}
        known.update(assets)
        known.update(named_assets(rows))
        chosen = set(symbols)
        try:
            pairs = await self.call(SPECS["all_pairs"])
        except EndpointNotFound:
            log.warning("allPairs is not served here; reading configured symbols only")
            pairs = []
        priced = set()
        for pair in pairs:
            if pair.get("base") in known and pair.get("quote") in known:
                chosen.add(str(pair["symbol"]))
            if pair.get("base") in known and pair.get("quote") == quote_asset:
                priced.add(str(pair["symbol"]))
        return Scopes(tuple(sorted(known)), tuple(sorted(chosen)), tuple(sorted(priced)))

    def readable_range(self, spec: EndpointSpec, start_ms: int, end_ms: int) -> tuple[int, int]:
        """Clamped to the server's now (to the last closed period for rows that change until
        their period closes), and to its retention where `start_ms` is already past it.

        A start inside the margin is kept: a caller that computed it from an earlier "now" (the
        export's cutoff) reads exactly what it planned, and its coverage says so.
        """
        now = self.server_now_ms()
        end_ms = min(end_ms, now)
        if spec.closed_periods_ms is not None:
            end_ms -= end_ms % spec.closed_periods_ms
        oldest = oldest_readable_ms(spec, now)
        if oldest is None or start_ms >= oldest - RETENTION_MARGIN_MS:
            return start_ms, end_ms
        log.warning(
            "%s: history before %d is past retention; reading from there", spec.name, oldest
        )
        return oldest, end_ms
