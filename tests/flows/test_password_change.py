"""Changing one's password on /account/password (authserver/services/passwords.py), through
real HTTP and a real SMTP server for the notice: the current password is needed (and wrong
ones count toward the per-account limit of sign-in), the rules apply, the other sessions
end and this one stays, the change is audited and the owner is told by e-mail."""

from __future__ import annotations

import logging
import re
import socket

import pytest
import requests
from sqlalchemy import select

from tests.helpers import PASSWORD, csrf_of, make_user
from tests.smtp_sink import delivered, smtp_config, smtp_server

NEW = "a brand new sentence 7"


@pytest.fixture
def inbox():
    with smtp_server() as box:
        yield box


@pytest.fixture
def live_config(inbox):
    return {**smtp_config(inbox), "LOGIN_ACCOUNT_RATE_LIMIT": "3 per 15 minutes"}


@pytest.fixture
def alice(app):
    return make_user(app, email="alice@example.test")


def _sign_in(base_url: str, password: str = PASSWORD) -> tuple[requests.Session, int]:
    s = requests.Session()
    page = s.get(base_url + "/login")
    resp = s.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                             "username": "alice", "password": password},
                  allow_redirects=False)
    return s, resp.status_code


def _change(s: requests.Session, base_url: str, current: str = PASSWORD, new: str = NEW,
            confirm: str | None = None, csrf: bool = True) -> requests.Response:
    page = s.get(base_url + "/account/password")
    assert page.status_code == 200, page.text[:300]
    data = {"current_password": current, "new_password": new,
            "new_password_confirm": new if confirm is None else confirm}
    if csrf:
        data["csrf_token"] = csrf_of(page.text)
    return s.post(base_url + "/account/password", data=data, allow_redirects=False)


def _events(app, event: str) -> list:
    from authserver.extensions import db
    from authserver.models import AuditEvent

    with app.app_context():
        db.session.remove()
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == event)))


def _field_error(page: str, field: str) -> bool:
    return bool(re.search(rf'id="{field}"[^>]*aria-describedby="[^"]*{field}-error"[^>]*'
                          r'aria-invalid="true"', page)) and f'id="{field}-error"' in page


def test_change_password_from_the_account_page(app, base_url, alice):
    s, _ = _sign_in(base_url)
    account = s.get(base_url + "/account")
    assert 'href="/account/password"' in account.text and "Change password" in account.text
    form = s.get(base_url + "/account/password")
    assert form.headers["Cache-Control"] == "no-store"
    for name in ("current_password", "new_password", "new_password_confirm"):
        assert f'name="{name}"' in form.text
    resp = _change(s, base_url)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/account")
    assert "Your password was changed" in s.get(base_url + "/account").text
    assert _sign_in(base_url, NEW)[1] == 303
    assert _sign_in(base_url, PASSWORD)[1] == 401
    from authserver.extensions import db
    from authserver.models import User

    with app.app_context():
        stored = db.session.get(User, alice["id"]).password_hash
    assert stored.startswith("$argon2id$") and NEW not in stored


def test_wrong_current_password_is_a_field_error(app, base_url, alice):
    s, _ = _sign_in(base_url)
    resp = _change(s, base_url, current="not my password at all")
    assert resp.status_code == 400 and "That is not your current password" in resp.text
    assert _field_error(resp.text, "current_password")
    assert _sign_in(base_url, NEW)[1] == 401 and _sign_in(base_url, PASSWORD)[1] == 303
    assert [e.user_id for e in _events(app, "password.change_failed")] == [alice["id"]]


def test_wrong_current_passwords_count_toward_the_sign_in_limit(app, base_url, alice):
    s, _ = _sign_in(base_url)
    for _ in range(3):  # LOGIN_ACCOUNT_RATE_LIMIT here: 3 per 15 minutes
        assert _change(s, base_url, current="not my password at all").status_code == 400
    locked = _change(s, base_url)  # even the right one, now
    assert locked.status_code == 429 and "Too many wrong passwords" in locked.text
    assert _sign_in(base_url)[1] == 429  # the same count as sign-in's
    assert len(_events(app, "login.password_locked")) == 1


