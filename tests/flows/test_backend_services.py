"""SMART Backend Services: the client_credentials grant, over real HTTP.

https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

from __future__ import annotations

import jwt
import pytest
import requests

from tests.flows.test_private_key_jwt import (
    SYSTEM_SCOPE,
    ClientKey,
    assertion,
    backend_client,
    cc_token,
)
from tests.helpers import FHIR_BASE, OAuthFlow, make_client, make_user


def _claims(base_url: str, token: str, aud: str = FHIR_BASE) -> dict:
    jwks = requests.get(base_url + "/.well-known/jwks.json").json()
    header = jwt.get_unverified_header(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert header["typ"] == "at+jwt"
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=[header["alg"]], audience=aud,
                      issuer=base_url)


@pytest.fixture
def key() -> ClientKey:
    return ClientKey("ES384")


@pytest.fixture
def client(app, key) -> dict:
    return backend_client(app, key=key, scope="system/*.rs system/Observation.read "
                                              "system/Patient.cruds")


def test_client_credentials_issues_system_token(base_url, key, client):
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url),
                    scope="system/Observation.rs system/Patient.read")
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"
    body = resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}  # no refresh
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    # v1 scopes are echoed as requested (permission-v1).
    assert body["scope"] == "system/Observation.rs system/Patient.read"
    claims = _claims(base_url, body["access_token"])
    assert claims["sub"] == claims["client_id"] == client["client_id"]
    assert claims["scope"] == body["scope"]
    assert claims["exp"] - claims["iat"] == 300
    assert "gid" not in claims and "patient" not in claims


def test_client_credentials_expires_in_is_configurable(template_db, tmp_path, key):
    from tests.conftest import _fresh_db, _make_app, base_config

    conf = base_config(tmp_path / "inst", _fresh_db(template_db, tmp_path))
    conf["CLIENT_CREDENTIALS_TOKEN_LIFETIME"] = 120
    app = _make_app(conf)
    c = backend_client(app, key=key)
    issuer = conf["ISSUER"]
    http = app.test_client()
    resp = http.post("/token", data={
        "grant_type": "client_credentials", "scope": "system/*.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(key, c["client_id"], issuer)})
    assert resp.status_code == 200, resp.text
    assert resp.json["expires_in"] == 120
    with app.app_context():
        from authserver.extensions import db

        db.session.remove()
        db.engine.dispose()


def test_client_credentials_narrows_scopes_to_registration(base_url, key, client):
    # Dropped: a write on everything (only *.rs registered), a patient/ and a user/ scope,
    # openid/offline_access (no user, no refresh token). Kept: covered system/ scopes.
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url),
                    scope="system/*.cruds system/Condition.rs patient/*.rs user/*.rs openid "
                          "offline_access system/Patient.cud")
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "system/Condition.rs system/Patient.cud"
    assert "refresh_token" not in resp.json()


def test_client_credentials_keeps_granular_scopes(base_url, key, client):
    granular = ("system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/"
                "observation-category|laboratory")
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url), scope=granular)
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == granular


def test_client_credentials_refuses_when_no_scope_is_allowed(base_url, key, client):
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url),
                    scope="patient/*.rs system/*.cud")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_scope"


def test_client_credentials_refuses_missing_scope(base_url, key, client):
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url), scope=None)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_scope"


def test_client_credentials_refuses_malformed_scope(base_url, key, client):
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url),
                    scope="system/Observation.rc")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_scope"


def test_client_credentials_token_for_another_fhir_base(base_url, key, client):
    other = "https://fhir.example.org/r4"
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url), aud=other + "/")
    assert resp.status_code == 200, resp.text
    assert _claims(base_url, resp.json()["access_token"], aud=other)["aud"] == other


def test_client_credentials_refuses_unknown_aud(base_url, key, client):
    resp = cc_token(base_url, assertion(key, client["client_id"], base_url),
                    aud="https://evil.example/fhir")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"


def test_client_credentials_with_client_secret_basic(app, base_url):
    c = backend_client(app, auth_method="client_secret_basic", scope="system/*.rs")
    resp = requests.post(base_url + "/token", auth=(c["client_id"], c["client_secret"]),
                         data={"grant_type": "client_credentials", "scope": "system/*.rs"})
    assert resp.status_code == 200, resp.text
    assert _claims(base_url, resp.json()["access_token"])["sub"] == c["client_id"]


def test_client_credentials_with_wrong_secret_is_401(app, base_url):
    c = backend_client(app, auth_method="client_secret_basic", scope="system/*.rs")
    resp = requests.post(base_url + "/token", auth=(c["client_id"], "wrong"),
                         data={"grant_type": "client_credentials", "scope": "system/*.rs"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


def test_client_not_registered_for_client_credentials_is_refused(app, base_url):
    c = make_client(app, auth_method="client_secret_basic", scope="system/*.rs openid")
    resp = requests.post(base_url + "/token", auth=(c["client_id"], c["client_secret"]),
                         data={"grant_type": "client_credentials", "scope": "system/*.rs"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "unauthorized_client"


def test_asymmetric_app_not_registered_for_client_credentials_is_refused(app, base_url, key):
    from authserver.services import admin_console
    from tests.flows.test_private_key_jwt import jwks_of

    with app.app_context():
        c = admin_console.create_client(name="Asymmetric app", redirect_uris=[
            "http://127.0.0.1:9999/callback"], scope="system/*.rs patient/*.rs",
            auth_method="private_key_jwt", jwks=jwks_of(key),
            grant_types=["authorization_code"])
    resp = cc_token(base_url, assertion(key, c["client_id"], base_url))
    assert resp.status_code == 400
    assert resp.json()["error"] == "unauthorized_client"


def test_public_client_cannot_use_client_credentials(app, base_url):
    c = make_client(app, scope="system/*.rs")
    resp = requests.post(base_url + "/token", data={
        "grant_type": "client_credentials", "scope": "system/*.rs",
        "client_id": c["client_id"]})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


def test_backend_client_trying_authorization_code_is_refused(app, base_url, key, client):
    resp = requests.post(base_url + "/token", data={
        "grant_type": "authorization_code", "code": "x" * 43,
        "redirect_uri": "http://127.0.0.1:9999/callback", "code_verifier": "v" * 43,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(key, client["client_id"], base_url)})
    assert resp.status_code == 400
    assert resp.json()["error"] == "unauthorized_client"


def test_backend_client_cannot_start_authorization(app, base_url, http, client):
    make_user(app)
    flow = OAuthFlow(base_url, client, http)
    resp = flow.authorize()
    # No redirect URI is registered: an error page, never a redirect (RFC 6749 §4.1.2.1).
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_discovery_advertises_backend_services(base_url):
    for path in ("/.well-known/smart-configuration", "/.well-known/openid-configuration"):
        doc = requests.get(base_url + path).json()
        assert "client_credentials" in doc["grant_types_supported"]
        assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
        assert doc["token_endpoint_auth_signing_alg_values_supported"] == [
            "ES256", "ES384", "RS256", "RS384"]
    doc = requests.get(base_url + "/.well-known/smart-configuration").json()
    assert "client-confidential-asymmetric" in doc["capabilities"]
    assert {"system/*.rs", "system/*.read"} <= set(doc["scopes_supported"])


def test_client_credentials_token_is_not_stored(app, base_url, key, client):
    from sqlalchemy import func, select

    from authserver.extensions import db
    from authserver.models import Grant, RefreshToken

    for _ in range(3):
        assert cc_token(base_url, assertion(key, client["client_id"], base_url)
                        ).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Grant)) == 0
        assert db.session.scalar(select(func.count()).select_from(RefreshToken)) == 0


def test_client_credentials_token_is_live_until_revoked(app, base_url, key, client):
    from authserver import store
    token = cc_token(base_url, assertion(key, client["client_id"], base_url),
                     scope=SYSTEM_SCOPE).json()["access_token"]
    claims = _claims(base_url, token)
    with app.app_context():
        assert store.authorization.live_access_token(claims["jti"], claims.get("gid"),
                                                     claims["client_id"])[0]
        store.authorization.revoke_access_token(claims["jti"], claims["exp"])
        assert not store.authorization.live_access_token(claims["jti"], claims.get("gid"),
                                                         claims["client_id"])[0]


def test_token_endpoint_does_not_touch_the_session(app, base_url):
    c = backend_client(app, auth_method="client_secret_basic", scope="system/*.rs")
    resp = requests.post(base_url + "/token", auth=(c["client_id"], c["client_secret"]),
                         data={"grant_type": "client_credentials", "scope": "system/*.rs"})
    assert resp.status_code == 200
    assert "Set-Cookie" not in resp.headers
    assert "cookie" not in resp.headers.get("Vary", "").lower()
