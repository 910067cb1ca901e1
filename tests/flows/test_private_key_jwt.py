"""private_key_jwt (RFC 7523 §3 as profiled by SMART client-confidential-asymmetric), over
real HTTP: every broken assertion rule answers ``invalid_client`` naming the rule.

The helpers here (ClientKey, assertion, backend_client, cc_token) are shared with
test_backend_services.py and test_jwks_uri.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SYSTEM_SCOPE = "system/*.rs system/Patient.read"


class ClientKey:
    """A client's key pair; ``jwk`` is the public half as a client registers it."""

    def __init__(self, alg: str = "ES384", kid: str | None = None) -> None:
        self.alg = alg
        self.kid = kid or secrets.token_urlsafe(8)
        if alg.startswith("RS"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algo = jwt.algorithms.RSAAlgorithm
        else:
            curve = ec.SECP384R1() if alg == "ES384" else ec.SECP256R1()
            self.private = ec.generate_private_key(curve)
            algo = jwt.algorithms.ECAlgorithm
        self.jwk: dict[str, Any] = {**algo.to_jwk(self.private.public_key(), as_dict=True),
                                    "kid": self.kid, "alg": alg, "use": "sig",
                                    "key_ops": ["verify"]}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"typ": "JWT", "kid": self.kid, **header}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwks_of(*keys: ClientKey) -> dict[str, Any]:
    return {"keys": [k.jwk for k in keys]}


def claims_for(client_id: str, aud: str, *, exp_in: int = 240, **override: Any
               ) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in,
              "iat": now, "jti": secrets.token_urlsafe(16)}
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def assertion(key: ClientKey, client_id: str, base_url: str, *, header: dict | None = None,
              **override: Any) -> str:
    return key.sign(claims_for(client_id, base_url + "/token", **override), **(header or {}))


def backend_client(app, *, key: ClientKey | None = None, jwks_uri: str | None = None,
                   scope: str = "system/*.rs system/Observation.read",
                   grant_types: list[str] | None = None, auth_method: str | None = None
                   ) -> dict:
    from authserver.services import admin_console

    with app.app_context():
        return admin_console.create_client(
            name="Backend", redirect_uris=[], scope=scope,
            auth_method=auth_method or ("private_key_jwt" if key or jwks_uri else None),
            jwks=jwks_of(key) if key else None, jwks_uri=jwks_uri,
            grant_types=grant_types or ["client_credentials"])


def cc_token(base_url: str, client_assertion: str | None, *, scope: str = SYSTEM_SCOPE,
             url: str | None = None, **extra: Any) -> requests.Response:
    data = {"grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": client_assertion}
    data.update(extra)
    return requests.post(url or base_url + "/token",
                         data={k: v for k, v in data.items() if v is not None})


def assert_refused(resp: requests.Response, words: str, status: int = 400) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == "invalid_client"
    assert words in body["error_description"], body["error_description"]
    assert resp.headers["Cache-Control"] == "no-store"


def _b64(obj: Any) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def key() -> ClientKey:
    return ClientKey("ES384")


@pytest.fixture
def client(app, key) -> dict:
    return backend_client(app, key=key)


# ---- accepted ---------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["ES384", "RS384", "ES256", "RS256"])
def test_private_key_jwt_issues_token_for_each_accepted_alg(app, base_url, alg):
    k = ClientKey(alg)
    c = backend_client(app, key=k)
    resp = cc_token(base_url, assertion(k, c["client_id"], base_url))
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"] == "Bearer"


def test_private_key_jwt_accepts_matching_form_client_id(base_url, key, client):
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url),
                    client_id=client["client_id"])
    assert resp.status_code == 200, resp.text


def test_private_key_jwt_accepts_aud_as_list(base_url, key, client):
    a = key.sign(claims_for(client["client_id"], [base_url + "/token", "https://other"]))
    assert cc_token(base_url, a).status_code == 200


