"""Know the cost before paying it: the windows, requests and weight an export will spend.

A plan follows the export's own rules (where each read starts: `flows.export.read_start`; how a
range is cut into windows; what a page, a cursor walk or a window costs: `connectors.paging`)
without reading the history. How many answers a window needs depends on its rows, which come
from the cheapest source that knows them:

1. the coverage ledger: the rows per millisecond earlier runs read in the same partition;
2. the endpoint specs: a window of rates or candles holds one row per hour or day;
3. probes, only where nothing else tells: a page endpoint's first page gives its window's
   `total`; a cursor endpoint has no total, so a few windows or days are read with the
   largest limit and the rest extrapolated (an *estimate*, from so many samples; a window
   not probed takes the density of the nearest probed ones).

Retries are spent too, but no plan foresees them.

What the plan itself spends (its probes, the server time, the account and the pairs it reads
to choose scopes as the export does) is counted apart. It takes no lock and opens the ledger
read-only, so it may run while an export holds the data dir, and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

from connectors import (
    DISCOVERY_STREAMS,
    SPECS,
    AccountSnapshot,
    EndpointSpec,
    MarginClient,
    Scopes,
    Window,
    normalise_row,
    plan_windows,
    probe_spec,
    row_time,
    spec_for,
)
from flows.export import (
    SNAPSHOT_STREAM,
    ClientContext,
    ExportRequest,
    ExportSummary,
    SilentProgress,
    daily_snapshots_start,
    discover_scopes,
    needs_scopes,
    read_start,
)
from flows.together import all_or_stop
from models import DAY_MS, named_assets
from storage import CoverageView, DataDir

# A partition's windows probed for their row counts (spread over its range; all when fewer).
PROBED_WINDOWS = 4
# Extra day samples of a cursor walk are taken while they cost at most this share of what
# they help estimate, and never more than MAX_DAY_SAMPLES. Days differ more than a Poisson
# count would: on `large`, 4 days a pair left trades and orders 7-8 % short, 12 about 1.5 %.
SAMPLE_SHARE = 0.15
MAX_DAY_SAMPLES = 12
# The ledger's recent past whose rows per millisecond predict the next run's.
DENSITY_PAST_MS = 30 * DAY_MS
# The export resumes orders at the oldest order still open (flows.export), which may lie far
# behind the high water: only a call from the cursor tells how far.
CURSOR_MAY_TRAIL = frozenset({"orders"})
OTHER = "other"  # the server time and the pairs list: calls of no stream

# exact: counted; estimate: extrapolated from samples or the ledger; floor: at least this
# (nothing told the rows: every window taken as one answer)
Basis = Literal["exact", "estimate", "floor"]
_ORDER: dict[Basis, int] = {"exact": 0, "estimate": 1, "floor": 2}


# -- the cost model (pure) ------------------------------------------------------------------
@dataclass(frozen=True)
class Rows:
    """How many rows one read returns: an expectation and its variance (0: known exactly)."""

    mean: float
    variance: float = 0.0

    def __add__(self, other: Rows) -> Rows:
        return Rows(self.mean + other.mean, self.variance + other.variance)


def answers_for(rows: Rows, per_answer: int) -> float:
    """The answers that read `rows` when one holds up to `per_answer` and a full one is always
    followed by another: floor(rows / per_answer) + 1, for pages and cursor walks alike (an
    expectation when the count is uncertain)."""
    if rows.variance <= 0:
        return math.floor(rows.mean / per_answer) + 1
    spread = NormalDist(rows.mean, math.sqrt(rows.variance))
    expected, k = 1.0, 1
    while k * per_answer <= rows.mean + 8 * spread.stdev:
        expected += 1 - spread.cdf(k * per_answer - 0.5)  # P(rows >= k * per_answer)
        k += 1
    return expected


@dataclass(frozen=True)
class Sample:
    """Rows seen over a span: a whole window's count, or the span a full answer covered."""

    rows: int
    span_ms: int
    whole: bool


@dataclass(frozen=True)
class Density:
    """Rows per millisecond, and how much a window's count scatters (variance / mean)."""

    rows: float
    span_ms: int
    dispersion: float = 1.0  # 1: as a Poisson count does

    def over(self, length_ms: int) -> Rows:
        if self.span_ms <= 0:
            return Rows(0.0)
        mean = self.rows * max(length_ms, 0) / self.span_ms
        return Rows(mean, mean * self.dispersion)


