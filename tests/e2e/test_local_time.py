"""Times in the reader's zone and language (static/local-time.js): the account page's UTC
times shown in the browser's time zone, formatted for the page's language."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.helpers import OAuthFlow, make_client, make_user

pytestmark = pytest.mark.e2e


def test_the_account_page_shows_times_in_the_readers_zone(browser, app, base_url):
    make_user(app)
    flow = OAuthFlow(base_url, make_client(app), requests.Session())
    flow.authorize()
    flow.follow()
    flow.login()
    flow.consent()
    assert flow.token(flow.code()).status_code == 200  # a connected app, granted just now
    context = browser.new_context(timezone_id="America/Mexico_City", locale="es-MX",
                                  extra_http_headers={"Accept-Language": "es"})
    context.add_cookies([{"name": c.name, "value": c.value, "url": base_url}
                         for c in flow.http.cookies])
    page = context.new_page()
    page.goto(base_url + "/account")
    granted = page.locator("time[datetime]").first
    page.wait_for_function("document.querySelector('time[datetime]').title !== ''")
    iso, text, title = (granted.get_attribute("datetime"), granted.inner_text(),
                        granted.get_attribute("title"))
    local = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(
        ZoneInfo("America/Mexico_City"))
    assert title.endswith("UTC") and "UTC" not in text  # the original kept on hover
    assert f"{local.hour}:{local.minute:02d}" in text, (iso, text)  # UTC-6 in winter
    assert "dic" in text.lower() or local.month != 12  # Spanish month names
    context.close()
