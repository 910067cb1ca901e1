"""The developer page and the admin console, through real HTTP with CSRF tokens."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import requests

from tests.helpers import PASSWORD, OAuthFlow, csrf_of, make_client, make_user, sign_in_admin


def _sign_in(base_url: str, username: str, next_path: str) -> requests.Session:
    s = requests.Session()
    page = s.get(f"{base_url}/login?next={next_path}")
    resp = s.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                             "username": username, "password": PASSWORD,
                                             "next": next_path})
    assert resp.status_code == 200, resp.text[:300]
    return s


@pytest.fixture
def developer(app, base_url):
    make_user(app, "dev", role="developer", fhir_user=None)
    return _sign_in(base_url, "dev", "/developer")


def test_developer_registers_public_app(developer, base_url):
    page = developer.get(base_url + "/developer")
    resp = developer.post(base_url + "/developer", data={
        "csrf_token": csrf_of(page.text), "name": "My App", "kind": "public",
        "redirect_uris": "https://myapp.example/cb\nhttp://127.0.0.1:7000/cb",
        "scope": "openid launch/patient patient/*.rs"})
    assert resp.status_code == 200
    assert 'id="new-client-id"' in resp.text and 'id="new-client-secret"' not in resp.text
    assert "My App" in developer.get(base_url + "/developer").text


def test_developer_sees_confidential_secret_once(developer, base_url):
    page = developer.get(base_url + "/developer")
    resp = developer.post(base_url + "/developer", data={
        "csrf_token": csrf_of(page.text), "name": "Server App", "kind": "confidential",
        "redirect_uris": "https://server.example/cb", "scope": "openid patient/*.rs"})
    secret = re.search(r'id="new-client-secret" class="secret">([^<]+)<', resp.text).group(1)
    assert len(secret) >= 43
    assert secret not in developer.get(base_url + "/developer").text


def test_developer_page_refuses_bad_input_without_500(developer, base_url):
    page = developer.get(base_url + "/developer")
    token = csrf_of(page.text)
    for form in ({"name": "X", "kind": "public", "redirect_uris": "http://evil.example/cb"},
                 {"name": "X", "kind": "public", "redirect_uris": "https://a.example/cb",
                  "scope": "system/*.rs"},
                 {"name": "X", "kind": "backend", "scope": "patient/*.rs"},
                 {"name": "X", "kind": "asymmetric", "redirect_uris": "https://a.example/cb",
                  "jwks": "{nope"},
                 {"name": "X", "kind": "wizard"}):
        resp = developer.post(base_url + "/developer", data={"csrf_token": token, **form})
        assert resp.status_code == 400, form
        assert 'class="error"' in resp.text


def test_developer_post_without_csrf_is_refused(developer, base_url):
    resp = developer.post(base_url + "/developer", data={"name": "X", "kind": "public",
                                                         "redirect_uris": "https://a.example/cb"})
    assert resp.status_code == 400
    assert "My App" not in developer.get(base_url + "/developer").text


def test_backend_service_waits_for_admin_approval(app, developer, base_url):
    from authserver.keys import generate_key, load_kek, new_kek

    rec = generate_key("ES384", load_kek(new_kek()), datetime.now(UTC))
    jwks = json.dumps({"keys": [rec.public_jwk]})
    page = developer.get(base_url + "/developer")
    resp = developer.post(base_url + "/developer", data={
        "csrf_token": csrf_of(page.text), "name": "Bulk", "kind": "backend",
        "scope": "system/Observation.rs", "jwks": jwks})
    assert resp.status_code == 200, resp.text[:500]
    client_id = re.search(r'id="new-client-id">([^<]+)<', resp.text).group(1)
    assert "waits for an administrator" in resp.text
    with app.app_context():
        from authserver import store
        assert store.clients.find_client(client_id) is None  # disabled until approved
    s = sign_in_admin(app, base_url)
    resp = s.get(base_url + "/admin")
    resp = s.post(base_url + "/admin/apps", data={"csrf_token": csrf_of(resp.text),
                                                  "client_id": client_id, "action": "enable"})
    assert resp.status_code == 200
    with app.app_context():
        from authserver import store
        assert store.clients.find_client(client_id) is not None


def test_patient_cannot_open_developer_or_admin(app, base_url):
    make_user(app)
    s = _sign_in(base_url, "alice", "/account")
    assert s.get(base_url + "/developer").status_code == 403
    assert s.get(base_url + "/admin").status_code == 403


def test_signed_out_visitor_is_sent_to_sign_in(base_url):
    resp = requests.get(base_url + "/admin", allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login")


def test_admin_disabling_an_app_ends_its_grants(app, base_url):
    make_user(app)
    client = make_client(app)
    flow = OAuthFlow(base_url, client)
    token = flow.run()
    with app.app_context():
        from authserver.services import admin_console

        admin_console.set_client_enabled(client["client_id"], False, by=0)
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 400  # RFC 6749 §5.2: no Authorization header
    assert resp.json()["error"] in ("invalid_client", "invalid_grant")


def test_admin_adds_user_and_bad_input_is_a_page_error(app, base_url):
    s = sign_in_admin(app, base_url)
    page = s.get(base_url + "/admin")
    token = csrf_of(page.text)
    resp = s.post(base_url + "/admin/users", data={
        "csrf_token": token, "username": "drnew", "role": "clinician",
        "password": "long enough password", "fhir_user": "Practitioner/pr9"})
    assert resp.status_code == 200 and "drnew" in resp.text
    for form in ({"username": "drnew", "role": "clinician", "password": "long enough pw"},
                 {"username": "x1", "role": "wizard", "password": "long enough pw"},
                 {"username": "x2", "role": "patient", "password": "short"},
                 {"username": "x2", "role": "patient", "password": "qwerty123456"},
                 {"username": "x2bob", "role": "patient", "password": "hello x2bob, hi"},
                 {"username": "bad name!", "role": "patient", "password": "long enough pw"},
                 {"username": "x3", "role": "patient", "password": "long enough pw",
                  "fhir_user": "Practitioner/p1"}):
        resp = s.post(base_url + "/admin/users", data={"csrf_token": token, **form})
        assert resp.status_code == 400, form
        assert 'class="error"' in resp.text
    assert "at least 12 characters" in s.post(base_url + "/admin/users", data={
        "csrf_token": token, "username": "x2", "role": "patient", "password": "short"}).text
    resp = s.post(base_url + "/admin/user-state", data={"csrf_token": token,
                                                        "user_id": "not-a-number"})
    assert resp.status_code == 400


def test_developer_page_refuses_the_introspect_permission(app, developer, base_url):
    page = developer.get(base_url + "/developer")
    for kind in ("public", "confidential"):
        resp = developer.post(base_url + "/developer", data={
            "csrf_token": csrf_of(page.text), "name": "Peeker", "kind": kind,
            "redirect_uris": "https://peek.example/cb", "scope": "openid  introspect"})
        assert resp.status_code == 400, kind
        assert "introspect" in re.search(r'class="error"[^>]*>([^<]+)<', resp.text).group(1)
    with app.app_context():
        from authserver.services import admin_console

        assert admin_console.list_clients() == []


def test_developer_app_is_unverified_until_an_admin_approves(app, developer, base_url):
    page = developer.get(base_url + "/developer")
    resp = developer.post(base_url + "/developer", data={
        "csrf_token": csrf_of(page.text), "name": "My App", "kind": "public",
        "redirect_uris": "https://myapp.example/cb", "scope": "openid patient/*.rs"})
    client_id = re.search(r'id="new-client-id">([^<]+)<', resp.text).group(1)
    from authserver import store
    with app.app_context():
        row = store.clients.find_client(client_id)
        assert (row.verified, row.can_introspect) == (False, False)
    s = sign_in_admin(app, base_url)
    token = csrf_of(s.get(base_url + "/admin").text)
    for action in ("disable", "enable"):
        s.post(base_url + "/admin/apps", data={"csrf_token": token, "client_id": client_id,
                                               "action": action})
    with app.app_context():
        assert store.clients.find_client(client_id).verified is True


def test_admin_console_toggles_an_apps_introspect_permission(app, base_url):
    from tests.flows.test_introspection import introspect

    make_user(app)
    target = OAuthFlow(base_url, make_client(app), requests.Session()).run()
    caller = make_client(app, scope="system/*.rs", name="Introspector",
                         grant_types=["client_credentials"], auth_method="client_secret_basic")

    def service_token() -> dict:
        return requests.post(base_url + "/token", data={
            "grant_type": "client_credentials", "scope": "system/*.rs introspect"},
            auth=(caller["client_id"], caller["client_secret"])).json()

    unflagged = service_token()
    assert unflagged["scope"] == "system/*.rs"  # no flag: `introspect` is not granted
    bearer = {"Authorization": f"Bearer {unflagged['access_token']}"}
    assert introspect(base_url, target["access_token"], headers=bearer).status_code == 401
    s = sign_in_admin(app, base_url)
    page = s.get(base_url + "/admin")
    # The app list shows the permission and a form to change it.
    cid = re.escape(caller["client_id"])
    assert re.search(rf'name="client_id" value="{cid}">\s*no <button name="action" '
                     r'value="allow">', page.text)
    # Without the CSRF token nothing changes.
    resp = s.post(base_url + "/admin/apps/introspect",
                  data={"client_id": caller["client_id"], "action": "allow"})
    assert resp.status_code == 400
    assert introspect(base_url, target["access_token"], headers=bearer).status_code == 401
    resp = s.post(base_url + "/admin/apps/introspect", data={
        "csrf_token": csrf_of(page.text), "client_id": caller["client_id"], "action": "allow"})
    assert resp.status_code == 200 and "Administration" in resp.text
    perm = service_token()
    assert perm["scope"] == "system/*.rs introspect"
    bearer = {"Authorization": f"Bearer {perm['access_token']}"}
    assert introspect(base_url, target["access_token"], headers=bearer).json()["active"]
    resp = s.post(base_url + "/admin/apps/introspect", data={
        "csrf_token": csrf_of(page.text), "client_id": caller["client_id"], "action": "deny"})
    resp = introspect(base_url, target["access_token"], headers=bearer)
    assert resp.status_code == 401 and resp.json()["error"] == "insufficient_scope"
    resp = s.post(base_url + "/admin/apps/introspect", data={
        "csrf_token": csrf_of(page.text), "client_id": "no-such-app", "action": "allow"})
    assert resp.status_code == 400 and 'class="error"' in resp.text


def test_only_an_admin_may_toggle_the_introspect_permission(app, developer, base_url):
    client = make_client(app)
    page = developer.get(base_url + "/developer")
    resp = developer.post(base_url + "/admin/apps/introspect", data={
        "csrf_token": csrf_of(page.text), "client_id": client["client_id"],
        "action": "allow"})
    assert resp.status_code == 403
    with app.app_context():
        from authserver import store
        assert store.clients.find_client(client["client_id"]).can_introspect is False


def test_admin_console_sets_a_role_ceiling_that_narrows_the_next_grant(app, base_url):
    from tests.helpers import make_clinician, totp_code

    s = sign_in_admin(app, base_url)
    page = s.get(base_url + "/admin")
    assert 'id="ceiling-clinician"' in page.text
    token = csrf_of(page.text)
    # Without the CSRF token nothing changes; a system/ ceiling is refused with a message.
    assert s.post(base_url + "/admin/policy", data={
        "role": "clinician", "scope": "user/Patient.rs", "action": "set"}).status_code == 400
    bad = s.post(base_url + "/admin/policy", data={
        "csrf_token": token, "role": "clinician", "scope": "system/*.rs", "action": "set"})
    assert bad.status_code == 400 and "system/" in bad.text
    ok = s.post(base_url + "/admin/policy", data={
        "csrf_token": token, "role": "clinician", "scope": "user/Patient.rs user/Appointment.rs",
        "action": "set"})
    assert ok.status_code == 200 and 'value="user/Patient.rs user/Appointment.rs"' in ok.text
    doc = make_clinician(app)
    client = make_client(app, scope="openid user/*.rs")
    granted = OAuthFlow(base_url, client, requests.Session(), scope="openid user/*.rs").run(
        "drsmith", totp=totp_code(doc["secret"]))
    assert granted["scope"] == "openid user/Patient.rs user/Appointment.rs"
    s.post(base_url + "/admin/policy", data={"csrf_token": token, "role": "clinician",
                                             "action": "unset"})
    granted = OAuthFlow(base_url, client, requests.Session(), scope="openid user/*.rs").run(
        "drsmith", totp=totp_code(doc["secret"], ahead=1))
    assert granted["scope"] == "openid user/*.rs"
