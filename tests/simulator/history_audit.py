"""What an exchange's history implies, recomputed independently of the engine, for assertions.

Each account (the cross one, or an isolated pair's) is audited on its own history: balances
from transfers, loans, repays (what each debited), interest (BNB paid at once when converted),
fills and fees/conversions; interest from the hourly rule; and the capital flow against the
balances it must add up to.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from simulator import capital
from simulator.ledger import Exchange
from simulator.prices import HOUR_MS, UNIT, to_units
from simulator.records import AssetBalance, InterestRecord

EVER = 0
BNB_DISCOUNT = Decimal("0.95")


@dataclass
class Implied:
    gross: Decimal = Decimal(0)  # free + locked
    borrowed: Decimal = Decimal(0)
    interest: Decimal = Decimal(0)


def ceil8(value: Decimal) -> Decimal:
    units = value.scaleb(8)
    whole = int(units)
    return Decimal(whole + (units > whole)).scaleb(-8)


def ceil8_interest(principal: Decimal, daily_rate: Decimal) -> Decimal:
    """ceil8(principal x daily_rate / 24), computed exactly with integers."""
    numerator = to_units(principal) * to_units(daily_rate)
    return Decimal(-(-numerator // (24 * UNIT))).scaleb(-8)


def usdt_price(ex: Exchange, asset: str, t: int) -> Decimal:
    """The documented conversion price: the asset's USDT pair at t (USDT itself is 1)."""
    return Decimal(1) if asset == "USDT" else ex.price(f"{asset}USDT", t)


def bnb_interest(ex: Exchange, row: InterestRecord) -> Decimal:
    """A converted row's BNB: ceil8(charge x P(asset) x 0.95 / P(BNB))."""
    charge = ceil8_interest(row.principal, row.rate)
    value = charge * usdt_price(ex, row.borrowed_asset, row.time_ms) * BNB_DISCOUNT
    return ceil8(value / usdt_price(ex, "BNB", row.time_ms))


Effect = tuple[int, str, Decimal, Decimal, Decimal]  # (time, asset, gross, borrowed, interest)


def balance_effects(ex: Exchange, until: int, isolated_symbol: str | None = None) -> list[Effect]:
    """What each record with time <= until did to an account's balances, in time order
    (FAILED rows did nothing)."""
    where = {"isolated_symbol": isolated_symbol}
    zero = Decimal(0)
    out: list[Effect] = []
    for transfer in ex.transfers(None, None, EVER, until, **where):
        if transfer.status != "FAILED":
            sign = 1 if transfer.type == "ROLL_IN" else -1
            out.append((transfer.time_ms, transfer.asset, sign * transfer.amount, zero, zero))
    for loan in ex.loans(None, EVER, until, **where):
        if loan.status != "FAILED":
            out.append((loan.time_ms, loan.asset, loan.principal, loan.principal, zero))
    for repay in ex.repays(None, EVER, until, **where):
        if repay.status != "FAILED":
            assert repay.amount == repay.interest + repay.principal
            out.append((repay.time_ms, repay.debit_asset, -repay.debit, zero, zero))
            out.append((repay.time_ms, repay.asset, zero, -repay.principal, -repay.interest))
    for charge in ex.interest(None, EVER, until, **where):
        if charge.converted:
            out.append((charge.time_ms, charge.asset, -charge.interest, zero, zero))
        else:
            out.append((charge.time_ms, charge.asset, zero, zero, charge.interest))
    pairs = (
        ex.symbols if isolated_symbol is None else {isolated_symbol: ex.symbols[isolated_symbol]}
    )
    for symbol, (base, quote) in pairs.items():
        for trade in ex.trades(symbol, EVER, until, isolated=isolated_symbol is not None):
            assert trade.quote_qty == trade.price * trade.qty
            sign = 1 if trade.is_buyer else -1
            t = trade.time_ms
            out.append((t, base, sign * trade.qty, zero, zero))
            out.append((t, quote, -sign * trade.quote_qty, zero, zero))
            out.append((t, trade.commission_asset, -trade.commission, zero, zero))
    for flow in ex.flows(EVER, until, **where):
        out.append((flow.time_ms, flow.asset, flow.amount, zero, zero))
    out.sort(key=lambda e: e[0])
    return out


def apply_effects(into: defaultdict[str, Implied], effects: list[Effect]) -> None:
    for _, asset, gross, borrowed, interest in effects:
        implied = into[asset]
        implied.gross += gross
        implied.borrowed += borrowed
        implied.interest += interest


def implied_balances(
    ex: Exchange, until: int, isolated_symbol: str | None = None
) -> dict[str, Implied]:
    """Per asset, what every record with time <= until adds up to."""
    out: defaultdict[str, Implied] = defaultdict(Implied)
    apply_effects(out, balance_effects(ex, until, isolated_symbol))
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
    for asset, expected in implied.items():
        if asset not in balances:  # left out only when all zero (a delisted asset)
            assert expected == Implied(), f"{where} {asset}: {expected} not in the snapshot"


