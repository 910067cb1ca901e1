"""SMART's own JavaScript client (npm ``fhirclient`` 2.x, its prebuilt browser bundle,
unmodified) launched in a real browser (headless Debian Chromium via Playwright) against
this authorization server and the demo FHIR server.

Everything is real: the authorization server (the ``live`` fixture), the demo FHIR server
(:mod:`authserver.demo.fhir`, the ``iss`` from which fhirclient discovers the authorization
server through ``.well-known/smart-configuration``) and a static test app (``launch.html``
calling ``FHIR.oauth2.authorize``, ``app.html`` calling ``FHIR.oauth2.ready``), each served
over HTTP on its own 127.0.0.1 port, so every call the app makes (discovery, token, refresh,
FHIR reads) is cross-origin and needs the servers' CORS. The app is a public client; the
person signs in and consents by typing and clicking on the server's own pages.

Skipped, saying why, where the bundle is missing (``.ci/install-interop`` installs it with
npm into tests/e2e/interop/node_modules) or no browser can be had (``.ci/install-browser``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import Served
from tests.helpers import make_client, verify_jwt

BUNDLE = Path(__file__).parent / "interop/node_modules/fhirclient/build/fhir-client.js"
TIMEOUT_MS = 20_000
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PATIENT_SCOPE = ("openid fhirUser launch/patient offline_access patient/Patient.rs "
                 "patient/Observation.rs")
EHR_SCOPE = "launch openid fhirUser patient/Patient.rs patient/Encounter.rs user/Practitioner.rs"
V1_SCOPE = "openid fhirUser launch/patient patient/Patient.read patient/Observation.read"
#: What the test app registers: every scope any test here asks for.
APP_SCOPE = " ".join(dict.fromkeys(f"{PATIENT_SCOPE} {EHR_SCOPE} {V1_SCOPE}".split()))

pytestmark = pytest.mark.e2e

#: A page of the test app: loads the bundle, then runs ``/*SCRIPT*/``; ``show`` writes a
#: ``<pre>`` (``#result`` with JSON, or ``#error``) for the test to read.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fhirclient test app</title>
<script src="/fhir-client.js"></script></head>
<body><script>
const show = (id, text) => {
  const pre = document.createElement("pre");
  pre.id = id;
  pre.textContent = text;
  document.body.appendChild(pre);
};
const fail = e => show("error", String((e && (e.stack || e.message)) || e));
const copy = value => JSON.parse(JSON.stringify(value));
/*SCRIPT*/
</script></body></html>
"""

#: launch.html: fhirclient discovers the endpoints from ``iss`` and redirects to /authorize.
#: An EHR launch gives ``iss`` and ``launch`` in the page's query (fhirclient reads them).
LAUNCH_JS = """FHIR.oauth2.authorize(Object.assign(/*OPTIONS*/, {redirectUri: "/app.html"}))
  .catch(fail);"""


def page_html(script: str) -> str:
    return PAGE.replace("/*SCRIPT*/", script)


def launch_html(options: dict[str, str]) -> str:
    as_js = json.dumps(options).replace("</", "<\\/")
    return page_html(LAUNCH_JS.replace("/*OPTIONS*/", as_js))


def app_html(body: str) -> str:
    """app.html: ``FHIR.oauth2.ready()`` (the code exchange), then ``body`` with ``client``
    in scope; what ``body`` returns becomes ``#result``."""
    return page_html("FHIR.oauth2.ready().then(async client => {\n" + body +
                     "\n}).then(out => show(\"result\", JSON.stringify(out))).catch(fail);")


def _static_app(bundle: bytes, pages: dict[str, str]) -> Callable:
    """The test app's origin: the fhirclient bundle and the pages a test put in ``pages``."""

    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/fhir-client.js":
            body, ctype = bundle, "text/javascript; charset=utf-8"
        elif path in pages:
            body, ctype = pages[path].encode(), "text/html; charset=utf-8"
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store")])
        return [body]

    return wsgi


