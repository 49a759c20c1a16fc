"""Writes over real HTTP (today's generation): borrow/repay, universal transfers, listen keys,
and the ledger's business rejections as Binance error codes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from simulator.scenarios import build_exchange
from simulator.server import RunningSimulator
from tests.fixtures_sim import SignedClient, SimFactory

M = "/sapi/v1/margin"


@pytest.fixture(scope="module")
def writable(sim_factory: SimFactory) -> Iterator[tuple[RunningSimulator, SignedClient]]:
    # both generations: the seed's writes and today's meet one ledger
    running = sim_factory(exchange=build_exchange("tiny", 9, None), api_generation="both")
    client = SignedClient(running.url)
    yield running, client
    client.close()


def test_borrow_then_repay_and_find_them_by_tx_id(
    writable: tuple[RunningSimulator, SignedClient],
) -> None:
    _, client = writable
    borrowed = client.ok(
        "POST", f"{M}/borrow-repay", asset="USDT", isIsolated="FALSE", amount="12.5", type="BORROW"
    )["tranId"]
    row = client.ok("GET", f"{M}/borrow-repay", type="BORROW", txId=borrowed)["rows"]
    assert row == [
        {
            "type": "MANUAL",
            "amount": "12.50000000",
            "asset": "USDT",
            "interest": "0.00000000",
            "principal": "12.50000000",
            "status": "CONFIRMED",
            "timestamp": row[0]["timestamp"],
            "txId": borrowed,
        }
    ]
    repaid = client.ok(
        "POST", f"{M}/borrow-repay", asset="USDT", isIsolated="FALSE", amount="3", type="REPAY"
    )["tranId"]
    repay = client.ok("GET", f"{M}/borrow-repay", type="REPAY", txId=repaid)["rows"][0]
    assert Decimal(repay["amount"]) == 3 == Decimal(repay["interest"]) + Decimal(repay["principal"])
    flows = client.ok("GET", f"{M}/capital-flow", type="BORROW", asset="USDT")
    assert borrowed in {f["tranId"] for f in flows}


def test_universal_transfers_show_in_both_histories(
    writable: tuple[RunningSimulator, SignedClient],
) -> None:
    _, client = writable
    into = client.ok(
        "POST", "/sapi/v1/asset/transfer", type="MAIN_MARGIN", asset="USDT", amount="7"
    )["tranId"]
    out = client.ok(
        "POST", "/sapi/v1/asset/transfer", type="MARGIN_MAIN", asset="USDT", amount="2"
    )["tranId"]
    listed = client.ok("GET", "/sapi/v1/asset/transfer", type="MAIN_MARGIN")["rows"]
    assert {
        "tranId": into,
        "type": "MAIN_MARGIN",
        "amount": "7.00000000",
        "status": "CONFIRMED",
    }.items() <= listed[0].items()
    margin = {r["txId"]: r for r in client.ok("GET", f"{M}/transfer", size=5)["rows"]}
    assert margin[into]["type"] == "ROLL_IN" and margin[out]["type"] == "ROLL_OUT"
    other = client.request(
        "POST", "/sapi/v1/asset/transfer", type="MAIN_UMFUTURE", asset="USDT", amount="1"
    )
    assert other.json()["code"] == -3026


def test_ledger_rejections_keep_their_codes(
    writable: tuple[RunningSimulator, SignedClient],
) -> None:
    _, client = writable
    too_much = client.request(
        "POST", f"{M}/borrow-repay", asset="BTC", isIsolated="FALSE", amount="100000", type="BORROW"
    )
    assert too_much.status_code == 400 and too_much.json()["code"] == -3006
    over = client.request("POST", f"{M}/repay", asset="ADA", amount="1000000")
    assert over.json()["code"] == -3015
    broke = client.request("POST", f"{M}/transfer", asset="USDT", amount="99999999", type="2")
    assert broke.json()["code"] in (-3041, -3023)
    assert client.get(f"{M}/interestHistory", asset="NOPE").json()["code"] == -3027
    isolated = client.get(f"{M}/allOrders", symbol="BTCUSDT", isIsolated="TRUE")
    assert isolated.json()["code"] == -11001
    assert client.get(f"{M}/loan").json()["code"] == -1102
    assert client.get(f"{M}/borrow-repay", type="LOAN").json()["code"] == -1102


def test_no_isolated_pairs(writable: tuple[RunningSimulator, SignedClient]) -> None:
    _, client = writable
    isolated = client.ok("GET", f"{M}/isolated/account")
    assert isolated["assets"] == [] and isolated["totalAssetOfBtc"] == "0.00000000"
    assert client.ok("GET", f"{M}/interestHistory", isolatedSymbol="BTCUSDT") == {
        "rows": [],
        "total": 0,
    }


def test_listen_key_lifecycle(writable: tuple[RunningSimulator, SignedClient]) -> None:
    _, client = writable
    key = client.ok("POST", f"{M}/listen-key")["listenKey"]
    assert client.ok("PUT", f"{M}/listen-key", listenKey=key) == {}
    assert client.request("PUT", f"{M}/listen-key", listenKey="x" * 60).json()["code"] == -1125
    assert client.ok("DELETE", f"{M}/listen-key") == {}  # today's DELETE names no key
    assert client.request("PUT", f"{M}/listen-key", listenKey=key).json()["code"] == -1125
    anonymous = client.http.post(f"{M}/listen-key")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, -2014)


def test_under_the_current_generation_the_seeds_endpoints_are_gone(
    sim_factory: SimFactory,
) -> None:
    running = sim_factory(exchange=build_exchange("tiny", 9, None), api_generation="current")
    client = SignedClient(running.url)
    assert client.get(f"{M}/loan", asset="USDT").status_code == 404
    assert (
        client.request("POST", f"{M}/transfer", asset="USDT", amount="1", type="1").status_code
        == 404
    )
    assert client.get(f"{M}/transfer").status_code == 200
    client.close()
