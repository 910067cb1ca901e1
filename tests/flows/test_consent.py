"""The consent page through real HTTP: per-scope choice, category sub-scopes, memory.

SMART App Launch 2.2 scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html);
ONC §170.315(g)(10) CCG: the patient may authorize any subset of the requested scopes, and a
resource-level Condition / Observation scope is offered as its category sub-scopes.
"""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.helpers import OAuthFlow, location_query, make_client, make_user, verify_jwt

LAB = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
VITALS = ("patient/Observation.rs?category="
          "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs")
PROBLEMS = ("patient/Condition.rs?category="
            "http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item")
APP_SCOPES = ("openid fhirUser launch/patient offline_access patient/*.rs patient/*.read "
              "patient/Observation.rs patient/Condition.rs patient/Patient.rs "
              "patient/MedicationRequest.rs patient/Condition.read")


@pytest.fixture
def client(app):
    make_user(app)
    return make_client(app, scope=APP_SCOPES)


def _to_consent(base_url: str, client: dict, scope: str, http=None) -> OAuthFlow:
    flow = OAuthFlow(base_url, client, http or requests.Session(), scope=scope)
    flow.authorize()
    flow.follow()
    flow.login()
    return flow


def _checkboxes(page: str) -> list[str]:
    return re.findall(r'<input type="checkbox"[^>]*>', page)


def test_consent_page_names_the_app_and_lists_every_scope_ticked(app, base_url):
    from authserver.services.registration import register_client

    make_user(app)
    with app.app_context():
        row, _ = register_client({
            "client_name": "Growth <Chart> & Co", "redirect_uris": [OAuthFlow.redirect_uri],
            "token_endpoint_auth_method": "none", "scope": APP_SCOPES,
            "grant_types": ["authorization_code", "refresh_token"],
            "logo_uri": "https://apps.example.org/logo.png",
            "contacts": ["Example Health Apps Ltd"]})
        client = {"client_id": row.client_id}
    flow = _to_consent(base_url, client, "openid fhirUser launch/patient offline_access "
                                         "patient/MedicationRequest.rs patient/*.rs")
    page = flow.last.text
    assert flow.last.status_code == 200
    assert "Growth &lt;Chart&gt; &amp; Co" in page and "<Chart>" not in page
    assert 'src="https://apps.example.org/logo.png"' in page
    assert "Example Health Apps Ltd" in page
    # grouped: who you are / the record / staying connected (request order within each)
    assert flow.consent_values() == ["openid", "fhirUser", "launch/patient",
                                     "patient/MedicationRequest.rs", "patient/*.rs",
                                     "offline_access"]
    sections = re.findall(r'<fieldset class="section" id="section-(\w+)">\s*<legend>([^<]*)<',
                          page)
    assert sections == [("identity", "Who you are"), ("record", "The record"),
                        ("access", "Staying connected")]
    boxes = _checkboxes(page)
    assert len(boxes) == 6 and all(" checked" in b for b in boxes)
    # plain words, one label per checkbox
    text = html.unescape(page)
    for words in ("Know who you are", "Stay connected when you are not using the app",
                  "Read your medications", "including kinds added later",
                  "Know which patient's record you are using"):
        assert words in text, words
    # Allow and Deny: two submit buttons of the same kind, side by side.
    buttons = re.findall(r'<button type="submit" name="decision" value="(\w+)" '
                         r'class="([^"]*)"', page)
    assert [b[0] for b in buttons] == ["allow", "deny"]
    assert all("primary" in b[1].split() for b in buttons)


OBS_CATEGORIES = 6
COND_CATEGORIES = 3


def test_consent_offers_whole_type_with_categories_beneath(client, base_url):
    flow = _to_consent(base_url, client, "launch/patient patient/Observation.rs "
                                         "patient/Condition.rs patient/Patient.rs")
    values = flow.consent_values()
    # The whole type is one item whose value is the requested string; its US Core
    # categories follow it as optional narrowing.
    assert values[:2] == ["launch/patient", "patient/Observation.rs"]
    assert values[2:2 + OBS_CATEGORIES] == [
        v for v in values if v.startswith("patient/Observation.rs?category=")]
    assert LAB in values and VITALS in values and PROBLEMS in values
    assert "patient/Condition.rs" in values and "patient/Patient.rs" in values
    assert sum(v.startswith("patient/Condition.rs?category=") for v in values) == (
        COND_CATEGORIES)
    text = html.unescape(flow.last.text)
    assert "Read your test results, vital signs and other measurements" in text
    assert "Read your lab results" in text and "Read your problem list" in text
    # Every box is ticked and labelled; the categories sit in their own group.
    assert all(" checked" in b for b in _checkboxes(flow.last.text))
    assert text.count('<fieldset class="categories">') == 2


