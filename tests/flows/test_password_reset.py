"""The forgotten-password link (/forgot, /reset/<token>; authserver/services/passwords.py)
through real HTTP and a real SMTP server (aiosmtpd on 127.0.0.1).

The link carries a 256-bit token stored only as its SHA-256, works once, expires after
PASSWORD_RESET_LIFETIME, and a newer link withdraws it. Asking answers alike for every
username; the reset ends every session, never signs in and leaves TOTP in place (OWASP
Forgot Password Cheat Sheet).
"""

from __future__ import annotations

import hashlib
import logging
import re
import statistics
import time

import pytest
import requests
from sqlalchemy import select

from authserver import clock
from tests.flows.test_log_secrets import debug_logs  # noqa: F401 (a fixture)
from tests.helpers import PASSWORD, csrf_of, make_clinician, make_user
from tests.smtp_sink import delivered, smtp_config, smtp_server

NEW = "a brand new sentence 7"
SENT = "If an account with an e-mail address matches, we sent a link"
EXPIRED = "This link has expired or was already used"
_LINK = re.compile(r"(http://127\.0\.0\.1:\d+/reset/([A-Za-z0-9_-]+))")


@pytest.fixture
def inbox():
    with smtp_server() as box:
        yield box


@pytest.fixture
def live_config(inbox):
    return {**smtp_config(inbox), "LOGIN_ACCOUNT_RATE_LIMIT": "3 per 15 minutes",
            "LOGIN_RATE_LIMIT": "8 per minute"}


@pytest.fixture
def alice(app):
    return make_user(app, email="alice@example.test")


def _forgot(base_url: str, username: str, s: requests.Session | None = None
            ) -> requests.Response:
    s = s or requests.Session()
    page = s.get(base_url + "/forgot")
    assert page.status_code == 200 and 'name="username"' in page.text
    return s.post(base_url + "/forgot", data={"csrf_token": csrf_of(page.text),
                                              "username": username})


def _link(inbox) -> tuple[str, str]:
    """(link, token) of the newest reset message."""
    body = [m for m in delivered(inbox) if "/reset/" in m.get_content()][-1].get_content()
    m = _LINK.search(body)
    assert m, body
    return m.group(1), m.group(2)


def _reset(link: str, password: str = NEW, confirm: str | None = None,
           s: requests.Session | None = None) -> requests.Response:
    s = s or requests.Session()
    page = s.get(link)
    if page.status_code != 200:
        return page
    return s.post(link, data={"csrf_token": csrf_of(page.text), "password": password,
                              "password_confirm": password if confirm is None else confirm},
                  allow_redirects=False)


def _sign_in(base_url: str, password: str, username: str = "alice",
             s: requests.Session | None = None) -> requests.Response:
    s = s or requests.Session()
    page = s.get(base_url + "/login")
    return s.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                             "username": username, "password": password},
                  allow_redirects=False)


def _rows(app, model_name: str) -> list:
    from authserver import models
    from authserver.extensions import db

    with app.app_context():
        db.session.remove()
        return list(db.session.scalars(select(getattr(models, model_name))))


# ---- the whole path ----------------------------------------------------------------------

def test_reset_by_mailed_link_sets_the_password_once(app, base_url, inbox, alice):
    resp = _forgot(base_url, "alice")
    assert resp.status_code == 200 and SENT in resp.text
    [msg] = delivered(inbox)
    assert msg["To"] == "alice@example.test" and "password" in msg["Subject"].lower()
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "works once" in body and "30 minutes" in body and "ignore this message" in body
    link, _ = _link(inbox)
    assert link.startswith(base_url + "/reset/")
    form = requests.get(link)
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    assert 'name="password"' in form.text and 'name="password_confirm"' in form.text
    assert "alice" in form.text
    done = _reset(link)
    assert done.status_code == 303 and done.headers["Location"].endswith("/reset/done")
    assert "Sign in with your new password" in requests.get(base_url + "/reset/done").text
    assert _sign_in(base_url, NEW).status_code == 303
    assert _sign_in(base_url, PASSWORD).status_code == 401
    # The link is spent: a second use, GET or POST, gets the friendly page.
    again = requests.get(link)
    assert again.status_code == 400 and EXPIRED in again.text and 'href="/forgot"' in again.text
    assert _reset(link, "yet another sentence 9").status_code == 400
    assert _sign_in(base_url, NEW).status_code == 303
    # A notice went to the owner, and the audit log has the reset.
    notice = delivered(inbox)[-1]
    assert notice["Subject"] == "Your password was changed"
    assert "If it was not you" in notice.get_content()
    events = [e for e in _rows(app, "AuditEvent") if e.event == "password.reset"]
    assert [e.user_id for e in events] == [alice["id"]]