@dataclass
class SmartApp:
    url: str  # the static app's origin
    fhir_base: str
    client_id: str
    password: str
    totp_secret: str
    pages: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def browser(browser):  # the shared Chromium, once the bundle is known
    if not BUNDLE.exists():
        pytest.skip(f"no fhirclient bundle: {BUNDLE} is missing (.ci/install-interop "
                    "installs the npm package fhirclient; it needs node and npm)")
    return browser


@pytest.fixture
def smart(app, base_url, browser) -> Iterator[SmartApp]:
    """The demo FHIR server and the static test app, its client registered (public) and the
    demo users seeded on the live authorization server."""
    from authserver.cli.seed import DEMO_PASSWORD, seed
    from authserver.demo.fhir import create_fhir_app

    fhir = Served()
    fhir_base = fhir.url + "/fhir"
    fhir.start(create_fhir_app(base_url, fhir_base))
    # This test's FHIR server is one the authorization server protects (a valid `aud`).
    app.config["FHIR_BASE_URLS"] = [*app.config["FHIR_BASE_URLS"], fhir_base]
    static = Served()
    with app.app_context():
        # The demo users and patients; the demo app it registers too is not used here (its
        # address, the discard port, is not the test app's origin).
        info = seed("http://127.0.0.1:9")
    client = make_client(app, name="fhirclient test app", scope=APP_SCOPE,
                         redirect_uris=[static.url + "/app.html"],
                         launch_uris=[static.url + "/launch.html"])
    assert client["token_endpoint_auth_method"] == "none" and "client_secret" not in client
    smart_app = SmartApp(url=static.url, fhir_base=fhir_base, client_id=client["client_id"],
                         password=DEMO_PASSWORD, totp_secret=info["totp"]["secret"])
    static.start(_static_app(BUNDLE.read_bytes(), smart_app.pages))
    try:
        yield smart_app
    finally:
        static.stop()
        fhir.stop()


# ---- driving the page --------------------------------------------------------------------

class Tab:
    """A browser page with its console errors kept, and waits that say where they stuck."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.log: list[str] = []
        self.page.on("console", lambda m: self.log.append(
            f"console.{m.type}: {m.text} ({m.location.get('url')})")
            if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda exc: self.log.append(f"pageerror: {exc}"))

    def where(self) -> str:
        try:
            error = self.page.locator("#error")
            shown = error.inner_text(timeout=1_000) if error.count() else ""
            text = self.page.inner_text("body", timeout=1_000)[:1500]
        except Exception as exc:  # a report, whatever the page's state
            shown, text = "", f"(page unreadable: {exc})"
        return (f"\n  url: {self.page.url}\n  #error: {shown or '-'}\n  page text: {text!r}"
                f"\n  browser console: {self.log or '-'}")

    def wait(self, selector: str) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_selector(selector)
        except PlaywrightTimeout:
            raise AssertionError(f"no {selector!r} within {TIMEOUT_MS // 1000} s:"
                                 + self.where()) from None

    def sign_in(self, base_url: str, username: str, password: str,
                totp_secret: str | None = None) -> None:
        """The server's own login page (and TOTP page), typed into like a person would."""
        self.wait("input[name=password]")
        assert self.page.url.startswith(base_url + "/login"), self.where()
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("button[type=submit]")
        if totp_secret is not None:
            import pyotp

            self.wait("#code")
            assert self.page.url.startswith(base_url + "/login/totp"), self.where()
            self.page.fill("#code", pyotp.TOTP(totp_secret).now())
            self.page.click("button[type=submit]")

    def consent_all(self, required: bool = True) -> list[str]:
        """Allow on the consent page, nothing unticked; the scopes it offered. With
        ``required`` False a page that goes straight on to the app is fine too."""
        allow = "button[name=decision][value=allow]"
        self.wait(allow if required else f"{allow}, #result, #error")
        if not self.page.locator(allow).count():
            return []
        boxes = self.page.locator("input[type=checkbox][name=scope]")
        offered = boxes.evaluate_all("els => els.map(e => e.value)")
        assert all(boxes.nth(i).is_checked() for i in range(boxes.count())), offered
        self.page.click(allow)
        return offered

    def result(self, origin: str) -> dict[str, Any]:
        """What app.html wrote to #result; fails with #error (and the console) otherwise."""
        self.wait("#result, #error")
        assert self.page.url.startswith(origin + "/app.html"), self.where()
        assert not self.page.locator("#error").count(), "app.html failed:" + self.where()
        return json.loads(self.page.inner_text("#result"))


