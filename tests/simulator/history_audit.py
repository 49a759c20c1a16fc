"""What an exchange's history implies, recomputed independently of the engine, for assertions."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from simulator.ledger import Exchange
from simulator.prices import HOUR_MS, UNIT, to_units
from simulator.records import AssetBalance, InterestRecord

EVER = 0


@dataclass
class Implied:
    gross: Decimal = Decimal(0)  # free + locked
    borrowed: Decimal = Decimal(0)
    interest: Decimal = Decimal(0)


def ceil8_interest(principal: Decimal, daily_rate: Decimal) -> Decimal:
    """ceil8(principal x daily_rate / 24), computed exactly with integers."""
    numerator = to_units(principal) * to_units(daily_rate)
    return Decimal(-(-numerator // (24 * UNIT))).scaleb(-8)


def implied_balances(ex: Exchange, until: int) -> dict[str, Implied]:
    """Per asset, what every record with time <= until adds up to (FAILED rows excluded)."""
    out: defaultdict[str, Implied] = defaultdict(Implied)
    for transfer in ex.transfers(None, None, EVER, until):
        if transfer.status != "FAILED":
            sign = 1 if transfer.type == "ROLL_IN" else -1
            out[transfer.asset].gross += sign * transfer.amount
    for loan in ex.loans(None, EVER, until):
        if loan.status != "FAILED":
            out[loan.asset].gross += loan.principal
            out[loan.asset].borrowed += loan.principal
    for repay in ex.repays(None, EVER, until):
        if repay.status != "FAILED":
            assert repay.amount == repay.interest + repay.principal
            out[repay.asset].gross -= repay.amount
            out[repay.asset].borrowed -= repay.principal
            out[repay.asset].interest -= repay.interest
    for charge in ex.interest(None, EVER, until):
        out[charge.asset].interest += charge.interest
    for symbol, (base, quote) in ex.symbols.items():
        for trade in ex.trades(symbol, EVER, until):
            assert trade.quote_qty == trade.price * trade.qty
            sign = 1 if trade.is_buyer else -1
            out[base].gross += sign * trade.qty
            out[quote].gross -= sign * trade.quote_qty
            out[trade.commission_asset].gross -= trade.commission
    return out


def assert_balances_match(
    balances: dict[str, AssetBalance], implied: dict[str, Implied], where: str
) -> None:
    for asset, balance in balances.items():
        expected = implied.get(asset, Implied())
        got = (balance.free + balance.locked, balance.borrowed, balance.interest)
        want = (expected.gross, expected.borrowed, expected.interest)
        assert got == want, f"{where} {asset}: snapshot {got} != history {want}"
        assert min(balance.free, balance.locked, balance.borrowed, balance.interest) >= 0


def assert_snapshot_matches_history(ex: Exchange) -> None:
    """The account now equals its history, and `locked` equals what open orders hold."""
    now = ex.now_ms()
    snapshot = ex.snapshot()
    assert_balances_match(snapshot.balances, implied_balances(ex, now), "now")
    locked: defaultdict[str, Decimal] = defaultdict(Decimal)
    for order in ex.open_orders(None):
        base, quote = ex.symbols[order.symbol]
        remaining = order.orig_qty - order.executed_qty
        if order.side == "BUY":
            locked[quote] += remaining * order.price
        else:
            locked[base] += remaining
    for asset, balance in snapshot.balances.items():
        assert balance.locked == locked[asset], asset


def assert_daily_snapshots_match_history(ex: Exchange) -> int:
    snapshots = ex.daily_snapshots(EVER, ex.now_ms())
    for snap in snapshots:
        assert snap.time_ms % HOUR_MS == HOUR_MS - 1000
        assert_balances_match(snap.balances, implied_balances(ex, snap.time_ms), f"@{snap.time_ms}")
    return len(snapshots)


def assert_interest_follows_rule(ex: Exchange) -> None:
    """ceil8 on every row; ON_BORROW per loan; one PERIODIC per asset-hour with principal out."""
    now = ex.now_ms()
    rows = ex.interest(None, EVER, now)
    loans = [x for x in ex.loans(None, EVER, now) if x.status != "FAILED"]
    on_borrow = Counter((r.asset, r.time_ms, r.principal) for r in rows if r.type == "ON_BORROW")
    assert on_borrow == Counter((x.asset, x.time_ms, x.principal) for x in loans)
    periodic: dict[tuple[str, int], InterestRecord] = {}
    for row in rows:
        assert row.interest == ceil8_interest(row.principal, row.rate), row
        assert row.rate == ex.rate(row.asset, row.time_ms), row
        if row.type == "PERIODIC":
            assert row.time_ms % HOUR_MS == 0, row
            assert (row.asset, row.time_ms) not in periodic, row
            periodic[(row.asset, row.time_ms)] = row
    assert len({r.tx_id for r in rows}) == len(rows)
    changes: defaultdict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for loan in loans:
        changes[loan.asset].append((loan.time_ms, loan.principal))
    for repay in ex.repays(None, EVER, now):
        if repay.status != "FAILED":
            changes[repay.asset].append((repay.time_ms, -repay.principal))
    first_hour = (ex.opened_ms // HOUR_MS + 1) * HOUR_MS
    for asset in ex.assets:
        events = sorted(changes[asset], key=lambda e: e[0])
        principal, i = Decimal(0), 0
        for hour in range(first_hour, now + 1, HOUR_MS):
            # the hour's charge sees what happened strictly before the hour
            while i < len(events) and events[i][0] < hour:
                principal += events[i][1]
                i += 1
            charged: InterestRecord | None = periodic.pop((asset, hour), None)
            if principal > 0:
                assert charged is not None, (asset, hour, principal)
                assert charged.principal == principal, (asset, hour, charged, principal)
            else:
                assert charged is None, charged
    assert not periodic, periodic


def margin_level(ex: Exchange, balances: dict[str, Implied], t: int) -> Decimal:
    held = sum(b.gross * ex.market.asset_units(a, t) for a, b in balances.items())
    owed = sum((b.borrowed + b.interest) * ex.market.asset_units(a, t) for a, b in balances.items())
    return Decimal(999) if not owed else Decimal(held) / Decimal(owed)


def assert_consistent(ex: Exchange) -> None:
    assert_snapshot_matches_history(ex)
    assert_interest_follows_rule(ex)
    assert_daily_snapshots_match_history(ex)
