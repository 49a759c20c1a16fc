"""Accounts, credentials and dates: what a run is told, checked once and turned into values."""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, get_args

from connectors import ApiSetting, BudgetSettings
from connectors import Secret as Secret  # re-exported: accounts hold their keys in it
from models import to_ms
from storage import UserError, validate_account_name

DEFAULT_BASE_URL = "https://api.binance.com"
DEFAULT_ACCOUNT = "default"
LOOKBACK_HOURS = 24  # trailing hours an incremental run re-reads for late and changed rows
_GENERATIONS: tuple[str, ...] = get_args(ApiSetting)
_ASSET_NAME = re.compile(r"^[A-Z0-9]{2,20}$")
DEFAULT_REPORT_CURRENCY = "USDT"
# what an [accounts.<name>] table may say; anything else is a typo to report, not to ignore
ACCOUNT_KEYS = frozenset(
    {
        "api_key",
        "api_key_env",
        "api_secret",
        "api_secret_env",
        "base_url",
        "api_generation",
        "symbols",
        "assets",
        "report_currency",
    }
)


@dataclass(frozen=True)
class Account:
    """One margin account to export: where to reach it and how to sign for it."""

    name: str
    api_key: Secret = field(repr=False)
    api_secret: Secret = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    api_generation: ApiSetting = "auto"
    symbols: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()
    # the asset balances are valued in: the `prices` stream reads each asset's pair against it
    report_currency: str = DEFAULT_REPORT_CURRENCY
    # what set base_url, for a person told it cannot be reached
    base_url_source: str = "the default"


def default_config_path() -> Path | None:
    """`MARGIN_ETL_CONFIG`, else ./margin-etl.toml, else ~/.config/margin-etl/config.toml."""
    explicit = os.environ.get("MARGIN_ETL_CONFIG")
    if explicit:
        return Path(explicit)
    for candidate in (
        Path("margin-etl.toml"),
        Path.home() / ".config" / "margin-etl" / "config.toml",
    ):
        if candidate.is_file():
            return candidate
    return None


def config_file(config_path: str | None) -> Path | None:
    """The accounts file a flow was given, else the default one (`default_config_path`)."""
    return Path(config_path) if config_path else default_config_path()


def configured_account_names(config_path: Path | None) -> list[str]:
    """Account names from the config file, without touching their credentials.

    A scheduled parent run needs names only; each account's keys are resolved by its own run,
    so one missing environment variable fails that account alone. With no config file, the
    account the environment defines (BINANCE_API_KEY/SECRET) is the only one.
    """
    if config_path is None:
        return sorted(load_accounts(None))
    section = account_tables(config_path)
    if not section:
        raise UserError(f"{config_path}: no [accounts.<name>] tables")
    return sorted(validate_account_name(name) for name in section)


def load_accounts(config_path: Path | None = None) -> dict[str, Account]:
    """Accounts from the config file, plus `default` from BINANCE_API_KEY/SECRET when set."""
    accounts: dict[str, Account] = {}
    path = config_path or default_config_path()
    if path is not None:
        accounts.update(_accounts_from_file(path))
    env_account = _account_from_env()
    if env_account is not None and env_account.name not in accounts:
        accounts[env_account.name] = env_account
    return accounts


def resolve_account(name: str | None, config_path: Path | None = None) -> Account:
    accounts = load_accounts(config_path)
    if name is None:
        if len(accounts) == 1:
            return next(iter(accounts.values()))
        if DEFAULT_ACCOUNT in accounts:
            return accounts[DEFAULT_ACCOUNT]
        if not accounts:
            raise UserError(
                "no credentials: set BINANCE_API_KEY and BINANCE_API_SECRET, "
                "or list accounts in a config file (see README)"
            )
        raise UserError(
            f"several accounts configured; choose one with --account ({_names(accounts)})"
        )
    if name not in accounts:
        raise UserError(f"unknown account {name!r}; configured: {_names(accounts) or 'none'}")
    return accounts[name]


