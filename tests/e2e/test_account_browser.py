"""The account page in a real browser (headless Debian Chromium via Playwright): where you
are signed in and "Sign out everywhere else" across two browsers, and "Change" of a
connected app followed by a refresh at /token that carries only the kept scopes.

One authorization server for the module (``served``); each test signs in its own user.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import _fresh_db, base_config
from tests.e2e.conftest import Served
from tests.e2e.test_browser import UNLABELLED_INPUTS_JS
from tests.helpers import PASSWORD, OAuthFlow, make_client, make_user

pytestmark = pytest.mark.e2e

SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
COND = "patient/Condition.rs"
SCOPE = f"openid fhirUser launch/patient offline_access patient/Observation.rs {COND}"
#: Whether the page scrolls sideways (the phone width must not).
SCROLLS_SIDEWAYS_JS = "() => document.documentElement.scrollWidth > window.innerWidth"


@pytest.fixture(scope="module")
def served(template_db, tmp_path_factory) -> Iterator[dict]:
    from authserver.app import create_app

    tmp = tmp_path_factory.mktemp("account-browser")
    server = Served()
    app = create_app(base_config(tmp / "instance", _fresh_db(template_db, tmp), server.url))
    server.start(app)
    try:
        yield {"url": server.url, "app": app}
    finally:
        server.stop()
        assert app.extensions["store.uncommitted"] == [], app.extensions["store.uncommitted"]
        with app.app_context():
            from authserver.extensions import db

            db.session.remove()
            db.engine.dispose()


def _sign_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/account")
    page.wait_for_selector("#password")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#connected-apps")


def test_browser_sessions_and_sign_out_everywhere_else(browser, served):
    base_url = served["url"]
    make_user(served["app"], "dana", fhir_user="Patient/p3", name="Dana Example")
    desktop = browser.new_context().new_page()
    phone = browser.new_context(user_agent=SAFARI_IPHONE,
                                viewport={"width": 390, "height": 844}).new_page()
    for page in (desktop, phone):
        page.set_default_timeout(20_000)
        _sign_in(page, base_url, "dana")
    desktop.reload()
    sessions = desktop.locator("#sessions li.session").all_inner_texts()
    assert len(sessions) == 2, sessions
    assert sessions[0].startswith("Chrome on Linux") and "This device" in sessions[0]
    assert sessions[1].startswith("Safari on iPhone") and "This device" not in sessions[1]
    stamp = desktop.locator("#sessions time").first.get_attribute("datetime")
    assert stamp and stamp.endswith("Z") and "T" in stamp
    phone.reload()
    assert phone.locator("#sessions li.session.current").inner_text().startswith(
        "Safari on iPhone")
    assert not phone.evaluate(SCROLLS_SIDEWAYS_JS)
    # From the desktop: sign out everywhere else (a plain form POST).
    desktop.click("text=Sign out everywhere else")
    desktop.wait_for_selector("text=Signed out of 1 other session.")
    assert desktop.locator("#sessions li.session").count() == 1
    assert desktop.locator("#only-here").is_visible()
    # The phone's next page asks it to sign in again.
    phone.goto(base_url + "/account")
    phone.wait_for_selector("#password")
    assert "/login" in phone.url


def test_browser_change_connected_app_then_refresh_carries_the_kept_scopes(browser, served):
    base_url, app = served["url"], served["app"]
    make_user(app, "erin", fhir_user="Patient/p4", name="Erin Example")
    client = make_client(app, name="Symptom Diary", scope=SCOPE)
    flow = OAuthFlow(base_url, client, requests.Session(), scope=SCOPE)
    token = flow.run("erin")
    assert COND in token["scope"].split()
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.set_default_timeout(20_000)
    _sign_in(page, base_url, "erin")
    card = page.locator("section.connected-app", has_text="Symptom Diary")
    card.locator("a", has_text="Change").click()
    page.wait_for_selector("#save")
    assert page.inner_text("#app-name") == "Symptom Diary"
    assert page.evaluate(UNLABELLED_INPUTS_JS) == []
    assert not page.evaluate(SCROLLS_SIDEWAYS_JS)
    boxes = page.locator("input[type=checkbox][name=scope]")
    assert boxes.count() > 0 and all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    # Untick Conditions (the whole type: what is beneath it no longer counts).
    page.locator(f'input[name=scope][value="{COND}"]').uncheck()
    page.click("#save")
    page.wait_for_selector("text=Saved.")
    assert "conditions and health problems" not in page.inner_text("#connected-apps")
    # The app's next refresh at /token carries only what was kept.
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 200, resp.text
    kept = resp.json()["scope"].split()
    assert COND not in kept
    assert sorted(kept) == sorted(s for s in token["scope"].split() if s != COND)
