"""The simulated API's endpoints as data: method, path, weight, security, handler, generation.

Weights are today's (facts §5.1, SDK 8.9.0 docstrings, margin change log); where the facts are
silent (the removed seed-generation writes) they are the last documented values, marked below.
Both API generations are served over the one ledger; `ApiGeneration` chooses which are visible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from simulator import handlers as h
from simulator import reference as ref
from simulator.contract import ExchangeProtocol
from simulator.limits import WeightKind
from simulator.params import Params

Security = Literal["NONE", "API_KEY", "USER_STREAM", "SIGNED"]
# Which API a server speaks: today's Binance, the 2019 seed document's, or both at once.
ApiGeneration = Literal["current", "seed", "both"]
API_GENERATIONS: tuple[ApiGeneration, ...] = ("current", "seed", "both")
# An endpoint's generation: "seed" = removed by Binance since the seed document (served under
# `seed` and `both`); "current" = today's replacement of one (under `current` and `both`);
# "both" = every other endpoint, served whatever the generation.
Generation = Literal["seed", "current", "both"]
# What a "row arrives while you page" fault does to make a row appear in this endpoint's list.
Arrival = Literal["borrow", "repay", "transfer"]
WeightRule = Callable[[Params, ExchangeProtocol], int]


def parse_api_generation(value: str) -> ApiGeneration:
    """`value` as an ApiGeneration; ValueError names the choices."""
    for generation in API_GENERATIONS:
        if value == generation:
            return generation
    raise ValueError(f"unknown API generation {value!r}: use {', '.join(API_GENERATIONS)}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    weight: int
    kind: WeightKind
    security: Security
    handler: h.Handler
    generation: Generation = "both"
    margin_account: bool = True  # a key without a margin account gets -3003
    requests_cap: int | None = None  # requests per window on top of the weight (allOrders)
    arrival: Arrival | None = None  # set on `current`/`size` paged lists
    weight_rule: WeightRule | None = None  # weight that depends on the parameters

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def served_in(self, api: ApiGeneration) -> bool:
        return self.generation == "both" or api in ("both", self.generation)

    def weight_of(self, params: Params, exchange: ExchangeProtocol) -> int:
        return self.weight if self.weight_rule is None else self.weight_rule(params, exchange)


MARGIN_BUY_EFFECTS = ("MARGIN_BUY", "AUTO_BORROW_REPAY")


def order_weight(params: Params, exchange: ExchangeProtocol) -> int:
    # 2026-05-07: 1500 (UID) when the order may borrow, else 6 (UID)
    return 1500 if params.raw("sideEffectType") in MARGIN_BUY_EFFECTS else 6


def open_orders_weight(params: Params, exchange: ExchangeProtocol) -> int:
    # without a symbol the weight counts every symbol (seed doc; ccxt#7385)
    return 10 if params.raw("symbol") else 10 * max(1, len(exchange.symbols))


def narrowed_by(param: str, narrow: int, whole: int) -> WeightRule:
    """`narrow` when `param` is sent, `whole` when the call covers everything."""

    def rule(params: Params, exchange: ExchangeProtocol) -> int:
        return narrow if params.raw(param) else whole

    return rule


M = "/sapi/v1/margin"

ENDPOINTS: tuple[Endpoint, ...] = (
    # time and connectivity (/api pool)
    Endpoint("GET", "/api/v3/time", 1, "API", "NONE", h.server_time, margin_account=False),
    Endpoint("GET", "/api/v3/ping", 1, "API", "NONE", h.ping, margin_account=False),
    # spot and futures market data (simulator.reference), in every generation
    Endpoint(
        "GET", "/api/v3/exchangeInfo", 20, "API", "NONE", ref.exchange_info, margin_account=False
    ),
    Endpoint("GET", "/api/v3/klines", 2, "API", "NONE", ref.klines, margin_account=False),
    Endpoint(
        "GET",
        "/fapi/v1/exchangeInfo",
        1,
        "FAPI",
        "NONE",
        ref.futures_exchange_info,
        margin_account=False,
    ),
    Endpoint(
        "GET",
        "/dapi/v1/exchangeInfo",
        1,
        "DAPI",
        "NONE",
        ref.delivery_exchange_info,
        margin_account=False,
    ),
    Endpoint(
        "GET",
        "/sapi/v1/capital/config/getall",
        10,
        "IP",
        "SIGNED",
        ref.capital_config,
        margin_account=False,
    ),
    # margin market data
    Endpoint("GET", f"{M}/asset", 10, "IP", "API_KEY", h.margin_asset, "seed", False),
    Endpoint("GET", f"{M}/pair", 10, "IP", "API_KEY", h.margin_pair, "seed", False),
    Endpoint("GET", f"{M}/allAssets", 1, "IP", "API_KEY", h.all_assets, margin_account=False),
    Endpoint("GET", f"{M}/allPairs", 1, "IP", "API_KEY", h.all_pairs, margin_account=False),
    Endpoint("GET", f"{M}/priceIndex", 10, "IP", "API_KEY", h.price_index, margin_account=False),
    # MARKET_DATA in SDK 8.9.0 (key only); ccxt signs it, and a signed call is accepted too
    Endpoint(
        "GET",
        f"{M}/isolated/allPairs",
        10,
        "IP",
        "API_KEY",
        ref.isolated_all_pairs,
        margin_account=False,
    ),
    Endpoint(
        "GET",
        f"{M}/crossMarginData",
        5,
        "IP",
        "SIGNED",
        ref.cross_margin_data,
        margin_account=False,
        weight_rule=narrowed_by("coin", 1, 5),
    ),
    Endpoint(
        "GET",
        f"{M}/isolatedMarginData",
        10,
        "IP",
        "SIGNED",
        ref.isolated_margin_data,
        margin_account=False,
        weight_rule=narrowed_by("symbol", 1, 10),
    ),
    # interest rates
    Endpoint(
        "GET",
        f"{M}/interestRateHistory",
        1,
        "IP",
        "SIGNED",
        ref.interest_rate_history,
        margin_account=False,
    ),
    Endpoint(
        "GET",
        f"{M}/next-hourly-interest-rate",
        100,
        "IP",
        "SIGNED",
        ref.next_hourly_interest_rate,
        margin_account=False,
    ),
    # seed-generation writes, removed 2024-03-31; weights as last documented (2023, UID)
    Endpoint("POST", f"{M}/transfer", 600, "UID", "SIGNED", h.legacy_transfer, "seed"),
    Endpoint("POST", f"{M}/loan", 3000, "UID", "SIGNED", h.legacy_borrow, "seed"),
    Endpoint("POST", f"{M}/repay", 3000, "UID", "SIGNED", h.legacy_repay, "seed"),
    # current writes
    Endpoint("POST", f"{M}/borrow-repay", 1500, "UID", "SIGNED", h.borrow_repay, "current"),
    Endpoint(
        "POST", "/sapi/v1/asset/transfer", 900, "UID", "SIGNED", h.universal_transfer, "current"
    ),
    # history, current/size paged
    Endpoint("GET", f"{M}/loan", 10, "IP", "SIGNED", h.legacy_loans, "seed", arrival="borrow"),
    Endpoint("GET", f"{M}/repay", 10, "IP", "SIGNED", h.legacy_repays, "seed", arrival="repay"),
    Endpoint(
        "GET",
        f"{M}/borrow-repay",
        10,
        "IP",
        "SIGNED",
        h.borrow_repay_history,
        "current",
        arrival="borrow",
    ),
    Endpoint(
        "GET", f"{M}/interestHistory", 1, "IP", "SIGNED", h.interest_history, arrival="borrow"
    ),
    Endpoint("GET", f"{M}/transfer", 1, "IP", "SIGNED", h.transfer_history, arrival="transfer"),
    Endpoint(
        "GET",
        "/sapi/v1/asset/transfer",
        1,
        "IP",
        "SIGNED",
        h.universal_transfer_history,
        "current",
        arrival="transfer",
    ),
    Endpoint("GET", f"{M}/forceLiquidationRec", 1, "IP", "SIGNED", h.liquidation_history),
    # orders and trades
    Endpoint("POST", f"{M}/order", 6, "UID", "SIGNED", h.new_order, weight_rule=order_weight),
    Endpoint("DELETE", f"{M}/order", 10, "IP", "SIGNED", h.cancel_order),
    Endpoint("GET", f"{M}/order", 10, "IP", "SIGNED", h.query_order),
    Endpoint(
        "GET", f"{M}/openOrders", 10, "IP", "SIGNED", h.open_orders, weight_rule=open_orders_weight
    ),
    Endpoint("GET", f"{M}/allOrders", 200, "IP", "SIGNED", h.all_orders, requests_cap=60),
    Endpoint("GET", f"{M}/myTrades", 10, "IP", "SIGNED", h.my_trades),
    # account
    Endpoint("GET", f"{M}/account", 10, "IP", "SIGNED", h.margin_account),
    Endpoint("GET", f"{M}/isolated/account", 10, "IP", "SIGNED", h.isolated_account),
    Endpoint("GET", f"{M}/maxBorrowable", 750, "UID", "SIGNED", h.max_borrowable),
    Endpoint("GET", f"{M}/maxTransferable", 50, "IP", "SIGNED", h.max_transferable),
    # added since the seed without replacing any of its endpoints: served in every generation
    Endpoint("GET", f"{M}/capital-flow", 100, "IP", "SIGNED", h.capital_flow),
    Endpoint(
        "GET",
        "/sapi/v1/accountSnapshot",
        2400,
        "IP",
        "SIGNED",
        h.account_snapshot,
        margin_account=False,
    ),
    # user data streams: the seed's path (removed 2026-02-20) and today's
    Endpoint("POST", "/sapi/v1/userDataStream", 1, "IP", "USER_STREAM", h.open_stream, "seed"),
    Endpoint("PUT", "/sapi/v1/userDataStream", 1, "IP", "USER_STREAM", h.keep_stream, "seed"),
    Endpoint("DELETE", "/sapi/v1/userDataStream", 1, "IP", "USER_STREAM", h.close_stream, "seed"),
    Endpoint("POST", f"{M}/listen-key", 1, "UID", "USER_STREAM", h.open_stream, "current"),
    Endpoint("PUT", f"{M}/listen-key", 1, "UID", "USER_STREAM", h.keep_stream, "current"),
    Endpoint(
        "DELETE", f"{M}/listen-key", 3000, "UID", "USER_STREAM", h.close_own_streams, "current"
    ),
)

ROUTES: dict[tuple[str, str], Endpoint] = {(e.method, e.path): e for e in ENDPOINTS}