def _names(accounts: dict[str, Account]) -> str:
    return ", ".join(sorted(accounts))


def _account_from_env() -> Account | None:
    key = os.environ.get("BINANCE_API_KEY", "")
    secret = os.environ.get("BINANCE_API_SECRET", "")
    if not key and not secret:
        return None
    if not key or not secret:
        raise UserError("set both BINANCE_API_KEY and BINANCE_API_SECRET, not just one")
    return Account(
        name=os.environ.get("MARGIN_ETL_ACCOUNT", DEFAULT_ACCOUNT),
        api_key=Secret(key),
        api_secret=Secret(secret),
        base_url=os.environ.get("BINANCE_BASE_URL", DEFAULT_BASE_URL),
        base_url_source="BINANCE_BASE_URL" if "BINANCE_BASE_URL" in os.environ else "the default",
        api_generation=_generation(os.environ.get("BINANCE_API_GENERATION", "auto"), "environment"),
        report_currency=_asset_name(
            os.environ.get("MARGIN_ETL_REPORT_CURRENCY", DEFAULT_REPORT_CURRENCY), "environment"
        ),
    )


def account_tables(path: Path) -> dict[str, Any]:
    """The config file's [accounts.<name>] tables, unresolved (no credential is read)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    # a misspelt section would otherwise leave no account and a puzzling "no credentials"
    if unknown := sorted(set(document) - {"accounts"}):
        raise UserError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)}; accounts go in"
            " [accounts.<name>] tables"
        )
    section = document.get("accounts", {})
    if not isinstance(section, dict):
        raise UserError(f"{path}: [accounts] must be a table of accounts")
    return section


def _accounts_from_file(path: Path) -> dict[str, Account]:
    tables = account_tables(path)
    return {name: _account_from_table(path, name, table) for name, table in tables.items()}


def _account_from_table(path: Path, name: str, table: Any) -> Account:
    where = f"{path}: account {name!r}"
    try:
        validate_account_name(name)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table")
    unknown = sorted(set(table) - ACCOUNT_KEYS)
    if unknown:
        known = ", ".join(sorted(ACCOUNT_KEYS))
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {known}")
    base_url, source = _base_url(path, name, table)
    return Account(
        name=name,
        api_key=_credential(table, "api_key", where),
        api_secret=_credential(table, "api_secret", where),
        base_url=base_url,
        base_url_source=source,
        api_generation=_generation(str(table.get("api_generation", "auto")), where),
        symbols=tuple(str(s).upper() for s in table.get("symbols", ())),
        assets=tuple(str(a).upper() for a in table.get("assets", ())),
        report_currency=_asset_name(
            str(table.get("report_currency", DEFAULT_REPORT_CURRENCY)), where
        ),
    )


def _base_url(path: Path, name: str, table: dict[str, Any]) -> tuple[str, str]:
    """The server to reach, and what said so (the environment wins over the file)."""
    if os.environ.get("BINANCE_BASE_URL"):
        return os.environ["BINANCE_BASE_URL"], "BINANCE_BASE_URL"
    if "base_url" in table:
        return str(table["base_url"]), f"base_url of [accounts.{name}] in {path}"
    return DEFAULT_BASE_URL, "the default"


def _credential(table: dict[str, Any], key: str, where: str) -> Secret:
    """`<key>_env` names an environment variable (preferred); `<key>` holds the value itself."""
    env_name = table.get(f"{key}_env")
    if env_name:
        value = os.environ.get(str(env_name), "")
        if not value:
            raise UserError(f"{where}: environment variable {env_name} is not set")
        return Secret(value)
    if table.get(key):
        return Secret(str(table[key]))
    raise UserError(f"{where}: set {key}_env (an environment variable name) or {key}")


def _asset_name(value: str, where: str) -> str:
    name = value.strip().upper()
    if not _ASSET_NAME.match(name):
        raise UserError(
            f"{where}: report_currency must be an asset name such as USDT, not {value!r}"
        )
    return name


def _generation(value: str, where: str) -> ApiSetting:
    if value not in _GENERATIONS:
        raise UserError(f"{where}: api_generation must be one of {', '.join(_GENERATIONS)}")
    return value  # type: ignore[return-value]


def parse_date_ms(text: str, option: str) -> int:
    """A UTC date (YYYY-MM-DD) or ISO-8601 instant, or epoch seconds/milliseconds, as UTC ms."""
    value = text.strip()
    if value.isdigit():
        number = int(value)
        # epoch seconds have at most 10 digits until the year 2286
        return number * 1000 if number < 10**11 else number
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return to_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{option}: {text!r} is not a date (use YYYY-MM-DD or an ISO-8601 time)"
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return to_ms(instant)


def parse_month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text.strip()):
        raise UserError(f"--month: {text!r} is not a month (use YYYY-MM)")
    return text.strip()


def budget_settings() -> BudgetSettings:
    """The weight budget: Binance's, unless the environment scales it (a simulator's, a share).

    MARGIN_ETL_WEIGHT_SHARE_PERCENT (default 80) leaves the rest of each window's weight to
    other users of the key; MARGIN_ETL_WEIGHT_LIMIT and MARGIN_ETL_WEIGHT_WINDOW_S (whole
    seconds) match a server whose limits differ from Binance's (the simulator's can be scaled).
    """
    defaults = BudgetSettings()
    try:
        percent = int(os.environ.get("MARGIN_ETL_WEIGHT_SHARE_PERCENT", "80"))
        limit = int(os.environ.get("MARGIN_ETL_WEIGHT_LIMIT", str(defaults.ip_limit)))
        window_s = int(os.environ.get("MARGIN_ETL_WEIGHT_WINDOW_S", "60"))
    except ValueError:
        raise UserError("MARGIN_ETL_WEIGHT_* must be whole numbers") from None
    if not (0 < percent <= 100 and limit > 0 and window_s > 0):
        raise UserError("MARGIN_ETL_WEIGHT_SHARE_PERCENT must be 1-100; limit, window positive")
    return replace(defaults, share=percent / 100, ip_limit=limit, window_s=window_s)


def data_dir_path(value: Path | None) -> Path:
    """DATA_DIR: the option, else $MARGIN_ETL_DATA_DIR, else ./data."""
    if value is not None:
        return value
    return Path(os.environ.get("MARGIN_ETL_DATA_DIR", "data"))


def checked_data_dir(value: Path | None, *, writes: bool) -> Path:
    """DATA_DIR, refused at once when it cannot work: a file, or (to write) a place this user
    cannot create or write in."""
    path = data_dir_path(value)
    if path.exists() and not path.is_dir():
        raise UserError(f"data dir {path} is a file, not a directory")
    if writes:
        existing = next(p for p in (path, *path.absolute().parents) if p.exists())
        try:  # a file made and gone at once: what the system allows, root or not
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as exc:
            raise UserError(f"cannot write data dir {path}: {exc.strerror}") from None
    return path


def others_can_read(path: Path) -> int | None:
    """The mode of an existing directory other users can enter or read, else None."""
    if not path.is_dir():
        return None
    mode = path.stat().st_mode & 0o777
    return mode if mode & 0o077 else None


def checked_range(since_ms: int | None, until_ms: int | None, now_ms: int) -> int | None:
    """--until as the run will use it: None when it lies in the future (a run stops at the
    exchange's now anyway). A range that is empty, or that starts in the future, is refused."""
    if since_ms is not None and since_ms > now_ms:
        raise UserError("--since lies in the future: nothing can have happened since then yet")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise UserError("--since must come before --until: that range is empty")
    return None if until_ms is not None and until_ms > now_ms else until_ms