@pytest.mark.parametrize("asked", ["patient/Observation.rs", "patient/Observation.read",
                                   "patient/Condition.rs", "patient/Condition.read"])
def test_consent_nothing_unticked_grants_the_requested_string(client, base_url, asked):
    flow = _to_consent(base_url, client, f"launch/patient {asked}")
    flow.consent("allow")
    body = flow.token(flow.code()).json()
    assert body["scope"] == f"launch/patient {asked}"  # v1 stays v1


def test_consent_some_categories_unticked_grants_the_kept_ones(client, base_url):
    flow = _to_consent(base_url, client, "launch/patient patient/Observation.read")
    values = flow.consent_values()
    # A v1 request's categories are written in v2 (the only grammar that can say them).
    kept = [v for v in values if "?category=" not in v] + [LAB, VITALS]
    flow.consent("allow", kept)
    body = flow.token(flow.code()).json()
    assert body["scope"] == f"launch/patient {LAB} {VITALS}"


def test_consent_every_category_unticked_grants_nothing_of_that_type(client, base_url):
    flow = _to_consent(base_url, client,
                       "launch/patient patient/Observation.rs patient/Patient.rs")
    flow.consent("allow", ["launch/patient", "patient/Observation.rs", "patient/Patient.rs"])
    assert flow.token(flow.code()).json()["scope"] == "launch/patient patient/Patient.rs"


def test_consent_whole_type_unticked_grants_nothing_of_it_whatever_is_beneath(client,
                                                                            base_url):
    flow = _to_consent(base_url, client,
                       "launch/patient patient/Condition.rs patient/Patient.rs")
    chosen = [v for v in flow.consent_values() if v != "patient/Condition.rs"]
    flow.consent("allow", chosen)
    assert flow.token(flow.code()).json()["scope"] == "launch/patient patient/Patient.rs"


def test_consent_grants_exactly_the_patients_choice(client, base_url):
    flow = _to_consent(base_url, client, "openid fhirUser launch/patient offline_access "
                                         "patient/Observation.rs patient/MedicationRequest.rs")
    chosen = [v for v in flow.consent_values()
              if v not in ("offline_access", "patient/MedicationRequest.rs")
              and not (v.startswith("patient/Observation.rs?") and v != LAB)]
    assert LAB in chosen and "patient/Observation.rs" in chosen and len(chosen) == 5
    flow.consent("allow", chosen)
    body = flow.token(flow.code()).json()
    # One scope unticked, one category sub-scope chosen (kept verbatim), nothing else.
    assert body["scope"] == f"openid fhirUser launch/patient {LAB}"
    assert "refresh_token" not in body  # offline_access was unticked
    claims = verify_jwt(flow.base_url, body["access_token"], audience=flow.aud)
    assert claims["scope"] == body["scope"]


def test_consent_values_not_offered_are_ignored(client, base_url):
    flow = _to_consent(base_url, client, "launch/patient patient/Patient.rs")
    flow.consent("allow", ["launch/patient", "patient/Patient.rs", "patient/*.rs",
                           "user/*.cruds", "offline_access"])
    body = flow.token(flow.code()).json()
    assert body["scope"] == "launch/patient patient/Patient.rs"


def test_consent_deny_is_access_denied(client, base_url):
    flow = _to_consent(base_url, client, "openid launch/patient patient/Patient.rs")
    flow.consent("deny")
    q = location_query(flow.last)
    assert q["error"] == "access_denied" and "code" not in q
    assert q["state"] == flow.state and q["iss"] == base_url
    assert flow.last.status_code == 303  # RFC 9700 §4.12: after a POST