def pooled(samples: Iterable[Sample]) -> Density | None:
    """One density from samples; whole windows' counts also tell how much counts scatter."""
    listed = [s for s in samples if s.span_ms > 0]
    if not listed:
        return None
    rows, span = sum(s.rows for s in listed), sum(s.span_ms for s in listed)
    wholes = [s for s in listed if s.whole]
    dispersion = 1.0
    if len(wholes) >= 2 and rows > 0:
        expected = [rows * s.span_ms / span for s in wholes]
        scatter = sum((s.rows - e) ** 2 for s, e in zip(wholes, expected, strict=True))
        dispersion = max(1.0, scatter / sum(expected) * len(wholes) / (len(wholes) - 1))
    return Density(rows, span, dispersion)


def spread(count: int, chosen: int) -> list[int]:
    """`chosen` indices out of `count`, evenly spread, each in the middle of its share (the
    range's first window often predates the account; its last is often partial)."""
    if count <= chosen:
        return list(range(count))
    return sorted({math.floor((i + 0.5) * count / chosen) for i in range(chosen)})


def nearest(known: Mapping[int, Sample], index: int) -> list[Sample]:
    """The samples that best tell window `index`'s density: its own when probed (and full),
    else the nearest probed window on each side (activity drifts: an account opens, grows)."""
    if index in known:
        return [known[index]]
    before = max((i for i in known if i < index), default=None)
    after = min((i for i in known if i > index), default=None)
    return [known[i] for i in (before, after) if i is not None]