# ---- the launches --------------------------------------------------------------------------

def test_standalone_patient_launch_reads_and_refreshes_with_defaults(browser, smart, base_url):
    smart.pages["/launch.html"] = launch_html(
        {"iss": smart.fhir_base, "clientId": smart.client_id, "scope": PATIENT_SCOPE})
    smart.pages["/app.html"] = app_html("""
  const first = copy(client.state.tokenResponse);
  const patient = await client.patient.read();
  const observations = await client.request("Observation?patient=" + client.patient.id,
                                            {flat: true, useRefreshToken: false});
  const beforeRefresh = client.state.tokenResponse.access_token;
  await client.refresh();  // fhirclient's defaults: grant_type and refresh_token only
  const refreshed = copy(client.state.tokenResponse);
  const again = await client.request("Patient/" + client.patient.id, {useRefreshToken: false});
  return {patientId: client.patient.id, first, beforeRefresh, patient, observations,
          refreshed, again};""")
    tab = Tab(browser)
    tab.page.goto(smart.url + "/launch.html")
    tab.sign_in(base_url, "alice", smart.password)
    offered = tab.consent_all()
    assert "offline_access" in offered and "patient/Observation.rs" in offered
    out = tab.result(smart.url)
    first, refreshed = out["first"], out["refreshed"]
    # The code exchange (cross-origin POST /token) gave the patient's context ...
    assert out["patientId"] == "p1" and first["patient"] == "p1"
    assert first["token_type"] == "Bearer" and first.get("refresh_token"), first
    assert set(first["scope"].split()) == set(PATIENT_SCOPE.split()), first["scope"]
    # ... and the reads through the demo FHIR server used that token (no silent refresh).
    assert out["beforeRefresh"] == first["access_token"]
    assert out["patient"]["id"] == "p1"
    assert out["patient"]["name"][0]["given"] == ["Alice"], out["patient"]["name"]
    observations = out["observations"]
    assert observations, "no Observation for p1"
    assert {o["resourceType"] for o in observations} == {"Observation"}
    assert all(o["subject"]["reference"] == "Patient/p1" for o in observations), observations
    # client.refresh() with no client_id (public client), its answer readable (CORS).
    assert refreshed["access_token"] != first["access_token"]
    claims = verify_jwt(base_url, refreshed["access_token"], audience=smart.fhir_base,
                        typ="at+jwt")
    assert claims["patient"] == "p1" and claims["client_id"] == smart.client_id, claims
    assert set(refreshed["scope"].split()) == set(first["scope"].split())
    # The refreshed token reads too.
    assert out["again"]["resourceType"] == "Patient" and out["again"]["id"] == "p1"


