"""Request weight over real HTTP: headers, per-endpoint budgets, 429/418, the allOrders cap,
and the /_sim/stats counters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.limits import WeightLimiter
from simulator.scenarios import build_exchange
from simulator.server import RunningSimulator
from tests.fixtures_sim import SignedClient, SimFactory

INTEREST = "/sapi/v1/margin/interestHistory"
TRANSFER = "/sapi/v1/margin/transfer"


def fresh_window(client: SignedClient, window_ms: int = 60_000) -> None:
    """Travel to the start of the next weight window, so a burst never straddles two."""
    now = client.http.get("/_sim/stats").json()["now_ms"]
    client.http.post("/_sim/advance", params={"ms": window_ms - now % window_ms})
    client.sync_time()


@pytest.fixture()
def tight(sim_factory: SimFactory) -> Iterator[tuple[RunningSimulator, SignedClient]]:
    """A private simulator whose IP endpoints may spend 25 weight per minute."""
    running = sim_factory(exchange=build_exchange("tiny", 5, None), weight_limit=25)
    client = SignedClient(running.url)
    yield running, client
    client.close()


def test_weight_headers_by_kind(sim_client: SignedClient) -> None:
    response = sim_client.get(INTEREST)
    assert int(response.headers["X-SAPI-USED-IP-WEIGHT-1M"]) >= 1
    response = sim_client.get("/sapi/v1/margin/maxBorrowable", asset="USDT")
    assert response.status_code == 200, response.text
    assert int(response.headers["X-SAPI-USED-UID-WEIGHT-1M"]) >= 750
    assert "X-SAPI-USED-IP-WEIGHT-1M" not in response.headers
    response = sim_client.http.get("/api/v3/time")
    assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) >= 1
    # errors are weighed too
    bad = sim_client.get(INTEREST, size=1000)
    assert bad.status_code == 400 and "X-SAPI-USED-IP-WEIGHT-1M" in bad.headers


def test_budget_exhausted_gives_429_with_retry_after(
    tight: tuple[RunningSimulator, SignedClient],
) -> None:
    _, client = tight
    fresh_window(client)
    used = [int(client.get(INTEREST).headers["X-SAPI-USED-IP-WEIGHT-1M"]) for _ in range(25)]
    assert used == list(range(1, 26))
    refused = client.get(INTEREST)
    assert refused.status_code == 429
    assert refused.json()["code"] == -1003
    assert "current limit is 25 request weight per 1 MINUTE" in refused.json()["msg"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-SAPI-USED-IP-WEIGHT-1M"] == "25"
    # budgets are per endpoint: the transfer list still has its own
    assert client.get(TRANSFER).status_code == 200
    stats = client.http.get("/_sim/stats").json()
    interest = stats["endpoints"][f"GET {INTEREST}"]
    assert interest == {"requests": 26, "weight": 25, "throttled": 1, "banned": 0, "faults": 0}
    # the next window starts empty
    client.http.post("/_sim/advance", params={"ms": 60_000}).raise_for_status()
    client.sync_time()
    assert client.get(INTEREST).headers["X-SAPI-USED-IP-WEIGHT-1M"] == "1"


def test_all_orders_sixty_requests_per_minute(sim_factory: SimFactory) -> None:
    running = sim_factory(exchange=build_exchange("tiny", 5, None), weight_limit=10**7)
    client = SignedClient(running.url)
    fresh_window(client)
    statuses = [
        client.get("/sapi/v1/margin/allOrders", symbol="BTCUSDT").status_code for _ in range(61)
    ]
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429
    refused = client.get("/sapi/v1/margin/allOrders", symbol="BTCUSDT")
    assert refused.json()["code"] == -1003 and "Retry-After" in refused.headers
    client.close()


def test_418_mode_bans_after_ignored_429s(sim_factory: SimFactory) -> None:
    running = sim_factory(
        exchange=build_exchange("tiny", 5, None), weight_limit=2, ban_after_429s=2
    )
    client = SignedClient(running.url)
    fresh_window(client)
    statuses = [client.get(INTEREST).status_code for _ in range(6)]
    assert statuses == [200, 200, 429, 429, 418, 418]
    banned = client.get(TRANSFER)  # the ban covers the whole IP
    assert banned.status_code == 418 and banned.json()["code"] == -1003
    assert int(banned.headers["Retry-After"]) > 60
    client.close()


def test_limits_and_stats_controls(tight: tuple[RunningSimulator, SignedClient]) -> None:
    _, client = tight
    client.http.post("/_sim/limits", params={"weight_limit": 3, "window_ms": 5000})
    fresh_window(client, 5000)
    statuses = [client.get(INTEREST).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert int(client.get(INTEREST).headers["Retry-After"]) <= 5
    stats = client.http.get("/_sim/stats").json()
    assert stats["weight_limit"] == 3 and stats["weight_window_ms"] == 5000
    assert stats["totals"]["throttled"] == 2
    client.http.post("/_sim/reset-stats").raise_for_status()
    assert client.http.get("/_sim/stats").json()["totals"]["requests"] == 0


def test_fixed_windows_reset_on_the_boundary() -> None:
    limiter = WeightLimiter(10, 1000)
    assert limiter.charge("e", "IP", 10, 1500).allowed
    refused = limiter.charge("e", "IP", 1, 1999)
    assert not refused.allowed and refused.retry_after_s == 1
    assert limiter.charge("e", "IP", 1, 2000).used == 1
    # UID budgets keep Binance's 15x ratio to IP ones
    assert limiter.limit_of("UID") == 150
