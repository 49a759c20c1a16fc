"""The API generations a simulator speaks: `current` (the default, today's Binance: the seed's
removed endpoints answer as unknown paths do), `seed` (the 2019 document's endpoints, without
today's replacements) and `both`; and the generation the connector's `auto` probe picks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from connectors import MarginClient
from connectors.client import ClientSettings
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.endpoints import API_GENERATIONS, ENDPOINTS, ApiGeneration, Endpoint
from simulator.params import HOUR_MS
from simulator.server import RunningSimulator, make_config, start_simulator
from tests.fixtures_sim import SignedClient, SimFactory

M = "/sapi/v1/margin"
SEED_ONLY = [e for e in ENDPOINTS if e.generation == "seed"]
REPLACEMENTS = [e for e in ENDPOINTS if e.generation == "current"]
# parameters that get each endpoint past its own checks, where it has any
VALID: dict[str, dict[str, str]] = {
    f"POST {M}/loan": {"asset": "USDT", "amount": "1"},
    f"POST {M}/repay": {"asset": "USDT", "amount": "1"},
    f"POST {M}/transfer": {"asset": "USDT", "amount": "1", "type": "1"},
    f"GET {M}/loan": {"asset": "USDT"},
    f"GET {M}/repay": {"asset": "USDT"},
    f"GET {M}/asset": {"asset": "USDT"},
    f"GET {M}/pair": {"symbol": "BTCUSDT"},
    f"POST {M}/borrow-repay": {"asset": "USDT", "amount": "1", "type": "BORROW"},
    f"GET {M}/borrow-repay": {"type": "BORROW"},
    "POST /sapi/v1/asset/transfer": {"type": "MAIN_MARGIN", "asset": "USDT", "amount": "1"},
    "GET /sapi/v1/asset/transfer": {"type": "MAIN_MARGIN"},
}


@pytest.fixture(scope="module")
def servers(sim_factory: SimFactory) -> dict[ApiGeneration, RunningSimulator]:
    """One small simulator per generation (the calls below write to their ledgers)."""
    return {
        api: sim_factory(scenario="tiny", seed=5, api_generation=api) for api in API_GENERATIONS
    }


@pytest.fixture(scope="module")
def clients(
    servers: dict[ApiGeneration, RunningSimulator],
) -> Iterator[dict[ApiGeneration, SignedClient]]:
    made = {api: SignedClient(running.url) for api, running in servers.items()}
    yield made
    for client in made.values():
        client.close()


def call(client: SignedClient, endpoint: Endpoint) -> httpx.Response:
    """One valid call of the endpoint (a stream is opened first where a listen key is needed)."""
    params = dict(VALID.get(endpoint.name, {}))
    if endpoint.security == "USER_STREAM" and endpoint.method != "POST":
        opened = client.request("POST", endpoint.path)
        if opened.status_code == 200:
            params["listenKey"] = opened.json()["listenKey"]
    return client.request(endpoint.method, endpoint.path, **params)


def test_the_default_is_todays_api() -> None:
    with start_simulator(scenario="empty", seed=1) as running:
        assert running.app.config.api_generation == "current"
        client = SignedClient(running.url)
        response = client.get(f"{M}/loan", asset="USDT")
        client.close()
    assert (response.status_code, response.content) == (404, b"")


def test_an_unknown_generation_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="unknown API generation '2019'"):
        start_simulator(scenario="empty", seed=1, api_generation="2019")
    with pytest.raises(ValueError, match="current, seed, both"):
        make_config(
            seed=1,
            faults="none",
            api_key="k",
            api_secret="s",
            truth_dir=None,
            weight_limit=1,
            weight_window_ms=1,
            latency_ms=0,
            api_generation="legacy",
        )


@pytest.mark.parametrize("endpoint", SEED_ONLY, ids=lambda e: e.name)
def test_under_current_the_seeds_removed_endpoints_answer_as_unknown_paths(
    clients: dict[ApiGeneration, SignedClient], endpoint: Endpoint
) -> None:
    response = call(clients["current"], endpoint)
    assert (response.status_code, response.content) == (404, b"")
    unknown = clients["current"].request("GET", "/sapi/v1/margin/nonexistent")
    assert (unknown.status_code, unknown.content, dict(unknown.headers).keys()) == (
        response.status_code,
        response.content,
        dict(response.headers).keys(),
    )


@pytest.mark.parametrize("api", ["seed", "both"])
@pytest.mark.parametrize("endpoint", SEED_ONLY, ids=lambda e: e.name)
def test_the_seeds_endpoints_answer_under_seed_and_both(
    clients: dict[ApiGeneration, SignedClient], endpoint: Endpoint, api: ApiGeneration
) -> None:
    response = call(clients[api], endpoint)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("api", ["current", "both"])
@pytest.mark.parametrize("endpoint", REPLACEMENTS, ids=lambda e: e.name)
def test_todays_replacements_answer_under_current_and_both(
    clients: dict[ApiGeneration, SignedClient], endpoint: Endpoint, api: ApiGeneration
) -> None:
    response = call(clients[api], endpoint)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", REPLACEMENTS, ids=lambda e: e.name)
def test_under_seed_todays_replacements_are_unknown(
    clients: dict[ApiGeneration, SignedClient], endpoint: Endpoint
) -> None:
    response = call(clients["seed"], endpoint)
    assert (response.status_code, response.content) == (404, b"")


@pytest.mark.parametrize("api", API_GENERATIONS)
def test_everything_else_is_served_in_every_generation(
    clients: dict[ApiGeneration, SignedClient], api: ApiGeneration
) -> None:
    client = clients[api]
    assert client.ok("GET", f"{M}/interestHistory")["total"] >= 0
    assert client.ok("GET", f"{M}/capital-flow") is not None
    assert client.ok("GET", f"{M}/interestRateHistory", asset="BTC")
    assert client.http.get("/api/v3/exchangeInfo").status_code == 200


def test_under_both_the_generations_share_one_ledger(
    clients: dict[ApiGeneration, SignedClient], servers: dict[ApiGeneration, RunningSimulator]
) -> None:
    client = clients["both"]
    old = client.ok("POST", f"{M}/loan", asset="USDT", amount="7")["tranId"]
    new = client.ok(
        "POST", f"{M}/borrow-repay", asset="USDT", isIsolated="FALSE", amount="8", type="BORROW"
    )["tranId"]
    now = client.timestamp()
    seen_today = client.ok(
        "GET", f"{M}/borrow-repay", type="BORROW", asset="USDT", startTime=now - HOUR_MS
    )
    seen_2019 = client.ok("GET", f"{M}/loan", asset="USDT", startTime=now - HOUR_MS)
    assert {old, new} <= {r["txId"] for r in seen_today["rows"]}
    assert {old, new} <= {r["txId"] for r in seen_2019["rows"]}
    with servers["both"].exchange.lock:
        loans = servers["both"].exchange.loans("USDT", now - HOUR_MS, now + HOUR_MS)
    assert {r.tx_id: r.principal for r in loans}.items() >= {
        old: Decimal(7),
        new: Decimal(8),
    }.items()


@pytest.mark.parametrize(
    ("api", "probed"), [("current", "current"), ("seed", "legacy"), ("both", "current")]
)
def test_the_connectors_auto_probe_picks_the_served_generation(
    servers: dict[ApiGeneration, RunningSimulator], api: ApiGeneration, probed: str
) -> None:
    async def probe() -> str:
        settings = ClientSettings(api_generation="auto")
        async with MarginClient(
            servers[api].url, DEFAULT_API_KEY, DEFAULT_API_SECRET, settings
        ) as margin:
            return await margin.api_generation()

    assert asyncio.run(probe()) == probed


def test_unknown_paths_are_counted(servers: dict[ApiGeneration, RunningSimulator]) -> None:
    running = servers["current"]
    before = running.app.stats.unknown_paths
    httpx.get(f"{running.url}/sapi/v1/margin/repay")
    assert running.app.stats.unknown_paths == before + 1
