"""Plan benchmark: how close `export --plan` comes to what the export then spends.

Each scenario is served by a simulator process of its own with Binance's weight budget ten
times faster (12 000 per 6-second window, as `bench.bench_connector`). A first export (from
further back than the account's opening: every stream reads all its retention allows) and the
next one (what an hourly run reads) are each planned, then run; the simulator counts what the
export spent. Figures per scenario and run:

- `planned_requests` / `spent_requests`, `planned_weight` / `spent_weight` and their ratios
  (the issue asks for within 10 %);
- `plan_requests`, `plan_weight`: what making the plan itself spent (its probes);
- `least_wall_s`: the plan's least wall time under the budget; `export_s`: the export's.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bench_connector import budget_settings
from bench.sim_process import simulator_process
from connectors import ClientSettings
from flows.config import Account, Secret
from flows.export import ExportRequest, export_account
from flows.plan import plan_export
from models import DAY_MS
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET

WEIGHT_LIMIT = 12_000
WINDOW_MS = 6_000
SHARE = 0.95
# further back than each account's opening
SINCE_DAYS = {"veteran": 4 * 365, "large": 125, "default": 90}


def run(scenarios: tuple[str, ...] = ("veteran", "large")) -> dict[str, Any]:
    """Both scenarios; `large` takes minutes (its first export lands ~1.2 M rows)."""
    return {scenario: measure(scenario) for scenario in scenarios}


def measure(scenario: str) -> dict[str, Any]:
    settings = ClientSettings(
        api_generation="current", budget=budget_settings(WEIGHT_LIMIT, WINDOW_MS, SHARE)
    )
    with simulator_process(
        scenario, 1, weight_limit=WEIGHT_LIMIT, weight_window_ms=WINDOW_MS
    ) as url:
        account = Account("main", Secret(DEFAULT_API_KEY), Secret(DEFAULT_API_SECRET), base_url=url)
        now = httpx.get(f"{url}/api/v3/time").json()["serverTime"]
        with tempfile.TemporaryDirectory() as data:
            request = ExportRequest(
                account,
                Path(data),
                since_ms=now - SINCE_DAYS[scenario] * DAY_MS,
                client_settings=settings,
            )
            return {run: plan_and_export(url, request) for run in ("first", "next")}


def plan_and_export(url: str, request: ExportRequest) -> dict[str, Any]:
    plan = asyncio.run(plan_export(request))
    httpx.post(f"{url}/_sim/reset-stats").raise_for_status()
    began = time.perf_counter()
    summary = asyncio.run(export_account(request))
    export_s = time.perf_counter() - began
    spent = httpx.get(f"{url}/_sim/stats", timeout=30).json()["totals"]
    return {
        "planned_requests": plan.requests,
        "spent_requests": spent["requests"],
        "requests_ratio": round(plan.requests / max(spent["requests"], 1), 4),
        "planned_weight": plan.weight,
        "spent_weight": spent["weight"],
        "weight_ratio": round(plan.weight / max(spent["weight"], 1), 4),
        "retries": summary.retries,  # spent, but no plan can foresee them
        "errors": summary.errors,
        "plan_requests": plan.cost_requests,
        "plan_weight": plan.cost_weight,
        "least_wall_s": plan.least_wall_s,
        "export_s": round(export_s, 1),
        "per_stream": {
            name: [round(line.requests), summary.streams[name].requests]
            for name, line in plan.streams.items()
            if name in summary.streams
        },
    }
