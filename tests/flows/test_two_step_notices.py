"""Notice e-mails for two-step sign-in (authserver/services/notices.py): turning it on,
making new recovery codes, signing in with a recovery code, replacing the authenticator and
turning it off each mail the owner what changed, when, and what to do if it was not them,
through a real SMTP server (tests/smtp_sink.py), in the page's language; never a code or a
secret."""

from __future__ import annotations

import re

import pytest
import requests

from tests.helpers import PASSWORD, csrf_of, make_user, totp_code
from tests.smtp_sink import delivered, smtp_config, smtp_server

_CODES = re.compile(r"<li><code>([0-9a-z]{5}-[0-9a-z]{5})</code></li>")
_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}


@pytest.fixture
def inbox():
    with smtp_server() as box:
        yield box


@pytest.fixture
def live_config(inbox):
    return {**smtp_config(inbox), "LOGIN_RATE_LIMIT": "1000 per minute"}


def _session(lang: dict | None = None) -> requests.Session:
    http = requests.Session()
    http.headers.update(lang or {})
    return http


def _post(base_url: str, http: requests.Session, path: str, **form: str) -> requests.Response:
    page = http.get(base_url + path)
    assert page.status_code == 200, (path, page.status_code)
    return http.post(base_url + path, data={"csrf_token": csrf_of(page.text), **form},
                     allow_redirects=False)


def _sign_in(base_url: str, http: requests.Session, code: str | None = None) -> None:
    resp = _post(base_url, http, "/login?next=/account", username="alice",
                 password=PASSWORD, next="/account")
    if code is not None:
        assert resp.headers["Location"].startswith("/login/totp")
        resp = _post(base_url, http, "/login/totp?next=/account", code=code, next="/account")
    assert resp.status_code == 303 and resp.headers["Location"] == "/account", resp.text[:300]


def _set_up(base_url: str, http: requests.Session) -> tuple[str, requests.Response]:
    """The secret shown on /account/two-step/setup, and the answer to confirming it."""
    page = http.get(base_url + "/account/two-step/setup")
    secret = _SECRET.search(page.text).group(1)
    return secret, http.post(base_url + "/account/two-step/setup", data={
        "csrf_token": csrf_of(page.text), "code": totp_code(secret),
        "current_password": PASSWORD}, allow_redirects=False)


def _no_secret_in(body: str, secrets: list[str]) -> None:
    assert PASSWORD not in body
    assert not re.search(r"\b\d{6}\b", body)  # no TOTP code
    assert not re.search(r"[0-9a-z]{5}-[0-9a-z]{5}", body)  # no recovery code
    flat = re.sub(r"\s", "", body)
    for secret in secrets:
        assert secret not in flat and secret[:8] not in flat


def test_each_two_step_change_mails_the_owner_without_a_code(app, base_url, inbox):
    make_user(app, email="alice@example.test")
    http = _session()
    _sign_in(base_url, http)
    first, resp = _set_up(base_url, http)  # on
    codes = _CODES.findall(resp.text)
    resp = _post(base_url, http, "/account/two-step/recovery-codes", current_password=PASSWORD)
    codes += _CODES.findall(resp.text)
    assert len(codes) == 20
    _sign_in(base_url, _session(), codes[10])  # a recovery code signs in
    second, resp = _set_up(base_url, http)  # replaced
    assert resp.status_code == 303
    assert _post(base_url, http, "/account/two-step/remove",
                 current_password=PASSWORD).status_code == 303
    messages = delivered(inbox)
    assert [m["Subject"] for m in messages] == [
        "Two-step sign-in was turned on", "New recovery codes were made",
        "A recovery code was used to sign in", "Your authenticator app was replaced",
        "Two-step sign-in was turned off"]
    for msg in messages:
        body = msg.get_content()
        assert msg["To"] == "alice@example.test" and body.startswith("Hello Alice Example,")
        assert re.search(r'"alice" \(.+\).* on \d{4}-\d\d-\d\d \d\d:\d\d UTC', body), body
        assert "If it was not you" in body and base_url + "/forgot" in body
        _no_secret_in(body, [first, second, *codes])
    assert "You have 9 unused recovery codes left." in messages[2].get_content()
    assert base_url + "/account" in messages[2].get_content()


def test_the_notices_are_in_the_language_of_the_page(app, base_url, inbox):
    make_user(app, email="alice@example.test")
    http = _session(SPANISH)
    _sign_in(base_url, http)
    secret, resp = _set_up(base_url, http)
    codes = _CODES.findall(resp.text)
    _sign_in(base_url, _session(SPANISH), codes[0])
    on, used = delivered(inbox)
    assert on["Subject"] == "Se activó la verificación en dos pasos"
    assert used["Subject"] == "Se usó un código de recuperación para iniciar sesión"
    body = on.get_content()
    assert body.startswith("Hola, Alice Example:")
    assert "Se activó la verificación en dos pasos de su cuenta" in body
    assert "Si no fue usted, otra persona ha iniciado sesión con su contraseña" in body
    assert "Le quedan 9 códigos de recuperación sin usar." in used.get_content()
    for msg in (on, used):
        _no_secret_in(msg.get_content(), [secret, *codes])


def test_no_notice_for_an_account_without_an_address(app, base_url, inbox):
    make_user(app)
    http = _session()
    _sign_in(base_url, http)
    assert _set_up(base_url, http)[1].status_code == 200
    assert delivered(inbox) == []