def test_unknown_user_and_no_email_get_the_same_page_and_no_mail(app, base_url, inbox):
    make_user(app, "bob", name="Bob")  # no e-mail address
    carol = make_user(app, "carol", email="carol@example.test")  # disabled below
    with app.app_context():
        from authserver.services import admin_console

        assert admin_console.set_user_enabled(carol["id"], False, by=0)
    answers = {name: _forgot(base_url, name) for name in ("nobody", "bob", "carol", "n\x00x")}
    assert {(r.status_code, r.text) for r in answers.values()} == {
        (answers["nobody"].status_code, answers["nobody"].text)}
    assert answers["nobody"].status_code == 200 and SENT in answers["nobody"].text
    assert delivered(inbox) == []
    assert _rows(app, "PasswordReset") == []


def test_forgot_takes_about_as_long_for_known_and_unknown_accounts(app, base_url):
    """The mail leaves from a thread of its own: a slow mail server (1 s here) does not
    make the answer for a real account slower than for a made-up one."""
    with smtp_server(delay=1.0) as slow:
        app.config.update(smtp_config(slow))
        for i in range(4):
            make_user(app, f"user{i}", email=f"user{i}@example.test")
        s = requests.Session()
        page = s.get(base_url + "/forgot")

        def ask(username: str) -> float:
            t = time.perf_counter()
            resp = s.post(base_url + "/forgot", data={"csrf_token": csrf_of(page.text),
                                                      "username": username})
            assert resp.status_code == 200 and SENT in resp.text
            return time.perf_counter() - t

        known = [ask(f"user{i}") for i in range(4)]  # interleaving is not needed: each is
        unknown = [ask(f"nobody{i}") for i in range(4)]  # far below the server's delay
        assert statistics.median(known) < 0.5 and statistics.median(unknown) < 0.5, (
            known, unknown)
        assert len(delivered(slow)) == 4


def test_expired_link_is_refused(app, base_url, inbox, alice):
    _forgot(base_url, "alice")
    link, _ = _link(inbox)
    with clock.shifted(1800 - 10):
        assert requests.get(link).status_code == 200
    with clock.shifted(1800):
        resp = _reset(link)
        assert resp.status_code == 400 and EXPIRED in resp.text
    with clock.shifted(1801):
        page = requests.get(link)
        assert page.status_code == 400 and EXPIRED in page.text
    assert _sign_in(base_url, PASSWORD).status_code == 303


def test_a_new_link_withdraws_the_older_one(app, base_url, inbox, alice):
    _forgot(base_url, "alice")
    first, _ = _link(inbox)
    # Asked again at once: nothing more is sent (no mail bombing); the first still works.
    _forgot(base_url, "alice")
    assert len(delivered(inbox)) == 1 and requests.get(first).status_code == 200
    with clock.shifted(61):
        _forgot(base_url, "alice")
        second, _ = _link(inbox)
        assert second != first and len(delivered(inbox)) == 2
        assert requests.get(first).status_code == 400
        assert _reset(second).status_code == 303
    assert _sign_in(base_url, NEW).status_code == 303


@pytest.mark.parametrize(("password", "confirm", "field", "needle"), [
    ("short pw", None, "password", "at least 12 characters"),
    ("qwerty123456", None, "password", "most common passwords"),
    ("i am alice, hello", None, "password", "must not contain your username"),
    (NEW, NEW + "x", "password_confirm", "not the same"),
])
def test_rules_apply_and_the_link_stays_usable(app, base_url, inbox, alice, password,
                                               confirm, field, needle):
    _forgot(base_url, "alice")
    link, _ = _link(inbox)
    resp = _reset(link, password, confirm)
    assert resp.status_code == 400 and needle in resp.text
    # The error belongs to its field (aria-invalid, aria-describedby).
    assert re.search(rf'id="{field}"[^>]*aria-describedby="[^"]*{field}-error"[^>]*'
                     r'aria-invalid="true"', resp.text), resp.text
    assert f'id="{field}-error"' in resp.text
    assert _sign_in(base_url, PASSWORD).status_code == 303
    assert _reset(link).status_code == 303


