"""The account page's other changes mail a notice too (authserver/services/notices.py):
ending the other sign-ins, narrowing what an app may see and revoking an app each tell the
owner what changed, when, and what to do if it was not them — through a real SMTP server."""

from __future__ import annotations

import re

import pytest
import requests

from tests.helpers import PASSWORD, OAuthFlow, csrf_of, make_client, make_user
from tests.smtp_sink import delivered, smtp_config, smtp_server


@pytest.fixture
def inbox():
    with smtp_server() as box:
        yield box


@pytest.fixture
def live_config(inbox):
    return {**smtp_config(inbox), "LOGIN_RATE_LIMIT": "1000 per minute"}


def _signed_in(base_url: str) -> requests.Session:
    http = requests.Session()
    page = http.get(base_url + "/login?next=/account")
    http.post(base_url + "/login", data={"csrf_token": csrf_of(page.text), "username": "alice",
                                         "password": PASSWORD, "next": "/account"})
    return http


def _bodies(inbox) -> list[tuple[str, str]]:
    return [(m["Subject"], m.get_content()) for m in delivered(inbox)]


def test_ending_the_other_sign_ins_mails_a_notice(app, base_url, inbox):
    make_user(app, email="alice@example.org")
    _signed_in(base_url)
    here = _signed_in(base_url)
    page = here.get(base_url + "/account")
    here.post(base_url + "/account/sessions/end-others",
              data={"csrf_token": csrf_of(page.text)})
    [(subject, body)] = _bodies(inbox)
    assert subject == "Your other sign-ins were ended"
    assert "Every other sign-in of your" in body and '"alice"' in body
    assert "If it was not you" in body and base_url + "/forgot" in body


def test_narrowing_then_revoking_an_app_mails_a_notice_each(app, base_url, inbox):
    make_user(app, email="alice@example.org")
    client = make_client(app, name="Growth 100% Chart")
    flow = OAuthFlow(base_url, client, _signed_in(base_url),
                     scope="openid launch/patient patient/Patient.rs patient/*.rs")
    flow.authorize()
    flow.follow()
    flow.consent()
    assert flow.token(flow.code()).status_code == 200
    http, cid = flow.http, client["client_id"]
    page = http.get(base_url + "/account/apps/change", params={"client_id": cid})
    http.post(base_url + "/account/apps/change", data={
        "csrf_token": csrf_of(page.text), "client_id": cid, "scope": "patient/Patient.rs"})
    page = http.get(base_url + "/account/revoke", params={"client_id": cid})
    http.post(base_url + "/account/revoke", data={"csrf_token": csrf_of(page.text),
                                                  "client_id": cid})
    sent = _bodies(inbox)
    assert [s for s, _ in sent] == ["You changed what an app may see",
                                    "An app can no longer use your data"]
    assert "What the app Growth 100% Chart may see" in sent[0][1]  # the name, as text
    assert "The access of the app Growth 100% Chart" in sent[1][1] and "revoked" in sent[1][1]
    for _, body in sent:
        assert not re.search(r"[A-Za-z0-9_-]{40,}", body)  # no token of any kind
