"""Fault injection over real HTTP: each fault as a client sees it, replayability, and that a
client which retries properly still reads every row."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator.faults import FaultInjector, FaultKind, FaultProfile
from simulator.params import DAY_MS, HOUR_MS
from simulator.scenarios import build_exchange
from simulator.server import RunningSimulator
from tests.fixtures_sim import SignedClient, SimFactory

INTEREST = "/sapi/v1/margin/interestHistory"
TRANSFER = "/sapi/v1/margin/transfer"


@pytest.fixture(scope="module")
def faulty(sim_factory: SimFactory) -> Iterator[tuple[RunningSimulator, SignedClient]]:
    running = sim_factory(exchange=build_exchange("tiny", 11, None), weight_limit=10**7)
    client = SignedClient(running.url)
    yield running, client
    client.close()


def always(kind: FaultKind) -> FaultProfile:
    return FaultProfile(f"always-{kind}", rates={kind: 1.0}, slow_ms=(30, 40))


def outcomes(client: SignedClient, n: int, path: str = INTEREST) -> list[httpx.Response | str]:
    """n requests; a transport failure is recorded by its exception's name."""
    seen: list[httpx.Response | str] = []
    for _ in range(n):
        try:
            seen.append(client.get(path))
        except httpx.HTTPError as exc:
            seen.append(type(exc).__name__)
    return seen


def test_server_errors_with_and_without_json(faulty: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = faulty
    running.app.set_faults(always("server_error"))
    seen = [r for r in outcomes(client, 24) if isinstance(r, httpx.Response)]
    statuses = {r.status_code for r in seen}
    assert statuses == {500, 502, 503, 504}
    json_ones = [r for r in seen if r.headers["content-type"].startswith("application/json")]
    assert json_ones and all(r.json()["code"] == -1000 for r in json_ones)
    assert any(r.headers["content-type"].startswith("text/") for r in seen)


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("timeout_unknown", 503, -1007), ("disconnected", 503, -1001), ("busy", 400, -3044)],
)
def test_coded_faults(
    faulty: tuple[RunningSimulator, SignedClient], kind: FaultKind, status: int, code: int
) -> None:
    running, client = faulty
    running.app.set_faults(always(kind))
    response = client.get(INTEREST)
    assert (response.status_code, response.json()["code"]) == (status, code)
    if code == -1007:
        assert "execution status unknown" in response.json()["msg"]


