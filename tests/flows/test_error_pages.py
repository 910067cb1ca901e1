"""Error pages through real HTTP: a person gets our page (what happened in plain words, and a
way on: back to the app, the account page or sign-in), a program keeps its RFC 6749 JSON.

RFC 6749 §5.2 (JSON errors of the token endpoint), §4.1.2.1 (an untrusted redirect URI is
shown as a page, never followed); RFC 9110 §15.5.6 (a 405 carries Allow).
"""

from __future__ import annotations

import html
import logging
import re

import requests

from tests.helpers import PASSWORD, REDIRECT_URI, OAuthFlow, csrf_of, make_client, make_user

WERKZEUG_WORDING = ("The requested URL was not found", "You don't have the permission",
                    "The method is not allowed", "The CSRF token", "Internal Server Error")


def _links(page: str) -> dict[str, str]:
    """The page's way-on links: label -> href."""
    block = re.search(r'<ul class="way-on" id="way-on">(.*?)</ul>', page, re.S)
    assert block, "no way-on links on the page"
    return {html.unescape(label): html.unescape(href)
            for href, label in re.findall(r'<a href="([^"]*)">([^<]*)</a>', block.group(1))}


def _is_our_page(resp: requests.Response, status: int, title: str) -> str:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["Content-Type"].startswith("text/html")
    page = resp.text
    h1 = re.search(r"<h1>([^<]*)</h1>", page)
    assert h1 and html.unescape(h1.group(1)) == title, page[:800]
    assert not any(w in page for w in WERKZEUG_WORDING), page
    return page


def _sign_in(base_url: str, username: str = "alice") -> requests.Session:
    http = requests.Session()
    page = http.get(base_url + "/login")
    resp = http.post(base_url + "/login", allow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "username": username,
        "password": "correct horse battery"})
    assert resp.status_code == 303
    return http


def _with_metadata(app, client: dict, **meta: str) -> None:
    from authserver import store
    from authserver.extensions import db

    with app.app_context():
        row = store.clients.any_client(client["client_id"])
        row.client_metadata = {**row.client_metadata, **meta}
        db.session.commit()


# ---- 404, 405, 403 -----------------------------------------------------------------------

def test_not_found_page_offers_sign_in_signed_out_and_the_account_signed_in(app, base_url):
    make_user(app)
    page = _is_our_page(requests.get(base_url + "/no/such/page"), 404, "Page not found")
    assert "There is no page at this address" in page
    assert "return to the app" not in page  # no app here
    assert _links(page) == {"Sign in": "/login"}
    signed_in = _sign_in(base_url)
    page = _is_our_page(signed_in.get(base_url + "/no/such/page"), 404, "Page not found")
    assert _links(page) == {"Go to your account": "/account"}


def test_method_not_allowed_page_says_so_and_names_the_allowed_methods(base_url):
    resp = requests.put(base_url + "/login")
    page = _is_our_page(resp, 405, "This page can't do that")
    assert "does not accept that kind of request (PUT)" in page
    assert {"GET", "POST"} <= {m.strip() for m in resp.headers["Allow"].split(",")}
    assert _links(page) == {"Sign in": "/login"}


def test_forbidden_page_names_the_signed_in_person_and_the_missing_role(app, base_url):
    make_user(app)  # alice, a patient: Alice Example
    http = _sign_in(base_url)
    for path in ("/admin", "/developer"):
        page = _is_our_page(http.get(base_url + path), 403, "You can't open this page")
        assert "signed in as Alice Example (alice) (patient)" in html.unescape(page)
        assert "This page needs another role" in page
        assert _links(page) == {"Go to your account": "/account",
                                "Sign out to use another account": "/logout"}


# ---- an expired form (CSRF) ----------------------------------------------------------------

