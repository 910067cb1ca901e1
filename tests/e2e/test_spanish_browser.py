"""The Spanish consent page in the real Chromium: a browser set to Spanish gets the page in
Spanish (the scope sentences too), and allowing there completes the authorization."""

from __future__ import annotations

import pytest
import requests

from tests.helpers import PASSWORD, OAuthFlow, make_client, make_user, query_of

pytestmark = pytest.mark.e2e


def test_a_spanish_browser_gets_the_consent_page_in_spanish(browser, app, base_url):
    make_user(app)
    flow = OAuthFlow(base_url, make_client(app), requests.Session(),
                     scope="openid fhirUser launch/patient offline_access patient/*.rs")
    context = browser.new_context(locale="es-ES")  # Accept-Language: es-ES
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.route(flow.redirect_uri + "**", lambda route: route.fulfill(body="ok"))
    page.goto(base_url + "/authorize?" + "&".join(f"{k}={requests.utils.quote(v, safe='')}"
                                                  for k, v in flow.params().items()))
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_selector("button[value=allow]")
    assert page.evaluate("document.documentElement.lang") == "es"
    assert page.inner_text("h1") == "Test App solicita acceso"
    record = page.inner_text("#section-record")
    assert "Leer toda su historia clínica, incluidos los tipos que se añadan más adelante" \
        in record
    assert page.inner_text("#how-long").startswith("Duración:")
    assert page.inner_text("button[value=allow]") == "Permitir"
    with page.expect_request(lambda r: r.url.startswith(flow.redirect_uri)) as sent:
        page.click("button[value=allow]")
    q = query_of(sent.value.url)
    assert q["state"] == flow.state and "code" in q
    assert flow.token(q["code"]).status_code == 200
    context.close()
