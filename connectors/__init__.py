"""The Binance cross-margin connector: signed, rate-aware, complete history reads.

Public surface (everything else is internal):

    async with MarginClient(base_url, api_key, api_secret, ClientSettings()) as client:
        account = await client.read_account()
        parts = await client.discover_partitions(account=account, symbols=["BTCUSDT"])
        async for batch in client.read_stream("interest", None, start_ms, end_ms):
            ...  # batch.rows, batch.covered (a Window), batch.partition, batch.api
"""

from connectors.budget import BudgetSettings, WeightBudget
from connectors.client import BinanceClient, ClientSettings, ClientStats, Secret, redact
from connectors.errors import (
    AccessBlocked,
    AuthError,
    BadRequest,
    BinanceError,
    ClockSkew,
    EndpointNotFound,
    Fatal,
    IpBanned,
    MalformedResponse,
    NoMarginAccount,
    PagingUnstable,
    RateLimited,
    RetryableError,
    ServerError,
    TransportFailure,
    UnknownSymbol,
    WafBlocked,
)
from connectors.reader import (
    AccountSnapshot,
    MarginClient,
    Partitions,
    StreamBatch,
    discover_partitions,
    read_account,
    read_daily_snapshots,
    read_history,
    read_stream,
)
from connectors.retry import RetrySettings
from connectors.specs import HISTORY_STREAMS, SPECS, EndpointSpec, spec_for
from connectors.windows import Window, plan_windows

__all__ = [
    "HISTORY_STREAMS",
    "SPECS",
    "AccessBlocked",
    "AccountSnapshot",
    "AuthError",
    "BadRequest",
    "BinanceClient",
    "BinanceError",
    "BudgetSettings",
    "ClientSettings",
    "ClientStats",
    "ClockSkew",
    "EndpointNotFound",
    "EndpointSpec",
    "Fatal",
    "IpBanned",
    "MalformedResponse",
    "MarginClient",
    "NoMarginAccount",
    "PagingUnstable",
    "Partitions",
    "RateLimited",
    "RetrySettings",
    "RetryableError",
    "Secret",
    "ServerError",
    "StreamBatch",
    "TransportFailure",
    "UnknownSymbol",
    "WafBlocked",
    "WeightBudget",
    "Window",
    "discover_partitions",
    "plan_windows",
    "read_account",
    "read_daily_snapshots",
    "read_history",
    "read_stream",
    "redact",
    "spec_for",
]
