"""The connector's error hierarchy, mapped once from Binance HTTP statuses and error codes.

Callers catch by meaning: `RetryableError` (the retry policy handles it), `Fatal` (stop and
tell a person, in one line). Messages carry the code, the endpoint path and Binance's text,
never a key, a signature or a full query string.

    BinanceError
    ├── RetryableError
    │   ├── ServerError          5xx, or a Binance 'try again' code
    │   ├── TransportFailure     timed out, refused or dropped
    │   ├── MalformedResponse    truncated or unreadable bodies
    │   ├── WafBlocked           a non-JSON 403 from the firewall
    │   ├── RateLimited          429 (Retry-After)
    │   │   └── IpBanned         418
    │   ├── ClockSkew            -1021: resync the clock, then retry
    │   └── PagingUnstable       rows kept moving while a window was paged
    └── Fatal
        ├── AuthError            key, secret, signature or IP whitelist rejected
        ├── NoMarginAccount      -3003
        ├── Unreachable          the first request could not connect
        ├── BadRequest           -11xx
        │   └── UnknownSymbol    -1121
        ├── EndpointNotFound     404: not served here (a removed API generation)
        └── AccessBlocked        403s kept coming after the allowed retries
"""

from __future__ import annotations

import json
from collections.abc import Mapping


class BinanceError(Exception):
    """Any failure talking to Binance; `str()` is one line, safe to log."""

    def __init__(
        self, message: str, *, code: int | None = None, status: int | None = None, where: str = ""
    ) -> None:
        self.code = code
        self.status = status
        self.where = where  # "GET /sapi/v1/..." (no query string)
        self.detail = " ".join(message.split())  # one line, whatever the server sent
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.code is not None:
            parts.append(f"Binance {self.code}")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        head = " / ".join(parts) or type(self).__name__
        place = f" on {self.where}" if self.where else ""
        return f"{head}{place}: {self.detail}{self.hint}"

    hint = ""


# -- retryable --------------------------------------------------------------------------------
class RetryableError(BinanceError):
    """A failure that may pass if the same (re-signed) request is sent again."""


class ServerError(RetryableError):
    """5xx or a Binance 'try again' code: execution status unknown."""


class TransportFailure(RetryableError):
    """Timeout, refused or dropped connection: no usable answer came back."""

    def __init__(self, message: str, *, where: str = "", before_send: bool = False) -> None:
        # True when the request cannot have reached the server (connect failed)
        self.before_send = before_send
        super().__init__(message, where=where)


class MalformedResponse(RetryableError):
    """The body was not the JSON document promised (truncated, HTML, garbage)."""


class WafBlocked(RetryableError):
    """HTTP 403 without a Binance error body: a web-application-firewall rule fired."""


class RateLimited(RetryableError):
    """429 / -1003: wait `retry_after` seconds, then try again."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        code: int | None = None,
        status: int | None = None,
        where: str = "",
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, code=code, status=status, where=where)


class IpBanned(RateLimited):
    """418: the IP was banned for ignoring 429s; wait longer."""


class ClockSkew(RetryableError):
    """-1021: our timestamp is outside recvWindow; resync with server time and retry."""


class PagingUnstable(RetryableError):
    """Rows kept moving between pages of a window after the allowed re-reads."""


# -- fatal ------------------------------------------------------------------------------------
class Fatal(BinanceError):
    """Retrying cannot help: a person must act (key, permissions, parameters)."""


class AuthError(Fatal):
    """The key, secret, signature or IP whitelist was rejected."""

    hint = " (check the API key, its secret, its margin permission and IP whitelist)"

    def _render(self) -> str:
        """What the person must fix, by code, before Binance's own words."""
        fix = AUTH_FIXES.get(self.code or 0)
        return f"{fix}: {super()._render()}" if fix else super()._render()


# What each authentication code asks a person to do (Binance's text stays after it).
AUTH_FIXES: Mapping[int, str] = {
    -2014: "the API key is malformed",
    -2015: "the key is unknown, not allowed from this IP, or lacks the margin permission",
    -1022: "the secret does not belong to this key (Binance refuses what it signed)",
    -1002: "the key is not authorized for this call",
}