def test_private_key_jwt_accepts_exp_exactly_five_minutes_ahead(base_url, key, client):
    # Inferno sets exp = now + 300 exactly; a few seconds of transit must not break it.
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url, exp_in=300))
    assert resp.status_code == 200, resp.text


# ---- refused: one test per rule -------------------------------------------------------------

def test_private_key_jwt_refuses_replayed_jti(base_url, key, client):
    a = assertion(key, client["client_id"], base_url)
    assert cc_token(base_url, a).status_code == 200
    assert_refused(cc_token(base_url, a), "'jti' was already used")


def test_private_key_jwt_refuses_replayed_jti_in_a_new_assertion(base_url, key, client):
    jti = secrets.token_urlsafe(16)
    assert cc_token(base_url, assertion(key, client["client_id"], base_url, jti=jti)
                    ).status_code == 200
    again = assertion(key, client["client_id"], base_url, jti=jti, exp_in=200)
    assert_refused(cc_token(base_url, again), "'jti' was already used")


def test_private_key_jwt_refuses_expired_assertion(base_url, key, client):
    a = assertion(key, client["client_id"], base_url, exp_in=-120)
    assert_refused(cc_token(base_url, a), "expired")


def test_private_key_jwt_refuses_exp_beyond_five_minutes(base_url, key, client):
    a = assertion(key, client["client_id"], base_url, exp_in=300 + 120)
    assert_refused(cc_token(base_url, a), "more than 5 minutes")


def test_private_key_jwt_refuses_missing_exp(base_url, key, client):
    a = assertion(key, client["client_id"], base_url, exp=None)
    assert_refused(cc_token(base_url, a), "'exp' is required")


def test_private_key_jwt_refuses_missing_jti(base_url, key, client):
    a = assertion(key, client["client_id"], base_url, jti=None)
    assert_refused(cc_token(base_url, a), "'jti' is required")


@pytest.mark.parametrize("aud", ["{base}/", "{base}/token/", "{base}/authorize",
                                 "https://elsewhere.example/token"])
def test_private_key_jwt_refuses_wrong_aud(base_url, key, client, aud):
    a = key.sign(claims_for(client["client_id"], aud.format(base=base_url)))
    assert_refused(cc_token(base_url, a), "'aud' must be the token endpoint URL")


def test_private_key_jwt_refuses_alg_none(base_url, client):
    claims = claims_for(client["client_id"], base_url + "/token")
    a = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'x'})}.{_b64(claims)}."
    assert_refused(cc_token(base_url, a), "'alg' must be one of")


