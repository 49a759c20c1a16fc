"""`margin-etl export --plan` from the command line: a table, exit 0, nothing written; then a
real run's summary shows planned against spent."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from cli.main import main
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from tests.fixtures_sim import SimFactory


def margin_etl(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["margin-etl", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    return int(ended.value.code or 0)


def test_a_plan_prints_its_cost_and_writes_nothing_then_a_run_shows_planned_against_spent(
    sim_factory: SimFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = sim_factory(scenario="tiny", seed=2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MARGIN_ETL_CONFIG", raising=False)
    monkeypatch.setenv("BINANCE_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", DEFAULT_API_SECRET)
    monkeypatch.setenv("BINANCE_BASE_URL", sim.url)

    cheap = ("--streams", "capital_flow,trades", "--data-dir", "data")
    assert margin_etl(monkeypatch, "export", "--plan", *cheap) == 0
    shown = " ".join(capsys.readouterr().out.split())  # as words: rich wraps at 80 columns
    assert "plan of an export of default" in shown
    assert "capital_flow" in shown and "trades" in shown
    # the total: windows, requests, weight and the least sure basis
    figure = r"[1-9][\d,]*"
    assert re.search(rf"total │ │ {figure} │ {figure} │ {figure} │ estimate │", shown), shown
    assert "under the weight budget" in shown and "this plan spent" in shown
    assert not (tmp_path / "data").exists()

    assert margin_etl(monkeypatch, "export", "--no-prefect", "--no-progress", *cheap) == 0
    summary = " ".join(capsys.readouterr().err.split())
    assert "rows written" in summary and "spent against planned" in summary
    assert re.search(r"total │ [\d,]+ │ [\d,]+ │ [\d,]+ │ [\d,]+ │", summary), summary
