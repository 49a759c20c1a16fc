"""Binance margin endpoints as data: one table read by the client, the planner and the tests.

Each row says how to read one stream (or snapshot, or reference list) from one API generation:
path, weight, paging style, window limits, scope, natural key, time field and extra fixed
parameters. Shared settings are defaults (`_paged`, `SCOPE_PARAMS`), so a row states only what
sets it apart. Adding an endpoint means adding a row here, not code elsewhere.

A read's *scope* is what the API narrows it to: one asset, one symbol, one transfer type, or
nothing. The scope a batch was read under becomes its partition in the coverage ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from models import DAY_MS, HOUR_MS, STREAMS

ApiGeneration = Literal["legacy", "current"]
ApiSetting = Literal["auto", "current", "legacy"]
# page: current/size with a `total`; id: fromId/orderId ascending cursor; window: one call per
# time window, sized so its rows fit one answer; window_cursor: time windows, each walked with
# an ascending fromId cursor; none: one call.
Paging = Literal["page", "id", "window", "window_cursor", "none"]
# ip / uid: a /sapi endpoint with its own per-endpoint bucket; api: the shared /api pool.
WeightKind = Literal["ip", "uid", "api"]
# price_symbol: the pair of an account's asset against the reporting quote asset (SOLUSDT)
Scope = Literal["asset", "symbol", "price_symbol", "transfer_type", "none"]
# ms: milliseconds as documented; auto: a value below 10^11 is seconds (doc examples show both).
TimeUnit = Literal["ms", "auto"]

API_GENERATIONS: tuple[ApiGeneration, ...] = ("legacy", "current")
# the query parameter that carries each kind of scope
SCOPE_PARAMS: dict[Scope, str] = {
    "asset": "asset",
    "symbol": "symbol",
    "price_symbol": "symbol",
    "transfer_type": "type",
}


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint and the rules for reading it completely and cheaply.

    Unless a row says otherwise: one signed GET of weight 1 in its own IP bucket, no paging.
    """

    name: str  # unique id: "<stream>" or "<stream>.<api>"
    path: str
    stream: str | None = None  # lake stream the rows belong to; None for reference calls
    weight: int = 1
    weight_kind: WeightKind = "ip"
    paging: Paging = "none"
    method: str = "GET"
    signed: bool = True
    api: ApiGeneration | None = None  # None: identical in both generations
    # allOrders also has a hard cap on request count per window, on top of weight
    request_limit: int | None = None
    scope: Scope = "none"
    scope_values: tuple[str, ...] = ()  # a closed set of values (transfer types)
    # a scoped read normally sends its value every time (the API requires it, or reads are
    # incomplete without); optional: one unscoped pass reads every value for the fewest calls
    scope_optional: bool = False
    max_window_ms: int | None = None
    # borrow-repay silently narrows to 7 d when no asset is sent: plan smaller windows then
    max_window_unscoped_ms: int | None = None
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
    def scope_param(self) -> str | None:
        """The query parameter carrying the scope's value (None: the read has no scope)."""
        return SCOPE_PARAMS.get(self.scope)

    @property
    def scope_required(self) -> bool:
        """Whether every read of this endpoint names one value of its scope."""
        return self.scope != "none" and not self.scope_optional

    @property
    def bucket(self) -> str:
        """The rate-limit bucket: each /sapi endpoint has its own, /api shares one pool."""
        return "api" if self.weight_kind == "api" else f"{self.weight_kind}:{self.path}"

    def window_limit(self, scoped: bool) -> int | None:
        """The largest legal window for a call with or without the scope parameter."""
        if not scoped and self.max_window_unscoped_ms is not None:
            return self.max_window_unscoped_ms
        return self.max_window_ms


# A `current`/`size` history endpoint: 100 rows a page, newest first, 30-day windows.
_PAGED = EndpointSpec(
    name="",
    path="",
    paging="page",
    page_size=100,
    max_window_ms=30 * DAY_MS,
    rows_key="rows",
)


def _paged(name: str, path: str, weight: int, time_field: str, **rules: Any) -> EndpointSpec:
    stream = name.split(".")[0]
    base = replace(_PAGED, name=name, stream=stream, path=path, weight=weight)
    return replace(base, time_field=time_field, **rules)


def _borrow_repay(stream: str, kind: str) -> EndpointSpec:
    """Today's read of `stream` from /margin/borrow-repay: `type` BORROW or REPAY."""
    return _paged(
        f"{stream}.current",
        "/sapi/v1/margin/borrow-repay",
        10,
        "timestamp",
        api="current",
        fixed_params=(("type", kind),),
        # optional on the wire, but without an asset the window narrows to 7 d: always send one
        scope="asset",
        max_window_unscoped_ms=7 * DAY_MS,
    )


SPECS: dict[str, EndpointSpec] = {
    s.name: s
    for s in (
        # -- borrow and repay: removed legacy endpoints vs today's borrow-repay -------------
        _paged(
            "loans.legacy", "/sapi/v1/margin/loan", 10, "timestamp", api="legacy", scope="asset"
        ),
        _borrow_repay("loans", "BORROW"),
        _paged(
            "repays.legacy", "/sapi/v1/margin/repay", 10, "timestamp", api="legacy", scope="asset"
        ),
        _borrow_repay("repays", "REPAY"),
        # -- the same in both generations ---------------------------------------------------
        _paged(
            "interest",
            "/sapi/v1/margin/interestHistory",
            1,
            "interestAccuredTime",
            scope="asset",
            scope_optional=True,  # one unscoped pass reads every asset for the fewest calls
            retention_ms=90 * DAY_MS,
        ),
        _paged(
            "transfers",
            "/sapi/v1/margin/transfer",
            1,
            "timestamp",
            scope="transfer_type",  # the seed API requires `type`
            scope_values=("ROLL_IN", "ROLL_OUT"),
            time_unit="auto",  # the doc example shows 10-digit seconds
        ),
        _paged("liquidations", "/sapi/v1/margin/forceLiquidationRec", 1, "updatedTime"),
        EndpointSpec(
            name="orders",
            stream="orders",
            path="/sapi/v1/margin/allOrders",
            weight=200,
            request_limit=60,
            paging="id",
            scope="symbol",
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
            paging="id",
            scope="symbol",
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
            paging="window",
            scope="asset",
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
            scope="price_symbol",
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
            name="account", path="/sapi/v1/margin/account", stream="account_snapshots", weight=10
        ),
        EndpointSpec(
            name="daily_snapshots",
            path="/sapi/v1/accountSnapshot",
            stream="account_snapshots",
            weight=2400,
            # "period under 30 days"; a window [s, s+30 d) sends endTime - startTime < 30 d
            max_window_ms=30 * DAY_MS,
            time_field="updateTime",
            fixed_params=(("type", "MARGIN"),),
            retention_ms=30 * DAY_MS,
            page_size=30,
            rows_key="snapshotVos",
        ),
        # -- reference data and time --------------------------------------------------------
        # MARKET_DATA: the key header only, no signature
        EndpointSpec(name="all_pairs", path="/sapi/v1/margin/allPairs", signed=False),
        EndpointSpec(name="all_assets", path="/sapi/v1/margin/allAssets", signed=False),
        EndpointSpec(name="server_time", path="/api/v3/time", weight_kind="api", signed=False),
    )
}

# The history streams, each read in time windows (the snapshots are read whole).
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
# Read first: their rows name every asset ever borrowed or moved (`models.named_assets`), which
# chooses the scopes of the streams read per asset or symbol.
DISCOVERY_STREAMS: tuple[str, ...] = ("interest", "transfers", "capital_flow")


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
