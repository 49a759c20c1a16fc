"""The window planner covers a range exactly once with legal, day-aligned windows."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.windows import Window, plan_windows
from models import DAY_MS, HOUR_MS, normalise_time_ms

YEAR_2020 = 1_577_836_800_000
times = st.integers(min_value=YEAR_2020, max_value=YEAR_2020 + 800 * DAY_MS)
spans = st.integers(min_value=1, max_value=400 * DAY_MS)
max_windows = st.sampled_from([HOUR_MS, DAY_MS, 7 * DAY_MS, 30 * DAY_MS, 30 * DAY_MS + 5])


@given(times, spans, max_windows)
def test_windows_cover_the_range_exactly_once(start: int, span: int, limit: int) -> None:
    end = start + span
    windows = plan_windows(start, end, limit)
    assert windows[0].start_ms == start and windows[-1].end_ms == end
    for before, after in itertools.pairwise(windows):
        assert before.end_ms == after.start_ms  # no gap, no overlap
    assert all(0 < w.length_ms <= limit for w in windows)
    # on the wire: inclusive bounds that never share a millisecond
    wire = [w.params() for w in windows]
    for sent_before, sent_after in itertools.pairwise(wire):
        assert sent_after["startTime"] == sent_before["endTime"] + 1
    assert all(p["endTime"] - p["startTime"] < limit for p in wire)


@given(times, spans, max_windows)
def test_interior_boundaries_are_aligned_and_windows_are_few(
    start: int, span: int, limit: int
) -> None:
    windows = plan_windows(start, start + span, limit)
    grain = DAY_MS if limit >= DAY_MS else limit
    assert all(w.start_ms % grain == 0 for w in windows[1:])
    assert len(windows) <= -(-span // limit) + 1  # at most one extra for the alignment


@given(times, spans, max_windows)
def test_unaligned_plans_use_the_fewest_windows(start: int, span: int, limit: int) -> None:
    windows = plan_windows(start, start + span, limit, aligned=False)
    assert len(windows) == -(-span // limit)
    assert windows[0].start_ms == start and windows[-1].end_ms == start + span


def test_a_month_of_interest_is_one_window_when_aligned() -> None:
    assert plan_windows(YEAR_2020, YEAR_2020 + 30 * DAY_MS, 30 * DAY_MS) == [
        Window(YEAR_2020, YEAR_2020 + 30 * DAY_MS)
    ]


def test_empty_ranges_plan_nothing_and_bad_limits_fail() -> None:
    assert plan_windows(YEAR_2020, YEAR_2020, DAY_MS) == []
    with pytest.raises(ValueError):
        plan_windows(YEAR_2020, YEAR_2020 + 1, 0)
    with pytest.raises(ValueError):
        Window(5, 5)


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        (1566898617, 1566898617000),  # the transfer doc example: 10-digit seconds
        ("1566898617", 1566898617000),
        (1672160400000, 1672160400000),  # milliseconds pass unchanged
        (99_999_999_999, 99_999_999_999_000),
        (100_000_000_000, 100_000_000_000),
    ],
)
def test_seconds_become_milliseconds(raw: int | str, ms: int) -> None:
    assert normalise_time_ms(raw) == ms
