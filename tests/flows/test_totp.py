"""TOTP second sign-in step and first-sign-in enrolment, through real HTTP.

RFC 6238 (https://www.rfc-editor.org/rfc/rfc6238): 30 s steps, one step of drift either side
(§5.2); a code is accepted once only (the last used step is remembered, §5.2 "the verifier
MUST NOT accept the second attempt of the OTP after the successful validation"). Clinicians
and admins must have TOTP and enrol right after the password; 5 wrong codes in a sign-in
start it over.
"""

from __future__ import annotations

import copy
import html
import re
import time

import pyotp
import requests

from tests.helpers import (
    PASSWORD,
    OAuthFlow,
    csrf_of,
    make_client,
    make_clinician,
    make_user,
    query_of,
    totp_code,
)

USER_SCOPES = "openid fhirUser user/*.rs"


def _password(base_url: str, http: requests.Session, username: str,
              nxt: str = "/account") -> requests.Response:
    page = http.get(base_url + "/login", params={"next": nxt})
    return http.post(base_url + "/login", data={
        "csrf_token": csrf_of(page.text), "username": username, "password": PASSWORD,
        "next": nxt}, allow_redirects=False)


def _code(base_url: str, http: requests.Session, code: str,
          nxt: str = "/account") -> requests.Response:
    page = http.get(base_url + "/login/totp", params={"next": nxt}, allow_redirects=False)
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    return http.post(base_url + "/login/totp", data={
        "csrf_token": csrf_of(page.text), "code": code, "next": nxt}, allow_redirects=False)


def _signed_in(base_url: str, http: requests.Session) -> bool:
    """Is the cookie jar signed in? (/account opens for a signed-in user and sends anyone
    else to /login; /authorize/continue for an unknown request is now its expired page for
    everyone.)"""
    resp = http.get(base_url + "/account", allow_redirects=False)
    assert resp.status_code in (200, 303), resp.status_code
    return resp.status_code == 200


def _clinician_flow(base_url: str, app) -> OAuthFlow:
    client = make_client(app, scope=USER_SCOPES + " offline_access")
    flow = OAuthFlow(base_url, client, requests.Session(), scope=USER_SCOPES)
    flow.authorize()
    flow.follow()
    return flow


# ---- the second step ------------------------------------------------------------------------

def test_clinician_with_totp_signs_in_with_code(app, base_url):
    user = make_clinician(app)
    flow = _clinician_flow(base_url, app)
    flow.login("drsmith")
    assert flow.last.status_code == 200 and 'name="code"' in flow.last.text
    assert 'autocomplete="one-time-code"' in flow.last.text
    flow.totp(totp_code(user["secret"]))
    assert 'name="decision"' in flow.last.text  # signed in: the consent page
    flow.consent()
    token = flow.token(flow.code())
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == USER_SCOPES
    assert "patient" not in token.json()


def test_patient_with_totp_gets_the_second_step(app, base_url, http):
    make_user(app)
    from authserver.services import accounts

    with app.app_context():
        secret = accounts.enrol_totp("alice")["secret"]
    resp = _password(base_url, http, "alice")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/totp")
    assert not _signed_in(base_url, http)
    resp = _code(base_url, http, totp_code(secret))
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert _signed_in(base_url, http)


def test_totp_code_reused_refused(app, base_url):
    user = make_clinician(app)
    code = totp_code(user["secret"])
    first = requests.Session()
    _password(base_url, first, "drsmith")
    assert _code(base_url, first, code).status_code == 303
    second = requests.Session()
    _password(base_url, second, "drsmith")
    resp = _code(base_url, second, code)  # the same step again: a replay
    assert resp.status_code == 401
    assert "That code is not right." in resp.text
    assert not _signed_in(base_url, second)
    resp = _code(base_url, second, totp_code(user["secret"], ahead=1))  # the next step
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert _signed_in(base_url, second)


def test_totp_code_of_an_older_step_refused_after_a_newer_one(app, base_url):
    user = make_clinician(app)
    first = requests.Session()
    _password(base_url, first, "drsmith")
    assert _code(base_url, first, totp_code(user["secret"], ahead=1)).status_code == 303
    second = requests.Session()
    _password(base_url, second, "drsmith")
    # Within the window, but not after the last used step: refused.
    assert _code(base_url, second, totp_code(user["secret"])).status_code == 401
    assert not _signed_in(base_url, second)


