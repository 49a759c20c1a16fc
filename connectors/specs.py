"""Binance margin endpoints as data: one table read by the client, the planner and the tests.

Each row says how to read one stream (or snapshot, or reference list) from one API generation:
path, weight, paging style, window limits, partition key, natural key, time field and extra
fixed parameters. Adding an endpoint means adding a row here, not code elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from models.schemas import STREAMS

ApiGeneration = Literal["legacy", "current"]
ApiSetting = Literal["legacy", "current", "auto"]
# page: current/size with a `total`; id: fromId/orderId ascending cursor; window: one call per
# time window, sized so its rows fit one answer; window_cursor: time windows, each walked with
# an ascending fromId cursor; none: one call.
Paging = Literal["page", "id", "window", "window_cursor", "none"]
# ip / uid: a /sapi endpoint with its own per-endpoint bucket; api: the shared /api pool.
WeightKind = Literal["ip", "uid", "api"]
# price_symbol: the pair of an account's asset against the reporting quote asset (SOLUSDT)
Partition = Literal["asset", "symbol", "price_symbol", "transfer_type", "none"]
# ms: milliseconds as documented; auto: a value below 10^11 is seconds (doc examples show both).
TimeUnit = Literal["ms", "auto"]

SECOND_MS = 1_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# Rows whose time is below this are in seconds (10^11 ms is 1973; 10^11 s is year 5138).
SECONDS_THRESHOLD = 100_000_000_000

API_GENERATIONS: tuple[ApiGeneration, ...] = ("legacy", "current")


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint and the rules for reading it completely and cheaply."""

    name: str  # unique id: "<stream>" or "<stream>.<api>"
    stream: str | None  # lake stream the rows belong to; None for reference/snapshot calls
    path: str
    weight: int
    weight_kind: WeightKind
    paging: Paging
    method: str = "GET"
    signed: bool = True
    api: ApiGeneration | None = None  # None: identical in both generations
    # allOrders also has a hard cap on request count per window, on top of weight
    request_limit: int | None = None
    partition: Partition = "none"
    partition_param: str | None = None  # query parameter carrying the partition value
    partition_values: tuple[str, ...] = ()  # a closed set of values (transfer types)
    # True: every read sends a value (the API requires it, or reads are incomplete without)
    partition_required: bool = False
    max_window_ms: int | None = None
    # borrow-repay silently narrows to 7 d when no asset is sent: plan smaller windows then
    max_window_unpartitioned_ms: int | None = None
    time_field: str | None = None
    time_unit: TimeUnit = "ms"
    fixed_params: tuple[tuple[str, str], ...] = ()
    retention_ms: int | None = None  # oldest data the server still serves, back from now
    page_size: int | None = None  # size= for page paging, limit= for id cursors and snapshots
    cursor_param: str | None = None  # fromId / orderId
    cursor_field: str | None = None  # the row field the cursor walks (id / orderId)
    rows_key: str | None = None  # "rows" for {"rows":..,"total":..}; None for a bare list
    limit_param: str = "limit"  # how window and cursor reads ask for `page_size` rows
    # rows sent as arrays (klines): the names of their positions, as the lake stores them
    row_fields: tuple[str, ...] = ()
    # rows that change until their period closes (a day's candle): read only closed periods
    closed_periods_ms: int | None = None

    @property
    def natural_key(self) -> tuple[str, ...] | None:
        """The stream's natural key, as declared once in `models.schemas`."""
        if self.stream is None or self.stream not in STREAMS:
            return None
        return STREAMS[self.stream].natural_key

    @property
    def bucket(self) -> str:
        """The rate-limit bucket: each /sapi endpoint has its own, /api shares one pool."""
        return "api" if self.weight_kind == "api" else f"{self.weight_kind}:{self.path}"

    def window_limit(self, partitioned: bool) -> int | None:
        """The largest legal window for a call with or without the partition parameter."""
        if not partitioned and self.max_window_unpartitioned_ms is not None:
            return self.max_window_unpartitioned_ms
        return self.max_window_ms


