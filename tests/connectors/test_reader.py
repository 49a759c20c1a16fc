"""The reader's choices: API generation, partitions worth reading, snapshots, retention."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from connectors import AccountSnapshot, MarginClient, Scopes
from connectors.specs import SPECS, spec_for
from models import DAY_MS
from tests.connectors.fake_binance import FakeBinance, client_for, now_ms

BORROW_REPAY = "/sapi/v1/margin/borrow-repay"
LOAN = "/sapi/v1/margin/loan"


def run(fake: FakeBinance, action: Any, **kw: Any) -> Any:
    async def scenario() -> Any:
        async with client_for(fake, **kw) as client:
            return await action(client)

    return asyncio.run(scenario())


def empty_page(params: dict[str, str]) -> dict[str, Any]:
    return {"rows": [], "total": 0}


@pytest.mark.parametrize(("serves_current", "expected"), [(True, "current"), (False, "legacy")])
def test_auto_probes_the_generation_once(serves_current: bool, expected: str) -> None:
    fake = FakeBinance()
    fake.route(LOAN, empty_page)
    if serves_current:
        fake.route(BORROW_REPAY, empty_page)

    async def read_loans_twice(client: MarginClient) -> list[str]:
        end = client.server_now_ms()
        apis: list[str] = []
        for _ in range(2):
            async for batch in client.read_stream("loans", "BTC", end - DAY_MS, end):
                apis.append(batch.api)
        return apis

    assert run(fake, read_loans_twice, api_generation="auto") == [expected, expected]
    probes = [r for r in fake.requests if r.url.path == BORROW_REPAY and b"size=1&" in r.url.query]
    assert len(probes) == 1
    assert fake.calls(LOAN if expected == "legacy" else BORROW_REPAY) == 2 + (expected != "legacy")


def test_borrow_repay_reads_send_type_asset_and_30_day_windows() -> None:
    fake = FakeBinance()
    fake.route(BORROW_REPAY, empty_page)
    end = now_ms() // DAY_MS * DAY_MS

    async def read(client: MarginClient) -> None:
        async for _ in client.read_stream("repays", "USDT", end - 60 * DAY_MS, end):
            pass

    run(fake, read)
    queries = [r.url.query.decode() for r in fake.requests if r.url.path == BORROW_REPAY]
    assert len(queries) == 2
    assert all(q.startswith("type=REPAY&asset=USDT&startTime=") for q in queries)
    assert all("&size=100&" in q for q in queries)


def test_interest_older_than_retention_is_not_asked_for() -> None:
    fake = FakeBinance()
    fake.route(SPECS["interest"].path, empty_page)

    async def read(client: MarginClient) -> list[int]:
        end = client.server_now_ms()
        starts = []
        async for batch in client.read_stream("interest", None, end - 200 * DAY_MS, end):
            starts.append(batch.covered.start_ms)
        return starts

    starts = run(fake, read)
    assert now_ms() - starts[0] < 90 * DAY_MS
    # 90 days in windows of at most 30 that end on midnights: 3 or 4 by the time of day
    assert all(later - earlier <= 30 * DAY_MS for earlier, later in itertools.pairwise(starts))
    assert len(starts) <= 4


def test_discovery_crosses_known_assets_with_margin_pairs() -> None:
    fake = FakeBinance()
    fake.route(
        SPECS["all_pairs"].path,
        lambda params: [
            {"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT"},
            {"symbol": "ETHUSDT", "base": "ETH", "quote": "USDT"},
            {"symbol": "ETHBTC", "base": "ETH", "quote": "BTC"},
            {"symbol": "DOGEUSDT", "base": "DOGE", "quote": "USDT"},
        ],
    )
    account = AccountSnapshot(
        0,
        {
            "userAssets": [
                {"asset": "BTC", "free": "0.1", "locked": "0", "borrowed": "0", "interest": "0"},
                {"asset": "USDT", "free": "0", "locked": "0", "borrowed": "5", "interest": "0"},
                {"asset": "DOGE", "free": "0", "locked": "0", "borrowed": "0", "interest": "0"},
            ]
        },
    )

    async def discover(client: MarginClient) -> Scopes:
        return await client.discover_scopes(
            account=account, symbols=["XRPUSDT"], rows=[{"asset": "ETH"}]
        )

    found = run(fake, discover)
    assert found.assets == ("BTC", "ETH", "USDT")  # DOGE: zero everywhere, never seen
    assert found.symbols == ("BTCUSDT", "ETHBTC", "ETHUSDT", "XRPUSDT")
    assert found.values(spec_for("loans", "current")) == ("BTC", "ETH", "USDT")
    assert found.values(spec_for("transfers", "current")) == ("ROLL_IN", "ROLL_OUT")
    assert found.values(spec_for("interest", "current")) == (None,)


def test_daily_snapshots_are_read_in_one_window_within_retention() -> None:
    fake = FakeBinance()
    asked: list[dict[str, str]] = []

    def snapshots(params: dict[str, str]) -> dict[str, Any]:
        asked.append(params)
        day = int(params["startTime"]) // DAY_MS * DAY_MS + DAY_MS - 1000
        vos = [{"type": "margin", "updateTime": day + i * DAY_MS, "data": {}} for i in range(3)]
        return {"code": 200, "msg": "", "snapshotVos": vos[::-1]}

    fake.route(SPECS["daily_snapshots"].path, snapshots)

    async def read(client: MarginClient) -> list[dict[str, Any]]:
        end = client.server_now_ms()
        return await client.read_daily_snapshots(end - 90 * DAY_MS, end)

    vos = run(fake, read)
    assert len(asked) == 1 and asked[0]["type"] == "MARGIN" and asked[0]["limit"] == "30"
    assert int(asked[0]["endTime"]) - int(asked[0]["startTime"]) < 30 * DAY_MS
    times = [v["updateTime"] for v in vos]
    assert times == sorted(times) and len(times) == 3