def test_totp_code_outside_window_refused(app, base_url, http):
    user = make_clinician(app)
    _password(base_url, http, "drsmith")
    far = totp_code(user["secret"], ahead=3)
    assert _code(base_url, http, far).status_code == 401
    assert _code(base_url, http, "12345").status_code == 401  # malformed
    assert not _signed_in(base_url, http)


def test_five_wrong_codes_restart_sign_in(app, base_url, http):
    user = make_clinician(app)
    good = totp_code(user["secret"])
    wrong = "000000" if good != "000000" else "111111"
    _password(base_url, http, "drsmith")
    for _ in range(4):
        resp = _code(base_url, http, wrong)
        assert resp.status_code == 401 and "That code is not right." in resp.text
    resp = _code(base_url, http, wrong)
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/login?")
    assert query_of(resp.headers["Location"])["restarted"] == "1"
    assert "Too many wrong codes" in http.get(base_url + resp.headers["Location"]).text
    # The sign-in is over: the right code no longer helps without the password.
    page = http.get(base_url + "/login/totp", allow_redirects=False)
    assert page.status_code == 303 and page.headers["Location"].startswith("/login")
    assert not _signed_in(base_url, http)
    # Starting over (password again) works.
    _password(base_url, http, "drsmith")
    resp = _code(base_url, http, good)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"


def test_replayed_cookie_cannot_reset_wrong_code_count(app, base_url, http):
    """The count lives on the server: an attacker who kept the cookie from just after the
    password cannot resend it for five more guesses."""
    user = make_clinician(app)
    _password(base_url, http, "drsmith")
    saved = copy.deepcopy(http.cookies)
    for _ in range(5):
        _code(base_url, http, "000000" if totp_code(user["secret"]) != "000000" else "111111")
    replay = requests.Session()
    replay.cookies = saved
    page = replay.get(base_url + "/login/totp")
    resp = replay.post(base_url + "/login/totp", data={
        "csrf_token": csrf_of(page.text), "code": totp_code(user["secret"]),
        "next": "/account"}, allow_redirects=False)
    assert resp.status_code == 303
    assert query_of(resp.headers["Location"]).get("restarted") == "1"
    assert not _signed_in(base_url, replay)


def test_wrong_codes_are_counted_per_sign_in(app, base_url):
    """Four wrong codes in one sign-in do not count against the next one."""
    user = make_clinician(app)
    first = requests.Session()
    _password(base_url, first, "drsmith")
    for _ in range(4):
        assert _code(base_url, first, "000000" if totp_code(user["secret"]) != "000000"
                     else "111111").status_code == 401
    second = requests.Session()
    _password(base_url, second, "drsmith")
    for _ in range(4):
        assert _code(base_url, second, "000000" if totp_code(user["secret"]) != "000000"
                     else "111111").status_code == 401
    resp = _code(base_url, second, totp_code(user["secret"]))
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"


def test_totp_step_needs_the_password_first(app, base_url, http):
    make_clinician(app)
    page = http.get(base_url + "/login/totp", allow_redirects=False)
    assert page.status_code == 303 and page.headers["Location"].startswith("/login")
    page = http.get(base_url + "/login/enrol", allow_redirects=False)
    assert page.status_code == 303 and page.headers["Location"].startswith("/login")


# ---- enrolment -------------------------------------------------------------------------------

_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


