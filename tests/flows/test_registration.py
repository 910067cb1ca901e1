"""RFC 7591 dynamic client registration, with its bounds (issue 11), over real HTTP.

https://www.rfc-editor.org/rfc/rfc7591 (§3 the initial access token) and RFC 6750 §3
(its bearer challenge). Written as an attacker would: without, with a forged, expired,
revoked or spent token; oversized, deep and junk bodies; floods from one address.
"""

from __future__ import annotations

import json
import threading

import pytest
import requests

GOOD = {"client_name": "Dyn App", "redirect_uris": ["https://dyn.example/cb"],
        "token_endpoint_auth_method": "none", "scope": "openid fhirUser launch/patient "
        "patient/*.rs", "launch_uris": ["https://dyn.example/launch"]}


def registration_token(app, uses: int = 1, lifetime: int = 3600) -> str:
    from authserver.services import admin_console

    with app.app_context():
        return admin_console.create_registration_token(uses=uses, lifetime=lifetime)[
            "registration_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(app) -> dict[str, str]:
    """An Authorization header with an initial access token good for 20 registrations."""
    return bearer(registration_token(app, uses=20))


def register(base_url: str, body=None, headers=None, **kw) -> requests.Response:
    return requests.post(base_url + "/register", json=GOOD if body is None else body,
                         headers=headers or {}, **kw)


def _clients(app) -> int:
    from sqlalchemy import func, select

    from authserver.extensions import db
    from authserver.models import Client

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Client))


def _uses(app) -> list[int]:
    from sqlalchemy import select

    from authserver.extensions import db
    from authserver.models import RegistrationToken

    with app.app_context():
        return list(db.session.scalars(select(RegistrationToken.uses)
                                       .order_by(RegistrationToken.id)))


# ---- what a well-behaved developer sees ------------------------------------------------