def test_rate_bursts_say_retry_after_zero_sometimes(
    faulty: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = faulty
    running.app.set_faults(always("rate_burst"))
    seen = [r for r in outcomes(client, 16) if isinstance(r, httpx.Response)]
    assert {r.status_code for r in seen} == {429}
    assert {r.json()["code"] for r in seen} == {-1003}
    assert "0" in {r.headers["Retry-After"] for r in seen}


def test_waf_page_is_not_json(faulty: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = faulty
    running.app.set_faults(always("waf"))
    response = client.get(INTEREST)
    assert response.status_code == 403
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_dropped_connections_and_truncated_bodies(
    faulty: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = faulty
    running.app.set_faults(always("drop"))
    assert set(outcomes(client, 3)) == {"RemoteProtocolError"}
    running.app.set_faults(always("truncate"))
    seen = outcomes(client, 12)
    assert "RemoteProtocolError" in seen  # Content-Length promised more than arrived
    cut = [r for r in seen if isinstance(r, httpx.Response)]
    assert cut and all(r.status_code == 200 for r in cut)
    with pytest.raises(json.JSONDecodeError):
        cut[0].json()
    # a state-changing request is never cut after it executed
    response = client.request("POST", "/sapi/v1/margin/listen-key")
    assert response.status_code == 200 and response.json()["listenKey"]


def test_slow_answers(faulty: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = faulty
    running.app.set_faults(always("slow"))
    began = time.perf_counter()
    assert client.get(INTEREST).status_code == 200
    assert time.perf_counter() - began >= 0.03


def test_clock_skew_gives_both_1021_messages_and_shows_in_server_time(
    faulty: tuple[RunningSimulator, SignedClient],
) -> None:
    running, client = faulty
    running.app.set_faults(always("clock_skew"))
    messages = set()
    for response in outcomes(client, 24):
        assert isinstance(response, httpx.Response)
        if response.status_code == 400:
            messages.add(response.json()["msg"])
    assert messages == {
        "Timestamp for this request is outside of the recvWindow.",
        "Timestamp for this request was 1000ms ahead of the server's time.",
    }
    server = client.http.get("/api/v3/time").json()["serverTime"]
    with running.exchange.lock:
        assert abs(server - running.exchange.now_ms()) >= 2000


def test_rows_arrive_while_a_client_pages(faulty: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = faulty
    running.app.set_faults(FaultProfile("arrivals", insert_rows_rate=1.0))
    client.sync_time()
    first = client.ok("GET", TRANSFER, asset="USDT", size=2, current=1)
    second = client.ok("GET", TRANSFER, asset="USDT", size=2, current=2)
    assert second["total"] == first["total"] + 1
    # the newcomer is a real, confirmed ROLL_IN at the head of the list
    head = client.ok("GET", TRANSFER, asset="USDT", size=1)["rows"][0]
    assert head["type"] == "ROLL_IN" and head["status"] == "CONFIRMED"


def test_seconds_mode_on_transfer_rows_only(faulty: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = faulty
    running.app.set_faults(FaultProfile("seconds", seconds_timestamps=True))
    client.sync_time()
    rows = client.ok("GET", TRANSFER, size=5)["rows"]
    assert rows and all(r["timestamp"] < 10**11 for r in rows)
    interest = client.ok("GET", INTEREST, size=5)["rows"]
    assert all(r["interestAccuredTime"] > 10**12 for r in interest)
    running.app.set_faults("none")
    assert all(r["timestamp"] > 10**12 for r in client.ok("GET", TRANSFER, size=5)["rows"])


def test_faulted_requests_still_weigh(faulty: tuple[RunningSimulator, SignedClient]) -> None:
    running, client = faulty
    running.app.set_faults(always("waf"))
    client.http.post("/_sim/reset-stats")
    client.get(INTEREST)
    stats = client.http.get("/_sim/stats").json()["endpoints"][f"GET {INTEREST}"]
    assert stats["weight"] == 1 and stats["faults"] == 1
    running.app.set_faults("none")


def test_faults_replay_from_the_seed() -> None:
    def draws(seed: int) -> list[Any]:
        injector = FaultInjector("hostile", seed)
        return [injector.draw(state_changing=i % 5 == 0) for i in range(500)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    kinds = {f.kind for f in draws(3) if f is not None}
    assert {"server_error", "drop", "truncate", "rate_burst", "waf", "clock_skew"} <= kinds


def test_a_retrying_client_reads_every_row_under_hostile_faults(sim_factory: SimFactory) -> None:
    running = sim_factory(exchange=build_exchange("tiny", 12, None), weight_limit=10**7, seed=12)
    client = SignedClient(running.url)
    client.http.post("/_sim/faults", params={"profile": "hostile"}).raise_for_status()
    start = client.timestamp() - 6 * DAY_MS

    def page(asset: str, current: int) -> dict[str, Any]:
        window = {"startTime": start, "endTime": client.timestamp() + HOUR_MS}
        for _ in range(100):
            try:
                response = client.get(INTEREST, asset=asset, current=current, size=5, **window)
                if response.status_code == 200:
                    return dict(response.json())
                if response.status_code == 400 and response.json()["code"] == -1021:
                    client.sync_time()
            except (httpx.HTTPError, ValueError, KeyError):
                pass  # dropped, truncated, cut mid-JSON, not JSON, a faulted time sync: again
        raise AssertionError("no answer after 100 attempts")

    def read_from_head(asset: str, seen: dict[int, Any], *, whole: bool) -> bool:
        """Walk pages from the newest; unless `whole`, stop at a page with nothing new.
        True when something new was found."""
        found, current = False, 1
        while rows := page(asset, current)["rows"]:
            fresh = [r for r in rows if r["txId"] not in seen]
            seen.update((r["txId"], r) for r in rows)
            found = found or bool(fresh)
            if not fresh and not whole:
                break
            current += 1
        return found

    for asset in ("USDT", "BTC", "ETH", "BNB"):
        seen: dict[int, Any] = {}
        read_from_head(asset, seen, whole=True)
        # rows that arrived while paging sit at the head: re-read until nothing is new there
        while read_from_head(asset, seen, whole=False):
            pass
        with running.exchange.lock:
            ledger = running.exchange.interest(asset, start, running.exchange.now_ms())
            expected = {r.tx_id for r in ledger}
        assert set(seen) == expected, (asset, set(seen) - expected, expected - set(seen))
    assert client.http.get("/_sim/stats").json()["totals"]["faults"] > 5
    client.close()
