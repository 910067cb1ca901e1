"""OpenID Connect ``prompt`` and ``max_age`` at /authorize (OIDC Core §3.1.2.1, §3.1.2.6)."""

from __future__ import annotations

import time

import pytest
import requests

from tests.helpers import (
    OAuthFlow,
    location_query,
    make_client,
    make_user,
    verify_jwt,
)

SCOPE = "openid fhirUser launch/patient patient/*.rs"


@pytest.fixture
def signed_in(app, base_url) -> dict:
    """Alice signed in, having approved the app once (so a consent is remembered)."""
    return _sign_in(app, base_url)


def _sign_in(app, base_url: str) -> dict:
    make_user(app)
    client = make_client(app)
    http = requests.Session()
    OAuthFlow(base_url, client, http, scope=SCOPE).run()
    return {"client": client, "http": http}


def _again(base_url: str, signed_in: dict, **extra: str) -> OAuthFlow:
    flow = OAuthFlow(base_url, signed_in["client"], signed_in["http"], scope=SCOPE,
                     extra=extra)
    flow.authorize()
    flow.follow()
    return flow


def test_prompt_none_without_a_session_is_login_required(app, base_url):
    make_user(app)
    flow = OAuthFlow(base_url, make_client(app), requests.Session(), scope=SCOPE,
                     extra={"prompt": "none"})
    flow.authorize()
    resp = flow.follow()
    query = location_query(resp)
    assert query["error"] == "login_required" and query["state"] == flow.state
    assert query["iss"] == base_url


def test_prompt_none_with_session_and_remembered_consent_issues_a_code(base_url, signed_in):
    flow = _again(base_url, signed_in, prompt="none")
    assert "code" in location_query(flow.last)


def test_prompt_none_needing_consent_is_consent_required(app, base_url, signed_in):
    flow = OAuthFlow(base_url, signed_in["client"], signed_in["http"],
                     scope=SCOPE + " offline_access", extra={"prompt": "none"})
    flow.authorize()
    query = location_query(flow.follow())
    assert query["error"] == "consent_required" and query["state"] == flow.state


def test_prompt_none_needing_the_picker_is_interaction_required(app, base_url):
    from tests.helpers import make_clinician, totp_code

    doc = make_clinician(app)
    client = make_client(app, scope=SCOPE)
    http = requests.Session()
    flow = OAuthFlow(base_url, client, http, scope="openid fhirUser")
    flow.run("drsmith", totp=totp_code(doc["secret"]))
    flow = OAuthFlow(base_url, client, http, scope=SCOPE, extra={"prompt": "none"})
    flow.authorize()
    query = location_query(flow.follow())
    assert query["error"] == "interaction_required"


def test_prompt_consent_shows_the_page_despite_a_remembered_consent(base_url, signed_in):
    flow = _again(base_url, signed_in, prompt="consent")
    assert flow.last.status_code == 200 and 'name="decision"' in flow.last.text


def test_prompt_login_asks_for_the_password_again(base_url, signed_in):
    flow = _again(base_url, signed_in, prompt="login")
    assert flow.last.status_code == 200 and 'name="password"' in flow.last.text
    flow.login()
    # A fresh sign-in, then the patient chooses again (patients see consent every time).
    assert 'name="decision"' in flow.last.text
    flow.consent()
    assert "code" in location_query(flow.last)


def test_max_age_exceeded_asks_for_the_password_and_id_token_has_auth_time(app, base_url):
    from authserver import clock

    with clock.shifted(-2):  # Alice signed in two seconds ago, by the server's clock
        signed_in = _sign_in(app, base_url)
    flow = _again(base_url, signed_in, max_age="0")
    assert 'name="password"' in flow.last.text
    before = int(time.time())
    flow.login()
    flow.consent()
    token = flow.token(flow.code()).json()
    claims = verify_jwt(base_url, token["id_token"], audience=signed_in["client"]["client_id"],
                        typ="JWT")
    assert claims["auth_time"] >= before - 1


def test_max_age_not_exceeded_keeps_the_session(base_url, signed_in):
    flow = _again(base_url, signed_in, max_age="3600")
    # No password asked: straight to the consent page of the signed-in patient.
    assert 'name="password"' not in flow.last.text and 'name="decision"' in flow.last.text
    flow.consent()
    assert "code" in location_query(flow.last)


@pytest.mark.parametrize("extra", [{"prompt": "none login"}, {"prompt": "sometimes"},
                                   {"max_age": "-1"}, {"max_age": "soon"},
                                   {"max_age": "１２"}])
def test_bad_prompt_or_max_age_is_invalid_request(app, base_url, extra):
    flow = OAuthFlow(base_url, make_client(app), requests.Session(), scope=SCOPE, extra=extra)
    query = location_query(flow.authorize())
    assert query["error"] == "invalid_request" and query["state"] == flow.state