def test_register_public_client_returns_201_metadata(base_url, auth):
    resp = register(base_url, headers=auth)
    assert resp.status_code == 201
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    assert body["client_id"] and "client_secret" not in body
    assert body["redirect_uris"] == GOOD["redirect_uris"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["launch_uris"] == GOOD["launch_uris"]
    assert isinstance(body["client_id_issued_at"], int)


def test_register_confidential_client_gets_secret_once(base_url, auth):
    resp = register(base_url, {**GOOD, "token_endpoint_auth_method": "client_secret_basic"},
                    headers=auth)
    assert resp.status_code == 201
    body = resp.json()
    assert len(body["client_secret"]) >= 43 and body["client_secret_expires_at"] == 0


def test_registered_client_can_start_a_launch(base_url, auth):
    body = register(base_url, headers=auth).json()
    resp = requests.get(base_url + "/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": body["client_id"],
        "redirect_uri": "https://dyn.example/cb", "scope": "openid patient/*.rs",
        "state": "s1", "aud": "http://127.0.0.1:8001/fhir",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"})
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/authorize/continue?req=")


def test_self_registered_app_is_not_verified_and_has_no_permissions(app, base_url, auth):
    from authserver import store
    client_id = register(base_url, headers=auth).json()["client_id"]
    with app.app_context():
        row = store.clients.find_client(client_id)
        assert (row.verified, row.can_introspect, row.can_launch) == (False, False, False)


# ---- the initial access token (RFC 7591 §3, RFC 6750 §3) -------------------------------

def test_register_without_initial_access_token_is_401(app, base_url):
    resp = register(base_url)
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"
    challenge = resp.headers["WWW-Authenticate"]
    # RFC 6750 §3.1: no error code in the challenge when no token was sent.
    assert challenge.startswith("Bearer realm=") and "error=" not in challenge
    assert resp.headers["Cache-Control"] == "no-store"
    assert _clients(app) == 0


@pytest.mark.parametrize("header", [
    "Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "bearer " + "x" * 5000,
    "Bearer a\x00b",
])
def test_register_with_a_bad_or_foreign_credential_is_401(app, base_url, header):
    resp = register(base_url, headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
    assert _clients(app) == 0


def test_register_with_an_expired_token_is_401(app, base_url):
    from sqlalchemy import update

    from authserver.extensions import db
    from authserver.models import RegistrationToken

    token = registration_token(app)
    with app.app_context():
        db.session.execute(update(RegistrationToken).values(expires_at=1))
        db.session.commit()
    resp = register(base_url, headers=bearer(token))
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_register_with_a_revoked_token_is_401(app, base_url):
    from authserver.services import admin_console

    with app.app_context():
        made = admin_console.create_registration_token(uses=5)
        admin_console.revoke_registration_token(made["id"])
    resp = register(base_url, headers=bearer(made["registration_token"]))
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"


def test_register_token_is_spent_after_its_uses(app, base_url):
    token = registration_token(app, uses=2)
    assert register(base_url, headers=bearer(token)).status_code == 201
    assert register(base_url, headers=bearer(token)).status_code == 201
    resp = register(base_url, headers=bearer(token))
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"
    assert _clients(app) == 2 and _uses(app) == [2]


def test_refused_registration_spends_no_use(app, base_url):
    token = registration_token(app, uses=1)
    resp = register(base_url, {**GOOD, "redirect_uris": ["http://evil.example/cb"]},
                    headers=bearer(token))
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_redirect_uri"
    assert _uses(app) == [0]
    assert register(base_url, headers=bearer(token)).status_code == 201


def test_racing_registrations_cannot_overspend_a_token(app, base_url):
    app.config["REGISTRATION_RATE_LIMIT"] = "1000 per minute"
    token = registration_token(app, uses=3)
    statuses: list[int] = []
    start = threading.Barrier(12)

    def attempt() -> None:
        start.wait()
        statuses.append(register(base_url, headers=bearer(token), timeout=60).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] * 3 + [401] * 9
    assert _clients(app) == 3 and _uses(app) == [3]


def test_open_registration_needs_no_token(app, base_url):
    app.config["OPEN_REGISTRATION"] = 1
    resp = register(base_url)
    assert resp.status_code == 201, resp.text


# ---- bounds ------------------------------------------------------------------------------

def test_register_body_over_16_kib_is_invalid_client_metadata(app, base_url, auth):
    from authserver.services.registration import MAX_BODY_BYTES

    def padded(size: int) -> bytes:
        empty = len(json.dumps({**GOOD, "x": ""}))
        return json.dumps({**GOOD, "x": "p" * (size - empty)}).encode()

    exact = padded(MAX_BODY_BYTES)
    assert len(exact) == MAX_BODY_BYTES
    json_type = {**auth, "Content-Type": "application/json"}
    assert requests.post(base_url + "/register", data=exact,
                         headers=json_type).status_code == 201
    over = padded(MAX_BODY_BYTES + 1)
    resp = requests.post(base_url + "/register", data=over, headers=json_type)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    # Without a Content-Length (chunked), the same limit.
    resp = requests.post(base_url + "/register", data=iter([over[:9000], over[9000:]]),
                         headers=json_type)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    # Far over (past the application-wide limit too): still the RFC 7591 error.
    resp = requests.post(base_url + "/register", data=b"[" * 300_000, headers=json_type)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    assert _clients(app) == 1


def test_register_more_than_20_redirect_uris_is_invalid_client_metadata(app, base_url, auth):
    uris = [f"https://dyn.example/cb{i}" for i in range(21)]
    resp = register(base_url, {**GOOD, "redirect_uris": uris}, headers=auth)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    assert register(base_url, {**GOOD, "redirect_uris": uris[:20]}, headers=auth
                    ).status_code == 201
    resp = register(base_url, {**GOOD, "launch_uris": uris}, headers=auth)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    assert _uses(app) == [1]


@pytest.mark.parametrize("body", [
    b"[" * 8000 + b"]" * 8000,                                     # past the parser's stack
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    json.dumps({**GOOD, "jwks": {"keys": [{"x": [[[[[[[[[[1]]]]]]]]]]}]}}).encode(),  # depth 13
    json.dumps({**GOOD, "contacts": [[[[[[[[[[["a"]]]]]]]]]]]}).encode(),           # depth 12
])
def test_register_deeply_nested_json_is_invalid_client_metadata(app, base_url, auth, body):
    resp = requests.post(base_url + "/register", data=body,
                         headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_client_metadata"
    assert _clients(app) == 0


def test_register_nesting_of_real_metadata_is_accepted(base_url, auth):
    # jwks with an x5c array is the deepest legitimate metadata (depth 4).
    resp = register(base_url, {**GOOD, "contacts": ["a@example.org"],
                               "jwks": {"keys": [{"kty": "EC", "kid": "k1", "crv": "P-256",
                                                  "x": "x", "y": "y", "x5c": ["AA"]}]}},
                    headers=auth)
    # (these coordinates are not a real key: refused for that, not for nesting)
    assert resp.status_code == 400
    assert "nested" not in resp.json()["error_description"]


def test_register_eleventh_attempt_a_minute_from_one_address_is_429(app, base_url):
    token = registration_token(app, uses=20)
    for i in range(10):
        body = GOOD if i % 2 else {**GOOD, "redirect_uris": "nope"}
        assert register(base_url, body, headers=bearer(token)).status_code == (
            201 if i % 2 else 400)
    resp = register(base_url, headers=bearer(token))
    assert resp.status_code == 429
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["error"] == "slow_down" and resp.json()["error_description"]
    assert int(resp.headers["Retry-After"]) > 0
    assert _uses(app) == [5]  # the refused attempt spent nothing
    # Attempts without a token count too (no free guessing).
    assert register(base_url).status_code == 429


# ---- what self-service may not register ------------------------------------------------

def test_register_refuses_bad_redirect_uri(base_url, auth):
    for uri in ("http://evil.example/cb", "https://x.example/cb#frag", "javascript:alert(1)",
                "notauri", "https://" + "h" * 250 + ".example/cb", "https://a.example/c b",
                "https://a.example/\x00", "https://a.example/cb\r\nX: y"):
        resp = register(base_url, {**GOOD, "redirect_uris": [uri]}, headers=auth)
        assert resp.status_code == 400, uri
        assert resp.json()["error"] == "invalid_redirect_uri", uri


def test_register_refuses_backend_services(base_url, auth):
    resp = register(base_url, {**GOOD, "grant_types": ["client_credentials"],
                               "token_endpoint_auth_method": "client_secret_basic"},
                    headers=auth)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    resp = register(base_url, {**GOOD, "scope": "system/*.rs"}, headers=auth)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"


def test_register_refuses_the_introspect_permission(app, base_url, auth):
    for scope in ("introspect", "openid introspect patient/*.rs"):
        resp = register(base_url, {**GOOD, "scope": scope}, headers=auth)
        assert resp.status_code == 400, scope
        assert resp.json()["error"] == "invalid_client_metadata"
        assert "'introspect'" in resp.json()["error_description"]
    assert _clients(app) == 0 and _uses(app) == [0]


def test_register_refuses_private_jwks_and_bad_bodies(base_url, auth):
    resp = register(base_url, {
        **GOOD, "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [{"kty": "EC", "kid": "k", "crv": "P-384", "x": "a", "y": "b",
                           "d": "secret"}]}}, headers=auth)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    for body in (b"not json", b"[]", b'"x"', b'{"redirect_uris": "https://a.example/cb"}',
                 b"\xff\xfe{}", '{"client_name": "caf\xe9"}'.encode("latin-1"), b""):
        resp = requests.post(base_url + "/register", data=body,
                             headers={**auth, "Content-Type": "application/json"})
        assert resp.status_code == 400, body
        assert resp.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    resp = requests.post(base_url + "/register", data="a=b", headers=auth)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"


def test_register_refuses_nul_and_control_characters(app, base_url, auth):
    # PostgreSQL refuses NUL in text: refused as bad metadata, never a 500.
    for body in ({**GOOD, "client_name": "a\x00b"}, {**GOOD, "software_id": "\x00"},
                 {**GOOD, "x\x00": 1}, {**GOOD, "contacts": ["a@b\x00"]},
                 {**GOOD, "client_name": "Evil\x1b[31m"},
                 {**GOOD, "logo_uri": "https://a.example/\x7f"}):
        resp = register(base_url, body, headers=auth)
        assert resp.status_code == 400, body
        assert resp.json()["error"] == "invalid_client_metadata", body
    assert _clients(app) == 0