@pytest.mark.parametrize(("new", "confirm", "field", "needle"), [
    ("short pw", None, "new_password", "at least 12 characters"),
    ("LeaveMeAlone", None, "new_password", "most common passwords"),
    ("it is ALICE again", None, "new_password", "must not contain your username"),
    (NEW, NEW + "!", "new_password_confirm", "not the same"),
])
def test_rules_apply_to_the_new_password(app, base_url, alice, new, confirm, field, needle):
    s, _ = _sign_in(base_url)
    resp = _change(s, base_url, new=new, confirm=confirm)
    assert resp.status_code == 400 and needle in resp.text
    assert _field_error(resp.text, field)
    assert _sign_in(base_url, PASSWORD)[1] == 303


def test_other_sessions_end_and_this_one_stays(app, base_url, alice):
    here, _ = _sign_in(base_url)
    elsewhere, _ = _sign_in(base_url)
    assert elsewhere.get(base_url + "/account", allow_redirects=False).status_code == 200
    assert _change(here, base_url).status_code == 303
    assert here.get(base_url + "/account", allow_redirects=False).status_code == 200
    gone = elsewhere.get(base_url + "/account", allow_redirects=False)
    assert gone.status_code == 303 and "/login" in gone.headers["Location"]


def test_change_is_audited_without_the_password(app, base_url, alice):
    s, _ = _sign_in(base_url)
    _change(s, base_url)
    [event] = _events(app, "password.changed")
    assert event.user_id == alice["id"]
    assert PASSWORD not in repr(event.detail) and NEW not in repr(event.detail)


def test_owner_gets_a_notice_by_mail(app, base_url, inbox, alice):
    s, _ = _sign_in(base_url)
    _change(s, base_url)
    [msg] = delivered(inbox)
    assert msg["Subject"] == "Your password was changed" and msg["To"] == "alice@example.test"
    body = msg.get_content()
    assert re.search(r"changed on \d{4}-\d\d-\d\d \d\d:\d\d UTC", body)
    assert "If it was not you" in body and base_url + "/forgot" in body
    assert NEW not in body and PASSWORD not in body


def test_no_mail_for_an_account_without_an_address(app, base_url, inbox):
    make_user(app)
    s, _ = _sign_in(base_url)
    assert _change(s, base_url).status_code == 303
    assert delivered(inbox) == []


def test_a_mail_server_that_is_down_does_not_lose_the_change(app, base_url, alice, caplog):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        app.config["SMTP_PORT"] = probe.getsockname()[1]
    s, _ = _sign_in(base_url)
    with caplog.at_level(logging.WARNING, logger="authserver.services.mail"):
        assert _change(s, base_url).status_code == 303
        from authserver.services import mail

        assert mail.drain()
    assert _sign_in(base_url, NEW)[1] == 303
    [line] = [r.getMessage() for r in caplog.records if r.name == "authserver.services.mail"]
    assert "password notice e-mail not sent" in line and "ConnectionRefusedError" in line
    assert NEW not in line and "alice@example.test" not in line


def test_missing_csrf_token_is_refused(app, base_url, alice):
    s, _ = _sign_in(base_url)
    resp = _change(s, base_url, csrf=False)
    assert resp.status_code == 400
    assert _sign_in(base_url, NEW)[1] == 401 and _sign_in(base_url, PASSWORD)[1] == 303


def test_signed_out_person_is_sent_to_sign_in(base_url):
    resp = requests.get(base_url + "/account/password", allow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/login?next=/account/password")
    post = requests.post(base_url + "/account/password", data={}, allow_redirects=False)
    assert post.status_code in (303, 400)  # CSRF first, or sign-in: never a change
