"""A request hold: the API request after the n-th waits until released, so a test can kill its
client at an exact point of a run (counted in requests, not seconds)."""

from __future__ import annotations

import asyncio
import threading


class RequestHold:
    """Counts API requests as they arrive; the one after the first ``after`` waits at entry.

    ``reached`` is set when that request arrives (its client has had ``after`` answers, or
    ``after`` requests in flight); the request, and every later one, waits until ``release()``.
    """

    def __init__(self, after: int) -> None:
        if after < 0:
            raise ValueError("after must be >= 0")
        self.after = after
        self.reached = threading.Event()
        self._released = threading.Event()
        self._seen = 0
        self._lock = threading.Lock()

    async def enter(self) -> None:
        with self._lock:
            self._seen += 1
            holding = self._seen > self.after
        if not holding or self._released.is_set():
            return
        self.reached.set()
        await asyncio.to_thread(self._released.wait)

    def release(self) -> None:
        self._released.set()


class KeyBarrier:
    """Holds requests to one path until requests from ``parties`` distinct API keys arrived.

    Several clients then leave the barrier together, so what they do next competes for the same
    weight window, however differently their processes started.
    """

    def __init__(self, path: str, parties: int) -> None:
        self.path = path
        self.parties = parties
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self._open = threading.Event()

    async def enter(self, path: str, api_key: str | None) -> None:
        if path != self.path or self._open.is_set():
            return
        with self._lock:
            self._keys.add(api_key or "")
            if len(self._keys) >= self.parties:
                self._open.set()
        await asyncio.to_thread(self._open.wait)

    def release(self) -> None:
        self._open.set()
