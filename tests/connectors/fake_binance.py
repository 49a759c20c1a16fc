"""A scripted Binance behind `httpx.MockTransport`, for the connector's unit tests.

It checks what the real server checks (API key header, HMAC over the raw query minus the
trailing signature, the timestamp against recvWindow) and serves per-path handlers; tests queue
failures per path to see how the client copes. Integration tests use the real simulator.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

from connectors import MarginClient
from connectors.client import BinanceClient, ClientSettings
from connectors.retry import RetrySettings

KEY = "test-api-key-0123456789abcdefABCDEF"
SECRET = "test-api-secret-NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZ"
FAST_RETRY = RetrySettings(
    max_attempts=8,
    deadline_s=20,
    backoff_base_s=0.001,
    backoff_max_s=0.005,
    rate_limit_floor_s=0.01,
    ban_floor_s=0.02,
)

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]
Route = Callable[[dict[str, str]], Any]


def error(
    status: int, code: int, msg: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "msg": msg}, headers=headers)


def drop(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class FakeBinance:
    """A tiny Binance: signature and timestamp checks, routes, queued failures, a request log."""

    def __init__(self, secret: str = SECRET, key: str = KEY) -> None:
        self.secret = secret
        self.key = key
        self.clock_offset_ms = 0  # the server clock runs this far ahead of ours
        self.routes: dict[str, Route] = {}
        self.queued: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[httpx.Request] = []
        self.answered: list[tuple[str, int]] = []  # (path, status)

    def route(self, path: str, handler: Route) -> None:
        self.routes[path] = handler

    def queue(self, path: str, *replies: Reply) -> None:
        self.queued[path].extend(replies)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def calls(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self._answer(request)
        self.answered.append((request.url.path, response.status_code))
        return response

    def _check_signed(self, raw: str) -> httpx.Response | None:
        payload, _, signature = raw.rpartition("&signature=")
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if signature.lower() != expected:
            return error(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload))
        server_now = now_ms() + self.clock_offset_ms
        stamp = int(params["timestamp"])
        if not (stamp < server_now + 1000 and server_now - stamp <= int(params["recvWindow"])):
            return error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return None

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v3/time":
            if self.queued[path]:
                reply = self.queued[path].popleft()
                return reply(request) if callable(reply) else reply
            return httpx.Response(200, json={"serverTime": now_ms() + self.clock_offset_ms})
        if request.headers.get("X-MBX-APIKEY") != self.key:
            return error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        raw = request.url.query.decode()
        if "signature=" in raw:  # MARKET_DATA calls carry the key only
            rejected = self._check_signed(raw)
            if rejected is not None:
                return rejected
        params = dict(parse_qsl(raw.rpartition("&signature=")[0] or raw))
        if self.queued[path]:
            reply = self.queued[path].popleft()
            return reply(request) if callable(reply) else reply
        if path not in self.routes:
            return httpx.Response(404, text="<html>Not Found</html>")
        return httpx.Response(
            200,
            content=json.dumps(self.routes[path](params)).encode(),
            headers={"Content-Type": "application/json", "X-SAPI-USED-IP-WEIGHT-1M": "1"},
        )


def settings(**kw: Any) -> ClientSettings:
    base: dict[str, Any] = {"retry": FAST_RETRY, "api_generation": "current"}
    base.update(kw)
    return ClientSettings(**base)


def client_for(fake: FakeBinance, **kw: Any) -> MarginClient:
    return MarginClient(
        "https://api.binance.test",
        fake.key,
        fake.secret,
        settings(**kw),
        transport=fake.transport(),
    )


def raw_client_for(fake: FakeBinance, **kw: Any) -> BinanceClient:
    return BinanceClient(
        "https://api.binance.test",
        fake.key,
        fake.secret,
        settings(**kw),
        transport=fake.transport(),
    )
