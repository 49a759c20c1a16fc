"""Generated scenarios: the character each promises, determinism, speed, and live continuation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import astuple, fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.ledger import Exchange
from simulator.prices import DAY_MS, HOUR_MS, MINUTE_MS
from simulator.records import LoanRecord, RepayRecord, TransferRecord
from simulator.scenarios import SCENARIOS, build_exchange
from tests.simulator.history_audit import assert_consistent, assert_snapshot_matches_history

START = 1_780_002_000_000 // HOUR_MS * HOUR_MS
EVER = 0


def build(scenario: str, seed: int) -> Exchange:
    """Generated up to START, then live on a wall clock that stands still."""
    return build_exchange(scenario, seed, START, wall_clock=lambda: 0)


@pytest.fixture(scope="module")
def default() -> Exchange:
    return build("default", 1)


def history(ex: Exchange) -> Iterator[tuple[object, ...]]:
    """Every record and daily snapshot, as plain tuples, in a fixed order."""
    now = ex.now_ms()
    yield from (astuple(r) for r in ex.loans(None, EVER, now))
    yield from (astuple(r) for r in ex.repays(None, EVER, now))
    yield from (astuple(r) for r in ex.interest(None, EVER, now))
    yield from (astuple(r) for r in ex.transfers(None, None, EVER, now))
    yield from (astuple(r) for r in ex.liquidations(EVER, now))
    for symbol in ex.symbols:
        yield from (astuple(r) for r in ex.orders(symbol, EVER, now))
        yield from (astuple(r) for r in ex.trades(symbol, EVER, now))
    yield from (astuple(r) for r in ex.daily_snapshots(EVER, now))


def test_default_builds_live_at_the_start() -> None:
    # how long it takes is bench_simulator's to measure
    ex = build("default", 9)
    assert ex.now_ms() == START and ex.is_live


def test_default_history_equals_its_snapshot(default: Exchange) -> None:
    assert_consistent(default)


def test_default_has_the_promised_character(default: Exchange) -> None:
    ex, now = default, default.now_ms()
    assert len(ex.assets) >= 8 and len(ex.symbols) >= 6
    assert 79 * DAY_MS < START - ex.opened_ms <= 80 * DAY_MS
    assert ex.start_ms == START
    assert ex.transfers(None, "ROLL_IN", EVER, now) and ex.transfers(None, "ROLL_OUT", EVER, now)
    loans = ex.loans(None, EVER, now)
    repays = ex.repays(None, EVER, now)
    assert len({x.asset for x in loans}) >= 5 and len(loans) > 100
    partial = [r for r in repays if r.kind == "MANUAL" and r.principal > 0]
    assert len({r.asset for r in partial}) >= 4
    # a force liquidation, repaid automatically
    liquidations = ex.liquidations(EVER, now)
    assert liquidations
    assert any(r.kind == "AUTO" for r in repays)
    for record in liquidations:
        order = ex.order(record.symbol, record.order_id)
        assert order is not None and order.is_liquidation
    # rows still PENDING at start that confirm within the first live hour; FAILED rows
    confirms = [r.confirm_ms for r in loans] + [r.confirm_ms for r in repays]
    confirms += [r.confirm_ms for r in ex.transfers(None, None, EVER, now)]
    pending = [c for c in confirms if ex.is_pending(c)]
    assert len(pending) >= 3 and all(START < c <= START + HOUR_MS for c in pending)
    assert any(x.status == "FAILED" for x in loans)
    assert any(x.status == "FAILED" for x in ex.transfers(None, None, EVER, now))
    # windows deeper than one page of 100
    month = (START - 30 * DAY_MS, START)
    assert len(ex.interest("USDT", *month)) > 100
    assert len(ex.transfers("USDT", None, *month)) > 100
    trades = Counter({s: len(ex.trades(s, EVER, now)) for s in ex.symbols})
    assert trades["BTCUSDT"] > 1000 and 200 <= trades["ETHUSDT"] < 1000
    # the account goes live owing several assets, with resting LIMIT orders
    owing = [a for a, b in ex.snapshot().balances.items() if b.borrowed > 0]
    assert len(owing) >= 3
    assert any(o.type == "LIMIT" for o in ex.open_orders(None))


def test_default_holds_rows_identical_but_for_their_tx_id(default: Exchange) -> None:
    def twins(rows: list[tuple[object, ...]]) -> bool:
        return any(n > 1 for n in Counter(rows).values())

    now = default.now_ms()
    loans = [astuple(replace(x, tx_id=0)) for x in default.loans(None, EVER, now)]
    charges = [astuple(replace(x, tx_id=0)) for x in default.interest(None, EVER, now)]
    assert twins(loans) and twins(charges)


def test_history_queries_answer_a_page_anywhere_in_the_history(default: Exchange) -> None:
    now = default.now_ms()
    for day in range(80):
        end = now - day * DAY_MS
        charges = default.interest("USDT", end - 30 * DAY_MS, end)[:100]
        assert all(end - 30 * DAY_MS <= c.time_ms <= end for c in charges)
        trades = default.trades_from_id("BTCUSDT", day * 7, 1000)
        assert all(t.id >= day * 7 for t in trades)


def test_same_arguments_give_the_same_history() -> None:
    first, again, other = build("default", 5), build("default", 5), build("default", 6)
    assert list(history(first)) == list(history(again))
    assert first.snapshot() == again.snapshot()
    assert list(history(first)) != list(history(other))


def test_default_goes_on_living_after_start() -> None:
    ex = build("default", 2)
    owing = [a for a, b in ex.snapshot().balances.items() if b.borrowed > 0]
    resting = {o.order_id for o in ex.open_orders(None)}
    ex.advance_clock(HOUR_MS)
    ex.catch_up()
    # PENDING rows have confirmed; the hour's interest is charged on the hour
    rows = ex.interest(None, START + HOUR_MS, START + HOUR_MS)
    assert sorted(r.asset for r in rows) == sorted(owing)
    assert all(r.type == "PERIODIC" for r in rows)
    now = ex.now_ms()
    confirms = [r.confirm_ms for r in ex.loans(None, EVER, now)]
    confirms += [r.confirm_ms for r in ex.repays(None, EVER, now)]
    confirms += [r.confirm_ms for r in ex.transfers(None, None, EVER, now)]
    assert not any(ex.is_pending(c) for c in confirms)
    # resting orders fill as prices move
    for _ in range(96):
        if len(ex.open_orders(None)) < len(resting):
            break
        ex.advance_clock(HOUR_MS)
        ex.catch_up()
    assert len(ex.open_orders(None)) < len(resting)
    filled = [t for s in ex.symbols for t in ex.trades(s, START, ex.now_ms()) if t.is_maker]
    assert filled and all(t.order_id in resting for t in filled)
    assert_consistent(ex)


def test_default_liquidates_whatever_the_seed() -> None:
    for seed in (11, 12):
        ex = build("default", seed)
        assert ex.liquidations(EVER, ex.now_ms()), seed
        assert_snapshot_matches_history(ex)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), scenario=st.sampled_from(["tiny", "empty"]))
def test_small_scenarios_are_consistent_for_any_seed(seed: int, scenario: str) -> None:
    ex = build(scenario, seed)
    assert_consistent(ex)
    ex.advance_clock(DAY_MS + 5 * MINUTE_MS)
    ex.catch_up()
    assert_consistent(ex)


def test_empty_scenario_has_no_history() -> None:
    ex = build("empty", 1)
    assert ex.record_counts() == {
        "loans": 0,
        "repays": 0,
        "interest": 0,
        "transfers": 0,
        "liquidations": 0,
        "orders": 0,
        "trades": 0,
        "snapshots": 1,
    }
    assert ex.snapshot().margin_level == 999


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        build_exchange("nope", 1, START)
    assert set(SCENARIOS) >= {"default", "long", "large", "tiny", "empty"}


def test_long_spans_about_400_days() -> None:
    ex = build("long", 3)
    assert START - ex.opened_ms > 399 * DAY_MS
    assert len(ex.daily_snapshots(EVER, START)) >= 399
    assert len(ex.liquidations(EVER, START)) >= 2
    assert_consistent(ex)


@pytest.mark.slow
def test_large_holds_a_million_records_that_add_up_to_its_snapshots() -> None:
    # how fast it builds and answers is bench_simulator's to measure, not a test's
    ex = build("large", 1)
    counts = ex.record_counts()
    assert sum(counts.values()) >= 1_000_000, counts
    page = ex.trades("BTCUSDT", START - DAY_MS, START)[:1000]
    orders = ex.orders_from_id("ETHUSDT", page[0].order_id, 500)
    assert len(page) == 1000 and orders
    assert_snapshot_matches_history(ex)


# -- veteran: three years, every rarer rule -----------------------------------------------------
@pytest.fixture(scope="module")
def veteran() -> Exchange:
    return build("veteran", 1)


def flat(record: object) -> tuple[object, ...]:
    """A record's fields as a tuple (`astuple` deep-copies: too slow for 300k records)."""
    return tuple(getattr(record, f.name) for f in fields(record))  # type: ignore[arg-type]


