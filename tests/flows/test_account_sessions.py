"""/account "Where you are signed in": the user's live sessions (device, address, signed in,
last seen, "This device") and "Sign out everywhere else", over real HTTP.

Ending a session ends the ``online_access`` grants made under it (SMART App Launch 2.2:
"usable for as long as the end-user remains online"); ``offline_access`` ones stay.
"""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.conftest import _fresh_db, base_config
from tests.flows.test_introspection import INACTIVE, introspect, resource_server
from tests.helpers import PASSWORD, OAuthFlow, csrf_of, make_client, make_user

CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
ONLINE = "openid fhirUser launch/patient online_access patient/*.rs"
OFFLINE = "openid fhirUser launch/patient offline_access patient/*.rs"


def _browser(user_agent: str) -> requests.Session:
    s = requests.Session()
    s.headers["User-Agent"] = user_agent
    return s


def _sign_in(base_url: str, s: requests.Session, username: str = "alice") -> None:
    page = s.get(base_url + "/login", params={"next": "/account"})
    resp = s.post(base_url + "/login", allow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "username": username, "password": PASSWORD,
        "next": "/account"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/account", resp.text[:300]


def _sessions(page: str) -> list[str]:
    """The text of each listed session, tags stripped."""
    part = page.split('<section id="sessions"', 1)[1]
    items = re.findall(r'<li class="session[^"]*">(.*?)</li>', part, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", i)).split()) for i in items]


def _end_others(base_url: str, s: requests.Session) -> requests.Response:
    page = s.get(base_url + "/account")
    return s.post(base_url + "/account/sessions/end-others", allow_redirects=False,
                  data={"csrf_token": csrf_of(page.text)})


@pytest.fixture
def two_devices(app, base_url) -> tuple[requests.Session, requests.Session]:
    """alice signed in twice: on a Linux desktop (Chrome), then on an iPhone (Safari)."""
    make_user(app)
    desktop, phone = _browser(CHROME_LINUX), _browser(SAFARI_IPHONE)
    _sign_in(base_url, desktop)
    _sign_in(base_url, phone)
    return desktop, phone


def test_sessions_lists_both_sign_ins_with_their_devices(two_devices, base_url):
    desktop, _ = two_devices
    page = desktop.get(base_url + "/account").text
    listed = _sessions(page)
    assert len(listed) == 2, listed
    # This one first, marked; the other device by its browser and system.
    assert listed[0].startswith("Chrome on Linux This device"), listed
    assert listed[1].startswith("Safari on iPhone") and "This device" not in listed[1]
    for text in listed:
        assert "127.0.0.1" in text and "signed in" in text and "last seen" in text
        assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", text)) == 2
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', page)
    assert "Sign out everywhere else" in page
    # Seen from the phone, the phone is "This device".
    assert _sessions(two_devices[1].get(base_url + "/account").text)[0].startswith(
        "Safari on iPhone This device")


def test_sessions_never_show_the_session_id(two_devices, base_url, app):
    from authserver import store

    desktop, _ = two_devices
    page = desktop.get(base_url + "/account").text
    with app.app_context():
        user = store.accounts.get_user_by_username("alice")
        ids = [s.id for s in store.accounts.live_sessions(user.id)]
    assert len(ids) == 2 and not any(i in page for i in ids)  # the cookie's secret


def test_sign_out_everywhere_else_ends_the_other_session_keeps_this_one(two_devices, base_url):
    desktop, phone = two_devices
    resp = _end_others(base_url, desktop)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account#sessions"
    # The phone's cookie no longer works: /account asks it to sign in.
    gone = phone.get(base_url + "/account", allow_redirects=False)
    assert gone.status_code == 303 and "/login" in gone.headers["Location"]
    # This device stays signed in, alone in the list, and is told what happened.
    page = desktop.get(base_url + "/account", allow_redirects=False)
    assert page.status_code == 200
    assert "Signed out of 1 other session." in page.text
    assert [s.split(" This device")[0] for s in _sessions(page.text)] == ["Chrome on Linux"]
    assert 'id="only-here"' in page.text and "Sign out everywhere else" not in page.text


def test_sign_out_everywhere_else_is_audited(two_devices, base_url, app):
    from authserver.extensions import db
    from authserver.models import AuditEvent

    _end_others(base_url, two_devices[0])
    with app.app_context():
        row = db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.event == "session.ended_others")).one()
        assert row.user_id is not None and row.detail == {"sessions": 1}