def test_expired_form_says_reload_with_a_link_back_to_the_form_keeping_next(base_url):
    http = requests.Session()
    http.get(base_url + "/login")
    resp = http.post(base_url + "/login", data={
        "csrf_token": "expired-or-forged", "username": "alice", "password": "x",
        "next": "/authorize/continue?req=abc"})
    page = _is_our_page(resp, 400, "This page expired — reload to try again")
    assert "Nothing was changed" in page
    assert _links(page) == {"Reload the page": "/login?next=%2Fauthorize%2Fcontinue%3Freq%3Dabc"}


def test_expired_form_links_to_a_same_site_referer_and_never_another_site(base_url):
    http = requests.Session()
    http.get(base_url + "/login")
    ours = http.post(base_url + "/account/revoke", data={"client_id": "x"},
                     headers={"Referer": base_url + "/account?tab=apps"})
    assert _links(_is_our_page(ours, 400, "This page expired — reload to try again")) == {
        "Reload the page": "/account?tab=apps"}
    # Another site's Referer is not followed; /account/revoke is no page: home.
    theirs = http.post(base_url + "/account/revoke", data={"client_id": "x"},
                       headers={"Referer": "https://evil.example/account"})
    page = _is_our_page(theirs, 400, "This page expired — reload to try again")
    assert _links(page) == {"Reload the page": "/"} and "evil.example" not in page


# ---- 500 -----------------------------------------------------------------------------------

def test_server_error_page_has_no_trace_and_gives_the_logged_reference(app, base_url, caplog):
    @app.get("/test-only/boom")
    def boom():
        raise RuntimeError("boom: internal detail 0xdeadbeef")

    with caplog.at_level(logging.ERROR, logger="authserver.web"):
        resp = requests.get(base_url + "/test-only/boom", headers={"X-Request-ID": "req-42.a"})
    page = _is_our_page(resp, 500, "Something went wrong on our side")
    assert "The error was logged (reference req-42.a)" in page
    for leak in ("Traceback", "RuntimeError", "0xdeadbeef", "boom.py", 'File "'):
        assert leak not in page
    assert _links(page) == {"Go to your account": "/account"}
    logged = [r for r in caplog.records if r.name == "authserver.web"]
    assert any("req-42.a" in r.getMessage() and r.exc_info for r in logged), logged
    # Without a request id (or with a malformed one) the page and the log share a new one.
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="authserver.web"):
        page = requests.get(base_url + "/test-only/boom",
                            headers={"X-Request-ID": "bad id <b>"}).text
    ref = re.search(r"reference ([0-9a-f]{16})\)", page).group(1)
    assert "bad id" not in page
    assert any(ref in r.getMessage() for r in caplog.records)


def test_server_error_on_an_api_path_stays_rfc6749_json(app, base_url):
    @app.get("/token/test-only-boom")
    def boom_json():
        raise RuntimeError("detail 0xdeadbeef")

    resp = requests.get(base_url + "/token/test-only-boom")
    assert resp.status_code == 500 and resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"error": "server_error", "error_description": "Internal error"}
    assert resp.headers["Cache-Control"] == "no-store"


# ---- the JSON endpoints keep their JSON --------------------------------------------------

def test_json_endpoints_keep_answering_rfc6749_json(base_url):
    cases = [
        ("POST", "/token", {"data": "garbage=\xff&&"}, 400, "unsupported_grant_type"),
        ("GET", "/token", {}, 405, "invalid_request"),
        ("POST", "/introspect", {}, 401, "invalid_client"),
        ("POST", "/revoke", {}, 401, "invalid_client"),
        ("POST", "/register", {"data": "x"}, 401, "invalid_token"),
        ("DELETE", "/register", {}, 405, "invalid_request"),
        ("GET", "/userinfo", {}, 401, "invalid_request"),
        ("POST", "/launch", {}, 401, "invalid_client"),
        ("GET", "/.well-known/no-such-document", {}, 404, "not_found"),
        ("GET", "/jwks", {}, 404, "not_found"),
    ]
    for method, path, kw, status, error in cases:
        resp = requests.request(method, base_url + path, **kw)
        assert resp.status_code == status, (method, path, resp.text[:200])
        assert resp.headers["Content-Type"].startswith("application/json"), (method, path)
        assert resp.json()["error"] == error, (method, path, resp.text)
        assert "<html" not in resp.text.lower()
        assert resp.headers["Cache-Control"] == "no-store", (method, path)


