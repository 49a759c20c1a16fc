"""Simulator fixtures (a pytest plugin): a shared simulator on loopback, a factory for private
ones, and a small signing client that speaks to them over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import pytest

from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.server import RunningSimulator, start_simulator

# Every simulator a test starts answers this much later (ms) unless the test says otherwise: the
# suite must pass at 0 and at 50 (`MARGIN_ETL_TEST_LATENCY_MS=50 make unit`).
TEST_LATENCY_MS = int(os.environ.get("MARGIN_ETL_TEST_LATENCY_MS", "0"))


class SimFactory(Protocol):
    def __call__(self, **options: Any) -> RunningSimulator: ...


class SignedClient:
    """Signs like the official SDK (caller's order, timestamp last, HMAC hex), with the
    clock offset taken from /api/v3/time as real clients do."""

    def __init__(
        self, url: str, key: str = DEFAULT_API_KEY, secret: str = DEFAULT_API_SECRET
    ) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.key = key
        self.secret = secret
        self.offset_ms = 0
        self.sync_time()

    def sync_time(self) -> None:
        server = self.http.get("/api/v3/time").json()["serverTime"]
        self.offset_ms = server - int(time.time() * 1000)

    def timestamp(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def query(self, params: dict[str, Any]) -> str:
        payload = urlencode({**params, "timestamp": params.get("timestamp", self.timestamp())})
        signature = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}&signature={signature}"

    def request(self, method: str, path: str, **params: Any) -> httpx.Response:
        headers = {"X-MBX-APIKEY": self.key}
        return self.http.request(method, f"{path}?{self.query(params)}", headers=headers)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.request("GET", path, **params)

    def ok(self, method: str, path: str, **params: Any) -> Any:
        """The JSON of a request that must succeed."""
        response = self.request(method, path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="session")
def sim_factory() -> Iterator[SimFactory]:
    """Start private simulators (any `start_simulator` option); all stop at session end."""
    started: list[RunningSimulator] = []

    def start(**options: Any) -> RunningSimulator:
        options.setdefault("scenario", "default")
        options.setdefault("latency_ms", TEST_LATENCY_MS)
        running = start_simulator(**options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="session")
def sim(sim_factory: SimFactory) -> RunningSimulator:
    """The shared simulator: scenario `default`, seed 1, no faults, server clock = wall clock.
    Read from it; do not travel its clock (clients that use local time rely on it) — start a
    private one with `sim_factory` for that."""
    return sim_factory(scenario="default", seed=1)


@pytest.fixture(scope="session")
def sim_client(sim: RunningSimulator) -> Iterator[SignedClient]:
    """A signing client bound to the shared simulator."""
    client = SignedClient(sim.url)
    yield client
    client.close()