def test_sign_out_everywhere_else_needs_csrf_token(two_devices, base_url):
    desktop, phone = two_devices
    resp = desktop.post(base_url + "/account/sessions/end-others", allow_redirects=False)
    assert resp.status_code == 400
    assert phone.get(base_url + "/account", allow_redirects=False).status_code == 200


def test_sign_out_everywhere_else_signed_out_is_refused(app, base_url):
    make_user(app)
    s = requests.Session()
    page = s.get(base_url + "/logout")  # a CSRF token of a session nobody signed in to
    resp = s.post(base_url + "/account/sessions/end-others", allow_redirects=False,
                  data={"csrf_token": csrf_of(page.text)})
    assert resp.status_code == 303 and "/login" in resp.headers["Location"]


def test_online_access_refresh_of_an_ended_session_fails(app, base_url):
    """An app connected "while you are signed in" on the phone loses access when the
    desktop signs out everywhere else; an offline_access app stays connected."""
    make_user(app)
    client = make_client(app, scope=ONLINE + " offline_access")
    phone = OAuthFlow(base_url, client, _browser(SAFARI_IPHONE), scope=ONLINE)
    online = phone.run()
    offline = OAuthFlow(base_url, client, _browser(SAFARI_IPHONE), scope=OFFLINE).run()
    desktop = _browser(CHROME_LINUX)
    _sign_in(base_url, desktop)
    before = phone.refresh(online["refresh_token"])
    assert before.status_code == 200, before.text  # live before
    assert _end_others(base_url, desktop).status_code == 303
    refused = phone.refresh(before.json()["refresh_token"])
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_grant"
    assert "session" in refused.json()["error_description"]
    rs = resource_server(app)
    assert introspect(base_url, before.json()["access_token"], auth=rs).json() == INACTIVE
    kept = phone.refresh(offline["refresh_token"])
    assert kept.status_code == 200, kept.text
    assert introspect(base_url, kept.json()["access_token"], auth=rs).json()["active"] is True


def _session_row(app, username: str = "alice"):
    from authserver import store

    with app.app_context():
        user = store.accounts.get_user_by_username(username)
        rows = store.accounts.live_sessions(user.id)
        return [(r.user_agent, r.ip, r.auth_time, r.last_seen_at) for r in rows]


def test_last_seen_is_written_at_most_once_a_minute(app, base_url):
    from authserver import clock

    make_user(app)
    s = _browser(CHROME_LINUX)
    _sign_in(base_url, s)
    (_, _, signed_in, seen), = _session_row(app)
    assert seen is not None and seen >= signed_in
    s.get(base_url + "/account")
    assert _session_row(app)[0][3] == seen  # within the minute: not written again
    with clock.shifted(61):
        s.get(base_url + "/account")
        later = _session_row(app)[0][3]
        assert later >= seen + 61
        s.get(base_url + "/account")
        assert _session_row(app)[0][3] == later


def test_sign_in_keeps_a_long_user_agent_cut_and_the_real_address(app, base_url):
    make_user(app)
    s = _browser(CHROME_LINUX + " " + "x" * 400)
    s.headers["X-Forwarded-For"] = "203.0.113.7"  # no proxy is trusted: not believed
    _sign_in(base_url, s)
    (agent, ip, _, _), = _session_row(app)
    assert agent == (CHROME_LINUX + " " + "x" * 400)[:255] and ip == "127.0.0.1"


def test_sign_in_behind_a_trusted_proxy_keeps_the_forwarded_address(template_db, tmp_path):
    from authserver.app import create_app

    conf = base_config(tmp_path / "inst", _fresh_db(template_db, tmp_path))
    conf["TRUST_PROXY"] = 1
    app = create_app(conf)
    make_user(app)
    client = app.test_client()
    fwd = {"X-Forwarded-For": "203.0.113.7", "User-Agent": SAFARI_IPHONE}
    page = client.get("/login?next=/account", headers=fwd)
    resp = client.post("/login", headers=fwd, data={
        "csrf_token": csrf_of(page.text), "username": "alice", "password": PASSWORD,
        "next": "/account"})
    assert resp.status_code == 303
    listed = _sessions(client.get("/account", headers=fwd).text)
    assert listed[0].startswith("Safari on iPhone This device 203.0.113.7"), listed
    with app.app_context():
        from authserver.extensions import db

        db.session.remove()
        db.engine.dispose()
