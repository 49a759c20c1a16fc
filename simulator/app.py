"""The simulator's ASGI application: Binance's margin REST API over a ledger engine, with
weights, signatures, seeded faults, and unsigned `/_sim/*` controls for tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from simulator import auth
from simulator.auth import ApiCredential, KeyRing
from simulator.contract import ExchangeError, ExchangeProtocol
from simulator.endpoints import ROUTES, ApiGeneration, Arrival, Endpoint
from simulator.errors import MESSAGES, RATE_CAP, ApiError
from simulator.faults import PROFILES, Fault, FaultInjector, FaultProfile
from simulator.handlers import Call, SimState
from simulator.holds import KeyBarrier, RequestHold
from simulator.limits import (
    IP_LIMIT,
    WEIGHT_HEADERS,
    WINDOW_MS,
    RequestStats,
    Verdict,
    WeightLimiter,
)
from simulator.params import Params, parse_pairs
from simulator.truth import write_truth

log = logging.getLogger("simulator")

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html"
TRANSPORT_KEY = "sim.transport"
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
BAN_MESSAGE = (
    "Way too much request weight used; IP banned until {until}. "
    "Please use WebSocket Streams for live updates to avoid bans."
)
WAF_PAGE = (
    b"<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1>"
    b"</center><hr><center>Request blocked by a web application firewall rule.</center>"
    b"</body></html>"
)
GATEWAY_PAGES = {
    502: b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>",
    504: b"<html><head><title>504 Gateway Time-out</title></head><body>504 Gateway Time-out"
    b"</body></html>",
}
ARRIVAL_AMOUNT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything about the server that is not the ledger."""

    credentials: tuple[ApiCredential, ...] = auth.default_credentials(
        auth.DEFAULT_API_KEY, auth.DEFAULT_API_SECRET
    )
    seed: int = 0
    faults: str | FaultProfile = "none"
    weight_limit: int = IP_LIMIT
    weight_window_ms: int = WINDOW_MS
    latency_ms: int = 0
    truth_dir: Path | None = None
    ban_after_429s: int | None = None  # 418 mode: off unless set
    seconds_timestamps: bool | None = None  # None: as the fault profile says
    # current: today's Binance, the seed's removed endpoints answer as unknown paths;
    # seed: the seed's endpoints without today's replacements; both: everything
    api_generation: ApiGeneration = "current"
    # the /_sim/* controls (stats, clock, truth, faults, limits): off on a server others reach
    controls: bool = True


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type=JSON_TYPE)


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error.status, error.body(), headers)


def not_found() -> Response:
    """What Binance answers for a path it does not serve, removed endpoints included: 404 with
    an empty body (as api.binance.com answered a removed path in 2025, facts-endpoints §10)."""
    return Response(b"", 404)


