"""The patient standalone launch in a real browser (headless Debian Chromium via Playwright):
from the demo app's "Launch" button to the app holding its token and reading the FHIR server.

Everything is real: the authorization server (the ``live`` fixture), the demo app
(:mod:`authserver.demo.app`) and the demo FHIR server (:mod:`authserver.demo.fhir`), each
served over HTTP on its own port. Skipped, saying why, where no browser can be had
(``.ci/install-browser`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Served
from tests.helpers import verify_jwt

LAB = ("patient/Observation.rs?category="
       "http://terminology.hl7.org/CodeSystem/observation-category|laboratory")

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo(app, base_url) -> Iterator[dict]:
    """The demo FHIR server and the demo app, seeded on the live authorization server."""
    from authserver.cli.seed import DEMO_PASSWORD, seed
    from authserver.demo.app import create_demo_app
    from authserver.demo.fhir import create_fhir_app

    fhir = Served()
    fhir_base = fhir.url + "/fhir"
    fhir.start(create_fhir_app(base_url, fhir_base))
    # This test's FHIR server is one the authorization server protects (a valid `aud`).
    app.config["FHIR_BASE_URLS"] = [*app.config["FHIR_BASE_URLS"], fhir_base]
    demo_app = Served()
    with app.app_context():
        info = seed(demo_app.url)
    demo_app.start(create_demo_app(issuer=base_url, fhir_base=fhir_base,
                                   client_id=info["client"]["client_id"],
                                   base_url=demo_app.url))
    try:
        yield {"url": demo_app.url, "fhir_base": fhir_base, "password": DEMO_PASSWORD,
               "client_id": info["client"]["client_id"], "totp_secret": info["totp"]["secret"]}
    finally:
        demo_app.stop()
        fhir.stop()


def test_browser_patient_standalone_launch_from_demo_app_to_token(browser, demo, base_url):
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(demo["url"] + "/")
    # The demo app's button POSTs the request to /authorize (authorize-post) ...
    page.click("#launch")
    page.wait_for_selector("input[name=password]")
    assert page.url.startswith(base_url + "/login")
    # ... the patient signs in ...
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", demo["password"])
    page.click("button[type=submit]")
    page.wait_for_selector("button[name=decision][value=allow]")
    # ... and sees the consent page naming the app, every scope ticked.
    assert page.inner_text("#app-name") == "SMART Demo App"
    boxes = page.locator("input[type=checkbox][name=scope]")
    values = [boxes.nth(i).get_attribute("value") for i in range(boxes.count())]
    assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    # The whole type is one item, its value the requested string; categories beneath it.
    assert "patient/Observation.rs" in values and LAB in values
    # One scope unticked (offline_access), one Observation category kept (laboratory):
    # the grant then holds that category (v2 granular), not the whole type.
    for i, value in enumerate(values):
        if value == "offline_access" or (
                value.startswith("patient/Observation.rs?category=") and value != LAB):
            boxes.nth(i).uncheck()
    page.click("button[name=decision][value=allow]")
    # The app exchanged the code and holds its token.
    page.wait_for_selector("#token-response")
    assert page.url.startswith(demo["url"] + "/callback?")
    token = json.loads(page.inner_text("#token-response"))
    # Condition kept whole (its categories all ticked): the requested string, no categories.
    expected = [v for v in values if v not in ("offline_access", "patient/Observation.rs")
                and ("?category=" not in v or v == LAB)]
    assert token["scope"].split(" ") == expected
    assert token["token_type"] == "Bearer" and token["patient"] == "p1"
    assert "refresh_token" not in token and "id_token" in token
    claims = verify_jwt(base_url, token["access_token"], audience=demo["fhir_base"],
                        typ="at+jwt")
    assert claims["patient"] == "p1" and claims["scope"] == token["scope"]
    # The app verified the id_token and read the FHIR server with the access token:
    # only laboratory Observations come back.
    id_claims = json.loads(page.inner_text("#id-token-claims"))
    assert id_claims["fhirUser"].endswith("/Patient/p1")
    assert "Alice" in page.inner_text("#fhir-patient")
    rows = page.locator("#observations tr").all_inner_texts()[1:]
    assert rows and all("laboratory" in row for row in rows), rows


#: Inputs a page shows whose label is missing: each visible input needs a <label for=id>.
UNLABELLED_INPUTS_JS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
    .filter(el => el.type !== 'hidden')
    .filter(el => !el.id || !document.querySelector(`label[for="${CSS.escape(el.id)}"]`))
    .map(el => el.outerHTML)"""