# ---- pages about an app: back to the app -----------------------------------------------------

def test_authorize_error_page_links_to_the_apps_https_homepage_never_the_redirect_uri(
        app, base_url):
    client = make_client(app, name="Homepage App")
    _with_metadata(app, client, client_uri="https://app.example.org/about",
                   logo_uri="https://app.example.org/logo.png")
    flow = OAuthFlow(base_url, client)
    resp = flow.authorize(redirect_uri="https://evil.example/cb")
    page = _is_our_page(resp, 400, "This app's sign-in request is not valid")
    assert _links(page) == {"Back to Homepage App": "https://app.example.org/about"}
    assert 'href="https://evil.example' not in page and REDIRECT_URI not in page
    assert '<img src="https://app.example.org/logo.png" alt="Homepage App logo"' in page


def test_authorize_error_page_of_an_app_without_https_homepage_says_return_to_it(
        app, base_url):
    client = make_client(app, name="Plain App")
    _with_metadata(app, client, client_uri="http://127.0.0.1:9999/")  # loopback http
    page = _is_our_page(OAuthFlow(base_url, client).authorize(
        redirect_uri="https://evil.example/cb"), 400, "This app's sign-in request is not valid")
    assert "You can close this page and return to Plain App." in page
    assert "http://127.0.0.1:9999/" not in page
    assert _links(page) == {"Sign in": "/login"}


def test_authorize_error_page_of_an_unknown_app_names_no_app(base_url):
    page = _is_our_page(requests.get(base_url + "/authorize", params={
        "client_id": "nobody", "response_type": "code"}), 400,
        "This app's sign-in request is not valid")
    assert "The client does not exist" in page and "return to" not in page
    assert _links(page) == {"Sign in": "/login"}


def test_invitation_error_page_offers_sign_in_and_no_app(base_url):
    page = _is_our_page(requests.get(base_url + "/invite/not-a-real-token"), 400,
                        "Invitation not valid")
    assert "return to the app" not in page
    assert _links(page) == {"Sign in": "/login"}


# ---- the root and the favicon ------------------------------------------------------------

def _home_links(page: str) -> dict[str, str]:
    block = re.search(r'<ul class="way-on" id="home-links">(.*?)</ul>', page, re.S)
    assert block, "no links on the landing page"
    return {html.unescape(label): html.unescape(href)
            for href, label in re.findall(r'<a href="([^"]*)">([^<]*)</a>', block.group(1))}


def test_root_is_a_landing_page_with_the_way_in_for_each_role(app, base_url):
    page = requests.get(base_url + "/", allow_redirects=False)
    assert page.status_code == 200 and "<h1>authserver</h1>" in page.text
    assert _home_links(page.text) == {"Sign in": "/login?next=/account"}
    for path in ("/.well-known/smart-configuration", "/.well-known/openid-configuration",
                 "/.well-known/jwks.json"):
        assert f'<a href="{path}">' in page.text
    make_user(app)
    make_user(app, "dev", role="developer", fhir_user=None)
    for username, links in (("alice", {"Your account": "/account"}),
                            ("dev", {"Your account": "/account",
                                     "Developer portal": "/developer"})):
        http = requests.Session()
        form = http.get(base_url + "/login")
        http.post(base_url + "/login", data={"csrf_token": csrf_of(form.text),
                                             "username": username, "password": PASSWORD})
        home = http.get(base_url + "/").text
        assert _home_links(home) == links, username


def test_favicon_is_answered_and_linked_from_every_page(base_url):
    resp = requests.get(base_url + "/favicon.ico", allow_redirects=False)
    assert resp.status_code == 302 and resp.headers["Location"] == "/static/favicon.svg"
    icon = requests.get(base_url + "/favicon.ico")
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg") and "viewBox" in icon.text
    for path in ("/login", "/no/such/page"):
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in \
            requests.get(base_url + path).text