class NoMarginAccount(Fatal):
    """-3003: the account never activated its cross-margin wallet."""

    hint = " (activate the margin account, or remove it from the configuration)"

    def _render(self) -> str:
        return f"this key's account has no cross-margin account: {super()._render()}"


class Unreachable(Fatal):
    """The first request of a client could not connect (refused, unknown name, TLS): almost
    always the configuration, so it is said at once instead of retried for minutes."""


class BadRequest(Fatal):
    """The request itself is wrong (-11xx): a bug or an unsupported parameter."""


class UnknownSymbol(BadRequest):
    """-1121: the symbol is invalid, e.g. a delisted pair whose history is no longer served."""


class EndpointNotFound(Fatal):
    """404: the path does not exist (e.g. an endpoint Binance removed)."""


class AccessBlocked(Fatal):
    """The firewall kept answering 403 after the allowed retries."""

    hint = " (the IP or request pattern is blocked by Binance's firewall; wait or change IP)"


# -- the one mapping --------------------------------------------------------------------------
RETRYABLE_CODES = frozenset({-1000, -1001, -1004, -1006, -1007, -1008, -3000, -3044})
AUTH_CODES = frozenset({-1002, -1022, -2014, -2015})
FATAL_BY_CODE: Mapping[int, type[Fatal]] = {
    -3003: NoMarginAccount,
    -1121: UnknownSymbol,
}
BAD_REQUEST_CODES = range(-1131, -1099)  # -1100 .. -1131


def parse_error_body(body: bytes) -> tuple[int, str] | None:
    """(code, msg) if the body is a Binance error envelope, else None."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("code"), int) and doc["code"] < 0:
        return doc["code"], str(doc.get("msg", ""))
    return None


def retry_after_s(headers: Mapping[str, str]) -> float:
    """Retry-After in seconds (0 when absent or unreadable: the policy applies a floor)."""
    raw = headers.get("retry-after", "")
    return int(raw) if raw.strip().isdigit() else 0


def error_for_code(code: int, msg: str, *, status: int, where: str) -> BinanceError:
    """The typed error for a Binance error code."""
    if code == -1003:
        return RateLimited(msg, retry_after=0, code=code, status=status, where=where)
    if code == -1021:
        return ClockSkew(msg, code=code, status=status, where=where)
    if code in RETRYABLE_CODES:
        return ServerError(msg, code=code, status=status, where=where)
    if code in AUTH_CODES:
        return AuthError(msg, code=code, status=status, where=where)
    if code in FATAL_BY_CODE:
        return FATAL_BY_CODE[code](msg, code=code, status=status, where=where)
    if code in BAD_REQUEST_CODES:
        return BadRequest(msg, code=code, status=status, where=where)
    if status >= 500:
        return ServerError(msg, code=code, status=status, where=where)
    return Fatal(msg, code=code, status=status, where=where)


def error_for_response(
    status: int, headers: Mapping[str, str], body: bytes, *, where: str
) -> BinanceError:
    """The typed error for a non-2xx answer (or a 2xx carrying an error envelope)."""
    envelope = parse_error_body(body)
    if status == 404:  # an unknown or removed path, whatever the body says (e.g. -1099)
        msg = envelope[1] if envelope else "no such endpoint"
        return EndpointNotFound(
            msg, code=envelope[0] if envelope else None, status=404, where=where
        )
    if status in (418, 429):
        cls = IpBanned if status == 418 else RateLimited
        msg = envelope[1] if envelope else "too many requests"
        code = envelope[0] if envelope else None
        return cls(msg, retry_after=retry_after_s(headers), code=code, status=status, where=where)
    if envelope is not None:
        return error_for_code(*envelope, status=status, where=where)
    if status == 403:
        return WafBlocked("request blocked (non-JSON 403)", status=status, where=where)
    if status == 401:
        return AuthError("unauthorized", status=status, where=where)
    if status >= 500:
        return ServerError("server error, execution status unknown", status=status, where=where)
    return BadRequest("unexpected answer", status=status, where=where)
