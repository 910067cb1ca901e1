"""Recovery codes and the account page's two-step section, through real HTTP.

A recovery code is typed in the TOTP step's ``code`` field (CONTRACT.md); each works once,
a wrong one counts like a wrong TOTP code, using one is audited with how many are left. The
account page turns two-step sign-in on, replaces the authenticator, turns it off where the
role allows, and makes new codes; every change asks for the current password and is a POST
with its CSRF token.
"""

from __future__ import annotations

import re

import pyotp
import pytest
import requests

from tests.helpers import PASSWORD, csrf_of, make_clinician, make_user, query_of, totp_code

_CODES = re.compile(r"<li><code>([0-9a-z]{5}-[0-9a-z]{5})</code></li>")
_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


@pytest.fixture
def live_config() -> dict:
    # Many sign-ins from one address within a minute: the per-address limit is not the
    # subject here (tests/flows/test_brute_force.py is).
    return {"LOGIN_RATE_LIMIT": "1000 per minute"}


def _password(base_url: str, http: requests.Session, username: str) -> requests.Response:
    page = http.get(base_url + "/login", params={"next": "/account"})
    return http.post(base_url + "/login", data={
        "csrf_token": csrf_of(page.text), "username": username, "password": PASSWORD,
        "next": "/account"}, allow_redirects=False)


def _code(base_url: str, http: requests.Session, code: str) -> requests.Response:
    page = http.get(base_url + "/login/totp", params={"next": "/account"})
    assert page.status_code == 200, page.url
    return http.post(base_url + "/login/totp", data={
        "csrf_token": csrf_of(page.text), "code": code, "next": "/account"},
        allow_redirects=False)


def _sign_in(base_url: str, username: str, code: str) -> requests.Session:
    http = requests.Session()
    assert _password(base_url, http, username).headers["Location"].startswith("/login/totp")
    resp = _code(base_url, http, code)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account", resp.text[:300]
    return http


def _post(base_url: str, http: requests.Session, path: str, **form: str) -> requests.Response:
    page = http.get(base_url + path)
    assert page.status_code == 200, (path, page.status_code)
    return http.post(base_url + path, data={"csrf_token": csrf_of(page.text), **form},
                     allow_redirects=False)


def _new_codes(base_url: str, http: requests.Session) -> list[str]:
    resp = _post(base_url, http, "/account/two-step/recovery-codes", current_password=PASSWORD)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert "Your old recovery codes no longer work." in resp.text
    codes = _CODES.findall(resp.text)
    assert len(codes) == 10
    return codes


def _clinician_with_codes(app, base_url) -> tuple[dict, list[str]]:
    user = make_clinician(app)
    return user, _new_codes(base_url, _sign_in(base_url, "drsmith", totp_code(user["secret"])))


def _signed_in(base_url: str, http: requests.Session) -> bool:
    resp = http.get(base_url + "/account", allow_redirects=False)
    return resp.status_code == 200


def _events(app, event: str) -> list:
    from authserver.extensions import db
    from authserver.models import AuditEvent

    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == event)
                                  .order_by(AuditEvent.id)).all()
        db.session.expunge_all()
        return rows


def _has_totp(app, username: str) -> bool:
    from authserver import store

    with app.app_context():
        return store.accounts.get_user_by_username(username).has_totp


# ---- the TOTP step --------------------------------------------------------------------------

def test_recovery_code_signs_in_once_and_is_refused_the_second_time(app, base_url):
    user, codes = _clinician_with_codes(app, base_url)
    http = _sign_in(base_url, "drsmith", codes[3])
    assert _signed_in(base_url, http)
    used = _events(app, "login.recovery_code_used")
    assert len(used) == 1 and used[0].user_id == user["id"]
    assert used[0].detail == {"remaining": 9}
    again = requests.Session()
    _password(base_url, again, "drsmith")
    resp = _code(base_url, again, codes[3])
    assert resp.status_code == 401 and "has been used already" in resp.text
    # The error is on the recovery-code field, whose section is open.
    assert re.search(r'id="recovery-code"[^>]*aria-invalid="true" '
                     r'aria-describedby="recovery-code-error"', resp.text)
    assert 'id="recovery-code-error"' in resp.text
    assert '<details class="recovery" open>' in resp.text
    assert not _signed_in(base_url, again)