def _submit_again(flow, decision: str, scopes: list[str]):
    """Post the page's form as shown (its hidden fields too) with this choice."""
    page = flow.last.text
    hidden = [(html.unescape(n), html.unescape(v)) for n, v in
              re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)]
    flow.last = flow.http.post(flow.base_url + "/authorize/continue", allow_redirects=False,
                               data=hidden + [("decision", decision)] +
                               [("scope", s) for s in scopes])
    return flow.follow(flow.last)


def test_consent_allow_with_nothing_ticked_asks_once_then_is_access_denied(client, base_url):
    flow = _to_consent(base_url, client, "openid launch/patient patient/Patient.rs")
    page = flow.consent("allow", [])
    assert page.status_code == 200 and 'id="nothing-ticked"' in page.text
    assert "Allowing nothing is the same as denying access" in html.unescape(page.text)
    assert _checkboxes(page.text) and not any(" checked" in b for b in _checkboxes(page.text))
    _submit_again(flow, "allow", [])
    q = location_query(flow.last)
    assert q["error"] == "access_denied" and q["state"] == flow.state


def test_consent_after_the_nothing_ticked_question_a_choice_still_counts(client, base_url):
    flow = _to_consent(base_url, client, "openid launch/patient patient/Patient.rs")
    flow.consent("allow", [])
    _submit_again(flow, "allow", ["patient/Patient.rs"])
    token = flow.token(flow.code()).json()
    assert token["scope"] == "patient/Patient.rs"


def test_consent_unknown_decision_grants_nothing(client, base_url):
    flow = _to_consent(base_url, client, "openid launch/patient patient/Patient.rs")
    flow.consent("maybe")
    q = location_query(flow.last)
    assert q["error"] == "access_denied" and "code" not in q


def test_consent_without_csrf_token_is_refused(client, base_url):
    flow = _to_consent(base_url, client, "launch/patient patient/Patient.rs")
    req = re.search(r'name="req" value="([^"]*)"', flow.last.text).group(1)
    resp = flow.http.post(base_url + "/authorize/continue", allow_redirects=False, data={
        "req": html.unescape(req), "decision": "allow", "scope": "patient/Patient.rs"})
    assert resp.status_code == 400 and "Location" not in resp.headers
    resp = flow.http.post(base_url + "/authorize/continue", allow_redirects=False, data={
        "req": html.unescape(req), "decision": "allow", "scope": "patient/Patient.rs",
        "csrf_token": "forged"})
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_patient_chooses_every_time_with_the_previous_choice_pre_ticked(app, client,
                                                                        base_url):
    """ONC (g)(10): full access, then limited access with the same app."""
    http = requests.Session()
    scope = "openid launch/patient patient/Patient.rs patient/Observation.rs"
    first = _to_consent(base_url, client, scope, http)
    first.consent("allow")
    assert first.token(first.code()).json()["scope"] == scope
    again = OAuthFlow(base_url, client, http, scope=scope)
    again.authorize()
    again.follow()
    # The page shows again, every earlier choice ticked, and says when it was made.
    assert again.last.status_code == 200 and 'name="decision"' in again.last.text
    assert all(" checked" in b for b in _checkboxes(again.last.text))
    assert 'id="previous-choice"' in again.last.text
    # This time the patient unticks a whole type: the grant holds only what was kept.
    again.consent("allow", [v for v in again.consent_values()
                            if not v.startswith("patient/Observation")])
    assert again.token(again.code()).json()["scope"] == (
        "openid launch/patient patient/Patient.rs")
    third = OAuthFlow(base_url, client, http, scope=scope)
    third.authorize()
    third.follow()
    boxes = dict(re.findall(r'<input type="checkbox" name="scope" value="([^"]*)"[^>]*?'
                            r'( checked)?>', third.last.text))
    assert boxes[html.escape("patient/Patient.rs")] == " checked"
    assert boxes[html.escape("patient/Observation.rs")] == ""


def test_consent_new_scope_is_offered_ticked_beside_the_previous_choice(client, base_url):
    http = requests.Session()
    first = _to_consent(base_url, client, "openid launch/patient patient/Patient.rs "
                                          "patient/MedicationRequest.rs", http)
    first.consent("allow", ["openid", "launch/patient", "patient/Patient.rs"])
    assert first.token(first.code()).status_code == 200
    more = OAuthFlow(base_url, client, http, scope="openid launch/patient patient/Patient.rs "
                                                   "patient/MedicationRequest.rs offline_access")
    more.authorize()
    more.follow()
    boxes = dict(re.findall(r'<input type="checkbox" name="scope" value="([^"]*)"[^>]*?'
                            r'( checked)?>', more.last.text))
    assert boxes["patient/MedicationRequest.rs"] == ""  # unticked last time
    assert boxes["offline_access"] == " checked"  # never asked before


