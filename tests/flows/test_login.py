"""Sign-in through real HTTP: argon2id (RFC 9106 §4, second recommended option), rehash on
sign-in, session renewal, and no username enumeration (same message, about the same time).

RFC 9106 §4 (https://www.rfc-editor.org/rfc/rfc9106#section-4); OWASP Authentication Cheat
Sheet (generic failure messages); RFC 9700 §4.7 / OWASP session fixation (renew at sign-in).
"""

from __future__ import annotations

import re
import statistics
import time

import argon2
import pytest
import requests

from tests.helpers import PASSWORD, OAuthFlow, csrf_of, make_client, make_user


@pytest.fixture(autouse=True)
def _cheap_argon2():
    """Overrides tests/conftest.py's fixture of that name: sign-in is about the production
    hash, so this module keeps RFC 9106's parameters (the default hasher)."""
    yield


@pytest.fixture
def alice(app):
    return make_user(app)


def _post_login(http: requests.Session, base_url: str, username: str, password: str,
                nxt: str | None = None) -> requests.Response:
    page = http.get(base_url + "/login" + (f"?next={nxt}" if nxt else ""))
    data = {"csrf_token": csrf_of(page.text), "username": username, "password": password}
    if nxt is not None:
        data["next"] = re.search(r'name="next" value="([^"]*)"', page.text).group(1)
    return http.post(base_url + "/login", data=data, allow_redirects=False)


def _session(app, http: requests.Session) -> dict:
    """The signed session cookie, read with the app's own serializer."""
    cookie = http.cookies.get(app.config["SESSION_COOKIE_NAME"])
    if cookie is None:
        return {}
    return dict(app.session_interface.get_signing_serializer(app).loads(cookie))


def _stored_hash(app, username: str) -> str:
    from authserver import store
    with app.app_context():
        return store.accounts.get_user_by_username(username).password_hash


def test_login_succeeds_and_lands_on_next(alice, base_url):
    http = requests.Session()
    resp = _post_login(http, base_url, "alice", PASSWORD, nxt="/authorize/continue?req=x")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/authorize/continue?req=x")


def test_login_next_is_never_an_open_redirect(alice, base_url):
    for nxt in ("https://evil.example.org/", "//evil.example.org/x", "/\\evil.example.org",
                "javascript:alert(1)"):
        resp = _post_login(requests.Session(), base_url, "alice", PASSWORD, nxt=nxt)
        assert resp.status_code == 303
        loc = resp.headers["Location"]
        assert "evil" not in loc and "javascript" not in loc, loc


def test_login_unknown_user_and_wrong_password_look_the_same(app, alice, base_url):
    from authserver import store
    from authserver.extensions import db
    make_user(app, "disabled")
    with app.app_context():
        store.accounts.get_user_by_username("disabled").disabled = True
        db.session.commit()
    answers = []
    for username, password in (("alice", "wrong password!"), ("nobody", PASSWORD),
                               ("disabled", PASSWORD), ("", ""), ("ALICE", "wrong password!")):
        resp = _post_login(requests.Session(), base_url, username, password)
        message = re.search(r'<p class="error[^"]*" role="alert"[^>]*>([^<]*)</p>',
                            resp.text).group(1)
        answers.append((resp.status_code, message))
    assert len(set(answers)) == 1, answers
    assert answers[0][0] == 401 and "Wrong username or password" in answers[0][1]


def test_login_unknown_user_takes_about_as_long_as_a_wrong_password(alice, base_url):
    http = requests.Session()
    page = http.get(base_url + "/login")
    token = csrf_of(page.text)

    def attempt(username: str) -> float:
        t = time.perf_counter()
        r = http.post(base_url + "/login", data={"csrf_token": token, "username": username,
                                                 "password": "not the password"},
                      allow_redirects=False)
        assert r.status_code == 401
        return time.perf_counter() - t

    attempt("nobody")  # the dummy hash is made once per process, on first use
    known, unknown = [], []
    for _ in range(5):  # interleaved, medians: a busy moment of the shared CPU hits both
        known.append(attempt("alice"))
        unknown.append(attempt("nobody-" + str(len(unknown))))
    ratio = statistics.median(unknown) / statistics.median(known)
    # Both verify one argon2id hash (~0.1-0.5 s). A skipped verification, or a dummy hash
    # of much weaker parameters, answers an unknown username 10-100x faster: caught by the
    # lower bound; the bounds are wide enough for a loaded 2-core machine.
    assert 0.25 < ratio < 4.0, (known, unknown)


