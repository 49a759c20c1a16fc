"""A simulator that cannot be misused: controls only on loopback, truth only where configured,
no listening where others reach without saying so, and options checked before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simulator.server import ServeOptions, is_loopback, start_simulator
from tests.fixtures_sim import SimFactory


def options(**given: object) -> ServeOptions:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "scenario": "tiny",
        "faults": "none",
        "truth_dir": None,
        "weight_limit": 12_000,
        "weight_window_ms": 60_000,
        "latency_ms": 0,
        "allow_remote": False,
        "controls": None,
    }
    return ServeOptions(**{**values, **given})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False)],
)  # fmt: skip
def test_loopback_is_told_from_addresses_others_reach(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_remote_address_needs_allow_remote_and_loses_the_controls() -> None:
    with pytest.raises(ValueError, match="--allow-remote"):
        options(host="0.0.0.0").check()
    remote = options(host="0.0.0.0", allow_remote=True)
    remote.check()
    assert remote.serves_controls is False
    assert options(host="0.0.0.0", allow_remote=True, controls=True).serves_controls is True
    assert options().serves_controls is True


def test_truth_is_written_only_into_the_configured_directory(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    configured, foreign = tmp_path / "truth", tmp_path / "elsewhere"
    sim = sim_factory(scenario="tiny", seed=3, truth_dir=configured)
    refused = httpx.post(f"{sim.url}/_sim/truth", params={"dir": str(foreign)})
    assert refused.status_code == 403 and not foreign.exists()
    written = httpx.post(f"{sim.url}/_sim/truth", params={"dir": str(configured)})
    assert written.status_code == 200 and (configured / "account.json").exists()
    assert httpx.post(f"{sim.url}/_sim/truth").status_code == 200


def test_without_a_truth_dir_truth_is_refused(sim: object) -> None:
    url = sim.url  # type: ignore[attr-defined]
    assert httpx.post(f"{url}/_sim/truth", params={"dir": "/tmp"}).status_code == 400


def test_controls_can_be_switched_off() -> None:
    with start_simulator(scenario="empty", seed=1, controls=False) as sim:
        assert httpx.get(f"{sim.url}/_sim/stats").status_code == 404
        assert httpx.post(f"{sim.url}/_sim/advance", params={"ms": 1}).status_code == 404
        assert httpx.get(f"{sim.url}/api/v3/time").status_code == 200


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "99999"],
        ["--port", "-1"],
        ["--scenario", "nope"],
        ["--faults", "chaotic"],
        ["--host", "0.0.0.0"],
        ["--weight-limit", "0"],
        ["--latency-ms", "-5"],
        ["--truth-dir", __file__],
    ],
)
def test_sim_serve_mistakes_are_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "sim", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("margin-etl: "), done.stderr
    assert list(tmp_path.iterdir()) == []