def test_token_is_stored_only_as_its_sha256(app, base_url, inbox, alice):
    _forgot(base_url, "alice")
    _, token = _link(inbox)
    [row] = _rows(app, "PasswordReset")
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert len(token) >= 43  # 256 bits, base64url
    # Nowhere in the database in clear: every column of every table.
    from authserver.extensions import db

    with app.app_context():
        for table in db.metadata.sorted_tables:
            for values in db.session.execute(table.select()):
                assert token not in repr(tuple(values)), table.name


def test_reset_ends_every_session_and_signs_no_one_in(app, base_url, inbox, alice):
    signed_in = requests.Session()
    assert _sign_in(base_url, PASSWORD, s=signed_in).status_code == 303
    assert signed_in.get(base_url + "/account", allow_redirects=False).status_code == 200
    _forgot(base_url, "alice", signed_in)
    link, _ = _link(inbox)
    resetter = requests.Session()
    assert _reset(link, s=resetter).status_code == 303
    for s in (signed_in, resetter):
        assert s.get(base_url + "/account", allow_redirects=False).status_code == 303


def test_reset_leaves_two_step_sign_in_in_place(app, base_url, inbox):
    make_clinician(app)
    with app.app_context():
        from authserver.extensions import db
        from authserver.models import User

        db.session.scalars(select(User)).first().email = "dr@example.test"
        db.session.commit()
    _forgot(base_url, "drsmith")
    link, _ = _link(inbox)
    assert _reset(link).status_code == 303
    resp = _sign_in(base_url, NEW, "drsmith")
    assert resp.status_code == 303 and "/login/totp" in resp.headers["Location"]


def test_reset_lets_a_locked_out_owner_sign_in(app, base_url, inbox, alice):
    for _ in range(3):  # LOGIN_ACCOUNT_RATE_LIMIT here: 3 per 15 minutes
        _sign_in(base_url, "not my password at all")
    assert _sign_in(base_url, PASSWORD).status_code == 429
    _forgot(base_url, "alice")
    link, _ = _link(inbox)
    assert _reset(link).status_code == 303
    assert _sign_in(base_url, NEW).status_code == 303


def test_forgot_is_rate_limited_per_address(app, base_url, inbox):
    s = requests.Session()
    page = s.get(base_url + "/forgot")
    codes = [s.post(base_url + "/forgot", data={"csrf_token": csrf_of(page.text),
                                                "username": f"u{i}"}).status_code
             for i in range(9)]  # LOGIN_RATE_LIMIT here: 8 per minute
    assert codes == [200] * 8 + [429]


def test_no_reset_token_or_password_reaches_the_logs(app, base_url, inbox, alice,
                                                     debug_logs):  # noqa: F811
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    _forgot(base_url, "alice")
    link, token = _link(inbox)
    _reset(link, "qwerty123456")  # a rule error
    _reset(link)
    signed_in = requests.Session()
    assert _sign_in(base_url, NEW, s=signed_in).status_code == 303
    # And a change on the account page, a wrong current password first.
    third = "the third sentence 42"
    for current in ("wrong current password", NEW):
        form = signed_in.get(base_url + "/account/password")
        signed_in.post(base_url + "/account/password", data={
            "csrf_token": csrf_of(form.text), "current_password": current,
            "new_password": third, "new_password_confirm": third})
    assert _sign_in(base_url, third).status_code == 303
    secrets = {"token": token, "old password": PASSWORD, "new password": NEW,
               "refused password": "qwerty123456", "wrong current": "wrong current password",
               "third password": third}
    records = debug_logs.records
    assert any("/reset/[redacted]" in r.getMessage() for r in records)  # access log seen
    for record in records:
        if record.name.startswith(("urllib3", "mail.log")):
            continue  # the test's own HTTP client and SMTP server (which reads the mail)
        text = record.getMessage()
        for name, value in secrets.items():
            assert value not in text, f"{name} logged by {record.name}: {text[:200]}"


def test_without_mail_the_page_says_so(app, base_url, alice):
    app.config["SMTP_HOST"] = ""
    page = requests.get(base_url + "/forgot")
    assert page.status_code == 200 and "cannot send e-mail" in page.text
    assert 'name="username"' not in page.text
    assert "Forgot password?" not in requests.get(base_url + "/login").text
