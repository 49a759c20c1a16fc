"""Connector benchmark: export every stream of the `large` scenario against a scaled-down budget.

The simulator runs in its own process (`python -m simulator`, so client and server do not share
a GIL) with the `large` scenario (~1.2M records), 20 ms of added latency and a weight limit of
12 000 per 6-second window: Binance's per-minute budget, ten times faster, so the run takes
about a minute and a half rather than a quarter of an hour (allOrders alone needs ~150 000
weight). The client reads everything through `bench.history.read_history`.

Figures:
- `export_s`: wall time of the full export (all streams, all partitions).
- `bound_s`: the least time the server's limits allow for the weight and requests the export
  spent: max over endpoints of weight / (limit per second) and, for allOrders, requests / (60
  per window). `bound_at_share_s` is the same at the client's own share of the limit.
- `ratio`: export_s / bound_s (aim: within 1.2).
- `requests_per_1k_rows`, `weight_per_1k_rows`: what a row costs; `page_floor_requests`: the
  least requests any client could make for these rows, every page full at the endpoint's
  largest size and no window or partition to walk (`requests_over_floor`: the export's excess).
- `throttled`: 429s the server counted (must be 0).
- `naive_*`: a naive client (page size 10, the default cursor limit 500, one request at a
  time, waiting out 429s) reads, each for at most NAIVE_SLICE_S, the interest history, then
  the BTCUSDT trades and orders, in the same run. Its export time is extrapolated stream by
  stream, one after the other as it would read them: the stream's row count over the rows per
  second it managed (paged streams at the interest rate), but never less than the limits allow
  for the calls it would make (its measured burst can outrun the budget for a few windows).
  This flatters it: it ignores the extra windows and partitions it would also walk.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.history import read_history
from bench.sim_process import simulator_process
from connectors import SPECS, BudgetSettings, ClientSettings, MarginClient, StreamBatch, spec_for
from models import DAY_MS
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET

WEIGHT_LIMIT = 12_000
WINDOW_MS = 6_000
LATENCY_MS = 20
SHARE = 0.95  # safe: the client counts weight until one window after each answer
ORDERS_REQUEST_CAP = 60  # the simulator keeps allOrders' 60 requests per window unscaled
NAIVE_SLICE_S = 15.0
# what a client gets when it sends no size / limit (the capital flow's default is 500); a
# windowed read's answer is whole, as the export's
NAIVE_PAGE = {"page": 10, "id": 500, "window_cursor": 500}
TARGET_RATIO = 1.2


def budget_settings(weight_limit: int, window_ms: int, share: float) -> BudgetSettings:
    return BudgetSettings(
        share=share,
        window_s=window_ms / 1000,
        ip_limit=weight_limit,
        uid_limit=weight_limit * 15,
        api_limit=weight_limit // 2,
    )


async def export_all(url: str, settings: ClientSettings) -> tuple[float, Counter[str], int]:
    """Read every stream from the account's opening to now; (seconds, rows per stream, end)."""
    rows: Counter[str] = Counter()

    def count(batch: StreamBatch) -> None:
        rows[batch.stream] += len(batch.rows)

    async with MarginClient(url, DEFAULT_API_KEY, DEFAULT_API_SECRET, settings) as client:
        end = client.server_now_ms()
        start = end - 125 * DAY_MS  # the large scenario spans 120 days
        began = time.perf_counter()
        await read_history(client, start, end, count)
        return time.perf_counter() - began, rows, end


