"""Brute force, counted where it cannot be dodged: wrong TOTP codes per account across
sign-ins, wrong passwords per username from any number of addresses, and sign-in attempts
per address — behind one trusted proxy hop (TRUST_PROXY=1), so addresses are simulated with
X-Forwarded-For over real HTTP.

OWASP Authentication Cheat Sheet, "Protect against automated attacks"; RFC 6238 §5.2 ("the
validation system should ... take measures against brute force attacks").
"""

from __future__ import annotations

import contextlib
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest
import requests

from tests.helpers import PASSWORD, csrf_of, make_clinician, make_user


@pytest.fixture
def live_config() -> dict:
    return {"TRUST_PROXY": 1}  # one proxy hop: X-Forwarded-For names the client


def _from(address: str) -> dict:
    return {"X-Forwarded-For": address}


def _password(base_url: str, http: requests.Session, username: str, password: str = PASSWORD,
              address: str = "192.0.2.1") -> requests.Response:
    page = http.get(base_url + "/login", params={"next": "/account"}, headers=_from(address))
    return http.post(base_url + "/login", headers=_from(address), allow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "username": username, "password": password,
        "next": "/account"})


def _code(base_url: str, http: requests.Session, code: str,
          address: str = "192.0.2.1") -> requests.Response:
    # The CSRF token of this cookie jar (the locked TOTP page has no form to take it from).
    page = http.get(base_url + "/login", headers=_from(address))
    return http.post(base_url + "/login/totp", headers=_from(address), allow_redirects=False,
                     data={"csrf_token": csrf_of(page.text), "code": code, "next": "/account"})


def _signed_in(base_url: str, http: requests.Session) -> bool:
    """The account page opens (a signed-out browser is sent to sign in). Not
    /authorize/continue: an unknown request there is now its expired page either way."""
    resp = http.get(base_url + "/account", allow_redirects=False)
    assert resp.status_code in (200, 303), resp.status_code
    return resp.status_code == 200


