"""Seeded fault injection: the misbehaviour a client meets on the real API, replayable.

A profile gives each fault a per-request probability. Faults act on the transport and on the
answer, never on the ledger: the one fault that touches the ledger ("rows arrive while a
client pages") does so with an ordinary engine action, so the truth stays the truth.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal[
    "server_error",  # 500/502/503/504, with or without a JSON body
    "timeout_unknown",  # -1007, execution status unknown (HTTP 503)
    "disconnected",  # -1001 (HTTP 503)
    "busy",  # -3044 System busy (HTTP 400, retryable by code)
    "rate_burst",  # a run of 429 -1003, Retry-After sometimes 0
    "slow",  # a small delay before the answer
    "drop",  # the connection closes without an answer
    "truncate",  # the body stops short of its Content-Length, or is cut mid-JSON
    "clock_skew",  # the server clock jumps by a few seconds for a while
    "waf",  # 403 with an HTML page
]

# Faults that may precede a state-changing request without making its outcome ambiguous.
BEFORE_EXECUTION: frozenset[FaultKind] = frozenset(
    {
        "server_error",
        "timeout_unknown",
        "disconnected",
        "busy",
        "rate_burst",
        "slow",
        "drop",
        "clock_skew",
        "waf",
    }
)


@dataclass(frozen=True, slots=True)
class FaultProfile:
    name: str
    rates: Mapping[FaultKind, float] = field(default_factory=dict)
    insert_rows_rate: float = 0.0  # per request for page 2 and later of a paged endpoint
    seconds_timestamps: bool = False  # GET /sapi/v1/margin/transfer rows in seconds
    slow_ms: tuple[int, int] = (20, 100)
    skew_ms: tuple[int, int] = (2_000, 8_000)
    skew_requests: tuple[int, int] = (5, 30)
    burst: tuple[int, int] = (1, 4)


PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile("none"),
    "flaky": FaultProfile(
        "flaky",
        rates={
            "server_error": 0.01,
            "timeout_unknown": 0.003,
            "disconnected": 0.002,
            "busy": 0.002,
            "rate_burst": 0.004,
            "slow": 0.01,
            "drop": 0.003,
            "truncate": 0.003,
            "clock_skew": 0.002,
            "waf": 0.001,
        },
        insert_rows_rate=0.02,
    ),
    "hostile": FaultProfile(
        "hostile",
        rates={
            "server_error": 0.04,
            "timeout_unknown": 0.02,
            "disconnected": 0.01,
            "busy": 0.02,
            "rate_burst": 0.02,
            "slow": 0.05,
            "drop": 0.02,
            "truncate": 0.02,
            "clock_skew": 0.01,
            "waf": 0.01,
        },
        insert_rows_rate=0.2,
        seconds_timestamps=True,
        slow_ms=(50, 300),
    ),
}


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    variant: int = 0  # which flavour (status code, body shape)
    delay_ms: int = 0
    retry_after_s: int = 0


class FaultInjector:
    """Draws at most one fault per request from a seeded stream (same seed, same requests →
    same faults), and keeps the state of faults that last (429 bursts, clock skew)."""

    def __init__(self, profile: str | FaultProfile = "none", seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults:{seed}")
        self._burst_left = 0
        self._skew_ms = 0
        self._skew_left = 0
        self.profile = PROFILES["none"]
        self.set_profile(profile)

    def set_profile(self, profile: str | FaultProfile) -> None:
        """Switch to a named profile (or a custom one); lasting faults end."""
        if isinstance(profile, str):
            if profile not in PROFILES:
                known = ", ".join(PROFILES)
                raise KeyError(f"unknown fault profile {profile!r}; known: {known}")
            profile = PROFILES[profile]
        with self._lock:
            self.profile = profile
            self._burst_left = 0
            self._skew_ms = 0
            self._skew_left = 0

    @property
    def seconds_timestamps(self) -> bool:
        return self.profile.seconds_timestamps

    def skew_ms(self) -> int:
        """The server clock's current jump (0 outside a skew episode)."""
        return self._skew_ms

    def draw(self, *, state_changing: bool) -> Fault | None:
        """The fault for the next request, if any; advances lasting faults by one request."""
        with self._lock:
            self._tick_skew()
            if self._burst_left > 0:
                self._burst_left -= 1
                return self._rate_fault()
            kind = self._pick()
            if kind is None or (state_changing and kind not in BEFORE_EXECUTION):
                return None
            return self._make(kind)

    def insert_rows(self) -> bool:
        """Whether a row should arrive before this (second or later) page is answered."""
        with self._lock:
            rate = self.profile.insert_rows_rate
            return rate > 0 and self._rng.random() < rate

    def _tick_skew(self) -> None:
        if self._skew_left > 0:
            self._skew_left -= 1
            if self._skew_left == 0:
                self._skew_ms = 0

    def _pick(self) -> FaultKind | None:
        rates = self.profile.rates
        if not rates:
            return None
        draw = self._rng.random()
        for kind, rate in rates.items():
            if draw < rate:
                return kind
            draw -= rate
        return None

    def _make(self, kind: FaultKind) -> Fault:
        rng = self._rng
        if kind == "rate_burst":
            self._burst_left = rng.randint(*self.profile.burst) - 1
            return self._rate_fault()
        if kind == "slow":
            return Fault(kind, delay_ms=rng.randint(*self.profile.slow_ms))
        if kind == "clock_skew":
            self._skew_ms = rng.choice((-1, 1)) * rng.randint(*self.profile.skew_ms)
            self._skew_left = rng.randint(*self.profile.skew_requests)
            return Fault(kind)
        return Fault(kind, variant=rng.randrange(4))

    def _rate_fault(self) -> Fault:
        # the real API often says Retry-After: 0 (facts §4.1, rotki)
        return Fault("rate_burst", retry_after_s=self._rng.choice((0, 0, 1, 2)))
