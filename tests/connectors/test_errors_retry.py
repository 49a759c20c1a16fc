"""Each Binance failure mode meets the right reaction: stop at once, resync, wait, or retry."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors import MarginClient
from connectors.errors import (
    AccessBlocked,
    AuthError,
    BadRequest,
    BinanceError,
    MalformedResponse,
    NoMarginAccount,
    RateLimited,
    ServerError,
    TransportFailure,
    UnknownSymbol,
    Unreachable,
)
from connectors.retry import RetrySettings, rate_limit_wait, retrying
from tests.connectors.fake_binance import (
    FAST_RETRY,
    KEY,
    SECRET,
    FakeBinance,
    client_for,
    drop,
    error,
    settings,
)

ACCOUNT = "/sapi/v1/margin/account"
BORROW_REPAY = "/sapi/v1/margin/borrow-repay"


def run(fake: FakeBinance, action: Callable[[MarginClient], Awaitable[Any]], **kw: Any) -> Any:
    async def scenario() -> Any:
        async with client_for(fake, **kw) as client:
            return await action(client)

    return asyncio.run(scenario())


def account_fake() -> FakeBinance:
    fake = FakeBinance()
    fake.route(ACCOUNT, lambda params: {"userAssets": [], "marginLevel": "999"})
    return fake


def read_account(client: MarginClient) -> Awaitable[Any]:
    return client.read_account()


def assert_safe_one_line(exc: BaseException) -> None:
    text = str(exc)
    assert "\n" not in text
    assert KEY not in text and SECRET not in text
    assert "signature" not in text and "timestamp=" not in text


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        (error(401, -2015, "Invalid API-key, IP, or permissions for action."), AuthError, -2015),
        (error(400, -2014, "API-key format invalid."), AuthError, -2014),
        (error(400, -3003, "Margin account does not exist."), NoMarginAccount, -3003),
        (error(400, -1100, "Illegal characters found in parameter 'x'."), BadRequest, -1100),
        (error(400, -1131, "recvWindow must be less than 60000"), BadRequest, -1131),
        (error(400, -1121, "Invalid symbol."), UnknownSymbol, -1121),
    ],
)
def test_fatal_answers_stop_at_once_with_one_clear_line(
    reply: httpx.Response, kind: type[BinanceError], code: int
) -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, reply)
    with pytest.raises(kind) as caught:
        run(fake, read_account)
    assert fake.calls(ACCOUNT) == 1
    assert caught.value.code == code
    assert f"Binance {code}" in str(caught.value) and ACCOUNT in str(caught.value)
    assert_safe_one_line(caught.value)


def test_revoked_key_message_tells_what_to_check() -> None:
    fake = account_fake()
    client = MarginClient(
        "https://api.binance.test", "revoked-key", SECRET, settings(), transport=fake.transport()
    )

    async def scenario() -> None:
        async with client:
            await client.read_account()

    with pytest.raises(AuthError) as caught:
        asyncio.run(scenario())
    assert "permission" in str(caught.value) and "IP whitelist" in str(caught.value)
    assert fake.calls(ACCOUNT) == 1
    assert_safe_one_line(caught.value)


@pytest.mark.parametrize("drift_ms", [-5_000, 6_000])
def test_a_clock_that_drifts_5s_is_corrected_by_resync_on_1021(drift_ms: int) -> None:
    fake = account_fake()

    async def drift_then_read(client: MarginClient) -> int:
        assert abs(client.clock_offset_ms) < 500
        fake.clock_offset_ms = drift_ms  # the server clock jumps after our first sync
        await client.read_account()
        return client.clock_offset_ms

    offset = run(fake, drift_then_read)
    assert abs(offset - drift_ms) < 500
    assert fake.calls("/api/v3/time") == 2
    statuses = [status for path, status in fake.answered if path == ACCOUNT]
    assert statuses == [400, 200]


def test_a_retried_time_request_measures_the_offset_over_its_answering_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one clock for both sides, moved only by the retry's wait: 4 s pass between the first
    # attempt at /api/v3/time and the one that answers, and none during a request
    clock = [1_700_000_000_000]
    monkeypatch.setattr("connectors.client.now_ms", lambda: clock[0])
    monkeypatch.setattr("tests.connectors.fake_binance.now_ms", lambda: clock[0])

    async def wait(seconds: float) -> None:
        clock[0] += 4_000

    fake = account_fake()
    fake.queue("/api/v3/time", error(503, -1001, "Internal error; unable to process your request."))

    async def scenario() -> int:
        async with MarginClient(
            "https://api.binance.test",
            KEY,
            SECRET,
            settings(),
            transport=fake.transport(),
            sleep=wait,
        ) as client:
            await client.read_account()
            return client.clock_offset_ms

    assert asyncio.run(scenario()) == 0  # not +2 s: half the wait, our stamps ahead
    assert [s for p, s in fake.answered if p == ACCOUNT] == [200]


def test_a_server_clock_off_from_the_start_is_learned_at_open() -> None:
    fake = account_fake()
    fake.clock_offset_ms = -7_000
    run(fake, read_account)
    assert [s for p, s in fake.answered if p == ACCOUNT] == [200]


def test_a_429_storm_is_waited_out_with_a_floor_on_retry_after_0() -> None:
    fake = account_fake()
    busy = error(429, -1003, "Too many requests.", headers={"Retry-After": "0"})
    fake.queue(ACCOUNT, busy, busy, busy)
    started = time.monotonic()
    run(fake, read_account)
    assert time.monotonic() - started >= 3 * FAST_RETRY.rate_limit_floor_s
    assert [s for p, s in fake.answered if p == ACCOUNT] == [429, 429, 429, 200]


def test_a_418_ban_waits_at_least_the_ban_floor() -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, error(418, -1003, "Way too much request weight used; IP banned."))
    started = time.monotonic()
    run(fake, read_account)
    assert time.monotonic() - started >= FAST_RETRY.ban_floor_s
    assert fake.calls(ACCOUNT) == 2


def truncated(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b'{"userAssets": [{"asset": "BT')


def html_500(request: httpx.Request) -> httpx.Response:
    return httpx.Response(502, text="<html>Bad Gateway</html>")


def read_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


@pytest.mark.parametrize(
    "failure",
    [
        error(500, -1000, "An unknown error occurred while processing the request."),
        error(503, -1007, "Timeout waiting for response from backend server."),
        error(503, -1001, "Internal error; unable to process your request."),
        error(400, -3044, "System busy."),
        error(400, -1004, "Server is busy, please wait and try again"),
        html_500,
        drop,
        truncated,
        read_timeout,
    ],
)
def test_transient_failures_of_a_get_are_retried(failure: Any) -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, failure, failure)
    assert run(fake, read_account).data["marginLevel"] == "999"
    assert fake.calls(ACCOUNT) == 3


def slow_drop(request: httpx.Request) -> httpx.Response:
    time.sleep(0.003)  # attempts land in different milliseconds
    return drop(request)


def test_every_retry_is_re_signed_with_a_fresh_timestamp() -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, slow_drop, slow_drop)
    run(fake, read_account)
    sent = [dict(parse_qsl(r.url.query.decode())) for r in fake.requests if r.url.path == ACCOUNT]
    assert len({q["signature"] for q in sent}) == 3
    stamps = [int(q["timestamp"]) for q in sent]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


def test_attempts_are_bounded() -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, *[error(503, -1007, "Timeout.")] * 20)
    with pytest.raises(ServerError):
        run(fake, read_account)
    assert fake.calls(ACCOUNT) == FAST_RETRY.max_attempts


def test_malformed_bodies_are_a_typed_error_when_they_persist() -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, *[truncated] * 20)
    with pytest.raises(MalformedResponse) as caught:
        run(fake, read_account)
    assert_safe_one_line(caught.value)


def test_a_dropped_connection_error_carries_no_url() -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, *[drop] * 20)
    with pytest.raises(TransportFailure) as caught:
        run(fake, read_account)
    assert_safe_one_line(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def borrow(client: MarginClient) -> Awaitable[Any]:
    return client.request(
        "POST", BORROW_REPAY, {"asset": "BTC", "amount": "1", "type": "BORROW"}, weight=1500
    )


@pytest.mark.parametrize(
    "failure", [error(503, -1007, "Timeout; execution status unknown."), drop, truncated]
)
def test_a_post_whose_outcome_is_unknown_is_never_retried(failure: Any) -> None:
    fake = FakeBinance()
    fake.route(BORROW_REPAY, lambda params: {"tranId": 1})
    fake.queue(BORROW_REPAY, failure)
    with pytest.raises((ServerError, TransportFailure, MalformedResponse)):
        run(fake, borrow)
    assert fake.calls(BORROW_REPAY) == 1


def test_a_post_refused_before_execution_is_retried() -> None:
    fake = FakeBinance()
    fake.route(BORROW_REPAY, lambda params: {"tranId": 7})
    fake.queue(BORROW_REPAY, error(429, -1003, "Too many requests."))
    assert run(fake, borrow) == {"tranId": 7}
    assert fake.calls(BORROW_REPAY) == 2


def waf(request: httpx.Request) -> httpx.Response:
    return httpx.Response(403, text="<html><body>Request blocked</body></html>")


def test_a_brief_waf_block_is_retried() -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, waf, waf)
    run(fake, read_account)
    assert fake.calls(ACCOUNT) == 3


def test_a_lasting_waf_block_becomes_fatal_with_a_clear_message() -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, *[waf] * 10)
    with pytest.raises(AccessBlocked) as caught:
        run(fake, read_account)
    assert fake.calls(ACCOUNT) == FAST_RETRY.waf_attempts
    assert "firewall" in str(caught.value)
    assert_safe_one_line(caught.value)


def test_logs_never_show_a_signature_or_a_credential(caplog: pytest.LogCaptureFixture) -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, drop, error(503, -1007, "Timeout."), truncated)
    caplog.set_level(logging.DEBUG)
    run(fake, read_account)
    assert caplog.records, "the client and httpx should have logged something"
    text = caplog.text
    assert KEY not in text and SECRET not in text
    assert "signature=<redacted>" in text  # httpx logs each URL; we saw it redacted
    assert not re.search(r"signature=(?!<redacted>)", text)


def test_reprs_hide_credentials() -> None:
    client = client_for(FakeBinance())
    assert KEY not in repr(client) and SECRET not in repr(client)
    assert KEY not in repr(vars(client))
    assert SECRET not in repr(vars(client))


@pytest.mark.parametrize(
    ("reply", "fix"),
    [
        (error(400, -2014, "API-key format invalid."), "the API key is malformed"),
        (
            error(401, -2015, "Invalid API-key, IP, or permissions for action."),
            "the key is unknown, not allowed from this IP, or lacks the margin permission",
        ),
        (error(400, -1022, "Signature for this request is not valid."), "the secret does not"),
        (error(400, -3003, "Margin account does not exist."), "this key's account has no cross"),
    ],
)
def test_each_key_problem_says_what_to_fix_first(reply: httpx.Response, fix: str) -> None:
    fake = account_fake()
    fake.queue(ACCOUNT, reply)
    with pytest.raises(BinanceError) as caught:
        run(fake, read_account)
    assert str(caught.value).startswith(fix)
    assert_safe_one_line(caught.value)


def test_a_refused_first_connection_is_fatal_at_once() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = MarginClient(
        "https://api.binance.test", KEY, SECRET, settings(), transport=httpx.MockTransport(refuse)
    )

    async def scenario() -> None:
        async with client:
            pass

    with pytest.raises(Unreachable, match=re.escape("cannot connect to https://api.binance.test")):
        asyncio.run(scenario())
    assert client.stats.requests == 1 and client.stats.retries == 0


def test_a_retry_tells_what_it_waits_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # the backoff's jitter drawn at its top, so the wait (2 s) is one worth telling on any draw
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    told: list[tuple[str, float]] = []
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    fake = account_fake()
    fake.queue(ACCOUNT, error(503, -1001, "Internal error; unable to process your request."))
    retry = replace(FAST_RETRY, backoff_base_s=2.0, backoff_max_s=2.0)
    client = MarginClient(
        "https://api.binance.test",
        KEY,
        SECRET,
        replace(settings(), retry=retry),
        transport=fake.transport(),
        sleep=no_sleep,
        on_wait=lambda reason, seconds: told.append((reason, seconds)),
    )

    async def scenario() -> Any:
        async with client:
            return await client.read_account()

    asyncio.run(scenario())
    assert slept and told == [(f"a retry after ServerError on {ACCOUNT}", slept[0])]


def test_a_429_repeated_on_one_request_waits_twice_as_long_each_time() -> None:
    """A Retry-After of 0 answered at once could meet the same burst ten times in a few
    milliseconds and spend every attempt: the floor doubles with each 429 in a row."""
    settings = RetrySettings(rate_limit_floor_s=0.01, retry_after_cap_s=1.0)
    burst = RateLimited("429", status=429, retry_after=0)
    waits = [rate_limit_wait(burst, settings, in_a_row) for in_a_row in range(1, 10)]
    assert waits[:4] == [0.01, 0.02, 0.04, 0.08]
    assert waits[-1] == 1.0  # capped
    assert rate_limit_wait(RateLimited("429", status=429, retry_after=5), settings, 1) == 1.0


def test_only_429s_in_a_row_lengthen_the_wait_and_the_bucket_pauses_as_long() -> None:
    """Server errors before a 429 do not double its floor (six of them would make a
    production 429 wait 64 s); another failure between 429s starts the count again. The
    bucket is paused for exactly the wait the retry sleeps."""
    failures: list[BinanceError] = [ServerError("503", status=503)] * 3
    burst = RateLimited("429", status=429, retry_after=0)
    failures += [burst, burst, burst, ServerError("503", status=503), burst]
    settings = RetrySettings(rate_limit_floor_s=1.0, backoff_base_s=0.0, backoff_max_s=0.0)
    slept: list[float] = []
    paused: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async def scenario() -> None:
        controller = retrying(
            settings, "GET", record, on_limited=lambda exc, wait: paused.append(wait)
        )
        async for attempt in controller:
            with attempt:
                if len(slept) < len(failures):
                    raise failures[len(slept)]

    asyncio.run(scenario())
    assert slept == [0.0, 0.0, 0.0, 1.0, 2.0, 4.0, 0.0, 1.0]
    assert paused == [1.0, 2.0, 4.0, 1.0]