def test_clinician_chooses_every_time_unless_prompt_none_or_pre_approved(app, base_url):
    """A remembered consent skips the page only for prompt=none (a clinician's page is
    skipped otherwise only for an app an administrator pre-approved: test_ehr_launch)."""
    from tests.helpers import make_clinician, totp_code

    doc = make_clinician(app)
    client = make_client(app, scope="openid fhirUser user/*.rs offline_access")
    http = requests.Session()
    OAuthFlow(base_url, client, http, scope="openid fhirUser user/*.rs").run(
        "drsmith", totp=totp_code(doc["secret"]))
    again = OAuthFlow(base_url, client, http, scope="openid user/*.rs")
    again.authorize()
    again.follow()
    assert 'name="decision"' in again.last.text and 'id="previous-choice"' in again.last.text
    silent = OAuthFlow(base_url, client, http, scope="openid user/*.rs",
                       extra={"prompt": "none"})
    silent.authorize()
    silent.follow()
    assert silent.token(silent.code()).json()["scope"] == "openid user/*.rs"
    # prompt=none for more than was consented: consent_required, back at the app.
    more = OAuthFlow(base_url, client, http, scope="openid user/*.rs offline_access",
                     extra={"prompt": "none"})
    more.authorize()
    assert location_query(more.follow())["error"] == "consent_required"


def test_consent_of_one_user_does_not_cover_another(app, client, base_url):
    make_user(app, "bob", fhir_user="Patient/p2")
    flow = _to_consent(base_url, client, "launch/patient patient/Patient.rs")
    flow.consent("allow")
    assert flow.token(flow.code()).status_code == 200
    bob = OAuthFlow(base_url, client, requests.Session(),
                    scope="launch/patient patient/Patient.rs")
    bob.authorize()
    bob.follow()
    bob.login("bob")
    assert 'name="decision"' in bob.last.text
    bob.consent("allow")
    assert bob.token(bob.code()).json()["patient"] == "p2"


def test_consent_denied_is_not_remembered_as_a_grant(client, base_url):
    http = requests.Session()
    flow = _to_consent(base_url, client, "launch/patient patient/Patient.rs", http)
    flow.consent("deny")
    again = OAuthFlow(base_url, client, http, scope="launch/patient patient/Patient.rs")
    again.authorize()
    again.follow()
    assert 'name="decision"' in again.last.text


def test_consent_granted_scope_keeps_v1_and_v2_forms(client, base_url):
    http = requests.Session()
    v1 = _to_consent(base_url, client, "launch/patient patient/*.read openid", http)
    v1.consent("allow")
    assert v1.token(v1.code()).json()["scope"] == "launch/patient patient/*.read openid"
    v2 = OAuthFlow(base_url, client, requests.Session(), scope="launch/patient patient/*.rs")
    v2.authorize()
    v2.follow()
    v2.login()
    v2.consent("allow")
    assert v2.token(v2.code()).json()["scope"] == "launch/patient patient/*.rs"


def test_consent_category_scope_requested_directly_is_kept_verbatim(client, base_url):
    flow = _to_consent(base_url, client, f"launch/patient {VITALS}")
    assert flow.consent_values() == ["launch/patient", VITALS]
    flow.consent("allow")
    body = flow.token(flow.code()).json()
    assert body["scope"] == f"launch/patient {VITALS}"


def test_consent_patient_without_a_record_is_access_denied(app, client, base_url):
    make_user(app, "norecord", fhir_user=None)
    flow = OAuthFlow(base_url, client, requests.Session(),
                     scope="launch/patient patient/Patient.rs")
    flow.authorize()
    flow.follow()
    flow.login("norecord")
    q = location_query(flow.last)
    assert q["error"] == "access_denied" and q["state"] == flow.state


def test_consent_patient_context_is_the_users_own_record(app, client, base_url):
    make_user(app, "carol", fhir_user="Patient/p3")
    flow = OAuthFlow(base_url, client, requests.Session(),
                     scope="openid fhirUser launch/patient patient/*.rs")
    body = flow.run("carol")
    assert body["patient"] == "p3"
    idt = verify_jwt(base_url, body["id_token"], audience=client["client_id"])
    assert idt["fhirUser"].endswith("/Patient/p3")