# A `current`/`size` history endpoint: 100 rows a page, newest first, 30-day windows.
_PAGED = EndpointSpec(
    name="",
    stream=None,
    path="",
    weight=1,
    weight_kind="ip",
    paging="page",
    page_size=100,
    max_window_ms=30 * DAY_MS,
    rows_key="rows",
)


def _paged(name: str, path: str, weight: int, time_field: str, **rules: Any) -> EndpointSpec:
    stream = name.split(".")[0]
    base = replace(_PAGED, name=name, stream=stream, path=path, weight=weight)
    return replace(base, time_field=time_field, **rules)


BORROW_REPAY = "/sapi/v1/margin/borrow-repay"

SPECS: dict[str, EndpointSpec] = {
    s.name: s
    for s in (
        # -- borrow and repay: removed legacy endpoints vs today's borrow-repay -------------
        _paged(
            "loans.legacy",
            "/sapi/v1/margin/loan",
            10,
            "timestamp",
            api="legacy",
            partition="asset",
            partition_param="asset",
            partition_required=True,
        ),
        _paged(
            "loans.current",
            BORROW_REPAY,
            10,
            "timestamp",
            api="current",
            partition="asset",
            partition_param="asset",
            # optional on the wire, but without it the window narrows to 7 d: always send it
            partition_required=True,
            max_window_unpartitioned_ms=7 * DAY_MS,
            fixed_params=(("type", "BORROW"),),
        ),
        _paged(
            "repays.legacy",
            "/sapi/v1/margin/repay",
            10,
            "timestamp",
            api="legacy",
            partition="asset",
            partition_param="asset",
            partition_required=True,
        ),
        _paged(
            "repays.current",
            BORROW_REPAY,
            10,
            "timestamp",
            api="current",
            partition="asset",
            partition_param="asset",
            partition_required=True,
            max_window_unpartitioned_ms=7 * DAY_MS,
            fixed_params=(("type", "REPAY"),),
        ),
        # -- the same in both generations ---------------------------------------------------
        _paged(
            "interest",
            "/sapi/v1/margin/interestHistory",
            1,
            "interestAccuredTime",
            # optional: one unpartitioned pass reads every asset for the fewest calls
            partition="asset",
            partition_param="asset",
            retention_ms=90 * DAY_MS,
        ),
        _paged(
            "transfers",
            "/sapi/v1/margin/transfer",
            1,
            "timestamp",
            partition="transfer_type",
            partition_param="type",
            partition_values=("ROLL_IN", "ROLL_OUT"),
            partition_required=True,  # the seed API requires `type`
            time_unit="auto",  # the doc example shows 10-digit seconds
        ),
        _paged(
            "liquidations",
            "/sapi/v1/margin/forceLiquidationRec",
            1,
            "updatedTime",
        ),
        EndpointSpec(
            name="orders",
            stream="orders",
            path="/sapi/v1/margin/allOrders",
            weight=200,
            weight_kind="ip",
            request_limit=60,
            paging="id",
            partition="symbol",
            partition_param="symbol",
            partition_required=True,
            max_window_ms=DAY_MS,  # only for the time probe: endTime - startTime < 24 h
            time_field="time",
            page_size=500,
            cursor_param="orderId",
            cursor_field="orderId",
        ),
        EndpointSpec(
            name="trades",
            stream="trades",
            path="/sapi/v1/margin/myTrades",
            weight=10,
            weight_kind="ip",
            paging="id",
            partition="symbol",
            partition_param="symbol",
            partition_required=True,
            max_window_ms=DAY_MS,
            time_field="time",
            page_size=1000,
            cursor_param="fromId",
            cursor_field="id",
        ),
        # -- the capital flow, rate history and prices: what proves and values balances ------
        EndpointSpec(
            name="capital_flow",
            stream="capital_flow",
            path="/sapi/v1/margin/capital-flow",
            weight=100,
            weight_kind="ip",
            # both times sent: at most 7 days (-4047); inside a window, fromId > id ascending
            paging="window_cursor",
            max_window_ms=7 * DAY_MS,
            time_field="timestamp",
            retention_ms=90 * DAY_MS,
            page_size=1000,
            cursor_param="fromId",
            cursor_field="id",
        ),
        EndpointSpec(
            name="interest_rates",
            stream="interest_rates",
            path="/sapi/v1/margin/interestRateHistory",
            weight=1,
            weight_kind="ip",
            paging="window",
            partition="asset",
            partition_param="asset",
            partition_required=True,
            # one row an hour, newest first, at most 100: 100-hour windows fit one answer
            max_window_ms=100 * HOUR_MS,
            time_field="timestamp",
            retention_ms=180 * DAY_MS,  # "up to 6 months of records via API"
            page_size=100,
            # an endTime past the server's now is refused (-1100): stop at the last whole hour
            closed_periods_ms=HOUR_MS,
        ),
        EndpointSpec(
            name="prices",
            stream="prices",
            path="/api/v3/klines",
            weight=2,
            weight_kind="api",
            signed=False,
            paging="window",
            partition="price_symbol",
            partition_param="symbol",
            partition_required=True,
            max_window_ms=1000 * DAY_MS,  # daily candles, 1000 an answer
            time_field="openTime",
            fixed_params=(("interval", "1d"),),
            page_size=1000,
            row_fields=(
                "openTime",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "closeTime",
                "quoteAssetVolume",
                "numberOfTrades",
                "takerBuyBaseAssetVolume",
                "takerBuyQuoteAssetVolume",
            ),
            closed_periods_ms=DAY_MS,
        ),
        # -- snapshots ----------------------------------------------------------------------
        EndpointSpec(
            name="account",
            stream="account_snapshots",
            path="/sapi/v1/margin/account",
            weight=10,
            weight_kind="ip",
            paging="none",
        ),
        EndpointSpec(
            name="daily_snapshots",
            stream="account_snapshots",
            path="/sapi/v1/accountSnapshot",
            weight=2400,
            weight_kind="ip",
            paging="none",
            # "period under 30 days"; a window [s, s+30 d) sends endTime - startTime < 30 d
            max_window_ms=30 * DAY_MS,
            time_field="updateTime",
            fixed_params=(("type", "MARGIN"),),
            retention_ms=30 * DAY_MS,
            page_size=30,
            rows_key="snapshotVos",
        ),
        # -- reference data and time --------------------------------------------------------
        EndpointSpec(
            name="all_pairs",
            stream=None,
            path="/sapi/v1/margin/allPairs",
            weight=1,
            weight_kind="ip",
            paging="none",
            signed=False,  # MARKET_DATA: key header only
        ),
        EndpointSpec(
            name="all_assets",
            stream=None,
            path="/sapi/v1/margin/allAssets",
            weight=1,
            weight_kind="ip",
            paging="none",
            signed=False,
        ),
        EndpointSpec(
            name="server_time",
            stream=None,
            path="/api/v3/time",
            weight=1,
            weight_kind="api",
            paging="none",
            signed=False,
        ),
    )
}

# Streams read by the history reader.
HISTORY_STREAMS: tuple[str, ...] = (
    "loans",
    "repays",
    "interest",
    "transfers",
    "liquidations",
    "orders",
    "trades",
    "capital_flow",
    "interest_rates",
    "prices",
)


def spec_for(stream: str, api: ApiGeneration) -> EndpointSpec:
    """The spec that reads `stream` under API generation `api`."""
    versioned = SPECS.get(f"{stream}.{api}")
    if versioned is not None:
        return versioned
    plain = SPECS.get(stream)
    if plain is None or plain.stream != stream:
        raise KeyError(f"no endpoint reads stream {stream!r}")
    return plain


def probe_spec() -> EndpointSpec:
    """The cheap call that tells the generations apart: borrow-repay exists only today."""
    return SPECS["loans.current"]