def test_browser_clinician_standalone_launch_with_totp_and_picker(browser, demo, base_url):
    import pyotp

    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(demo["url"] + "/")
    page.click("#launch")
    page.wait_for_selector("#password")
    assert page.url.startswith(base_url + "/login")
    # The clinician signs in with the password ...
    page.fill("#username", "drsmith")
    page.fill("#password", demo["password"])
    page.click("button[type=submit]")
    # ... then with the code of the authenticator app (TOTP is required of clinicians).
    page.wait_for_selector("#code")
    assert page.url.startswith(base_url + "/login/totp")
    assert page.evaluate(UNLABELLED_INPUTS_JS) == []
    page.fill("#code", pyotp.TOTP(demo["totp_secret"]).now())
    page.click("button[type=submit]")
    # launch/patient without a launch: the picker; a search narrows it to Bob.
    page.wait_for_selector("#choose")
    assert page.url.startswith(base_url + "/authorize/patient")
    assert page.evaluate(UNLABELLED_INPUTS_JS) == []
    assert page.locator("input[name=patient]").count() == 3
    assert not any(page.locator("input[name=patient]").nth(i).is_checked() for i in range(3))
    page.fill("#q", "Sample")
    page.click("#search")
    page.wait_for_selector("#result-count:has-text('1 patient match')")
    assert page.evaluate(UNLABELLED_INPUTS_JS) == []
    values = page.locator("input[name=patient]").evaluate_all("els => els.map(e => e.value)")
    assert values == ["p2"]
    page.check('input[name=patient][value="p2"]')
    page.click("#choose")
    # Consent, then the app exchanges the code.
    page.wait_for_selector("button[name=decision][value=allow]")
    assert page.inner_text("#app-name") == "SMART Demo App"
    # The page names the patient the clinician picked (the wrong-patient check), never "your".
    assert page.inner_text("#patient-named strong") == "Bob Sample"
    assert page.get_attribute("#patient-named time", "datetime") == "1971-11-02"  # born
    assert "Bob Sample's" in page.inner_text("#section-record")
    assert "your" not in page.inner_text("#section-record").lower()
    # A keyboard user reaches Allow in three presses: Tab to the skip link, Enter, Tab.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("[document.activeElement.name, document.activeElement.value]") == [
        "decision", "allow"]
    page.click("button[name=decision][value=allow]")
    page.wait_for_selector("#token-response")
    assert page.url.startswith(demo["url"] + "/callback?")
    token = json.loads(page.inner_text("#token-response"))
    assert token["token_type"] == "Bearer" and token["patient"] == "p2"
    claims = verify_jwt(base_url, token["access_token"], audience=demo["fhir_base"],
                        typ="at+jwt")
    assert claims["patient"] == "p2" and claims["scope"] == token["scope"]
    assert claims["fhirUser"].endswith("/Practitioner/pr1")
    id_claims = json.loads(page.inner_text("#id-token-claims"))
    assert id_claims["fhirUser"].endswith("/Practitioner/pr1")
    assert "Bob" in page.inner_text("#fhir-patient")


# ---- the demo itself (no browser needed) -------------------------------------------------

