"""The sign-in page in a real browser (headless Debian Chromium via Playwright): reached from
a real /authorize request it names the app; the show/hide password button (a script file,
CSP ``script-src 'self'``) toggles the field and ``aria-pressed``; the keyboard reaches every
control in order; without JavaScript the button is not there and the form still signs in.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.helpers import PASSWORD, OAuthFlow, make_client, make_user

pytestmark = pytest.mark.e2e

#: What has the focus: its id, "submit" for a submit button, else its tag (a link: "A").
FOCUSED_JS = """() => { const e = document.activeElement;
    return e.type === 'submit' ? 'submit' : (e.id || e.tagName); }"""


def _tab_until_submit(page) -> list[str]:
    order = [page.evaluate(FOCUSED_JS)]
    while order[-1] != "submit" and len(order) < 8:
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED_JS))
    return order


def test_browser_sign_in_names_the_app_and_the_password_can_be_shown_or_not(browser, app, base_url):
    make_user(app)
    client = make_client(app, name="Cardio Tracker")
    errors: list[str] = []
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base_url + "/authorize?" + urlencode(OAuthFlow(base_url, client).params()))
    page.wait_for_selector("#password")
    assert page.url.startswith(base_url + "/login?next=")
    assert page.inner_text("h1") == "Sign in to continue to Cardio Tracker"

    # Keyboard: the focus starts on the username; Tab goes password -> show -> sign in
    # (a link placed between them, such as "Forgot password?", is allowed).
    controls = [c for c in _tab_until_submit(page) if c != "A"]
    assert controls == ["username", "password", "show-password", "submit"]

    # The toggle: the field's type and the button's aria-pressed, by mouse and by keyboard.
    button, field = page.locator("#show-password"), page.locator("#password")
    assert button.is_visible() and button.get_attribute("aria-pressed") == "false"
    assert button.inner_text() == "Show password"
    page.fill("#password", "typed secret")
    button.click()
    assert field.get_attribute("type") == "text"
    assert button.get_attribute("aria-pressed") == "true"
    assert field.input_value() == "typed secret"
    button.focus()
    page.keyboard.press("Space")
    assert field.get_attribute("type") == "password"
    assert button.get_attribute("aria-pressed") == "false"
    assert errors == []  # no CSP violation, no script error

    # A wrong password: the focus lands on the password field, marked invalid.
    page.fill("#username", "alice")
    page.fill("#password", "not the password")
    button.click()  # shown when sent: the script puts it back to a password field
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error")
    assert page.evaluate(FOCUSED_JS) == "password"
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("type") == "password"
    assert page.inner_text("h1") == "Sign in to continue to Cardio Tracker"

    # Without JavaScript: no button, and the form signs in all the same.
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(base_url + "/login")
    assert not page.locator("#show-password").is_visible()
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/account")
    context.close()
