"""The connector against the simulator over loopback HTTP: the export equals the truth.

Every history stream of the `default` scenario is read (all partitions, concurrently) and
compared with the simulator's truth files: same rows, same values, no duplicates, under the
fault profiles none, flaky and hostile. The budget is checked against the server's own count.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.history import read_history
from connectors import RETENTION_MARGIN_MS, MarginClient, StreamBatch
from connectors.budget import BudgetSettings
from connectors.client import ClientSettings
from connectors.errors import EndpointNotFound, NoMarginAccount
from connectors.retry import RetrySettings
from connectors.specs import spec_for
from models import DAY_MS
from simulator.auth import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    NO_MARGIN_API_KEY,
    NO_MARGIN_API_SECRET,
    ApiCredential,
)
from simulator.server import RunningSimulator
from tests.fixtures_sim import SimFactory

TEST_RETRY = RetrySettings(
    max_attempts=12,
    deadline_s=60,
    backoff_base_s=0.002,
    backoff_max_s=0.02,
    rate_limit_floor_s=0.01,
    retry_after_cap_s=0.05,  # the fault profiles' 429 bursts say up to 2 s: tests do not wait
    ban_floor_s=0.05,
)
# the natural key of each stream's truth rows (interest rows carry a txId in the simulator)
KEYS = {
    "loans": ("txId",),
    "repays": ("txId",),
    "interest": ("txId",),
    "transfers": ("txId",),
    "liquidations": ("orderId",),
    "orders": ("symbol", "orderId"),
    "trades": ("symbol", "id"),
}
TYPED_STREAMS = tuple(KEYS)  # the typed history; the new streams are tested with the export

Row = dict[str, Any]


def settings(api: str = "auto", **kw: Any) -> ClientSettings:
    return ClientSettings(api_generation=api, retry=TEST_RETRY, **kw)  # type: ignore[arg-type]


def client(sim: RunningSimulator, api: str = "auto", **kw: Any) -> MarginClient:
    return MarginClient(sim.url, DEFAULT_API_KEY, DEFAULT_API_SECRET, settings(api, **kw))


def export(sim: RunningSimulator, api: str = "auto") -> tuple[int, dict[str, list[Row]], Any]:
    """Read every stream from before the account opened to now; rows per stream."""
    rows: dict[str, list[Row]] = {s: [] for s in TYPED_STREAMS}

    def sink(batch: StreamBatch) -> None:
        rows[batch.stream].extend(batch.rows)

    async def run() -> tuple[int, Any]:
        async with client(sim, api) as margin:
            start = sim.exchange.opened_ms - DAY_MS
            end = margin.server_now_ms()
            await read_history(margin, start, end, sink, streams=TYPED_STREAMS)
            return end, margin.stats

    end, stats = asyncio.run(run())
    return end, rows, stats


def truth(sim: RunningSimulator, directory: Path) -> dict[str, list[Row]]:
    sim.app.write_truth(directory)
    return {
        s: [json.loads(line) for line in (directory / f"{s}.jsonl").read_text().splitlines()]
        for s in TYPED_STREAMS
    }


def key(stream: str, row: Row) -> tuple[Any, ...]:
    return tuple(row[k] for k in KEYS[stream])


def same_value(field: str, mine: Any, real: Any, seconds: bool) -> bool:
    if field == "status" and (mine, real) == ("PENDING", "CONFIRMED"):
        return True  # confirmed between our read and the truth
    if field == "timestamp" and seconds:
        return bool(mine == real // 1000 * 1000)  # the server sent seconds: ms are gone
    return bool(mine == real)


def assert_equal_to_truth(
    stream: str, mine: list[Row], real: list[Row], end: int, seconds: bool = False
) -> None:
    time_field = spec_for(stream, "current").time_field
    assert time_field is not None
    counts = Counter(key(stream, r) for r in mine)
    assert not [k for k, n in counts.items() if n > 1], f"{stream}: duplicates"
    expected = {key(stream, r): r for r in real if r[time_field] < end}
    got = {key(stream, r): r for r in mine}
    assert got.keys() == expected.keys(), f"{stream}: different rows"
    for k, real_row in expected.items():
        if stream == "orders" and real_row["updateTime"] >= end:
            continue  # it changed after we read it
        for field, value in real_row.items():
            assert same_value(field, got[k].get(field), value, seconds), (stream, k, field)


@pytest.fixture(scope="module")
def faulty_sims(sim_factory: SimFactory) -> dict[str, RunningSimulator]:
    return {
        profile: sim_factory(scenario="default", seed=1, faults=profile)
        for profile in ("flaky", "hostile")
    }


@pytest.mark.parametrize("profile", ["none", "flaky", "hostile"])
def test_reading_every_stream_equals_the_truth(
    profile: str,
    sim: RunningSimulator,
    faulty_sims: dict[str, RunningSimulator],
    tmp_path: Path,
) -> None:
    running = sim if profile == "none" else faulty_sims[profile]
    end, mine, stats = export(running)
    real = truth(running, tmp_path)
    assert sum(len(r) for r in mine.values()) > 1000  # a real history, not an empty one
    for stream in TYPED_STREAMS:
        seconds = stream == "transfers" and profile == "hostile"
        assert_equal_to_truth(stream, mine[stream], real[stream], end, seconds)
    if profile != "none":
        assert stats.retries > 0  # the faults were met, and overcome


def test_the_legacy_generation_reads_the_same_loans_and_repays(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(scenario="default", seed=1, api_generation="seed")
    rows: dict[str, list[Row]] = {"loans": [], "repays": []}
    apis: set[str] = set()

    def sink(batch: StreamBatch) -> None:
        rows[batch.stream].extend(batch.rows)
        apis.add(batch.api)

    async def run() -> int:
        async with client(sim, "legacy") as margin:
            end = margin.server_now_ms()
            account = await margin.read_account()
            assets = [a["asset"] for a in account.data["userAssets"]]
            start = sim.exchange.opened_ms - DAY_MS
            await read_history(margin, start, end, sink, streams=rows, assets=assets)
            return end

    end = asyncio.run(run())
    real = truth(sim, tmp_path)
    assert apis == {"legacy"}
    for stream in rows:
        assert_equal_to_truth(stream, rows[stream], real[stream], end)


def sim_stats(sim: RunningSimulator) -> dict[str, Any]:
    return httpx.get(f"{sim.url}/_sim/stats").json()  # type: ignore[no-any-return]


def test_the_budget_is_never_exceeded_even_when_tiny(sim_factory: SimFactory) -> None:
    window_ms, limit = 250, 400  # allOrders (200) fits once per window
    small = sim_factory(scenario="tiny", seed=3, weight_limit=limit, weight_window_ms=window_ms)
    budget = BudgetSettings(
        window_s=window_ms / 1000, ip_limit=limit, uid_limit=limit * 15, api_limit=limit // 2
    )

    async def hammer() -> None:
        async with MarginClient(
            small.url, DEFAULT_API_KEY, DEFAULT_API_SECRET, settings(budget=budget)
        ) as margin:
            now = margin.server_now_ms()
            reads = [margin.read_account() for _ in range(30)]
            # over 7 days: the id cursors walk from 0 instead of probing day by day
            start = now - 10 * DAY_MS
            await asyncio.gather(*reads, read_history(margin, start, now, lambda batch: None))

    asyncio.run(hammer())
    totals = sim_stats(small)["totals"]
    assert totals["throttled"] == 0 and totals["banned"] == 0
    assert totals["weight"] > 4 * limit  # the limit really was the constraint


def test_ed25519_keys_sign_requests_the_simulator_accepts(sim_factory: SimFactory) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    running = sim_factory(
        scenario="tiny", seed=2, credentials=(ApiCredential("ed-key", ed25519_public_key=public),)
    )

    async def read() -> dict[str, Any]:
        async with MarginClient(running.url, "ed-key", pem, settings()) as margin:
            return (await margin.read_account()).data

    assert "userAssets" in asyncio.run(read())


def test_an_account_without_margin_stops_with_a_clear_error(sim: RunningSimulator) -> None:
    async def read() -> None:
        async with MarginClient(sim.url, NO_MARGIN_API_KEY, NO_MARGIN_API_SECRET, settings()) as m:
            await m.read_account()

    with pytest.raises(NoMarginAccount, match="-3003"):
        asyncio.run(read())


def test_removed_endpoints_fail_loudly_on_a_server_without_them(
    sim_factory: SimFactory,
) -> None:
    modern = sim_factory(scenario="tiny", seed=4, api_generation="current")

    async def read(api: str) -> str:
        async with client(modern, api) as margin:
            now = margin.server_now_ms()
            async for _ in margin.read_stream("loans", "USDT", now - DAY_MS, now):
                pass
            return await margin.api_generation()

    assert asyncio.run(read("auto")) == "current"
    with pytest.raises(EndpointNotFound):
        asyncio.run(read("legacy"))


def test_snapshots_equal_the_truth(sim: RunningSimulator, tmp_path: Path) -> None:
    async def read() -> tuple[Any, list[dict[str, Any]], int]:
        async with client(sim) as margin:
            end = margin.server_now_ms()
            vos = await margin.read_daily_snapshots(end - 40 * DAY_MS, end)
            return await margin.read_account(), vos, end

    for _ in range(2):  # an hour may turn (and interest accrue) between read and truth
        account, vos, end = asyncio.run(read())
        sim.app.write_truth(tmp_path)
        real_account = json.loads((tmp_path / "account.json").read_text())
        if account.data == real_account:
            break
    assert account.data == real_account
    lines = (tmp_path / "account_snapshots.jsonl").read_text().splitlines()
    oldest = end - 30 * DAY_MS + RETENTION_MARGIN_MS  # what the reader asks for
    recent = [vo for vo in map(json.loads, lines) if oldest <= vo["updateTime"] < end]
    assert vos == recent and len(vos) >= 28
