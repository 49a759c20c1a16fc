"""Every command, fed every kind of mistake: one line starting `margin-etl:`, exit 2, no
traceback, and nothing written, before any request leaves the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main

# a port nothing listens on: a command that tried to reach the exchange would fail differently
NOWHERE = "http://127.0.0.1:9"
FUTURE = "2099-01-01"


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory with a file, a non-demo directory and config files in it."""
    monkeypatch.chdir(tmp_path)
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "MARGIN_ETL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BINANCE_API_KEY", "key-1234567890")
    monkeypatch.setenv("BINANCE_API_SECRET", "secret-1234567890")
    monkeypatch.setenv("BINANCE_BASE_URL", NOWHERE)
    (tmp_path / "a-file").write_text("not a directory\n")
    (tmp_path / "someone-elses").mkdir(mode=0o700)
    (tmp_path / "someone-elses" / "notes.txt").write_text("keep\n")
    (tmp_path / "typo.toml").write_text(
        '[accounts.a]\napi_key_env = "K"\napi_secret_env = "S"\nreport_curency = "EUR"\n'
    )
    (tmp_path / "section.toml").write_text('[account.a]\napi_key_env = "K"\n')
    (tmp_path / "unset.toml").write_text(
        '[accounts.a]\napi_key_env = "NOT_SET_ANYWHERE"\napi_secret_env = "S"\n'
    )
    umask = os.umask(0o022)
    os.umask(umask)
    yield tmp_path
    os.umask(umask)  # main() narrows the process's umask: give it back


MISTAKES: dict[str, list[str]] = {
    # export
    "export: a date that is not one": ["export", "--since", "last tuesday"],
    "export: an empty range": ["export", "--since", "2026-11-20", "--until", "2026-11-10"],
    "export: a range from the future": ["export", "--since", FUTURE],
    "export: an unknown stream": ["export", "--streams", "loans,bogus"],
    "export: a negative look-back": ["export", "--lookback-hours", "-3"],
    "export: a data dir that is a file": ["export", "--data-dir", "a-file"],
    "export: a data dir it cannot create": ["export", "--data-dir", "/sys/margin-etl-data"],
    "export: a config with an unknown key": ["export", "--config", "typo.toml"],
    "export: a config with a misspelt section": ["export", "--config", "section.toml"],
    "export: a config naming an unset variable": ["export", "--config", "unset.toml"],
    "export: a missing config file": ["export", "--config", "missing.toml"],
    "export: an unknown account": ["export", "--account", "nobody"],
    "export: an unknown option": ["export", "--bogus"],
    "export: a number that is not one": ["export", "--lookback-hours", "many"],
    # build, reconcile, report, sql, compact
    "build: a data dir that is a file": ["build", "--data-dir", "a-file"],
    "build: no lake": ["build", "--data-dir", "empty"],
    "reconcile: a data dir that is a file": ["reconcile", "--data-dir", "a-file"],
    "reconcile: no lake": ["reconcile", "--data-dir", "empty"],
    "report: no month": ["report"],
    "report: a month that is not one": ["report", "--month", "2026-13"],
    "report: out is a file": ["report", "--month", "2026-11", "--out", "a-file"],
    "report: a data dir that is a file": ["report", "--month", "2026-11", "--data-dir", "a-file"],
    "sql: no query": ["sql"],
    "sql: no warehouse": ["sql", "select 1", "--data-dir", "empty"],
    "compact: one file is compact": ["compact", "--min-files", "1"],
    "compact: an unknown stream": ["compact", "--streams", "bogus"],
    "compact: no lake": ["compact", "--data-dir", "empty"],
    # demo, serve, sim serve
    "demo: an unknown scenario": ["demo", "--scenario", "nope"],
    "demo: a data dir that is a file": ["demo", "--data-dir", "a-file"],
    "demo: someone else's directory": ["demo", "--data-dir", "someone-elses"],
    "serve: a cron that is not one": ["serve", "--hourly", "every hour"],
    "serve: an unknown time zone": ["serve", "--timezone", "Mars/Olympus"],
    "serve: no room for a run": ["serve", "--limit", "0"],
    "serve: a config with an unknown key": ["serve", "--config", "typo.toml"],
    "sim serve: a port out of range": ["sim", "serve", "--port", "99999"],
    "sim serve: an unknown scenario": ["sim", "serve", "--scenario", "nope"],
    "sim serve: an unknown fault profile": ["sim", "serve", "--faults", "chaotic"],
    "sim serve: a remote address": ["sim", "serve", "--host", "0.0.0.0"],
}


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_is_one_line_exit_2_and_writes_nothing(
    mistake: str, place: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(place)
    monkeypatch.setattr(sys, "argv", ["margin-etl", *MISTAKES[mistake]])
    with pytest.raises(SystemExit) as ended:
        main()
    errors = capsys.readouterr().err.strip().splitlines()
    assert ended.value.code == 2, errors
    assert len(errors) == 1 and errors[0].startswith("margin-etl: "), errors
    assert tree(place) == before
    assert sorted(p.name for p in place.iterdir()) == sorted(
        ["a-file", "section.toml", "someone-elses", "typo.toml", "unset.toml"]
    )


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--since", "2026-11-20", "--until", "2026-11-10"],
        ["report", "--month", "2026-11", "--data-dir", "a-file"],
        ["sim", "serve", "--port", "99999"],
        ["export", "--unknown-option"],
    ],
)
def test_from_a_shell_there_is_no_traceback(args: list[str], place: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        cwd=place,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


def test_an_unreachable_exchange_is_said_at_once_naming_its_setting(
    place: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused first connection is a setting: said on the first attempt, not after retries."""
    monkeypatch.setattr(sys, "argv", ["margin-etl", "export", "--no-prefect", "--no-progress"])
    with pytest.raises(SystemExit) as ended:
        main()
    [line] = capsys.readouterr().err.strip().splitlines()
    assert ended.value.code == 2
    assert NOWHERE in line and "Connection refused" in line and "BINANCE_BASE_URL" in line


def test_an_until_in_the_future_is_clamped_and_said_so(
    place: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sys, "argv", ["margin-etl", "export", "--until", FUTURE, "--no-prefect", "--no-progress"]
    )
    with pytest.raises(SystemExit):
        main()  # then it fails to reach the exchange: what matters is what it said first
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "margin-etl: --until lies in the future: exporting up to the exchange's now"


def test_a_new_data_dir_is_the_owners_alone(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Made by a command (here a failed export: the lock and state come first), a data dir is
    0700 and what is in it 0600, whatever the umask allowed before."""
    argv = ["margin-etl", "export", "--data-dir", "fresh", "--no-prefect", "--no-progress"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        main()  # it cannot reach the exchange, but it made its data dir first
    fresh = place / "fresh"
    assert fresh.stat().st_mode & 0o777 == 0o700
    made = list(fresh.rglob("*"))
    assert made and all(p.stat().st_mode & 0o777 in (0o600, 0o700) for p in made), [
        (str(p), oct(p.stat().st_mode & 0o777)) for p in made
    ]


def test_a_data_dir_others_can_read_gets_a_warning(
    place: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = place / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setattr(sys, "argv", ["margin-etl", "reconcile", "--data-dir", "shared"])
    with pytest.raises(SystemExit):
        main()
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (
        "margin-etl: warning: data dir shared is readable by other users (mode 755); chmod 700 it"
    )
