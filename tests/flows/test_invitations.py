"""Invitations by e-mail (authserver/services/accounts.py, /invite/<token>, POST /admin/invite),
through real HTTP and a real SMTP server (aiosmtpd on 127.0.0.1, ephemeral port).

The link carries a 256-bit token, works once (consumed by a conditional UPDATE), expires
after INVITATION_LIFETIME, and is never logged nor audited (RFC 6749 §10.10; OWASP Forgot
Password Cheat Sheet). Clinicians and admins enrol TOTP at their first sign-in.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import threading

import pyotp
import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers import PASSWORD, csrf_of, make_user, sign_in_admin

SENDER = "noreply@authserver.test"
_LINK = re.compile(r"(http://127\.0\.0\.1:\d+/invite/([A-Za-z0-9_-]+))")
_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


class _Inbox:
    """An aiosmtpd handler that keeps every message; can refuse recipients."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.refuse_recipients = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default)
                for e in self.envelopes]


class _Controller(Controller):
    """aiosmtpd on port 0: its readiness probe connects to ``self.port``, so learn the port
    the OS chose first."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _start(inbox: _Inbox, **smtp_kwargs) -> _Controller:
    ctl = _Controller(inbox, hostname="127.0.0.1", port=0, **smtp_kwargs)
    ctl.start()
    return ctl


@pytest.fixture
def inbox():
    box = _Inbox()
    ctl = _start(box)
    box.port = ctl.port
    yield box
    ctl.stop()


@pytest.fixture
def live_config(inbox):
    """Opt in: the app under test mails through the aiosmtpd server above."""
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": inbox.port, "SMTP_FROM": SENDER}


# ---- helpers ---------------------------------------------------------------------------

def _sign_in_admin(app, base_url: str) -> requests.Session:
    return sign_in_admin(app, base_url, name="Rita Root")


def _invite(s: requests.Session, base_url: str, **form: str) -> requests.Response:
    page = s.get(base_url + "/admin")
    data = {"email": "dr.new@clinic.test", "role": "clinician",
            "fhir_user": "Practitioner/pr7", "name": "Dr New", **form}
    return s.post(base_url + "/admin/invite", data={"csrf_token": csrf_of(page.text), **data},
                  allow_redirects=False)


def _link(inbox: _Inbox) -> tuple[str, str]:
    """(link, token) of the last message."""
    body = inbox.messages()[-1].get_content()
    m = _LINK.search(body)
    assert m, body
    return m.group(1), m.group(2)


def _accept(link: str, username: str = "drnew", password: str = PASSWORD,
            confirm: str | None = None, s: requests.Session | None = None
            ) -> requests.Response:
    s = s or requests.Session()
    page = s.get(link)
    if page.status_code != 200:
        return page
    return s.post(link, data={"csrf_token": csrf_of(page.text), "username": username,
                              "password": password,
                              "password_confirm": password if confirm is None else confirm},
                  allow_redirects=False)


def _users(app) -> dict[str, object]:
    with app.app_context():
        from authserver.services import admin_console

        return {u.username: u for u in admin_console.list_users()}


def _invitation_rows(app) -> list:
    with app.app_context():
        from sqlalchemy import select

        from authserver.extensions import db
        from authserver.models import Invitation

        return list(db.session.scalars(select(Invitation)))


# ---- the whole path ----------------------------------------------------------------------

def test_invited_clinician_accepts_then_enrols_totp_at_first_sign_in(app, base_url, inbox):
    s = _sign_in_admin(app, base_url)
    resp = _invite(s, base_url)
    assert resp.status_code == 200, resp.text[:500]
    assert 'id="invited"' in resp.text and "dr.new@clinic.test" in resp.text
    pending = s.get(base_url + "/admin").text.split("Pending invitations", 1)[1]
    assert "dr.new@clinic.test" in pending.split("</table>", 1)[0]

    # A real message arrived, for the invited address, naming who invited them.
    assert len(inbox.envelopes) == 1
    env = inbox.envelopes[0]
    assert env.mail_from == SENDER and env.rcpt_tos == ["dr.new@clinic.test"]
    msg = inbox.messages()[0]
    assert msg["To"] == "dr.new@clinic.test" and msg["From"] == SENDER
    assert msg.get_content_type() == "text/plain"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "Rita Root (root)" in body and "clinician" in body
    link, token = _link(inbox)
    assert link == f"{base_url}/invite/{token}" and len(token) >= 43  # 256 bits, base64url

    # The invited person sees who invited them and chooses a username and password.
    http = requests.Session()
    page = http.get(link)
    assert page.status_code == 200 and "Rita Root (root)" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    resp = _accept(link, s=http)
    assert resp.status_code == 303 and resp.headers["Location"] == "/login?invited=1"
    login = http.get(base_url + resp.headers["Location"])
    assert 'id="invited"' in login.text
    pending = s.get(base_url + "/admin").text.split("Pending invitations", 1)[1]
    assert "dr.new@clinic.test" not in pending.split("</table>", 1)[0]  # accepted: gone
    user = _users(app)["drnew"]
    assert (user.role, user.fhir_user, user.name, user.email) == (
        "clinician", "Practitioner/pr7", "Dr New", "dr.new@clinic.test")
    assert not user.has_totp

    # First sign-in: password, then TOTP enrolment (clinicians must have a second factor).
    resp = http.post(base_url + "/login", data={"csrf_token": csrf_of(login.text),
                                                "username": "drnew", "password": PASSWORD,
                                                "next": "/account"})
    assert resp.status_code == 200 and resp.url.startswith(base_url + "/login/enrol"), resp.url
    secret = _SECRET.search(resp.text).group(1)
    done = http.post(base_url + "/login/enrol", data={
        "csrf_token": csrf_of(resp.text), "code": pyotp.TOTP(secret).now(), "next": "/account"},
        allow_redirects=False)
    # Signed in: the recovery codes once, with the way on to /account.
    assert done.status_code == 200 and 'id="continue" href="/account"' in done.text
    assert _users(app)["drnew"].has_totp
    rows = _invitation_rows(app)
    assert rows[0].accepted_at is not None and rows[0].accepted_user_id == user.id


def test_invitation_link_works_once_second_use_is_400(app, base_url, inbox):
    s = _sign_in_admin(app, base_url)
    assert _invite(s, base_url).status_code == 200
    link, _ = _link(inbox)
    assert _accept(link).status_code == 303
    again = requests.get(link)
    assert again.status_code == 400 and "Invitation not valid" in again.text
    # A form fetched before the first use cannot be replayed either.
    assert _accept(link, username="intruder").status_code == 400
    assert "intruder" not in _users(app)


def test_invitation_link_refused_when_expired(app, base_url, inbox):
    s = _sign_in_admin(app, base_url)
    assert _invite(s, base_url).status_code == 200
    link, _ = _link(inbox)
    http = requests.Session()
    page = http.get(link)
    assert page.status_code == 200
    with app.app_context():
        from sqlalchemy import update

        from authserver import clock
        from authserver.extensions import db
        from authserver.models import Invitation
        db.session.execute(update(Invitation).values(expires_at=clock.now() - 1))
        db.session.commit()
    assert http.get(link).status_code == 400
    resp = http.post(link, data={"csrf_token": csrf_of(page.text), "username": "late",
                                 "password": PASSWORD, "password_confirm": PASSWORD})
    assert resp.status_code == 400 and "Invitation not valid" in resp.text
    assert "late" not in _users(app)


def test_unknown_or_malformed_invitation_link_is_400(base_url):
    for path in ("/invite/short", "/invite/" + "A" * 43, "/invite/%00%0a",
                 "/invite/" + "x" * 5000):
        resp = requests.get(base_url + path)
        assert resp.status_code == 400 and "Invitation not valid" in resp.text, path
    assert requests.get(base_url + "/invite/a/b").status_code == 404  # no such route


def test_failed_accept_keeps_link_usable(app, base_url, inbox):
    s = _sign_in_admin(app, base_url)
    assert _invite(s, base_url, role="developer", fhir_user="").status_code == 200
    link, _ = _link(inbox)
    for kwargs, needle in (({"confirm": PASSWORD + "x"}, "not the same"),
                           ({"password": "short", "confirm": "short"}, "at least 12"),
                           ({"password": "qwerty123456", "confirm": "qwerty123456"},
                            "most common passwords"),
                           ({"username": "devnew", "password": "devnew-was-here",
                             "confirm": "devnew-was-here"}, "must not contain your username"),
                           ({"username": "bad name!"}, "letters, digits"),
                           ({"username": "root"}, "taken")):
        resp = _accept(link, **kwargs)
        assert resp.status_code == 400, kwargs
        assert 'class="error"' in resp.text and needle in resp.text, kwargs
    no_csrf = requests.post(link, data={"username": "dev2", "password": PASSWORD,
                                        "password_confirm": PASSWORD}, allow_redirects=False)
    assert no_csrf.status_code == 400 and "dev2" not in _users(app)
    assert _invitation_rows(app)[0].accepted_at is None
    assert _accept(link, username="dev2").status_code == 303
    assert _users(app)["dev2"].role == "developer"


def test_racing_accepts_one_wins(app, base_url, inbox):
    s = _sign_in_admin(app, base_url)
    assert _invite(s, base_url).status_code == 200
    link, _ = _link(inbox)
    forms = []
    for name in ("first", "second", "third"):
        http = requests.Session()
        page = http.get(link)
        forms.append((http, {"csrf_token": csrf_of(page.text), "username": name,
                             "password": PASSWORD, "password_confirm": PASSWORD}))
    barrier, results = threading.Barrier(len(forms)), []

    def post(http, data):
        barrier.wait()
        results.append(http.post(link, data=data, allow_redirects=False).status_code)

    threads = [threading.Thread(target=post, args=f) for f in forms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [303, 400, 400]
    assert len({"first", "second", "third"} & set(_users(app))) == 1


# ---- the admin side ----------------------------------------------------------------------

def test_non_admin_cannot_invite_403(app, base_url, inbox):
    make_user(app, "dev", role="developer", fhir_user=None)
    s = requests.Session()
    page = s.get(base_url + "/login?next=/developer")
    page = s.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                             "username": "dev", "password": PASSWORD,
                                             "next": "/developer"})
    assert page.status_code == 200 and page.url == base_url + "/developer"
    resp = s.post(base_url + "/admin/invite", data={
        "csrf_token": csrf_of(page.text), "email": "x@clinic.test", "role": "admin"})
    assert resp.status_code == 403
    signed_out = requests.post(base_url + "/admin/invite", allow_redirects=False,
                               data={"email": "x@clinic.test", "role": "admin"})
    assert signed_out.status_code == 400  # the CSRF refusal comes first, never an invite
    assert inbox.envelopes == [] and _invitation_rows(app) == []


def test_invite_refuses_bad_input_without_500(app, base_url, inbox):
    s = _sign_in_admin(app, base_url)
    for form in ({"email": "not-an-email"},
                 {"email": "a@clinic.test\r\nBcc: b@evil.test"},
                 {"email": "a@clinic.test>, <b@evil.test"},
                 {"email": "a" * 250 + "@clinic.test"},
                 {"role": "root"},
                 {"fhir_user": "Observation/1"},
                 {"role": "patient", "fhir_user": "Practitioner/pr7"},
                 {"name": "n" * 300}):
        resp = _invite(s, base_url, **form)
        assert resp.status_code == 400, form
        assert 'class="error"' in resp.text, form
    assert inbox.envelopes == [] and _invitation_rows(app) == []


def test_refused_mail_withdraws_invitation_503(app, base_url, inbox):
    s = _sign_in_admin(app, base_url)
    inbox.refuse_recipients = True
    resp = _invite(s, base_url)
    assert resp.status_code == 503
    assert 'class="error"' in resp.text and "SMTPRecipientsRefused" in resp.text
    assert _invitation_rows(app) == []
    with app.app_context():
        from authserver.services import admin_console

        assert "user.invited" not in {e.event for e in admin_console.recent_audit()}


class TestMailDisabled:
    @pytest.fixture
    def live_config(self):
        return {}  # SMTP_HOST defaults to "": mail disabled

    def test_invite_with_mail_disabled_shows_clear_error(self, app, base_url):
        s = _sign_in_admin(app, base_url)
        resp = _invite(s, base_url)
        assert resp.status_code == 503
        assert 'class="error"' in resp.text and "AUTHSERVER_SMTP_HOST" in resp.text
        assert "Administration" in resp.text  # the admin page, not a bare error page
        assert _invitation_rows(app) == []


class TestSmtpAuth:
    @pytest.fixture
    def inbox(self):
        box = _Inbox()
        box.logins = []

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (
                bytes(auth_data.login), bytes(auth_data.password)) == (b"mailer", b"s3cret-pass")
            box.logins.append((mechanism, ok))
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends 535

        # No TLS in this test: the server offers AUTH in the clear (aiosmtpd's opt-out).
        # smtplib tries PLAIN before LOGIN; offering PLAIN only keeps the refusal one round.
        ctl = _start(box, authenticator=authenticator, auth_require_tls=False,
                     auth_exclude_mechanism=["LOGIN"])
        box.port = ctl.port
        yield box
        ctl.stop()

    @pytest.fixture
    def live_config(self, inbox):
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": inbox.port, "SMTP_FROM": SENDER,
                "SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "s3cret-pass"}

    def test_invite_signs_in_to_the_mail_server(self, app, base_url, inbox):
        s = _sign_in_admin(app, base_url)
        assert _invite(s, base_url).status_code == 200
        assert [ok for _, ok in inbox.logins] == [True] and len(inbox.envelopes) == 1

    def test_wrong_mail_password_is_503(self, app, base_url, inbox):
        app.config["SMTP_PASSWORD"] = "wrong"
        s = _sign_in_admin(app, base_url)
        resp = _invite(s, base_url)
        assert resp.status_code == 503 and "SMTPAuthenticationError" in resp.text
        assert "wrong" not in resp.text and inbox.envelopes == []


# ---- no token in the audit log or in logs ---------------------------------------------------

def test_token_never_in_audit_or_logs(app, base_url, inbox, caplog):
    caplog.set_level(logging.DEBUG, logger="authserver")
    s = _sign_in_admin(app, base_url)
    assert _invite(s, base_url).status_code == 200
    link, token = _link(inbox)
    assert _accept(link).status_code == 303
    assert requests.get(link).status_code == 400  # a used link is logged too
    with app.app_context():
        from authserver import digests
        from authserver.services import admin_console
        events = admin_console.recent_audit()
        dump = json.dumps([[e.event, e.user_id, e.client_id, e.detail] for e in events])
        hashed = digests.sha256_hex(token)
    assert {"user.invited", "user.invitation_accepted"} <= {e.event for e in events}
    assert token not in dump and hashed not in dump
    # The test server's access log printed each request line, with the token redacted.
    lines = [r.getMessage() for r in caplog.records]
    assert any("/invite/[redacted]" in line for line in lines), lines[:20]
    assert not any(token in line for line in lines)
    assert token not in caplog.text
