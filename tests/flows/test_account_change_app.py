"""/account "Change" (untick what a connected app may see) and "Revoke access" (with its
confirmation step), over real HTTP.

The consent page promises "You can change this later on your account page": a narrower
choice there narrows the consent and the app's live grants for this user, so the next
refreshed token carries only the kept scopes, and the access tokens already issued under
them end at once (introspection says inactive). Only the app can ask for more.
"""

from __future__ import annotations

import html
import re

import jwt
import pytest
import requests

from tests.flows.test_introspection import INACTIVE, introspect, resource_server
from tests.helpers import REDIRECT_URI, OAuthFlow, csrf_of, make_user

OBS = "patient/Observation.rs"
COND = "patient/Condition.rs"
CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB = f"{OBS}?category={CAT}|laboratory"
SCOPE = f"openid fhirUser launch/patient offline_access {OBS} {COND}"


def _register(app, name: str = "Glucose Tracker") -> dict:
    """A public app with a homepage and privacy policy (https) and terms (loopback http,
    which registration allows but the account page does not link)."""
    from authserver import store
    from authserver.services.registration import register_client

    meta = {"client_name": name, "redirect_uris": [REDIRECT_URI],
            "scope": SCOPE + " patient/*.rs", "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_uri": "https://glucose.example.com/",
            "policy_uri": "https://glucose.example.com/privacy",
            "tos_uri": "http://127.0.0.1:9999/terms"}
    with app.app_context(), store.transaction():
        client, _ = register_client(meta, verified=True)
        return {"client_id": client.client_id}


@pytest.fixture
def launched(app, base_url, http) -> dict:
    """alice connected the app, everything ticked; the consent page's words are kept."""
    make_user(app)
    client = _register(app)
    flow = OAuthFlow(base_url, client, http, scope=SCOPE)
    flow.authorize()
    flow.follow()
    flow.login()
    consent_page = flow.last.text
    flow.consent()
    resp = flow.token(flow.code())
    assert resp.status_code == 200, resp.text
    return {"token": resp.json(), "client": client, "flow": flow, "http": http,
            "consent_page": consent_page, "rs": resource_server(app)}


def _boxes(page: str) -> list[tuple[str, str, bool]]:
    """(value, label, ticked) of every scope checkbox of a page."""
    out = []
    for m in re.finditer(r'<input type="checkbox" name="scope" value="([^"]*)" id="([^"]+)"'
                         r'( checked)?>', page):
        label = re.search(rf'<label for="{m.group(2)}">([^<]*)</label>', page).group(1)
        out.append((html.unescape(m.group(1)), html.unescape(label), bool(m.group(3))))
    return out


def _change_page(base_url: str, s: requests.Session, client_id: str) -> requests.Response:
    return s.get(base_url + "/account/apps/change", params={"client_id": client_id},
                 allow_redirects=False)


def _change(base_url: str, s: requests.Session, client_id: str, keep: list[str],
            csrf: str | None = None) -> requests.Response:
    """Submit the change form (its CSRF token is the session's: taken from the sign-out
    page, which every session can open, also for an app that has no change page)."""
    if csrf is None:
        csrf = csrf_of(s.get(base_url + "/logout").text)
    data = [("csrf_token", csrf), ("client_id", client_id)] + [("scope", v) for v in keep]
    return s.post(base_url + "/account/apps/change", data=data, allow_redirects=False)


def _granted_but(launched: dict, base_url: str, prefix: str) -> list[str]:
    """Every box of the change page ticked but those whose value starts with ``prefix``."""
    page = _change_page(base_url, launched["http"], launched["client"]["client_id"]).text
    return [v for v, _, _ in _boxes(page) if not v.startswith(prefix)]


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_account_shows_the_apps_https_links_only(launched, base_url):
    page = launched["http"].get(base_url + "/account").text
    assert 'href="https://glucose.example.com/"' in page and "Homepage" in page
    assert 'href="https://glucose.example.com/privacy"' in page and "Privacy policy" in page
    assert "127.0.0.1:9999/terms" not in page and "Terms of service" not in page


def test_change_page_ticks_what_is_granted_in_the_consent_pages_words(launched, base_url):
    page = _change_page(base_url, launched["http"], launched["client"]["client_id"])
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    boxes = _boxes(page.text)
    assert boxes and all(ticked for _, _, ticked in boxes)
    consent = {v: label for v, label, _ in _boxes(launched["consent_page"])}
    # The same checkboxes and words as the consent page, but the launch context (which
    # carries the record, not data) is not the person's to untick.
    assert {v: label for v, label, _ in boxes} == {
        v: label for v, label in consent.items() if v != "launch/patient"}
    assert LAB in consent and OBS in consent and COND in consent
    assert 'name="csrf_token"' in page.text and '<form method="post"' in page.text


