"""Market and reference-data endpoints over HTTP: exchange info, klines from the engine's price
path, coin configuration, isolated pairs, margin fee data and interest-rate history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from simulator.params import DAY_MS, HOUR_MS, MINUTE_MS
from simulator.scenarios import default_start_ms
from simulator.server import RunningSimulator
from tests.fixtures_sim import SignedClient, SimFactory

M = "/sapi/v1/margin"
KLINES = "/api/v3/klines"
Kline = list[Any]


@pytest.fixture(scope="module")
def market(sim_factory: SimFactory) -> Iterator[tuple[RunningSimulator, SignedClient]]:
    """A private simulator whose clock starts on a whole hour (every call below falls in that
    hour) with hour-long weight windows, so weights and rates can be compared exactly."""
    running = sim_factory(
        scenario="default", seed=3, start_ms=default_start_ms(), weight_window_ms=HOUR_MS
    )
    client = SignedClient(running.url)
    yield running, client
    client.close()


def error_of(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json()["code"]


def klines(client: SignedClient, **params: Any) -> list[Kline]:
    response = client.http.get(KLINES, params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def now_of(running: RunningSimulator) -> int:
    with running.exchange.lock:
        return running.exchange.now_ms()


# -- exchange information ----------------------------------------------------------------------


def test_exchange_info_lists_every_margin_pair_with_the_engines_tick_and_step(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = market
    response = client.http.get("/api/v3/exchangeInfo")  # public: no key, no signature
    info = response.json()
    assert response.status_code == 200 and info["timezone"] == "UTC"
    assert {s["symbol"] for s in info["symbols"]} == set(running.exchange.symbols)
    for symbol in info["symbols"]:
        spec = running.exchange.market.symbol_specs[symbol["symbol"]]
        filters = {f["filterType"]: f for f in symbol["filters"]}
        assert (symbol["baseAsset"], symbol["quoteAsset"]) == (spec.base, spec.quote)
        assert Decimal(filters["PRICE_FILTER"]["tickSize"]) == spec.tick
        assert Decimal(filters["LOT_SIZE"]["stepSize"]) == spec.step
        assert Decimal(filters["LOT_SIZE"]["minQty"]) == spec.step
        assert isinstance(filters["NOTIONAL"]["minNotional"], str)
        assert isinstance(filters["NOTIONAL"]["avgPriceMins"], int)
        assert {"MARKET_LOT_SIZE", "ICEBERG_PARTS", "MAX_NUM_ORDERS"} <= filters.keys()
        assert symbol["isMarginTradingAllowed"] is True and symbol["permissions"] == []
        assert symbol["permissionSets"] == [["SPOT", "MARGIN"]]
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }


def test_exchange_info_weighs_20_in_the_api_pool(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    _, client = market
    first = int(client.http.get("/api/v3/exchangeInfo").headers["X-MBX-USED-WEIGHT-1M"])
    time_ = int(client.http.get("/api/v3/time").headers["X-MBX-USED-WEIGHT-1M"])
    second = int(client.http.get("/api/v3/exchangeInfo").headers["X-MBX-USED-WEIGHT-1M"])
    assert (time_ - first, second - time_) == (1, 20)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"symbol": "ETHBTC"}, ["ETHBTC"]),
        ({"symbols": '["BTCUSDT","ETHBTC"]'}, ["BTCUSDT", "ETHBTC"]),
        ({"permissions": "MARGIN"}, "all"),
        ({"permissions": '["LEVERAGED"]'}, []),
        ({"symbolStatus": "TRADING"}, "all"),
        ({"symbolStatus": "HALT"}, []),
    ],
)
def test_exchange_info_filters(
    market: tuple[RunningSimulator, SignedClient], params: dict[str, str], expected: Any
) -> None:
    running, client = market
    info = client.http.get("/api/v3/exchangeInfo", params=params).json()
    want = sorted(running.exchange.symbols) if expected == "all" else expected
    assert [s["symbol"] for s in info["symbols"]] == want


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"symbol": "NOPE"}, -1121),
        ({"symbols": '["BTCUSDT","NOPE"]'}, -1121),
        ({"symbols": '["BTCUSDT", "ETHBTC"]'}, -1100),  # the documented format has no spaces
        ({"symbol": "BTCUSDT", "symbols": '["ETHBTC"]'}, -1128),
        ({"symbol": "BTCUSDT", "permissions": "SPOT"}, -1128),
        ({"symbolStatus": "ASLEEP"}, -1102),
    ],
)
def test_exchange_info_refuses_bad_parameters(
    market: tuple[RunningSimulator, SignedClient], params: dict[str, str], code: int
) -> None:
    _, client = market
    assert error_of(client.http.get("/api/v3/exchangeInfo", params=params)) == (400, code)


def test_permission_sets_can_be_left_out(market: tuple[RunningSimulator, SignedClient]) -> None:
    _, client = market
    info = client.http.get("/api/v3/exchangeInfo", params={"showPermissionSets": "false"}).json()
    assert all(s["permissionSets"] == [] for s in info["symbols"])


@pytest.mark.parametrize("api", ["fapi", "dapi"])
def test_futures_exchange_info_is_an_object_without_contracts(
    market: tuple[RunningSimulator, SignedClient], api: str
) -> None:
    _, client = market
    first = client.http.get(f"/{api}/v1/exchangeInfo")
    second = client.http.get(f"/{api}/v1/exchangeInfo")
    body = first.json()
    assert isinstance(body, dict) and body["symbols"] == [] and body["timezone"] == "UTC"
    assert ("assets" in body) == (api == "fapi")
    used = [int(r.headers["X-MBX-USED-WEIGHT-1M"]) for r in (first, second)]
    assert used[1] - used[0] == 1  # weight 1, in a pool of its own


# -- klines ------------------------------------------------------------------------------------


def test_minute_klines_follow_the_engines_price_path(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = market
    rows = klines(client, symbol="ETHUSDT", interval="1m", limit=120)
    assert len(rows) == 120
    with running.exchange.lock:
        for row in rows:
            price = running.exchange.price("ETHUSDT", row[0])
            assert Decimal(row[1]) == Decimal(row[4]) == price  # the price holds for a minute
            assert row[6] == row[0] + MINUTE_MS - 1 and row[11] == "0"
            assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10))
            assert isinstance(row[8], int)
    assert [r[0] for r in rows] == list(range(rows[0][0], rows[-1][0] + 1, MINUTE_MS))
    assert rows[-1][0] <= now_of(running) < rows[-1][6] + 1  # the last one is still open


def test_the_accounts_fills_are_inside_their_candles(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = market
    with running.exchange.lock:
        now = running.exchange.now_ms()
        fills = running.exchange.trades("BTCUSDT", now - 2 * DAY_MS, now)
    assert fills
    by_minute: dict[int, list[Any]] = {}
    for fill in fills:
        by_minute.setdefault(fill.time_ms - fill.time_ms % MINUTE_MS, []).append(fill)
    for minute, inside in list(by_minute.items())[:40]:
        (row,) = klines(client, symbol="BTCUSDT", interval="1m", startTime=minute, limit=1)
        assert row[0] == minute
        assert all(Decimal(row[3]) <= f.price <= Decimal(row[2]) for f in inside)
        own = sum(f.qty for f in inside)
        market_part = Decimal(row[5]) - own
        step = running.exchange.market.symbol_specs["BTCUSDT"].step
        assert market_part > 0 and market_part % step == 0
        assert row[8] >= len(inside)


def merged(rows: list[Kline]) -> tuple[Any, ...]:
    """What a longer candle must be, from the candles it is made of."""
    return (
        rows[0][1],
        max(Decimal(r[2]) for r in rows),
        min(Decimal(r[3]) for r in rows),
        rows[-1][4],
        sum(Decimal(r[5]) for r in rows),
        sum(Decimal(r[7]) for r in rows),
        sum(r[8] for r in rows),
        sum(Decimal(r[9]) for r in rows),
        sum(Decimal(r[10]) for r in rows),
    )


def as_merged(row: Kline) -> tuple[Any, ...]:
    return (
        row[1],
        Decimal(row[2]),
        Decimal(row[3]),
        row[4],
        Decimal(row[5]),
        Decimal(row[7]),
        row[8],
        Decimal(row[9]),
        Decimal(row[10]),
    )


@pytest.mark.parametrize(
    ("long", "short", "count"), [("1h", "1m", 60), ("1d", "1h", 24), ("3m", "1m", 3)]
)
def test_a_candle_is_exactly_the_candles_it_is_made_of(
    market: tuple[RunningSimulator, SignedClient], long: str, short: str, count: int
) -> None:
    running, client = market
    start = now_of(running) // DAY_MS * DAY_MS - 3 * DAY_MS  # a complete day of trading
    (whole,) = klines(client, symbol="BTCUSDT", interval=long, startTime=start, limit=1)
    parts = klines(client, symbol="BTCUSDT", interval=short, startTime=start, limit=count)
    assert whole[0] == parts[0][0] == start and whole[6] == parts[-1][6]
    assert as_merged(whole) == merged(parts)


def test_second_candles_share_their_minute(market: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = market
    minute = now_of(running) // MINUTE_MS * MINUTE_MS - 10 * MINUTE_MS
    (whole,) = klines(client, symbol="XRPUSDT", interval="1m", startTime=minute, limit=1)
    seconds = klines(client, symbol="XRPUSDT", interval="1s", startTime=minute, limit=60)
    assert [r[0] for r in seconds] == list(range(minute, minute + MINUTE_MS, 1000))
    assert as_merged(whole) == merged(seconds)


def test_calendar_intervals_open_on_mondays_and_firsts(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    _, client = market
    weeks = klines(client, symbol="BTCUSDT", interval="1w", limit=5)
    months = klines(client, symbol="BTCUSDT", interval="1M", limit=3)
    for row in weeks:
        opened = datetime.fromtimestamp(row[0] / 1000, UTC)
        assert (opened.weekday(), opened.hour, row[6] - row[0] + 1) == (0, 0, 7 * DAY_MS)
    for row in months:
        opened = datetime.fromtimestamp(row[0] / 1000, UTC)
        after = datetime.fromtimestamp((row[6] + 1) / 1000, UTC)
        assert (opened.day, opened.hour, after.day) == (1, 0, 1)


def test_the_time_zone_moves_the_boundaries(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    _, client = market
    days = klines(client, symbol="BTCUSDT", interval="1d", limit=3, timeZone="8")
    assert all(row[0] % DAY_MS == 16 * HOUR_MS for row in days)  # midnight UTC+8
    hours = klines(client, symbol="BTCUSDT", interval="1h", limit=3, timeZone="-05:45")
    assert all(row[0] % HOUR_MS == 45 * MINUTE_MS for row in hours)


def test_kline_windows(market: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = market
    now = now_of(running)
    middle = now // HOUR_MS * HOUR_MS - 5 * HOUR_MS + 17 * MINUTE_MS
    after = klines(client, symbol="BTCUSDT", interval="1h", startTime=middle, limit=2)
    assert [r[0] for r in after] == [middle - 17 * MINUTE_MS + HOUR_MS * k for k in (1, 2)]
    before = klines(client, symbol="BTCUSDT", interval="1h", endTime=middle, limit=2)
    assert [r[0] for r in before] == [middle - 17 * MINUTE_MS - HOUR_MS * k for k in (1, 0)]
    both = klines(client, symbol="BTCUSDT", interval="1h", startTime=middle, endTime=middle + 1)
    assert both == []
    assert len(klines(client, symbol="BTCUSDT", interval="1m")) == 500  # the default limit
    first = klines(client, symbol="BTCUSDT", interval="1d", startTime=0, limit=1)[0]
    listed = running.exchange.market.origin_ms // HOUR_MS * HOUR_MS  # where the paths start
    assert first[0] == listed // DAY_MS * DAY_MS  # nothing before the day of listing


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"symbol": "BTCUSDT", "interval": "1H"}, -1120),
        ({"symbol": "BTCUSDT"}, -1102),
        ({"symbol": "NOPE", "interval": "1m"}, -1121),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "1001"}, -1130),
        ({"symbol": "BTCUSDT", "interval": "1m", "timeZone": "15:00"}, -1130),
        ({"symbol": "BTCUSDT", "interval": "1m", "timeZone": "5:75"}, -1130),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "soon"}, -1100),
    ],
)
def test_klines_refuse_bad_parameters(
    market: tuple[RunningSimulator, SignedClient], params: dict[str, str], code: int
) -> None:
    _, client = market
    assert error_of(client.http.get(KLINES, params=params)) == (400, code)


# -- coins, pairs and fee data -------------------------------------------------------------------


def test_all_coins_information(market: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = market
    coins = client.ok("GET", "/sapi/v1/capital/config/getall")
    assert [c["coin"] for c in coins] == list(running.exchange.assets)
    for coin in coins:
        networks = coin["networkList"]
        assert [n["isDefault"] for n in networks].count(True) == 1
        assert all(n["coin"] == coin["coin"] and isinstance(n["minConfirm"], int) for n in networks)
        assert coin["free"] == "0.00000000" and coin["trading"] is True
    unsigned = client.http.get("/sapi/v1/capital/config/getall")
    assert error_of(unsigned) == (401, -2014)


def test_isolated_pairs_accept_a_key_alone_or_a_signed_call(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = market
    headers = {"X-MBX-APIKEY": client.key}
    keyed = client.http.get(f"{M}/isolated/allPairs", headers=headers).json()
    signed = client.ok("GET", f"{M}/isolated/allPairs")
    assert keyed == signed and [p["symbol"] for p in keyed] == sorted(running.exchange.symbols)
    assert all("id" not in p and p["isMarginTrade"] is True for p in keyed)
    one = client.ok("GET", f"{M}/isolated/allPairs", symbol="ETHBTC")
    assert one == [{**next(p for p in keyed if p["symbol"] == "ETHBTC")}]


def used_ip_weight(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return int(response.headers["X-SAPI-USED-IP-WEIGHT-1M"])


def test_cross_margin_data_is_this_hours_rate(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = market
    before = used_ip_weight(client.get(f"{M}/crossMarginData", coin="ETH"))
    every = client.get(f"{M}/crossMarginData")
    assert used_ip_weight(every) - before == 5  # 1 with a coin, 5 without
    now = now_of(running)
    rows = every.json()
    assert [r["coin"] for r in rows] == list(running.exchange.assets)
    for row in rows:
        daily = running.exchange.rate(row["coin"], now)
        assert Decimal(row["dailyInterest"]) == daily
        assert Decimal(row["yearlyInterest"]) == daily * 365
        spec = running.exchange.market.asset_specs[row["coin"]]
        assert Decimal(row["borrowLimit"]) == spec.borrow_limit and row["vipLevel"] == 0
        pairs = [s for s, pair in running.exchange.symbols.items() if row["coin"] in pair]
        assert row["marginablePairs"] == sorted(pairs)
    assert error_of(client.get(f"{M}/crossMarginData", coin="NOPE")) == (400, -3027)
    assert error_of(client.get(f"{M}/crossMarginData", vipLevel="10")) == (400, -1130)


def test_isolated_margin_data_lists_base_then_quote(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = market
    before = used_ip_weight(client.get(f"{M}/isolatedMarginData", symbol="BTCUSDT"))
    every = client.get(f"{M}/isolatedMarginData", vipLevel="2")
    assert used_ip_weight(every) - before == 10
    now = now_of(running)
    for row in every.json():
        base, quote = running.exchange.symbols[row["symbol"]]
        assert [d["coin"] for d in row["data"]] == [base, quote] and row["vipLevel"] == 2
        for data in row["data"]:
            assert Decimal(data["dailyInterest"]) == running.exchange.rate(data["coin"], now)


# -- interest rates ----------------------------------------------------------------------------


def test_rate_history_is_hourly_newest_first_and_matches_the_charges(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = market
    now = now_of(running)
    default = client.ok("GET", f"{M}/interestRateHistory", asset="USDT")
    assert len(default) == 20 and default[0]["timestamp"] == now // HOUR_MS * HOUR_MS
    # a day of the history with USDT charges in it, whatever the time of day the test runs at
    with running.exchange.lock:
        recent = running.exchange.interest("USDT", now - 5 * DAY_MS, now - DAY_MS)
    charge_times = [c.time_ms for c in recent if c.type == "PERIODIC"]
    assert charge_times, "the scenario borrows USDT within the last days"
    end = charge_times[len(charge_times) // 2]
    start = end - DAY_MS + 1
    rows = client.ok(
        "GET", f"{M}/interestRateHistory", asset="USDT", startTime=start, endTime=end, limit=100
    )
    times = [r["timestamp"] for r in rows]
    assert times == sorted(times, reverse=True) and all(t % HOUR_MS == 0 for t in times)
    assert len(rows) == 24 and start <= times[-1] and times[0] <= end
    assert all(set(r) == {"asset", "dailyInterestRate", "timestamp", "vipLevel"} for r in rows)
    with running.exchange.lock:
        charged = running.exchange.interest("USDT", start, end)
    by_hour = {r["timestamp"]: Decimal(r["dailyInterestRate"]) for r in rows}
    periodic = [c for c in charged if c.type == "PERIODIC"]
    assert periodic and all(by_hour[c.time_ms] == c.rate for c in periodic)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"asset": "USDT", "startTime": "-94d", "endTime": "-0d"}, -1100),  # wider than 93 days
        ({"asset": "USDT", "startTime": "-1d", "endTime": "+1h"}, -1100),  # ends in the future
        ({"asset": "USDT", "startTime": "-200d", "endTime": "-190d"}, -1100),  # past 6 months
        ({"asset": "USDT", "startTime": "-1d", "endTime": "-2d"}, -1100),
        ({"asset": "NOPE"}, -3027),
        ({}, -1102),
        ({"asset": "USDT", "limit": "101"}, -1130),
    ],
)
def test_rate_history_refuses_windows_it_does_not_serve(
    market: tuple[RunningSimulator, SignedClient], params: dict[str, str], code: int
) -> None:
    running, client = market
    now = now_of(running)
    units = {"d": DAY_MS, "h": HOUR_MS}
    resolved = {
        k: str(now + int(v[:-1]) * units[v[-1]]) if k.endswith("Time") else v
        for k, v in params.items()
    }
    response = client.get(f"{M}/interestRateHistory", **resolved)
    assert error_of(response) == (400, code)
    if code == -1100:
        assert response.json()["msg"] == "Illegal characters found in a parameter."


def test_a_93_day_window_is_served(market: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = market
    end = now_of(running) - HOUR_MS
    rows = client.ok(
        "GET",
        f"{M}/interestRateHistory",
        asset="BTC",
        startTime=end - 93 * DAY_MS,
        endTime=end,
        vipLevel="1",
    )
    assert len(rows) == 20 and all(r["vipLevel"] == 1 for r in rows)
    assert rows[0]["timestamp"] == end // HOUR_MS * HOUR_MS


def test_next_hourly_rate_is_the_next_hours_daily_rate_over_24(
    market: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = market
    response = client.get(f"{M}/next-hourly-interest-rate", assets="BTC,USDT", isIsolated="FALSE")
    second = client.get(f"{M}/next-hourly-interest-rate", assets="ETH", isIsolated="TRUE")
    assert used_ip_weight(second) - used_ip_weight(response) == 100
    next_hour = now_of(running) // HOUR_MS * HOUR_MS + HOUR_MS
    for row in response.json():
        daily = running.exchange.rate(row["asset"], next_hour)
        expected = (daily / 24).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP)
        assert Decimal(row["nextHourlyInterestRate"]) == expected
    assert [r["asset"] for r in response.json()] == ["BTC", "USDT"]
    many = ",".join(["BTC"] * 21)
    rate = f"{M}/next-hourly-interest-rate"
    assert error_of(client.get(rate, assets=many, isIsolated="FALSE")) == (400, -1130)
    assert error_of(client.get(rate, assets="BTC")) == (400, -1102)
    assert error_of(client.get(rate, assets="BTC,NOPE", isIsolated="FALSE")) == (400, -3027)


def test_no_float_leaves_the_simulator(market: tuple[RunningSimulator, SignedClient]) -> None:
    """Decimals are strings in every reference answer: a JSON float would be a bug."""
    _, client = market

    def refuse(token: str) -> Any:
        raise AssertionError(f"a float in the answer: {token}")

    public = [("/api/v3/exchangeInfo", {}), (KLINES, {"symbol": "BNBBTC", "interval": "1h"})]
    for path, params in public:
        json.loads(client.http.get(path, params=params).text, parse_float=refuse)
    signed: list[tuple[str, dict[str, str]]] = [
        (f"{M}/crossMarginData", {}),
        (f"{M}/isolatedMarginData", {}),
        ("/sapi/v1/capital/config/getall", {}),
        (f"{M}/interestRateHistory", {"asset": "BNB"}),
        (f"{M}/next-hourly-interest-rate", {"assets": "BNB", "isIsolated": "FALSE"}),
    ]
    for path, params in signed:
        json.loads(client.get(path, **params).text, parse_float=refuse)
