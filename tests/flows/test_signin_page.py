"""The sign-in page through real HTTP: it names the app a person signs in to (from the
parked /authorize request, looked up by its handle only), ties a wrong password to its
fields, and says in words when a throttled sign-in may try again.

WCAG 2.2 SC 3.3.1 (Error Identification) and 1.3.1 (aria-invalid / aria-describedby);
RFC 9110 §10.2.3 (Retry-After); RFC 6585 §4 (429).
"""

from __future__ import annotations

import html
import re

import requests

from tests.helpers import OAuthFlow, csrf_of, make_client, make_user


def _with_metadata(app, client: dict, **meta: str) -> None:
    from authserver import store
    from authserver.extensions import db

    with app.app_context():
        row = store.clients.any_client(client["client_id"])
        row.client_metadata = {**row.client_metadata, **meta}
        db.session.commit()


def _sign_in_page_from_authorize(base_url: str, client: dict) -> OAuthFlow:
    flow = OAuthFlow(base_url, client)
    flow.authorize()
    page = flow.follow()
    assert page.url.startswith(base_url + "/login?next=") and page.status_code == 200
    return flow


def _tag(page: str, element_id: str) -> str:
    m = re.search(rf'<[a-z]+ [^>]*id="{element_id}"[^>]*>', page)
    assert m, f"no element #{element_id}"
    return m.group(0)


def _h1(page: str) -> str:
    return re.sub(r"<[^>]+>", "", re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S).group(1))


def test_sign_in_from_authorize_names_the_app_and_shows_its_https_logo(app, base_url):
    client = make_client(app, name="Cardio Tracker")
    _with_metadata(app, client, logo_uri="https://cardio.example.org/logo.png")
    page = _sign_in_page_from_authorize(base_url, client).last.text
    assert _h1(page) == "Sign in to continue to Cardio Tracker"
    assert '<img src="https://cardio.example.org/logo.png" alt="Cardio Tracker logo"' in page
    assert "<title>Sign in to Cardio Tracker · authserver</title>" in page


def test_sign_in_shows_no_logo_that_is_not_https(app, base_url):
    client = make_client(app, name="Local App")
    _with_metadata(app, client, logo_uri="http://127.0.0.1:9999/logo.png")
    page = _sign_in_page_from_authorize(base_url, client).last.text
    assert _h1(page) == "Sign in to continue to Local App"
    assert "<img" not in page and "127.0.0.1:9999/logo.png" not in page


def test_sign_in_with_an_unknown_or_foreign_next_is_the_plain_page(app, base_url):
    make_client(app, name="Cardio Tracker")
    for nxt in ("/authorize/continue?req=no-such-handle", "/authorize/continue",
                "/account?req=x", "/authorize/continue?req=a&req=b"):
        page = requests.get(base_url + "/login", params={"next": nxt}).text
        assert _h1(page) == "Sign in", nxt
        assert "continue to" not in page and "Cardio Tracker" not in page


def test_sign_in_names_the_app_again_after_a_wrong_password(app, base_url):
    make_user(app)
    flow = _sign_in_page_from_authorize(base_url, make_client(app, name="Cardio Tracker"))
    resp = flow.login(password="not the password")
    assert resp.status_code == 401
    assert _h1(resp.text) == "Sign in to continue to Cardio Tracker"


def test_wrong_password_is_tied_to_the_fields_and_focus_goes_to_the_password(app, base_url):
    make_user(app)
    http = requests.Session()
    page = http.get(base_url + "/login").text
    # Before any error: no field is marked, the username has the focus.
    assert "aria-invalid" not in page and "autofocus" in _tag(page, "username")
    resp = http.post(base_url + "/login", data={"csrf_token": csrf_of(page),
                                                "username": "alice", "password": "nope!"})
    assert resp.status_code == 401
    message = re.search(r'<p [^>]*id="login-error"[^>]*>([^<]*)</p>', resp.text).group(1)
    assert message == "Wrong username or password."
    for field in ("username", "password"):
        tag = _tag(resp.text, field)
        assert 'aria-invalid="true"' in tag and 'aria-describedby="login-error"' in tag, tag
    assert "autofocus" in _tag(resp.text, "password")
    assert "autofocus" not in _tag(resp.text, "username")
    assert 'value="alice"' in _tag(resp.text, "username")
    # The message sits next to the fields it describes: after the password, in the form.
    form = resp.text[resp.text.index("<form"):resp.text.index("</form>")]
    assert form.index('id="password"') < form.index('id="login-error"')


def test_show_password_button_is_a_hidden_enhancement_from_a_script_file(base_url):
    page = requests.get(base_url + "/login").text
    assert 'type="password"' in _tag(page, "password")
    toggle = re.search(r"<button [^>]*data-show-password=\"password\"[^>]*>", page).group(0)
    assert 'type="button"' in toggle and 'aria-pressed="false"' in toggle
    assert 'aria-controls="password"' in toggle and " hidden" in toggle  # shown by the script
    assert '<script src="/static/show-password.js" defer></script>' in page
    assert "<script>" not in page and " onclick" not in page  # CSP: script-src 'self'
    script = requests.get(base_url + "/static/show-password.js")
    assert script.status_code == 200 and "aria-pressed" in script.text


# ---- throttled ------------------------------------------------------------------------------

def test_throttled_sign_in_says_when_to_try_again_and_links_back_keeping_next(app, base_url):
    app.config["LOGIN_RATE_LIMIT"] = "2 per 2 minutes"
    http = requests.Session()
    token = csrf_of(http.get(base_url + "/login").text)
    data = {"csrf_token": token, "username": "guess", "password": "Winter2026!",
            "next": "/authorize/continue?req=abc"}
    answers = [http.post(base_url + "/login", data=data) for _ in range(3)]
    assert [r.status_code for r in answers] == [401, 401, 429]
    resp = answers[-1]
    retry_after = int(resp.headers["Retry-After"])
    assert 60 < retry_after <= 120
    assert resp.headers["Content-Type"].startswith("text/html")
    page = html.unescape(resp.text)
    assert "Too many attempts" in page and "per 2 minute" not in page
    assert f"Try again in about {round(retry_after / 60)} minutes." in page
    assert '<a href="/login?next=%2Fauthorize%2Fcontinue%3Freq%3Dabc">Back to sign-in</a>' \
        in page


def test_paused_username_says_when_to_try_again_on_the_sign_in_page(app, base_url):
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "2 per 15 minutes"
    make_user(app)
    http = requests.Session()

    def attempt(password: str) -> requests.Response:
        page = http.get(base_url + "/login", params={"next": "/account"}).text
        return http.post(base_url + "/login", data={
            "csrf_token": csrf_of(page), "username": "alice", "password": password,
            "next": "/account"})

    assert [attempt("wrong one!").status_code for _ in range(2)] == [401, 401]
    resp = attempt("correct horse battery")
    assert resp.status_code == 429
    retry_after = int(resp.headers["Retry-After"])
    assert 840 < retry_after <= 900
    message = re.search(r'<p [^>]*id="login-error"[^>]*>([^<]*)</p>', resp.text).group(1)
    assert message == ("Too many failed sign-ins with this username, so sign-in with it is "
                       f"paused. Try again in about {round(retry_after / 60)} minutes.")
    # It is the sign-in page itself, keeping next, with the message for the whole form.
    assert 'name="next" value="/account"' in resp.text
    assert "aria-invalid" not in resp.text
