"""axe-core on every page a person meets, in the real Chromium: 0 critical and 0 serious
violations at phone (390 px) and desktop (1280 px) width, in English and in Spanish, and in
the dark colour scheme.

axe-core is the npm package pinned in tests/e2e/interop (``.ci/install-interop``); it is
injected into each page with the page's CSP bypassed for that injection only (the pages
themselves allow no inline script). Each state a page needs (signed in, half signed in,
a parked request) is reached over HTTP and its cookies handed to the browser context.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.conftest import PG_URL
from tests.helpers import (
    PASSWORD,
    OAuthFlow,
    add_patients,
    csrf_of,
    make_client,
    make_user,
    query_of,
    sign_in_admin,
    totp_code,
)

pytestmark = [
    pytest.mark.e2e,
    # Markup, not storage: the SQLite leg checks it; the PostgreSQL leg spends its time on
    # what the database changes.
    pytest.mark.skipif(bool(PG_URL), reason="axe runs on the SQLite leg (pages are the same "
                                            "on PostgreSQL)"),
]

AXE = Path(__file__).parent / "interop" / "node_modules" / "axe-core" / "axe.min.js"
#: (language, width, colour scheme): both languages at both widths, and the dark scheme
#: (which follows the device) once per language.
COMBINATIONS = [(lang, width, "light") for lang in ("en", "es") for width in (390, 1280)] + [
    ("en", 390, "dark"), ("es", 1280, "dark")]
_RUN_AXE = """async () => (await axe.run(document, {resultTypes: ["violations"]}))
  .violations.filter(v => v.impact === "critical" || v.impact === "serious")
  .map(v => ({id: v.id, impact: v.impact, help: v.help,
              targets: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""


def _session_at(base_url: str, username: str, secret: str | None = None,
                nxt: str = "/account") -> tuple[requests.Session, str]:
    """Signed in (password, then TOTP when ``secret``); the page reached and its session."""
    s = requests.Session()
    page = s.get(base_url + "/login?next=" + nxt)
    resp = s.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                             "username": username, "password": PASSWORD,
                                             "next": nxt})
    if secret:
        resp = s.post(base_url + "/login/totp", data={
            "csrf_token": csrf_of(resp.text), "code": totp_code(secret), "next": nxt})
    return s, resp.url


@pytest.fixture
def pages(app, base_url) -> list[tuple[str, str, requests.Session | None, str]]:
    """(name, URL, the session whose cookies the browser needs, a selector of that page)
    for every page."""
    from authserver.services import accounts

    make_user(app)  # alice, a patient with the record Patient/p1
    make_user(app, "drwho", role="clinician", fhir_user="Practitioner/pr1", name="Dr Who")
    make_user(app, "newdoc", role="clinician", fhir_user="Practitioner/pr2", name="New Doc")
    make_user(app, "dev", role="developer", fhir_user=None, name="Dev Eloper")
    add_patients(app, ("p1", "Example, Alice", "1984-03-12"), ("p2", "Sample, Bob", None))
    with app.app_context():
        secret = accounts.enrol_totp("drwho")["secret"]
    client = make_client(app)
    patient = OAuthFlow(base_url, client, requests.Session())
    patient.authorize()
    patient.follow()
    patient.login()  # on the consent page
    clinician = OAuthFlow(base_url, client, requests.Session(),
                          scope="launch/patient openid fhirUser patient/*.rs")
    nxt = clinician.authorize().headers["Location"]  # /authorize/continue?req=...
    s, picker = _session_at(base_url, "drwho", secret, nxt)  # ... on to the picker
    chosen = s.post(base_url + "/authorize/patient", data={
        "csrf_token": csrf_of(s.get(picker).text), "req": query_of(picker)["req"],
        "patient": "p2"})  # ... and the consent page that names Bob Sample
    half = requests.Session()  # password given, TOTP step next
    page = half.get(base_url + "/login")
    half.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                         "username": "drwho", "password": PASSWORD})
    enrol = requests.Session()
    page = enrol.get(base_url + "/login")
    enrol.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                          "username": "newdoc", "password": PASSWORD})
    dev, _ = _session_at(base_url, "dev", nxt="/developer")
    return [  # (name, URL, session, a selector only that page has)
        ("landing page", base_url + "/", None, "#discovery"),
        ("sign-in", base_url + "/login", None, "#password"),
        ("error: unknown app", base_url + "/authorize?client_id=nobody&response_type=code",
         None, "main [role=alert]"),
        ("consent (patient)", patient.last.url, patient.http, "button[value=allow]"),
        ("account", base_url + "/account", patient.http, "main h1"),
        ("sign out", base_url + "/logout", patient.http, "form[action='/logout']"),
        ("two-step code", base_url + "/login/totp", half, "#code"),
        ("two-step enrolment", base_url + "/login/enrol", enrol, ".qr svg"),
        ("patient picker", picker, s, "#q"),
        ("consent (clinician)", chosen.url, s, "#patient-named"),
        ("developer", base_url + "/developer", dev, "form"),
        ("admin", base_url + "/admin", sign_in_admin(app, base_url), "table"),
    ]


