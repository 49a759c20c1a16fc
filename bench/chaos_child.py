"""One export in a process of its own, for the fault campaign to kill: `python -m
bench.chaos_child URL DATA_DIR [SINCE_MS]`. The export of `margin-etl export --no-prefect`, with the
retry delays shrunk to milliseconds so a hostile server costs no real time (the simulator's
faults are replayed by seed, their delays are not the subject). Crash points come from
MARGIN_ETL_CRASH_AT as in any process; a user error is one line on stderr and exit 2."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from connectors.client import ClientSettings
from connectors.retry import RetrySettings
from flows.config import Account, Secret, budget_settings
from flows.export import ExportRequest, ExportSummary, export_account
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from storage import UserError

# The hostile profile fails about one attempt in four (a replay of `veteran`: 398 of ~1,600
# first attempts, then 25-50 % of each retry). Ten attempts then lose one request in ~10^5,
# a run of the suite or the campaign every few dozen; twenty lose one in ~10^11. Production
# keeps ten: its waits grow to 30 s, and the real API fails far less often.
FAST_RETRY = RetrySettings(
    max_attempts=20,
    backoff_base_s=0.001,
    backoff_max_s=0.01,
    rate_limit_floor_s=0.01,
    waf_attempts=8,
)


def fast_settings() -> ClientSettings:
    return ClientSettings(retry=FAST_RETRY, budget=budget_settings())


def export_to(
    url: str, data_dir: Path, secret: str = DEFAULT_API_SECRET, since_ms: int | None = None
) -> ExportSummary:
    account = Account("main", Secret(DEFAULT_API_KEY), Secret(secret), base_url=url)
    request = ExportRequest(account, data_dir, since_ms=since_ms, client_settings=fast_settings())
    return asyncio.run(export_account(request))


def main(argv: list[str]) -> int:
    url, data_dir, *since = argv  # `python -m bench.chaos_child URL DATA_DIR [SINCE_MS]`
    try:
        export_to(url, Path(data_dir), since_ms=int(since[0]) if since else None)
    except UserError as exc:
        print(f"margin-etl: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
