"""The export pipeline as plain functions: snapshot, plan, fetch, land, mark. Prefect wraps it.

One run of one account: take the live account snapshot first (its time is the run's cutoff),
read the daily snapshots the exchange still keeps, then every stream and partition from where
the coverage ledger says the last run stopped (less a look-back window, so late and changed
rows are caught) up to the cutoff. Rows land in the lake before their windows are marked, so a
run killed at any point resumes where it stopped and loses nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from connectors.client import ClientSettings
from connectors.errors import BinanceError, Fatal
from connectors.reader import (
    RETENTION_MARGIN_MS,
    AccountSnapshot,
    MarginClient,
    Partitions,
    StreamBatch,
    oldest_readable_ms,
)
from connectors.specs import DAY_MS, HISTORY_STREAMS, SPECS, EndpointSpec
from flows.config import Account, budget_settings
from flows.coverage import Checkpoint, CoverageLedger
from flows.errors import UserError
from flows.fingerprints import RowFingerprints, row_hash
from flows.lake import LakeWriter, recover_lake, validate_account_name
from flows.lock import DataDirLock
from models.rows import RowContext, daily_snapshot_rows, live_snapshot_rows, to_record_batch

SNAPSHOT_STREAM = "account_snapshots"
ALL_STREAMS: tuple[str, ...] = (*HISTORY_STREAMS, SNAPSHOT_STREAM)
# Read first: their rows name every asset ever moved or borrowed, which partitions the rest.
DISCOVERY_STREAMS = ("transfers", "interest", "liquidations", "capital_flow")
DEFAULT_HISTORY_MS = 90 * DAY_MS  # a first run reads this far back unless told --since
COMMIT_EVERY_ROWS = 200_000  # buffered rows that make a commit (flush + mark) due
LIVE_STATE = "live-state"  # fingerprint of the last stored live snapshot's balances
OPEN_ORDER_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW"})


@dataclass(frozen=True)
class ExportRequest:
    """What to export: one account, a time range, some streams, into one data directory.

    ``lake_url`` (``s3://bucket/prefix``) puts the lake on an object store; by default it is
    ``$MARGIN_ETL_LAKE_URL``, else DATA_DIR/lake (see ``flows.storage``).
    """

    account: Account
    data_dir: Path
    since_ms: int | None = None
    until_ms: int | None = None
    streams: tuple[str, ...] | None = None
    lookback_ms: int = DAY_MS
    client_settings: ClientSettings | None = None
    lake_url: str | None = None

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


class SilentProgress:
    def stream_started(self, stream: str, partitions: int) -> None:
        pass

    def window_done(self, stream: str, rows: int) -> None:
        pass

    def stream_finished(self, stream: str, result: StreamResult) -> None:
        pass


def parse_streams(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
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
    validate_account_name(request.account.name)
    run_id = run_id or new_run_id()
    started = time.monotonic()
    request.data_dir.mkdir(parents=True, exist_ok=True)
    with DataDirLock(request.data_dir):
        recover_lake(request.data_dir, lake_url=request.lake_url)
        with CoverageLedger(request.data_dir) as ledger:
            ledger.close_abandoned_runs()
            ledger.start_run(run_id, request.account.name, _run_params(request))
            try:
                summary = await _export_locked(
                    request, ledger, run_id, progress or SilentProgress(), stream_runner
                )
            except BaseException as exc:
                ledger.finish_run(run_id, "failed", {"error": type(exc).__name__})
                raise
            summary.duration_s = round(time.monotonic() - started, 3)
            ledger.finish_run(run_id, "completed", summary.as_dict())
            return summary


def _run_params(request: ExportRequest) -> dict[str, Any]:
    return {
        "since_ms": request.since_ms,
        "until_ms": request.until_ms,
        "streams": list(request.selected_streams),
        "lookback_ms": request.lookback_ms,
    }


async def _export_locked(
    request: ExportRequest,
    ledger: CoverageLedger,
    run_id: str,
    progress: ExportProgress,
    stream_runner: StreamRunner,
) -> ExportSummary:
    account = request.account
    fingerprints = RowFingerprints(request.data_dir)
    try:
        with LakeWriter(request.data_dir, run_id, lake_url=request.lake_url) as writer:
            async with _ClientContext(account, request.client_settings) as client:
                job = AccountExport(request, client, writer, ledger, fingerprints, run_id, progress)
                await job.take_snapshots()
                streams = [s for s in request.selected_streams if s != SNAPSHOT_STREAM]
                first = [s for s in streams if s in DISCOVERY_STREAMS]
                await _gather(stream_runner(job, s) for s in first)
                await job.discover()
                await _gather(stream_runner(job, s) for s in streams if s not in first)
                job.commit()
                return job.summary()
    finally:
        fingerprints.close()


async def _gather(runs: Iterable[Awaitable[Any]]) -> None:
    await asyncio.gather(*runs)


class _ClientContext:
    """Opens the client and turns connection-level failures into one-line user errors."""

    def __init__(self, account: Account, settings: ClientSettings | None) -> None:
        settings = settings or ClientSettings(
            api_generation=account.api_generation, budget=budget_settings()
        )
        self.client = MarginClient(account.base_url, account.api_key, account.api_secret, settings)
        self.account = account

    async def __aenter__(self) -> MarginClient:
        try:
            await self.client.open()
        except (BinanceError, OSError) as exc:
            await self.client.aclose()
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
    """The state of one account's run: its client, the lake writer, the ledger, the results."""

    def __init__(
        self,
        request: ExportRequest,
        client: MarginClient,
        writer: LakeWriter,
        ledger: CoverageLedger,
        fingerprints: RowFingerprints,
        run_id: str,
        progress: ExportProgress,
    ) -> None:
        self.request = request
        self.account = request.account.name
        self.client = client
        self.writer = writer
        self.ledger = ledger
        self.checkpoint = Checkpoint(writer, ledger)
        self.fingerprints = fingerprints
        self.run_id = run_id
        self.progress = progress
        self.cutoff_ms = 0
        self.results: dict[str, StreamResult] = {}
        self.files_written = 0
        self._remember: list[tuple[str, str, Mapping[bytes, int], int]] = []
        self._assets_seen: set[str] = set()
        self._account_doc: dict[str, Any] = {}
        self.partitions = Partitions((), ())

    # -- snapshots ---------------------------------------------------------------------------
    async def take_snapshots(self) -> None:
        """The live account (its time is the cutoff) and the daily snapshots not yet stored.

        A run that needs neither the snapshots nor the account's assets takes the server's time
        as its cutoff instead: one request less.
        """
        result = self.results.setdefault(SNAPSHOT_STREAM, StreamResult(SNAPSHOT_STREAM))
        wanted = SNAPSHOT_STREAM in self.request.selected_streams
        if not wanted and not await self._needs_partitions():
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
        daily_from, due = self._daily_start()
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
        digest = {"state": row_hash({"assets": sorted(state, key=lambda r: str(r["asset"]))}).hex()}
        fresh, groups = self.fingerprints.unseen(
            self.account, SNAPSHOT_STREAM, LIVE_STATE, [digest]
        )
        if fresh:
            self._remember.append((SNAPSHOT_STREAM, LIVE_STATE, groups, self.cutoff_ms))
        return bool(fresh)

    def _daily_start(self) -> tuple[int, bool]:
        """Where unread daily snapshots begin, and whether one can exist yet (2400 weight)."""
        stored = self.ledger.high_water(self.account, SNAPSHOT_STREAM, "daily")
        floor = self._readable(SPECS["daily_snapshots"], self.cutoff_ms - DEFAULT_HISTORY_MS)
        if stored is None or stored < floor:
            return floor, True
        # the newest stored one was taken at stored - 1; the next comes a day later
        return stored, stored - 1 + DAY_MS <= self.cutoff_ms

    # -- discovery ---------------------------------------------------------------------------
    async def discover(self) -> None:
        """Assets and symbols to read: from the account, config, history and earlier runs."""
        if not await self._needs_partitions():
            return
        account = self.request.account
        earlier_assets: set[str] = set()
        earlier_symbols: set[str] = set()
        for stream in ("loans", "repays", "interest_rates"):
            earlier_assets.update(p for p in self.ledger.partitions(self.account, stream) if p)
        for stream in ("orders", "trades"):
            earlier_symbols.update(p for p in self.ledger.partitions(self.account, stream) if p)
        self.partitions = await self.client.discover_partitions(
            account=AccountSnapshot(self.cutoff_ms, self._account_doc),
            assets=(*account.assets, *earlier_assets, *self._assets_seen),
            symbols=(*account.symbols, *earlier_symbols),
            quote_asset=account.report_currency,
        )

    async def _needs_partitions(self) -> bool:
        """Whether a selected stream is read per asset or symbol the account has used."""
        for stream in self.request.selected_streams:
            if stream != SNAPSHOT_STREAM:
                spec = await self.client.spec(stream)
                if spec.partition_required and not spec.partition_values:
                    return True
        return False

    # -- streams -----------------------------------------------------------------------------
    async def export_stream(self, stream: str) -> StreamResult:
        """Read one stream, every partition, from where coverage stops to the cutoff."""
        spec = await self.client.spec(stream)
        result = self.results.setdefault(stream, StreamResult(stream))
        values = self.partitions.values(spec)
        result.partitions = len(values)
        self.progress.stream_started(stream, len(values))
        await asyncio.gather(*(self._export_partition(stream, p, result) for p in values))
        self.progress.stream_finished(stream, result)
        return result

    async def _export_partition(
        self, stream: str, partition: str | None, result: StreamResult
    ) -> None:
        label = partition or ""
        spec = await self.client.spec(stream)
        start_ms, continuing = self._read_from(spec, label)
        from_id = None
        if spec.paging == "id" and continuing:
            from_id = self.ledger.cursor(self.account, stream, label)
        open_orders: set[int] = set()
        async for batch in self.client.read_stream(
            spec, partition, start_ms, self.cutoff_ms, from_id=from_id
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
            if self.writer.buffered_rows >= COMMIT_EVERY_ROWS:
                self.commit()

    def _readable(self, spec: EndpointSpec, start_ms: int) -> int:
        """``start_ms``, or the oldest time the stream's retention still serves if later."""
        oldest = oldest_readable_ms(spec, self.cutoff_ms)
        return start_ms if oldest is None else max(start_ms, oldest)

    def _since(self, spec: EndpointSpec) -> tuple[int, int] | None:
        """--since as where a backfill reads from, and from where coverage must be complete.

        Before the stream's retention nothing can be read: --since then means the oldest time
        still served, which is known only to within the retention margin (the server's clock
        against the cutoff's), so coverage that reaches that margin is complete.
        """
        requested = self.request.since_ms
        if requested is None:
            return None
        since = self._readable(spec, requested)
        return since, since if since == requested else since + RETENTION_MARGIN_MS

    def _read_from(self, spec: EndpointSpec, partition: str) -> tuple[int, bool]:
        """Where a read starts, and whether it continues from the last run (vs a backfill).

        From the coverage high-water less the look-back; earlier when --since asks for a range
        not covered yet; a first run starts at --since or DEFAULT_HISTORY_MS before the cutoff.
        """
        stream = spec.stream or ""
        high_water = self.ledger.high_water(self.account, stream, partition)
        since = self._since(spec)
        if high_water is None:
            default = self._readable(spec, self.cutoff_ms - DEFAULT_HISTORY_MS)
            return (since[0] if since is not None else default), False
        start = high_water - self.request.lookback_ms
        if since is not None:
            read_from, complete_from = since
            gaps = self.ledger.gaps(self.account, stream, partition, complete_from, self.cutoff_ms)
            if gaps and gaps[0][0] < start:
                return max(gaps[0][0], read_from), False
            start = max(start, read_from)
        return start, True

    def _land_batch(self, batch: StreamBatch, next_id: int | None, result: StreamResult) -> None:
        for row in batch.rows:
            for key in ("asset", "rawAsset", "commissionAsset"):
                if row.get(key):
                    self._assets_seen.add(str(row[key]))
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
        """Give a window's new rows to the writer and queue the window for marking."""
        fresh, groups = self.fingerprints.unseen(self.account, stream, partition, rows)
        if fresh:
            context = RowContext(self.account, self.run_id, _now_ms(), api, partition)
            self.writer.write(stream, to_record_batch(stream, fresh, context))
        self.checkpoint.fetched(
            self.account, stream, partition, window[0], window[1], len(rows), next_id=next_id
        )
        self._remember.append((stream, partition, groups, window[1]))
        if stream == SNAPSHOT_STREAM:
            result = self.results.setdefault(stream, StreamResult(stream))
            result.rows_read += len(rows)
            result.rows_written += len(fresh)
            result.windows += 1
            self.progress.window_done(stream, len(rows))
        return len(fresh)

    def commit(self) -> None:
        """Make everything fetched so far durable, then mark it covered."""
        self.files_written += len(self.checkpoint.commit())
        remember, self._remember = self._remember, []
        for stream, partition, groups, row_time in remember:
            if partition == LIVE_STATE:  # one state only: the latest
                self.fingerprints.forget_partition(self.account, stream, partition)
            self.fingerprints.remember(self.account, stream, partition, groups, row_time)
        horizon = self.cutoff_ms - 2 * self.request.lookback_ms
        for stream in {r[0] for r in remember if r[0] != "orders"}:
            self.fingerprints.forget_before(self.account, stream, horizon)

    def summary(self) -> ExportSummary:
        stats = self.client.stats
        return ExportSummary(
            run_id=self.run_id,
            account=self.account,
            cutoff_ms=self.cutoff_ms,
            streams=dict(sorted(self.results.items())),
            files=self.files_written,
            requests=stats.requests,
            retries=stats.retries,
            weight=sum(stats.weight.values()),
            errors=dict(stats.errors),
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
