"""EHR launch: launch contexts from the CLI and from ``POST /launch``, used at /authorize.

SMART App Launch 2.2 (https://hl7.org/fhir/smart-app-launch/app-launch.html#launch-app-ehr-launch
and scopes-and-launch-context.html#launch-context-arrives-with-your-access_token): the app
sends ``launch`` back with scope ``launch`` and ``aud`` equal to the launch's ``iss``; the
context (patient, encounter, fhirContext, need_patient_banner, smart_style_url, intent, tenant)
comes back in the token response. A launch is single use and short lived.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import (
    EHR_SCOPES,
    FHIR_BASE,
    OAuthFlow,
    add_patients,
    location_query,
    make_client,
    make_clinician,
    make_launch,
    make_user,
    totp_code,
    verify_jwt,
)

EXE = str(Path(sys.executable).with_name("authserver"))
OTHER_BASE = "https://fhir.example.org/r4"
FHIR_CONTEXT = [{"reference": "DiagnosticReport/d1", "type": "DiagnosticReport"},
                {"canonical": "http://example.org/Questionnaire/q|1"}]


@pytest.fixture
def ehr(app, base_url):
    """A clinician with TOTP, the practitioner app, and an EHR client allowed to launch."""
    user = make_clinician(app)
    app_client = make_client(app, scope=EHR_SCOPES + " online_access offline_access",
                             auth_method="client_secret_basic")
    ehr_client = make_client(app, name="The EHR", scope="", auth_method="client_secret_basic",
                             can_launch=True)
    return {"secret": user["secret"], "client": app_client, "ehr": ehr_client}


def _launch_flow(base_url: str, ehr: dict, launch: str, scope: str = EHR_SCOPES,
                 **kw) -> OAuthFlow:
    flow = OAuthFlow(base_url, ehr["client"], requests.Session(), scope=scope,
                     extra={"launch": launch}, **kw)
    flow.authorize()
    return flow


def _sign_in(flow: OAuthFlow, ehr: dict, username: str = "drsmith", ahead: int = 0) -> None:
    flow.follow()
    flow.login(username)
    flow.totp(totp_code(ehr["secret"], ahead=ahead))


def _run(flow: OAuthFlow, ehr: dict) -> dict:
    _sign_in(flow, ehr)
    assert 'name="decision"' in flow.last.text, flow.last.text[:300]  # no picker: EHR context
    flow.consent()
    resp = flow.token(flow.code())
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.json()


def _assert_refused(flow: OAuthFlow, resp: requests.Response, error: str,
                    base_url: str) -> dict:
    q = location_query(resp)
    assert resp.headers["Location"].startswith(flow.redirect_uri + "?")
    assert q["error"] == error, q
    assert q["state"] == flow.state and q["iss"] == base_url
    assert "code" not in q
    return q


def _cli(app, *args: str) -> subprocess.CompletedProcess:
    """The real `authserver` command, on the live server's database and settings."""
    conf = app.config
    env = {**os.environ,
           "AUTHSERVER_INSTANCE_PATH": conf["INSTANCE_PATH"],
           "AUTHSERVER_DATABASE_URL": conf["DATABASE_URL"],
           "AUTHSERVER_ISSUER": conf["ISSUER"],
           "AUTHSERVER_FHIR_BASE_URL": ",".join(conf["FHIR_BASE_URLS"]),
           "AUTHSERVER_KEY_ENCRYPTION_KEY": conf["KEY_ENCRYPTION_KEY"],
           "AUTHSERVER_SECRET_KEY": conf["SECRET_KEY"]}
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=120)


def _post_launch(base_url: str, client: dict | None, **kw) -> requests.Response:
    auth = (client["client_id"], client["client_secret"]) if client else None
    return requests.post(base_url + "/launch", auth=auth, **kw)


# ---- the EHR launch, end to end -----------------------------------------------------------