def test_recovery_code_typed_with_spaces_and_capitals_is_accepted(app, base_url):
    _, codes = _clinician_with_codes(app, base_url)
    typed = "  " + codes[0].upper().replace("-", " ") + " "
    assert _signed_in(base_url, _sign_in(base_url, "drsmith", typed))
    typed = codes[1].replace("-", "").upper()  # no dash at all
    assert _signed_in(base_url, _sign_in(base_url, "drsmith", typed))


def test_wrong_recovery_codes_count_like_wrong_totp_codes(app, base_url):
    _, codes = _clinician_with_codes(app, base_url)
    http = requests.Session()
    _password(base_url, http, "drsmith")
    for guess in ("aaaaa-bbbbb", "ccccc-ddddd", "eeeee-fffff", "ggggg-hhhhh"):
        assert _code(base_url, http, guess).status_code == 401
    resp = _code(base_url, http, "jjjjj-kkkkk")  # the fifth wrong code: start over
    assert resp.status_code == 303 and query_of(resp.headers["Location"])["restarted"] == "1"
    failed = _events(app, "login.totp_failed")
    assert len(failed) == 5 and all(e.detail == {"recovery_code": True} for e in failed)
    # ... and toward the account's lockout (TOTP_LOCKOUT_FAILURES = 10 across sign-ins).
    http = requests.Session()
    _password(base_url, http, "drsmith")
    assert [_code(base_url, http, "mmmmm-nnnnn").status_code for _ in range(5)] == \
        [401] * 4 + [429]
    fresh = requests.Session()
    _password(base_url, fresh, "drsmith")
    resp = _code(base_url, fresh, codes[0])  # a right code is not looked at while locked
    assert resp.status_code == 429 and not _signed_in(base_url, fresh)


def test_totp_step_names_who_signs_in_and_start_over_ends_it(app, base_url, http):
    user = make_clinician(app)
    _password(base_url, http, "drsmith")
    page = http.get(base_url + "/login/totp", params={"next": "/account?x=1"})
    assert re.search(r"Signing in as <strong>drsmith</strong>", page.text)
    wrong = "000000" if totp_code(user["secret"]) != "000000" else "111111"
    resp = http.post(base_url + "/login/totp", data={
        "csrf_token": csrf_of(page.text), "code": wrong, "next": "/account"})
    assert re.search(r'id="code"[^>]*aria-invalid="true" aria-describedby="code-error"',
                     resp.text) and 'id="code-error"' in resp.text
    resp = http.post(base_url + "/login/restart", data={
        "csrf_token": csrf_of(page.text), "next": "/account?x=1"}, allow_redirects=False)
    assert resp.status_code == 303
    assert query_of(resp.headers["Location"]) == {"next": "/account?x=1"}
    # The half-done sign-in is over: the right code is no use without the password.
    again = http.get(base_url + "/login/totp", allow_redirects=False)
    assert again.status_code == 303 and again.headers["Location"].startswith("/login")


# ---- the account page -----------------------------------------------------------------------

def test_account_page_counts_the_codes_left_and_says_when_none_are(app, base_url):
    _, codes = _clinician_with_codes(app, base_url)
    http = _sign_in(base_url, "drsmith", codes[0])
    page = http.get(base_url + "/account").text
    assert re.search(r"You have <strong>9</strong> unused recovery codes\.", page)
    assert re.search(r'One was last used on <time datetime="[^"]+">'
                     r"\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>", page)
    for code in codes[1:]:
        http = _sign_in(base_url, "drsmith", code)
    page = http.get(base_url + "/account").text
    assert "You have no recovery codes left." in page and 'id="regenerate-codes"' in page


def test_new_codes_replace_every_old_one_and_need_the_password(app, base_url):
    user, old = _clinician_with_codes(app, base_url)
    http = _sign_in(base_url, "drsmith", old[0])
    resp = _post(base_url, http, "/account/two-step/recovery-codes", current_password="nope")
    assert resp.status_code == 401 and not _CODES.search(resp.text)
    assert re.search(r'id="current_password"[^>]*aria-invalid="true" '
                     r'aria-describedby="current_password-error"', resp.text)
    new = _new_codes(base_url, http)
    assert not set(new) & set(old)
    refused = requests.Session()
    _password(base_url, refused, "drsmith")
    assert _code(base_url, refused, old[1]).status_code == 401
    assert _signed_in(base_url, _sign_in(base_url, "drsmith", new[1]))
    rows = _events(app, "user.recovery_codes_regenerated")
    assert [(r.user_id, r.detail) for r in rows] == [(user["id"], {"count": 10})] * 2


