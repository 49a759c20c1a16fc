"""`margin-etl export --plan`: what a run will cost, printed before paying it."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.table import Table

from flows.export import ExportRequest
from flows.plan import ExportPlan, plan_export
from models import from_ms


def run_plan(request: ExportRequest, console: Console | None = None) -> ExportPlan:
    """Plan the export `request` describes (probes allowed) and print it; nothing is written."""
    plan = asyncio.run(plan_export(request))
    (console or Console()).print(plan_table(plan))
    return plan


def plan_table(plan: ExportPlan) -> Table:
    """Per stream and in total: windows, requests, weight and how sure each figure is."""
    cutoff = from_ms(plan.cutoff_ms).isoformat(timespec="seconds")
    table = Table(title=f"plan of an export of {plan.account} up to {cutoff}")
    for column in ("stream", "partitions", "windows", "requests", "weight", "basis"):
        table.add_column(column, justify="left" if column in ("stream", "basis") else "right")
    figures = plan.as_dict()
    for name, line in figures["streams"].items():
        basis = line["basis"]
        if line["samples"]:
            basis += f" ({line['samples']} probes)"
        table.add_row(
            name,
            str(line["scopes"]),
            f"{line['windows']:,}",
            f"{line['requests']:,}",
            f"{line['weight']:,}",
            basis,
        )
    other = figures["other"]
    table.add_row("(server time, pairs)", "", "", f"{other['requests']:,}", f"{other['weight']:,}")
    table.add_section()
    table.add_row(
        "total", "", f"{plan.windows:,}", f"{plan.requests:,}", f"{plan.weight:,}", plan.basis
    )
    bucket, windows = plan.bottleneck()
    table.caption = (
        f"at least {duration(plan.least_wall_s)} under the weight budget "
        f"({windows} budget window(s) of {plan.window_s:g} s on {bucket or 'no bucket'}); "
        f"this plan spent {plan.cost_requests} requests, weight {plan.cost_weight}"
    )
    return table


def duration(seconds: float) -> str:
    """A wall time as a person reads it: 0 s, 45 s, 3 min 20 s, 2 h 5 min."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
