"""POST /token, grant_type=refresh_token, through real HTTP.

RFC 6749 §6 (https://www.rfc-editor.org/rfc/rfc6749#section-6); RFC 9700 §4.14 (rotation
with reuse detection: a rotated token presented again revokes the whole chain); SMART App
Launch 2.2 (https://hl7.org/fhir/smart-app-launch/app-launch.html#refresh-access-token);
ONC §170.315(g)(10)(v)(A): refresh tokens live at least 3 months, renewed on refresh.
"""

from __future__ import annotations

import threading
import time

import jwt
import pytest
import requests

from tests.helpers import FHIR_BASE, OAuthFlow, csrf_of, make_client, make_user, verify_jwt

NINETY_DAYS = 90 * 24 * 3600


@pytest.fixture
def launched(app, base_url) -> tuple[OAuthFlow, dict]:
    make_user(app)
    flow = OAuthFlow(base_url, make_client(app), requests.Session())
    return flow, flow.run()


def _assert_error(resp: requests.Response, status: int, error: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.json()["error"] == error
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"


def _live(app, access_token: str) -> bool:
    from authserver import store
    claims = jwt.decode(access_token, options={"verify_signature": False})
    with app.app_context():
        return store.authorization.live_access_token(claims["jti"], claims.get("gid"),
                                                     claims["client_id"])[0]


def _refresh_row(app, token: str):
    from authserver import store
    with app.app_context():
        row = store.authorization.find_refresh_token(token)
        return None if row is None else {"expires_at": row.expires_at, "scope": row.scope,
                                          "issued_at": row.issued_at}


def test_refresh_issues_new_tokens_and_rotates(app, base_url, launched):
    flow, first = launched
    resp = flow.refresh(first["refresh_token"])
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert type(body["expires_in"]) is int and body["expires_in"] > 0
    assert body["scope"] == first["scope"]
    assert body["patient"] == "p1"
    assert body["refresh_token"] != first["refresh_token"]
    claims = verify_jwt(base_url, body["access_token"], audience=FHIR_BASE, typ="at+jwt")
    assert claims["scope"] == first["scope"] and claims["patient"] == "p1"
    if "id_token" in body:  # OIDC Core §12.2: same iss, sub and aud as the first one
        idt = verify_jwt(base_url, body["id_token"], audience=flow.client["client_id"])
        first_idt = verify_jwt(base_url, first["id_token"], audience=flow.client["client_id"])
        assert (idt["iss"], idt["sub"]) == (first_idt["iss"], first_idt["sub"])
    # the new refresh token works in turn
    again = flow.refresh(body["refresh_token"])
    assert again.status_code == 200, again.text


def test_refresh_rotated_token_reused_revokes_the_whole_chain(app, base_url, launched):
    flow, first = launched
    second = flow.refresh(first["refresh_token"]).json()
    third = flow.refresh(second["refresh_token"]).json()
    assert _live(app, third["access_token"])
    # An attacker (or a confused client) presents a rotated refresh token.
    _assert_error(flow.refresh(first["refresh_token"]), 400, "invalid_grant")
    # RFC 9700 §4.14: the whole family is dead — newest refresh token and access tokens.
    _assert_error(flow.refresh(third["refresh_token"]), 400, "invalid_grant")
    for body in (first, second, third):
        assert not _live(app, body["access_token"])


def test_refresh_racing_uses_of_one_token_cannot_both_win(app, base_url, launched):
    flow, first = launched
    barrier = threading.Barrier(3)
    results: list[requests.Response] = []

    def use() -> None:
        barrier.wait()
        results.append(flow.refresh(first["refresh_token"]))

    threads = [threading.Thread(target=use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 3
    assert [r.status_code for r in results].count(200) <= 1
    for r in results:
        if r.status_code != 200:
            _assert_error(r, 400, "invalid_grant")


def test_refresh_with_exactly_the_last_scope_string_is_accepted(app, base_url, launched):
    flow, first = launched
    second = flow.refresh(first["refresh_token"], scope=first["scope"])
    assert second.status_code == 200, second.text
    assert second.json()["scope"] == first["scope"]
    third = flow.refresh(second.json()["refresh_token"], scope=second.json()["scope"])
    assert third.status_code == 200, third.text


def test_refresh_with_a_narrower_scope_narrows_only_the_access_token(app, base_url,
                                                                    launched):
    flow, first = launched
    narrow = flow.refresh(first["refresh_token"], scope="launch/patient patient/Observation.rs")
    assert narrow.status_code == 200, narrow.text
    body = narrow.json()
    assert body["scope"] == "launch/patient patient/Observation.rs"
    claims = verify_jwt(base_url, body["access_token"], audience=FHIR_BASE)
    assert claims["scope"] == body["scope"]
    # RFC 6749 §6: the new refresh token keeps the scope of the one presented.
    assert _refresh_row(app, body["refresh_token"])["scope"] == first["scope"]
    wide = flow.refresh(body["refresh_token"], scope=first["scope"])
    assert wide.status_code == 200, wide.text


def test_refresh_with_a_wider_scope_is_invalid_scope_and_keeps_the_token(app, base_url,
                                                                        launched):
    flow, first = launched
    for scope in (first["scope"] + " user/*.rs", "patient/*.cruds", "patient/*.write",
                  "launch", "not a valid\tscope"):
        _assert_error(flow.refresh(first["refresh_token"], scope=scope), 400, "invalid_scope")
    # A refused request does not burn the refresh token.
    assert flow.refresh(first["refresh_token"]).status_code == 200


def test_refresh_v1_grant_answers_in_v1_form(app, base_url):
    make_user(app)
    flow = OAuthFlow(base_url, make_client(app), requests.Session(),
                     scope="openid fhirUser launch/patient offline_access patient/*.read")
    first = flow.run()
    assert first["scope"] == "openid fhirUser launch/patient offline_access patient/*.read"
    again = flow.refresh(first["refresh_token"]).json()
    assert again["scope"] == first["scope"]


def test_refresh_offline_token_lasts_90_days_from_each_refresh(app, base_url, launched):
    from authserver import store
    from authserver.extensions import db
    flow, first = launched
    row = _refresh_row(app, first["refresh_token"])
    assert abs(row["expires_at"] - row["issued_at"] - NINETY_DAYS) <= 2
    # Close to expiry: a refresh gives a token good for another 90 days (sliding).
    with app.app_context():
        row = store.authorization.find_refresh_token(first["refresh_token"])
        row.expires_at = int(time.time()) + 5
        db.session.commit()
    second = flow.refresh(first["refresh_token"]).json()
    row = _refresh_row(app, second["refresh_token"])
    assert abs(row["expires_at"] - (time.time() + NINETY_DAYS)) < 30


def test_refresh_expired_token_is_invalid_grant(app, base_url, launched):
    from authserver import store
    from authserver.extensions import db
    flow, first = launched
    with app.app_context():
        row = store.authorization.find_refresh_token(first["refresh_token"])
        row.expires_at = int(time.time()) - 1
        db.session.commit()
    _assert_error(flow.refresh(first["refresh_token"]), 400, "invalid_grant")


def test_refresh_token_of_another_client_is_invalid_grant(app, base_url, launched):
    flow, first = launched
    other = make_client(app, name="Other")
    resp = requests.post(base_url + "/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": other["client_id"]})
    _assert_error(resp, 400, "invalid_grant")
    assert flow.refresh(first["refresh_token"]).status_code == 200  # not burned


def test_refresh_unknown_or_missing_token(app, base_url, launched):
    flow, _ = launched
    _assert_error(flow.refresh("not-a-token"), 400, "invalid_grant")
    _assert_error(flow.refresh("x" * 600), 400, "invalid_grant")
    resp = requests.post(base_url + "/token", data={
        "grant_type": "refresh_token", "client_id": flow.client["client_id"]})
    _assert_error(resp, 400, "invalid_request")


def _bare_refresh(base_url: str, token: str, **extra: str) -> requests.Response:
    """A refresh as fhirclient.js sends it by default: no client_id, no authentication."""
    return requests.post(base_url + "/token", data={
        "grant_type": "refresh_token", "refresh_token": token, **extra})


def test_refresh_public_client_needs_no_client_id(app, base_url, launched):
    """SMART App Launch 2.2: for a public app, authentication is "not possible (and thus
    not required)"; RFC 6749 §6 requires it of confidential clients only."""
    flow, first = launched
    resp = _bare_refresh(base_url, first["refresh_token"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["patient"] == first["patient"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == flow.client["client_id"]
    # Rotation and reuse detection are unchanged: the old token replayed kills the chain.
    _assert_error(_bare_refresh(base_url, first["refresh_token"]), 400, "invalid_grant")
    _assert_error(_bare_refresh(base_url, body["refresh_token"]), 400, "invalid_grant")
    assert not _live(app, body["access_token"])


def test_refresh_public_client_without_client_id_may_narrow_the_scope(app, base_url,
                                                                      launched):
    _, first = launched
    resp = _bare_refresh(base_url, first["refresh_token"], scope="launch/patient patient/*.rs")
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "launch/patient patient/*.rs"
    wider = _bare_refresh(base_url, resp.json()["refresh_token"], scope="user/*.rs")
    _assert_error(wider, 400, "invalid_scope")


def test_refresh_public_client_id_when_sent_must_be_the_tokens(app, base_url, launched):
    flow, first = launched
    other = make_client(app, name="Other public app")
    _assert_error(_bare_refresh(base_url, first["refresh_token"],
                                client_id=other["client_id"]), 400, "invalid_grant")
    # A client_id nobody registered is a client that failed to authenticate (RFC 6749 §5.2).
    resp = _bare_refresh(base_url, first["refresh_token"], client_id="someone-else")
    # ... and 400, not 401: it did not use the Authorization header.
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_client"
    assert flow.refresh(first["refresh_token"]).status_code == 200  # not burned


def test_refresh_without_client_id_unknown_token_or_disabled_app(app, base_url, launched):
    from authserver.services import admin_console

    flow, first = launched
    _assert_error(_bare_refresh(base_url, "not-a-token"), 400, "invalid_grant")
    _assert_error(requests.post(base_url + "/token", data={"grant_type": "refresh_token"}),
                  400, "invalid_request")
    with app.app_context():
        admin_console.set_client_enabled(flow.client["client_id"], False, by=0)
    resp = _bare_refresh(base_url, first["refresh_token"])
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


def test_refresh_confidential_client_token_without_authentication_is_invalid_client(
        app, base_url):
    make_user(app)
    client = make_client(app, auth_method="client_secret_basic")
    flow = OAuthFlow(base_url, client, requests.Session())
    first = flow.run()
    _assert_error(_bare_refresh(base_url, first["refresh_token"]), 401, "invalid_client")
    assert flow.refresh(first["refresh_token"]).status_code == 200  # not burned


def test_refresh_confidential_client_must_authenticate(app, base_url):
    make_user(app)
    client = make_client(app, auth_method="client_secret_basic")
    flow = OAuthFlow(base_url, client, requests.Session())
    first = flow.run()
    resp = requests.post(base_url + "/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": client["client_id"]})
    _assert_error(resp, 401, "invalid_client")
    resp = requests.post(base_url + "/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(client["client_id"], "wrong"))
    _assert_error(resp, 401, "invalid_client")
    assert flow.refresh(first["refresh_token"]).status_code == 200


def test_refresh_online_access_ends_with_the_sign_in_session(app, base_url):
    make_user(app)
    http = requests.Session()
    flow = OAuthFlow(base_url, make_client(app, scope="openid launch/patient online_access "
                                                      "patient/*.rs"), http,
                     scope="openid launch/patient online_access patient/*.rs")
    first = flow.run()
    assert "refresh_token" in first
    second = flow.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    page = http.get(base_url + "/logout")
    http.post(base_url + "/logout", data={"csrf_token": csrf_of(page.text)})
    _assert_error(flow.refresh(second.json()["refresh_token"]), 400, "invalid_grant")
    assert not _live(app, second.json()["access_token"])
