"""Accounts, credentials and dates: mistakes give one clear line, secrets never show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.config import Secret, load_accounts, parse_date_ms, parse_month, resolve_account
from storage.errors import UserError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_BASE_URL", "MARGIN_ETL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_dates_in_every_accepted_form() -> None:
    assert parse_date_ms("2026-01-02", "--since") == 1767312000000
    assert parse_date_ms("2026-01-02T00:00:00Z", "--since") == 1767312000000
    assert parse_date_ms("1767312000", "--since") == 1767312000000  # seconds
    assert parse_date_ms("1767312000000", "--since") == 1767312000000  # milliseconds


def test_bad_dates_and_months_are_user_errors() -> None:
    with pytest.raises(UserError, match="--since: 'yesterday' is not a date"):
        parse_date_ms("yesterday", "--since")
    with pytest.raises(UserError, match="YYYY-MM"):
        parse_month("2026-13")


def test_accounts_from_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "accounts.toml"
    config.write_text(
        '[accounts.fund-a]\napi_key_env = "A_KEY"\napi_secret_env = "A_SECRET"\n'
        'api_generation = "legacy"\nsymbols = ["btcusdt"]\nreport_currency = "eur"\n'
        '[accounts.fund-b]\napi_key_env = "B_KEY"\napi_secret_env = "B_SECRET"\n'
    )
    monkeypatch.setenv("A_KEY", "key-a-123456")
    monkeypatch.setenv("A_SECRET", "secret-a-123456")
    monkeypatch.setenv("B_KEY", "key-b-123456")
    monkeypatch.setenv("B_SECRET", "secret-b-123456")
    accounts = load_accounts(config)
    assert set(accounts) == {"fund-a", "fund-b"}
    a = accounts["fund-a"]
    assert a.api_generation == "legacy" and a.symbols == ("BTCUSDT",)
    assert a.report_currency == "EUR" and accounts["fund-b"].report_currency == "USDT"
    assert a.api_secret.reveal() == "secret-a-123456"
    assert "secret-a" not in repr(a) and "secret-a" not in repr(a.api_secret)
    with pytest.raises(UserError, match="several accounts"):
        resolve_account(None, config)
    assert resolve_account("fund-b", config).name == "fund-b"


def test_missing_credentials_say_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="BINANCE_API_KEY"):
        resolve_account(None)
    config = tmp_path / "accounts.toml"
    config.write_text('[accounts.x]\napi_key_env = "NOT_SET"\napi_secret_env = "NOT_SET"\n')
    with pytest.raises(UserError, match="NOT_SET is not set"):
        load_accounts(config)
    config.write_text("[accounts.x\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_accounts(config)


def test_secret_hides_itself() -> None:
    secret = Secret("abcdefgh12345678")
    assert "abcdefgh" not in f"{secret} {secret!r}"


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--since", "not-a-date"],
        ["report", "--month", "2026-00"],
        ["reconcile", "--data-dir", "/nonexistent/dir"],
        ["export", "--streams", "loans,bogus"],
        ["sim", "serve", "--api-generation", "2019"],
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "key-123456789")
    monkeypatch.setenv("BINANCE_API_SECRET", "secret-123456789")
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("margin-etl: "), done.stderr
