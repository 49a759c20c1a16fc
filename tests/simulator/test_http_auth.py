"""Request security over real HTTP: keys, signatures over the exact bytes, timestamps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from simulator.auth import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    NO_MARGIN_API_KEY,
    NO_MARGIN_API_SECRET,
    ApiCredential,
    hmac_signature,
    signature_valid,
    split_signature,
)
from simulator.scenarios import build_exchange
from tests.fixtures_sim import SignedClient, SimFactory

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOC_UNICODE_SIGNATURE = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
ACCOUNT = "/sapi/v1/margin/account"


def sign(query: str, secret: str = DEFAULT_API_SECRET) -> str:
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def raw_get(
    client: SignedClient, path: str, query: str, key: str | None = DEFAULT_API_KEY
) -> httpx.Response:
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    return client.http.get(f"{path}?{query}", headers=headers)


def error_of(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json()["code"]


# -- the documented test vectors -------------------------------------------------------------


def test_hmac_vector_ascii() -> None:
    assert hmac_signature(DOC_SECRET, DOC_PAYLOAD.encode()) == DOC_SIGNATURE
    query = f"{DOC_PAYLOAD}&signature={DOC_SIGNATURE}".encode()
    payload, signature = split_signature(query, b"")
    assert payload == DOC_PAYLOAD.encode() and signature == DOC_SIGNATURE
    assert signature_valid(ApiCredential("k", DOC_SECRET), payload, signature)


def test_hmac_vector_non_ascii_signs_the_percent_encoded_bytes() -> None:
    encoded = quote("１２３４５６", safe="")
    assert encoded == "%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"
    payload = DOC_PAYLOAD.replace("LTCBTC", encoded).encode()
    assert hmac_signature(DOC_SECRET, payload) == DOC_UNICODE_SIGNATURE
    credential = ApiCredential("k", DOC_SECRET)
    assert signature_valid(credential, payload, DOC_UNICODE_SIGNATURE.upper())
    # signing the raw (un-encoded) text is what Binance rejects since 2026-01-15
    raw = DOC_PAYLOAD.replace("LTCBTC", "１２３４５６").encode()
    assert not signature_valid(credential, payload, hmac_signature(DOC_SECRET, raw))


def test_signature_pair_is_removed_wherever_it_is() -> None:
    assert split_signature(b"a=1&signature=ff&b=2", b"") == (b"a=1&b=2", "ff")
    assert split_signature(b"signature=ff&b=2", b"") == (b"b=2", "ff")
    # query + body concatenated directly ("totalParams"), the signature in the body
    assert split_signature(b"a=1", b"b=2&signature=ff") == (b"a=1b=2", "ff")
    assert split_signature(b"a=1", b"b=2") == (b"a=1b=2", None)


# -- keys ------------------------------------------------------------------------------------


def test_signed_request_is_accepted(sim_client: SignedClient) -> None:
    account = sim_client.ok("GET", ACCOUNT)
    assert account["userAssets"]


def test_missing_or_garbled_key_is_2014(sim_client: SignedClient) -> None:
    query = f"timestamp={sim_client.timestamp()}"
    query += f"&signature={sign(query)}"
    assert error_of(raw_get(sim_client, ACCOUNT, query, key=None)) == (401, -2014)
    assert error_of(raw_get(sim_client, ACCOUNT, query, key="bad key!")) == (401, -2014)


def test_unknown_key_is_2015(sim_client: SignedClient) -> None:
    query = f"timestamp={sim_client.timestamp()}"
    query += f"&signature={sign(query)}"
    response = raw_get(sim_client, ACCOUNT, query, key="NotAKeyWeKnow123")
    assert error_of(response) == (401, -2015)
    assert response.json()["msg"] == "Invalid API-key, IP, or permissions for action."


def test_key_without_margin_account_is_3003(sim_client: SignedClient) -> None:
    client = SignedClient(
        sim_client.http.base_url.__str__(), NO_MARGIN_API_KEY, NO_MARGIN_API_SECRET
    )
    response = client.get(ACCOUNT)
    assert error_of(response) == (400, -3003)
    assert response.json()["msg"] == "Margin account does not exist."
    # the exchange's public data is still served to it
    assert client.ok("GET", "/sapi/v1/margin/allAssets")
    client.close()


def test_market_data_needs_a_valid_key(sim_client: SignedClient) -> None:
    response = sim_client.http.get("/sapi/v1/margin/allPairs")
    assert error_of(response) == (401, -2014)
    ok = sim_client.http.get("/sapi/v1/margin/allPairs", headers={"X-MBX-APIKEY": DEFAULT_API_KEY})
    assert ok.status_code == 200 and ok.json()


# -- signatures ------------------------------------------------------------------------------


def test_bad_signature_is_1022(sim_client: SignedClient) -> None:
    query = f"timestamp={sim_client.timestamp()}"
    wrong = sign(query, secret="another-secret")
    response = raw_get(sim_client, ACCOUNT, f"{query}&signature={wrong}")
    assert error_of(response) == (400, -1022)
    assert response.json()["msg"] == "Signature for this request is not valid."


def test_signature_over_the_exact_bytes_in_any_order(sim_client: SignedClient) -> None:
    path = "/sapi/v1/margin/interestHistory"
    ts = sim_client.timestamp()
    for query in (
        f"timestamp={ts}&size=5&asset=USDT",  # ccxt: timestamp first
        f"asset=USDT&recvWindow=10000&size=5&timestamp={ts}",  # python-binance: sorted
        f"size=5&asset=USDT&timestamp={ts}",  # the SDK: caller's order, timestamp last
    ):
        response = raw_get(sim_client, path, f"{query}&signature={sign(query).upper()}")
        assert response.status_code == 200, response.text
        assert len(response.json()["rows"]) == 5
    # re-ordering after signing breaks it: the server never re-sorts
    signed = f"timestamp={ts}&size=5&asset=USDT"
    reordered = f"asset=USDT&size=5&timestamp={ts}"
    response = raw_get(sim_client, path, f"{reordered}&signature={sign(signed)}")
    assert error_of(response) == (400, -1022)


def test_form_body_and_query_mix_is_signed_as_total_params(sim_client: SignedClient) -> None:
    query = "asset=USDT"
    body = f"timestamp={sim_client.timestamp()}"
    headers = {
        "X-MBX-APIKEY": DEFAULT_API_KEY,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    signature = sign(query + body)
    response = sim_client.http.post(
        f"/sapi/v1/margin/listen-key?{query}",
        content=f"{body}&signature={signature}",
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["listenKey"]) == 60


def test_ed25519_key(sim_factory: SimFactory) -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    running = sim_factory(
        exchange=build_exchange("tiny", 3, None),
        credentials=(ApiCredential("ed-key", ed25519_public_key=public),),
    )
    client = SignedClient(running.url, "ed-key", "unused")
    query = f"timestamp={client.timestamp()}"
    signature = base64.b64encode(private.sign(query.encode())).decode()
    response = raw_get(client, ACCOUNT, f"{query}&signature={quote(signature, safe='')}", "ed-key")
    assert response.status_code == 200, response.text
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(query.encode())).decode()
    response = raw_get(client, ACCOUNT, f"{query}&signature={quote(forged, safe='')}", "ed-key")
    assert error_of(response) == (400, -1022)
    client.close()


# -- timestamp and recvWindow ----------------------------------------------------------------


def test_timestamp_rule_both_messages(sim_client: SignedClient) -> None:
    now = sim_client.timestamp()
    ahead = sim_client.get(ACCOUNT, timestamp=now + 3000)
    assert error_of(ahead) == (400, -1021)
    assert (
        ahead.json()["msg"] == "Timestamp for this request was 1000ms ahead of the server's time."
    )
    late = sim_client.get(ACCOUNT, timestamp=now - 7000)
    assert error_of(late) == (400, -1021)
    assert late.json()["msg"] == "Timestamp for this request is outside of the recvWindow."
    # the same lateness passes inside a wider recvWindow
    assert sim_client.get(ACCOUNT, recvWindow=20000, timestamp=now - 7000).status_code == 200


def test_recv_window_cap(sim_client: SignedClient) -> None:
    assert sim_client.get(ACCOUNT, recvWindow=60000).status_code == 200
    response = sim_client.get(ACCOUNT, recvWindow=60001)
    assert error_of(response) == (400, -1131)
    assert response.json()["msg"] == "recvWindow must be less than 60000"


def test_missing_timestamp_or_signature_is_1102(sim_client: SignedClient) -> None:
    no_timestamp = "size=1"
    response = raw_get(sim_client, ACCOUNT, f"{no_timestamp}&signature={sign(no_timestamp)}")
    assert error_of(response) == (400, -1102)
    assert "'timestamp'" in response.json()["msg"]
    response = raw_get(sim_client, ACCOUNT, f"timestamp={sim_client.timestamp()}")
    assert error_of(response) == (400, -1102)
    assert "'signature'" in response.json()["msg"]


def test_non_integer_parameter_is_1100_with_legal_range(sim_client: SignedClient) -> None:
    response = sim_client.get("/sapi/v1/margin/interestHistory", endTime="1.5e12")
    assert error_of(response) == (400, -1100)
    assert response.json()["msg"] == (
        "Illegal characters found in parameter 'endTime'; legal range is '^[0-9]{1,20}$'."
    )
    response = sim_client.get(ACCOUNT, timestamp=str(time.time()))
    assert error_of(response) == (400, -1100)


def test_duplicated_parameter_is_1101(sim_client: SignedClient) -> None:
    query = f"asset=USDT&asset=BTC&timestamp={sim_client.timestamp()}"
    response = raw_get(
        sim_client, "/sapi/v1/margin/interestHistory", f"{query}&signature={sign(query)}"
    )
    assert error_of(response) == (400, -1101)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/sapi/v1/margin/nonexistent"), ("PATCH", "/sapi/v1/margin/account"), ("GET", "/")],
)
def test_unknown_paths_are_404_with_no_body(
    sim_client: SignedClient, method: str, path: str
) -> None:
    response = sim_client.http.request(method, path)
    assert (response.status_code, response.content) == (404, b"")
    assert response.headers["content-length"] == "0"