def test_ehr_launch_with_encounter_for_a_clinician_with_totp(browser, smart, base_url, app):
    from authserver import store
    from authserver.services import launches

    with app.app_context():
        made = launches.create_launch(patient="p1", encounter="enc-p1-1",
                                      client_id=smart.client_id, aud=smart.fhir_base)
        assert store.interaction.find_launch(made["launch"]) is not None
    assert made["iss"] == smart.fhir_base
    # No `iss` in the options: the EHR names it (and the launch) in the page's query.
    smart.pages["/launch.html"] = launch_html({"clientId": smart.client_id,
                                               "scope": EHR_SCOPE})
    smart.pages["/app.html"] = app_html("""
  const encounter = await client.encounter.read();
  const user = await client.user.read();
  return {patientId: client.patient.id, encounterId: client.encounter.id,
          userId: client.user.id, userType: client.user.resourceType,
          tokenResponse: copy(client.state.tokenResponse), encounter, user};""")
    tab = Tab(browser)
    tab.page.goto(smart.url + "/launch.html?" + urlencode(
        {"iss": made["iss"], "launch": made["launch"]}))
    tab.sign_in(base_url, "drsmith", smart.password, totp_secret=smart.totp_secret)
    tab.consent_all(required=False)
    out = tab.result(smart.url)
    token = out["tokenResponse"]
    # The EHR's context, from the token response.
    assert (token["patient"], token["encounter"]) == ("p1", "enc-p1-1"), token
    assert (out["patientId"], out["encounterId"]) == ("p1", "enc-p1-1")
    assert token["scope"].split()[0] == "launch", token["scope"]
    assert {"openid", "fhirUser", "user/Practitioner.rs", "patient/Encounter.rs"} <= set(
        token["scope"].split()), token["scope"]
    # client.encounter.read(): the launch's encounter, of the launch's patient.
    assert out["encounter"]["resourceType"] == "Encounter"
    assert out["encounter"]["id"] == "enc-p1-1"
    assert out["encounter"]["subject"]["reference"] == "Patient/p1"
    # client.user.read(): the id_token's fhirUser, read from the FHIR server.
    assert (out["userType"], out["userId"]) == ("Practitioner", "pr1")
    assert (out["user"]["resourceType"], out["user"]["id"]) == ("Practitioner", "pr1")
    # The launch was single use: it is spent now.
    with app.app_context():
        assert store.interaction.find_launch(made["launch"]) is None


def test_v1_scopes_are_kept_and_reach_a_category_outside_us_core(browser, smart, base_url):
    from authserver.smart.grammar import GRANULAR_CATEGORIES

    exam = f"{OBSERVATION_CATEGORY}|exam"
    # The premise: the consent page offers no category sub-scope for `exam`.
    assert not any(c.endswith("|exam") for c in GRANULAR_CATEGORIES["Observation"])
    smart.pages["/launch.html"] = launch_html(
        {"iss": smart.fhir_base, "clientId": smart.client_id, "scope": V1_SCOPE})
    smart.pages["/app.html"] = app_html("""
  const observations = await client.patient.request("Observation", {flat: true});
  const exam = await client.request("Observation?patient=" + client.patient.id +
                                    "&category=exam", {flat: true});
  const read = exam.length ? await client.request("Observation/" + exam[0].id) : null;
  return {tokenResponse: copy(client.state.tokenResponse), observations, exam, read};""")
    tab = Tab(browser)
    tab.page.goto(smart.url + "/launch.html")
    tab.sign_in(base_url, "alice", smart.password)
    offered = tab.consent_all()
    assert "patient/Observation.read" in offered, offered
    assert not [v for v in offered if v.endswith("|exam")], offered
    out = tab.result(smart.url)
    scopes = out["tokenResponse"]["scope"].split()
    # v1 kept as asked: no v2 rewrite, no `?category=` narrowing.
    assert sorted(s for s in scopes if "/" in s and s != "launch/patient") == [
        "patient/Observation.read", "patient/Patient.read"], scopes
    assert not [s for s in scopes if "?" in s], scopes
    assert set(scopes) == set(V1_SCOPE.split()), scopes
    # Every Observation of p1 comes back, the one of category `exam` among them.
    categories = {c["code"] for o in out["observations"] for cat in o["category"]
                  for c in cat["coding"] if c["system"] == OBSERVATION_CATEGORY}
    assert {"exam", "laboratory", "vital-signs"} <= categories, categories
    found = out["exam"]
    assert found and all(o["subject"]["reference"] == "Patient/p1" for o in found), found
    assert all(exam == f"{c['system']}|{c['code']}" for o in found
               for c in o["category"][0]["coding"]), found
    # ... and it reads by id.
    assert out["read"] == found[0], out["read"]