def _wrong(secret: str) -> str:
    """A code no step of the accepted window (now, and one either side) gives."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time() + 30 * k) for k in (-1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in near)


def totp_code_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def _events(app, event: str) -> list:
    from authserver.extensions import db
    from authserver.models import AuditEvent

    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == event)
                                  .order_by(AuditEvent.id)).all()
        db.session.expunge_all()
        return rows


def _user(app, username: str):
    from authserver import store
    from authserver.extensions import db
    with app.app_context():
        user = store.accounts.get_user_by_username(username)
        db.session.expunge(user)
        return user


def _error(resp: requests.Response) -> str:
    return re.search(r'<p class="error" role="alert"[^>]*>([^<]*)</p>', resp.text).group(1)


def _wait_until(later: contextlib.ExitStack, t: int) -> None:
    """Let the server's clock reach the whole-second Unix time ``t`` (no sleeping: it is
    shifted ahead, in ``later``, until the test ends)."""
    from authserver import clock

    later.enter_context(clock.shifted(max(0, t - clock.now())))


# ---- TOTP: per account, across sign-ins ------------------------------------------------------

def test_totp_fifteen_wrong_codes_over_three_sign_ins_lock_the_second_step(app, base_url):
    user = make_clinician(app)
    wrong = _wrong(user["secret"])
    answers = []
    for _ in range(3):
        http = requests.Session()
        assert _password(base_url, http, "drsmith").headers["Location"].startswith(
            "/login/totp")
        answers.append([_code(base_url, http, wrong).status_code for _ in range(5)])
    # 1st sign-in: four refusals, then the fifth starts it over (the per-sign-in limit);
    # 2nd: the 10th wrong code in 15 minutes locks the step; 3rd: locked throughout.
    assert answers == [[401] * 4 + [303], [401] * 4 + [429], [429] * 5]
    # Now even the right code is refused, in this sign-in and in a new one.
    resp = _code(base_url, http, totp_code_now(user["secret"]))
    assert resp.status_code == 429 and "locked" in _error(resp)
    assert int(resp.headers["Retry-After"]) > 800
    assert not _signed_in(base_url, http)
    fresh = requests.Session()
    assert _password(base_url, fresh, "drsmith").status_code == 303
    page = fresh.get(base_url + "/login/totp", params={"next": "/account"})
    assert page.status_code == 200 and 'id="totp-locked"' in page.text
    assert 'name="code"' not in page.text
    assert re.search(r"locked for about 15 minutes \(until \d\d:\d\d UTC\)", page.text)
    resp = _code(base_url, fresh, totp_code_now(user["secret"]))
    assert resp.status_code == 429 and not _signed_in(base_url, fresh)
    # One lockout, in the audit log; codes sent while locked were not even looked at.
    locked = _events(app, "login.totp_locked")
    assert len(locked) == 1
    assert locked[0].user_id == user["id"] and locked[0].ip == "192.0.2.1"
    assert locked[0].detail["seconds"] == 900 and locked[0].detail["lockout"] == 1
    assert len(_events(app, "login.totp_failed")) == 10
    row = _user(app, "drsmith")
    assert row.totp_lockouts == 1
    assert row.totp_locked_until == locked[0].detail["until"]
    # 900 s from the wrong code that locked it; the audit row's own time is read a moment
    # later and may fall in the next second (a CI flake when it was compared exactly).
    assert 0 <= locked[0].at - (row.totp_locked_until - 900) <= 1


def test_totp_lockout_doubles_and_a_good_sign_in_ends_the_run(app, base_url):
    # Not about the numbers: 3 wrong codes lock for 1 s, 2 s: the server's clock moves on.
    from authserver import clock

    app.config.update(TOTP_LOCKOUT_FAILURES=3, TOTP_LOCKOUT_SECONDS=1)
    user = make_clinician(app)
    wrong = _wrong(user["secret"])

    def three_wrong() -> list[int]:
        http = requests.Session()
        _password(base_url, http, "drsmith")
        return [_code(base_url, http, wrong).status_code for _ in range(3)]

    with contextlib.ExitStack() as later:
        assert three_wrong() == [401, 401, 429]
        first = _user(app, "drsmith")
        _wait_until(later, first.totp_locked_until)
        # The codes from before the first lockout ended do not count again: three new ones lock.
        assert three_wrong() == [401, 401, 429]
        second = _user(app, "drsmith")
        seconds = [e.detail["seconds"] for e in _events(app, "login.totp_locked")]
        assert seconds == [1, 2] and second.totp_lockouts == 2
        _wait_until(later, second.totp_locked_until)
        http = requests.Session()
        _password(base_url, http, "drsmith")
        assert _code(base_url, http, totp_code_now(user["secret"])).status_code == 303
        assert _signed_in(base_url, http)
        after = _user(app, "drsmith")
        assert after.totp_lockouts == 0 and after.totp_locked_until <= clock.now()
        # The run is over: the next lockout is the first one again.
        assert three_wrong() == [401, 401, 429]
        assert [e.detail["seconds"] for e in _events(app, "login.totp_locked")] == [1, 2, 1]


# ---- passwords: per username, from any number of addresses --------------------------------

def test_wrong_passwords_from_many_addresses_lock_the_username(app, base_url):
    alice = make_user(app)
    make_user(app, "bob", fhir_user="Patient/p2")
    answers = [_password(base_url, requests.Session(), "alice", "not the password",
                         address=f"198.51.100.{i}").status_code for i in range(1, 11)]
    assert answers == [401] * 10
    # The 11th try, from yet another address and with the right password: refused.
    http = requests.Session()
    resp = _password(base_url, http, "alice", address="198.51.100.11")
    assert resp.status_code == 429 and not _signed_in(base_url, http)
    assert int(resp.headers["Retry-After"]) > 800
    assert "Too many failed sign-ins with this username" in _error(resp)
    assert 'name="password"' in resp.text  # the sign-in page, for another username
    # The lock is of the username's key (NFKC, case-folded), not of one spelling.
    assert _password(base_url, requests.Session(), "ALICE",
                     address="198.51.100.12").status_code == 429
    # Once in the audit log, with the address X-Forwarded-For named.
    locked = _events(app, "login.password_locked")
    assert [(e.user_id, e.ip) for e in locked] == [(alice["id"], "198.51.100.10")]
    assert [e.ip for e in _events(app, "login.failed")] == [
        f"198.51.100.{i}" for i in range(1, 11)]
    # Other accounts are untouched, from the same addresses.
    assert _password(base_url, requests.Session(), "bob",
                     address="198.51.100.11").status_code == 303


def test_password_lock_of_an_unknown_username_looks_the_same(app, base_url):
    make_user(app)
    messages = {}
    for username in ("alice", "nobody"):
        for i in range(10):
            assert _password(base_url, requests.Session(), username, "wrong password!",
                             address=f"203.0.113.{i}").status_code == 401
        resp = _password(base_url, requests.Session(), username, address="203.0.113.99")
        messages[username] = (resp.status_code, _error(resp))
    assert messages["alice"] == messages["nobody"]
    assert messages["alice"][0] == 429
    assert [e.user_id is None for e in _events(app, "login.password_locked")] == [False, True]


def test_a_right_password_starts_the_username_count_over(app, base_url):
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per 15 minutes"  # not about 10: a short test
    make_user(app)

    def sign_in(password: str, i: int) -> int:
        return _password(base_url, requests.Session(), "alice", password,
                         address=f"192.0.2.{100 + i}").status_code

    assert [sign_in("wrong password!", 0), sign_in("wrong password!", 1)] == [401, 401]
    assert sign_in(PASSWORD, 2) == 303
    assert [sign_in("wrong password!", i) for i in range(3, 6)] == [401, 401, 401]
    assert sign_in(PASSWORD, 6) == 429
    assert len(_events(app, "login.password_locked")) == 1


def test_parallel_wrong_passwords_cannot_slip_under_the_username_limit(app, base_url):
    """Each attempt is counted before its password is checked: of 16 sent at once from 16
    addresses, exactly 10 are looked at (401) and 6 refused (429)."""
    make_user(app)

    def guess(i: int) -> int:
        return _password(base_url, requests.Session(), "alice", f"guess number {i}",
                         address=f"198.18.0.{i}").status_code

    with ThreadPoolExecutor(16) as pool:
        answers = sorted(pool.map(guess, range(16)))
    assert answers == [401] * 10 + [429] * 6
    assert len(_events(app, "login.failed")) == 10
    assert len(_events(app, "login.password_locked")) == 1


# ---- sign-in attempts: per address ---------------------------------------------------------

def test_one_address_is_stopped_at_twenty_and_locks_no_one_else_out(app, base_url):
    make_user(app)
    http = requests.Session()
    token = csrf_of(http.get(base_url + "/login").text)
    answers = []
    for i in range(21):
        # A client's own X-Forwarded-For entry does not make it someone else: one trusted
        # hop means only the address the proxy appended (the last) counts.
        resp = http.post(base_url + "/login", allow_redirects=False,
                         headers=_from(f"10.9.8.{i}, 192.0.2.50"),
                         data={"csrf_token": token, "username": f"guess{i}",
                               "password": "Winter2026!"})
        answers.append(resp.status_code)
    assert answers == [401] * 20 + [429]
    assert "Too many attempts" in resp.text and "Traceback" not in resp.text
    assert resp.headers["Content-Type"].startswith("text/html")
    assert 0 < int(resp.headers["Retry-After"]) <= 60
    assert {e.ip for e in _events(app, "login.failed")} == {"192.0.2.50"}
    # Another address still signs in: one address cannot lock everyone out.
    other = requests.Session()
    resp = _password(base_url, other, "alice", address="192.0.2.51")
    assert resp.status_code == 303 and _signed_in(base_url, other)
