"""POST /introspect: RFC 7662 as profiled by SMART App Launch 2.2, over real HTTP.

https://www.rfc-editor.org/rfc/rfc7662 and
https://hl7.org/fhir/smart-app-launch/token-introspection.html
"""

from __future__ import annotations

import base64
import json
import threading

import jwt
import pytest
import requests
from werkzeug.serving import make_server

from tests.helpers import (
    EHR_SCOPES,
    FHIR_BASE,
    OAuthFlow,
    make_client,
    make_clinician,
    make_launch,
    make_user,
    totp_code,
)

INACTIVE = {"active": False}


def resource_server(app) -> tuple[str, str]:
    from authserver.services import admin_console

    with app.app_context():
        rs = admin_console.create_resource_server("FHIR server")
    return rs["client_id"], rs["client_secret"]


def introspect(base_url: str, token: str, auth=None, headers=None, **extra) -> requests.Response:
    return requests.post(base_url + "/introspect", data={"token": token, **extra}, auth=auth,
                         headers=headers or {})


def sign(app, claims: dict, typ: str = "at+jwt") -> str:
    from authserver.oauth import keystore

    with app.app_context():
        return keystore.get_signer().sign(claims, typ=typ)


@pytest.fixture
def launched(app, base_url, http) -> dict:
    """A patient launch (openid fhirUser offline_access patient/*.rs) and a resource server."""
    make_user(app)
    client = make_client(app)
    flow = OAuthFlow(base_url, client, http)
    token = flow.run()
    return {"token": token, "client": client, "flow": flow, "rs": resource_server(app)}


def test_introspect_active_access_token_has_smart_fields(launched, base_url):
    token = launched["token"]
    resp = introspect(base_url, token["access_token"], auth=launched["rs"])
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    id_token = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert body["active"] is True
    # SMART: scope exactly as the token response gave it; client_id; exp.
    assert body["scope"] == token["scope"]
    assert body["client_id"] == launched["client"]["client_id"]
    assert body["exp"] - body["iat"] == token["expires_in"]
    assert body["token_type"] == "Bearer"
    assert body["iss"] == base_url and body["aud"] == FHIR_BASE
    # Launch context from the token response, id_token iss/sub/fhirUser.
    assert body["patient"] == token["patient"] == "p1"
    assert body["sub"] == id_token["sub"]
    assert body["fhirUser"] == id_token["fhirUser"] == FHIR_BASE + "/Patient/p1"


def test_introspect_response_repeats_every_launch_context_parameter(app, base_url):
    user = make_clinician(app)
    client = make_client(app, scope=EHR_SCOPES, auth_method="client_secret_basic")
    launch = make_launch(app, patient="p9", encounter="e1", intent="reconcile-medications",
                         need_patient_banner=True, username="drsmith",
                         fhir_context=[{"reference": "DiagnosticReport/d1"}])["launch"]
    flow = OAuthFlow(base_url, client, requests.Session(), scope=EHR_SCOPES,
                     extra={"launch": launch})
    token = flow.run("drsmith", totp=totp_code(user["secret"]))
    body = introspect(base_url, token["access_token"], auth=resource_server(app)).json()
    for name in ("patient", "encounter", "fhirContext", "intent", "need_patient_banner"):
        assert body[name] == token[name], name
    assert body["intent"] == "reconcile-medications" and body["encounter"] == "e1"
    assert body["scope"] == token["scope"]


def test_introspect_refresh_token_is_active_until_rotated(launched, base_url):
    token = launched["token"]
    body = introspect(base_url, token["refresh_token"], auth=launched["rs"],
                      token_type_hint="refresh_token").json()
    assert body["active"] is True
    assert body["client_id"] == launched["client"]["client_id"]
    assert body["scope"] == token["scope"] and body["patient"] == "p1"
    assert body["exp"] > body["iat"]
    assert launched["flow"].refresh(token["refresh_token"]).status_code == 200
    resp = introspect(base_url, token["refresh_token"], auth=launched["rs"])
    assert resp.status_code == 200 and resp.json() == INACTIVE