def test_change_narrows_the_next_refresh_and_ends_the_old_access_token(launched, base_url):
    first, flow, rs = launched["token"], launched["flow"], launched["rs"]
    assert introspect(base_url, first["access_token"], auth=rs).json()["active"] is True
    keep = _granted_but(launched, base_url, COND)
    resp = _change(base_url, launched["http"], launched["client"]["client_id"], keep)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account#connected-apps"
    # The removed access ends now, not when the token expires.
    assert introspect(base_url, first["access_token"], auth=rs).json() == INACTIVE
    # The refresh token still works, and what it brings carries only the kept scopes.
    refreshed = flow.refresh(first["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert sorted(body["scope"].split()) == sorted(
        ["launch/patient", "openid", "fhirUser", "offline_access", OBS])
    assert _claims(body["access_token"])["scope"] == body["scope"]
    assert introspect(base_url, body["access_token"], auth=rs).json()["active"] is True
    again = flow.refresh(body["refresh_token"]).json()
    assert again["scope"] == body["scope"] and body["patient"] == "p1"
    page = html.unescape(launched["http"].get(base_url + "/account").text)
    assert "Saved." in page
    assert "conditions and health problems" not in page
    assert "Read your test results, vital signs and other measurements" in page


def test_change_to_one_category_grants_that_category(launched, base_url):
    flow = launched["flow"]
    keep = ["openid", "fhirUser", "offline_access", OBS, LAB]
    assert _change(base_url, launched["http"], launched["client"]["client_id"],
                   keep).status_code == 303
    body = flow.refresh(launched["token"]["refresh_token"]).json()
    assert sorted(body["scope"].split()) == sorted(
        ["launch/patient", "openid", "fhirUser", "offline_access", LAB])
    # The change page now offers just what is left, all ticked.
    boxes = _boxes(_change_page(base_url, launched["http"],
                                launched["client"]["client_id"]).text)
    assert [v for v, _, _ in boxes] == ["openid", "fhirUser", "offline_access", LAB]


def test_change_cannot_add_scopes(launched, base_url):
    """Only the app can ask for more: a value that is not granted is ignored."""
    client_id = launched["client"]["client_id"]
    keep = [v for v, _, _ in _boxes(_change_page(base_url, launched["http"], client_id).text)]
    resp = _change(base_url, launched["http"], client_id, [*keep, "patient/*.rs",
                                                            "user/*.cruds"])
    assert resp.status_code == 303
    assert "Nothing changed." in launched["http"].get(base_url + "/account").text
    body = launched["flow"].refresh(launched["token"]["refresh_token"]).json()
    assert body["scope"] == launched["token"]["scope"]
    assert introspect(base_url, launched["token"]["access_token"],
                      auth=launched["rs"]).json()["active"] is True


def test_change_without_staying_connected_ends_the_refresh_token(launched, base_url):
    """Unticking "Stay connected when you are not using the app" (offline_access) leaves
    the grant nothing to refresh with: it ends; the narrowed choice is remembered."""
    client_id = launched["client"]["client_id"]
    assert _change(base_url, launched["http"], client_id,
                   _granted_but(launched, base_url, "offline_access")).status_code == 303
    refused = launched["flow"].refresh(launched["token"]["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert introspect(base_url, launched["token"]["access_token"],
                      auth=launched["rs"]).json() == INACTIVE
    values = [v for v, _, _ in _boxes(_change_page(base_url, launched["http"], client_id).text)]
    assert "offline_access" not in values and OBS in values and COND in values


def test_change_is_remembered_by_the_next_consent_page(launched, base_url):
    client_id = launched["client"]["client_id"]
    _change(base_url, launched["http"], client_id, _granted_but(launched, base_url, COND))
    flow = OAuthFlow(base_url, launched["client"], launched["http"], scope=SCOPE)
    flow.authorize()
    flow.follow()
    ticked = {v for v, _, t in _boxes(flow.last.text) if t}
    assert COND not in ticked and OBS in ticked and "offline_access" in ticked


def test_change_is_audited_with_the_new_scope(launched, app, base_url):
    from authserver.extensions import db
    from authserver.models import AuditEvent

    client_id = launched["client"]["client_id"]
    _change(base_url, launched["http"], client_id, _granted_but(launched, base_url, COND))
    with app.app_context():
        row = db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.event == "consent.changed")).one()
        assert row.client_id == client_id and row.user_id is not None
        assert row.detail == {"scope": f"launch/patient openid fhirUser offline_access {OBS}"}


