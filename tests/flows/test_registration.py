"""RFC 7591 dynamic client registration."""

from __future__ import annotations

import requests

GOOD = {"client_name": "Dyn App", "redirect_uris": ["https://dyn.example/cb"],
        "token_endpoint_auth_method": "none", "scope": "openid fhirUser launch/patient "
        "patient/*.rs", "launch_uris": ["https://dyn.example/launch"]}


def test_register_public_client_returns_201_metadata(base_url):
    resp = requests.post(base_url + "/register", json=GOOD)
    assert resp.status_code == 201
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    assert body["client_id"] and "client_secret" not in body
    assert body["redirect_uris"] == GOOD["redirect_uris"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["launch_uris"] == GOOD["launch_uris"]
    assert isinstance(body["client_id_issued_at"], int)


def test_register_confidential_client_gets_secret_once(base_url):
    resp = requests.post(base_url + "/register",
                         json={**GOOD, "token_endpoint_auth_method": "client_secret_basic"})
    assert resp.status_code == 201
    body = resp.json()
    assert len(body["client_secret"]) >= 43 and body["client_secret_expires_at"] == 0


def test_registered_client_can_start_a_launch(base_url):
    body = requests.post(base_url + "/register", json=GOOD).json()
    resp = requests.get(base_url + "/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": body["client_id"],
        "redirect_uri": "https://dyn.example/cb", "scope": "openid patient/*.rs",
        "state": "s1", "aud": "http://127.0.0.1:8001/fhir",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"})
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/authorize/continue?req=")


def test_register_refuses_bad_redirect_uri(base_url):
    for uri in ("http://evil.example/cb", "https://x.example/cb#frag", "javascript:alert(1)",
                "notauri"):
        resp = requests.post(base_url + "/register", json={**GOOD, "redirect_uris": [uri]})
        assert resp.status_code == 400, uri
        assert resp.json()["error"] == "invalid_redirect_uri", uri


def test_register_refuses_backend_services(base_url):
    resp = requests.post(base_url + "/register", json={
        **GOOD, "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    resp = requests.post(base_url + "/register", json={**GOOD, "scope": "system/*.rs"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"


def test_register_refuses_private_jwks_and_bad_bodies(base_url):
    resp = requests.post(base_url + "/register", json={
        **GOOD, "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [{"kty": "EC", "kid": "k", "crv": "P-384", "x": "a", "y": "b",
                           "d": "secret"}]}})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    for body in (b"not json", b"[]", b'"x"', b'{"redirect_uris": "https://a.example/cb"}'):
        resp = requests.post(base_url + "/register", data=body,
                             headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, body
        assert resp.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    resp = requests.post(base_url + "/register", data="a=b")
    assert resp.status_code == 400
