"""Signing: the facts page's vectors, percent-encoding, key pairs, and the bytes on the wire."""

from __future__ import annotations

import asyncio
import base64
from decimal import Decimal
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from connectors import MarginClient
from connectors.client import HmacSigner, KeyPairSigner, Secret, encode_query, make_signer
from connectors.errors import AuthError
from tests.connectors.fake_binance import KEY, FakeBinance, client_for, settings

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOC_PARAMS: list[tuple[str, str | int | Decimal]] = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", 1),
    ("price", Decimal("0.1")),
    ("recvWindow", 5000),
    ("timestamp", 1499827319559),
]


def test_hmac_vector_from_the_docs() -> None:
    assert encode_query(DOC_PARAMS) == DOC_PAYLOAD
    signature = HmacSigner(Secret(DOC_SECRET)).sign(DOC_PAYLOAD.encode())
    assert signature == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_non_ascii_symbol_is_percent_encoded_before_signing() -> None:
    params = [("symbol", "１２３４５６"), *DOC_PARAMS[1:]]
    payload = encode_query(params)
    assert payload.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&")
    signature = HmacSigner(Secret(DOC_SECRET)).sign(payload.encode())
    assert signature == "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"


def test_encoding_leaves_only_unreserved_characters() -> None:
    assert encode_query([("a", "b~c-d_e.f"), ("x", "/+= &")]) == "a=b~c-d_e.f&x=%2F%2B%3D%20%26"
    # decimals never go out in exponent form (Binance answers -1100)
    assert encode_query([("amount", Decimal("1E-8"))]) == "amount=0.00000001"


def test_ed25519_signature_verifies_and_is_percent_encoded() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = make_signer(Secret(pem))
    assert isinstance(signer, KeyPairSigner)
    signature = signer.sign(DOC_PAYLOAD.encode())
    assert "+" not in signature and "/" not in signature and "=" not in signature
    key.public_key().verify(base64.b64decode(unquote(signature)), DOC_PAYLOAD.encode())


def test_rsa_signature_verifies() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signature = make_signer(Secret(pem)).sign(DOC_PAYLOAD.encode())
    key.public_key().verify(
        base64.b64decode(unquote(signature)),
        DOC_PAYLOAD.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_signed_bytes_are_the_bytes_sent_with_signature_last() -> None:
    fake = FakeBinance()
    fake.route("/sapi/v1/margin/allAssets", lambda params: [])
    fake.route("/sapi/v1/margin/myTrades", lambda params: [{"echo": params["symbol"]}])

    async def scenario() -> object:
        async with client_for(fake) as client:
            return await client.request(
                "GET", "/sapi/v1/margin/myTrades", {"symbol": "１２３", "limit": 5}, weight=10
            )

    assert asyncio.run(scenario()) == [{"echo": "１２３"}]  # the fake verified the HMAC
    sent = fake.requests[-1].url.query.decode()
    assert sent.startswith("symbol=%EF%BC%91%EF%BC%92%EF%BC%93&limit=5&recvWindow=5000&timestamp=")
    assert sent.rsplit("&", 1)[1].startswith("signature=")


def test_a_wrong_secret_stops_at_once_with_invalid_signature() -> None:
    fake = FakeBinance()
    fake.route("/sapi/v1/margin/account", lambda params: {})
    client = MarginClient(
        "https://api.binance.test", KEY, "not-the-secret", settings(), transport=fake.transport()
    )

    async def scenario() -> None:
        async with client:
            await client.read_account()

    with pytest.raises(AuthError, match="-1022"):
        asyncio.run(scenario())
    assert fake.calls("/sapi/v1/margin/account") == 1  # not retried
