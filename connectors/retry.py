"""Retry policy as tenacity pieces: what to retry is a predicate over the typed errors.

GETs are retried on every `RetryableError`; other methods only when the server certainly did
not act (rate-limited, clock rejected, or the connection never opened), so a borrow is never
sent twice. Rate limits wait what the server asks (with a floor, since Binance has been seen
to say `Retry-After: 0`); everything else backs off exponentially with jitter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from connectors.errors import ClockSkew, IpBanned, RateLimited, RetryableError, TransportFailure

Sleep = Callable[[float], Awaitable[None]]
OnLimited = Callable[[RateLimited, float], None]


@dataclass(frozen=True)
class RetrySettings:
    """Bounds and delays of the retry policy (tests shrink the delays to milliseconds)."""

    max_attempts: int = 10
    deadline_s: float = 600.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    rate_limit_floor_s: float = 1.0  # when Retry-After is 0 or missing
    retry_after_cap_s: float = 600.0  # never wait longer than this on one Retry-After
    ban_floor_s: float = 60.0  # at least this long after a 418
    waf_attempts: int = 3  # non-JSON 403s tolerated before giving up


def is_retryable(exc: BaseException, method: str) -> bool:
    """True if `exc` may pass on a re-signed retry of a `method` request."""
    if not isinstance(exc, RetryableError):
        return False
    if method.upper() == "GET":
        return True
    # A non-idempotent call is retried only when the server cannot have executed it.
    if isinstance(exc, RateLimited | ClockSkew):
        return True
    return isinstance(exc, TransportFailure) and exc.before_send


def rate_limit_wait(exc: RateLimited, settings: RetrySettings, in_a_row: int = 1) -> float:
    """Seconds to wait after a 429/418: what the server asks, within the floor and the cap.

    The floor doubles with each limit answer in a row of one request (`in_a_row` counts 429s
    and 418s since its last other failure): a Retry-After of 0 answered at once can meet the
    same burst again and again, and spend every attempt in milliseconds. Other failures before
    it do not lengthen it.
    """
    floor = settings.ban_floor_s if isinstance(exc, IpBanned) else settings.rate_limit_floor_s
    floor *= 2.0 ** max(in_a_row - 1, 0)
    return min(max(exc.retry_after, floor), settings.retry_after_cap_s)


class wait_for_error(wait_base):
    """Wait what the error asks for: Retry-After for limits, jittered backoff otherwise.

    One instance per logical request (tenacity asks it once per failed attempt): it counts the
    limit answers in a row that `rate_limit_wait` doubles its floor by.
    """

    def __init__(self, settings: RetrySettings) -> None:
        self.settings = settings
        self.backoff = wait_random_exponential(
            multiplier=settings.backoff_base_s, max=settings.backoff_max_s
        )
        self.limited_in_a_row = 0

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimited):
            self.limited_in_a_row += 1
            return rate_limit_wait(exc, self.settings, self.limited_in_a_row)
        self.limited_in_a_row = 0
        if isinstance(exc, ClockSkew):
            return 0.0  # the clock was resynced before raising; retry at once
        return self.backoff(retry_state)


def retrying(
    settings: RetrySettings,
    method: str,
    sleep: Sleep = asyncio.sleep,
    on_limited: OnLimited | None = None,
) -> AsyncRetrying:
    """A fresh tenacity controller for one logical request.

    `on_limited(exc, seconds)` hears each 429/418 with the wait chosen for it, before the wait
    (the client pauses the error's whole bucket that long).
    """

    def before_sleep(retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if on_limited is not None and isinstance(exc, RateLimited):
            on_limited(exc, retry_state.upcoming_sleep)

    return AsyncRetrying(
        retry=retry_if_exception(lambda exc: is_retryable(exc, method)),
        wait=wait_for_error(settings),
        stop=stop_after_attempt(settings.max_attempts) | stop_after_delay(settings.deadline_s),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
