"""``online_access``: a refresh token usable only while the user's sign-in session lives.

SMART App Launch 2.2, scopes-and-launch-context "Scopes for requesting a refresh token"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html): ``online_access`` —
"a refresh_token ... that will be usable for as long as the end-user remains online";
``offline_access`` — "regardless of whether the end-user is online".
"""

from __future__ import annotations

import pytest
import requests

from tests.helpers import (
    EHR_SCOPES,
    OAuthFlow,
    make_client,
    make_clinician,
    make_launch,
    make_user,
    sign_out,
    totp_code,
)

ONLINE = "openid fhirUser launch/patient online_access patient/*.rs"
OFFLINE = "openid fhirUser launch/patient offline_access patient/*.rs"


@pytest.fixture
def patient_app(app):
    make_user(app)
    return make_client(app, scope=ONLINE + " offline_access")


def _tokens(base_url: str, client: dict, scope: str) -> tuple[OAuthFlow, dict]:
    flow = OAuthFlow(base_url, client, requests.Session(), scope=scope)
    return flow, flow.run()


def test_online_access_refresh_works_while_signed_in(patient_app, base_url):
    flow, token = _tokens(base_url, patient_app, ONLINE)
    assert token["scope"] == ONLINE and "refresh_token" in token
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 200, resp.text
    again = flow.refresh(resp.json()["refresh_token"])  # rotated, still bound to the session
    assert again.status_code == 200, again.text
    assert again.json()["patient"] == "p1"


def test_online_access_refresh_refused_after_sign_out(patient_app, base_url):
    flow, token = _tokens(base_url, patient_app, ONLINE)
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 200, resp.text
    assert sign_out(base_url, flow.http).status_code == 303
    resp = flow.refresh(resp.json()["refresh_token"])
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_grant"
    assert resp.headers["Cache-Control"] == "no-store"


def test_online_access_refresh_refused_after_sign_out_even_unused(patient_app, base_url):
    flow, token = _tokens(base_url, patient_app, ONLINE)
    sign_out(base_url, flow.http)
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_offline_access_refresh_survives_sign_out(patient_app, base_url):
    flow, token = _tokens(base_url, patient_app, OFFLINE)
    sign_out(base_url, flow.http)
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 200, resp.text


def test_online_access_bound_to_the_session_it_was_granted_in(patient_app, base_url):
    """Signing in again elsewhere does not keep alive a grant of a session that ended."""
    flow, token = _tokens(base_url, patient_app, ONLINE)
    other, _ = _tokens(base_url, patient_app, OFFLINE)  # a second, separate sign-in
    sign_out(base_url, flow.http)
    assert flow.refresh(token["refresh_token"]).status_code == 400
    assert other.http.get(base_url + "/logout").status_code == 200  # still signed in there


def test_online_access_in_ehr_launch_ends_with_clinician_sign_out(app, base_url):
    user = make_clinician(app)
    client = make_client(app, scope=EHR_SCOPES + " online_access",
                         auth_method="client_secret_basic")
    flow = OAuthFlow(base_url, client, requests.Session(), scope=EHR_SCOPES + " online_access",
                     extra={"launch": make_launch(app, encounter="e1")["launch"]})
    token = flow.run("drsmith", totp=totp_code(user["secret"]))
    assert "online_access" in token["scope"].split() and token["encounter"] == "e1"
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 200 and resp.json()["encounter"] == "e1"
    sign_out(base_url, flow.http)
    resp = flow.refresh(resp.json()["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_discovery_advertises_permission_online(base_url):
    doc = requests.get(base_url + "/.well-known/smart-configuration").json()
    assert "permission-online" in doc["capabilities"]
    assert "online_access" in doc["scopes_supported"]