def test_ehr_launch_via_cli_puts_context_in_token_response(ehr, app, base_url):
    add_patients(app, ("p9", "Doe, Jane", None))  # the CLI launches registry patients only
    out = _cli(app, "launch", "create", "--patient", "p9", "--encounter", "e7",
               "--fhir-context", json.dumps(FHIR_CONTEXT), "--need-patient-banner",
               "--intent", "reconcile-medications", "--user", "drsmith")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["iss"] == FHIR_BASE and made["expires_in"] == 300
    flow = _launch_flow(base_url, ehr, made["launch"])
    token = _run(flow, ehr)
    # SMART: the granted scope repeats `launch`; the practitioner app gets user/ scopes.
    assert token["scope"] == EHR_SCOPES
    assert token["patient"] == "p9" and token["encounter"] == "e7"
    assert token["fhirContext"] == FHIR_CONTEXT
    assert token["need_patient_banner"] is True
    assert token["intent"] == "reconcile-medications"
    style_url = token["smart_style_url"]
    assert style_url.startswith(base_url + "/smart-style.json?v=")
    style = requests.get(style_url)
    assert style.status_code == 200 and style.headers["Content-Type"] == "application/json"
    assert style.json()["color_highlight"] == app.config["STYLE_COLOR_HIGHLIGHT"]
    claims = verify_jwt(base_url, token["access_token"], audience=FHIR_BASE, typ="at+jwt")
    assert claims["patient"] == "p9" and claims["encounter"] == "e7"
    assert claims["scope"] == EHR_SCOPES


def test_ehr_launch_via_post_launch_puts_context_in_token_response(ehr, base_url):
    resp = _post_launch(base_url, ehr["ehr"], json={
        "client_id": ehr["client"]["client_id"],
        "patient": "p9", "encounter": "e7", "fhirContext": FHIR_CONTEXT,
        "need_patient_banner": False, "smart_style_url": "https://ehr.example.org/style-v3.json",
        "intent": "summary", "tenant": "hospital-1", "user": "drsmith", "aud": FHIR_BASE + "/"})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    made = resp.json()
    assert set(made) == {"launch", "iss", "expires_in"}
    assert made["iss"] == FHIR_BASE and made["expires_in"] == 300
    token = _run(_launch_flow(base_url, ehr, made["launch"]), ehr)
    assert token["patient"] == "p9" and token["encounter"] == "e7"
    assert token["fhirContext"] == FHIR_CONTEXT
    assert token["need_patient_banner"] is False  # present, and a JSON boolean
    assert token["smart_style_url"] == "https://ehr.example.org/style-v3.json"
    assert token["intent"] == "summary" and token["tenant"] == "hospital-1"
    assert "launch" in token["scope"].split()


def test_post_launch_form_body_with_client_secret_post(app, ehr, base_url):
    ehr_post = make_client(app, name="EHR 2", scope="", auth_method="client_secret_post",
                           can_launch=True)
    resp = requests.post(base_url + "/launch", data={
        "client_id": ehr_post["client_id"], "client_secret": ehr_post["client_secret"],
        "app_client_id": ehr["client"]["client_id"], "patient": "p5",
        "fhirContext": json.dumps(FHIR_CONTEXT[:1]),
        "need_patient_banner": "true", "aud": OTHER_BASE})
    assert resp.status_code == 201, resp.text
    assert resp.json()["iss"] == OTHER_BASE
    flow = _launch_flow(base_url, ehr, resp.json()["launch"], aud=OTHER_BASE)
    token = _run(flow, ehr)
    assert token["patient"] == "p5" and "encounter" not in token
    assert token["fhirContext"] == FHIR_CONTEXT[:1] and token["need_patient_banner"] is True
    assert token["smart_style_url"].startswith(base_url + "/smart-style.json?v=")


def test_ehr_launch_refresh_keeps_context(ehr, base_url):
    launch = requests.post(base_url + "/launch", auth=(ehr["ehr"]["client_id"],
                           ehr["ehr"]["client_secret"]),
                           json={"patient": "p9", "encounter": "e7",
                                 "client_id": ehr["client"]["client_id"]}).json()["launch"]
    flow = _launch_flow(base_url, ehr, launch, scope=EHR_SCOPES + " offline_access")
    token = _run(flow, ehr)
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["patient"] == "p9" and resp.json()["encounter"] == "e7"