def test_clinician_without_totp_enrols_on_first_sign_in(app, base_url):
    make_clinician(app, totp=False)
    flow = _clinician_flow(base_url, app)
    resp = flow.http.post(base_url + "/login", data={
        "csrf_token": csrf_of(flow.last.text), "username": "drsmith", "password": PASSWORD,
        "next": re.search(r'name="next" value="([^"]*)"', flow.last.text).group(1)},
        allow_redirects=False)
    page = flow.follow(resp)
    assert page.url.startswith(base_url + "/login/enrol"), page.url
    assert page.status_code == 200
    secret = _SECRET.search(page.text).group(1)  # never an enrolment page without a secret
    assert len(secret) == 32
    assert "<svg" in page.text  # the QR code, drawn inline by segno
    assert not _signed_in(base_url, flow.http)
    # The same secret is shown again on reload (one secret per sign-in).
    again = flow.http.get(page.url)
    assert _SECRET.search(again.text).group(1) == secret
    # A wrong code is refused and the secret stays.
    nxt = re.search(r'name="next" value="([^"]*)"', page.text).group(1)
    bad = flow.http.post(base_url + "/login/enrol", data={
        "csrf_token": csrf_of(page.text), "code": "12345", "next": nxt}, allow_redirects=False)
    assert bad.status_code == 401 and _SECRET.search(bad.text).group(1) == secret
    enrol_at = time.time()
    used = pyotp.TOTP(secret).at(enrol_at)
    resp = flow.http.post(base_url + "/login/enrol", data={
        "csrf_token": csrf_of(page.text), "code": used, "next": nxt},
        allow_redirects=False)
    # Signed in; the recovery codes are shown once, then "continue" goes back to the app.
    assert resp.status_code == 200 and 'id="recovery-codes"' in resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    cont = re.search(r'id="continue" href="([^"]*)"', resp.text).group(1)
    assert html.unescape(cont) == nxt
    flow.follow(flow.http.get(base_url + html.unescape(cont), allow_redirects=False))
    assert 'name="decision"' in flow.last.text  # signed in, back in the app's flow
    flow.consent()
    assert flow.token(flow.code()).status_code == 200
    # The next sign-in asks for a code from the enrolled secret (the next step: the one just
    # used for enrolment is spent).
    other = requests.Session()
    resp = _password(base_url, other, "drsmith")
    assert resp.headers["Location"].startswith("/login/totp")
    # The very code used at enrolment (not "now", which may be the next step by this time).
    assert _code(base_url, other, used).status_code == 401
    resp = _code(base_url, other, pyotp.TOTP(secret).at(enrol_at + 30))
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"


def test_admin_without_totp_must_enrol(app, base_url, http):
    make_clinician(app, "root", totp=False, role="admin", fhir_user=None)
    resp = _password(base_url, http, "root")
    page = http.get(base_url + resp.headers["Location"], allow_redirects=False)
    assert page.status_code == 303 and page.headers["Location"].startswith("/login/enrol")
    assert not _signed_in(base_url, http)


def test_patient_without_totp_is_not_asked_to_enrol(app, base_url, http):
    make_user(app)
    resp = _password(base_url, http, "alice")
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert _signed_in(base_url, http)


def test_second_enrolment_page_cannot_replace_confirmed_secret(app, base_url):
    """Two sign-ins with the password both reach enrolment; once one confirms, the other
    (say, an attacker who also knows the password) cannot swap in its own secret."""
    make_clinician(app, totp=False)
    pages = []
    for _ in range(2):
        http = requests.Session()
        _password(base_url, http, "drsmith")
        page = http.get(base_url + "/login/enrol", params={"next": "/account"})
        pages.append((http, page, _SECRET.search(page.text).group(1)))
    (user_http, user_page, user_secret), (evil_http, evil_page, evil_secret) = pages
    assert user_secret != evil_secret
    resp = user_http.post(base_url + "/login/enrol", data={
        "csrf_token": csrf_of(user_page.text), "code": pyotp.TOTP(user_secret).now(),
        "next": "/account"}, allow_redirects=False)
    assert resp.status_code == 200 and _signed_in(base_url, user_http)
    resp = evil_http.post(base_url + "/login/enrol", data={
        "csrf_token": csrf_of(evil_page.text), "code": pyotp.TOTP(evil_secret).now(),
        "next": "/account"}, allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login/totp")
    assert not _signed_in(base_url, evil_http)
    # The user's secret is still the one in force.
    other = requests.Session()
    _password(base_url, other, "drsmith")
    assert _code(base_url, other, totp_code(evil_secret, ahead=1)).status_code == 401
    resp = _code(base_url, other, totp_code(user_secret, ahead=1))
    assert resp.status_code == 303 and _signed_in(base_url, other)
