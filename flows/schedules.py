"""What `margin-etl serve` schedules: the deployments' crons and the parameters they carry.

Plain data, no Prefect: the command line reads its defaults here without loading Prefect, and
`flows.deployments` turns a plan into deployments. prefect.yaml declares the same crons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

    def parameters(self) -> dict[str, Any]:
        """The paths every deployment passes on (unset ones default on the worker)."""
        given = {"config_path": self.config_path, "data_dir": self.data_dir}
        return {k: v for k, v in given.items() if v is not None}

    def pooled_parameters(self) -> dict[str, Any]:
        """The paths, and the shared weight pool for the deployments that export."""
        pool = {"weight_pool": self.weight_pool} if self.weight_pool else {}
        return {**self.parameters(), **pool}