# ---- launch values that must be refused at /authorize --------------------------------------

def test_authorize_bogus_launch_refused(ehr, base_url):
    flow = _launch_flow(base_url, ehr, "not-a-launch-we-made")
    _assert_refused(flow, flow.last, "invalid_request", base_url)


def test_authorize_expired_launch_refused(ehr, app, base_url):
    made = make_launch(app)
    from sqlalchemy import update

    from authserver.extensions import db
    from authserver.models import LaunchContext

    with app.app_context():  # five minutes later
        db.session.execute(update(LaunchContext).values(
            expires_at=LaunchContext.created_at - 1))
        db.session.commit()
    flow = _launch_flow(base_url, ehr, made["launch"])
    _assert_refused(flow, flow.last, "invalid_request", base_url)


def test_authorize_reused_launch_refused(ehr, app, base_url):
    made = make_launch(app, encounter="e1")
    assert _run(_launch_flow(base_url, ehr, made["launch"]), ehr)["encounter"] == "e1"
    flow = _launch_flow(base_url, ehr, made["launch"])
    _assert_refused(flow, flow.last, "invalid_request", base_url)


def test_launch_used_by_two_pending_requests_issues_one_code(ehr, app, base_url):
    """Both requests pass /authorize while the launch is unused; only the first to finish
    gets a code, the second is refused when it comes back from consent."""
    made = make_launch(app)
    first = _launch_flow(base_url, ehr, made["launch"])
    second = _launch_flow(base_url, ehr, made["launch"])
    _sign_in(first, ehr)
    _sign_in(second, ehr, ahead=1)
    assert 'name="decision"' in first.last.text and 'name="decision"' in second.last.text
    first.consent()
    assert first.token(first.code()).status_code == 200
    resp = second.consent()
    _assert_refused(second, resp, "invalid_request", base_url)


def test_authorize_launch_with_other_aud_refused(ehr, app, base_url):
    made = make_launch(app)  # for FHIR_BASE
    flow = _launch_flow(base_url, ehr, made["launch"], aud=OTHER_BASE)
    q = _assert_refused(flow, flow.last, "invalid_request", base_url)
    assert "'aud'" in q["error_description"]


def test_authorize_launch_without_launch_scope_refused(ehr, app, base_url):
    made = make_launch(app)
    flow = _launch_flow(base_url, ehr, made["launch"], scope="openid user/*.rs")
    _assert_refused(flow, flow.last, "invalid_scope", base_url)


def test_authorize_launch_scope_without_launch_refused(ehr, base_url):
    flow = OAuthFlow(base_url, ehr["client"], requests.Session(), scope=EHR_SCOPES)
    _assert_refused(flow, flow.authorize(), "invalid_request", base_url)


def test_launch_made_for_another_user_refused(ehr, app, base_url):
    other = make_clinician(app, "drjones", fhir_user="Practitioner/pr2")
    made = make_launch(app, username="drsmith")
    flow = _launch_flow(base_url, ehr, made["launch"])
    flow.follow()
    flow.login("drjones")
    resp = flow.totp(totp_code(other["secret"]))
    q = _assert_refused(flow, resp, "invalid_request", base_url)
    assert "another user" in q["error_description"]
    # Still unused: the clinician it was made for can use it.
    assert _run(_launch_flow(base_url, ehr, made["launch"]), ehr)["patient"] == "p9"


def test_patient_cannot_use_launch_for_another_patient(ehr, app, base_url):
    make_user(app)  # alice, Patient/p1
    flow = _launch_flow(base_url, ehr, make_launch(app, patient="p2")["launch"])
    flow.follow()
    resp = flow.login("alice")
    _assert_refused(flow, resp, "access_denied", base_url)
    flow = _launch_flow(base_url, ehr, make_launch(app, patient="p1")["launch"])
    flow.follow()
    flow.login("alice")
    flow.consent()
    assert flow.token(flow.code()).json()["patient"] == "p1"


