"""POST /token, grant_type=authorization_code, through real HTTP.

RFC 6749 §4.1.3 / §5 (https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3), RFC 7636
(PKCE, S256 only as SMART profiles it), RFC 9068 (JWT access tokens), OpenID Connect Core
§3.1.3.6 (id_token, at_hash), SMART App Launch 2.2 token response
(https://hl7.org/fhir/smart-app-launch/app-launch.html#response-5).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time

import jwt
import pytest
import requests

from tests.helpers import (
    FHIR_BASE,
    OAuthFlow,
    fetch_jwks,
    make_client,
    make_user,
    pkce_pair,
    verify_jwt,
)


@pytest.fixture
def alice(app):
    return make_user(app, name="Alice Example")


def _flow(base_url: str, client: dict, **kw) -> OAuthFlow:
    return OAuthFlow(base_url, client, requests.Session(), **kw)


def _code(flow: OAuthFlow, username: str = "alice") -> str:
    flow.authorize()
    flow.follow()
    flow.login(username)
    if 'name="decision"' in flow.last.text:
        flow.consent()
    return flow.code()


def _assert_no_store(resp: requests.Response) -> None:
    # SMART: Cache-Control: no-store and Pragma: no-cache on every token response.
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"


def _assert_error(resp: requests.Response, status: int, error: str) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["error"] == error, body
    _assert_no_store(resp)
    return body


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _live(app, access_token: str) -> bool:
    from authserver import store
    claims = jwt.decode(access_token, options={"verify_signature": False})
    with app.app_context():
        return store.authorization.live_access_token(claims["jti"], claims.get("gid"),
                                                     claims["client_id"])[0]


# ---- a successful exchange ---------------------------------------------------------------

def test_token_public_client_gets_the_full_smart_response(app, alice, base_url):
    client = make_client(app)
    flow = _flow(base_url, client)
    code = _code(flow)
    resp = flow.token(code)
    assert resp.status_code == 200, resp.text
    _assert_no_store(resp)
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert type(body["expires_in"]) is int and 0 < body["expires_in"] <= 3600
    assert body["scope"].split() == ["openid", "fhirUser", "launch/patient", "offline_access",
                                     "patient/*.rs"]
    assert body["patient"] == "p1"
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 43

    at = verify_jwt(base_url, body["access_token"], audience=FHIR_BASE, typ="at+jwt")
    assert at["iss"] == base_url and at["aud"] == FHIR_BASE
    assert at["client_id"] == client["client_id"]
    assert at["sub"] == str(alice["id"])
    assert at["scope"] == body["scope"]
    assert at["patient"] == "p1"
    assert at["fhirUser"] == FHIR_BASE + "/Patient/p1"
    assert at["exp"] - at["iat"] == body["expires_in"]
    assert at["jti"]

    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256" and header["kid"] in {
        k["kid"] for k in fetch_jwks(base_url)["keys"]}
    idt = verify_jwt(base_url, body["id_token"], audience=client["client_id"])
    assert idt["iss"] == base_url
    assert idt["sub"] == str(alice["id"]) and len(idt["sub"]) <= 255
    assert idt["aud"] == client["client_id"]
    assert idt["fhirUser"] == FHIR_BASE + "/Patient/p1"
    assert idt["nonce"] == flow.nonce
    assert idt["at_hash"] == _at_hash(body["access_token"])
    assert abs(idt["auth_time"] - time.time()) < 60


def test_token_id_token_without_nonce_when_none_was_sent(app, alice, base_url):
    flow = _flow(base_url, make_client(app), nonce=None)
    body = flow.token(_code(flow)).json()
    assert "nonce" not in verify_jwt(base_url, body["id_token"],
                                     audience=flow.client["client_id"])


def test_token_no_id_token_without_openid_and_no_refresh_without_offline_access(app, alice,
                                                                               base_url):
    flow = _flow(base_url, make_client(app), scope="launch/patient patient/*.rs")
    body = flow.token(_code(flow)).json()
    assert body["scope"] == "launch/patient patient/*.rs"
    assert "id_token" not in body and "refresh_token" not in body
    assert body["patient"] == "p1"


def test_token_no_fhir_user_claim_without_fhir_user_scope(app, alice, base_url):
    flow = _flow(base_url, make_client(app), scope="openid launch/patient patient/*.rs")
    body = flow.token(_code(flow)).json()
    idt = verify_jwt(base_url, body["id_token"], audience=flow.client["client_id"])
    assert "fhirUser" not in idt
    assert "fhirUser" not in verify_jwt(base_url, body["access_token"], audience=FHIR_BASE)


def test_token_client_secret_basic(app, alice, base_url):
    client = make_client(app, auth_method="client_secret_basic")
    flow = _flow(base_url, client)
    resp = flow.token(_code(flow))
    assert resp.status_code == 200, resp.text
    assert resp.json()["patient"] == "p1"


def test_token_client_secret_basic_is_form_urlencoded_per_rfc6749(app, alice, base_url):
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    client = make_client(app, auth_method="client_secret_basic")
    flow = _flow(base_url, client)
    code = _code(flow)
    from urllib.parse import quote

    raw = f"{quote(client['client_id'], safe='')}:{quote(client['client_secret'], safe='')}"
    resp = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier},
        headers={"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()})
    assert resp.status_code == 200, resp.text


def test_token_client_secret_post(app, alice, base_url):
    client = make_client(app, auth_method="client_secret_post")
    flow = _flow(base_url, client)
    resp = flow.token(_code(flow))
    assert resp.status_code == 200, resp.text


def test_token_client_secret_is_256_bits_stored_as_sha256(app, base_url):
    from authserver import store
    client = make_client(app, auth_method="client_secret_basic")
    secret = client["client_secret"]
    assert len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) >= 32
    with app.app_context():
        row = store.clients.find_client(client["client_id"])
        assert row.client_secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in repr(row.client_metadata)


# ---- client authentication refusals ------------------------------------------------------

def test_token_confidential_client_without_secret_is_invalid_client(app, alice, base_url):
    client = make_client(app, auth_method="client_secret_basic")
    flow = _flow(base_url, client)
    code = _code(flow)
    resp = flow.token(code, client_id=client["client_id"])  # helper adds Basic: remove it
    resp = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier, "client_id": client["client_id"]})
    _assert_error(resp, 401, "invalid_client")


def test_token_confidential_client_with_wrong_secret_is_invalid_client(app, alice, base_url):
    client = make_client(app, auth_method="client_secret_basic")
    flow = _flow(base_url, client)
    code = _code(flow)
    resp = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier}, auth=(client["client_id"], "x" * 43))
    _assert_error(resp, 401, "invalid_client")
    # the code is still good for the real client (nothing was consumed)
    assert flow.token(code).status_code == 200


def test_token_secret_sent_by_an_unregistered_method_is_invalid_client(app, alice, base_url):
    client = make_client(app, auth_method="client_secret_basic")
    flow = _flow(base_url, client)
    code = _code(flow)
    resp = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier, "client_id": client["client_id"],
        "client_secret": client["client_secret"]})
    _assert_error(resp, 401, "invalid_client")


def test_token_public_client_sending_a_secret_is_invalid_client(app, alice, base_url):
    client = make_client(app)
    flow = _flow(base_url, client)
    code = _code(flow)
    _assert_error(flow.token(code, client_secret="anything"), 401, "invalid_client")
    resp = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier}, auth=(client["client_id"], "anything"))
    _assert_error(resp, 401, "invalid_client")


def test_token_unknown_or_missing_client_is_invalid_client(app, alice, base_url):
    client = make_client(app)
    flow = _flow(base_url, client)
    code = _code(flow)
    # RFC 6749 §5.2: 401 is a MUST only when the client used the Authorization header.
    # An unknown client_id: 400.
    _assert_error(flow.token(code, client_id="nobody"), 400, "invalid_client")
    # No client at all: 401 (which §5.2 allows, MAY), Authlib naming the methods on offer.
    _assert_error(flow.token(code, client_id=None), 401, "invalid_client")
    resp = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier}, auth=("nobody", "secret"))
    _assert_error(resp, 401, "invalid_client")


# ---- the code: single use, bound, short lived --------------------------------------------

def test_token_code_reuse_is_invalid_grant_and_revokes_what_it_issued(app, alice, base_url):
    flow = _flow(base_url, make_client(app))
    code = _code(flow)
    first = flow.token(code)
    assert first.status_code == 200
    tokens = first.json()
    assert _live(app, tokens["access_token"])
    second = flow.token(code)
    body = _assert_error(second, 400, "invalid_grant")
    assert "access_token" not in body
    # RFC 6749 §4.1.2: every token issued from the code is revoked.
    assert not _live(app, tokens["access_token"])
    _assert_error(flow.refresh(tokens["refresh_token"]), 400, "invalid_grant")


def test_token_racing_redemptions_cannot_both_win(app, alice, base_url):
    flow = _flow(base_url, make_client(app))
    code = _code(flow)
    barrier = threading.Barrier(4)
    results: list[requests.Response] = []

    def redeem() -> None:
        barrier.wait()
        results.append(flow.token(code))

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) <= 1 and len(statuses) == 4, statuses
    for r in results:
        if r.status_code != 200:
            _assert_error(r, 400, "invalid_grant")
    # The code was redeemed more than once: whatever the winner got is dead too.
    for r in results:
        if r.status_code == 200:
            assert not _live(app, r.json()["access_token"])


def test_token_wrong_verifier_is_invalid_grant(app, alice, base_url):
    flow = _flow(base_url, make_client(app))
    other, _ = pkce_pair()
    _assert_error(flow.token(_code(flow), code_verifier=other), 400, "invalid_grant")


def test_token_every_bad_verifier_is_refused_with_400(app, alice, base_url):
    # Inferno's four: none, blank, wrong, the challenge itself.
    client = make_client(app)
    for verifier, error in ((None, "invalid_request"), ("", "invalid_request"),
                            ("A" * 43, "invalid_grant"), ("challenge", "invalid_grant")):
        flow = _flow(base_url, client)
        code = _code(flow)
        if verifier == "challenge":
            verifier = flow.challenge
        _assert_error(flow.token(code, code_verifier=verifier), 400, error)


def test_token_verifier_sent_when_no_challenge_was_stored_is_refused(app, alice, base_url):
    # /authorize refuses a request without a challenge, so no such code can be made over
    # HTTP; a row stored without one (a downgrade, RFC 9700 §4.8) must still be refused.
    from authserver import clock, store
    client = make_client(app)
    with app.app_context():
        store.authorization.save_code("c" * 43, client_id=client["client_id"], user_id=alice["id"],
                          session_id=None, redirect_uri=OAuthFlow.redirect_uri,
                          scope="launch/patient patient/*.rs", aud=FHIR_BASE, nonce=None,
                          code_challenge="", code_challenge_method="", context={},
                          auth_time=clock.now(), expires_at=clock.now() + 60)
    flow = _flow(base_url, client)
    resp = flow.token("c" * 43, code_verifier=flow.verifier)
    assert resp.status_code == 400
    assert resp.json()["error"] in ("invalid_request", "invalid_grant")
    _assert_no_store(resp)


def test_token_another_clients_code_is_invalid_grant(app, alice, base_url):
    victim = make_client(app, name="Victim")
    thief = make_client(app, name="Thief")
    flow = _flow(base_url, victim)
    code = _code(flow)
    stolen = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier, "client_id": thief["client_id"]})
    _assert_error(stolen, 400, "invalid_grant")
    assert flow.token(code).status_code == 200  # the real client is not harmed


def test_token_redirect_uri_must_match_the_authorization_request(app, alice, base_url):
    client = make_client(app, redirect_uris=["http://127.0.0.1:9999/callback",
                                             "http://127.0.0.1:9999/other"])
    flow = _flow(base_url, client)
    _assert_error(flow.token(_code(flow), redirect_uri="http://127.0.0.1:9999/other"), 400,
                  "invalid_grant")
    flow = _flow(base_url, client)
    _assert_error(flow.token(_code(flow), redirect_uri=None), 400, "invalid_grant")


def test_token_code_lives_60_seconds(app, alice, base_url):
    from sqlalchemy import select

    from authserver.extensions import db
    from authserver.models import AuthorizationCode

    flow = _flow(base_url, make_client(app))
    code = _code(flow)
    with app.app_context():
        row = db.session.scalars(select(AuthorizationCode)).one()
        assert row.expires_at - row.created_at == 60
        assert row.code_hash == hashlib.sha256(code.encode()).hexdigest()  # stored hashed
        row.expires_at = int(time.time()) - 1
        db.session.commit()
    _assert_error(flow.token(code), 400, "invalid_grant")


def test_token_unknown_code_is_invalid_grant(app, alice, base_url):
    flow = _flow(base_url, make_client(app))
    for code in ("nope", "x" * 43, "x" * 300):
        _assert_error(flow.token(code), 400, "invalid_grant")
    _assert_error(flow.token(None), 400, "invalid_request")


def test_token_unsupported_or_missing_grant_type(app, base_url):
    client = make_client(app)
    for grant_type in ("password", "implicit", "urn:x"):
        resp = requests.post(base_url + "/token", data={"grant_type": grant_type,
                                                        "client_id": client["client_id"]})
        _assert_error(resp, 400, "unsupported_grant_type")
    resp = requests.post(base_url + "/token", data={"client_id": client["client_id"]})
    assert resp.status_code == 400
    assert resp.json()["error"] in ("invalid_request", "unsupported_grant_type")
    _assert_no_store(resp)


def test_token_client_not_registered_for_refresh_gets_no_refresh_token(app, alice,
                                                                       base_url):
    client = make_client(app, grant_types=["authorization_code"])
    flow = _flow(base_url, client)
    body = flow.token(_code(flow)).json()
    assert "offline_access" in body["scope"] and "refresh_token" not in body


# ---- RFC 6749 §2.3: one client authentication method per request ----------------------

def test_token_two_authentication_methods_are_invalid_request(app, alice, base_url):
    """An attacker mixing methods (hoping one is checked and another trusted) is refused
    before the code is looked at: the code still works for the honest request."""
    client = make_client(app, auth_method="client_secret_basic")
    other = make_client(app, name="Other", auth_method="none")
    flow = _flow(base_url, client)
    code = _code(flow)
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": flow.redirect_uri, "code_verifier": flow.verifier}
    basic = (client["client_id"], client["client_secret"])
    for label, kw in (
        ("basic + client_secret", {"auth": basic, "data": {
            **data, "client_id": client["client_id"], "client_secret": client["client_secret"]}}),
        ("basic + assertion", {"auth": basic, "data": {
            **data, "client_assertion_type":
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "a.b.c"}}),
        ("basic + other client_id", {"auth": basic, "data": {
            **data, "client_id": other["client_id"]}}),
        ("basic + other client_id in query", {"auth": basic, "data": data,
                                              "params": {"client_id": other["client_id"]}}),
        ("basic + client_id twice", {"auth": basic, "data": [
            *data.items(), ("client_id", client["client_id"]),
            ("client_id", other["client_id"])]}),
        ("secret + assertion", {"data": {
            **data, "client_id": client["client_id"], "client_secret": "x",
            "client_assertion": "a.b.c"}}),
        ("bearer + client_secret", {"headers": {"Authorization": "Bearer x"}, "data": {
            **data, "client_id": client["client_id"], "client_secret": "x"}}),
    ):
        resp = requests.post(base_url + "/token", **kw)
        body = _assert_error(resp, 400, "invalid_request")
        assert "access_token" not in body, label
    # The same client id in the body as in Basic is one method, and the code was not spent.
    resp = requests.post(base_url + "/token", auth=basic,
                         data={**data, "client_id": client["client_id"]})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("raw", [b"\xff\xfe:\xfd", b"caf\xe9:secret", b"client:\xff",
                                 b"no-colon", b":only-secret"])
def test_token_unreadable_basic_credentials_are_invalid_client(app, base_url, raw):
    client = make_client(app, auth_method="none")
    resp = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": "x" * 43, "client_id": client["client_id"],
        "redirect_uri": "http://127.0.0.1:9999/callback", "code_verifier": "v" * 43},
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()})
    _assert_error(resp, 401, "invalid_client")
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
