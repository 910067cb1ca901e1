"""A parked /authorize request is validated once, on arrival; each later step re-checks only
what can change while the person signs in and chooses (services/authorize_request.py):

- the app disabled, or the redirect URI taken off its registration: a page, never a redirect
  to a URI the server no longer trusts (RFC 6749 §4.1.2.1);
- a requested scope taken off the registration: narrowed, or ``invalid_scope`` when nothing
  is left (RFC 6749 §3.3, as on arrival);
- a request parked before the server stored what it validated: expired, start again.

(An EHR launch used meanwhile: tests/flows/test_ehr_launch.py.)
"""

from __future__ import annotations

import pytest
import requests

from authserver.oauth.smart_launch import SmartLaunch
from tests.helpers import REDIRECT_URI, OAuthFlow, location_query, make_client, make_user


@pytest.fixture
def parked(app, base_url):
    """A patient's request that waits on the consent page, and its app's id."""
    make_user(app)
    client = make_client(app, redirect_uris=[REDIRECT_URI, "https://other.example/cb"])
    flow = OAuthFlow(base_url, client, requests.Session())
    flow.authorize()
    flow.follow()
    page = flow.login()
    assert 'name="decision"' in page.text
    return flow


def _change_app(app, client_id: str, **metadata) -> None:
    from authserver import store
    from authserver.extensions import db

    with app.app_context():
        row = store.clients.any_client(client_id)
        for key, value in metadata.items():
            if key == "disabled":
                row.disabled = value
            else:
                row.client_metadata = {**row.client_metadata, key: value}
        db.session.commit()


def _assert_page_not_redirect(resp: requests.Response, words: str) -> None:
    assert resp.status_code == 400, resp.text[:300]
    assert "Location" not in resp.headers
    assert words in resp.text


def test_the_request_is_validated_once_for_the_whole_authorization(app, base_url,
                                                                   monkeypatch):
    runs = []
    monkeypatch.setattr(SmartLaunch, "CHECKS",
                        (lambda request, found: runs.append(1), *SmartLaunch.CHECKS))
    make_user(app)
    flow = OAuthFlow(base_url, make_client(app), requests.Session())
    flow.authorize()
    flow.follow()
    flow.login()
    flow.consent()
    assert flow.token(flow.code()).status_code == 200
    assert len(runs) == 1  # on arrival; not again at sign-in, consent or issuing the code


def test_app_disabled_while_the_person_chooses_is_a_page(app, parked):
    _change_app(app, parked.client["client_id"], disabled=True)
    _assert_page_not_redirect(parked.consent(), "disabled or changed")


def test_redirect_uri_taken_off_the_app_while_parked_is_a_page(app, parked):
    _change_app(app, parked.client["client_id"], redirect_uris=["https://other.example/cb"])
    _assert_page_not_redirect(parked.consent(), "disabled or changed")


def test_authorization_code_taken_off_the_app_while_parked_is_a_page(app, parked):
    _change_app(app, parked.client["client_id"], grant_types=["refresh_token"])
    _assert_page_not_redirect(parked.consent(), "disabled or changed")


def test_scope_taken_off_the_app_while_parked_is_narrowed(app, parked):
    _change_app(app, parked.client["client_id"], scope="openid fhirUser")
    parked.consent(scopes=["openid", "fhirUser", "patient/*.rs"])
    token = parked.token(parked.code())
    assert token.status_code == 200 and token.json()["scope"] == "openid fhirUser"


def test_every_requested_scope_taken_off_the_app_while_parked_is_invalid_scope(app, parked):
    _change_app(app, parked.client["client_id"], scope="patient/Observation.rs")
    resp = parked.consent()
    assert resp.headers["Location"].startswith(REDIRECT_URI + "?")
    assert location_query(resp)["error"] == "invalid_scope"


def test_a_request_parked_before_validated_was_stored_has_expired(app, parked):
    from authserver.extensions import db
    from authserver.models import PendingAuthorization

    with app.app_context():
        for row in db.session.query(PendingAuthorization):
            row.validated = None
        db.session.commit()
    resp = parked.consent()
    _assert_page_not_redirect(resp, "expired")
