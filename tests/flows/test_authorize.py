"""/authorize through real HTTP: GET and POST (authorize-post), validation order, refusals.

RFC 6749 §4.1.2.1 (https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1): an unknown client
or a redirect URI that is not registered is shown as a page and never redirected; every other
error goes back to the app with ``error``, ``error_description``, ``state`` and ``iss``
(RFC 9207). SMART App Launch 2.2 (https://hl7.org/fhir/smart-app-launch/app-launch.html):
PKCE S256 for every client, ``aud`` a FHIR base this server protects.
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.helpers import (
    FHIR_BASE,
    REDIRECT_URI,
    OAuthFlow,
    location_query,
    make_client,
    make_user,
    query_of,
    verify_jwt,
)


@pytest.fixture
def patient_app(app, base_url):
    make_user(app)
    return make_client(app)


def _flow(base_url: str, client: dict, **kw) -> OAuthFlow:
    return OAuthFlow(base_url, client, requests.Session(), **kw)


def _assert_error_page(resp: requests.Response) -> None:
    assert resp.status_code == 400, resp.text[:300]
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html")
    # no link, refresh or script that would take the browser to an unvalidated URI
    assert 'href="http' not in resp.text and "http-equiv" not in resp.text.lower()
    # scripts: only this server's own files (no inline code, nothing from elsewhere)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", resp.text, re.S)
    assert all(re.fullmatch(r' src="/static/[\w.-]+\.js" defer', attrs) and not body.strip()
               for attrs, body in scripts), scripts


def _assert_redirect_error(flow: OAuthFlow, resp: requests.Response, error: str,
                           base_url: str) -> dict[str, str]:
    q = location_query(resp)
    assert resp.headers["Location"].startswith(flow.redirect_uri + "?")
    assert q["error"] == error, q
    assert q.get("error_description")
    assert q["state"] == flow.state
    assert q["iss"] == base_url  # RFC 9207
    assert "code" not in q
    return q


# ---- GET and POST -----------------------------------------------------------------------

def test_authorize_get_parks_request_and_sends_to_sign_in(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    resp = flow.authorize("GET")
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/authorize/continue?req=")
    page = flow.follow()
    assert page.status_code == 200 and 'name="password"' in page.text


def test_authorize_post_cross_site_needs_no_csrf_token_or_cookie(patient_app, base_url):
    # An app's auto-submitting form: a cross-site POST, no CSRF token, no cookie.
    resp = requests.post(base_url + "/authorize", data=_flow(base_url, patient_app).params(),
                         headers={"Origin": "https://app.example.org",
                                  "Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert resp.status_code == 303  # RFC 9700 §4.12: 303 after a POST
    assert resp.headers["Location"].startswith("/authorize/continue?req=")


def test_authorize_post_continues_in_a_browser_that_had_no_cookie(patient_app, base_url):
    poster = _flow(base_url, patient_app)
    first = poster.authorize("POST")
    # The request lives server side: a fresh cookie jar can continue it by its handle.
    browser = _flow(base_url, patient_app)
    browser.state, browser.verifier = poster.state, poster.verifier
    browser.follow(first)
    browser.login()
    browser.consent("allow")
    code = browser.code()
    token = browser.token(code)
    assert token.status_code == 200, token.text
    assert token.json()["patient"] == "p1"


def test_authorize_post_error_redirect_uses_303(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    resp = flow.authorize("POST", aud="https://evil.example.org/fhir")
    assert resp.status_code == 303
    _assert_redirect_error(flow, resp, "invalid_request", base_url)


# ---- never redirected: client and redirect_uri ------------------------------------------

def test_authorize_unknown_client_is_an_error_page(patient_app, base_url):
    resp = _flow(base_url, patient_app).authorize(client_id="no-such-client")
    _assert_error_page(resp)


def test_authorize_missing_client_id_is_an_error_page(patient_app, base_url):
    resp = _flow(base_url, patient_app).authorize(client_id=None)
    _assert_error_page(resp)


UNREGISTERED_REDIRECT_URIS = [
    REDIRECT_URI + "/",
    REDIRECT_URI + "?x=1",
    REDIRECT_URI + "#frag",
    REDIRECT_URI.upper(),
    "http://127.0.0.1:9998/callback",
    "https://127.0.0.1:9999/callback",
    "http://localhost:9999/callback",
    "https://evil.example.org/callback",
    "http://127.0.0.1:9999/callback/../callback",
    "http://127.0.0.1:9999/callbacks",
    "",
]


def test_authorize_unregistered_redirect_uri_is_an_error_page(patient_app, base_url):
    for redirect_uri in UNREGISTERED_REDIRECT_URIS:
        for method in ("GET", "POST"):
            resp = _flow(base_url, patient_app).authorize(method, redirect_uri=redirect_uri)
            _assert_error_page(resp)


def test_authorize_missing_redirect_uri_is_an_error_page(patient_app, base_url):
    # SMART: redirect_uri is REQUIRED, even for a client with a single registered URI.
    resp = _flow(base_url, patient_app).authorize(redirect_uri=None)
    _assert_error_page(resp)


def test_authorize_bad_redirect_uri_wins_over_other_errors(patient_app, base_url):
    resp = _flow(base_url, patient_app).authorize(
        redirect_uri="https://evil.example.org/cb", response_type="token",
        code_challenge_method="plain", aud="https://evil.example.org/fhir")
    _assert_error_page(resp)


def test_authorize_unknown_client_wins_over_other_errors(patient_app, base_url):
    resp = _flow(base_url, patient_app).authorize(
        client_id="nobody", code_challenge=None, scope="bad\x01scope")
    _assert_error_page(resp)


def test_authorize_disabled_client_is_an_error_page(app, patient_app, base_url):
    from authserver import store
    from authserver.extensions import db
    with app.app_context():
        store.clients.any_client(patient_app["client_id"]).disabled = True
        db.session.commit()
    _assert_error_page(_flow(base_url, patient_app).authorize())


def test_authorize_resource_server_credentials_are_not_an_app(app, base_url):
    from authserver.services import admin_console

    with app.app_context():
        rs = admin_console.create_resource_server("FHIR server")
    _assert_error_page(_flow(base_url, rs).authorize())


# ---- redirected: response_type, PKCE, aud, state, scope ---------------------------------

def test_authorize_response_type_other_than_code_is_refused(patient_app, base_url):
    for response_type in ("token", "id_token", "code id_token", "CODE"):
        flow = _flow(base_url, patient_app)
        resp = flow.authorize(response_type=response_type)
        _assert_redirect_error(flow, resp, "unsupported_response_type", base_url)


def test_authorize_missing_response_type_is_refused(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    resp = flow.authorize(response_type=None)
    q = location_query(resp)
    assert q["error"] in ("invalid_request", "unsupported_response_type")
    assert q["state"] == flow.state and q["iss"] == base_url and "code" not in q


def test_authorize_without_code_challenge_is_refused(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    q = _assert_redirect_error(flow, flow.authorize(code_challenge=None), "invalid_request",
                               base_url)
    assert "code_challenge" in q["error_description"]


def test_authorize_without_code_challenge_method_is_refused(patient_app, base_url):
    # Authlib would default a missing method to `plain`; SMART requires S256.
    flow = _flow(base_url, patient_app)
    q = _assert_redirect_error(flow, flow.authorize(code_challenge_method=None),
                               "invalid_request", base_url)
    assert "code_challenge_method" in q["error_description"]


def test_authorize_pkce_plain_is_refused(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    q = _assert_redirect_error(flow, flow.authorize(code_challenge_method="plain"),
                               "invalid_request", base_url)
    assert "S256" in q["error_description"]


def test_authorize_pkce_method_other_than_s256_is_refused(patient_app, base_url):
    for method in ("s256", "S512", "", "plain "):
        flow = _flow(base_url, patient_app)
        _assert_redirect_error(flow, flow.authorize(code_challenge_method=method),
                               "invalid_request", base_url)


def test_authorize_pkce_is_required_of_confidential_clients_too(app, base_url):
    make_user(app)
    client = make_client(app, auth_method="client_secret_basic")
    flow = _flow(base_url, client)
    _assert_redirect_error(flow, flow.authorize(code_challenge=None), "invalid_request",
                           base_url)


def test_authorize_malformed_code_challenge_is_refused(patient_app, base_url):
    for challenge in ("short", "x" * 129, "has space" + "a" * 40, "é" * 43):
        flow = _flow(base_url, patient_app)
        _assert_redirect_error(flow, flow.authorize(code_challenge=challenge),
                               "invalid_request", base_url)


def test_authorize_wrong_aud_is_refused_without_a_code(patient_app, base_url):
    for aud in ("https://evil.example.org/fhir", "http://127.0.0.1:8001/fhir/other",
                "http://127.0.0.1:8001", "https://127.0.0.1:8001/fhir",
                "http://127.0.0.1:8001/FHIR", "http://127.0.0.1:8001/fhir/x/..", base_url):
        flow = _flow(base_url, patient_app)
        q = _assert_redirect_error(flow, flow.authorize(aud=aud), "invalid_request", base_url)
        assert "aud" in q["error_description"], aud


def test_authorize_missing_aud_is_refused(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    _assert_redirect_error(flow, flow.authorize(aud=None), "invalid_request", base_url)


def test_authorize_aud_with_trailing_slash_or_second_base_is_accepted(patient_app, base_url):
    for aud in (FHIR_BASE + "/", "https://fhir.example.org/r4/"):
        flow = _flow(base_url, patient_app, aud=aud)
        token = flow.run()
        claims = verify_jwt(base_url, token["access_token"], audience=aud.rstrip("/"),
                            typ="at+jwt")
        assert claims["aud"] == aud.rstrip("/")


def test_authorize_missing_state_is_refused(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    resp = flow.authorize(state=None)
    q = location_query(resp)
    assert q["error"] == "invalid_request" and "state" in q["error_description"]
    assert "state" not in q and "code" not in q and q["iss"] == base_url


def test_authorize_state_is_echoed_exactly(patient_app, base_url):
    states = ["a b+c/d?e=f&g#h%20", "ünïcødé-☃", "x" * 1000, "'\"<>"]
    flow = _flow(base_url, patient_app, state=states[0])
    flow.authorize("POST")
    flow.follow()
    flow.login()
    flow.consent()
    assert query_of(flow.last.headers["Location"])["state"] == states[0]
    for state in states:  # and on an error redirect too
        err = _flow(base_url, patient_app, state=state)
        assert location_query(err.authorize(aud="https://x.example/fhir"))["state"] == state


def test_authorize_invalid_scope_string_is_invalid_scope(patient_app, base_url):
    for scope in ("patinet/Observation.rs", "patient/Observation.rc",
                  "patient/Observation.xyz", "patient/observation.rs", "launch/Patient",
                  "openid\tprofile", "bad\"quote", "patient/Observation.rs?category"):
        flow = _flow(base_url, patient_app)
        _assert_redirect_error(flow, flow.authorize(scope="openid " + scope), "invalid_scope",
                               base_url)


def test_authorize_missing_scope_is_invalid_scope(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    _assert_redirect_error(flow, flow.authorize(scope=None), "invalid_scope", base_url)


def test_authorize_scopes_beyond_registration_are_dropped(app, base_url):
    make_user(app)
    client = make_client(app, scope="openid fhirUser launch/patient patient/Patient.rs")
    flow = _flow(base_url, client,
                 scope="openid fhirUser launch/patient patient/Patient.rs user/*.cruds "
                       "patient/Observation.rs offline_access system/*.rs")
    flow.authorize()
    flow.follow()
    flow.login()
    assert sorted(flow.consent_values()) == sorted(
        ["openid", "fhirUser", "launch/patient", "patient/Patient.rs"])
    flow.consent()
    token = flow.token(flow.code()).json()
    assert token["scope"].split() == ["openid", "fhirUser", "launch/patient",
                                      "patient/Patient.rs"]
    assert "refresh_token" not in token


def test_authorize_only_unregistered_scopes_is_invalid_scope(app, base_url):
    make_user(app)
    client = make_client(app, scope="openid patient/Patient.rs")
    flow = _flow(base_url, client, scope="user/*.rs system/*.rs")
    _assert_redirect_error(flow, flow.authorize(), "invalid_scope", base_url)


def test_authorize_launch_scope_without_launch_parameter_is_refused(app, base_url):
    make_user(app)
    client = make_client(app, scope="launch openid patient/*.rs")
    flow = _flow(base_url, client, scope="launch openid patient/*.rs")
    _assert_redirect_error(flow, flow.authorize(), "invalid_request", base_url)


def test_authorize_repeated_parameter_is_refused(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    for param in ("scope", "state", "aud", "code_challenge", "code_challenge_method",
                  "response_type", "nonce"):
        params = list(flow.params().items()) + [(param, flow.params()[param])]
        resp = requests.get(base_url + "/authorize", params=params, allow_redirects=False)
        q = location_query(resp)
        assert q["error"] == "invalid_request" and "code" not in q, param
        assert param in q["error_description"] and q["iss"] == base_url


def test_authorize_repeated_client_or_redirect_uri_is_an_error_page(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    for param in ("client_id", "redirect_uri"):
        for extra in ("other", flow.params()[param]):
            params = list(flow.params().items()) + [(param, extra)]
            resp = requests.get(base_url + "/authorize", params=params, allow_redirects=False)
            _assert_error_page(resp)


def test_authorize_unknown_parameters_are_ignored(patient_app, base_url):
    flow = _flow(base_url, patient_app, extra={"foo": "bar", "prompt": "login"})
    assert flow.run()["patient"] == "p1"


def test_authorize_loopback_redirect_may_vary_its_port_when_registered_without_one(app,
                                                                                  base_url):
    # RFC 8252 §7.3 / RFC 9700 §2.1: the one permitted variation of exact matching.
    make_user(app)
    client = make_client(app, redirect_uris=["http://127.0.0.1/callback"])
    flow = _flow(base_url, client, redirect_uri="http://127.0.0.1:5123/callback")
    assert flow.run()["patient"] == "p1"
    bad = _flow(base_url, client, redirect_uri="http://127.0.0.1:5123/other")
    _assert_error_page(bad.authorize())


# ---- the parked request -----------------------------------------------------------------

def test_authorize_continue_with_unknown_request_is_an_error_page(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    flow.authorize()
    flow.follow()
    flow.login()  # lands on consent for the real request
    resp = flow.http.get(base_url + "/authorize/continue?req=nope", allow_redirects=False)
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_a_dead_request_says_so_before_asking_anyone_to_sign_in(app, patient_app, base_url):
    """Signed out: an unknown handle, or a request whose app was disabled since, is a page
    at once, not the sign-in page first (UX review 3.14)."""
    resp = requests.get(base_url + "/authorize/continue?req=nope", allow_redirects=False)
    assert resp.status_code == 400 and "expired" in resp.text
    flow = _flow(base_url, patient_app)
    flow.authorize()
    from authserver import store
    from authserver.extensions import db
    with app.app_context():
        store.clients.any_client(patient_app["client_id"]).disabled = True
        db.session.commit()
    resp = flow.follow()
    assert resp.status_code == 400 and 'name="password"' not in resp.text
    assert "disabled or changed" in resp.text


def test_authorize_parked_request_belongs_to_the_first_user(app, patient_app, base_url):
    make_user(app, "mallory", fhir_user="Patient/p2")
    victim = _flow(base_url, patient_app)
    first = victim.authorize()
    victim.follow(first)
    victim.login()
    assert victim.consent_values()
    # Another user who got hold of the handle cannot continue it.
    thief = _flow(base_url, patient_app)
    thief.follow(first)
    thief.login("mallory")
    assert thief.last.status_code == 403
    assert "Location" not in thief.last.headers


def test_authorize_consent_is_shown_framing_refused(patient_app, base_url):
    flow = _flow(base_url, patient_app)
    flow.authorize()
    flow.follow()
    page = flow.login()
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "no-store" in page.headers["Cache-Control"]


# ---- discovery --------------------------------------------------------------------------

def test_discovery_advertises_the_patient_standalone_capabilities(base_url):
    doc = requests.get(base_url + "/.well-known/smart-configuration").json()
    assert {"launch-standalone", "authorize-post", "client-public",
            "client-confidential-symmetric", "sso-openid-connect",
            "context-standalone-patient", "permission-offline", "permission-patient",
            "permission-v1", "permission-v2"} <= set(doc["capabilities"])
    # Never advertised: what this server does not do.
    assert "context-standalone-encounter" not in doc["capabilities"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert {"authorization_code", "refresh_token"} <= set(doc["grant_types_supported"])
    assert {"none", "client_secret_basic", "client_secret_post"} <= set(
        doc["token_endpoint_auth_methods_supported"])
    assert doc["authorization_endpoint"] == base_url + "/authorize"
    assert doc["token_endpoint"] == base_url + "/token"
    assert doc["issuer"] == base_url
    oidc = requests.get(base_url + "/.well-known/openid-configuration").json()
    assert oidc["issuer"] == base_url
    assert "RS256" in oidc["id_token_signing_alg_values_supported"]
    assert oidc["authorization_response_iss_parameter_supported"] is True
