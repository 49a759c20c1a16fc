"""What `margin-etl serve` schedules: the deployments' crons and the parameters they carry.

Plain data, no Prefect: the command line reads its defaults here without loading Prefect, and
`flows.deployments` turns a plan into deployments. prefect.yaml declares the same crons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage import UserError

HOURLY_CRON = "5 * * * *"  # each account: incremental export, build, reconcile
NIGHTLY_CRON = "30 2 * * *"  # every account: full rebuild, data tests, reconcile
MONTHLY_CRON = "0 6 1 * *"  # every account: the month just closed, as accounting CSVs


@dataclass(frozen=True)
class ServePlan:
    """What `margin-etl serve` schedules, and with which parameters."""

    config_path: str | None = None
    data_dir: str | None = None
    weight_pool: str | None = None
    hourly_cron: str = HOURLY_CRON
    nightly_cron: str = NIGHTLY_CRON
    monthly_cron: str = MONTHLY_CRON
    timezone: str = "UTC"

    def check(self) -> None:
        """UserError, before anything is scheduled, for a cron or time zone that cannot work."""
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UserError(f"--timezone {self.timezone!r} is not a time zone (e.g. UTC)") from None
        for option, cron in (
            ("--hourly", self.hourly_cron),
            ("--nightly", self.nightly_cron),
            ("--monthly", self.monthly_cron),
        ):
            if not _is_cron(cron):
                raise UserError(f"{option} {cron!r} is not a cron expression (e.g. '5 * * * *')")

    def parameters(self) -> dict[str, Any]:
        """The paths every deployment passes on (unset ones default on the worker)."""
        given = {"config_path": self.config_path, "data_dir": self.data_dir}
        return {k: v for k, v in given.items() if v is not None}

    def pooled_parameters(self) -> dict[str, Any]:
        """The paths, and the shared weight pool for the deployments that export."""
        pool = {"weight_pool": self.weight_pool} if self.weight_pool else {}
        return {**self.parameters(), **pool}


def _is_cron(text: str) -> bool:
    """Whether Prefect's cron schedules (cronsim underneath) accept `text`."""
    from cronsim import CronSim, CronSimError

    try:
        CronSim(text, datetime.now(UTC))
    except (CronSimError, ValueError):
        return False
    return len(text.split()) == 5
