"""No secret reaches the logs (DESIGN.md style rules 7 and 10): access and refresh tokens,
authorization codes, client secrets, passwords and TOTP codes, over real HTTP with every
logger (Authlib's included) at DEBUG."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
import requests

from tests.helpers import (
    PASSWORD,
    OAuthFlow,
    csrf_of,
    make_client,
    make_clinician,
    make_user,
    totp_code,
)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of the root logger and Authlib's, from DEBUG up."""
    saved = {name: logging.getLogger(name).level for name in ("authlib", "authserver")}
    caplog.set_level(logging.DEBUG)
    for name in saved:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def _launch(flow: OAuthFlow, username: str = "alice", password: str = PASSWORD,
            totp: str | None = None) -> tuple[str, dict]:
    """The whole launch, keeping the authorization code: (code, token response)."""
    flow.authorize()
    flow.follow()
    flow.login(username, password)
    if totp is not None:
        flow.totp(totp)
    flow.consent()
    code = flow.code()
    resp = flow.token(code)
    assert resp.status_code == 200, resp.text
    return code, resp.json()


def test_no_token_code_secret_password_or_totp_code_is_logged(app, base_url, debug_logs):
    make_user(app)
    secrets: dict[str, str] = {"password": PASSWORD}
    # A patient launch with refresh (public client).
    flow = OAuthFlow(base_url, make_client(app), requests.Session())
    secrets["code"], token = _launch(flow)
    refreshed = flow.refresh(token["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    for name, value in (("access", token["access_token"]), ("refresh", token["refresh_token"]),
                        ("id_token", token["id_token"]),
                        ("access 2", refreshed.json()["access_token"]),
                        ("refresh 2", refreshed.json()["refresh_token"])):
        secrets[name] = value
    # A confidential client's token request (HTTP Basic).
    conf = make_client(app, name="Confidential", auth_method="client_secret_basic")
    secrets["client_secret"] = conf["client_secret"]
    secrets["conf code"], conf_token = _launch(OAuthFlow(base_url, conf, requests.Session()))
    secrets["conf access"] = conf_token["access_token"]
    # A clinician's sign-in with a TOTP code.
    doc = make_clinician(app)
    code = totp_code(doc["secret"])
    secrets["totp code"] = code
    secrets["totp secret"] = doc["secret"]
    OAuthFlow(base_url, make_client(app, name="Clinic"), requests.Session(),
              scope="openid fhirUser").run("drsmith", totp=code)
    # A wrong-password sign-in.
    http = requests.Session()
    page = http.get(base_url + "/login")
    wrong = "not the password but close"
    secrets["wrong password"] = wrong
    resp = http.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                                 "username": "alice", "password": wrong})
    assert resp.status_code == 401

    records = debug_logs.records
    assert records  # the capture works: werkzeug logs each request at INFO
    for record in records:
        text = record.getMessage() + (debug_logs.handler.format(record) if record.exc_info
                                      else "")
        for name, value in secrets.items():
            # Six-digit codes: only as a whole number, not inside a port or a timestamp.
            found = (re.search(rf"(?<!\d){value}(?!\d)", text) if value.isdigit()
                     else value in text)
            assert not found, f"{name} logged by {record.name}: {text[:200]}"