def test_private_key_jwt_refuses_hs256_signed_with_public_key_bytes(base_url, key, client):
    # The classic algorithm confusion: the public key (which anyone has) as an HMAC secret.
    claims = claims_for(client["client_id"], base_url + "/token")
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{_b64(claims)}"
    for secret in (key.public_pem(), json.dumps(key.jwk).encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert_refused(cc_token(base_url, f"{signing_input}.{_b64(mac)}"),
                       "'alg' must be one of")


def test_private_key_jwt_refuses_unknown_kid(base_url, key, client):
    a = assertion(key, client["client_id"], base_url, header={"kid": "not-registered"})
    assert_refused(cc_token(base_url, a), "no key of the client matches")


def test_private_key_jwt_refuses_missing_kid(base_url, key, client):
    claims = claims_for(client["client_id"], base_url + "/token")
    a = jwt.encode(claims, key.private, algorithm="ES384", headers={"typ": "JWT"})
    assert_refused(cc_token(base_url, a), "'kid' is required")


def test_private_key_jwt_refuses_wrong_typ(base_url, key, client):
    a = assertion(key, client["client_id"], base_url, header={"typ": "at+jwt"})
    assert_refused(cc_token(base_url, a), "'typ' must be 'JWT'")


def test_private_key_jwt_refuses_key_type_not_matching_alg(app, base_url):
    # An RSA key registered under the kid, an ES384 assertion: no key of the alg's type.
    rsa_key = ClientKey("RS384")
    c = backend_client(app, key=rsa_key)
    ec_key = ClientKey("ES384", kid=rsa_key.kid)
    assert_refused(cc_token(base_url, assertion(ec_key, c["client_id"], base_url)),
                   "no key of the client matches")


def test_private_key_jwt_refuses_foreign_jku(base_url, key, client):
    a = assertion(key, client["client_id"], base_url,
                  header={"jku": "https://attacker.example/jwks.json"})
    assert_refused(cc_token(base_url, a), "'jku' must equal the registered 'jwks_uri'")


def test_private_key_jwt_refuses_signature_by_another_key(base_url, key, client):
    impostor = ClientKey("ES384", kid=key.kid)
    a = assertion(impostor, client["client_id"], base_url)
    assert_refused(cc_token(base_url, a), "signature is invalid")


def test_private_key_jwt_refuses_iss_different_from_sub(base_url, key, client):
    a = assertion(key, client["client_id"], base_url, iss="someone-else")
    assert_refused(cc_token(base_url, a), "'iss' must equal 'sub'")


def test_private_key_jwt_refuses_assertion_of_client_a_for_client_b(app, base_url, key, client):
    key_b = ClientKey("ES384")
    client_b = backend_client(app, key=key_b)
    a = assertion(key, client["client_id"], base_url)
    resp = cc_token(base_url, a, client_id=client_b["client_id"])
    assert_refused(resp, "'sub' must equal the 'client_id' parameter")
    # Signed by A's key but claiming to be B: B's key set has no such kid.
    forged = assertion(key, client_b["client_id"], base_url)
    assert_refused(cc_token(base_url, forged, client_id=client_b["client_id"]),
                   "no key of the client matches")


def test_private_key_jwt_refuses_unknown_client(base_url, key):
    assert_refused(cc_token(base_url, assertion(key, "no-such-client", base_url)),
                   "unknown client")


def test_private_key_jwt_refuses_secret_client_using_assertion(app, base_url, key):
    c = backend_client(app, auth_method="client_secret_basic")
    assert_refused(cc_token(base_url, assertion(key, c["client_id"], base_url)),
                   "not registered for 'private_key_jwt'")


def test_private_key_jwt_refuses_wrong_assertion_type(base_url, key, client):
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url),
                    client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
    assert_refused(resp, "'client_assertion_type' must be")


def test_private_key_jwt_refuses_garbage_assertion(base_url, client):
    assert_refused(cc_token(base_url, "not.a.jwt"), "not a signed JWT")
    assert_refused(cc_token(base_url, "x" * 20000), "too long")