def stats(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_sim/stats", timeout=30).json()  # type: ignore[no-any-return]


def reset_stats(url: str) -> None:
    httpx.post(f"{url}/_sim/reset-stats", timeout=30)


def bound_seconds(server: dict[str, Any], weight_limit: int, window_ms: int, share: float) -> float:
    """The least time the limits allow for what the server counted, endpoint by endpoint."""
    per_second = weight_limit * share / (window_ms / 1000)
    worst = 0.0
    for name, endpoint in server["endpoints"].items():
        need = endpoint["weight"] / per_second
        if name == f"GET {SPECS['orders'].path}":
            cap_per_second = ORDERS_REQUEST_CAP * share / (window_ms / 1000)
            need = max(need, endpoint["requests"] / cap_per_second)
        worst = max(worst, need)
    return worst


class NaiveClient:
    """What a first attempt looks like: default page sizes, one request at a time."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        server = self.http.get("/api/v3/time").json()["serverTime"]
        self.offset = server - time.time_ns() // 1_000_000

    def get(self, path: str, **params: Any) -> Any:
        while True:
            stamp = time.time_ns() // 1_000_000 + self.offset
            query = urlencode({**params, "timestamp": stamp})
            signature = hmac.new(DEFAULT_API_SECRET.encode(), query.encode(), hashlib.sha256)
            response = self.http.get(
                f"{path}?{query}&signature={signature.hexdigest()}",
                headers={"X-MBX-APIKEY": DEFAULT_API_KEY},
            )
            if response.status_code == 429:
                time.sleep(max(1, int(response.headers.get("Retry-After", "1"))))
                continue
            response.raise_for_status()
            return response.json()

    def interest(self, end: int, deadline: float) -> int:
        """Rows read from 30-day windows, newest first, size 10, until the deadline."""
        rows = 0
        window_end = end
        while time.perf_counter() < deadline:
            window = {"startTime": window_end - 30 * DAY_MS + 1, "endTime": window_end}
            page = 1
            while time.perf_counter() < deadline:
                doc = self.get(SPECS["interest"].path, current=page, **window)
                rows += len(doc["rows"])
                if page * 10 >= doc["total"]:
                    break
                page += 1
            window_end -= 30 * DAY_MS
        return rows

    def cursor(self, path: str, cursor: str, field: str, deadline: float) -> int:
        rows, next_id = 0, 0
        while time.perf_counter() < deadline:
            page = self.get(path, symbol="BTCUSDT", **{cursor: next_id})
            rows += len(page)
            if len(page) < 500:
                break
            next_id = max(int(r[field]) for r in page) + 1
        return rows

    def close(self) -> None:
        self.http.close()


def naive_rates(url: str, end: int) -> dict[str, float]:
    """Rows per second the naive client manages on each kind of stream."""
    naive = NaiveClient(url)
    try:
        rates = {}
        began = time.perf_counter()
        rows = naive.interest(end, began + NAIVE_SLICE_S)
        rates["interest"] = rows / (time.perf_counter() - began)
        for stream, cursor, field in (("trades", "fromId", "id"), ("orders", "orderId", "orderId")):
            began = time.perf_counter()
            rows = naive.cursor(SPECS[stream].path, cursor, field, began + NAIVE_SLICE_S)
            rates[stream] = rows / (time.perf_counter() - began)
        return rates
    finally:
        naive.close()


def naive_seconds(
    rows: Counter[str], rates: dict[str, float], weight_limit: int, window_ms: int
) -> float:
    """The naive client's export time, stream after stream (see the module docstring)."""
    window_s = window_ms / 1000
    total = 0.0
    for stream, count in rows.items():
        spec = spec_for(stream, "current")
        calls = -(-count // (NAIVE_PAGE.get(spec.paging) or spec.page_size or 1))
        floor = calls * spec.weight / (weight_limit / window_s)
        if spec.request_limit is not None:
            floor = max(floor, calls / (ORDERS_REQUEST_CAP / window_s))
        total += max(count / rates.get(stream, rates["interest"]), floor)
    return total


def page_floor(rows: Counter[str]) -> int:
    """Requests if every page were full at its endpoint's largest size (windows ignored)."""
    total = 0
    for stream, count in rows.items():
        size = spec_for(stream, "current").page_size or 1
        total += -(-count // size)
    return total


def run(
    weight_limit: int = WEIGHT_LIMIT,
    window_ms: int = WINDOW_MS,
    latency_ms: int = LATENCY_MS,
    share: float = SHARE,
) -> dict[str, Any]:
    settings = ClientSettings(
        api_generation="current", budget=budget_settings(weight_limit, window_ms, share)
    )
    limits = {"weight_limit": weight_limit, "weight_window_ms": window_ms, "latency_ms": latency_ms}
    with simulator_process("large", 1, **limits) as url:
        reset_stats(url)
        export_s, rows, end = asyncio.run(export_all(url, settings))
        server = stats(url)
        rates = naive_rates(url, end)
    bound = bound_seconds(server, weight_limit, window_ms, 1.0)
    naive_s = naive_seconds(rows, rates, weight_limit, window_ms)
    return {
        "scenario": "large, 20 ms latency",
        "limit": f"{weight_limit} weight per {window_ms} ms window, client share {share}",
        "rows": dict(rows),
        "requests": server["totals"]["requests"],
        "weight": server["totals"]["weight"],
        "throttled": server["totals"]["throttled"],
        "requests_per_1k_rows": round(1000 * server["totals"]["requests"] / sum(rows.values()), 2),
        "weight_per_1k_rows": round(1000 * server["totals"]["weight"] / sum(rows.values()), 1),
        "page_floor_requests": page_floor(rows),
        "requests_over_floor": round(server["totals"]["requests"] / page_floor(rows), 2),
        "export_s": round(export_s, 1),
        "bound_s": round(bound, 1),
        "bound_at_share_s": round(bound_seconds(server, weight_limit, window_ms, share), 1),
        "ratio": round(export_s / bound, 3),
        "naive_rows_per_s": {k: round(v, 1) for k, v in rates.items()},
        "naive_extrapolated_s": round(naive_s),
        "speedup_vs_naive": round(naive_s / export_s, 1),
        "ok": export_s <= TARGET_RATIO * bound and server["totals"]["throttled"] == 0,
    }


if __name__ == "__main__":
    print(run())