def periods_in(window: Window, period_ms: int) -> int:
    """Periods that begin inside the window: the rows of a one-row-a-period endpoint."""
    return -(-window.end_ms // period_ms) - -(-window.start_ms // period_ms)


def window_calls(window: Window, period_ms: int | None, limit: int) -> int:
    """Calls that read a window of one row a period: one, or halves when a full answer may have
    been cut short (as `connectors.paging.WindowPaginator` reads it)."""
    if period_ms is None or periods_in(window, period_ms) < limit or window.length_ms < 2:
        return 1
    middle = window.start_ms + window.length_ms // 2
    halves = (Window(window.start_ms, middle), Window(middle, window.end_ms))
    return 1 + sum(window_calls(half, period_ms, limit) for half in halves)


# -- what a plan says -----------------------------------------------------------------------
@dataclass
class StreamPlan:
    """One stream under all its scopes: what reading it will take."""

    stream: str
    scopes: int = 0
    windows: int = 0
    requests: float = 0.0
    weight: float = 0.0
    basis: Basis = "exact"
    samples: int = 0  # probes behind an estimate

    def add(self, cost: Cost, spec: EndpointSpec) -> None:
        self.windows += cost.windows
        self.requests += cost.requests
        self.weight += cost.requests * spec.weight
        self.samples += cost.samples
        if _ORDER[cost.basis] > _ORDER[self.basis]:
            self.basis = cost.basis


@dataclass(frozen=True)
class Cost:
    """What reading one partition of a stream will take (requests may be an expectation)."""

    windows: int
    requests: float
    basis: Basis = "exact"
    samples: int = 0


@dataclass
class BucketLoad:
    """Planned weight and requests on one rate-limit bucket, and what a window lets through."""

    weight: float = 0.0
    requests: float = 0.0
    weight_per_window: int = 1
    requests_per_window: int | None = None

    def windows(self) -> int:
        """Budget windows this load needs at least."""
        need = self.weight / self.weight_per_window
        if self.requests_per_window:
            need = max(need, self.requests / self.requests_per_window)
        return max(math.ceil(need - 1e-9), 1) if self.requests else 0


@dataclass
class ExportPlan:
    """An export's planned cost, per stream and in total, and what the plan itself spent."""

    account: str
    cutoff_ms: int
    probes: bool  # whether probes were allowed (else: the ledger and the specs only)
    streams: dict[str, StreamPlan] = field(default_factory=dict)
    other_requests: float = 0.0
    other_weight: float = 0.0
    buckets: dict[str, BucketLoad] = field(default_factory=dict)
    window_s: float = 60.0
    share: float = 0.8
    cost_requests: int = 0  # what making the plan spent
    cost_weight: int = 0

    @property
    def windows(self) -> int:
        return sum(s.windows for s in self.streams.values())

    @property
    def requests(self) -> int:
        return round(sum(s.requests for s in self.streams.values()) + self.other_requests)

    @property
    def weight(self) -> int:
        return round(sum(s.weight for s in self.streams.values()) + self.other_weight)

    @property
    def basis(self) -> Basis:
        worst: Basis = "exact"
        for line in self.streams.values():
            worst = line.basis if _ORDER[line.basis] > _ORDER[worst] else worst
        return worst

    def bottleneck(self) -> tuple[str, int]:
        """The bucket that needs the most budget windows, and how many."""
        if not self.buckets:
            return "", 0
        name = max(self.buckets, key=lambda b: self.buckets[b].windows())
        return name, self.buckets[name].windows()

    @property
    def least_wall_s(self) -> float:
        """The least time the budget allows: the busiest bucket's windows, the last one
        started (its weight goes at once, as the budget lets a window's share go)."""
        return max(self.bottleneck()[1] - 1, 0) * self.window_s

    def as_dict(self) -> dict[str, Any]:
        """Plain figures, rounded, for a table, JSON or a Prefect artifact."""
        return {
            "account": self.account,
            "cutoff_ms": self.cutoff_ms,
            "probes": self.probes,
            "streams": {
                name: {
                    "scopes": line.scopes,
                    "windows": line.windows,
                    "requests": round(line.requests),
                    "weight": round(line.weight),
                    "basis": line.basis,
                    "samples": line.samples,
                }
                for name, line in self.streams.items()
            },
            "other": {"requests": round(self.other_requests), "weight": round(self.other_weight)},
            "windows": self.windows,
            "requests": self.requests,
            "weight": self.weight,
            "least_wall_s": self.least_wall_s,
            "bottleneck": self.bottleneck()[0],
            "cost": {"requests": self.cost_requests, "weight": self.cost_weight},
        }


# -- planning -------------------------------------------------------------------------------
async def plan_export(request: ExportRequest, *, probes: bool = True) -> ExportPlan:
    """The plan of `request`: from the ledger and the specs, and probes if `probes`."""
    data_dir = DataDir(request.data_dir, lake_url=request.lake_url)
    with data_dir.read_coverage(request.account.name) as coverage:
        async with ClientContext(
            request.account, request.client_settings, SilentProgress()
        ) as client:
            plan = await Planner(request, client, coverage, probes=probes).plan()
            plan.cost_requests = client.stats.requests
            plan.cost_weight = sum(client.stats.weight.values())
    return plan


class Planner:
    """Walks an export's reads as the export would, counting instead of reading."""

    def __init__(
        self,
        request: ExportRequest,
        client: MarginClient,
        coverage: CoverageView,
        *,
        probes: bool,
    ) -> None:
        self.request = request
        self.client = client
        self.coverage = coverage
        self.probes = probes
        self.cutoff_ms = 0
        self.assets_seen: set[str] = set()
        self.scopes = Scopes((), ())
        budget = client.settings.budget
        self.result = ExportPlan(
            request.account.name, 0, probes, window_s=budget.window_s, share=budget.share
        )

    async def plan(self) -> ExportPlan:
        """Snapshots, the streams that name assets, the scopes, then the rest: as the export."""
        selected = self.request.selected_streams
        server_now = self.client.server_now_ms()
        until = self.request.until_ms
        self.cutoff_ms = server_now if until is None else min(server_now, until)
        self.result.cutoff_ms = self.cutoff_ms
        self._other(SPECS["server_time"])  # the run's own clock sync
        await self._generation_probe(selected)
        scoped = await needs_scopes(self.client, selected)
        account: dict[str, Any] = {}
        if SNAPSHOT_STREAM in selected or scoped:
            account = (await self.client.read_account()).data
        if SNAPSHOT_STREAM in selected:
            self._snapshots()
        streams = [s for s in selected if s != SNAPSHOT_STREAM]
        first = [s for s in streams if s in DISCOVERY_STREAMS]
        await all_or_stop(self._stream(s) for s in first)
        if scoped:
            snapshot = AccountSnapshot(self.cutoff_ms, account)
            self.scopes = await discover_scopes(
                self.client, self.request.account, self.coverage, snapshot, self.assets_seen
            )
            self._other(SPECS["all_pairs"])  # the pairs list discovery reads
        await all_or_stop(self._stream(s) for s in streams if s not in first)
        self.result.streams = dict(sorted(self.result.streams.items()))
        return self.result

    # -- calls of no history ----------------------------------------------------------------
    def _other(self, spec: EndpointSpec) -> None:
        """One reference call, of no stream (the server time, the pairs)."""
        self.result.other_requests += 1
        self.result.other_weight += spec.weight
        self._charge(spec, 1.0)

    async def _generation_probe(self, selected: Sequence[str]) -> None:
        """The call that tells API generations apart, when the export will make it."""
        if self.client.settings.api_generation != "auto":
            return
        history = [s for s in selected if s != SNAPSHOT_STREAM]
        if all(spec_for(s, "current") is spec_for(s, "legacy") for s in history):
            return
        probe = probe_spec()
        line = self._line(probe.stream or OTHER)
        line.add(Cost(0, 1.0), probe)
        self._charge(probe, 1.0)

    def _snapshots(self) -> None:
        """The live account (one call), and the daily snapshots not stored yet (2400 a call)."""
        line = self._line(SNAPSHOT_STREAM)
        line.scopes = 2
        account = SPECS["account"]
        line.add(Cost(1, 1.0), account)
        self._charge(account, 1.0)
        daily = SPECS["daily_snapshots"]
        start_ms, due = daily_snapshots_start(self.coverage, self.cutoff_ms)
        if not due:
            return
        start_ms, end_ms = self.client.readable_range(daily, start_ms, self.cutoff_ms)
        assert daily.max_window_ms is not None
        calls = len(plan_windows(start_ms, end_ms, daily.max_window_ms, aligned=False))
        line.add(Cost(calls, calls), daily)
        self._charge(daily, calls)

    # -- streams ----------------------------------------------------------------------------
    async def _stream(self, stream: str) -> None:
        spec = await self.client.spec(stream)
        scopes = self.scopes.values(spec)
        line = self._line(stream)
        line.scopes = len(scopes)
        costs = await all_or_stop(self._scope(spec, scope) for scope in scopes)
        for cost in costs:
            line.add(cost, spec)
            self._charge(spec, cost.requests)

    async def _scope(self, spec: EndpointSpec, scope: str | None) -> Cost:
        """One partition: its range as the export computes it, priced by its paging style."""
        stream, partition = spec.stream or "", scope or ""
        start_ms, continuing = read_start(
            self.request, self.coverage, spec, partition, self.cutoff_ms
        )
        start_ms, end_ms = self.client.readable_range(spec, start_ms, self.cutoff_ms)
        if start_ms >= end_ms:
            return Cost(0, 0.0)
        if spec.paging == "window":
            limit = spec.window_limit(scope is not None)
            assert limit is not None and spec.page_size is not None
            windows = plan_windows(start_ms, end_ms, limit)
            calls = sum(window_calls(w, spec.closed_periods_ms, spec.page_size) for w in windows)
            return Cost(len(windows), calls)
        if spec.paging in ("page", "window_cursor"):
            return await self._windows(spec, scope, start_ms, end_ms)
        from_id = self.coverage.cursor(stream, partition) if continuing else None
        return await self._walk(spec, scope, start_ms, end_ms, from_id)

    async def _windows(self, spec: EndpointSpec, scope: str | None, start: int, end: int) -> Cost:
        """Time windows, each read in answers of `page_size` rows (pages, or a cursor)."""
        limit = spec.window_limit(scope is not None)
        assert limit is not None and spec.page_size is not None
        windows = plan_windows(start, end, limit)
        density = self._ledger_density(spec, scope)
        known: dict[int, Sample] = {}
        if density is None and self.probes:
            chosen = spread(len(windows), PROBED_WINDOWS)
            found = await all_or_stop(self._probe(spec, scope, windows[i]) for i in chosen)
            known = dict(zip(chosen, found, strict=True))
            density = pooled(known.values())
        requests = 0.0
        for i, window in enumerate(windows):
            sample = known.get(i)
            if sample is not None and sample.whole:
                requests += answers_for(Rows(sample.rows), spec.page_size)
                continue
            local = pooled(nearest(known, i)) or density
            if local is not None:
                requests += answers_for(local.over(window.length_ms), spec.page_size)
            else:
                requests += 1
        exact = len(known) == len(windows) and all(s.whole for s in known.values())
        basis: Basis = "exact" if exact else "estimate" if density is not None else "floor"
        return Cost(len(windows), requests, basis, len(known))

    async def _walk(
        self, spec: EndpointSpec, scope: str | None, start: int, end: int, from_id: int | None
    ) -> Cost:
        """An id cursor's walk to the cutoff (`connectors.paging.IdCursorPaginator`)."""
        assert spec.page_size is not None
        short = end - start <= self.client.settings.cursor_probe_max_days * DAY_MS
        if from_id is None and short:
            return await self._probed_walk(spec, scope, start, end)
        density = self._ledger_density(spec, scope)
        trails = spec.stream in CURSOR_MAY_TRAIL
        if from_id is not None and density is not None and not (trails and self.probes):
            # it resumes just past the last run's cutoff, the high water
            high_water = self.coverage.high_water(spec.stream or "", scope or "") or start
            answers = answers_for(density.over(end - high_water), spec.page_size)
            return Cost(round(answers), answers, "floor" if trails else "estimate")
        if not self.probes:
            return Cost(1, 1.0, "floor")
        return await self._sampled_walk(spec, scope, end, from_id or 0)

    async def _sampled_walk(
        self, spec: EndpointSpec, scope: str | None, end: int, from_id: int
    ) -> Cost:
        """The walk's first answer (the export's own first call), then, where worth it, a few
        days spread over the rest: rows to the cutoff extrapolated from their density."""
        assert spec.page_size is not None and spec.cursor_param and spec.cursor_field
        limit = spec.page_size
        rows = await self._rows(spec, scope, [(spec.cursor_param, from_id)], limit)
        times = sorted(row_time(spec, r) for r in rows if int(r[spec.cursor_field]) >= from_id)
        if len(times) < limit or times[-1] >= end:
            return Cost(1, 1.0, samples=1)
        first = Sample(limit - 1, times[-1] - times[0], whole=False)
        rest_ms = end - times[-1]
        guess = pooled([first])
        if guess is None:  # a full answer within one millisecond: nothing to extrapolate by
            return Cost(1, 1.0, "floor", 1)
        rough = answers_for(guess.over(rest_ms), limit)
        days = min(MAX_DAY_SAMPLES, math.floor(SAMPLE_SHARE * rough))
        found = await all_or_stop(
            self._day(spec, scope, day) for day in _days_over(times[-1], end, days)
        )
        density = pooled([first, *found]) or guess
        answers = answers_for(Rows(limit) + density.over(rest_ms), limit)
        return Cost(round(answers), answers, "estimate", 1 + len(found))

    async def _probed_walk(
        self, spec: EndpointSpec, scope: str | None, start: int, end: int
    ) -> Cost:
        """A short range without a cursor: the export probes days for a first id, then walks.
        The plan reads the same days in order (with the largest limit) until one has rows."""
        assert spec.max_window_ms is not None and spec.page_size is not None
        days = plan_windows(start, end, spec.max_window_ms)
        density = self._ledger_density(spec, scope)
        if density is not None or not self.probes:
            return _expected_probed_walk(days, density, spec.page_size)
        for probes, day in enumerate(days, start=1):
            sample = await self._day(spec, scope, day)
            if sample.rows:
                rest = pooled([sample])
                assert rest is not None
                rows = Rows(sample.rows) + rest.over(end - day.end_ms)
                answers = answers_for(rows, spec.page_size)
                return Cost(round(answers), probes + answers, "estimate", probes)
        return Cost(0, len(days), samples=len(days))

    # -- probes -----------------------------------------------------------------------------
    async def _probe(self, spec: EndpointSpec, scope: str | None, window: Window) -> Sample:
        """A window's row count: a page's `total`, or a cursor's first answer (or its density
        when full). Streams read to discover assets ask a whole page (the same weight), whose
        rows name assets as the export's reads would."""
        assert spec.page_size is not None
        bounds = list(window.params().items())
        if spec.paging == "page":
            size = spec.page_size if spec.stream in DISCOVERY_STREAMS else 1
            doc = await self._call(spec, scope, [*bounds, ("current", 1), ("size", size)])
            self.assets_seen.update(named_assets(doc.get(spec.rows_key or "rows", [])))
            return Sample(int(doc["total"]), window.length_ms, whole=True)
        assert spec.cursor_param is not None
        rows = await self._rows(spec, scope, [*bounds, (spec.cursor_param, 0)], spec.page_size)
        self.assets_seen.update(named_assets(rows))
        if len(rows) < spec.page_size:
            return Sample(len(rows), window.length_ms, whole=True)
        newest = max(row_time(spec, r) for r in rows)
        return Sample(len(rows), newest - window.start_ms + 1, whole=False)

    async def _day(self, spec: EndpointSpec, scope: str | None, day: Window) -> Sample:
        """One day of an id stream with the largest limit: its count, or its density if full."""
        assert spec.page_size is not None
        rows = await self._rows(spec, scope, list(day.params().items()), spec.page_size)
        if len(rows) < spec.page_size:
            return Sample(len(rows), day.length_ms, whole=True)
        newest = max(row_time(spec, r) for r in rows)
        return Sample(len(rows), newest - day.start_ms + 1, whole=False)

    async def _rows(
        self, spec: EndpointSpec, scope: str | None, params: list[tuple[str, Any]], limit: int
    ) -> list[dict[str, Any]]:
        doc = await self._call(spec, scope, [*params, (spec.limit_param, limit)])
        return [normalise_row(spec, dict(r)) for r in doc] if isinstance(doc, list) else []

    async def _call(self, spec: EndpointSpec, scope: str | None, params: list[Any]) -> Any:
        named = [(spec.scope_param, scope)] if scope and spec.scope_param else []
        return await self.client.call(spec, [*named, *params])

    # -- the ledger ---------------------------------------------------------------------------
    def _ledger_density(self, spec: EndpointSpec, scope: str | None) -> Density | None:
        """Rows per millisecond earlier runs read in this partition lately (None: never read)."""
        marks = self.coverage.windows(spec.stream or "", scope or "")
        if not marks:
            return None
        newest = max(end for _, end, _ in marks)
        recent = [(s, e, n) for s, e, n in marks if e > newest - DENSITY_PAST_MS]
        return Density(sum(n for *_, n in recent), sum(e - s for s, e, _ in recent))

    # -- accounting ---------------------------------------------------------------------------
    def _line(self, stream: str) -> StreamPlan:
        return self.result.streams.setdefault(stream, StreamPlan(stream))

    def _charge(self, spec: EndpointSpec, requests: float) -> None:
        """Count planned requests on their rate-limit bucket, for the least wall time."""
        budget = self.client.settings.budget
        cap = budget.request_limits.get(spec.path, spec.request_limit)
        load = self.result.buckets.setdefault(
            spec.bucket,
            BucketLoad(
                weight_per_window=max(int(budget.limit(spec.weight_kind) * budget.share), 1),
                requests_per_window=max(int(cap * budget.share), 1) if cap else None,
            ),
        )
        load.requests += requests
        load.weight += requests * spec.weight


def _days_over(after_ms: int, end_ms: int, count: int) -> list[Window]:
    """`count` day windows spread evenly over (after_ms, end_ms), each inside it."""
    span = end_ms - after_ms
    if count <= 0 or span <= DAY_MS:
        return []
    step = (span - DAY_MS) / max(count - 1, 1)
    starts = sorted({after_ms + round(i * step) for i in range(count)})
    return [Window(s, min(s + DAY_MS, end_ms)) for s in starts]


def _expected_probed_walk(days: Sequence[Window], density: Density | None, limit: int) -> Cost:
    """The day probes and walk a short range takes, from a density (none: a floor)."""
    if not days:
        return Cost(0, 0)
    if density is None:
        return Cost(1, min(2, len(days)), "floor")
    rate = density.rows / density.span_ms if density.span_ms else 0.0
    probes, none_yet = 0.0, 1.0
    for day in days:  # each day is probed while all before it were empty
        probes += none_yet
        none_yet *= math.exp(-rate * day.length_ms)
    rows = density.over(days[-1].end_ms - days[0].start_ms)
    walk = (1 - none_yet) * answers_for(rows, limit)
    return Cost(round(walk), probes + walk, "estimate")


def planned_against_spent(plan: ExportPlan, summary: ExportSummary) -> None:
    """Put what the plan foresaw beside what the run spent, per stream and in total."""
    for name, line in plan.streams.items():
        result = summary.streams.get(name)
        if result is not None:
            result.planned_requests = round(line.requests)
            result.planned_weight = round(line.weight)
    summary.planned_requests = plan.requests
    summary.planned_weight = plan.weight
