"""/account: connected apps and "Revoke access" (SMART management_endpoint;
ONC §170.315(g)(10)(vi): revocation at the patient's direction)."""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.flows.test_introspection import INACTIVE, introspect, resource_server
from tests.helpers import OAuthFlow, csrf_of, make_client, make_user

SCOPE = "openid fhirUser launch/patient offline_access patient/Observation.rs"


@pytest.fixture
def launched(app, base_url, http) -> dict:
    make_user(app)
    client = make_client(app, name="Glucose Tracker", scope=SCOPE + " patient/*.rs")
    flow = OAuthFlow(base_url, client, http, scope=SCOPE)
    return {"token": flow.run(), "client": client, "flow": flow, "rs": resource_server(app)}


def _revoke(base_url: str, http: requests.Session, client_id: str) -> requests.Response:
    """"Revoke access" -> the confirmation page -> its POST. (For an app that is not
    connected there is no confirmation page: the POST carries the session's CSRF token
    from the sign-out page.)"""
    page = http.get(base_url + "/account/revoke", params={"client_id": client_id})
    if page.status_code != 200:
        page = http.get(base_url + "/logout")
    return http.post(base_url + "/account/revoke", allow_redirects=False,
                     data={"csrf_token": csrf_of(page.text), "client_id": client_id})


def _app_section(page: str) -> str:
    return page.split('<section id="connected-apps"', 1)[1].split('<section id="sessions"')[0]


def test_account_requires_sign_in(base_url):
    resp = requests.get(base_url + "/account", allow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/login?next=/account")


def test_account_lists_connected_app_in_plain_words(launched, base_url, http):
    resp = http.get(base_url + "/account")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    page = html.unescape(resp.text)
    assert "Glucose Tracker" in page
    # patient/Observation.rs was granted whole (nothing unticked), in plain words.
    assert "Read your test results, vital signs and other measurements" in page
    assert "Stay connected when you are not using the app" in page
    assert "patient/Observation.rs" not in page  # plain words, not scope strings
    # granted, last used and access end dates are shown, each in a <time> a script can
    # localise (the server's own text inside, ISO 8601 UTC in datetime).
    apps = _app_section(page)
    times = re.findall(r'<time datetime="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)">'
                       r'(\d{4}-\d\d-\d\d \d\d:\d\d) UTC</time>', apps)
    assert len(times) == 3
    assert all(iso[:16].replace("T", " ") == text for iso, text in times)
    assert 'data-client-id="' + launched["client"]["client_id"] + '"' in resp.text
    assert "Revoke access" in page


def test_account_with_no_apps_says_so(app, base_url, http):
    make_user(app)
    flow = OAuthFlow(base_url, make_client(app), http)
    flow.http.get(base_url + "/account")  # -> login page
    flow.last = flow.http.get(base_url + "/login?next=/account")
    flow.login()
    page = http.get(base_url + "/account")
    assert page.status_code == 200 and 'id="no-apps"' in page.text


def test_revoke_access_ends_every_token_at_once(launched, base_url, http):
    token = launched["token"]
    rs = launched["rs"]
    newer = launched["flow"].refresh(token["refresh_token"]).json()
    resp = _revoke(base_url, http, launched["client"]["client_id"])
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/account")
    for value in (token["access_token"], newer["access_token"], newer["refresh_token"]):
        assert introspect(base_url, value, auth=rs).json() == INACTIVE
    refused = launched["flow"].refresh(newer["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    page = http.get(base_url + "/account").text
    assert "Access revoked" in page
    assert "Glucose Tracker" not in page


def test_revoke_access_asks_for_consent_again(launched, base_url, http):
    _revoke(base_url, http, launched["client"]["client_id"])
    flow = OAuthFlow(base_url, launched["client"], http, scope=SCOPE)
    flow.authorize()
    flow.follow()
    assert 'name="decision"' in flow.last.text  # the consent page, not a silent code


def test_revoke_access_needs_csrf_token(launched, base_url, http):
    resp = http.post(base_url + "/account/revoke", allow_redirects=False,
                     data={"client_id": launched["client"]["client_id"]})
    assert resp.status_code == 400
    assert introspect(base_url, launched["token"]["access_token"],
                      auth=launched["rs"]).json()["active"] is True


def test_revoke_access_signed_out_changes_nothing(launched, base_url):
    resp = requests.post(base_url + "/account/revoke", allow_redirects=False,
                         data={"client_id": launched["client"]["client_id"]})
    assert resp.status_code == 400  # the CSRF check comes first
    assert introspect(base_url, launched["token"]["access_token"],
                      auth=launched["rs"]).json()["active"] is True


def test_revoke_access_touches_only_the_signed_in_users_grants(launched, app, base_url, http):
    make_user(app, "bob", fhir_user="Patient/p2", name="Bob Sample")
    bob = OAuthFlow(base_url, launched["client"], requests.Session(), scope=SCOPE)
    bob_token = bob.run("bob")
    _revoke(base_url, http, launched["client"]["client_id"])  # alice revokes her access
    rs = launched["rs"]
    assert introspect(base_url, launched["token"]["access_token"], auth=rs).json() == INACTIVE
    assert introspect(base_url, bob_token["access_token"], auth=rs).json()["active"] is True


def test_revoke_unknown_app_is_a_no_op(launched, base_url, http):
    resp = _revoke(base_url, http, "no-such-client")
    assert resp.status_code == 303
    assert _revoke(base_url, http, "a\x00b").status_code == 303
    assert "Access revoked" not in http.get(base_url + "/account").text
    assert introspect(base_url, launched["token"]["access_token"],
                      auth=launched["rs"]).json()["active"] is True


def test_revoke_access_is_audited(launched, app, base_url, http):
    from authserver.extensions import db
    from authserver.models import AuditEvent

    _revoke(base_url, http, launched["client"]["client_id"])
    with app.app_context():
        row = db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.event == "consent.revoked")).one()
        assert row.client_id == launched["client"]["client_id"]
        assert row.detail == {"via": "account"}