def test_unticked_launch_scope_is_still_granted(ehr, app, base_url):
    flow = _launch_flow(base_url, ehr, make_launch(app)["launch"])
    _sign_in(flow, ehr)
    flow.consent(scopes=["openid", "patient/*.rs"])
    token = flow.token(flow.code()).json()
    assert token["scope"] == "launch openid patient/*.rs" and token["patient"] == "p9"


OBS_LAB_USER = ("user/Observation.rs?category="
                "http://terminology.hl7.org/CodeSystem/observation-category|laboratory")


def test_clinician_ehr_launch_keeps_whole_type_scopes_unless_a_category_is_unticked(
        ehr, app, base_url):
    """Issue 12: `user/Observation.rs` and `patient/Observation.rs` in an EHR launch stay
    whole when nothing is unticked; unticking a category narrows to the kept ones (v2)."""
    scope = "launch openid user/Observation.rs patient/Observation.rs"
    flow = _launch_flow(base_url, ehr, make_launch(app)["launch"], scope=scope)
    _sign_in(flow, ehr)
    values = flow.consent_values()
    assert "user/Observation.rs" in values and "patient/Observation.rs" in values
    assert OBS_LAB_USER in values
    flow.consent()
    assert flow.token(flow.code()).json()["scope"] == scope
    # The same clinician and app again: the page shows; this time only lab results for
    # user/ (patient/ kept whole).
    again = OAuthFlow(base_url, ehr["client"], flow.http, scope=scope,
                      extra={"launch": make_launch(app)["launch"]})
    again.authorize()
    again.follow()
    kept = [v for v in again.consent_values()
            if not v.startswith("user/Observation.rs?category=") or v == OBS_LAB_USER]
    again.consent(scopes=kept)
    token = again.token(again.code()).json()
    assert token["scope"] == f"launch openid {OBS_LAB_USER} patient/Observation.rs"


# ---- POST /launch refusals --------------------------------------------------------------------

