"""Time windows: split a range into the largest legal API windows.

A `Window` is half-open, [start_ms, end_ms). On the wire it becomes startTime=start_ms and
endTime=end_ms - 1, because Binance treats both bounds as inclusive: consecutive windows then
share no millisecond and miss none.
"""

from __future__ import annotations

from dataclasses import dataclass

from models import DAY_MS


@dataclass(frozen=True, order=True)
class Window:
    """A half-open time range [start_ms, end_ms) in UTC milliseconds."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"empty window [{self.start_ms}, {self.end_ms})")

    @property
    def length_ms(self) -> int:
        return self.end_ms - self.start_ms

    def params(self) -> dict[str, int]:
        """The query parameters selecting exactly this window (both bounds inclusive)."""
        return {"startTime": self.start_ms, "endTime": self.end_ms - 1}


def plan_windows(
    start_ms: int, end_ms: int, max_window_ms: int, *, aligned: bool = True
) -> list[Window]:
    """Split [start_ms, end_ms) into the fewest windows of at most `max_window_ms`.

    Interior boundaries fall on UTC midnights (or on multiples of the window when it is shorter
    than a day), so two runs over overlapping ranges plan the same windows and a coverage ledger
    can resume by whole days. `aligned=False` plans the fewest windows, whatever their bounds
    (for calls so heavy that one more matters).
    """
    if max_window_ms <= 0:
        raise ValueError("max_window_ms must be positive")
    grain = 1 if not aligned else DAY_MS if max_window_ms >= DAY_MS else max_window_ms
    windows: list[Window] = []
    start = start_ms
    while start < end_ms:
        # max_window_ms >= grain, so the aligned end always lies beyond `start`
        end = min((start + max_window_ms) // grain * grain, end_ms)
        windows.append(Window(start, end))
        start = end
    return windows