def test_demo_seed_is_idempotent(app, base_url):
    from authserver import store
    from authserver.cli.seed import DEMO_PATIENTS, ehr_launch_link, seed
    with app.app_context():
        first = seed("http://127.0.0.1:8002")
        second = seed("http://127.0.0.1:8002")
        assert first["client"]["client_id"] == second["client"]["client_id"]
        assert first["totp"]["secret"] == second["totp"]["secret"]
        assert second["totp"]["otpauth_uri"].startswith("otpauth://totp/")
        alice = store.accounts.get_user_by_username("alice")
        assert (alice.role, alice.fhir_user) == ("patient", "Patient/p1")
        drsmith = store.accounts.get_user_by_username("drsmith")
        assert drsmith.role == "clinician" and drsmith.has_totp
        assert drsmith.fhir_user == "Practitioner/pr1"
        assert {p: store.registry.get_patient(p).display_name for p in DEMO_PATIENTS} == {
            "p1": "Example, Alice", "p2": "Sample, Bob", "p3": "Test, Carol"}
        client = second["client"]
        assert client["token_endpoint_auth_method"] == "none"
        assert client["redirect_uris"] == ["http://127.0.0.1:8002/callback"]
        assert set(client["scope"].split()) == {
            "openid", "fhirUser", "launch", "launch/patient", "offline_access",
            "online_access", "patient/*.rs", "user/*.rs", "patient/Observation.rs",
            "patient/Condition.rs"}
        link = ehr_launch_link(client["client_id"], "http://127.0.0.1:8002")
    assert link.startswith("http://127.0.0.1:8002/launch?iss=http%3A%2F%2F127.0.0.1%3A8001"
                           "%2Ffhir&launch=")


def test_demo_app_refuses_foreign_iss_state_and_issuer(app, base_url):
    from authserver.demo.app import create_demo_app

    demo_app = create_demo_app(issuer=base_url, fhir_base="http://127.0.0.1:8001/fhir",
                               client_id="c", base_url="http://127.0.0.1:8002")
    client = demo_app.test_client()
    # An EHR launch naming another FHIR server is refused before anything is contacted.
    resp = client.get("/launch?iss=https://evil.example.org/fhir&launch=x")
    assert resp.status_code == 400
    # A response with another issuer's `iss` (RFC 9207 mix-up), or an unknown state.
    resp = client.get("/callback?code=c&state=s&iss=https://evil.example.org")
    assert resp.status_code == 400 and b"wrong_issuer" in resp.data
    resp = client.get(f"/callback?code=c&state=never-issued&iss={base_url}")
    assert resp.status_code == 400 and b"unknown_state" in resp.data
    # The launch page carries S256 PKCE, state, nonce and aud to the authorization endpoint.
    page = client.get("/").get_data(as_text=True)
    assert f'action="{base_url}/authorize"' in page
    for field in ('name="code_challenge_method" value="S256"', 'name="state"',
                  'name="nonce"', 'name="aud" value="http://127.0.0.1:8001/fhir"'):
        assert field in page


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_command_serves_auth_server_fhir_server_and_demo_app(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import requests

    port, fhir_port = _free_port(), _free_port()
    env = {**os.environ, "AUTHSERVER_INSTANCE_PATH": str(tmp_path / "instance"),
           "AUTHSERVER_ISSUER": f"http://127.0.0.1:{port}",
           "AUTHSERVER_FHIR_BASE_URL": f"http://127.0.0.1:{fhir_port}/fhir"}
    env.pop("AUTHSERVER_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "authserver.cli", "demo", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Stop with Ctrl-C" in x for x in lines):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
        banner = "".join(lines)
        assert "Stop with Ctrl-C" in banner, banner[-2000:]
        demo_url = f"http://127.0.0.1:{port + 2}/"
        assert demo_url in banner and "alice / smart-demo-password" in banner
        assert "otpauth://totp/" in banner and "/launch?iss=" in banner
        page = requests.get(demo_url, timeout=10)
        assert page.status_code == 200 and 'id="launch"' in page.text
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        meta = requests.get(f"http://127.0.0.1:{fhir_port}/fhir/metadata", timeout=10)
        assert meta.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    # Everything it started is gone with it.
    for url in (f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{fhir_port}/fhir/metadata"):
        try:
            requests.get(url, timeout=2)
            raise AssertionError(f"{url} still answers after the demo stopped")
        except requests.ConnectionError:
            pass