def veteran_history(ex: Exchange) -> Iterator[tuple[object, ...]]:
    """Every record of every account, the flows and the daily snapshots, in a fixed order."""
    now = ex.now_ms()
    for pair in [None, *ex.isolated_symbols]:
        where = {"isolated_symbol": pair}
        yield from map(flat, ex.loans(None, EVER, now, **where))
        yield from map(flat, ex.repays(None, EVER, now, **where))
        yield from map(flat, ex.interest(None, EVER, now, **where))
        yield from map(flat, ex.transfers(None, None, EVER, now, **where))
        yield from map(flat, ex.flows(EVER, now, **where))
        for symbol in ex.symbols if pair is None else [pair]:
            yield from map(flat, ex.orders(symbol, EVER, now, isolated=pair is not None))
            yield from map(flat, ex.trades(symbol, EVER, now, isolated=pair is not None))
    yield from map(flat, ex.liquidations(EVER, now))
    yield from map(flat, ex.daily_snapshots(EVER, now))


def test_veteran_is_older_than_every_retention_limit(veteran: Exchange) -> None:
    ex, now = veteran, veteran.now_ms()
    age = START - ex.opened_ms
    assert 3 * 365 * DAY_MS - HOUR_MS < age <= 3 * 365 * DAY_MS
    assert len(ex.daily_snapshots(EVER, now)) >= 3 * 365 - 1
    # busy before every window the API keeps (interest and capital flow 90 days, universal
    # transfers 6 months, daily snapshots a month), at a calm pace
    half_year = START - 183 * DAY_MS
    assert ex.interest("USDT", EVER, half_year) and ex.loans(None, EVER, half_year)
    assert ex.transfers(None, None, EVER, half_year) and ex.repays(None, EVER, half_year)
    trades_per_day = sum(len(ex.trades(s, EVER, now)) for s in ex.symbols) / (age / DAY_MS)
    assert 10 < trades_per_day < 60


