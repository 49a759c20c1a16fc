"""The connector alone reading an account's whole history, with no lake and no ledger.

What `bench_connector` times and the connector's tests check against the simulator: the
streams that name assets first, then every other stream under every scope they imply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from connectors import (
    DISCOVERY_STREAMS,
    HISTORY_STREAMS,
    EndpointSpec,
    MarginClient,
    Scopes,
    StreamBatch,
)
from models import named_assets


async def read_history(
    client: MarginClient,
    start_ms: int,
    end_ms: int,
    sink: Callable[[StreamBatch], None],
    *,
    streams: Iterable[str] = (),
    assets: Iterable[str] = (),
    symbols: Iterable[str] = (),
) -> Scopes:
    """Read `streams` (default: all history streams) under every scope, concurrently.

    Each batch goes to `sink` as it completes (nothing is kept here, so memory stays flat).
    The streams that name assets are read first: the assets they name join discovery.
    Returns the scopes that were read.
    """
    chosen = tuple(streams) or HISTORY_STREAMS
    seen: set[str] = set()

    async def read_all(stream: str, scopes: Scopes) -> None:
        spec = await client.spec(stream)
        await asyncio.gather(*(drain(spec, scope) for scope in scopes.values(spec)))

    async def drain(spec: EndpointSpec, scope: str | None) -> None:
        async for batch in client.read_stream(spec, scope, start_ms, end_ms):
            seen.update(named_assets(batch.rows))
            sink(batch)

    account = await client.read_account()
    first = [s for s in chosen if s in DISCOVERY_STREAMS]
    await asyncio.gather(*(read_all(s, Scopes((), ())) for s in first))
    scopes = await client.discover_scopes(
        account=account, assets=[*assets, *sorted(seen)], symbols=symbols
    )
    await asyncio.gather(*(read_all(s, scopes) for s in chosen if s not in first))
    return scopes
