"""The Binance cross-margin connector: signed, rate-aware, complete history reads.

Public surface (everything else is internal; `tests/test_public_surface.py` holds it):

    async with MarginClient(base_url, api_key, api_secret, ClientSettings()) as client:
        account = await client.read_account()
        scopes = await client.discover_scopes(account=account, symbols=["BTCUSDT"])
        async for batch in client.read_stream("interest", None, start_ms, end_ms):
            ...  # batch.rows, batch.covered (a Window), batch.partition, batch.api

Errors form one tree (`connectors.errors`): `BinanceError` is either a `RetryableError`
(retried by the client until its policy gives up) or `Fatal` (raised at once).
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
    Unreachable,
    WafBlocked,
)
from connectors.margin import (
    RETENTION_MARGIN_MS,
    AccountSnapshot,
    MarginClient,
    Scopes,
    StreamBatch,
    oldest_readable_ms,
)
from connectors.paging import normalise_row, row_time
from connectors.retry import RetrySettings
from connectors.specs import (
    DISCOVERY_STREAMS,
    HISTORY_STREAMS,
    SPECS,
    ApiSetting,
    EndpointSpec,
    probe_spec,
    spec_for,
)
from connectors.windows import Window, plan_windows

__all__ = [
    "DISCOVERY_STREAMS",
    "HISTORY_STREAMS",
    "RETENTION_MARGIN_MS",
    "SPECS",
    "AccessBlocked",
    "AccountSnapshot",
    "ApiSetting",
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
    "RateLimited",
    "RetrySettings",
    "RetryableError",
    "Scopes",
    "Secret",
    "ServerError",
    "StreamBatch",
    "TransportFailure",
    "UnknownSymbol",
    "Unreachable",
    "WafBlocked",
    "WeightBudget",
    "Window",
    "normalise_row",
    "oldest_readable_ms",
    "plan_windows",
    "probe_spec",
    "redact",
    "row_time",
    "spec_for",
]
