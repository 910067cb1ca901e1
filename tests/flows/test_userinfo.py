"""GET/POST /userinfo: OpenID Connect Core 1.0 §5.3, with RFC 6750 errors.

https://openid.net/specs/openid-connect-core-1_0.html#UserInfo
"""

from __future__ import annotations

import jwt
import pytest
import requests

from tests.helpers import FHIR_BASE, OAuthFlow, make_client, make_user

FULL = "openid fhirUser profile email launch/patient patient/*.rs"


def userinfo(base_url: str, token: str | None, method: str = "GET") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, base_url + "/userinfo", headers=headers)


@pytest.fixture
def user(app) -> dict:
    return make_user(app, email="alice@example.org")


def _token(app, base_url: str, scope: str) -> dict:
    client = make_client(app, scope=FULL + " offline_access")
    return OAuthFlow(base_url, client, requests.Session(), scope=scope).run()


def test_userinfo_returns_claims_of_granted_scopes(user, app, base_url):
    token = _token(app, base_url, FULL)
    resp = userinfo(base_url, token["access_token"])
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    id_token = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert resp.json() == {"sub": id_token["sub"], "fhirUser": FHIR_BASE + "/Patient/p1",
                           "name": "Alice Example", "email": "alice@example.org"}
    assert userinfo(base_url, token["access_token"], "POST").json() == resp.json()


def test_userinfo_leaves_out_claims_of_scopes_not_granted(user, app, base_url):
    token = _token(app, base_url, "openid launch/patient patient/*.rs")
    body = userinfo(base_url, token["access_token"]).json()
    assert set(body) == {"sub"}


def test_userinfo_without_token_is_401_without_error_code(user, base_url):
    resp = userinfo(base_url, None)
    assert resp.status_code == 401
    # RFC 6750 §3.1: no error code when the request has no authentication information.
    assert resp.headers["WWW-Authenticate"] == f'Bearer realm="{base_url}"'
    assert resp.json()["error"] == "invalid_request"


def test_userinfo_with_bad_token_is_401_invalid_token(user, base_url):
    resp = userinfo(base_url, "not-a-token")
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_userinfo_with_basic_credentials_is_401(user, base_url):
    resp = requests.get(base_url + "/userinfo", auth=("a", "b"))
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer ")


def test_userinfo_without_openid_scope_is_403_insufficient_scope(user, app, base_url):
    token = _token(app, base_url, "launch/patient patient/*.rs")
    resp = userinfo(base_url, token["access_token"])
    assert resp.status_code == 403
    assert resp.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    assert 'scope="openid"' in resp.headers["WWW-Authenticate"]


def test_userinfo_with_revoked_token_is_401(user, app, base_url):
    token = _token(app, base_url, FULL)
    client_id = jwt.decode(token["access_token"], options={"verify_signature": False})[
        "client_id"]
    assert requests.post(base_url + "/revoke", data={
        "token": token["access_token"], "client_id": client_id}).status_code == 200
    resp = userinfo(base_url, token["access_token"])
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"


def test_userinfo_id_token_is_not_an_access_token(user, app, base_url):
    token = _token(app, base_url, FULL)
    assert userinfo(base_url, token["id_token"]).status_code == 401


def test_userinfo_preflight_allows_authorization_header(base_url):
    resp = requests.options(base_url + "/userinfo", headers={"Origin": "https://app.example"})
    assert resp.status_code == 204
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