def test_introspect_wrong_hint_still_finds_the_token(launched, base_url):
    body = introspect(base_url, launched["token"]["access_token"], auth=launched["rs"],
                      token_type_hint="refresh_token").json()
    assert body["active"] is True
    body = introspect(base_url, launched["token"]["access_token"], auth=launched["rs"],
                      token_type_hint="no_such_type").json()
    assert body["active"] is True


GARBAGE = [
    "x", "a.b.c", "a.b", "é" * 20, "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "." * 5000,
    base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"nope"}').decode() + ".e30.c2ln",
]


def test_introspect_malformed_or_unknown_token_is_inactive(launched, base_url):
    for garbage in GARBAGE:
        resp = introspect(base_url, garbage, auth=launched["rs"])
        assert resp.status_code == 200, garbage
        assert resp.json() == INACTIVE, garbage


def test_introspect_tampered_token_is_inactive(launched, base_url):
    header, payload, sig = launched["token"]["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["patient"] = "p2"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert introspect(base_url, f"{header}.{forged}.{sig}", auth=launched["rs"]).json() == INACTIVE


def test_non_ascii_in_a_well_formed_token_is_inactive_not_500(launched, base_url):
    """Our header (a known kid) and signature with a non-ASCII payload segment: the JWS is
    malformed, so the token is inactive at /introspect, refused at /userinfo, and /revoke
    answers 200 (RFC 7009 §2.2), never a 500."""
    header, payload, sig = launched["token"]["access_token"].split(".")
    for odd in (f"{header}.{payload}\u00e9.{sig}", f"{header}.\u2603.{sig}",
                f"{header}.{payload}.{sig}\u00e9"):
        assert introspect(base_url, odd, auth=launched["rs"]).json() == INACTIVE, odd
        resp = requests.get(base_url + "/userinfo", headers={
            "Authorization": ("Bearer " + odd).encode()}, timeout=10)  # UTF-8 bytes
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_token", odd
        cid = launched["client"]["client_id"]
        resp = requests.post(base_url + "/revoke", data={"token": odd, "client_id": cid},
                             timeout=10)
        assert resp.status_code == 200, odd


def test_introspect_id_token_is_inactive(launched, base_url):
    # RFC 9068 §4: typ must be at+jwt: an id_token signed by the same key is not an access token.
    assert introspect(base_url, launched["token"]["id_token"],
                      auth=launched["rs"]).json() == INACTIVE


def _claims(base_url: str, **over) -> dict:
    import time

    t = int(time.time())
    claims = {"iss": base_url, "sub": "1", "aud": FHIR_BASE, "exp": t + 60, "iat": t,
              "jti": "j-" + str(t), "client_id": "c", "scope": "patient/*.rs"}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


BAD_CLAIMS = [
    {"exp": 1}, {"iss": "https://evil.example"}, {"jti": None}, {"client_id": None},
    {"sub": None}, {"exp": "9999999999"}, {"exp": True}, {"iat": None}, {"scope": ["a"]},
    {"jti": "x" * 65}, {"gid": 5},
]


def test_introspect_signed_token_with_bad_claims_is_inactive(launched, app, base_url):
    for over in BAD_CLAIMS:
        token = sign(app, _claims(base_url, **over))
        assert introspect(base_url, token, auth=launched["rs"]).json() == INACTIVE, over
    token = sign(app, _claims(base_url), typ="JWT")
    assert introspect(base_url, token, auth=launched["rs"]).json() == INACTIVE


def test_introspect_signed_token_with_good_claims_is_active(launched, app, base_url):
    # The control for the case above: the same construction, nothing wrong, is active.
    token = sign(app, _claims(base_url, client_id=launched["client"]["client_id"]))
    assert introspect(base_url, token, auth=launched["rs"]).json()["active"] is True


def test_introspect_grantless_token_of_unknown_client_is_inactive(launched, app, base_url):
    token = sign(app, _claims(base_url, client_id="no-such-client"))
    assert introspect(base_url, token, auth=launched["rs"]).json() == INACTIVE


def test_introspect_token_of_unknown_grant_is_inactive(launched, app, base_url):
    token = sign(app, _claims(base_url, gid="0" * 32))
    assert introspect(base_url, token, auth=launched["rs"]).json() == INACTIVE


def test_introspect_without_authentication_is_401(launched, base_url):
    resp = introspect(base_url, launched["token"]["access_token"])
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    assert "active" not in resp.json()
    challenges = resp.headers["WWW-Authenticate"]
    assert "Basic" in challenges and "Bearer" in challenges


def test_introspect_with_wrong_resource_server_secret_is_401(launched, base_url):
    rs_id, _ = launched["rs"]
    resp = introspect(base_url, launched["token"]["access_token"], auth=(rs_id, "wrong"))
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    assert 'error="invalid_client"' in resp.headers["WWW-Authenticate"]


def test_introspect_with_malformed_basic_header_is_401(launched, base_url):
    resp = introspect(base_url, launched["token"]["access_token"],
                      headers={"Authorization": "Basic //////"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


def test_introspect_public_client_cannot_authenticate(launched, base_url):
    resp = introspect(base_url, launched["token"]["access_token"],
                      client_id=launched["client"]["client_id"])
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


def test_introspect_missing_token_is_invalid_request(launched, base_url):
    resp = requests.post(base_url + "/introspect", data={}, auth=launched["rs"])
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"


def test_app_introspects_only_its_own_tokens(app, base_url):
    make_user(app)
    mine = make_client(app, auth_method="client_secret_basic", name="Mine")
    other = make_client(app, auth_method="client_secret_post", name="Other")
    token = OAuthFlow(base_url, mine, requests.Session()).run()
    auth = (mine["client_id"], mine["client_secret"])
    assert introspect(base_url, token["access_token"], auth=auth).json()["active"] is True
    resp = introspect(base_url, token["access_token"], client_id=other["client_id"],
                      client_secret=other["client_secret"])
    assert resp.status_code == 200 and resp.json() == INACTIVE


def _introspector(app, base_url) -> dict:
    """A backend service an administrator allowed to introspect, and its bearer token."""
    caller = make_client(app, scope="system/*.rs", grant_types=["client_credentials"],
                         auth_method="client_secret_basic", name="Introspector",
                         can_introspect=True)
    resp = requests.post(base_url + "/token", data={
        "grant_type": "client_credentials", "scope": "system/*.rs introspect"},
        auth=(caller["client_id"], caller["client_secret"]))
    assert resp.status_code == 200, resp.text
    return {**resp.json(), "client_id": caller["client_id"]}


def test_bearer_token_with_introspect_scope_may_introspect(app, base_url):
    # Both conditions: an administrator flagged the client (can_introspect) AND the token
    # carries the 'introspect' scope.
    make_user(app)
    target = OAuthFlow(base_url, make_client(app), requests.Session()).run()
    perm = _introspector(app, base_url)
    assert perm["scope"] == "system/*.rs introspect"
    resp = introspect(base_url, target["access_token"],
                      headers={"Authorization": f"Bearer {perm['access_token']}"})
    assert resp.status_code == 200
    assert resp.json()["active"] is True and resp.json()["patient"] == "p1"


def test_introspect_scope_is_never_granted_by_a_person(app, base_url):
    """An app that asks a patient (or anyone) for `introspect` does not get it: the
    permission is an administrator's to give, in client_credentials only."""
    make_user(app)
    caller = make_client(app, scope="openid introspect", name="Self-made introspector")
    token = OAuthFlow(base_url, caller, requests.Session(), scope="openid introspect").run()
    assert token["scope"] == "openid"


def test_introspect_scope_needs_the_administrator_flag(app, base_url):
    caller = make_client(app, scope="system/*.rs introspect",
                         grant_types=["client_credentials"],
                         auth_method="client_secret_basic", redirect_uris=[])
    resp = requests.post(base_url + "/token", data={
        "grant_type": "client_credentials", "scope": "system/*.rs introspect"},
        auth=(caller["client_id"], caller["client_secret"]))
    assert resp.status_code == 200 and resp.json()["scope"] == "system/*.rs"


def test_bearer_token_with_introspect_scope_but_no_admin_flag_is_401(app, base_url):
    make_user(app)
    target = OAuthFlow(base_url, make_client(app), requests.Session()).run()
    caller = make_client(app, scope="openid introspect", name="Not flagged")
    perm = OAuthFlow(base_url, caller, requests.Session(), scope="openid introspect").run()
    resp = introspect(base_url, target["access_token"],
                      headers={"Authorization": f"Bearer {perm['access_token']}"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "insufficient_scope"
    assert "active" not in resp.json()


def test_taking_the_introspect_flag_away_stops_issued_tokens_at_once(app, base_url):
    from authserver.services import admin_console

    make_user(app)
    target = OAuthFlow(base_url, make_client(app), requests.Session()).run()
    perm = _introspector(app, base_url)
    caller = {"client_id": perm["client_id"]}
    bearer = {"Authorization": f"Bearer {perm['access_token']}"}
    assert introspect(base_url, target["access_token"], headers=bearer).json()["active"]
    with app.app_context():
        assert admin_console.set_client_introspect(caller["client_id"], False) == {
            "client_id": caller["client_id"], "can_introspect": False}
    resp = introspect(base_url, target["access_token"], headers=bearer)
    assert resp.status_code == 401 and resp.json()["error"] == "insufficient_scope"


def test_flagged_app_may_introspect_others_tokens_with_its_own_credentials(app, base_url):
    make_user(app)
    target = OAuthFlow(base_url, make_client(app), requests.Session()).run()
    flagged = make_client(app, auth_method="client_secret_basic", name="Flagged",
                          can_introspect=True)
    body = introspect(base_url, target["access_token"],
                      auth=(flagged["client_id"], flagged["client_secret"])).json()
    assert body["active"] is True


def test_self_registered_app_never_gets_to_introspect_another_apps_token(app, base_url):
    """The attacker: a developer who registers an app by /register or the developer page,
    asking for 'introspect', then tries every way to read a victim app's token."""
    import re

    from tests.flows.test_portal import _sign_in
    from tests.flows.test_registration import registration_token
    from tests.helpers import csrf_of

    make_user(app)
    victim = OAuthFlow(base_url, make_client(app, name="Victim"), requests.Session()).run()
    ask = {"client_name": "Totally legit", "redirect_uris": ["http://127.0.0.1:9999/callback"],
           "token_endpoint_auth_method": "client_secret_basic",
           "scope": "openid introspect patient/*.rs"}
    auth = {"Authorization": "Bearer " + registration_token(app, uses=5)}
    # 1. /register refuses the permission outright (no client is made).
    resp = requests.post(base_url + "/register", json=ask, headers=auth)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client_metadata"
    assert "introspect" in resp.json()["error_description"]
    # 2. So does the developer page.
    make_user(app, "mallory", role="developer", fhir_user=None)
    dev = _sign_in(base_url, "mallory", "/developer")
    page = dev.get(base_url + "/developer")
    resp = dev.post(base_url + "/developer", data={
        "csrf_token": csrf_of(page.text), "name": "Sneaky", "kind": "confidential",
        "redirect_uris": "https://sneaky.example/cb", "scope": "openid introspect"})
    assert resp.status_code == 400 and 'class="error"' in resp.text
    assert not re.search(r'id="new-client-id"', resp.text)
    # 3. Registered without it, the app cannot obtain it at /authorize (scopes narrow to
    #    the registration) ...
    reg = requests.post(base_url + "/register", headers=auth, json={
        **ask, "scope": "openid patient/*.rs"}).json()
    token = OAuthFlow(base_url, reg, requests.Session(), scope="openid introspect").run()
    assert "introspect" not in token["scope"].split()
    resp = introspect(base_url, victim["access_token"],
                      headers={"Authorization": f"Bearer {token['access_token']}"})
    assert resp.status_code == 401 and resp.json()["error"] == "insufficient_scope"
    # 4. ... and even a token of ours that carried 'introspect' for it (say, a consent bug)
    #    is refused: the client lacks the administrator's flag.
    forged = sign(app, _claims(base_url, client_id=reg["client_id"], scope="introspect"))
    resp = introspect(base_url, victim["access_token"],
                      headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code == 401 and resp.json()["error"] == "insufficient_scope"
    # 5. Its own client credentials show it only its own tokens.
    resp = introspect(base_url, victim["access_token"],
                      auth=(reg["client_id"], reg["client_secret"]))
    assert resp.status_code == 200 and resp.json() == INACTIVE


def test_introspect_with_two_authentication_methods_is_invalid_request(launched, base_url):
    rs_id, rs_secret = launched["rs"]
    token = launched["token"]["access_token"]
    resp = introspect(base_url, token, auth=launched["rs"], client_secret=rs_secret)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    resp = introspect(base_url, token, headers={"Authorization": f"Bearer {token}"},
                      client_id=rs_id, client_secret=rs_secret)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    resp = introspect(base_url, token, auth=launched["rs"], client_id="someone-else")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_introspect_with_non_utf8_basic_credentials_is_401(launched, base_url):
    for raw in (b"\xff\xfe:\xfd", b"caf\xe9:secret", b"ok:\xff"):
        resp = introspect(base_url, launched["token"]["access_token"], headers={
            "Authorization": "Basic " + base64.b64encode(raw).decode()})
        assert resp.status_code == 401, raw
        assert resp.json()["error"] == "invalid_client"


def test_bearer_token_without_introspect_scope_is_401(launched, base_url):
    token = launched["token"]["access_token"]
    resp = introspect(base_url, token, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "insufficient_scope"
    assert 'scope="introspect"' in resp.headers["WWW-Authenticate"]


def test_bearer_token_that_is_not_active_is_401(launched, base_url):
    resp = introspect(base_url, launched["token"]["access_token"],
                      headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_introspect_client_credentials_token(app, base_url):
    c = make_client(app, auth_method="client_secret_basic", scope="system/*.rs",
                    grant_types=["client_credentials"], redirect_uris=[])
    resp = requests.post(base_url + "/token", auth=(c["client_id"], c["client_secret"]),
                         data={"grant_type": "client_credentials", "scope": "system/Patient.rs"})
    assert resp.status_code == 200, resp.text
    token = resp.json()
    body = introspect(base_url, token["access_token"], auth=resource_server(app)).json()
    assert body["active"] is True
    assert body["scope"] == "system/Patient.rs"
    assert body["sub"] == body["client_id"] == c["client_id"]
    assert "patient" not in body


def test_revocation_is_seen_at_once_by_another_instance(launched, app, base_url, tmp_path):
    """Two app instances on one database: revoke through one, introspect through the other."""
    from authserver.app import create_app

    other = create_app({**{k: app.config[k] for k in (
        "DATABASE_URL", "KEY_ENCRYPTION_KEY", "SECRET_KEY", "ISSUER", "FHIR_BASE_URL")},
        "INSTANCE_PATH": str(tmp_path / "other"), "TESTING": True})
    server = make_server("127.0.0.1", 0, other, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    other_url = f"http://127.0.0.1:{server.server_port}"
    try:
        token = launched["token"]["access_token"]
        assert introspect(other_url, token, auth=launched["rs"]).json()["active"] is True
        resp = requests.post(base_url + "/revoke", data={
            "token": token, "client_id": launched["client"]["client_id"]})
        assert resp.status_code == 200
        assert introspect(other_url, token, auth=launched["rs"]).json() == INACTIVE
    finally:
        server.shutdown()
        server.server_close()
        with other.app_context():
            from authserver.extensions import db

            db.session.remove()
            db.engine.dispose()


def test_discovery_advertises_token_lifecycle_endpoints(base_url):
    doc = requests.get(base_url + "/.well-known/smart-configuration").json()
    assert doc["introspection_endpoint"] == base_url + "/introspect"
    assert doc["revocation_endpoint"] == base_url + "/revoke"
    assert doc["management_endpoint"] == base_url + "/account"
    oidc = requests.get(base_url + "/.well-known/openid-configuration").json()
    assert oidc["userinfo_endpoint"] == base_url + "/userinfo"
