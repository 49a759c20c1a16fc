"""The export pipeline as plain functions: snapshot, plan, fetch, land, mark. Prefect wraps it.

One run of one account: take the live account snapshot first (its time is the run's cutoff),
read the daily snapshots the exchange still keeps, then every stream under every scope (an
asset, symbol or transfer type: each a partition of the coverage ledger) from where the ledger
says the last run stopped (less a look-back window, so late and changed rows are caught) up to
the cutoff. Rows land in the lake before their windows are marked, so a run killed at any point
resumes where it stopped and loses nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from connectors import (
    DISCOVERY_STREAMS,
    HISTORY_STREAMS,
    RETENTION_MARGIN_MS,
    SPECS,
    AccountSnapshot,
    BinanceError,
    ClientSettings,
    EndpointSpec,
    Fatal,
    MarginClient,
    Scopes,
    StreamBatch,
    Unreachable,
    oldest_readable_ms,
)
from flows.config import LOOKBACK_HOURS, Account, budget_settings
from flows.together import all_or_stop
from models import DAY_MS, HOUR_MS, daily_snapshot_rows, live_snapshot_rows, named_assets
from storage import DataDir, RunStore, UserError

SNAPSHOT_STREAM = "account_snapshots"
ALL_STREAMS: tuple[str, ...] = (*HISTORY_STREAMS, SNAPSHOT_STREAM)
DEFAULT_HISTORY_MS = 90 * DAY_MS  # a first run reads this far back unless told --since
COMMIT_EVERY_ROWS = 200_000  # buffered rows that make a commit (flush + mark) due
LIVE_STATE = "live-state"  # fingerprint of the last stored live snapshot's balances
OPEN_ORDER_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW"})


@dataclass(frozen=True)
class ExportRequest:
    """What to export: one account, a time range, some streams, into one data directory.

    ``lake_url`` (``s3://bucket/prefix``) puts the lake on an object store; by default it is
    ``$MARGIN_ETL_LAKE_URL``, else DATA_DIR/lake (see ``storage.DataDir``).
    """

    account: Account
    data_dir: Path
    since_ms: int | None = None
    until_ms: int | None = None
    streams: tuple[str, ...] | None = None
    lookback_ms: int = LOOKBACK_HOURS * HOUR_MS
    client_settings: ClientSettings | None = None
    lake_url: str | None = None

    @classmethod
    def of(
        cls,
        account: Account,
        data_dir: Path,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        streams: str | Iterable[str] | None = None,
        lookback_hours: int = LOOKBACK_HOURS,
    ) -> ExportRequest:
        """A request from a command's or a flow's parameters: streams checked, hours in ms."""
        if lookback_hours < 0:
            raise UserError("--lookback-hours must not be negative")
        return cls(
            account, data_dir, since_ms, until_ms, parse_streams(streams), lookback_hours * HOUR_MS
        )

    @property
    def lookback_hours(self) -> int:
        return self.lookback_ms // HOUR_MS

    @property
    def selected_streams(self) -> tuple[str, ...]:
        return self.streams or ALL_STREAMS


@dataclass
class StreamResult:
    stream: str
    partitions: int = 0
    windows: int = 0
    rows_read: int = 0
    rows_written: int = 0
    requests: int = 0  # what reading the stream spent, retries included
    weight: int = 0
    planned_requests: int | None = None  # what a plan foresaw (None: no plan was made)
    planned_weight: int | None = None


@dataclass
class ExportSummary:
    run_id: str
    account: str
    cutoff_ms: int
    duration_s: float = 0.0
    streams: dict[str, StreamResult] = field(default_factory=dict)
    files: int = 0
    requests: int = 0
    retries: int = 0
    weight: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    planned_requests: int | None = None  # the whole run's, calls of no stream included
    planned_weight: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportSummary:
        streams = {name: StreamResult(**r) for name, r in data.get("streams", {}).items()}
        return cls(**{**data, "streams": streams})

    @property
    def rows_written(self) -> int:
        return sum(s.rows_written for s in self.streams.values())


class ExportProgress(Protocol):
    """What a long export tells whoever watches it (a terminal display, a Prefect artifact)."""

    def stream_started(self, stream: str, partitions: int) -> None: ...
    def window_done(self, stream: str, rows: int) -> None: ...
    def stream_finished(self, stream: str, result: StreamResult) -> None: ...
    def waiting(self, reason: str, seconds: float) -> None:
        """The run waits `seconds` for `reason` (a retry's backoff, Retry-After, a window)."""


class SilentProgress:
    def stream_started(self, stream: str, partitions: int) -> None:
        pass

    def window_done(self, stream: str, rows: int) -> None:
        pass

    def stream_finished(self, stream: str, result: StreamResult) -> None:
        pass

    def waiting(self, reason: str, seconds: float) -> None:
        pass


def parse_streams(streams: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """Stream names, comma-separated or listed, checked and without repeats; None for all."""
    listed = streams.split(",") if isinstance(streams, str) else streams or ()
    names = tuple(dict.fromkeys(s.strip() for s in listed if s.strip()))
    if not names:
        return None
    unknown = [n for n in names if n not in ALL_STREAMS]
    if unknown:
        raise UserError(
            f"--streams: unknown stream(s) {', '.join(unknown)}; "
            f"choose from {', '.join(ALL_STREAMS)}"
        )
    return names


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


class Coverage(Protocol):
    """What a read's start is computed from: the coverage earlier runs left (a `RunStore`
    while exporting, a read-only `storage.CoverageView` while planning)."""

    def high_water(self, stream: str, partition: str) -> int | None: ...
    def gaps(
        self, stream: str, partition: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, int]]: ...
    def partitions(self, stream: str) -> list[str]: ...


def readable_from(spec: EndpointSpec, start_ms: int, cutoff_ms: int) -> int:
    """``start_ms``, or the oldest time the stream's retention still serves if later."""
    oldest = oldest_readable_ms(spec, cutoff_ms)
    return start_ms if oldest is None else max(start_ms, oldest)


def _since(request: ExportRequest, spec: EndpointSpec, cutoff_ms: int) -> tuple[int, int] | None:
    """--since as where a backfill reads from, and from where coverage must be complete.

    Before the stream's retention nothing can be read: --since then means the oldest time
    still served, which is known only to within the retention margin (the server's clock
    against the cutoff's), so coverage that reaches that margin is complete.
    """
    requested = request.since_ms
    if requested is None:
        return None
    since = readable_from(spec, requested, cutoff_ms)
    return since, since if since == requested else since + RETENTION_MARGIN_MS


def read_start(
    request: ExportRequest,
    coverage: Coverage,
    spec: EndpointSpec,
    partition: str,
    cutoff_ms: int,
) -> tuple[int, bool]:
    """Where a read of one stream partition starts, and whether it continues from the last run
    (vs a backfill).

    From the coverage high-water less the look-back; earlier when --since asks for a range
    not covered yet; a first run starts at --since or DEFAULT_HISTORY_MS before the cutoff.
    """
    stream = spec.stream or ""
    high_water = coverage.high_water(stream, partition)
    since = _since(request, spec, cutoff_ms)
    if high_water is None:
        default = readable_from(spec, cutoff_ms - DEFAULT_HISTORY_MS, cutoff_ms)
        return (since[0] if since is not None else default), False
    start = high_water - request.lookback_ms
    if since is not None:
        read_from, complete_from = since
        gaps = coverage.gaps(stream, partition, complete_from, cutoff_ms)
        if gaps and gaps[0][0] < start:
            return max(gaps[0][0], read_from), False
        start = max(start, read_from)
    return start, True


def daily_snapshots_start(coverage: Coverage, cutoff_ms: int) -> tuple[int, bool]:
    """Where unread daily snapshots begin, and whether one can exist yet (2400 weight)."""
    stored = coverage.high_water(SNAPSHOT_STREAM, "daily")
    floor = readable_from(SPECS["daily_snapshots"], cutoff_ms - DEFAULT_HISTORY_MS, cutoff_ms)
    if stored is None or stored < floor:
        return floor, True
    # the newest stored one was taken at stored - 1; the next comes a day later
    return stored, stored - 1 + DAY_MS <= cutoff_ms


async def needs_scopes(client: MarginClient, streams: Iterable[str]) -> bool:
    """Whether a selected stream is read per asset or symbol the account has used."""
    for stream in streams:
        if stream != SNAPSHOT_STREAM:
            spec = await client.spec(stream)
            if spec.scope_required and not spec.scope_values:
                return True
    return False


async def discover_scopes(
    client: MarginClient,
    account: Account,
    coverage: Coverage,
    snapshot: AccountSnapshot,
    assets_seen: Iterable[str],
) -> Scopes:
    """Assets and symbols to read: from the account, its config, the history read so far
    (`assets_seen`) and the partitions earlier runs read."""
    earlier_assets: set[str] = set()
    earlier_symbols: set[str] = set()
    for stream in ("loans", "repays", "interest_rates"):
        earlier_assets.update(p for p in coverage.partitions(stream) if p)
    for stream in ("orders", "trades"):
        earlier_symbols.update(p for p in coverage.partitions(stream) if p)
    return await client.discover_scopes(
        account=snapshot,
        assets=(*account.assets, *earlier_assets, *assets_seen),
        symbols=(*account.symbols, *earlier_symbols),
        quote_asset=account.report_currency,
    )


# A stream export as something a caller can wrap (Prefect makes each one a task run).
StreamRunner = Callable[["AccountExport", str], Awaitable[StreamResult]]


async def run_stream_directly(job: AccountExport, stream: str) -> StreamResult:
    return await job.export_stream(stream)


async def export_account(
    request: ExportRequest,
    progress: ExportProgress | None = None,
    *,
    run_id: str | None = None,
    stream_runner: StreamRunner = run_stream_directly,
) -> ExportSummary:
    """Export one account; raises UserError for what a person must fix (key, host, lock)."""
    started = time.monotonic()
    data_dir = DataDir(request.data_dir, lake_url=request.lake_url)
    account = request.account.name
    watcher = progress or SilentProgress()
    with data_dir.open_run(account, run_id or new_run_id(), _run_params(request)) as store:
        async with ClientContext(request.account, request.client_settings, watcher) as client:
            job = AccountExport(request, client, store, watcher)
            await job.run(stream_runner)
            summary = job.summary()
        summary.duration_s = round(time.monotonic() - started, 3)
        store.outcome = summary.as_dict()
    return summary


def _run_params(request: ExportRequest) -> dict[str, Any]:
    return {
        "since_ms": request.since_ms,
        "until_ms": request.until_ms,
        "streams": list(request.selected_streams),
        "lookback_ms": request.lookback_ms,
    }


class ClientContext:
    """Opens the client and turns connection-level failures into one-line user errors."""

    def __init__(
        self, account: Account, settings: ClientSettings | None, progress: ExportProgress
    ) -> None:
        settings = settings or ClientSettings(
            api_generation=account.api_generation, budget=budget_settings()
        )
        self.client = MarginClient(
            account.base_url,
            account.api_key,
            account.api_secret,
            settings,
            on_wait=progress.waiting,
        )
        self.account = account

    async def __aenter__(self) -> MarginClient:
        try:
            await self.client.open()
        except (BinanceError, OSError) as exc:
            await self.client.aclose()
            if isinstance(exc, Unreachable):  # at once: almost always a setting
                source = self.account.base_url_source
                raise UserError(f"{exc.detail}; the URL comes from {source}") from None
            if isinstance(exc, Fatal):  # the server answered: a key, permission or account issue
                raise UserError(f"account {self.account.name}: {exc}") from None
            raise UserError(f"cannot reach {self.account.base_url}: {exc}") from None
        return self.client

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self.client.aclose()
        if isinstance(exc, BinanceError):
            # retries are spent or the error is final: the run stops, with what landed kept
            raise UserError(f"account {self.account.name}: {exc}") from None


class AccountExport:
    """The state of one account's run: its client, its hold on the data dir, the results."""

    def __init__(
        self,
        request: ExportRequest,
        client: MarginClient,
        store: RunStore,
        progress: ExportProgress,
    ) -> None:
        self.request = request
        self.account = store.account
        self.run_id = store.run_id
        self.client = client
        self.store = store
        self.progress = progress
        self.cutoff_ms = 0
        self.results: dict[str, StreamResult] = {}
        self._assets_seen: set[str] = set()
        self._account_doc: dict[str, Any] = {}
        self.scopes = Scopes((), ())

    async def run(self, stream_runner: StreamRunner) -> None:
        """Snapshots first, then the streams that name assets, then the rest; then commit."""
        await self.take_snapshots()
        streams = [s for s in self.request.selected_streams if s != SNAPSHOT_STREAM]
        first = [s for s in streams if s in DISCOVERY_STREAMS]
        await all_or_stop(stream_runner(self, s) for s in first)
        await self.discover()
        await all_or_stop(stream_runner(self, s) for s in streams if s not in first)
        self.commit()

    # -- snapshots ---------------------------------------------------------------------------
    async def take_snapshots(self) -> None:
        """The live account (its time is the cutoff) and the daily snapshots not yet stored.

        A run that needs neither the snapshots nor the account's assets takes the server's time
        as its cutoff instead: one request less.
        """
        result = self.results.setdefault(SNAPSHOT_STREAM, StreamResult(SNAPSHOT_STREAM))
        wanted = SNAPSHOT_STREAM in self.request.selected_streams
        if not wanted and not await needs_scopes(self.client, self.request.selected_streams):
            self._set_cutoff(self.client.server_now_ms())
            return
        snapshot = await self.client.read_account()
        self._set_cutoff(snapshot.time_ms)
        self._account_doc = snapshot.data
        if not wanted:
            return
        self.progress.stream_started(SNAPSHOT_STREAM, 2)
        live = live_snapshot_rows(snapshot.data, snapshot.time_ms)
        if self._account_changed(live):
            window = (snapshot.time_ms, snapshot.time_ms + 1)
            self._land(SNAPSHOT_STREAM, "live", "current", live, window)
        daily_from, due = daily_snapshots_start(self.store, self.cutoff_ms)
        if due:
            vos = await self.client.read_daily_snapshots(daily_from, self.cutoff_ms)
            if vos:
                newest = max(int(vo["updateTime"]) for vo in vos)
                rows = daily_snapshot_rows(vos)
                self._land(SNAPSHOT_STREAM, "daily", "current", rows, (daily_from, newest + 1))
        result.partitions = 2
        self.progress.stream_finished(SNAPSHOT_STREAM, result)

    def _set_cutoff(self, server_now_ms: int) -> None:
        until = self.request.until_ms
        self.cutoff_ms = server_now_ms if until is None else min(server_now_ms, until)

    def _account_changed(self, live: Sequence[Mapping[str, Any]]) -> bool:
        """False when balances equal the last stored live snapshot's: a new one adds nothing."""
        state = [{k: v for k, v in row.items() if k != "snapshotTime"} for row in live]
        balances = {"assets": sorted(state, key=lambda r: str(r["asset"]))}
        return self.store.changed(SNAPSHOT_STREAM, LIVE_STATE, balances, self.cutoff_ms)

    # -- discovery ---------------------------------------------------------------------------
    async def discover(self) -> None:
        """Assets and symbols to read: from the account, config, history and earlier runs."""
        if await needs_scopes(self.client, self.request.selected_streams):
            account = AccountSnapshot(self.cutoff_ms, self._account_doc)
            self.scopes = await discover_scopes(
                self.client, self.request.account, self.store, account, self._assets_seen
            )

    # -- streams -----------------------------------------------------------------------------
    async def export_stream(self, stream: str) -> StreamResult:
        """Read one stream under every scope, from where coverage stops to the cutoff."""
        spec = await self.client.spec(stream)
        result = self.results.setdefault(stream, StreamResult(stream))
        scopes = self.scopes.values(spec)
        result.partitions = len(scopes)
        self.progress.stream_started(stream, len(scopes))
        await all_or_stop(self._export_scope(spec, scope, result) for scope in scopes)
        self.progress.stream_finished(stream, result)
        return result

    async def _export_scope(
        self, spec: EndpointSpec, scope: str | None, result: StreamResult
    ) -> None:
        """One scope of a stream: its ledger partition is the scope's value ("" for none)."""
        stream, partition = spec.stream or "", scope or ""
        start_ms, continuing = read_start(self.request, self.store, spec, partition, self.cutoff_ms)
        from_id = None
        if spec.paging == "id" and continuing:
            from_id = self.store.cursor(stream, partition)
        open_orders: set[int] = set()
        async for batch in self.client.read_stream(
            spec, scope, start_ms, self.cutoff_ms, from_id=from_id
        ):
            next_id = batch.next_from_id
            if stream == "orders":
                open_orders.update(
                    int(r["orderId"]) for r in batch.rows if r.get("status") in OPEN_ORDER_STATUSES
                )
                # Orders change after they are read: resume at the oldest one still open.
                if next_id is not None and open_orders:
                    next_id = min(min(open_orders), next_id)
            self._land_batch(batch, next_id, result)
            if self.store.buffered_rows >= COMMIT_EVERY_ROWS:
                self.commit()

    def _land_batch(self, batch: StreamBatch, next_id: int | None, result: StreamResult) -> None:
        self._assets_seen.update(named_assets(batch.rows))
        written = self._land(
            batch.stream,
            batch.partition,
            batch.api,
            batch.rows,
            (batch.covered.start_ms, batch.covered.end_ms),
            next_id=next_id,
        )
        result.windows += 1
        result.rows_read += len(batch.rows)
        result.rows_written += written
        self.progress.window_done(batch.stream, len(batch.rows))

    def _land(
        self,
        stream: str,
        partition: str,
        api: str,
        rows: Sequence[Mapping[str, Any]],
        window: tuple[int, int],
        *,
        next_id: int | None = None,
    ) -> int:
        """Land a window's rows in the data dir (new ones only); count them for snapshots."""
        written = self.store.land(stream, partition, api, rows, window, next_id=next_id)
        if stream == SNAPSHOT_STREAM:
            result = self.results.setdefault(stream, StreamResult(stream))
            result.rows_read += len(rows)
            result.rows_written += written
            result.windows += 1
            self.progress.window_done(stream, len(rows))
        return written

    def commit(self) -> None:
        """Make everything fetched so far durable, then mark it covered.

        Fingerprints older than two look-backs are forgotten: no later run re-reads them. Orders
        keep theirs: a read resumes at the oldest order still open, however old.
        """
        horizon = self.cutoff_ms - 2 * self.request.lookback_ms
        self.store.commit(forget_before_ms=horizon, keep=("orders",))

    def summary(self) -> ExportSummary:
        stats = self.client.stats
        for stream, result in self.results.items():
            result.requests = stats.by_stream[stream]
            result.weight = stats.weight_by_stream[stream]
        return ExportSummary(
            run_id=self.run_id,
            account=self.account,
            cutoff_ms=self.cutoff_ms,
            streams=dict(sorted(self.results.items())),
            files=self.store.files_written,
            requests=stats.requests,
            retries=stats.retries,
            weight=sum(stats.weight.values()),
            errors=dict(stats.errors),
        )
