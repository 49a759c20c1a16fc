"""Simulator benchmark: how long the `large` scenario (over a million records) takes to build
and serve, and how fast a 100-row history page comes back over loopback HTTP."""

from __future__ import annotations

import hashlib
import hmac
import statistics
import time
from collections.abc import Callable
from urllib.parse import urlencode

import httpx

from bench.sim_process import simulator_process
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.params import DAY_MS, HOUR_MS

START_BOUND_S = 60.0
PAGE_MEDIAN_BOUND_MS = 5.0
PAGE_P95_BOUND_MS = 20.0  # the tail is mostly the OS scheduler on a busy 2-core machine
REQUESTS = 200
WARM_UP = 20
INTEREST = "/sapi/v1/margin/interestHistory"
MY_TRADES = "/sapi/v1/margin/myTrades"


def signed_get(http: httpx.Client, offset_ms: int) -> Callable[..., httpx.Response]:
    def get(path: str, **params: object) -> httpx.Response:
        query = urlencode({**params, "timestamp": int(time.time() * 1000) + offset_ms})
        signature = hmac.new(DEFAULT_API_SECRET.encode(), query.encode(), hashlib.sha256)
        url = f"{path}?{query}&signature={signature.hexdigest()}"
        return http.get(url, headers={"X-MBX-APIKEY": DEFAULT_API_KEY})

    return get


def page_latencies(
    get: Callable[..., httpx.Response], path: str, pages: int, **params: object
) -> list[float]:
    """Milliseconds per request for REQUESTS 100-row answers (paged lists cycle pages)."""
    timings = []
    for i in range(WARM_UP + REQUESTS):
        paging = {"current": 1 + i % pages, "size": 100} if "limit" not in params else {}
        began = time.perf_counter()
        response = get(path, **paging, **params)
        elapsed = (time.perf_counter() - began) * 1000
        body = response.json() if response.status_code == 200 else None
        rows = body["rows"] if isinstance(body, dict) else body
        if rows is None or len(rows) != 100:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
        if i >= WARM_UP:
            timings.append(elapsed)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 3),
    }


def run() -> dict[str, object]:
    began = time.perf_counter()
    with simulator_process("large", weight_limit=10**9) as url:
        start_s = time.perf_counter() - began
        with httpx.Client(base_url=url, timeout=30) as http:
            offset = http.get("/api/v3/time").json()["serverTime"] - int(time.time() * 1000)
            get = signed_get(http, offset)
            now = int(time.time() * 1000) + offset
            window = {"startTime": now - 30 * DAY_MS + HOUR_MS, "endTime": now}
            total = get(INTEREST, size=1, **window).json()["total"]
            interest = page_latencies(get, INTEREST, total // 100, **window)
            trades = page_latencies(get, MY_TRADES, 1, symbol="BTCUSDT", limit=100)
    interest_summary = summary(interest)
    return {
        "scenario": "large (about 1.2M records: orders and trades, 16k interest rows)",
        "start_large_s": round(start_s, 2),
        "start_bound_s": START_BOUND_S,
        "interest_rows_in_window": total,
        "interest_page_100": interest_summary,
        "my_trades_100": summary(trades),
        "page_bounds_ms": {"median": PAGE_MEDIAN_BOUND_MS, "p95": PAGE_P95_BOUND_MS},
        "ok": start_s < START_BOUND_S
        and interest_summary["median_ms"] < PAGE_MEDIAN_BOUND_MS
        and interest_summary["p95_ms"] < PAGE_P95_BOUND_MS,
    }


if __name__ == "__main__":
    print(run())