def test_private_key_jwt_with_http_basic_too_is_invalid_request(base_url, key, client):
    # RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each
    # request" -- an assertion plus HTTP Basic is refused before either is checked.
    a = assertion(key, client["client_id"], base_url)
    resp = requests.post(base_url + "/token", auth=(client["client_id"], "something"), data={
        "grant_type": "client_credentials", "scope": SYSTEM_SCOPE,
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": a})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_request"
    assert "one client authentication method" in resp.json()["error_description"]
    assert "access_token" not in resp.json()


def test_private_key_jwt_client_without_credentials_is_refused(base_url, client):
    resp = requests.post(base_url + "/token", data={
        "grant_type": "client_credentials", "scope": SYSTEM_SCOPE,
        "client_id": client["client_id"]})
    # RFC 6749 §3.2.1: a confidential client MUST authenticate (Authlib answers 401 here).
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


# ---- the jti is remembered in the database: one winner among racing requests -----------

def test_private_key_jwt_same_assertion_from_ten_threads_issues_one_token(base_url, key,
                                                                          client):
    a = assertion(key, client["client_id"], base_url)
    barrier = threading.Barrier(10)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        resp = cc_token(base_url, a)
        with lock:
            results.append((resp.status_code, resp.json()))

    threads = [threading.Thread(target=race) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 10
    issued = [body for status, body in results if status == 200]
    refused = [body for status, body in results if status != 200]
    assert len(issued) == 1, results
    assert all(status in (200, 400) for status, _ in results)
    assert {b["error"] for b in refused} == {"invalid_client"}
    assert all("'jti' was already used" in b["error_description"] for b in refused)


# ---- the endpoints other than /token -------------------------------------------------------

def test_private_key_jwt_audiences_per_endpoint(app):
    from authserver.oauth.rfc7523 import PrivateKeyJWT

    issuer = app.config["ISSUER"]
    method = PrivateKeyJWT()
    with app.test_request_context("/token", method="POST"):
        assert method.get_audiences() == [issuer + "/token", issuer]
    for path in ("/introspect", "/revoke"):
        with app.test_request_context(path, method="POST"):
            # SMART: aud = the token endpoint URL, accepted everywhere; the endpoint's own
            # URL is accepted where it is called.
            assert method.get_audiences() == [issuer + "/token", issuer, issuer + path]


# ---- registration validates the keys ------------------------------------------------------

def test_registration_refuses_private_jwk(app, key):
    from authserver.services import admin_console

    numbers = key.private.private_numbers()
    private_jwk = {**key.jwk, "d": base64.urlsafe_b64encode(
        numbers.private_value.to_bytes(48, "big")).rstrip(b"=").decode()}
    with app.app_context(), pytest.raises(admin_console.AdminError, match="public keys only"):
        admin_console.create_client(name="Leaky", redirect_uris=[], scope="system/*.rs",
                                    auth_method="private_key_jwt", jwks={"keys": [private_jwk]},
                                    grant_types=["client_credentials"])


@pytest.mark.parametrize("member", ["kid", "kty"])
def test_registration_refuses_jwk_without_kid_or_kty(app, key, member):
    from authserver.services import admin_console

    jwk = {k: v for k, v in key.jwk.items() if k != member}
    with app.app_context(), pytest.raises(admin_console.AdminError, match="'kty'"):
        admin_console.create_client(name="Bad", redirect_uris=[], scope="system/*.rs",
                                    auth_method="private_key_jwt", jwks={"keys": [jwk]},
                                    grant_types=["client_credentials"])


def test_registration_refuses_private_key_jwt_without_keys(app):
    from authserver.services import admin_console

    with app.app_context(), pytest.raises(admin_console.AdminError,
                                          match="needs 'jwks' or 'jwks_uri'"):
        admin_console.create_client(name="Keyless", redirect_uris=[], scope="system/*.rs",
                                    auth_method="private_key_jwt",
                                    grant_types=["client_credentials"])


def test_jti_reusable_only_after_its_entry_expired(ctx):
    from authserver import clock, store
    now = clock.now()
    assert store.jti.claim_assertion_jti("client-a", "jti-1", now - 1)  # already expired
    assert store.jti.claim_assertion_jti("client-a", "jti-1", now + 300)  # reclaimed
    assert not store.jti.claim_assertion_jti("client-a", "jti-1", now + 300)  # live: replay
    assert store.jti.claim_assertion_jti("client-b", "jti-1", now + 300)  # per client
    assert store.jti.claim_assertion_jti("client-a", "jti-2", now - 5)
    assert store.jti.prune_assertion_jtis() == 1  # only the expired one
    assert not store.jti.claim_assertion_jti("client-a", "jti-1", now + 300)


def test_private_key_jwt_accepts_issuer_as_aud(base_url, key, client):
    """draft-ietf-oauth-rfc7523bis: the issuer identifier is the recommended audience."""
    a = key.sign(claims_for(client["client_id"], base_url))
    resp = cc_token(base_url, a)
    assert resp.status_code == 200, resp.text