def test_removal_is_refused_for_a_clinician(app, base_url):
    user = make_clinician(app)
    http = _sign_in(base_url, "drsmith", totp_code(user["secret"]))
    page = http.get(base_url + "/account").text
    assert 'id="remove-totp"' not in page and "cannot be turned off" in page
    resp = _post(base_url, http, "/account/two-step/remove", current_password=PASSWORD)
    assert resp.status_code == 403 and "cannot be turned off" in resp.text
    assert _has_totp(app, "drsmith") and not _events(app, "user.totp_removed")


def test_patient_turns_two_step_on_and_off_with_the_password(app, base_url, http):
    alice = make_user(app)
    _password(base_url, http, "alice")
    page = http.get(base_url + "/account").text
    assert "Two-step sign-in is <strong>off</strong>" in page and 'id="enrol-totp"' in page
    setup = http.get(base_url + "/account/two-step/setup")
    secret = _SECRET.search(setup.text).group(1)
    form = {"csrf_token": csrf_of(setup.text), "code": pyotp.TOTP(secret).now()}
    resp = http.post(base_url + "/account/two-step/setup",
                     data={**form, "current_password": "wrong"}, allow_redirects=False)
    assert resp.status_code == 401 and not _has_totp(app, "alice")
    resp = http.post(base_url + "/account/two-step/setup",
                     data={**form, "current_password": PASSWORD}, allow_redirects=False)
    assert resp.status_code == 200 and len(_CODES.findall(resp.text)) == 10
    assert _has_totp(app, "alice") and len(_events(app, "user.totp_enrolled")) == 1
    assert 'href="/account"' in resp.text
    # The next sign-in asks for a code.
    other = requests.Session()
    assert _password(base_url, other, "alice").headers["Location"].startswith("/login/totp")
    # Off: the password again, then the secret and the codes are gone.
    resp = _post(base_url, http, "/account/two-step/remove", current_password="wrong")
    assert resp.status_code == 401 and _has_totp(app, "alice")
    resp = _post(base_url, http, "/account/two-step/remove", current_password=PASSWORD)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert "Two-step sign-in is off." in http.get(base_url + "/account").text
    assert not _has_totp(app, "alice") and len(_events(app, "user.totp_removed")) == 1
    from authserver import store

    with app.app_context():
        assert store.recovery_codes.remaining(alice["id"]) == 0
    assert _password(base_url, requests.Session(), "alice").headers["Location"] == "/account"


def test_replacing_the_authenticator_retires_the_old_one(app, base_url):
    user = make_clinician(app)
    http = _sign_in(base_url, "drsmith", totp_code(user["secret"]))
    setup = http.get(base_url + "/account/two-step/setup")
    assert "Replace your authenticator app" in setup.text
    new_secret = _SECRET.search(setup.text).group(1)
    resp = http.post(base_url + "/account/two-step/setup", data={
        "csrf_token": csrf_of(setup.text), "code": totp_code(new_secret),
        "current_password": PASSWORD}, allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert len(_events(app, "user.totp_replaced")) == 1
    old = requests.Session()
    _password(base_url, old, "drsmith")
    assert _code(base_url, old, totp_code(user["secret"], ahead=1)).status_code == 401
    assert _signed_in(base_url, _sign_in(base_url, "drsmith", totp_code(new_secret, ahead=1)))


@pytest.mark.parametrize("path", ["/account/two-step/remove", "/account/two-step/recovery-codes",
                                  "/account/two-step/setup"])
def test_a_change_without_its_csrf_token_is_refused(app, base_url, http, path):
    make_user(app)
    _password(base_url, http, "alice")
    resp = http.post(base_url + path, data={"current_password": PASSWORD, "code": "123456"},
                     allow_redirects=False)
    assert resp.status_code == 400
    assert not _events(app, "user.totp_removed") and not _events(
        app, "user.recovery_codes_regenerated") and not _has_totp(app, "alice")


def test_account_two_step_pages_need_a_sign_in(app, base_url, http):
    for path in ("/account/two-step/setup", "/account/two-step/remove",
                 "/account/two-step/recovery-codes"):
        resp = http.get(base_url + path, allow_redirects=False)
        assert resp.status_code == 303
        assert query_of(resp.headers["Location"]) == {"next": path}
