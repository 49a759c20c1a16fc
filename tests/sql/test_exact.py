"""Arithmetic that cannot overflow for any amount Binance can hold: charges and fill values at
the extremes of the lake's DECIMAL(38, 18), computed exactly (integers of 1e-8)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, localcontext
from pathlib import Path

import pytest

from sql.runner import build, reconcile
from tests.sql.conftest import BuiltLake
from tests.sql.handmade import Fetch, Row, at, write_fetch

D = Decimal
LARGEST = D("99999999999999999999.99999999")  # the largest 8-decimal amount DECIMAL(38, 18) holds
# (principal, daily rate): the charge of the last must still fit the lake (< 1e20)
CASES = (
    (LARGEST, D("0.0002")),
    (LARGEST, D("0.5")),
    (LARGEST, D(23)),
    (D("1234567.89"), D("0.0002")),
    (D("1234567.89"), D(100)),
    (D("0.00000001"), D("0.0002")),
)


def exact_charge(principal: Decimal, rate: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = 80
        return (principal * rate / 24).quantize(D("0.00000001"), rounding=ROUND_CEILING)


def charge_row(number: int, principal: Decimal, rate: Decimal) -> Row:
    return {
        "txId": number,
        "asset": "MEME",
        "rawAsset": "MEME",
        "principal": principal,
        "interest": exact_charge(principal, rate) if rate <= 100 else D(1),
        "interestRate": rate,
        "type": "PERIODIC",
        "interestAccuredTime": at(number % 24),
    }


@pytest.fixture(scope="module")
def extremes(tmp_path_factory: pytest.TempPathFactory) -> BuiltLake:
    data_dir: Path = tmp_path_factory.mktemp("extremes")
    charges = [
        charge_row(n, principal, rate)
        for n, (principal, rate) in enumerate((*CASES, (D(1), D(101))))
    ]
    fill = {
        "id": 1,
        "symbol": "MEMEUSDT",
        "orderId": 1,
        "price": D("12345678.12345678"),
        "qty": D("8000000000.12345678"),
        "commission": D(0),
        "commissionAsset": "USDT",
        "isBuyer": True,
        "isMaker": False,
        "time": at(1),
    }
    write_fetch(data_dir, Fetch("interest", charges, "r1", at(23)))
    write_fetch(data_dir, Fetch("trades", [fill], "r1", at(23)))
    return BuiltLake(data_dir, build(data_dir))


def test_charges_of_the_largest_principals_are_exact(extremes: BuiltLake) -> None:
    rows = extremes.query(
        "select principal, interest_rate, expected_interest from int_interest_charges "
        "where interest_rate <= 100"
    )
    assert sorted(rows) == sorted((p, r, exact_charge(p, r)) for p, r in CASES)
    assert exact_charge(LARGEST, D(23)) > D("9.5e19")


def test_a_rate_beyond_any_real_one_is_a_break_not_a_failed_build(extremes: BuiltLake) -> None:
    assert extremes.result.ok, [f.message for f in extremes.result.failures]
    (absurd,) = [b for b in reconcile(extremes.data_dir) if b.kind == "interest_charge"]
    assert absurd.expected is None
    assert str(absurd.detail).endswith("/ 24) = not computable")


def test_a_fill_worth_1e17_is_valued_exactly(extremes: BuiltLake) -> None:
    with localcontext() as context:
        context.prec = 80
        paid = -(D("12345678.12345678") * D("8000000000.12345678"))
    assert extremes.query(
        "select balance_effect from int_ledger where entry_type = 'TRADE_QUOTE'"
    ) == [(paid,)]