def accounts(ex: Exchange) -> list[str | None]:
    return [None, *ex.isolated_symbols]


def assert_snapshot_matches_history(ex: Exchange) -> None:
    """Each account now equals its history, and `locked` equals what its open orders hold."""
    now = ex.now_ms()
    for pair in accounts(ex):
        snapshot = ex.snapshot(isolated_symbol=pair)
        implied = implied_balances(ex, now, pair)
        assert_balances_match(snapshot.balances, implied, f"now {pair or 'cross'}")
        locked: defaultdict[str, Decimal] = defaultdict(Decimal)
        for order in ex.open_orders(pair, isolated=pair is not None):
            base, quote = ex.symbols[order.symbol]
            remaining = order.orig_qty - order.executed_qty
            if order.side == "BUY":
                locked[quote] += remaining * order.price
            else:
                locked[base] += remaining
        for asset, balance in snapshot.balances.items():
            assert balance.locked == locked[asset], (pair, asset)


def assert_daily_snapshots_match_history(ex: Exchange) -> int:
    """Every daily snapshot equals the history up to its instant (one pass over the history)."""
    snapshots = ex.daily_snapshots(EVER, ex.now_ms())
    effects = balance_effects(ex, ex.now_ms())
    running: defaultdict[str, Implied] = defaultdict(Implied)
    done = 0
    for snap in snapshots:
        assert snap.time_ms % HOUR_MS == HOUR_MS - 1000
        upto = done
        while upto < len(effects) and effects[upto][0] <= snap.time_ms:
            upto += 1
        apply_effects(running, effects[done:upto])
        done = upto
        assert_balances_match(snap.balances, running, f"@{snap.time_ms}")
    return len(snapshots)


def assert_interest_follows_rule(ex: Exchange, isolated_symbol: str | None = None) -> None:
    """ceil8 on every row (converted into BNB at the documented price when paid in BNB);
    ON_BORROW per loan; one PERIODIC per asset-hour with principal out, on that principal."""
    now = ex.now_ms()
    where = {"isolated_symbol": isolated_symbol}
    rows = ex.interest(None, EVER, now, **where)
    loans = [x for x in ex.loans(None, EVER, now, **where) if x.status != "FAILED"]
    on_borrow = Counter(
        (r.borrowed_asset, r.time_ms, r.principal) for r in rows if r.type.startswith("ON_BORROW")
    )
    assert on_borrow == Counter((x.asset, x.time_ms, x.principal) for x in loans)
    periodic: dict[tuple[str, int], InterestRecord] = {}
    for row in rows:
        if row.converted:
            assert (row.asset, isolated_symbol) == ("BNB", None), row
            assert row.type.endswith("_CONVERTED") and row.raw_asset != "BNB", row
            assert row.interest == bnb_interest(ex, row), row
        else:
            assert not row.type.endswith("_CONVERTED"), row
            assert row.interest == ceil8_interest(row.principal, row.rate), row
        assert row.isolated_symbol == isolated_symbol, row
        assert row.rate == ex.rate(row.borrowed_asset, row.time_ms), row
        if row.type.startswith("PERIODIC"):
            assert row.time_ms % HOUR_MS == 0, row
            key = (row.borrowed_asset, row.time_ms)
            assert key not in periodic, row
            periodic[key] = row
    assert len({r.tx_id for r in rows}) == len(rows)
    changes: defaultdict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for loan in loans:
        changes[loan.asset].append((loan.time_ms, loan.principal))
    for repay in ex.repays(None, EVER, now, **where):
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


def assert_capital_flow_matches_balances(ex: Exchange) -> None:
    """Per account and asset, the capital flow since the opening adds up to free + locked now;
    each account's rows carry its pair (isolated) and no other account's rows."""
    now = ex.now_ms()
    for pair in accounts(ex):
        sums: defaultdict[str, Decimal] = defaultdict(Decimal)
        for flow in capital.account_flows(ex, EVER, now, pair):
            assert flow.type in capital.FLOW_TYPES, flow
            if pair is not None:
                assert flow.symbol == pair, flow
            sums[flow.asset] += flow.amount
        for asset, balance in ex.snapshot(isolated_symbol=pair).balances.items():
            assert sums[asset] == balance.free + balance.locked, (pair, asset)


def margin_level(ex: Exchange, balances: dict[str, Implied], t: int) -> Decimal:
    held = sum(b.gross * ex.market.asset_units(a, t) for a, b in balances.items())
    owed = sum((b.borrowed + b.interest) * ex.market.asset_units(a, t) for a, b in balances.items())
    return Decimal(999) if not owed else Decimal(held) / Decimal(owed)


def assert_consistent(ex: Exchange) -> None:
    assert_snapshot_matches_history(ex)
    for pair in accounts(ex):
        assert_interest_follows_rule(ex, pair)
    assert_daily_snapshots_match_history(ex)
    assert_capital_flow_matches_balances(ex)