def test_consent_marks_an_app_no_administrator_approved_and_names_where_it_goes(app,
                                                                             base_url):
    """A phishing app registered by anyone says "not verified", and the page shows the host
    the browser will be sent to after the decision."""
    from authserver.extensions import db
    from authserver.models import Client

    make_user(app)
    client = make_client(app, redirect_uris=["https://xn--pple-43d.example/cb"])
    with app.app_context():
        db.session.query(Client).filter_by(client_id=client["client_id"]).update(
            {"verified": False})
        db.session.commit()
    flow = OAuthFlow(base_url, client, requests.Session(),
                     redirect_uri="https://xn--pple-43d.example/cb")
    flow.authorize()
    flow.follow()
    page = flow.login()
    assert 'id="not-verified"' in page.text and "Not verified" in page.text
    assert "<strong>xn--pple-43d.example</strong>" in page.text


def test_consent_of_an_administrator_made_app_is_not_marked(app, base_url):
    make_user(app)
    client = make_client(app)  # made by the operator (CLI / admin functions): verified
    flow = OAuthFlow(base_url, client, requests.Session())
    flow.authorize()
    flow.follow()
    page = flow.login()
    assert 'id="not-verified"' not in page.text
    assert "<strong>127.0.0.1:9999</strong>" in page.text


def _words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())


@pytest.mark.parametrize(("asked", "says"), [
    ("launch/patient offline_access patient/Patient.rs",
     "How long: The app can stay connected for up to 90 days after it last uses your choice"),
    ("launch/patient online_access patient/Patient.rs",
     "How long: The app stays connected until you sign out."),
    ("launch/patient patient/Patient.rs",
     "How long: Access lasts one hour; then the app must ask again."),
])
def test_consent_says_how_long_access_lasts(app, base_url, asked, says):
    make_user(app)
    client = make_client(app, scope=APP_SCOPES + " online_access")
    assert says in _words(_to_consent(base_url, client, asked).last.text)


def test_consent_names_who_is_signed_in_with_a_way_out(client, base_url):
    page = _to_consent(base_url, client, "launch/patient patient/Patient.rs").last.text
    assert "Signed in as Alice Example · Not you?" in _words(page)
    assert re.search(r'<a href="/logout">Not you\?</a>', page)


def test_consent_links_the_apps_policy_and_terms_only_where_https(app, base_url):
    from authserver.services.registration import register_client

    make_user(app)
    with app.app_context():
        row, _ = register_client({
            "client_name": "Linked", "redirect_uris": [OAuthFlow.redirect_uri],
            "token_endpoint_auth_method": "none", "scope": APP_SCOPES,
            "grant_types": ["authorization_code"],
            "client_uri": "https://apps.example.org/",
            "policy_uri": "https://apps.example.org/privacy"})
        # registration refuses a non-https link; one stored before that rule isn't linked
        from authserver import store
        from authserver.extensions import db
        client_id = row.client_id
        stored = store.clients.any_client(client_id)
        stored.client_metadata = {**stored.client_metadata,
                                  "tos_uri": "http://apps.example.org/terms"}
        db.session.commit()
    page = _to_consent(base_url, {"client_id": client_id},
                       "launch/patient patient/Patient.rs").last.text
    assert '<a href="https://apps.example.org/privacy" rel="noopener noreferrer">Privacy ' \
           'policy</a>' in page
    assert '>About the app</a>' in page
    assert "apps.example.org/terms" not in page  # not https: not linked


def test_consent_allow_and_deny_are_one_skip_link_away(client, base_url):
    """Keyboard users: the first thing on the page skips the list to the decision."""
    page = _to_consent(base_url, client, APP_SCOPES.replace("patient/*.read ", "")).last.text
    main = page.split('<main', 1)[1]
    first_link = re.search(r"<(a|input|button)\b[^>]*>", main.split(">", 1)[1]).group(0)
    assert first_link == '<a class="skip" href="#decision">'
    assert re.search(r'<div class="buttons decision" id="decision" tabindex="-1">\s*'
                     r'<button type="submit" name="decision" value="allow"', page)
