"""Request security: API keys, HMAC-SHA256 / Ed25519 signatures over the exact bytes sent,
and the timestamp/recvWindow rule (facts §2)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from simulator.errors import AHEAD_OF_SERVER, MESSAGES, ApiError
from simulator.params import Params

DEFAULT_API_KEY = "sim-api-key"
DEFAULT_API_SECRET = "sim-api-secret"
NO_MARGIN_API_KEY = "no-margin-key"
NO_MARGIN_API_SECRET = "no-margin-secret"

MAX_RECV_WINDOW = Decimal(60000)
DEFAULT_RECV_WINDOW = Decimal(5000)
# Real keys are 64 alphanumerics; we also allow the dashes of our readable test keys.
KEY_FORMAT = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
RECV_WINDOW_FORMAT = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,3})?$")
SIGNATURE_PAIR = re.compile(rb"(?:^|&)signature=([^&]*)")


@dataclass(frozen=True, slots=True)
class ApiCredential:
    """One API key: an HMAC secret or an Ed25519 public key, and whether it has margin."""

    key: str
    secret: str | None = None
    ed25519_public_key: bytes | None = None  # PEM or the raw 32 bytes
    has_margin_account: bool = True

    def __repr__(self) -> str:  # secrets never in logs
        return f"ApiCredential(key={self.key!r}, has_margin_account={self.has_margin_account})"


def default_credentials(api_key: str, api_secret: str) -> tuple[ApiCredential, ...]:
    return (
        ApiCredential(api_key, api_secret),
        ApiCredential(NO_MARGIN_API_KEY, NO_MARGIN_API_SECRET, has_margin_account=False),
    )


class KeyRing:
    """The keys the simulated exchange knows."""

    def __init__(self, credentials: tuple[ApiCredential, ...]) -> None:
        self._by_key = {c.key: c for c in credentials}

    def lookup(self, header: str | None) -> ApiCredential:
        if header is None or not KEY_FORMAT.match(header):
            raise ApiError(-2014)
        credential = self._by_key.get(header)
        if credential is None:
            raise ApiError(-2015)
        return credential

    def revoke(self, key: str) -> None:
        """The key stops working, as when its owner deletes it: -2015 from now on."""
        self._by_key.pop(key, None)


def split_signature(query: bytes, body: bytes) -> tuple[bytes, str | None]:
    """The signed payload ("totalParams" = query + body, the `signature` pair removed) and
    the signature as sent (percent-decoded)."""
    for part, index in ((query, 0), (body, 1)):
        match = SIGNATURE_PAIR.search(part)
        if match is None:
            continue
        before, after = part[: match.start()], part[match.end() :]
        if not before and after.startswith(b"&"):
            after = after[1:]
        stripped = before + after
        payload = stripped + body if index == 0 else query + stripped
        return payload, unquote(match.group(1).decode("latin-1"))
    return query + body, None


def hmac_signature(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def signature_valid(credential: ApiCredential, payload: bytes, signature: str) -> bool:
    if credential.secret is not None:
        expected = hmac_signature(credential.secret, payload)
        return hmac.compare_digest(expected, signature.lower())
    if credential.ed25519_public_key is not None:
        return _ed25519_valid(credential.ed25519_public_key, payload, signature)
    return False


def _ed25519_valid(public_key: bytes, payload: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if public_key.startswith(b"-----"):
        key = load_pem_public_key(public_key)
        if not isinstance(key, Ed25519PublicKey):
            return False
    else:
        key = Ed25519PublicKey.from_public_bytes(public_key)
    try:
        key.verify(raw, payload)
    except InvalidSignature:
        return False
    return True


def check_signed(
    credential: ApiCredential, params: Params, query: bytes, body: bytes, server_ms: int
) -> None:
    """Everything a SIGNED endpoint checks before it reads its own parameters."""
    payload, signature = split_signature(query, body)
    timestamp = params.integer("timestamp", required=True)
    assert timestamp is not None
    if signature is None or signature == "":
        raise ApiError.param(-1102, name="signature")
    check_timestamp(timestamp, recv_window(params), server_ms)
    if not signature_valid(credential, payload, signature):
        raise ApiError(-1022)


def recv_window(params: Params) -> Decimal:
    value = params.text("recvWindow")
    if value is None:
        return DEFAULT_RECV_WINDOW
    if not RECV_WINDOW_FORMAT.match(value):
        raise ApiError.param(-1100, name="recvWindow", legal=RECV_WINDOW_FORMAT.pattern)
    window = Decimal(value)
    if window > MAX_RECV_WINDOW:
        raise ApiError(-1131)
    return window


def check_timestamp(timestamp: int, window: Decimal, server_ms: int) -> None:
    """Accept iff timestamp < server + 1000 and server - timestamp <= recvWindow (facts §2.4)."""
    if timestamp >= server_ms + 1000:
        raise ApiError(-1021, AHEAD_OF_SERVER)
    if server_ms - timestamp > window:
        raise ApiError(-1021, MESSAGES[-1021])
