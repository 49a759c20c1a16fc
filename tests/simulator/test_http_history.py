"""History endpoints over real HTTP: paging, windows, clamps, cursors, statuses, truth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator import render
from simulator.params import DAY_MS, HOUR_MS
from simulator.scenarios import default_start_ms
from simulator.server import RunningSimulator
from tests.fixtures_sim import SignedClient, SimFactory

INTEREST = "/sapi/v1/margin/interestHistory"
BORROW_REPAY = "/sapi/v1/margin/borrow-repay"
TRANSFER = "/sapi/v1/margin/transfer"
ALL_ORDERS = "/sapi/v1/margin/allOrders"
MY_TRADES = "/sapi/v1/margin/myTrades"


def code_of(response: httpx.Response) -> int:
    assert response.status_code == 400, response.text
    return int(response.json()["code"])


def all_pages(client: SignedClient, path: str, size: int, **params: Any) -> tuple[list[Any], int]:
    rows: list[Any] = []
    totals = set()
    current = 1
    while True:
        page = client.ok("GET", path, current=current, size=size, **params)
        totals.add(page["total"])
        if not page["rows"]:
            break
        assert len(page["rows"]) <= size
        rows.extend(page["rows"])
        current += 1
    assert len(totals) == 1
    return rows, totals.pop()


@pytest.fixture(scope="module")
def now(sim_client: SignedClient) -> int:
    return sim_client.timestamp()


# -- current/size paging -------------------------------------------------------------------


def test_paging_returns_every_row_once_newest_first(
    sim: RunningSimulator, sim_client: SignedClient, now: int
) -> None:
    start, end = now - 30 * DAY_MS + HOUR_MS, now - HOUR_MS
    rows, total = all_pages(sim_client, INTEREST, 100, asset="USDT", startTime=start, endTime=end)
    with sim.exchange.lock:
        expected = [r.tx_id for r in sim.exchange.interest("USDT", start, end)]
    assert total == len(expected) == len(rows) > 100
    assert sorted(r["txId"] for r in rows) == sorted(expected)
    times = [r["interestAccuredTime"] for r in rows]
    assert times == sorted(times, reverse=True)


def test_borrow_repay_pages_odd_sizes(
    sim: RunningSimulator, sim_client: SignedClient, now: int
) -> None:
    start, end = now - 30 * DAY_MS + HOUR_MS, now - HOUR_MS
    for kind in ("BORROW", "REPAY"):
        # 3 a page: several pages whatever the hour the history was drawn at (its prices, so
        # its fills and repays, depend on the absolute minute)
        rows, total = all_pages(
            sim_client, BORROW_REPAY, 3, type=kind, asset="USDT", startTime=start, endTime=end
        )
        with sim.exchange.lock:
            source = sim.exchange.loans if kind == "BORROW" else sim.exchange.repays
            expected = {r.tx_id for r in source("USDT", start, end)}
        ids = [r["txId"] for r in rows]
        assert len(ids) == len(set(ids)) == total == len(expected) > 3
        assert set(ids) == expected


def test_default_and_maximum_page_size(sim_client: SignedClient) -> None:
    page = sim_client.ok("GET", INTEREST)
    assert len(page["rows"]) == 10 < page["total"]
    assert len(sim_client.ok("GET", INTEREST, size=100)["rows"]) == 100
    assert code_of(sim_client.get(INTEREST, size=101)) == -1130
    assert code_of(sim_client.get(INTEREST, current=0)) == -1130


# -- windows ----------------------------------------------------------------------------------


def test_no_times_means_the_last_seven_days(sim_client: SignedClient) -> None:
    before = sim_client.timestamp()
    rows, _ = all_pages(sim_client, TRANSFER, 100)
    assert rows and min(r["timestamp"] for r in rows) >= before - 7 * DAY_MS - 1000


def test_start_time_alone_is_clamped_to_thirty_days(sim_client: SignedClient, now: int) -> None:
    rows, _ = all_pages(sim_client, TRANSFER, 100, startTime=now - 60 * DAY_MS)
    oldest = min(r["timestamp"] for r in rows)
    assert now - 31 * DAY_MS < oldest and oldest >= now - 30 * DAY_MS - 60_000


def test_windows_over_thirty_days_are_refused(sim_client: SignedClient, now: int) -> None:
    for path, extra in ((INTEREST, {}), (TRANSFER, {}), (BORROW_REPAY, {"type": "BORROW"})):
        response = sim_client.get(path, startTime=now - 31 * DAY_MS, endTime=now, **extra)
        assert code_of(response) == -3011
        assert response.json()["msg"] == "Your input date is invalid."
    assert code_of(sim_client.get(INTEREST, startTime=now, endTime=now - DAY_MS)) == -3011


def test_borrow_repay_without_asset_sees_seven_days(sim_client: SignedClient, now: int) -> None:
    start, end = now - 30 * DAY_MS, now - HOUR_MS
    without, _ = all_pages(
        sim_client, BORROW_REPAY, 100, type="BORROW", startTime=start, endTime=end
    )
    assert without and min(r["timestamp"] for r in without) >= end - 7 * DAY_MS
    with_asset, _ = all_pages(
        sim_client, BORROW_REPAY, 100, type="BORROW", asset="USDT", startTime=start, endTime=end
    )
    assert min(r["timestamp"] for r in with_asset) < end - 7 * DAY_MS


def test_transfer_type_filter(sim_client: SignedClient, now: int) -> None:
    rows, _ = all_pages(sim_client, TRANSFER, 100, type="ROLL_OUT", startTime=now - 20 * DAY_MS)
    assert rows and {r["type"] for r in rows} == {"ROLL_OUT"}
    # out of the cross account: to spot, or to an isolated pair's account
    assert all(r["transFrom"] == "CROSS_MARGIN" for r in rows)
    assert {r["transTo"] for r in rows} <= {"SPOT", "ISOLATED_MARGIN"}


# -- cursors: allOrders and myTrades ---------------------------------------------------------


def test_all_orders_window_and_cursor(sim: RunningSimulator, sim_client: SignedClient) -> None:
    now = sim_client.timestamp()
    recent = sim_client.ok("GET", ALL_ORDERS, symbol="BTCUSDT")
    assert recent and all(o["time"] >= now - DAY_MS - 1000 for o in recent)
    response = sim_client.get(
        ALL_ORDERS, symbol="BTCUSDT", startTime=now - 25 * HOUR_MS, endTime=now
    )
    assert code_of(response) == -1127
    assert response.json()["msg"] == "More than 24 hours between startTime and endTime."
    with sim.exchange.lock:
        orders = sim.exchange.orders("BTCUSDT", sim.exchange.opened_ms, now)
        first = orders[10].order_id
    page = sim_client.ok("GET", ALL_ORDERS, symbol="BTCUSDT", orderId=first, limit=25)
    ids = [o["orderId"] for o in page]
    assert ids == sorted(ids) and ids[0] == first and len(ids) == 25
    assert len(sim_client.ok("GET", ALL_ORDERS, symbol="BTCUSDT", orderId=first, limit=500)) > 25
    assert code_of(sim_client.get(ALL_ORDERS, symbol="BTCUSDT", limit=501)) == -1130
    assert code_of(sim_client.get(ALL_ORDERS, symbol="NOPEUSDT")) == -1121


def test_my_trades_cursor_and_limits(sim: RunningSimulator, sim_client: SignedClient) -> None:
    with sim.exchange.lock:
        trades = sim.exchange.trades("BTCUSDT", sim.exchange.opened_ms, sim.exchange.now_ms())
        from_id = trades[5].id
    walked: list[int] = []
    cursor = from_id
    while True:
        page = sim_client.ok("GET", MY_TRADES, symbol="BTCUSDT", fromId=cursor, limit=1000)
        walked.extend(t["id"] for t in page)
        if len(page) < 1000:
            break
        cursor = page[-1]["id"] + 1
    assert walked == sorted(walked) and walked[0] == from_id
    # resting orders may fill meanwhile: later trades can only extend the list
    expected = [t.id for t in trades[5:]]
    assert walked[: len(expected)] == expected
    assert code_of(sim_client.get(MY_TRADES, symbol="BTCUSDT", limit=1001)) == -1130
    both = sim_client.get(MY_TRADES, symbol="BTCUSDT", fromId=from_id, startTime=1)
    assert code_of(both) == -1128
    assert code_of(sim_client.get(MY_TRADES, symbol="DOGEUSDT")) == -1121


# -- capital flow and daily snapshots --------------------------------------------------------


def test_capital_flow_ids_page_forward(
    sim: RunningSimulator, sim_client: SignedClient, now: int
) -> None:
    start, end = now - 6 * DAY_MS, now - HOUR_MS
    everything = sim_client.ok(
        "GET", "/sapi/v1/margin/capital-flow", startTime=start, endTime=end, limit=1000
    )
    ids = [r["id"] for r in everything]
    # without fromId: the latest rows, newest first
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    ids.reverse()
    legs = {"BUY_INCOME": 0, "SELL_EXPENSE": 0, "BUY_EXPENSE": 1, "SELL_INCOME": 1}
    traded = [r for r in everything if r["type"] in legs]
    assert {r["symbol"] for r in traded} > {"BTCUSDT"}
    assert all(r["asset"] == sim.exchange.symbols[r["symbol"]][legs[r["type"]]] for r in traded)
    tail = sim_client.ok(
        "GET",
        "/sapi/v1/margin/capital-flow",
        startTime=start,
        endTime=end,
        fromId=ids[9],
        limit=1000,
    )
    assert [r["id"] for r in tail][: len(ids) - 10] == ids[10:]
    wide = sim_client.get("/sapi/v1/margin/capital-flow", startTime=now - 8 * DAY_MS, endTime=now)
    assert code_of(wide) == -4047


def test_account_snapshot_days(sim_factory: SimFactory) -> None:
    # weight 2400: five calls a minute on the real budget, so a private, roomier simulator
    running = sim_factory(scenario="default", seed=1, weight_limit=1_000_000)
    sim_client = SignedClient(running.url)
    now = sim_client.timestamp()
    path = "/sapi/v1/accountSnapshot"
    answer = sim_client.ok("GET", path, type="MARGIN")
    assert answer["code"] == 200 and answer["msg"] == ""
    days = answer["snapshotVos"]
    assert 6 <= len(days) <= 7
    assert all(d["updateTime"] % DAY_MS == DAY_MS - 1000 for d in days)
    month = sim_client.ok("GET", path, type="MARGIN", startTime=now - 29 * DAY_MS, limit=30)
    assert len(month["snapshotVos"]) >= 28
    assert code_of(sim_client.get(path, type="MARGIN", limit=6)) == -1130
    assert code_of(sim_client.get(path, type="MARGIN", limit=31)) == -1130
    too_wide = sim_client.get(path, type="MARGIN", startTime=now - 31 * DAY_MS, endTime=now)
    assert code_of(too_wide) == -3011
    old = sim_client.ok(
        "GET", path, type="MARGIN", startTime=now - 45 * DAY_MS, endTime=now - 20 * DAY_MS, limit=30
    )["snapshotVos"]
    assert old and min(d["updateTime"] for d in old) >= now - 30 * DAY_MS - 60_000
    sim_client.close()


# -- time travel on a private simulator --------------------------------------------------------


@pytest.fixture(scope="module")
def pinned(sim_factory: SimFactory) -> Iterator[tuple[RunningSimulator, SignedClient]]:
    """Default scenario whose history ends exactly at an hour boundary (clock starts there),
    speaking both generations (the truth files hold the seed's rows)."""
    running = sim_factory(
        scenario="default", seed=7, start_ms=default_start_ms(), api_generation="both"
    )
    client = SignedClient(running.url)
    yield running, client
    client.close()


def test_pending_rows_confirm_as_time_passes(pinned: tuple[RunningSimulator, SignedClient]) -> None:
    _, client = pinned
    recent = client.ok("GET", TRANSFER, type="ROLL_IN", size=5)["rows"]
    pending = [r for r in recent if r["status"] == "PENDING"]
    assert pending, recent
    loans = client.ok("GET", BORROW_REPAY, type="BORROW", asset="SOL", size=5)["rows"]
    assert any(r["status"] == "PENDING" for r in loans)
    client.http.post("/_sim/advance", params={"ms": HOUR_MS}).raise_for_status()
    client.sync_time()
    later = client.ok("GET", TRANSFER, type="ROLL_IN", size=5)["rows"]
    statuses = {r["txId"]: r["status"] for r in later}
    assert all(statuses[r["txId"]] == "CONFIRMED" for r in pending)


def test_interest_accrues_on_the_hour_after_travel(
    pinned: tuple[RunningSimulator, SignedClient],
) -> None:
    _, client = pinned
    before = client.ok("GET", INTEREST, size=1)
    answer = client.http.post("/_sim/advance", params={"ms": 3 * HOUR_MS}).json()
    client.sync_time()
    after = client.ok(
        "GET", INTEREST, size=100, startTime=before["rows"][0]["interestAccuredTime"] + 1
    )
    hours = {r["interestAccuredTime"] for r in after["rows"] if r["type"] == "PERIODIC"}
    assert len(hours) >= 3 and all(h % HOUR_MS == 0 for h in hours)
    assert max(hours) <= answer["now_ms"]


def test_interest_retention_is_ninety_days(pinned: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = pinned
    client.http.post("/_sim/advance", params={"ms": 20 * DAY_MS}).raise_for_status()
    client.sync_time()
    now = client.timestamp()
    rows, total = all_pages(
        client, INTEREST, 100, asset="USDT", startTime=now - 95 * DAY_MS, endTime=now - 70 * DAY_MS
    )
    assert total > 0 and min(r["interestAccuredTime"] for r in rows) >= now - 90 * DAY_MS - 60_000
    with running.exchange.lock:
        older = running.exchange.interest("USDT", now - 95 * DAY_MS, now - 90 * DAY_MS - 60_000)
    assert older  # the rows exist in the ledger; the API just no longer serves them


def test_truth_dir_matches_the_api(
    pinned: tuple[RunningSimulator, SignedClient], tmp_path: Path
) -> None:
    running, client = pinned
    with running.exchange.lock:
        now_ms = running.app.write_truth(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    streams = ["loans", "repays", "interest", "transfers", "liquidations", "orders", "trades"]
    files = [*streams, "account_snapshots", "capital_flow", "interest_rates", "prices"]
    # isolated/<pair>/: the default account trades a little on isolated margin
    assert names == {f"{s}.jsonl" for s in files} | {"account.json", "isolated"}
    loans = [json.loads(line) for line in (tmp_path / "loans.jsonl").read_text().splitlines()]
    assert [(r["timestamp"], r["txId"]) for r in loans] == sorted(
        (r["timestamp"], r["txId"]) for r in loans
    )
    served = client.ok(
        "GET",
        "/sapi/v1/margin/loan",
        asset="BTC",
        size=100,
        startTime=now_ms - 30 * DAY_MS,
        endTime=now_ms,
    )
    by_id = {r["txId"]: r for r in loans}
    assert served["rows"] and all(by_id[r["txId"]] == r for r in served["rows"])
    # the account file is the account at the moment of writing (a fill could follow it)
    with running.exchange.lock:
        running.app.write_truth(tmp_path)
        balances = running.exchange.snapshot().balances.values()
        expected = [render.user_asset(b) for b in balances]
    account = json.loads((tmp_path / "account.json").read_text())
    assert account["userAssets"] == expected
    assert {a["asset"] for a in client.ok("GET", "/sapi/v1/margin/account")["userAssets"]} == {
        a["asset"] for a in expected
    }
    liquidations = (tmp_path / "liquidations.jsonl").read_text().splitlines()
    assert liquidations and json.loads(liquidations[0])["isIsolated"] is False