def _seeded_links(app) -> tuple[str, str]:
    """A live password-reset link for alice and an invitation link (their tokens are
    random and stored hashed, as the server makes them)."""
    from authserver import clock, digests, store
    from authserver.extensions import db

    reset, invite = digests.new_secret(32), digests.new_secret(32)
    with app.app_context():
        alice = store.accounts.get_user_by_username("alice")
        store.password_resets.add(user_id=alice.id, token_hash=digests.sha256_hex(reset),
                                  created_at=clock.now(), expires_at=clock.now() + 1800)
        store.accounts.add_invitation(token_hash=digests.sha256_hex(invite),
                                      email="nurse@example.org", role="clinician",
                                      fhir_user="Practitioner/pr7", name="Nurse",
                                      invited_by=None, created_at=clock.now(),
                                      expires_at=clock.now() + 3600)
        db.session.commit()
    return f"/reset/{reset}", f"/invite/{invite}"


@pytest.fixture
def more_pages(app, base_url, pages) -> list[tuple[str, str, requests.Session | None, str]]:
    """The account's own pages (password, two-step, an app's change and revoke pages), the
    mailed links' pages and the 403 / 404 pages."""
    reset, invite = _seeded_links(app)
    alice = [p for p in pages if p[0] == "account"][0][2]
    flow = OAuthFlow(base_url, make_client(app, name="Connected App"), alice)
    flow.authorize()
    flow.follow()
    flow.consent()
    assert flow.token(flow.code()).status_code == 200
    cid = flow.client["client_id"]
    return [
        ("password change", base_url + "/account/password", alice, "#current_password"),
        ("forgotten password", base_url + "/forgot", None, "main h1"),
        ("password reset link", base_url + reset, None, "#password_confirm"),
        ("invitation", base_url + invite, None, "form"),
        ("two-step setup", base_url + "/account/two-step/setup", alice, "main h1"),
        ("change an app", base_url + "/account/apps/change?client_id=" + cid, alice,
         "input[name=scope]"),
        ("revoke an app", base_url + "/account/revoke?client_id=" + cid, alice,
         "form[action='/account/revoke']"),
        ("403", base_url + "/admin", alice, "main h1"),
        ("404", base_url + "/no-such-page", None, "main h1"),
    ]


def test_no_serious_or_critical_violation_on_any_page(browser, pages, more_pages, base_url):
    pages = pages + more_pages
    if not AXE.exists():
        pytest.skip(f"axe-core is not installed at {AXE} (.ci/install-interop installs it)")
    found = {}
    probe = browser.new_page()  # the harness finds what it is for: an unlabelled field
    probe.set_content('<html lang="en"><head><title>t</title></head>'
                      '<body><main><input></main></body></html>')
    probe.add_script_tag(path=str(AXE))
    assert [v["id"] for v in probe.evaluate(_RUN_AXE)] == ["label"]
    probe.close()
    for lang, width, scheme in COMBINATIONS:
        context = browser.new_context(viewport={"width": width, "height": 844},
                                      bypass_csp=True, color_scheme=scheme,
                                      extra_http_headers={"Accept-Language": lang})
        for name, url, session, selector in pages:
            if session is not None:
                context.add_cookies([{"name": c.name, "value": c.value, "url": base_url}
                                     for c in session.cookies])
            page = context.new_page()
            page.goto(url)
            assert page.locator(selector).count() > 0, (name, page.url)
            assert page.evaluate("document.documentElement.lang") == lang, (name, url)
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == ("rgb(17, 19, 22)" if scheme == "dark"
                                  else "rgb(246, 247, 249)"), (name, scheme, background)
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate(_RUN_AXE)
            if violations:
                found[f"{name} [{lang}, {width}px, {scheme}]"] = violations
            page.close()
            context.clear_cookies()
        context.close()
    assert not found, json.dumps(found, indent=1)[:4000]