def test_post_launch_without_client_authentication_refused(base_url, ehr):
    resp = requests.post(base_url + "/launch", json={"patient": "p9"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert resp.headers["Cache-Control"] == "no-store"


def test_post_launch_with_wrong_secret_refused(base_url, ehr):
    resp = requests.post(base_url + "/launch", json={"patient": "p9"},
                         auth=(ehr["ehr"]["client_id"], "wrong"))
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    resp = requests.post(base_url + "/launch", json={"patient": "p9"},
                         headers={"Authorization": "Basic //79"})  # not UTF-8
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


def test_post_launch_with_unregistered_auth_method_refused(base_url, ehr):
    """The EHR registered client_secret_basic: the same secret in the body is refused."""
    resp = requests.post(base_url + "/launch", data={
        "client_id": ehr["ehr"]["client_id"], "client_secret": ehr["ehr"]["client_secret"],
        "patient": "p9"})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


def test_post_launch_without_launch_permission_refused(base_url, ehr):
    resp = _post_launch(base_url, ehr["client"], json={"patient": "p9"})  # an ordinary app
    assert resp.status_code == 403
    assert resp.json()["error"] == "unauthorized_client"


def test_post_launch_resource_server_refused(app, base_url, ehr):
    from authserver.services import admin_console

    with app.app_context():
        rs = admin_console.create_resource_server("FHIR")
    resp = _post_launch(base_url, rs, json={"patient": "p9"})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


INVALID_BODIES = [
    ({}, "Missing 'patient'"),
    ({"patient": "../x"}, "'patient'"),
    ({"patient": 7}, "'patient'"),
    ({"patient": "p9", "encounter": "e 1"}, "'encounter'"),
    ({"patient": "p9", "fhirContext": "DiagnosticReport/1"}, "'fhirContext'"),
    ({"patient": "p9", "fhirContext": [{"reference": "Patient/p9"}]}, "'fhirContext'"),
    ({"patient": "p9", "need_patient_banner": "yes"}, "'need_patient_banner'"),
    ({"patient": "p9", "smart_style_url": "javascript:alert(1)"}, "'smart_style_url'"),
    ({"patient": "p9", "aud": "https://evil.example/fhir"}, "'aud'"),
    ({"patient": "p9", "client_id": "no-such-app"}, "'client_id'"),
    ({"patient": "p9", "intent": "x" * 256}, "'intent'"),
    ({"patient": "p9", "tenant": ["t"]}, "'tenant'"),
]


def test_post_launch_invalid_body_refused(base_url, ehr):
    for body, fragment in INVALID_BODIES:  # one server for all cases: fast
        if body:
            body = {"client_id": ehr["client"]["client_id"], **body}
        resp = _post_launch(base_url, ehr["ehr"], json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"] == "invalid_request"
        assert fragment in resp.json()["error_description"], (body, resp.json())
    form = _post_launch(base_url, ehr["ehr"], data=[("patient", "p9"), ("patient", "p8")])
    assert form.status_code == 400 and "Multiple 'patient'" in form.json()["error_description"]
    form = _post_launch(base_url, ehr["ehr"], data={"patient": "p9", "fhirContext": "[oops"})
    assert form.status_code == 400 and "'fhirContext'" in form.json()["error_description"]


def test_post_launch_body_not_json_object_refused(base_url, ehr):
    for kw in ({"data": "[1]", "headers": {"Content-Type": "application/json"}},
               {"data": "{", "headers": {"Content-Type": "application/json"}},
               {"data": "patient=p9", "headers": {"Content-Type": "text/plain"}}):
        resp = _post_launch(base_url, ehr["ehr"], **kw)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_post_launch_get_not_allowed(base_url):
    resp = requests.get(base_url + "/launch")
    assert resp.status_code == 405 and resp.json()["error"] == "invalid_request"


# ---- the style document and discovery ---------------------------------------------------------

def test_smart_style_document_served_to_any_origin(base_url, app):
    resp = requests.get(base_url + "/smart-style.json", headers={"Origin": "https://app.example"})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.json() == {
        "color_background": app.config["STYLE_COLOR_BACKGROUND"],
        "color_highlight": app.config["STYLE_COLOR_HIGHLIGHT"],
        "color_text": app.config["STYLE_COLOR_TEXT"],
        "font_family_body": app.config["STYLE_FONT_FAMILY"],
        "font_family_heading": app.config["STYLE_FONT_FAMILY"],
    }


def test_smart_style_url_changes_with_the_style(app):
    from authserver.oauth.smart_style import smart_style_url

    with app.test_request_context():
        before = smart_style_url()
        app.config["STYLE_COLOR_HIGHLIGHT"] = "#123456"
        after = smart_style_url()
    assert before != after and after.startswith(app.config["ISSUER"] + "/smart-style.json?v=")


def test_discovery_advertises_ehr_launch_capabilities(base_url):
    doc = requests.get(base_url + "/.well-known/smart-configuration").json()
    for capability in ("launch-ehr", "context-ehr-patient", "context-ehr-encounter",
                       "context-standalone-patient", "context-banner", "context-style",
                       "permission-user"):
        assert capability in doc["capabilities"], capability
    assert "context-standalone-encounter" not in doc["capabilities"]
    assert "launch" in doc["scopes_supported"]


def test_post_launch_needs_the_app_it_is_for(base_url, ehr):
    resp = _post_launch(base_url, ehr["ehr"], json={"patient": "p9"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    assert "'client_id'" in resp.json()["error_description"]


def test_post_launch_value_is_bound_to_its_app(app, base_url, ehr):
    """A launch value that leaks to another app (a log, a referrer) is useless to it."""
    made = _post_launch(base_url, ehr["ehr"], json={
        "patient": "p9", "client_id": ehr["client"]["client_id"]}).json()
    other = make_client(app, name="Other app", scope=EHR_SCOPES,
                        auth_method="client_secret_basic")
    flow = OAuthFlow(base_url, other, requests.Session(), scope=EHR_SCOPES,
                     extra={"launch": made["launch"]})
    resp = flow.authorize()
    _assert_refused(flow, resp, "invalid_request", base_url)
    # ... and still works for the app it was made for.
    assert "patient" in _run(_launch_flow(base_url, ehr, made["launch"]), ehr)


def test_post_launch_answers_the_same_whether_or_not_the_user_exists(base_url, ehr):
    answers = []
    for user in ("drsmith", "nobody-at-all"):
        resp = _post_launch(base_url, ehr["ehr"], json={
            "patient": "p9", "user": user, "client_id": ehr["client"]["client_id"]})
        answers.append((resp.status_code, sorted(resp.json()), resp.json()["expires_in"]))
        if user != "drsmith":
            flow = _launch_flow(base_url, ehr, resp.json()["launch"])
            _assert_refused(flow, flow.last, "invalid_request", base_url)
    assert answers[0] == answers[1] and answers[0][0] == 201


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"patient": "p9", "fhirContext": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"patient": "p9", "x": ' + b'{"a":' * 20_000 + b"1" + b"}" * 20_000 + b"}",
])
def test_post_launch_deeply_nested_json_is_invalid_request(base_url, ehr, body):
    resp = _post_launch(base_url, ehr["ehr"], data=body,
                        headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_post_launch_deeply_nested_form_fhir_context_is_invalid_request(base_url, ehr):
    resp = _post_launch(base_url, ehr["ehr"], data={
        "patient": "p9", "fhirContext": "[" * 20_000 + "]" * 20_000})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    assert "'fhirContext'" in resp.json()["error_description"]


def test_post_launch_with_two_authentication_methods_is_invalid_request(base_url, ehr):
    e = ehr["ehr"]
    for data in ({"patient": "p9", "client_secret": e["client_secret"]},
                 {"patient": "p9", "client_id": ehr["client"]["client_id"]}):
        resp = _post_launch(base_url, e, data=data)
        assert resp.status_code == 400, data
        assert resp.json()["error"] == "invalid_request"
        assert resp.headers["Cache-Control"] == "no-store"
    assert _post_launch(base_url, e, data={"patient": "p9", "client_id": e["client_id"]}
                        ).status_code == 201


def test_pre_approved_app_skips_the_consent_page_for_a_clinicians_ehr_launch(app, ehr,
                                                                            base_url):
    from authserver.services import admin_console

    with app.app_context():
        admin_console.set_client_pre_approved(ehr["client"]["client_id"], True)
    made = make_launch(app, encounter="e7", client_id=ehr["client"]["client_id"])
    flow = _launch_flow(base_url, ehr, made["launch"])
    _sign_in(flow, ehr)
    token = flow.token(flow.code()).json()  # straight back to the app: no page
    assert token["scope"] == EHR_SCOPES and token["patient"] == "p9"
    # Pre-approval covers EHR launches only: a standalone launch of the same app asks.
    standalone = OAuthFlow(base_url, ehr["client"], flow.http, scope="openid fhirUser user/*.rs")
    standalone.authorize()
    standalone.follow()
    assert 'name="decision"' in standalone.last.text


def test_pre_approval_never_skips_the_page_for_a_patient(app, ehr, base_url):
    from authserver.services import admin_console

    make_user(app)  # alice, Patient/p1
    with app.app_context():
        admin_console.set_client_pre_approved(ehr["client"]["client_id"], True)
    made = make_launch(app, patient="p1", client_id=ehr["client"]["client_id"])
    flow = _launch_flow(base_url, ehr, made["launch"], scope="launch openid patient/*.rs")
    flow.follow()
    flow.login()
    assert flow.last.status_code == 200 and 'name="decision"' in flow.last.text


def test_cli_client_permissions_pre_approved(app, ehr):
    out = _cli(app, "client", "permissions", ehr["client"]["client_id"], "--pre-approved")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"client_id": ehr["client"]["client_id"],
                                      "pre_approved": True}
    assert _cli(app, "client", "permissions", ehr["client"]["client_id"]).returncode != 0