def test_unticking_everything_revokes(launched, app, base_url):
    from authserver.extensions import db
    from authserver.models import AuditEvent

    resp = _change(base_url, launched["http"], launched["client"]["client_id"], [])
    assert resp.status_code == 303
    page = launched["http"].get(base_url + "/account").text
    assert "Access revoked. The app can no longer use your data." in page
    assert "Glucose Tracker" not in page
    refused = launched["flow"].refresh(launched["token"]["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert introspect(base_url, launched["token"]["access_token"],
                      auth=launched["rs"]).json() == INACTIVE
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent.event)).all()
        assert "consent.revoked" in events and "consent.changed" not in events


def test_revoke_needs_the_confirmation_post(launched, base_url):
    http, client_id, rs = launched["http"], launched["client"]["client_id"], launched["rs"]
    account = http.get(base_url + "/account").text
    # The account page links to the confirmation; it has no form that revokes at once.
    assert 'action="/account/revoke"' not in account
    assert "/account/revoke?client_id=" + client_id in html.unescape(account)
    confirm = http.get(base_url + "/account/revoke", params={"client_id": client_id})
    assert confirm.status_code == 200
    assert "Glucose Tracker" in confirm.text and 'action="/account/revoke"' in confirm.text
    assert f'name="client_id" value="{client_id}"' in confirm.text
    # Looking at the confirmation changes nothing ...
    assert introspect(base_url, launched["token"]["access_token"], auth=rs).json()["active"]
    # ... its POST revokes.
    resp = http.post(base_url + "/account/revoke", allow_redirects=False, data={
        "csrf_token": csrf_of(confirm.text), "client_id": client_id})
    assert resp.status_code == 303
    assert introspect(base_url, launched["token"]["access_token"], auth=rs).json() == INACTIVE
    assert "Access revoked" in http.get(base_url + "/account").text


def test_another_users_app_cannot_be_changed_or_revoked(launched, app, base_url):
    """bob's own app, seen from bob's session: 404, the app not named, nothing changed."""
    make_user(app, "bob", fhir_user="Patient/p2", name="Bob Sample")
    other = _register(app, "Secret Diary")
    diary = OAuthFlow(base_url, other, requests.Session(), scope=SCOPE)
    diary_token = diary.run("bob")
    alice = launched["http"]
    for path in ("/account/apps/change", "/account/revoke"):
        page = alice.get(base_url + path, params={"client_id": other["client_id"]})
        assert page.status_code == 404 and "Secret Diary" not in page.text
    resp = _change(base_url, alice, other["client_id"], ["openid"])
    assert resp.status_code == 404 and "Secret Diary" not in resp.text
    assert introspect(base_url, diary_token["access_token"],
                      auth=launched["rs"]).json()["active"] is True
    assert diary.refresh(diary_token["refresh_token"]).json()["scope"] == diary_token["scope"]


@pytest.mark.parametrize("client_id", ["", "no-such-app", "a\x00b", "x" * 300, "../account"])
def test_change_of_an_unknown_app_is_404_not_500(launched, base_url, client_id):
    assert _change_page(base_url, launched["http"], client_id).status_code == 404
    assert _change(base_url, launched["http"], client_id, ["openid"]).status_code == 404
    assert launched["http"].get(base_url + "/account/revoke",
                                params={"client_id": client_id}).status_code == 404


def test_change_needs_csrf_token(launched, base_url):
    resp = launched["http"].post(base_url + "/account/apps/change", allow_redirects=False,
                                 data={"client_id": launched["client"]["client_id"],
                                       "scope": "openid"})
    assert resp.status_code == 400
    assert introspect(base_url, launched["token"]["access_token"],
                      auth=launched["rs"]).json()["active"] is True


def test_change_signed_out_asks_to_sign_in(launched, base_url):
    s = requests.Session()
    page = _change_page(base_url, s, launched["client"]["client_id"])
    assert page.status_code == 303 and "/login" in page.headers["Location"]
    resp = _change(base_url, s, launched["client"]["client_id"], ["openid"])
    assert resp.status_code == 303 and "/login" in resp.headers["Location"]
    assert introspect(base_url, launched["token"]["access_token"],
                      auth=launched["rs"]).json()["active"] is True