def test_veteran_has_every_rarer_rule_before_and_inside_the_windows(veteran: Exchange) -> None:
    ex, now = veteran, veteran.now_ms()
    recent = START - 90 * DAY_MS

    def both_sides(times: list[int]) -> bool:
        return any(t < recent for t in times) and any(t >= recent for t in times)

    converted = [r.time_ms for r in ex.interest("BNB", EVER, now) if r.converted]
    assert both_sides(converted)
    repays = ex.repays(None, EVER, now)
    for kind in ("MANUAL", "AUTO", "BNB_AUTO_REPAY", "POINT_AUTO_REPAY"):
        assert both_sides([r.time_ms for r in repays if r.kind == kind and not r.by_liquidation])
    assert both_sides([r.time_ms for r in repays if r.by_liquidation])
    flows = ex.flows(EVER, now)
    for kind in ("LIQUIDATION_FEE", "SMALL_BALANCE_CONVERT"):
        assert both_sides([f.time_ms for f in flows if f.type == kind]), kind
    assert both_sides([r.time_ms for r in ex.liquidations(EVER, now)])
    # a delisted pair (long ago) and a delisted asset (inside the windows), converted to USDT
    assert ex.delisted["BNBBTC"] < recent <= ex.delisted["LUNA"] == ex.delisted["LUNAUSDT"]
    assert [f.asset for f in flows if f.type == "SMALL_CONVERT"] == ["LUNA", "USDT"]
    assert all(t.time_ms < ex.delisted["LUNA"] for t in ex.trades("LUNAUSDT", EVER, now))
    assert ex.trades("LUNAUSDT", EVER, now) and "LUNA" not in ex.snapshot().balances
    # rows PENDING for days, ending CONFIRMED and FAILED; some still pending at start
    rows: list[LoanRecord | RepayRecord | TransferRecord] = [*ex.loans(None, EVER, now)]
    rows += [*ex.repays(None, EVER, now), *ex.transfers(None, None, EVER, now)]
    slow = [r for r in rows if r.confirm_ms - r.time_ms >= 2 * DAY_MS]
    assert {r.status for r in slow} == {"CONFIRMED", "FAILED"}
    assert {r.status for r in slow if ex.is_pending(r.confirm_ms)} == {"CONFIRMED", "FAILED"}
    # MARKET orders sized by quoteOrderQty
    quoted = [o for s in ex.symbols for o in ex.orders(s, EVER, now) if o.orig_quote_qty]
    assert both_sides([o.time_ms for o in quoted])
    assert all(o.cumm_quote_qty <= o.orig_quote_qty for o in quoted)


def test_veteran_trades_on_isolated_margin_too(veteran: Exchange) -> None:
    ex, now = veteran, veteran.now_ms()
    assert ex.isolated_symbols == ("BTCUSDT",)
    where = {"isolated_symbol": "BTCUSDT"}
    peers = {r.trans_from for r in ex.transfers(None, "ROLL_IN", EVER, now, **where)}
    assert peers == {"SPOT", "CROSS_MARGIN"}
    assert ex.loans(None, EVER, now, **where) and ex.repays(None, EVER, now, **where)
    assert ex.interest(None, START - 30 * DAY_MS, now, **where)
    assert ex.trades("BTCUSDT", EVER, now, isolated=True)
    assert not any(t.is_isolated for t in ex.trades("BTCUSDT", EVER, now))


def test_veteran_history_equals_its_snapshots_and_capital_flow(veteran: Exchange) -> None:
    assert_consistent(veteran)


def test_veteran_same_seed_same_history(veteran: Exchange) -> None:
    again = build("veteran", 1)
    assert list(veteran_history(again)) == list(veteran_history(veteran))
    assert again.snapshot() == veteran.snapshot()