def test_login_password_is_stored_with_rfc9106_second_option_or_stronger(app, alice):
    params = argon2.extract_parameters(_stored_hash(app, "alice"))
    assert params.type is argon2.Type.ID
    assert params.time_cost >= 3 and params.memory_cost >= 65536
    assert params.parallelism >= 4 and params.hash_len >= 32 and params.salt_len >= 16


def test_login_rehashes_a_password_made_with_old_parameters(app, alice, base_url):
    from authserver import store
    from authserver.auth import passwords
    from authserver.extensions import db
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with app.app_context():
        store.accounts.get_user_by_username("alice").password_hash = weak
        db.session.commit()
    resp = _post_login(requests.Session(), base_url, "alice", PASSWORD)
    assert resp.status_code == 303
    upgraded = _stored_hash(app, "alice")
    assert upgraded != weak
    params = argon2.extract_parameters(upgraded)
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        passwords.TIME_COST, passwords.MEMORY_COST, passwords.PARALLELISM) == (3, 65536, 4)
    # and the new hash still signs in
    assert _post_login(requests.Session(), base_url, "alice", PASSWORD).status_code == 303


def test_login_wrong_password_does_not_rehash(app, alice, base_url):
    from authserver import store
    from authserver.extensions import db
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with app.app_context():
        store.accounts.get_user_by_username("alice").password_hash = weak
        db.session.commit()
    assert _post_login(requests.Session(), base_url, "alice", "wrong!!!").status_code == 401
    assert _stored_hash(app, "alice") == weak


def test_login_renews_the_session(app, alice, base_url):
    http = requests.Session()
    http.get(base_url + "/login")
    before = _session(app, http)
    cookie_before = http.cookies.get(app.config["SESSION_COOKIE_NAME"])
    assert "sid" not in before
    assert _post_login(http, base_url, "alice", PASSWORD).status_code == 303
    after = _session(app, http)
    assert after["sid"] and after.get("csrf_token") != before.get("csrf_token")
    # The pre-sign-in cookie (one an attacker could have planted) is not signed in.
    planted = requests.Session()
    planted.cookies.set(app.config["SESSION_COOKIE_NAME"], cookie_before)
    resp = planted.get(base_url + "/account", allow_redirects=False)
    assert resp.status_code == 303 and "/login" in resp.headers["Location"]
    # Signing in again gives a new server-side session.
    assert _post_login(http, base_url, "alice", PASSWORD).status_code == 303
    assert _session(app, http)["sid"] != after["sid"]


def test_login_session_cookie_is_http_only_and_lax(alice, base_url):
    http = requests.Session()
    resp = _post_login(http, base_url, "alice", PASSWORD)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_without_csrf_token_is_refused(alice, base_url):
    resp = requests.post(base_url + "/login", data={"username": "alice",
                                                    "password": PASSWORD},
                         allow_redirects=False)
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_login_patient_gets_their_own_record_as_context(app, alice, base_url):
    client = make_client(app)
    flow = OAuthFlow(base_url, client, requests.Session())
    body = flow.run()
    assert body["patient"] == "p1"


def test_login_username_is_case_insensitive_and_unique(app, alice, base_url):
    from authserver.services import accounts, admin_console

    resp = _post_login(requests.Session(), base_url, "ALICE", PASSWORD)
    assert resp.status_code == 303
    with app.app_context(), pytest.raises(admin_console.AdminError, match="already exists"):
        accounts.create_user("Alice", "patient", password=PASSWORD)
    with app.app_context(), pytest.raises(admin_console.AdminError, match="username"):
        accounts.create_user("mallory\n", "patient", password=PASSWORD)