async def close_transport(scope: Scope) -> None:
    """Hang up on the client. Under uvicorn the transport is at hand; in-process (httpx's
    ASGITransport) the nearest equivalent is the error the client would have seen."""
    transport = scope.get(TRANSPORT_KEY)
    if transport is None:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    transport.close()
    # let the event loop deliver connection_lost, so uvicorn knows not to answer
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class Dropped(Response):
    """No answer at all: the connection closes."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await close_transport(scope)


class Truncated(Response):
    """Headers promise the whole body; part of it arrives, then the connection closes."""

    def __init__(self, content: bytes, headers: dict[str, str]) -> None:
        super().__init__(content, 200, headers, media_type=JSON_TYPE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        part = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": part, "more_body": True})
        await close_transport(scope)


class SimulatorApp:
    """The ASGI callable. Wraps a Starlette app; notes uvicorn's transport on each request so
    that connection faults can really drop the connection."""

    def __init__(self, exchange: ExchangeProtocol, config: SimConfig = SimConfig()) -> None:
        self.exchange = exchange
        self.config = config
        self.keys = KeyRing(config.credentials)
        self.limiter = WeightLimiter(
            config.weight_limit, config.weight_window_ms, ban_after_429s=config.ban_after_429s
        )
        self.stats = RequestStats()
        self.faults = FaultInjector(config.faults, config.seed)
        self.state = SimState()
        self._sync_modes()
        self.latency_ms = config.latency_ms
        self.hold: RequestHold | None = None  # set by tests: see simulator.holds
        self.barrier: KeyBarrier | None = None
        controls = [
            Route("/_sim/stats", self.sim_stats, methods=["GET"]),
            Route("/_sim/advance", self.sim_advance, methods=["POST"]),
            Route("/_sim/truth", self.sim_truth, methods=["POST"]),
            Route("/_sim/faults", self.sim_faults, methods=["POST"]),
            Route("/_sim/reset-stats", self.sim_reset_stats, methods=["POST"]),
            Route("/_sim/limits", self.sim_limits, methods=["POST"]),
        ]
        self.starlette = Starlette(
            routes=[
                *(controls if config.controls else ()),
                Route("/{path:path}", self.api, methods=ALL_METHODS),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                scope[TRANSPORT_KEY] = transport
        await self.starlette(scope, receive, send)

    # -- the Binance API ---------------------------------------------------------------------
    async def api(self, request: Request) -> Response:
        endpoint = ROUTES.get((request.method, request.scope["path"]))
        if endpoint is None or not endpoint.served_in(self.config.api_generation):
            self.stats.unknown_paths += 1
            return not_found()
        if self.hold is not None:
            await self.hold.enter()
        if self.barrier is not None:
            await self.barrier.enter(endpoint.path, request.headers.get("X-MBX-APIKEY"))
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        query: bytes = request.scope["query_string"]
        form = await self._form_body(request)
        params = Params(parse_pairs(query), parse_pairs(form))
        stats = self.stats.of(endpoint.name)
        stats.requests += 1
        with self.exchange.lock:
            self.exchange.catch_up()
            now = self.exchange.now_ms()
            weight = endpoint.weight_of(params, self.exchange)
        bucket = self.limiter.bucket_of(endpoint.kind, endpoint.name)
        verdict = self.limiter.charge(
            bucket, endpoint.kind, weight, now, requests_cap=endpoint.requests_cap
        )
        headers = {WEIGHT_HEADERS[endpoint.kind]: str(verdict.used)}
        if not verdict.allowed:
            return self._refused(endpoint, verdict, headers, now)
        stats.weight += weight
        fault = self.faults.draw(state_changing=request.method != "GET")
        if fault is not None:
            stats.faults += 1
            self.stats.fault_kinds[fault.kind] += 1
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay_ms / 1000)
            elif fault.kind not in ("clock_skew", "truncate"):
                return self._fault_response(fault, headers)
        status, body = self._answer(endpoint, request, params, query, form)
        content = orjson.dumps(body)
        if fault is not None and fault.kind == "truncate" and status == 200:
            if fault.variant % 2 == 0:
                return Truncated(content, headers)
            # complete as far as HTTP goes, but the JSON stops mid-way
            return Response(content[: len(content) // 2], 200, headers, media_type=JSON_TYPE)
        return Response(content, status, headers, media_type=JSON_TYPE)

    async def _form_body(self, request: Request) -> bytes:
        if request.method == "GET":
            return b""
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        if content_type and "x-www-form-urlencoded" not in content_type:
            return b""  # the API reads form bodies only
        return body

    def _answer(
        self, endpoint: Endpoint, request: Request, params: Params, query: bytes, form: bytes
    ) -> tuple[int, Any]:
        try:
            with self.exchange.lock:
                self.exchange.catch_up()
                call = self._authorize(endpoint, request, params, query, form)
                if endpoint.arrival is not None and self._later_page(params):
                    self._arrive(endpoint.arrival, params)
                    # the newcomer happened at the clock's current ms, which may be past the
                    # call's "now": take the time again so the answer's window includes it
                    call = self._authorize(endpoint, request, params, query, form)
                return 200, endpoint.handler(call)
        except ApiError as exc:
            return exc.status, exc.body()
        except Exception:
            log.exception("simulator failed on %s", endpoint.name)
            error = ApiError(-1000)
            return error.status, error.body()

    def _authorize(
        self, endpoint: Endpoint, request: Request, params: Params, query: bytes, form: bytes
    ) -> Call:
        credential: ApiCredential | None = None
        if endpoint.security != "NONE":
            credential = self.keys.lookup(request.headers.get("x-mbx-apikey"))
        if params.duplicated is not None:
            raise ApiError(-1101)
        now = self.exchange.now_ms()
        server_ms = now + self.faults.skew_ms()
        if endpoint.security == "SIGNED":
            assert credential is not None
            auth.check_signed(credential, params, query, form, server_ms)
        has_margin = credential is None or credential.has_margin_account
        if endpoint.margin_account and not has_margin:
            raise ApiError(-3003)
        key = credential.key if credential is not None else ""
        return Call(self.exchange, params, now, server_ms, key, self.state, has_margin)

    def _later_page(self, params: Params) -> bool:
        current = params.raw("current")
        return (
            current is not None
            and current.isdigit()
            and int(current) > 1
            and (self.faults.insert_rows())
        )

    def _arrive(self, arrival: Arrival, params: Params) -> None:
        """A real ledger action at now, so a row appears while the client pages."""
        asset = params.raw("asset") or "USDT"
        if asset not in self.exchange.assets:
            asset = self.exchange.assets[0]
        actions: dict[Arrival, Callable[[], object]] = {
            "borrow": lambda: self.exchange.borrow(asset, ARRIVAL_AMOUNT),
            "repay": lambda: self.exchange.repay(asset, ARRIVAL_AMOUNT),
            "transfer": lambda: self.exchange.transfer(asset, ARRIVAL_AMOUNT, "ROLL_IN"),
        }
        with contextlib.suppress(ExchangeError):  # the ledger said no: nothing arrived
            actions[arrival]()
            self.stats.fault_kinds["rows_arrived"] += 1

    def _refused(
        self, endpoint: Endpoint, verdict: Verdict, headers: dict[str, str], now: int
    ) -> Response:
        stats = self.stats.of(endpoint.name)
        headers["Retry-After"] = str(verdict.retry_after_s)
        if verdict.banned:
            stats.banned += 1
            until = now + verdict.retry_after_s * 1000
            return error_response(ApiError(-1003, BAN_MESSAGE.format(until=until), 418), headers)
        stats.throttled += 1
        if verdict.capped:
            return error_response(ApiError(-1003, RATE_CAP), headers)
        message = MESSAGES[-1003].format(limit=verdict.limit, window=self.limiter.window_label())
        return error_response(ApiError(-1003, message), headers)

    def _fault_response(self, fault: Fault, headers: dict[str, str]) -> Response:
        kind = fault.kind
        if kind == "drop":
            return Dropped()
        if kind == "waf":
            return Response(WAF_PAGE, 403, media_type=HTML_TYPE)
        if kind == "rate_burst":
            burst = {**headers, "Retry-After": str(fault.retry_after_s)}
            message = MESSAGES[-1003].format(
                limit=self.limiter.weight_limit, window=self.limiter.window_label()
            )
            return error_response(ApiError(-1003, message), burst)
        if kind == "timeout_unknown":
            return error_response(ApiError(-1007), headers)
        if kind == "disconnected":
            return error_response(ApiError(-1001), headers)
        if kind == "busy":
            return error_response(ApiError(-3044), headers)
        return self._server_error(fault.variant, headers)

    def _server_error(self, variant: int, headers: dict[str, str]) -> Response:
        if variant == 0:
            return error_response(ApiError(-1000), headers)
        if variant == 1:
            return Response(GATEWAY_PAGES[502], 502, media_type=HTML_TYPE)
        if variant == 2:
            return Response(b"Service Unavailable.", 503, media_type="text/plain")
        return Response(GATEWAY_PAGES[504], 504, media_type=HTML_TYPE)

    # -- simulator controls (unsigned) -----------------------------------------------------------
    async def sim_stats(self, request: Request) -> Response:
        with self.exchange.lock:
            now = self.exchange.now_ms()
        body = {
            **self.stats.as_json(),
            "now_ms": now,
            "faults": self.faults.profile.name,
            "weight_limit": self.limiter.weight_limit,
            "weight_window_ms": self.limiter.window_ms,
        }
        return json_response(200, body)

    async def sim_advance(self, request: Request) -> Response:
        try:
            delta = Params(parse_pairs(request.scope["query_string"]), []).integer(
                "ms", required=True
            )
        except ApiError as exc:
            return error_response(exc)
        assert delta is not None
        return json_response(200, {"now_ms": self.advance(delta)})

    async def sim_truth(self, request: Request) -> Response:
        """The truth goes only where the server was started to write it: a request cannot name
        a directory of its own choosing (``dir`` may repeat the configured one)."""
        truth_dir = self.config.truth_dir
        if truth_dir is None:
            return json_response(400, {"code": -1102, "msg": "No truth directory configured."})
        target = request.query_params.get("dir")
        if target and Path(target).resolve() != truth_dir.resolve():
            msg = "The truth is written only into the simulator's --truth-dir."
            return json_response(403, {"code": -1102, "msg": msg})
        now = self.write_truth(truth_dir)
        return json_response(200, {"dir": str(truth_dir), "now_ms": now})

    async def sim_faults(self, request: Request) -> Response:
        name = request.query_params.get("profile", "")
        if name not in PROFILES:
            known = ", ".join(PROFILES)
            return json_response(400, {"code": -1102, "msg": f"Unknown profile; use {known}."})
        self.set_faults(name)
        return json_response(200, {"faults": name})

    async def sim_reset_stats(self, request: Request) -> Response:
        self.stats.reset()
        return json_response(200, {})

    async def sim_limits(self, request: Request) -> Response:
        params = Params(parse_pairs(request.scope["query_string"]), [])
        try:
            limit = params.integer("weight_limit") or self.limiter.weight_limit
            window = params.integer("window_ms") or self.limiter.window_ms
        except ApiError as exc:
            return error_response(exc)
        self.limiter.configure(limit, window)
        return json_response(200, {"weight_limit": limit, "weight_window_ms": window})

    # -- the same controls for in-process callers --------------------------------------------------
    def advance(self, delta_ms: int) -> int:
        with self.exchange.lock:
            self.exchange.advance_clock(delta_ms)
            self.exchange.catch_up()
            return self.exchange.now_ms()

    def write_truth(self, truth_dir: Path) -> int:
        with self.exchange.lock:
            self.exchange.catch_up()
            write_truth(self.exchange, truth_dir)
            return self.exchange.now_ms()

    def set_faults(self, profile: str | FaultProfile) -> None:
        self.faults.set_profile(profile)
        self._sync_modes()

    def _sync_modes(self) -> None:
        forced = self.config.seconds_timestamps
        self.state.seconds_timestamps = self.faults.seconds_timestamps if forced is None else forced


def create_app(exchange: ExchangeProtocol, config: SimConfig = SimConfig()) -> SimulatorApp:
    """The ASGI app serving `exchange` (use with uvicorn, or httpx.ASGITransport in-process)."""
    return SimulatorApp(exchange, config)
