"""The signed, rate-aware, retrying async Binance client (one connection pool per client).

Signing follows Binance's rule since 2026-01-15: the query string is percent-encoded first
(only A-Z a-z 0-9 - _ . ~ left as is), those exact bytes are signed and sent, and `signature`
is appended last. Every retry is rebuilt and re-signed with a fresh timestamp. The API key
lives in a `Secret`; URLs are redacted wherever they may be printed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import re
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from connectors.budget import WAIT_WORTH_TELLING_S, BudgetSettings, WaitObserver, WeightBudget
from connectors.errors import (
    AccessBlocked,
    BinanceError,
    ClockSkew,
    EndpointNotFound,
    IpBanned,
    MalformedResponse,
    RateLimited,
    TransportFailure,
    Unreachable,
    WafBlocked,
    error_for_code,
    error_for_response,
)
from connectors.retry import RetrySettings, Sleep, retrying
from connectors.specs import (
    SPECS,
    ApiGeneration,
    ApiSetting,
    EndpointSpec,
    WeightKind,
    probe_spec,
    spec_for,
)
from models import HOUR_MS, now_ms

log = logging.getLogger(__name__)

ParamValue = str | int | Decimal
Params = Mapping[str, ParamValue] | Sequence[tuple[str, ParamValue]]

# Binance's reference encoder leaves only these unescaped.
UNRESERVED = "-_.~"
_SIGNATURE_RE = re.compile(r"(signature=)[^&\s\"'<>]+", re.IGNORECASE)
_SECRETS_TO_SCRUB: set[str] = set()
MIN_SCRUBBED_LENGTH = 8


class Secret:
    """A credential that never shows itself in a repr, str, log line or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a credential must not be empty")
        self._value = value

    @classmethod
    def of(cls, value: str | Secret) -> Secret:
        return value if isinstance(value, Secret) else cls(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def redact(text: str) -> str:
    """`text` with signatures and known credentials replaced by <redacted>."""
    text = _SIGNATURE_RE.sub(r"\1<redacted>", text)
    for secret in _SECRETS_TO_SCRUB:
        text = text.replace(secret, "<redacted>")
    return text


class _RedactingFilter(logging.Filter):
    """Redacts records of libraries that log full URLs (httpx logs every request at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_REDACTED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


def _install_log_redaction() -> None:
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())


# -- signing ----------------------------------------------------------------------------------
def encode_query(params: Sequence[tuple[str, ParamValue]]) -> str:
    """The percent-encoded query string, in the given order (this is what gets signed)."""
    return "&".join(
        f"{quote(k, safe=UNRESERVED)}={quote(_text(v), safe=UNRESERVED)}" for k, v in params
    )


def _text(value: ParamValue) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")  # never exponent form: Binance rejects it with -1100
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


class Signer(Protocol):
    def sign(self, payload: bytes) -> str:
        """The signature of `payload`, ready to append to a query string."""


class HmacSigner:
    """HMAC-SHA256 keyed with the API secret, lowercase hex."""

    def __init__(self, secret: Secret) -> None:
        self._secret = secret

    def sign(self, payload: bytes) -> str:
        key = self._secret.reveal().encode()
        return hmac.new(key, payload, hashlib.sha256).hexdigest()


class KeyPairSigner:
    """Ed25519 or RSA (PKCS#1 v1.5, SHA-256) over the payload; base64, percent-encoded."""

    def __init__(self, pem: Secret) -> None:
        key = serialization.load_pem_private_key(pem.reveal().encode(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
            raise ValueError("only Ed25519 and RSA private keys can sign Binance requests")
        self._key = key

    def sign(self, payload: bytes) -> str:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            raw = self._key.sign(payload)
        else:
            raw = self._key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return quote(base64.b64encode(raw).decode(), safe="")


def make_signer(secret: Secret) -> Signer:
    """A PEM private key signs with Ed25519/RSA; anything else is an HMAC secret."""
    if secret.reveal().lstrip().startswith("-----BEGIN"):
        return KeyPairSigner(secret)
    return HmacSigner(secret)


# -- the client -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClientSettings:
    """How a client talks to Binance: generation, timing, concurrency, retries, budget."""

    api_generation: ApiSetting = "auto"
    recv_window_ms: int = 5_000
    timeout_s: float = 15.0  # per network operation (connect, read, write, pool)
    request_deadline_s: float = 60.0  # a whole request, however slowly bytes trickle in
    concurrency: int = 16  # requests in flight at once
    page_rereads: int = 3  # re-reads of a window whose rows moved while paging
    window_prefetch: int = 4  # windows of one stream partition read ahead concurrently
    # an id-cursor stream without a known cursor probes day windows up to this many days,
    # beyond that it reads from id 0 (cheaper for long ranges): see connectors.paging
    cursor_probe_max_days: int = 7
    retry: RetrySettings = field(default_factory=RetrySettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    user_agent: str = "margin-etl/0.1"


@dataclass
class RoundTrip:
    """When a request's answering attempt left and when its answer came (local ms): what a
    clock offset is measured over, without the waits before it (budget, slots, retries)."""

    sent_ms: int = 0
    answered_ms: int = 0


@dataclass
class ClientStats:
    """What a client spent: requests, retries, weight per bucket, errors by class."""

    requests: int = 0
    retries: int = 0
    weight: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # per lake stream read (a reference call counts under its spec's name): what a plan foresaw
    by_stream: Counter[str] = field(default_factory=Counter)
    weight_by_stream: Counter[str] = field(default_factory=Counter)


class BinanceClient:
    """A signed Binance REST client; use as `async with BinanceClient(...) as client:`.

    `transport` replaces the network (tests pass `httpx.MockTransport` or an ASGI transport);
    `budget` may be shared by several clients of one API key; `sleep` is what retries wait with.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | Secret,
        api_secret: str | Secret,
        settings: ClientSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: WeightBudget | None = None,
        sleep: Sleep = asyncio.sleep,
        on_wait: WaitObserver | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings or ClientSettings()
        self._key = Secret.of(api_key)
        secret = Secret.of(api_secret)
        self._signer = make_signer(secret)
        # a credential too short to be real would scrub ordinary words from every message
        _SECRETS_TO_SCRUB.update(
            s for s in (self._key.reveal(), secret.reveal()) if len(s) >= MIN_SCRUBBED_LENGTH
        )
        _install_log_redaction()
        self.budget = budget or WeightBudget(self.settings.budget)
        self.stats = ClientStats()
        self._transport = transport
        self._on_wait = on_wait
        if on_wait is not None:
            self.budget.on_wait = on_wait
        self._sleep = self._told_sleep(sleep)
        self._last_failure = ""
        self._http: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._offset_ms = 0
        self._clock_epoch = 0  # bumped at each sync, so concurrent -1021s resync once
        self._clock_lock = asyncio.Lock()
        setting = self.settings.api_generation
        self._api: ApiGeneration | None = None if setting == "auto" else setting
        self._api_lock = asyncio.Lock()
        self._answered = False  # until the server answers once, a refused connection is fatal

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, api_key=<redacted>)"

    def _told_sleep(self, sleep: Sleep) -> Sleep:
        """The retry policy's sleep, telling the observer what it waits out."""

        async def told(seconds: float) -> None:
            if self._on_wait is not None and seconds >= WAIT_WORTH_TELLING_S:
                self._on_wait(f"a retry after {self._last_failure}", seconds)
            await sleep(seconds)

        return told

    async def __aenter__(self) -> BinanceClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open the connection pool and learn the server-time offset."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self.settings.timeout_s),
                limits=httpx.Limits(
                    max_connections=self.settings.concurrency,
                    max_keepalive_connections=self.settings.concurrency,
                ),
                headers={"User-Agent": self.settings.user_agent},
            )
        await self.sync_time()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- time -----------------------------------------------------------------------------
    def server_now_ms(self) -> int:
        """The server's clock as this client believes it to be (local clock + offset)."""
        return now_ms() + self._offset_ms

    @property
    def clock_offset_ms(self) -> int:
        return self._offset_ms

    async def sync_time(self) -> int:
        """Measure the offset to the server clock with GET /api/v3/time; return it."""
        trip = RoundTrip()
        answer = await self.call(SPECS["server_time"], trip=trip)
        # the midpoint of the attempt that answered: a wait for the budget or a retry before
        # it would move the midpoint by half the wait, and our timestamps ahead of the server
        self._offset_ms = int(answer["serverTime"]) - (trip.sent_ms + trip.answered_ms) // 2
        self._clock_epoch += 1
        log.debug("server clock offset %d ms", self._offset_ms)
        return self._offset_ms

    async def _resync(self, seen_epoch: int) -> None:
        async with self._clock_lock:
            if self._clock_epoch == seen_epoch:  # nobody resynced since our request was built
                await self.sync_time()

    # -- API generation -------------------------------------------------------------------
    async def api_generation(self) -> ApiGeneration:
        """The generation in use; "auto" probes once (borrow-repay answers 404 → legacy)."""
        if self._api is None:
            async with self._api_lock:
                if self._api is None:
                    self._api = await self._probe_generation()
                    log.info("API generation: %s", self._api)
        return self._api

    async def _probe_generation(self) -> ApiGeneration:
        now = self.server_now_ms()
        try:
            await self.call(probe_spec(), {"startTime": now - HOUR_MS, "endTime": now, "size": 1})
        except EndpointNotFound:
            return "legacy"
        return "current"

    async def spec(self, stream: str) -> EndpointSpec:
        """The endpoint that reads `stream` under this client's API generation (probed only for
        a stream the generations read differently)."""
        shared = spec_for(stream, "current")
        if shared is spec_for(stream, "legacy"):
            return shared
        return spec_for(stream, await self.api_generation())

    # -- requests -------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        params: Params = (),
        *,
        weight: int = 1,
        weight_kind: WeightKind = "ip",
        signed: bool = True,
    ) -> Any:
        """Call an endpoint that has no row in the spec table (e.g. a POST)."""
        spec = EndpointSpec(
            name=f"{method} {path}",
            path=path,
            method=method.upper(),
            weight=weight,
            weight_kind=weight_kind,
            signed=signed,
        )
        return await self.call(spec, params)

    async def call(
        self, spec: EndpointSpec, params: Params = (), *, trip: RoundTrip | None = None
    ) -> Any:
        """Send `spec` with `params` (plus its fixed ones): signed, budgeted, retried; JSON back.
        `trip`, if given, is set to the round trip of the attempt that answered.

        Raises a `connectors.errors.Fatal` at once when retrying cannot help, or the last
        `RetryableError` when the attempts or the deadline run out.
        """
        pairs = [*spec.fixed_params, *(params.items() if isinstance(params, Mapping) else params)]
        controller = retrying(
            self.settings.retry,
            spec.method,
            self._sleep,
            on_limited=lambda exc, wait: self._pause_bucket(exc, spec, wait),
        )
        blocked = 0  # firewall answers so far: a few pass, a lasting block is fatal
        async for attempt in controller:
            with attempt:
                number = attempt.retry_state.attempt_number
                if number > 1:
                    self.stats.retries += 1
                epoch = self._clock_epoch
                try:
                    return await self._send(spec, pairs, trip)
                except BinanceError as exc:
                    self._count_error(exc, spec, number)
                    self._last_failure = f"{type(exc).__name__} on {spec.path}"
                    if isinstance(exc, WafBlocked):
                        blocked += 1
                        if blocked >= self.settings.retry.waf_attempts:
                            where = exc.where
                            raise AccessBlocked(
                                exc.detail, status=exc.status, where=where
                            ) from None
                    if isinstance(exc, ClockSkew):
                        await self._resync(epoch)
                    raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _count_error(self, exc: BinanceError, spec: EndpointSpec, attempt: int) -> None:
        self.stats.errors[type(exc).__name__] += 1
        log.info("%s %s attempt %d failed: %s", spec.method, spec.path, attempt, exc)

    def _pause_bucket(self, exc: RateLimited, spec: EndpointSpec, seconds: float) -> None:
        """A limit answer pauses every request of its bucket (of all of them after a 418)."""
        self.budget.block(None if isinstance(exc, IpBanned) else spec, seconds)

    def _build(self, spec: EndpointSpec, pairs: Sequence[tuple[str, ParamValue]]) -> httpx.Request:
        headers = {}
        if spec.signed or spec.path.startswith("/sapi/"):
            headers["X-MBX-APIKEY"] = self._key.reveal()
        query = list(pairs)
        if spec.signed:
            query += [
                ("recvWindow", self.settings.recv_window_ms),
                ("timestamp", self.server_now_ms()),
            ]
        encoded = encode_query(query)
        if spec.signed:
            encoded += f"&signature={self._signer.sign(encoded.encode())}"
        url = httpx.URL(f"{self.base_url}{spec.path}" + (f"?{encoded}" if encoded else ""))
        # The signature covers these exact bytes: httpx must not re-encode them.
        if url.query != encoded.encode():
            raise ValueError(f"httpx altered the signed query of {spec.path}")
        assert self._http is not None, "use the client as `async with` (or call open())"
        return self._http.build_request(spec.method, url, headers=headers)

    async def _send(
        self,
        spec: EndpointSpec,
        pairs: Sequence[tuple[str, ParamValue]],
        trip: RoundTrip | None = None,
    ) -> Any:
        where = f"{spec.method} {spec.path}"
        async with self.budget.spend(spec) as reservation, self._slots:
            request = self._build(spec, pairs)  # after waiting: the timestamp must be fresh
            self.stats.requests += 1
            self.stats.weight[spec.bucket] += spec.weight
            self.stats.by_stream[spec.stream or spec.name] += 1
            self.stats.weight_by_stream[spec.stream or spec.name] += spec.weight
            assert self._http is not None
            sent_ms = now_ms()
            try:
                response = await asyncio.wait_for(
                    self._http.send(request), timeout=self.settings.request_deadline_s
                )
            except (TimeoutError, httpx.TimeoutException) as exc:
                connect = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                raise TransportFailure(
                    f"timed out ({type(exc).__name__})", where=where, before_send=connect
                ) from None
            except httpx.ConnectError as exc:
                reason = f"cannot connect to {self.base_url} ({_reason(exc)})"
                if not self._answered:  # refused, unknown name, TLS at first contact: a setting
                    raise Unreachable(reason, where=where) from None
                raise TransportFailure(reason, where=where, before_send=True) from None
            except httpx.TransportError as exc:
                raise TransportFailure(
                    f"{type(exc).__name__}: {redact(str(exc))}", where=where, before_send=False
                ) from None
            self._answered = True
            if trip is not None:
                trip.sent_ms, trip.answered_ms = sent_ms, now_ms()
            reservation.observe(response.headers)
        log.debug("%s %s -> %d", spec.method, redact(str(request.url)), response.status_code)
        return _decode(response, where)


def _reason(exc: httpx.ConnectError) -> str:
    """Why a connection failed, in the words of the system (refused, name unknown, TLS)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and (cause.errno or cause.strerror):
            code = cause.errno if not isinstance(cause, socket.gaierror) else None
            return os.strerror(code) if code and code > 0 else str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return redact(str(exc)) or type(exc).__name__


def _decode(response: httpx.Response, where: str) -> Any:
    body = response.content
    if not 200 <= response.status_code < 300:
        raise error_for_response(response.status_code, response.headers, body, where=where)
    try:
        # parse_float=Decimal: a number that is not an integer stays exact
        doc = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise MalformedResponse(
            f"body is not JSON ({len(body)} bytes; truncated?)", where=where
        ) from None
    if isinstance(doc, dict) and isinstance(doc.get("code"), int) and doc["code"] < 0:
        raise error_for_code(doc["code"], str(doc.get("msg", "")), status=200, where=where)
    return doc
