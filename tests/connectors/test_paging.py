"""Paging reads every row exactly once, notices rows that move, and walks id cursors cheaply."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import MarginClient, StreamBatch
from connectors.errors import PagingUnstable
from models import DAY_MS, HOUR_MS
from tests.connectors.fake_binance import FakeBinance, client_for, now_ms

INTEREST = "/sapi/v1/margin/interestHistory"
TRANSFERS = "/sapi/v1/margin/transfer"
TRADES = "/sapi/v1/margin/myTrades"

Row = dict[str, Any]


def day_floor(ms: int) -> int:
    return ms // DAY_MS * DAY_MS


def page_route(rows: list[Row], time_field: str, *, capped_total: int | None = None) -> Any:
    """current/size paging over `rows` as Binance does it: inclusive bounds, newest first."""

    def handle(params: dict[str, str]) -> Row:
        start, end = int(params["startTime"]), int(params["endTime"])
        assert 0 <= end - start < 30 * DAY_MS
        chosen = [r for r in rows if start <= r[time_field] // 1 <= end]
        chosen.sort(key=lambda r: r[time_field], reverse=True)
        current, size = int(params["current"]), int(params["size"])
        assert size == 100
        total = len(chosen) if capped_total is None else min(len(chosen), capped_total)
        return {"rows": chosen[(current - 1) * size : current * size], "total": total}

    return handle


def interest_rows(count: int, start: int, span: int, seed: int = 3) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        hour = start + rng.randrange(span // HOUR_MS) * HOUR_MS
        rows.append(
            {
                "asset": rng.choice(["BTC", "USDT"]),
                "interest": "0.00000100",
                "interestRate": "0.00030000",
                "principal": "1.00000000",
                "type": "PERIODIC",
                "interestAccuredTime": hour,
            }
        )
    rows += [dict(rows[0]), dict(rows[0])]  # identical rows are real rows, all of them kept
    return rows


async def collect(client: MarginClient, *args: Any, **kw: Any) -> list[StreamBatch]:
    return [batch async for batch in client.read_stream(*args, **kw)]


def read(fake: FakeBinance, *args: Any, **kw: Any) -> list[StreamBatch]:
    async def scenario() -> list[StreamBatch]:
        async with client_for(fake) as client:
            return await collect(client, *args, **kw)

    return asyncio.run(scenario())


def as_multiset(rows: list[Row]) -> Counter[str]:
    return Counter(repr(sorted(r.items())) for r in rows)


def assert_contiguous(batches: list[StreamBatch], start: int, end: int) -> None:
    assert batches[0].covered.start_ms == start
    assert batches[-1].covered.end_ms == end
    for before, after in itertools.pairwise(batches):
        assert before.covered.end_ms == after.covered.start_ms


def test_page_numbers_read_every_row_exactly_once() -> None:
    end = day_floor(now_ms())
    start = end - 75 * DAY_MS
    rows = interest_rows(1234, start, 75 * DAY_MS)
    fake = FakeBinance()
    fake.route(INTEREST, page_route(rows, "interestAccuredTime"))
    batches = read(fake, "interest", None, start, end)
    got = [r for b in batches for r in b.rows]
    assert as_multiset(got) == as_multiset(rows)
    assert_contiguous(batches, start, end)
    assert all(b.covered.length_ms <= 30 * DAY_MS for b in batches)
    # the same endpoint in both generations: no probe, and the rows say so
    assert all(b.partition == "" and b.api == "both" for b in batches)
    # one page 1 per window plus the pages `total` asked for: nothing wasted
    expected_pages = sum(max(1, -(-len(b.rows) // 100)) for b in batches)
    assert fake.calls(INTEREST) == expected_pages


def test_rows_that_move_while_paging_trigger_a_re_read() -> None:
    end = day_floor(now_ms())
    start = end - 5 * DAY_MS
    rows = interest_rows(450, start, 5 * DAY_MS)
    late = dict(rows[5], asset="ETH", interest="0.00000777")
    inner = page_route(rows, "interestAccuredTime")
    inserted: list[Row] = []

    def moving(params: dict[str, str]) -> Row:
        if params["current"] == "2" and not inserted:
            rows.append(late)  # a row lands inside the window between page 1 and page 2
            inserted.append(late)
        return inner(params)  # type: ignore[no-any-return]

    fake = FakeBinance()
    fake.route(INTEREST, moving)
    got = [r for b in read(fake, "interest", None, start, end) for r in b.rows]
    assert as_multiset(got) == as_multiset(rows)
    assert sum(1 for r in got if r["interest"] == "0.00000777") == 1
    page_ones = [r for r in fake.requests if b"current=1&" in r.url.query]
    assert len(page_ones) == 2  # the window was read twice


def test_a_capped_total_is_noticed_not_trusted() -> None:
    end = day_floor(now_ms())
    start = end - 2 * DAY_MS
    fake = FakeBinance()
    fake.route(
        INTEREST,
        page_route(interest_rows(150, start, DAY_MS), "interestAccuredTime", capped_total=100),
    )
    with pytest.raises(PagingUnstable):
        read(fake, "interest", None, start, end)


def test_seconds_in_transfer_rows_become_milliseconds() -> None:
    end = day_floor(now_ms())
    start = end - 3 * DAY_MS
    stored = [
        {
            "txId": i,
            "asset": "USDT",
            "amount": "1.00000000",
            "type": "ROLL_IN",
            "status": "CONFIRMED",
            "timestamp": start + i * HOUR_MS,
        }
        for i in range(30)
    ]

    def seconds(params: dict[str, str]) -> Row:
        assert params["type"] == "ROLL_IN"
        page = page_route(stored, "timestamp")(params)
        page["rows"] = [dict(r, timestamp=r["timestamp"] // 1000) for r in page["rows"]]
        return page  # type: ignore[no-any-return]

    fake = FakeBinance()
    fake.route(TRANSFERS, seconds)
    got = [r for b in read(fake, "transfers", "ROLL_IN", start, end) for r in b.rows]
    assert [r["timestamp"] for r in got] == [r["timestamp"] for r in stored]


def trades_route(rows: list[Row]) -> Any:
    """myTrades: fromId (>=) or a < 24 h time window, never both; ascending; limit <= 1000."""

    def handle(params: dict[str, str]) -> list[Row]:
        limit = int(params.get("limit", 500))
        assert limit <= 1000 and params["symbol"] == "BTCUSDT"
        if "fromId" in params:
            assert "startTime" not in params and "endTime" not in params
            chosen = [r for r in rows if r["id"] >= int(params["fromId"])]
        else:
            start, end = int(params["startTime"]), int(params["endTime"])
            assert 0 <= end - start < DAY_MS
            chosen = [r for r in rows if start <= r["time"] <= end]
        return sorted(chosen, key=lambda r: r["id"])[:limit]

    return handle


def make_trades(count: int, start: int, span: int) -> list[Row]:
    step = span // count
    return [
        {
            "id": 10_000 + i,
            "symbol": "BTCUSDT",
            "orderId": i,
            "price": "1",
            "qty": "1",
            "commission": "0",
            "commissionAsset": "BNB",
            "isBuyer": True,
            "isMaker": False,
            "time": start + i * step,
        }
        for i in range(count)
    ]


def test_a_long_range_walks_ids_from_zero_with_the_largest_limit() -> None:
    end = day_floor(now_ms())
    start = end - 20 * DAY_MS
    trades = make_trades(2500, start, 20 * DAY_MS)
    fake = FakeBinance()
    fake.route(TRADES, trades_route(trades))
    batches = read(fake, "trades", "BTCUSDT", start, end)
    got = [r for b in batches for r in b.rows]
    assert got == trades
    assert fake.calls(TRADES) == 3  # 1000 + 1000 + 500, no time probing
    assert_contiguous(batches, start, end)
    assert batches[-1].next_from_id == trades[-1]["id"] + 1


def test_a_short_range_probes_a_day_then_walks() -> None:
    end = day_floor(now_ms())
    trades = make_trades(3000, end - 30 * DAY_MS, 30 * DAY_MS)
    start = end - 3 * DAY_MS + HOUR_MS
    fake = FakeBinance()
    fake.route(TRADES, trades_route(trades))
    batches = read(fake, "trades", "BTCUSDT", start, end)
    got = [r for b in batches for r in b.rows]
    assert got == [t for t in trades if start <= t["time"] < end]
    assert fake.calls(TRADES) == 2  # one probe (limit=1) and one page
    assert_contiguous(batches, start, end)


def test_a_known_cursor_resumes_there_and_stops_at_the_range_end() -> None:
    now = day_floor(now_ms())
    trades = make_trades(1500, now - 10 * DAY_MS, 10 * DAY_MS)
    fake = FakeBinance()
    fake.route(TRADES, trades_route(trades))
    end = trades[1200]["time"]
    batches = read(fake, "trades", "BTCUSDT", 0, end, from_id=trades[900]["id"])
    assert [r for b in batches for r in b.rows] == trades[900:1200]
    assert fake.calls(TRADES) == 1
    # the next read resumes at the first row past this range, not past the page
    assert batches[-1].next_from_id == trades[1200]["id"]


def test_an_empty_short_range_yields_one_empty_covering_batch() -> None:
    end = day_floor(now_ms())
    fake = FakeBinance()
    fake.route(TRADES, trades_route([]))
    batches = read(fake, "trades", "BTCUSDT", end - 2 * DAY_MS, end)
    assert [(b.rows, b.covered.length_ms, b.next_from_id) for b in batches] == [
        ([], 2 * DAY_MS, None)
    ]
    assert fake.calls(TRADES) == 2  # one probe per day


def test_partitioned_streams_demand_a_partition() -> None:
    fake = FakeBinance()
    with pytest.raises(ValueError, match="asset"):
        read(fake, "loans", None, 0, 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rows_on_window_boundaries_are_read_exactly_once(data: st.DataObject) -> None:
    end = day_floor(now_ms()) - DAY_MS + 5 * HOUR_MS  # an unaligned end, in the past
    start = end - 70 * DAY_MS - 3 * HOUR_MS  # an unaligned start: first and last windows short
    edges = [start, end - 1, *(day_floor(end) - k * DAY_MS + d for k in range(71) for d in (-1, 0))]
    moment = st.one_of(
        st.sampled_from([t for t in edges if start <= t < end]), st.integers(start, end - 1)
    )
    times = data.draw(st.lists(moment, max_size=400))
    outside = data.draw(st.lists(st.sampled_from([start - 1, end, end + DAY_MS]), max_size=5))
    rows = [
        {
            "txId": i,
            "asset": "BTC",
            "amount": "1",
            "type": "ROLL_OUT",
            "status": "CONFIRMED",
            "timestamp": t,
        }
        for i, t in enumerate([*times, *outside])
    ]
    fake = FakeBinance()
    fake.route(TRANSFERS, page_route(rows, "timestamp"))
    got = [r["txId"] for b in read(fake, "transfers", "ROLL_OUT", start, end) for r in b.rows]
    assert sorted(got) == list(range(len(times)))
