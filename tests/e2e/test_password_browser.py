"""Password change and the forgotten-password link in a real browser (headless Debian
Chromium via Playwright) at phone width, with a real SMTP server (aiosmtpd) receiving the
link: what a person does, from the account page and from the sign-in page's "Forgot
password?" link to signing in with the new password."""

from __future__ import annotations

import re

import pytest

from tests.helpers import PASSWORD, make_user
from tests.smtp_sink import delivered, smtp_config, smtp_server

pytestmark = pytest.mark.e2e

CHANGED = "a brand new sentence 7"
RESET = "another fresh sentence 9"
_LINK = re.compile(r"http://127\.0\.0\.1:\d+/reset/[A-Za-z0-9_-]+")


@pytest.fixture
def inbox():
    with smtp_server() as box:
        yield box


@pytest.fixture
def live_config(inbox):
    return smtp_config(inbox)


def _fits(page) -> None:
    """Nothing scrolls sideways at 390 px."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, page.url


def _sign_in(page, password: str) -> None:
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_browser_change_password_then_reset_it_by_mail(browser, app, base_url, inbox):
    make_user(app, email="alice@example.test")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(20_000)
    page.goto(base_url + "/account")
    _sign_in(page, PASSWORD)
    page.wait_for_url(base_url + "/account")
    # Change: a wrong current password is an error on that field, focused for a retry.
    page.click("#change-password")
    page.wait_for_selector("input[name=current_password]")
    _fits(page)
    page.fill("#current_password", "not my password at all")
    page.fill("#new_password", CHANGED)
    page.fill("#new_password_confirm", CHANGED)
    page.click("button[type=submit]")
    page.wait_for_selector("#current_password-error")
    assert page.get_attribute("#current_password", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "current_password"
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", CHANGED)
    page.fill("#new_password_confirm", CHANGED)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/account")
    assert "Your password was changed" in page.inner_text("main")
    # Forgotten: sign out, follow "Forgot password?", get the link by mail.
    page.goto(base_url + "/logout")
    page.click("button[type=submit]")
    page.wait_for_selector("#forgot-password")
    page.click("#forgot-password")
    page.wait_for_selector("input[name=username]")
    _fits(page)
    page.fill("input[name=username]", "alice")
    page.click("button[type=submit]")
    page.wait_for_selector("#reset-sent")
    bodies = [m.get_content() for m in delivered(inbox)]
    assert any("Your password was changed" in m["Subject"] for m in delivered(inbox))
    link = _LINK.search(bodies[-1]).group(0)
    page.goto(link)
    page.wait_for_selector("input[name=password_confirm]")
    _fits(page)
    page.fill("#password", RESET)
    page.fill("#password_confirm", RESET)
    page.click("button[type=submit]")
    page.wait_for_selector("#reset-done")
    # Not signed in by the reset: the person signs in as usual, with the new password.
    page.click("#sign-in")
    page.wait_for_selector("input[name=password]")
    _sign_in(page, CHANGED)
    page.wait_for_selector("p.error")
    _sign_in(page, RESET)
    page.wait_for_url(base_url + "/account")
    # The link is spent.
    page.goto(link)
    assert "expired or was already used" in page.inner_text("main")
    page.close()
